#include "compare/report_fields.hpp"

#include <string>

#include "report/json_fields.hpp"

namespace exprun {
namespace {

using json = nlohmann::json;
using Pointer = json::json_pointer;

void check_summary(const JsonFields& f, const json& summary, const Pointer& at) {
  f.member(summary, at, "mre", JsonType::kNumber, true);
  f.member(summary, at, "sd", JsonType::kNumber, true);
  if (const json* sdr = f.member(summary, at, "sdr", JsonType::kObject)) {
    for (const char* threshold : {"2.0", "2.5", "3.0", "4.0"})
      f.member(*sdr, at / "sdr", threshold, JsonType::kNumber, true);
  }
}

void check_stage(const JsonFields& f, const json& stage, const Pointer& at) {
  f.expect(stage, at, JsonType::kObject);
  f.member(stage, at, "name", JsonType::kString);
  f.member(stage, at, "status", JsonType::kString);
  f.member(stage, at, "error", JsonType::kString);
  if (const json* data = f.member(stage, at, "data", JsonType::kObject)) {
    if (const json* landmarks = f.member(*data, at / "data", "landmarks", JsonType::kArray)) {
      for (std::size_t i = 0; i < landmarks->size(); ++i)
        f.expect((*landmarks)[i], at / "data" / "landmarks" / i, JsonType::kString);
    }
  }
  const json* best = f.member(stage, at, "best", JsonType::kObject, true);
  if (!best) return;
  const Pointer best_at = at / "best";
  if (const json* overall = f.member(*best, best_at, "overall", JsonType::kObject))
    check_summary(f, *overall, best_at / "overall");
  if (const json* per = f.member(*best, best_at, "per_landmark", JsonType::kObject)) {
    for (const auto& [symbol, summary] : per->items()) {
      f.expect(summary, best_at / "per_landmark" / symbol, JsonType::kObject);
      check_summary(f, summary, best_at / "per_landmark" / symbol);
    }
  }
}

}  // namespace

void check_run_fields(const std::filesystem::path& file, const json& report) {
  const JsonFields f(file);
  const Pointer root;
  for (const char* key : {"experiment", "run_id", "status", "error"})
    f.member(report, root, key, JsonType::kString);
  const json& config = f.required(report, root, "config", JsonType::kObject);
  f.member(config, root / "config", "experiment", JsonType::kObject);
  // A report without the configured stages still compares (by its "stages" sections).
  if (const json* configured = f.member(config, root / "config", "stages", JsonType::kArray)) {
    for (std::size_t i = 0; i < configured->size(); ++i) {
      const Pointer at = root / "config" / "stages" / i;
      f.expect((*configured)[i], at, JsonType::kObject);
      f.member((*configured)[i], at, "name", JsonType::kString);
    }
  }
  const json& stages = f.required(report, root, "stages", JsonType::kArray);
  for (std::size_t i = 0; i < stages.size(); ++i) check_stage(f, stages[i], root / "stages" / i);
}

void check_sweep_fields(const std::filesystem::path& file, const json& sweep) {
  const JsonFields f(file);
  const Pointer root;
  for (const char* key : {"experiment", "sweep_id"}) f.member(sweep, root, key, JsonType::kString);
  const json& trials = f.required(sweep, root, "trials", JsonType::kArray);
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const Pointer at = root / "trials" / i;
    f.expect(trials[i], at, JsonType::kObject);
    f.member(trials[i], at, "run_dir", JsonType::kString);
    f.member(trials[i], at, "status", JsonType::kString);
    f.member(trials[i], at, "error", JsonType::kString, true);
  }
}

}  // namespace exprun

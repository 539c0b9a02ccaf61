#include "sweep/sweep_report.hpp"

#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "sweep/toml_value.hpp"
#include "util/atomic_file.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

// object[key], or null when the report lacks it (a stage that failed early has few keys).
nlohmann::json at(const nlohmann::json& object, std::initializer_list<const char*> path) {
  const nlohmann::json* node = &object;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
  }
  return *node;
}

}  // namespace

std::string trial_dir_name(std::size_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "trial-%03zu", index);
  return buf;
}

nlohmann::json stage_summary(const nlohmann::json& stage) {
  nlohmann::json out = {{"name", at(stage, {"name"})}, {"status", at(stage, {"status"})}};
  if (stage.contains("error")) out["error"] = stage["error"];
  if (!stage.contains("batch_plan")) return out;  // failed before training began
  out["epochs_completed"] = at(stage, {"epochs_completed"});
  out["best_epoch"] = at(stage, {"best_epoch"});
  out["best_val_mre_mm"] = at(stage, {"best", "overall", "mre"});
  out["best_val_sd_mm"] = at(stage, {"best", "overall", "sd"});
  out["best_val_sdr"] = at(stage, {"best", "overall", "sdr"});
  out["baseline_mre_mm"] = at(stage, {"mean_shape_baseline", "overall", "mre"});
  out["peak_memory_bytes"] = at(stage, {"peak_memory_bytes"});
  out["train_images_per_second"] = at(stage, {"train_images_per_second"});
  out["batch_plan"] = {{"effective_batch", at(stage, {"batch_plan", "effective_batch"})},
                       {"micro_batch", at(stage, {"batch_plan", "micro_batch"})},
                       {"accumulation_steps", at(stage, {"batch_plan", "accumulation_steps"})},
                       {"chosen_by", at(stage, {"batch_plan", "chosen_by"})}};
  return out;
}

nlohmann::json pending_trial_entry(const SweepTrial& trial) {
  nlohmann::json values = nlohmann::json::object();
  for (const auto& v : trial.values) values[v.key] = toml_text_json(v.value);
  return {{"index", trial.index},        {"run_dir", trial_dir_name(trial.index)},
          {"values", std::move(values)}, {"set", trial.set_arguments()},
          {"status", "pending"},         {"error", nullptr},
          {"wall_time_s", nullptr},      {"stages", nlohmann::json::array()}};
}

void record_trial_end(nlohmann::json& entry, const nlohmann::json& run_report,
                      const std::string& error, double seconds) {
  const bool interrupted =
      run_report.is_object() && run_report.value("status", "") == "interrupted";
  entry["status"] = interrupted ? "interrupted" : error.empty() ? "completed" : "failed";
  entry["error"] = error.empty() ? nlohmann::json(nullptr) : nlohmann::json(error);
  entry["wall_time_s"] = seconds;
  entry["stages"] = nlohmann::json::array();
  if (run_report.is_object() && run_report.contains("stages")) {
    for (const auto& stage : run_report["stages"]) entry["stages"].push_back(stage_summary(stage));
  }
}

SweepReport::SweepReport(const SweepSpec& spec, const std::string& experiment,
                         const std::string& source_file, const std::vector<std::string>& overrides,
                         const std::vector<SweepTrial>& trials, std::filesystem::path path,
                         std::time_t started)
    : path_(std::move(path)), start_(std::chrono::steady_clock::now()) {
  nlohmann::json listed = nlohmann::json::array();
  for (const auto& trial : trials) listed.push_back(pending_trial_entry(trial));
  doc_ = {{"schema_version", kSweepSchemaVersion},
          {"kind", "sweep"},
          {"experiment", experiment},
          {"sweep_id", path_.parent_path().filename().string()},
          {"source_file", source_file},
          {"overrides", overrides},
          {"mode", spec.mode()},
          {"keys", spec.keys()},
          {"trial_count", spec.trial_count()},
          {"status", "running"},
          {"started_at", format_utc(started, kIsoUtc)},
          {"finished_at", nullptr},
          {"wall_time_s", 0.0},
          {"trials", std::move(listed)}};
}

nlohmann::json& SweepReport::trial(std::size_t index) {
  for (auto& t : doc_["trials"])
    if (t["index"] == index) return t;
  throw std::logic_error("sweep.json has no trial " + std::to_string(index));
}

void SweepReport::start_trial(std::size_t index) { trial(index)["status"] = "running"; }

void SweepReport::finish_trial(std::size_t index, const nlohmann::json& run_report,
                               const std::string& error, double seconds) {
  nlohmann::json& t = trial(index);
  record_trial_end(t, run_report, error, seconds);
  stopped_ = stopped_ || t["status"] == "interrupted";
}

bool SweepReport::ok() const {
  for (const auto& t : doc_["trials"])
    if (t["status"] != "completed") return false;
  return true;
}

void SweepReport::finish() {
  if (stopped_) {
    for (auto& t : doc_["trials"])
      if (t["status"] == "pending") t["status"] = "not_run";
  }
  doc_["status"] = stopped_ ? "interrupted" : ok() ? "completed" : "failed";
  doc_["finished_at"] = format_utc_now(kIsoUtc);
  doc_["wall_time_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void SweepReport::write() const {
  nlohmann::json doc = doc_;
  doc["wall_time_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  write_file_atomically(path_, doc.dump(2) + "\n");
}

}  // namespace exprun

#include "sweep/sweep_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "sweep/toml_value.hpp"
#include "util/atomic_file.hpp"
#include "util/json_file.hpp"
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

namespace {

bool is_number_or_null(const nlohmann::json& value) {
  return value.is_null() || (value.is_number() && std::isfinite(value.get<double>()));
}

bool is_count_or_null(const nlohmann::json& value) {
  return value.is_null() || value.is_number_unsigned();
}

std::string stage_summary_problem(const nlohmann::json& stage) {
  if (!stage.is_object()) return "a stage that is not an object";
  for (const char* key : {"name", "status"}) {
    if (!stage.contains(key) || !(stage[key].is_null() || stage[key].is_string()))
      return std::string("\"") + key + "\" of a stage is not a string or null";
  }
  if (stage.contains("error") && !stage["error"].is_string())
    return "\"error\" of a stage is not a string";
  for (const char* key :
       {"best_val_mre_mm", "best_val_sd_mm", "baseline_mre_mm", "train_images_per_second"}) {
    if (stage.contains(key) && !is_number_or_null(stage[key]))
      return std::string("\"") + key + "\" of a stage is not a number or null";
  }
  for (const char* key : {"epochs_completed", "best_epoch", "peak_memory_bytes"}) {
    if (stage.contains(key) && !is_count_or_null(stage[key]))
      return std::string("\"") + key + "\" of a stage is not a whole number or null";
  }
  for (const char* key : {"best_val_sdr", "batch_plan"}) {
    if (stage.contains(key) && !(stage[key].is_null() || stage[key].is_object()))
      return std::string("\"") + key + "\" of a stage is not an object or null";
  }
  return "";
}

}  // namespace

std::string trial_entry_problem(const nlohmann::json& entry, const nlohmann::json& listed) {
  if (!entry.is_object() || !entry.contains("index") || !entry["index"].is_number_unsigned())
    return "expected an object with \"index\" (whole number)";
  const auto index = entry["index"].get<std::size_t>();
  if (!listed.is_object()) return "sweep.json lists no trial " + std::to_string(index);
  const std::string run_dir = trial_dir_name(index);
  if (entry.value("run_dir", nlohmann::json()) != run_dir)
    return "\"run_dir\" is not \"" + run_dir + "\"";
  static const std::vector<std::string> statuses = {"pending", "running",     "completed",
                                                    "failed",  "interrupted", "not_run"};
  const nlohmann::json status = entry.value("status", nlohmann::json());
  if (!status.is_string() ||
      std::find(statuses.begin(), statuses.end(), status.get<std::string>()) == statuses.end())
    return "\"status\" is not one of " + join(statuses, ", ");
  const nlohmann::json error = entry.value("error", nlohmann::json(0));
  if (!(error.is_null() || error.is_string())) return "\"error\" is not a string or null";
  const nlohmann::json wall = entry.value("wall_time_s", nlohmann::json(""));
  if (!is_number_or_null(wall) || (wall.is_number() && wall.get<double>() < 0))
    return "\"wall_time_s\" is not a number of seconds or null";
  for (const char* key : {"values", "set"}) {
    if (entry.value(key, nlohmann::json()) != listed.value(key, nlohmann::json()))
      return std::string("\"") + key + "\" differs from trial " + std::to_string(index) +
             "'s in sweep.json";
  }
  const nlohmann::json stages = entry.value("stages", nlohmann::json());
  if (!stages.is_array()) return "\"stages\" is not an array";
  for (const auto& stage : stages)
    if (const std::string problem = stage_summary_problem(stage); !problem.empty()) return problem;
  return "";
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
  write_file_atomically(path_, json_file_text(doc));
}

}  // namespace exprun

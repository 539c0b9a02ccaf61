#include "run/resume.hpp"

#include <algorithm>

#include "config/config_compat.hpp"
#include "config/config_error.hpp"
#include "report/json_fields.hpp"
#include "train/checkpoint.hpp"
#include "train/progress.hpp"
#include "util/json_file.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

// What must match for a run to be continued: the experiment's identity and every stage.
// Where results go (output) and how the file was named do not matter.
nlohmann::json resumable_config(const nlohmann::json& config) {
  nlohmann::json out = {{"experiment", config.at("experiment")}, {"stages", config.at("stages")}};
  out["experiment"].erase("output");
  return out;
}

// Depth-limited (util/json_file): a report is a file the user can edit or damage.
nlohmann::json read_report(const fs::path& file) {
  if (!fs::exists(file))
    throw std::runtime_error("cannot resume " + file.parent_path().string() + ": no " +
                             file.string());
  try {
    return read_json_file(file);
  } catch (const JsonInputError& e) {
    throw std::runtime_error(std::string("cannot resume: ") + e.what());
  }
}

// Whether a sibling run is unfinished; throws naming the file when its report cannot tell.
bool unfinished(const fs::path& file) {
  const nlohmann::json report = read_json_file(file);
  return JsonFields(file).required(report, JsonFields::Pointer(), "status", JsonType::kString) !=
         "completed";
}

// The fields a resumed run carries over (report/report.cpp continue_from, and the stages it
// skips as completed): a damaged one is named here rather than met later as a library error.
void check_carried_fields(const fs::path& file, const nlohmann::json& report) {
  const JsonFields f(file);
  const JsonFields::Pointer root;
  try {
    f.member(report, root, "status", JsonType::kString);
    f.member(report, root, "started_at", JsonType::kString);
    f.member(report, root, "wall_time_s", JsonType::kNumber);
    f.member(report, root, "resumes", JsonType::kArray);
    const nlohmann::json& stages = f.required(report, root, "stages", JsonType::kArray);
    for (std::size_t i = 0; i < stages.size(); ++i) {
      const JsonFields::Pointer at = root / "stages" / i;
      f.expect(stages[i], at, JsonType::kObject);
      f.required(stages[i], at, "name", JsonType::kString);
      f.member(stages[i], at, "status", JsonType::kString);
    }
  } catch (const ConfigError& e) {
    throw std::runtime_error(std::string("cannot resume: ") + e.what());
  }
}

}  // namespace

fs::path find_run_to_resume(const Experiment& experiment) {
  const fs::path runs = fs::path(experiment.output_dir) / experiment.name;
  std::vector<fs::path> candidates;
  if (fs::is_directory(runs)) {
    for (const auto& entry : fs::directory_iterator(runs)) {
      if (!entry.is_directory() || !fs::exists(entry.path() / "report.json")) continue;
      // One damaged run must not keep every other run of the experiment from resuming.
      try {
        if (unfinished(entry.path() / "report.json")) candidates.push_back(entry.path());
      } catch (const std::exception& e) {
        Progress::message("exprun: warning: passing over run " + entry.path().string() + ": " +
                          e.what());
      }
    }
  }
  if (candidates.empty()) {
    throw std::runtime_error("--resume: no unfinished run of experiment " + experiment.name +
                             " in " + runs.string() + " (give the run directory: --resume=DIR)");
  }
  // Run ids are UTC timestamps (with -2, -3 for runs started in the same second), so the newest
  // sorts last once equal-length ids are compared first by length.
  std::sort(candidates.begin(), candidates.end(), [](const fs::path& a, const fs::path& b) {
    const auto x = a.filename().string(), y = b.filename().string();
    return x.size() != y.size() ? x.size() < y.size() : x < y;
  });
  return candidates.back();
}

nlohmann::json read_run_to_resume(const fs::path& run_dir, const Experiment& experiment) {
  const fs::path file = run_dir / "report.json";
  nlohmann::json report = read_report(file);
  if (!report.is_object() || !report.contains("config") || !report["config"].is_object() ||
      !report["config"].contains("experiment") || !report["config"]["experiment"].is_object() ||
      !report["config"].contains("stages") || !report.contains("stages")) {
    throw std::runtime_error("cannot resume: " + file.string() + " is not an exprun run report");
  }
  check_carried_fields(file, report);
  const nlohmann::json before = resumable_config(report["config"]);
  const nlohmann::json now = resumable_config(to_json(experiment));
  // Stage keys exprun added since the run was written, at the value the run had, are no
  // difference (config/config_compat.hpp); everything else is.
  std::vector<nlohmann::json> changes;
  const bool same_stage_count = before["stages"].size() == now["stages"].size();
  for (const auto& change : nlohmann::json::diff(before, now)) {
    const std::string path = change["path"].get<std::string>();
    if (same_stage_count && path.rfind("/stages/", 0) == 0) continue;  // compared below
    changes.push_back(change);
  }
  if (same_stage_count) {
    for (std::size_t i = 0; i < now["stages"].size(); ++i) {
      const std::vector<std::string> differing = resume_config_differences(
          before["stages"][i], now["stages"][i], plugin_defaults_json(experiment.stages[i]));
      for (const auto& change : nlohmann::json::diff(before["stages"][i], now["stages"][i])) {
        const std::string path = change["path"].get<std::string>();
        if (std::find(differing.begin(), differing.end(), path) == differing.end()) continue;
        nlohmann::json staged = change;
        staged["path"] = "/stages/" + std::to_string(i) + path;
        changes.push_back(staged);
      }
    }
  }
  if (!changes.empty()) {
    std::string keys;
    for (const auto& change : changes) {
      keys += "\n  " + change["op"].get<std::string>() + " " + change["path"].get<std::string>();
    }
    throw std::runtime_error("cannot resume " + run_dir.string() +
                             ": it was run with another configuration; these keys differ "
                             "(give the same file and --set arguments as the run, see its "
                             "experiment.toml):" +
                             keys);
  }
  return report;
}

std::optional<fs::path> newest_valid_checkpoint(const fs::path& stage_dir) {
  const fs::path dir = stage_dir / "checkpoints";
  if (!fs::is_directory(dir)) return std::nullopt;
  struct Candidate {
    fs::path path;
    std::int64_t epoch, step;
  };
  std::vector<Candidate> valid;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const fs::path& path = entry.path();
    if (path.filename().string().find(".pt.tmp-") != std::string::npos) {
      std::error_code ignored;
      fs::remove(path, ignored);  // a write the crash interrupted
      continue;
    }
    if (path.extension() != ".pt") continue;
    try {
      const CheckpointInfo info = read_checkpoint_info(path);
      valid.push_back({path, info.epoch, info.step_in_epoch});
    } catch (const std::exception& e) {
      Progress::message(std::string("exprun: warning: ") + e.what() + "; passing over it");
    }
  }
  if (valid.empty()) return std::nullopt;
  // Furthest into training first; among equals latest.pt, since best/epoch_N hold the same.
  std::sort(valid.begin(), valid.end(), [](const Candidate& a, const Candidate& b) {
    if (a.epoch != b.epoch) return a.epoch > b.epoch;
    if (a.step != b.step) return a.step > b.step;
    return a.path.filename() == "latest.pt" && b.path.filename() != "latest.pt";
  });
  return valid.front().path;
}

}  // namespace exprun

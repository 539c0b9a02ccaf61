#include "compare/run_loader.hpp"

#include "compare/report_fields.hpp"
#include "config/config_error.hpp"
#include "report/report.hpp"
#include "sweep/sweep_report.hpp"
#include "util/json_file.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const fs::path& file, const std::string& message) {
  throw ConfigError(file.string() + ": " + message);
}

// Depth-limited (util/json_file); its errors are the user's input, reported as such.
nlohmann::json read_json(const fs::path& file) {
  try {
    return read_json_file(file);
  } catch (const JsonInputError& e) {
    throw ConfigError(e.what());
  }
}

// Checks kind and schema_version; returns the kind ("run" or "sweep").
std::string check_document(const fs::path& file, const nlohmann::json& doc) {
  if (!doc.is_object() || !doc.contains("kind") || !doc["kind"].is_string() ||
      !doc.contains("schema_version")) {
    fail(file, "not an exprun report: expected a JSON object with \"kind\" and \"schema_version\"");
  }
  const std::string kind = doc["kind"].get<std::string>();
  if (kind != "run" && kind != "sweep") {
    fail(file, "not an exprun run report or sweep: \"kind\" is \"" + kind +
                   "\", expected \"run\" or \"sweep\"");
  }
  const int supported = kind == "run" ? kReportSchemaVersion : kSweepSchemaVersion;
  const auto& version = doc["schema_version"];
  if (!version.is_number_integer() || version.get<std::int64_t>() < 1) {
    fail(file, "unknown schema_version " + version.dump() + "; this exprun reads version " +
                   std::to_string(supported));
  }
  if (version.get<std::int64_t>() > supported) {
    fail(file, "schema_version " + version.dump() +
                   " was written by a newer exprun; this exprun reads version " +
                   std::to_string(supported) + " (update exprun to compare it)");
  }
  if (kind == "run") {
    if (!doc.contains("config") || !doc["config"].is_object() || !doc.contains("stages") ||
        !doc["stages"].is_array()) {
      fail(file,
           "not a complete exprun report: expected \"config\" (object) and \"stages\" (array)");
    }
    check_run_fields(file, doc);
  } else {
    if (!doc.contains("trials") || !doc["trials"].is_array())
      fail(file, "not a complete sweep.json: expected \"trials\" (array)");
    check_sweep_fields(file, doc);
  }
  return kind;
}

std::string text_or(const nlohmann::json& doc, const char* key, const std::string& fallback) {
  return doc.is_object() && doc.contains(key) && doc[key].is_string() ? doc[key].get<std::string>()
                                                                      : fallback;
}

LoadedRun run_from(const fs::path& file, const nlohmann::json& doc, const std::string& label) {
  LoadedRun run;
  run.path = file;
  run.label = label;
  run.status = text_or(doc, "status", "unknown");
  run.report = doc;
  return run;
}

std::vector<LoadedRun> expand_sweep(const fs::path& file, const nlohmann::json& sweep) {
  const fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  const std::string prefix = text_or(sweep, "experiment", "?") + "/" +
                             text_or(sweep, "sweep_id", dir.filename().string()) + "/";
  std::vector<LoadedRun> runs;
  const auto& trials = sweep["trials"];
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const auto& trial = trials[i];
    const std::string run_dir = text_or(trial, "run_dir", "");
    // A trial's directory lies in the sweep's own: a path elsewhere is not one exprun wrote.
    if (run_dir.empty() || run_dir == "." || run_dir == ".." ||
        run_dir.find_first_of("/\\") != std::string::npos) {
      fail(file, "/trials/" + std::to_string(i) +
                     "/run_dir: expected the name of a trial directory beside sweep.json "
                     "(\"trial-001\"), found " +
                     (trial.contains("run_dir") ? trial["run_dir"].dump() : "none"));
    }
    const fs::path report = dir / run_dir / "report.json";
    std::error_code ec;
    if (fs::exists(report, ec)) {
      const nlohmann::json doc = read_json(report);
      if (check_document(report, doc) != "run")
        fail(report, "expected a run report, found a sweep");
      runs.push_back(run_from(report, doc, prefix + run_dir));
      continue;
    }
    LoadedRun missing;
    missing.path = report;
    missing.label = prefix + run_dir;
    missing.status = text_or(trial, "status", "unknown");
    const std::string error = text_or(trial, "error", "");
    missing.note = "no report.json (trial " + missing.status + ")" +
                   (error.empty() ? std::string() : ": " + error);
    runs.push_back(std::move(missing));
  }
  if (runs.empty()) fail(file, "the sweep lists no trials");
  return runs;
}

}  // namespace

std::vector<LoadedRun> load_runs(const fs::path& argument) {
  fs::path file = argument;
  std::error_code ec;
  if (fs::is_directory(argument, ec)) {
    if (fs::exists(argument / "report.json", ec)) {
      file = argument / "report.json";
    } else if (fs::exists(argument / "sweep.json", ec)) {
      file = argument / "sweep.json";
    } else {
      fail(argument,
           "neither a run directory (no report.json) nor a sweep directory (no sweep.json)");
    }
  }
  const nlohmann::json doc = read_json(file);
  if (check_document(file, doc) == "sweep") return expand_sweep(file, doc);
  return {run_from(file, doc, text_or(doc, "experiment", "?") + "/" + text_or(doc, "run_id", "?"))};
}

LoadedRun load_single_run(const fs::path& argument) {
  auto runs = load_runs(argument);
  if (runs.size() != 1) {
    fail(argument, "is a sweep of " + std::to_string(runs.size()) +
                       " trials; expected one run (name a trial directory)");
  }
  return std::move(runs.front());
}

bool same_report(const LoadedRun& a, const LoadedRun& b) {
  std::error_code ec;
  return fs::equivalent(a.path, b.path, ec) && !ec;
}

}  // namespace exprun

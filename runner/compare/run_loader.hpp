// Finding the runs `exprun compare` reads: a report.json, a run directory (its report.json) or
// a sweep directory (every trial in its sweep.json), each checked to be an exprun report of a
// schema version this build understands.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace exprun {

struct LoadedRun {
  std::filesystem::path path;  // the report.json (for a trial without one: where it would be)
  std::string label;           // "quickstart/20261123-070248", "sweep/20261123-124946/trial-002"
  std::string status;          // the report's status, or the sweep trial's when there is no report
  nlohmann::json report;       // null for a sweep trial that never wrote a report
  std::string note;            // why `report` is null
};

// One argument: a report.json (or sweep.json), a run directory or a sweep directory. Throws
// ConfigError naming the file when it cannot be read (JSON nested deeper than util/json_file's
// limit included), is not an exprun report, has a schema version this exprun does not read, or
// holds a field compare reads with the wrong type (compare/report_fields.hpp).
std::vector<LoadedRun> load_runs(const std::filesystem::path& argument);

// The same for a file or directory that must hold exactly one run (--baseline PATH).
LoadedRun load_single_run(const std::filesystem::path& argument);

// Whether two loaded runs are the same report file.
bool same_report(const LoadedRun& a, const LoadedRun& b);

}  // namespace exprun

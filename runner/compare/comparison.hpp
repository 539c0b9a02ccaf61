// What `exprun compare` shows, worked out once for every output format: the config keys that
// differ between runs, each run's metrics of one stage with deltas against a baseline run, the
// best run per metric, and optionally per-landmark MRE.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "compare/run_loader.hpp"

namespace exprun {

// One compared metric: the best validation summary's overall value of a stage.
struct MetricSpec {
  const char* name;    // "mre_mm": the key in CSV and JSON
  const char* header;  // "MRE mm": the column title in tables
  bool lower_is_better;
};
const std::vector<MetricSpec>& compared_metrics();

struct MetricCell {
  std::optional<double> value;
  std::optional<double> delta;  // value - baseline's value; none for the baseline itself
  bool best = false;            // the best of all runs (each of a tie; none when all are equal)
};

struct ComparedRow {
  LoadedRun run;
  std::size_t number = 0;  // 1-based, in the order the runs were given
  std::string stage;       // the stage whose metrics are shown; "" when the run has none
  std::string note;        // why metrics are missing (failed, no such stage, ...); "" if none
  nlohmann::json config;   // flattened resolved config {"stages.train.optimizer.lr": 0.002}
  std::vector<MetricCell> metrics;    // in compared_metrics() order
  std::vector<MetricCell> landmarks;  // in Comparison::landmarks order (with --landmarks)
};

struct CompareOptions {
  std::optional<std::string> stage;  // --stage; default: each run's last configured stage
  bool all_keys = false;             // --all
  bool landmarks = false;            // --landmarks
  std::size_t baseline = 0;          // 0-based index into the runs
};

struct Comparison {
  CompareOptions options;
  std::vector<std::string> keys;  // shown config keys, in first-seen order
  std::size_t total_keys = 0;     // every flattened key of every run
  std::vector<std::string> landmarks;
  std::vector<ComparedRow> rows;
};

// The resolved config of a report as dotted keys: config.experiment.* as "experiment.*",
// config.stages[i].* as "stages.<name>.*"; arrays are values, not expanded. Plus
// "distributed.world_size" and "distributed.launcher" from environment.distributed (1 and
// "single" for reports from before data parallelism).
nlohmann::json flatten_config(const nlohmann::json& report);

// Throws ConfigError for --stage naming no stage of any run, and for --landmarks over runs
// with different landmark sets (naming both files).
Comparison compare_runs(std::vector<LoadedRun> runs, const CompareOptions& options);

}  // namespace exprun

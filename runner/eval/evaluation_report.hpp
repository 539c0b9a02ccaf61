// The report `exprun eval` writes: one checkpoint scored on one split, with every image's
// errors, and the short table it prints.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "eval/evaluator.hpp"

namespace exprun {

// What the report says of the checkpoint it scored.
struct EvaluatedCheckpoint {
  std::filesystem::path path;
  std::int64_t epoch = 0;
  std::int64_t best_epoch = 0;
  double best_metric = 0;  // the checkpoint's monitored best value
};

struct EvaluationContext {
  std::string experiment;
  std::string source_file;
  std::vector<std::string> overrides;
  std::string stage;
  std::string split;
  std::string decode;  // "argmax" | "dark"
  std::string device;
  EvaluatedCheckpoint checkpoint;
  std::vector<sdk::LandmarkInfo> landmarks;
};

// Field by field in docs/report.md ("Evaluation report").
nlohmann::json evaluation_report(const EvaluationContext& context, const Evaluation& evaluation);

// MRE, SD and SDR overall, per group and per landmark, one line each.
std::string evaluation_table(const Metrics& metrics, const std::vector<std::string>& symbols);

// Where the report goes by default: eval-<split>.json in the checkpoint's stage directory
// (the parent of its checkpoints/ folder), or beside the checkpoint when it is elsewhere.
std::filesystem::path default_evaluation_path(const std::filesystem::path& checkpoint,
                                              const std::string& split);

}  // namespace exprun

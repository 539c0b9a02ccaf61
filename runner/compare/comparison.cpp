#include "compare/comparison.hpp"

#include <algorithm>
#include <functional>
#include <set>

#include "config/config_error.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

const nlohmann::json* find(const nlohmann::json& object, std::initializer_list<const char*> path) {
  const nlohmann::json* node = &object;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
  }
  return node;
}

std::optional<double> number_at(const nlohmann::json& object,
                                std::initializer_list<const char*> path) {
  const nlohmann::json* node = find(object, path);
  if (!node || !node->is_number()) return std::nullopt;
  return node->get<double>();
}

void flatten_into(const nlohmann::json& value, const std::string& prefix, nlohmann::json& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) flatten_into(child, prefix + "." + key, out);
  } else {
    out[prefix] = value;
  }
}

std::vector<std::string> stage_names(const nlohmann::json& report) {
  std::vector<std::string> names;
  if (const auto* stages = find(report, {"config", "stages"}); stages && stages->is_array()) {
    for (const auto& stage : *stages)
      if (stage.is_object() && stage.contains("name") && stage["name"].is_string())
        names.push_back(stage["name"].get<std::string>());
  }
  return names;
}

// The stage's section in report.json "stages", or null when it has not started.
const nlohmann::json* stage_section(const nlohmann::json& report, const std::string& name) {
  for (const auto& stage : report["stages"])
    if (stage.is_object() && stage.value("name", std::string()) == name) return &stage;
  return nullptr;
}

std::vector<std::string> landmark_symbols(const nlohmann::json& stage) {
  std::vector<std::string> symbols;
  if (const auto* listed = find(stage, {"data", "landmarks"}); listed && listed->is_array()) {
    for (const auto& s : *listed)
      if (s.is_string()) symbols.push_back(s.get<std::string>());
  } else if (const auto* per = find(stage, {"best", "per_landmark"}); per && per->is_object()) {
    for (const auto& [symbol, _] : per->items()) symbols.push_back(symbol);
  }
  return symbols;
}

// Picks the stage, fills metrics or a note saying why there are none.
void read_metrics(ComparedRow& row, const CompareOptions& options,
                  std::vector<std::string>& symbols) {
  const nlohmann::json& report = row.run.report;
  row.metrics.assign(compared_metrics().size(), MetricCell{});
  if (report.is_null()) {
    row.note = row.run.note;
    return;
  }
  const auto names = stage_names(report);
  if (options.stage) {
    if (std::find(names.begin(), names.end(), *options.stage) == names.end()) {
      row.note = "has no stage \"" + *options.stage + "\" (stages: " + join(names, ", ") + ")";
      return;
    }
    row.stage = *options.stage;
  } else if (!names.empty()) {
    row.stage = names.back();
  } else {
    row.note = "lists no stages in config.stages";
    return;
  }
  const nlohmann::json* stage = stage_section(report, row.stage);
  const std::string run_error = report.value("error", std::string());
  if (!stage) {
    row.note = "stage " + row.stage + " has not started" +
               (run_error.empty() ? std::string() : " (run failed: " + run_error + ")");
    return;
  }
  const nlohmann::json* best = find(*stage, {"best", "overall"});
  if (!best || !best->is_object() || !number_at(*best, {"mre"})) {
    const std::string status = stage->value("status", std::string("unknown"));
    const std::string error = stage->value("error", std::string());
    row.note = "stage " + row.stage + " has no validation metrics (" + status +
               (error.empty() ? std::string() : ": " + error) + ")";
    return;
  }
  if (stage->value("status", std::string()) == "failed")
    row.note = "stage " + row.stage + " failed: " + stage->value("error", std::string("?")) +
               "; metrics of its best epoch before failing";
  std::size_t i = 0;
  for (const char* path : {"mre", "sd"}) row.metrics[i++].value = number_at(*best, {path});
  for (const char* threshold : {"2.0", "2.5", "3.0", "4.0"})
    row.metrics[i++].value = number_at(*best, {"sdr", threshold});
  symbols = landmark_symbols(*stage);
}

// Marks the best of each column and fills deltas against the baseline row.
void rank(std::vector<ComparedRow>& rows, std::size_t baseline,
          const std::function<std::vector<MetricCell>&(ComparedRow&)>& cells,
          const std::function<bool(std::size_t)>& lower_is_better) {
  if (rows.empty()) return;
  const std::size_t columns = cells(rows.front()).size();
  for (std::size_t c = 0; c < columns; ++c) {
    std::optional<double> best, worst;
    for (auto& row : rows) {
      const auto& v = cells(row)[c].value;
      if (!v) continue;
      if (!best || (lower_is_better(c) ? *v < *best : *v > *best)) best = v;
      if (!worst || (lower_is_better(c) ? *v > *worst : *v < *worst)) worst = v;
    }
    // When every run has the same value there is nothing to point out.
    const bool tied = !best || *best == *worst;
    const auto base = cells(rows[baseline])[c].value;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      auto& cell = cells(rows[r])[c];
      cell.best = !tied && cell.value && *cell.value == *best;
      if (r != baseline && cell.value && base) cell.delta = *cell.value - *base;
    }
  }
}

}  // namespace

const std::vector<MetricSpec>& compared_metrics() {
  static const std::vector<MetricSpec> metrics = {
      {"mre_mm", "MRE mm", true},      {"sd_mm", "SD mm", true},
      {"sdr_2.0", "SDR@2mm %", false}, {"sdr_2.5", "SDR@2.5mm %", false},
      {"sdr_3.0", "SDR@3mm %", false}, {"sdr_4.0", "SDR@4mm %", false}};
  return metrics;
}

nlohmann::json flatten_config(const nlohmann::json& report) {
  nlohmann::json out = nlohmann::json::object();
  if (const auto* experiment = find(report, {"config", "experiment"}))
    flatten_into(*experiment, "experiment", out);
  if (const auto* stages = find(report, {"config", "stages"}); stages && stages->is_array()) {
    for (std::size_t i = 0; i < stages->size(); ++i) {
      const auto& stage = (*stages)[i];
      const std::string name =
          stage.is_object() && stage.contains("name") && stage["name"].is_string()
              ? stage["name"].get<std::string>()
              : std::to_string(i);
      nlohmann::json rest = stage;
      if (rest.is_object()) rest.erase("name");
      flatten_into(rest, "stages." + name, out);
    }
  }
  // The ranks that trained the run: shown like a key when runs differ. Reports from before
  // data parallelism were written by one process.
  const auto* world_size = find(report, {"environment", "distributed", "world_size"});
  const auto* launcher = find(report, {"environment", "distributed", "launcher"});
  out["distributed.world_size"] = world_size ? *world_size : nlohmann::json(1);
  out["distributed.launcher"] = launcher ? *launcher : nlohmann::json("single");
  return out;
}

Comparison compare_runs(std::vector<LoadedRun> runs, const CompareOptions& options) {
  Comparison result;
  result.options = options;
  if (options.stage) {
    std::vector<std::string> known;
    for (const auto& run : runs)
      for (const auto& name : stage_names(run.report))
        if (std::find(known.begin(), known.end(), name) == known.end()) known.push_back(name);
    if (std::find(known.begin(), known.end(), *options.stage) == known.end())
      throw ConfigError("--stage " + *options.stage + ": no compared run has a stage named \"" +
                        *options.stage + "\"" + did_you_mean(*options.stage, known));
  }

  // Landmark sets must agree before per-landmark columns mean anything.
  std::optional<std::size_t> landmark_source;  // the first row that has landmarks
  for (std::size_t i = 0; i < runs.size(); ++i) {
    ComparedRow row;
    row.run = std::move(runs[i]);
    row.number = i + 1;
    row.config =
        row.run.report.is_null() ? nlohmann::json::object() : flatten_config(row.run.report);
    std::vector<std::string> symbols;
    read_metrics(row, options, symbols);
    if (options.landmarks && !symbols.empty()) {
      if (!landmark_source) {
        landmark_source = i;
        result.landmarks = symbols;
      } else if (std::set<std::string>(symbols.begin(), symbols.end()) !=
                 std::set<std::string>(result.landmarks.begin(), result.landmarks.end())) {
        throw ConfigError("--landmarks: " + row.run.path.string() + " has " +
                          std::to_string(symbols.size()) + " landmarks (" + join(symbols, ", ") +
                          ") but " + result.rows[*landmark_source].run.path.string() + " has " +
                          std::to_string(result.landmarks.size()) + " (" +
                          join(result.landmarks, ", ") +
                          "); per-landmark MRE can only be compared over the same landmarks");
      }
    }
    result.rows.push_back(std::move(row));
  }

  if (options.landmarks) {
    for (auto& row : result.rows) {
      row.landmarks.assign(result.landmarks.size(), MetricCell{});
      if (!row.metrics.front().value) continue;  // no metrics, no stage section
      const nlohmann::json* stage = stage_section(row.run.report, row.stage);
      for (std::size_t l = 0; l < result.landmarks.size(); ++l) {
        row.landmarks[l].value =
            number_at(*stage, {"best", "per_landmark", result.landmarks[l].c_str(), "mre"});
      }
    }
  }

  // Keys: every flattened key, in first-seen order; shown when some runs disagree.
  std::vector<std::string> all;
  std::set<std::string> seen;
  for (const auto& row : result.rows)
    for (const auto& [key, _] : row.config.items())
      if (seen.insert(key).second) all.push_back(key);
  result.total_keys = all.size();
  for (const auto& key : all) {
    bool differs = false;
    const nlohmann::json* first = nullptr;
    bool first_set = false;
    for (const auto& row : result.rows) {
      if (row.run.report.is_null()) continue;  // nothing to compare
      const nlohmann::json* value = row.config.contains(key) ? &row.config[key] : nullptr;
      if (!first_set) {
        first = value;
        first_set = true;
      } else if ((first == nullptr) != (value == nullptr) || (first && *first != *value)) {
        differs = true;
      }
    }
    if (differs || options.all_keys) result.keys.push_back(key);
  }

  const auto& specs = compared_metrics();
  rank(
      result.rows, options.baseline,
      [](ComparedRow& r) -> std::vector<MetricCell>& { return r.metrics; },
      [&](std::size_t c) { return specs[c].lower_is_better; });
  if (options.landmarks) {
    rank(
        result.rows, options.baseline,
        [](ComparedRow& r) -> std::vector<MetricCell>& { return r.landmarks; },
        [](std::size_t) { return true; });
  }
  return result;
}

}  // namespace exprun

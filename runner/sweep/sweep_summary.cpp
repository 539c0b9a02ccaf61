#include "sweep/sweep_summary.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "util/text.hpp"

namespace exprun {
namespace {

using Row = std::vector<std::string>;

// A metric is null in the reports when it could not be computed; the table shows "-".
std::string number(const nlohmann::json& value, const char* format) {
  if (!value.is_number()) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value.get<double>());
  return buf;
}

std::string bytes(const nlohmann::json& value) {
  return value.is_number() ? format_bytes(value.get<std::int64_t>()) : "-";
}

nlohmann::json sdr2(const nlohmann::json& stage) {
  const auto it = stage.find("best_val_sdr");
  if (it == stage.end() || !it->is_object() || !it->contains("2.0")) return nullptr;
  return (*it)["2.0"];
}

}  // namespace

std::string sweep_summary_table(const nlohmann::json& sweep) {
  bool several_stages = false;
  for (const auto& trial : sweep["trials"]) several_stages |= trial["stages"].size() > 1;
  Row header = {"trial"};
  if (several_stages) header.push_back("stage");
  for (const auto& key : sweep["keys"]) header.push_back(key.get<std::string>());
  for (const char* name : {"status", "best MRE", "SDR@2mm", "peak memory", "img/s", "time"})
    header.emplace_back(name);
  std::vector<Row> rows = {header};
  std::string failures;
  for (const auto& trial : sweep["trials"]) {
    Row values;
    for (const auto& key : sweep["keys"])
      values.push_back(trial["values"][key.get<std::string>()].dump());
    const std::string time = trial["wall_time_s"].is_number()
                                 ? format_duration(trial["wall_time_s"].get<double>())
                                 : "-";
    // A trial with no stage results still gets its row.
    const nlohmann::json none = nlohmann::json::array({nlohmann::json::object()});
    const auto& stages = trial["stages"].empty() ? none : trial["stages"];
    for (const auto& stage : stages) {
      Row row = {std::to_string(trial["index"].get<std::size_t>())};
      if (several_stages) row.push_back(stage.value("name", std::string("-")));
      row.insert(row.end(), values.begin(), values.end());
      row.push_back(stage.value("status", trial["status"].get<std::string>()));
      row.push_back(number(stage.value("best_val_mre_mm", nlohmann::json()), "%.3f mm"));
      row.push_back(number(sdr2(stage), "%.1f%%"));
      row.push_back(bytes(stage.value("peak_memory_bytes", nlohmann::json())));
      row.push_back(number(stage.value("train_images_per_second", nlohmann::json()), "%.1f"));
      row.push_back(time);
      rows.push_back(std::move(row));
    }
    // An interrupted trial's error only says which signal; the first line says that already.
    if (trial["status"] == "failed" && trial["error"].is_string()) {
      failures += "trial " + std::to_string(trial["index"].get<std::size_t>()) +
                  " failed: " + trial["error"].get<std::string>() + "\n";
    }
  }
  return align_columns(rows, [](std::size_t) { return false; }) + failures;
}

std::string sweep_status_counts(const nlohmann::json& sweep) {
  std::vector<std::string> parts;
  for (const char* status :
       {"completed", "failed", "interrupted", "not_run", "running", "pending"}) {
    std::size_t count = 0;
    for (const auto& trial : sweep["trials"]) count += trial["status"] == status;
    if (count == 0) continue;
    std::string name = status;
    std::replace(name.begin(), name.end(), '_', ' ');
    parts.push_back(std::to_string(count) + " " + name);
  }
  return join(parts, ", ");
}

std::vector<std::size_t> unfinished_trials(const nlohmann::json& sweep) {
  std::vector<std::size_t> out;
  for (const auto& trial : sweep["trials"]) {
    if (trial["status"] == "interrupted" || trial["status"] == "not_run")
      out.push_back(trial["index"].get<std::size_t>());
  }
  return out;
}

}  // namespace exprun

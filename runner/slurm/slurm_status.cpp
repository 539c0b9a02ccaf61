#include "slurm/slurm_status.hpp"

#include <cstdio>
#include <sstream>
#include <vector>

#include "util/text.hpp"

namespace exprun::slurm {
namespace {

bool unfinished(const nlohmann::json& trial) {
  const std::string status = trial.value("status", "");
  return status == "pending" || status == "running";
}

std::string best_mre(const nlohmann::json& trial) {
  if (trial.value("status", "") != "completed") return "-";
  const auto stages = trial.find("stages");
  if (stages == trial.end() || !stages->is_array() || stages->empty()) return "-";
  const nlohmann::json& last = stages->back();
  const auto mre = last.find("best_val_mre_mm");
  if (mre == last.end() || !mre->is_number()) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.3f mm", mre->get<double>());
  return text;
}

std::string status_field(const std::map<std::size_t, nlohmann::json>& files, std::size_t index,
                         const char* key) {
  const auto it = files.find(index);
  if (it == files.end() || !it->second.is_object() || !it->second.contains(key)) return "-";
  const nlohmann::json& value = it->second[key];
  return value.is_string() ? value.get<std::string>() : value.is_null() ? "-" : value.dump();
}

}  // namespace

std::map<std::string, std::string> parse_squeue_states(const std::string& text) {
  std::map<std::string, std::string> states;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string id, state, extra;
    if (fields >> id >> state && !(fields >> extra)) states[id] = state;
  }
  return states;
}

std::string parse_sbatch_job_id(const std::string& out) {
  const std::string first = out.substr(0, out.find('\n'));
  const std::string id = first.substr(0, first.find(';'));
  const std::size_t begin = id.find_first_not_of(" \t\r");
  const std::size_t end = id.find_last_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  const std::string trimmed = id.substr(begin, end - begin + 1);
  return trimmed.find_first_not_of("0123456789") == std::string::npos ? trimmed : "";
}

std::string array_task_id(const std::string& job_id, std::size_t trial) {
  return job_id + "_" + std::to_string(trial);
}

std::string trial_status_table(const nlohmann::json& sweep,
                               const std::map<std::size_t, nlohmann::json>& status_files,
                               const std::optional<std::map<std::string, std::string>>& queue,
                               const std::string& job_id) {
  std::vector<std::string> keys;
  if (sweep.contains("keys") && sweep["keys"].is_array())
    for (const auto& key : sweep["keys"]) keys.push_back(key.get<std::string>());
  std::vector<std::string> header = {"trial"};
  header.insert(header.end(), keys.begin(), keys.end());
  header.emplace_back("status");
  if (queue) header.emplace_back("slurm");
  for (const char* name : {"host", "pid", "best MRE"}) header.emplace_back(name);
  std::vector<std::vector<std::string>> rows = {header};
  for (const auto& trial : sweep["trials"]) {
    const auto index = trial["index"].get<std::size_t>();
    std::vector<std::string> row = {std::to_string(index)};
    for (const auto& key : keys) {
      const auto values = trial.find("values");
      row.push_back(values != trial.end() && values->contains(key) ? (*values)[key].dump() : "-");
    }
    row.push_back(trial.value("status", "-"));
    if (queue) {
      const auto state = queue->find(array_task_id(job_id, index));
      row.push_back(state != queue->end() ? state->second : unfinished(trial) ? "not queued" : "-");
    }
    row.push_back(status_field(status_files, index, "host"));
    row.push_back(status_field(status_files, index, "pid"));
    row.push_back(best_mre(trial));
    rows.push_back(std::move(row));
  }
  return align_columns(rows, [](std::size_t) { return false; });
}

std::vector<std::size_t> trials_missing_from_queue(const nlohmann::json& sweep,
                                                   const std::map<std::string, std::string>& queue,
                                                   const std::string& job_id) {
  std::vector<std::size_t> missing;
  for (const auto& trial : sweep["trials"]) {
    const auto index = trial["index"].get<std::size_t>();
    if (unfinished(trial) && !queue.count(array_task_id(job_id, index))) missing.push_back(index);
  }
  return missing;
}

}  // namespace exprun::slurm

#include "config/config_compat.hpp"

#include <algorithm>

#include "config/experiment.hpp"
#include "config/runner_keys.hpp"

namespace exprun {
namespace {

// "/data/augment/rotation" -> {"data", "augment", "rotation"}, with JSON pointer escapes undone.
std::vector<std::string> pointer_tokens(const std::string& path) {
  std::vector<std::string> tokens;
  for (std::size_t at = 0; at < path.size();) {
    const std::size_t next = std::min(path.find('/', at + 1), path.size());
    std::string token;
    for (std::size_t i = at + 1; i < next; ++i) {
      if (path[i] == '~' && i + 1 < next) {
        token += path[++i] == '1' ? '/' : '~';
      } else {
        token += path[i];
      }
    }
    tokens.push_back(std::move(token));
    at = next;
  }
  return tokens;
}

std::string sub_path(const std::string& table, const std::string& key) {
  return table.empty() ? key : table + "." + key;
}

// Whether `value` is what the key holds when nobody writes it: for a runner table (data.augment
// too, although `augment = true` is its short form), every key of it at its default; else the
// key's declared default.
bool is_declared_default(const KeyInfo& key, const std::string& path, const nlohmann::json& value) {
  const TableInfo* table = find_stage_table(path);
  if (!table || !value.is_object()) {
    return key.spec.default_value && value == to_json(*key.spec.default_value);
  }
  for (const auto& [name, item] : value.items()) {
    const KeyInfo* inner = table->find(name);
    if (!inner || !is_declared_default(*inner, sub_path(path, name), item)) return false;
  }
  return true;
}

// A plugin parameter the recorded configuration lacks, at the default the plugin now declares:
// the plugin gained it since, and runs before had what its default does.
bool is_added_plugin_default(const nlohmann::json& change, const nlohmann::json& plugin_defaults) {
  if (change["op"] != "add") return false;
  const nlohmann::json::json_pointer at(change["path"].get<std::string>());
  return plugin_defaults.contains(at) && plugin_defaults.at(at) == change["value"];
}

// Whether one difference found by json::diff leaves the training as it was.
bool is_harmless(const nlohmann::json& change, const nlohmann::json& plugin_defaults) {
  const std::vector<std::string> tokens = pointer_tokens(change["path"].get<std::string>());
  std::string table_path;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const TableInfo* table = find_stage_table(table_path);
    const KeyInfo* key = table ? table->find(tokens[i]) : nullptr;
    // Not a runner key (a plugin parameter, a strategy's table): compared as written.
    if (!key) return is_added_plugin_default(change, plugin_defaults);
    const std::string path = sub_path(table_path, tokens[i]);
    const bool last = i + 1 == tokens.size();
    if (!last && find_stage_table(path)) {
      table_path = path;
      continue;
    }
    if (!key->affects_training) return true;
    // A key exprun added after the checkpoint was written, at the value every run before had.
    return last && change["op"] == "add" && is_declared_default(*key, path, change["value"]);
  }
  return false;
}

}  // namespace

std::vector<std::string> resume_config_differences(const nlohmann::json& written,
                                                   const nlohmann::json& current,
                                                   const nlohmann::json& plugin_defaults) {
  std::vector<std::string> paths;
  for (const auto& change : nlohmann::json::diff(written, current))
    if (!is_harmless(change, plugin_defaults)) paths.push_back(change["path"].get<std::string>());
  return paths;
}

}  // namespace exprun

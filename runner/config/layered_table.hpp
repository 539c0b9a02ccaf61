// A TOML table seen through layers (overrides, stage, defaults): the first layer holding a key
// decides its value, and where that value is a table, the tables under the same key in the
// layers below merge into it key by key. Nodes are never copied, because TOML++ drops source
// positions on copy and every error must name the file and line a value came from.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <vector>

namespace exprun {

class LayeredTable {
 public:
  LayeredTable() = default;
  // layers: highest priority first; null entries are skipped.
  LayeredTable(std::vector<const toml::table*> layers, std::string path);

  bool empty() const;
  // Union of the keys of all layers, sorted.
  std::vector<std::string> keys() const;
  // The deciding node for `key`, or null.
  const toml::node* find(const std::string& key) const;
  // The merged table under `key`; empty when absent. The caller checks find(key)->is_table().
  LayeredTable sub_table(const std::string& key) const;

  // "stages.finetune.optimizer"
  const std::string& path() const { return path_; }
  std::string key_path(const std::string& key) const;
  // Where the table itself was written, for errors about keys that are missing. A table that
  // no layer holds answers with where its parent was written, so that an error about a
  // missing table still points into the file.
  toml::source_region where() const;

 private:
  std::vector<const toml::table*> layers_;
  std::string path_;
  toml::source_region parent_where_;
};

}  // namespace exprun

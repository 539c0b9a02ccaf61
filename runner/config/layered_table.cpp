#include "config/layered_table.hpp"

#include <set>

namespace exprun {

LayeredTable::LayeredTable(std::vector<const toml::table*> layers, std::string path)
    : path_(std::move(path)) {
  for (const auto* layer : layers)
    if (layer) layers_.push_back(layer);
}

bool LayeredTable::empty() const {
  for (const auto* layer : layers_)
    if (!layer->empty()) return false;
  return true;
}

std::vector<std::string> LayeredTable::keys() const {
  std::set<std::string> keys;
  for (const auto* layer : layers_)
    for (const auto& [key, node] : *layer) keys.insert(std::string(key.str()));
  return {keys.begin(), keys.end()};
}

const toml::node* LayeredTable::find(const std::string& key) const {
  for (const auto* layer : layers_)
    if (const toml::node* node = layer->get(key)) return node;
  return nullptr;
}

LayeredTable LayeredTable::sub_table(const std::string& key) const {
  std::vector<const toml::table*> subs;
  for (const auto* layer : layers_) {
    const toml::node* node = layer->get(key);
    if (!node) continue;
    // A non-table value hides whatever the lower layers had under this key.
    if (!node->is_table()) break;
    subs.push_back(node->as_table());
  }
  LayeredTable sub(std::move(subs), key_path(key));
  sub.parent_where_ = where();
  return sub;
}

std::string LayeredTable::key_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

toml::source_region LayeredTable::where() const {
  // Prefer a layer that came from a file: an override's position says little.
  for (const auto* layer : layers_) {
    const auto& source = layer->source();
    if (source.path && source.begin.line > 0 && source.path->rfind("--set", 0) != 0) return source;
  }
  if (parent_where_.path) return parent_where_;
  return layers_.empty() ? toml::source_region{} : layers_.front()->source();
}

}  // namespace exprun

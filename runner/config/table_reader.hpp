// Typed, checked reads from a LayeredTable. Every accessor marks its key as known, so that
// reject_unknown() can name any key nobody asked for, with the closest known spelling.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/layered_table.hpp"

namespace exprun {

class TableReader {
 public:
  explicit TableReader(LayeredTable table) : table_(std::move(table)) {}

  static constexpr double kNoMin = -std::numeric_limits<double>::infinity();
  static constexpr double kNoMax = std::numeric_limits<double>::infinity();

  bool has(const std::string& key) const { return table_.find(key) != nullptr; }

  std::int64_t int_or(const std::string& key, std::int64_t fallback, double min = kNoMin,
                      double max = kNoMax);
  std::int64_t required_int(const std::string& key, double min = kNoMin, double max = kNoMax);
  double number_or(const std::string& key, double fallback, double min = kNoMin,
                   double max = kNoMax);
  double required_number(const std::string& key, double min = kNoMin, double max = kNoMax);
  bool bool_or(const std::string& key, bool fallback);
  std::string string_or(const std::string& key, const std::string& fallback,
                        const std::vector<std::string>& choices = {});
  std::string required_string(const std::string& key, const std::vector<std::string>& choices = {});
  std::vector<std::string> string_list_or(const std::string& key,
                                          const std::vector<std::string>& fallback);
  std::vector<std::int64_t> int_list_or(const std::string& key,
                                        const std::vector<std::int64_t>& fallback,
                                        std::optional<std::size_t> length, double min = kNoMin,
                                        double max = kNoMax);
  std::vector<double> number_list_or(const std::string& key, const std::vector<double>& fallback,
                                     std::optional<std::size_t> length, double min = kNoMin);
  // The merged sub-table; empty when absent; an error when the key holds something else.
  LayeredTable table(const std::string& key);
  // The raw deciding node (null when absent), marking the key as known.
  const toml::node* take(const std::string& key);
  // Marks keys as known without reading them (read elsewhere, e.g. by a plugin schema).
  void allow(const std::vector<std::string>& keys);

  // Keys present but not taken or allowed.
  std::vector<std::string> unread() const;
  // Throws on the first unknown key; suggestions come from every key taken or allowed,
  // plus `also_known` (keys valid here that this table happens not to hold).
  void reject_unknown(const std::vector<std::string>& also_known = {}) const;

  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  const LayeredTable& layered() const { return table_; }
  std::string key_path(const std::string& key) const { return table_.key_path(key); }

 private:
  const toml::node* node_for(const std::string& key);
  [[noreturn]] void fail_type(const std::string& key, const toml::node& node,
                              const std::string& expected) const;
  LayeredTable table_;
  std::set<std::string> known_;
};

// "a number >= 0", "an integer in [1, 64]": the expectation part of an error.
std::string range_phrase(double min, double max);

}  // namespace exprun

#include "config/table_reader.hpp"

#include <cmath>
#include <sstream>

#include "config/config_error.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

bool in_range(double v, double min, double max) { return std::isfinite(v) && v >= min && v <= max; }

std::string quoted_choices(const std::vector<std::string>& choices) {
  std::vector<std::string> q;
  for (const auto& c : choices) q.push_back("\"" + c + "\"");
  return join(q, ", ");
}

}  // namespace

std::string range_phrase(double min, double max) {
  const bool has_min = std::isfinite(min), has_max = std::isfinite(max);
  if (has_min && has_max) return " in [" + format_number(min) + ", " + format_number(max) + "]";
  if (has_min) return " >= " + format_number(min);
  if (has_max) return " <= " + format_number(max);
  return "";
}

const toml::node* TableReader::node_for(const std::string& key) {
  known_.insert(key);
  return table_.find(key);
}

const toml::node* TableReader::take(const std::string& key) { return node_for(key); }

void TableReader::allow(const std::vector<std::string>& keys) {
  known_.insert(keys.begin(), keys.end());
}

void TableReader::fail(const std::string& key, const std::string& message) const {
  const toml::node* node = table_.find(key);
  fail_at(node ? node->source() : table_.where(), table_.key_path(key), message);
}

void TableReader::fail_type(const std::string& key, const toml::node& node,
                            const std::string& expected) const {
  fail_at(node.source(), table_.key_path(key),
          "expected " + expected + ", found " + describe_node(node));
}

std::int64_t TableReader::int_or(const std::string& key, std::int64_t fallback, double min,
                                 double max) {
  const toml::node* node = node_for(key);
  if (!node) return fallback;
  const std::string expected = "an integer" + range_phrase(min, max);
  if (!node->is_integer()) fail_type(key, *node, expected);
  const std::int64_t v = node->as_integer()->get();
  if (!in_range(static_cast<double>(v), min, max)) fail_type(key, *node, expected);
  return v;
}

std::int64_t TableReader::required_int(const std::string& key, double min, double max) {
  if (!has(key)) fail(key, "missing required key (an integer" + range_phrase(min, max) + ")");
  return int_or(key, 0, min, max);
}

double TableReader::number_or(const std::string& key, double fallback, double min, double max) {
  const toml::node* node = node_for(key);
  if (!node) return fallback;
  const std::string expected = "a number" + range_phrase(min, max);
  double v = 0;
  if (node->is_integer()) {
    v = static_cast<double>(node->as_integer()->get());
  } else if (node->is_floating_point()) {
    v = node->as_floating_point()->get();
  } else {
    fail_type(key, *node, expected);
  }
  if (!in_range(v, min, max)) fail_type(key, *node, expected);
  return v;
}

double TableReader::required_number(const std::string& key, double min, double max) {
  if (!has(key)) fail(key, "missing required key (a number" + range_phrase(min, max) + ")");
  return number_or(key, 0, min, max);
}

bool TableReader::bool_or(const std::string& key, bool fallback) {
  const toml::node* node = node_for(key);
  if (!node) return fallback;
  if (!node->is_boolean()) fail_type(key, *node, "true or false");
  return node->as_boolean()->get();
}

std::string TableReader::string_or(const std::string& key, const std::string& fallback,
                                   const std::vector<std::string>& choices) {
  const toml::node* node = node_for(key);
  if (!node) return fallback;
  const std::string expected = choices.empty() ? "a string" : "one of " + quoted_choices(choices);
  if (!node->is_string()) fail_type(key, *node, expected);
  std::string v(node->as_string()->get());
  if (!choices.empty()) {
    bool ok = false;
    for (const auto& c : choices) ok = ok || c == v;
    if (!ok) {
      fail_at(node->source(), table_.key_path(key),
              "expected " + expected + ", found \"" + v + "\"" + did_you_mean(v, choices));
    }
  }
  return v;
}

std::string TableReader::required_string(const std::string& key,
                                         const std::vector<std::string>& choices) {
  if (!has(key)) {
    fail(key,
         "missing required key (" +
             (choices.empty() ? std::string("a string") : "one of " + quoted_choices(choices)) +
             ")");
  }
  return string_or(key, "", choices);
}

std::vector<std::string> TableReader::string_list_or(const std::string& key,
                                                     const std::vector<std::string>& fallback) {
  const toml::node* node = node_for(key);
  if (!node) return fallback;
  if (!node->is_array()) fail_type(key, *node, "a list of strings");
  std::vector<std::string> out;
  for (const auto& item : *node->as_array()) {
    if (!item.is_string()) fail_type(key, item, "a string in the list");
    out.emplace_back(item.as_string()->get());
  }
  return out;
}

std::vector<std::int64_t> TableReader::int_list_or(const std::string& key,
                                                   const std::vector<std::int64_t>& fallback,
                                                   std::optional<std::size_t> length, double min,
                                                   double max) {
  const toml::node* node = node_for(key);
  if (!node) return fallback;
  std::string expected = "a list of ";
  if (length) expected += std::to_string(*length) + " ";
  expected += "integers" + range_phrase(min, max);
  if (!node->is_array()) fail_type(key, *node, expected);
  const auto& array = *node->as_array();
  if (length && array.size() != *length) fail_type(key, *node, expected);
  std::vector<std::int64_t> out;
  for (const auto& item : array) {
    if (!item.is_integer() || !in_range(static_cast<double>(item.as_integer()->get()), min, max))
      fail_type(key, *node, expected);
    out.push_back(item.as_integer()->get());
  }
  return out;
}

std::vector<double> TableReader::number_list_or(const std::string& key,
                                                const std::vector<double>& fallback,
                                                std::optional<std::size_t> length, double min) {
  const toml::node* node = node_for(key);
  if (!node) return fallback;
  std::string expected = "a list of ";
  if (length) expected += std::to_string(*length) + " ";
  expected += "numbers" + range_phrase(min, kNoMax);
  if (!node->is_array()) fail_type(key, *node, expected);
  const auto& array = *node->as_array();
  if (length && array.size() != *length) fail_type(key, *node, expected);
  std::vector<double> out;
  for (const auto& item : array) {
    double v = 0;
    if (item.is_integer()) {
      v = static_cast<double>(item.as_integer()->get());
    } else if (item.is_floating_point()) {
      v = item.as_floating_point()->get();
    } else {
      fail_type(key, *node, expected);
    }
    if (!in_range(v, min, kNoMax)) fail_type(key, *node, expected);
    out.push_back(v);
  }
  return out;
}

LayeredTable TableReader::table(const std::string& key) {
  const toml::node* node = node_for(key);
  if (node && !node->is_table()) fail_type(key, *node, "a table");
  return table_.sub_table(key);
}

std::vector<std::string> TableReader::unread() const {
  std::vector<std::string> out;
  for (const auto& key : table_.keys())
    if (!known_.count(key)) out.push_back(key);
  return out;
}

void TableReader::reject_unknown(const std::vector<std::string>& also_known) const {
  const auto unknown = unread();
  if (unknown.empty()) return;
  std::vector<std::string> candidates(known_.begin(), known_.end());
  candidates.insert(candidates.end(), also_known.begin(), also_known.end());
  const std::string& key = unknown.front();
  const std::string where = table_.path().empty() ? "the top level" : "'" + table_.path() + "'";
  fail(key, "unknown key '" + key + "' in " + where + did_you_mean(key, candidates));
}

}  // namespace exprun

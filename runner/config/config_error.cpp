#include "config/config_error.hpp"

#include <sstream>

#include "config/names.hpp"

namespace exprun {
namespace {

constexpr std::size_t kItemsShown = 8;
constexpr int kLevelsShown = 4;
constexpr std::size_t kStringShown = 200;

// A value on one line (TOML++ lays long arrays out over several), cut short when it is long
// or deep, so that an error stays one readable line.
void write_inline(std::ostream& out, const toml::node& node, int level) {
  const auto* array = node.as_array();
  const auto* table = node.as_table();
  if ((array || table) && level >= kLevelsShown) {
    out << (array ? "[...]" : "{...}");
  } else if (array) {
    if (array->empty()) {
      out << "[]";
      return;
    }
    out << "[ ";
    for (std::size_t i = 0; i < array->size() && i < kItemsShown; ++i) {
      if (i) out << ", ";
      write_inline(out, *array->get(i), level + 1);
    }
    if (array->size() > kItemsShown) out << ", ... (" << array->size() << " items)";
    out << " ]";
  } else if (table) {
    if (table->empty()) {
      out << "{}";
      return;
    }
    out << "{ ";
    std::size_t i = 0;
    for (const auto& [key, value] : *table) {
      if (i == kItemsShown) {
        out << ", ... (" << table->size() << " keys)";
        break;
      }
      if (i++) out << ", ";
      const std::string name(key.str());
      out << (is_stage_name(name) ? name : quote_for_message(name, 40)) << " = ";
      write_inline(out, value, level + 1);
    }
    out << " }";
  } else if (const auto* text = node.as_string()) {
    out << quote_for_message(std::string(text->get()), kStringShown);
  } else {
    // Numbers, booleans, dates: TOML++ writes them in TOML syntax, on one line.
    node.visit([&](const auto& value) { out << value; });
  }
}

}  // namespace

std::string describe_source(const toml::source_region& where) {
  std::string file = where.path ? *where.path : std::string("<input>");
  // Overrides are parsed from a one-line document named after the --set argument, so a
  // line number would only confuse.
  if (file.rfind("--set", 0) == 0) return file;
  return file + ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column);
}

void fail_at(const toml::source_region& where, const std::string& key_path,
             const std::string& message) {
  std::string text = describe_source(where) + ": ";
  if (!key_path.empty()) text += key_path + ": ";
  throw ConfigError(text + message);
}

std::string describe_node(const toml::node& node) {
  std::ostringstream out;
  switch (node.type()) {
    case toml::node_type::string:
      out << "string ";
      write_inline(out, node, 0);
      break;
    case toml::node_type::integer:
      out << "integer " << node.as_integer()->get();
      break;
    case toml::node_type::floating_point:
      out << "number " << node.as_floating_point()->get();
      break;
    case toml::node_type::boolean:
      out << "boolean " << (node.as_boolean()->get() ? "true" : "false");
      break;
    case toml::node_type::array:
      out << "array ";
      write_inline(out, node, 0);
      break;
    case toml::node_type::table:
      out << "table";
      break;
    default:
      out << "date/time value";
      break;
  }
  return out.str();
}

}  // namespace exprun

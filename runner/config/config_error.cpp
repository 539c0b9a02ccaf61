#include "config/config_error.hpp"

#include <sstream>

namespace exprun {

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
      out << "string \"" << node.as_string()->get() << "\"";
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
      out << "array " << *node.as_array();
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

#include "config/plugin_table_reader.hpp"

#include <map>

#include "config/config_error.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

// A TOML value as a plugin parameter; the spec check that follows decides if it is right.
std::optional<sdk::ParamValue> to_param_value(const toml::node& node) {
  if (node.is_boolean()) return sdk::ParamValue(node.as_boolean()->get());
  if (node.is_integer()) return sdk::ParamValue(node.as_integer()->get());
  if (node.is_floating_point()) return sdk::ParamValue(node.as_floating_point()->get());
  if (node.is_string()) return sdk::ParamValue(std::string(node.as_string()->get()));
  if (const auto* array = node.as_array()) {
    if (array->empty()) return sdk::ParamValue(std::vector<double>{});
    if (array->is_homogeneous(toml::node_type::integer)) {
      std::vector<std::int64_t> ints;
      for (const auto& item : *array) ints.push_back(item.as_integer()->get());
      return sdk::ParamValue(std::move(ints));
    }
    if (array->is_homogeneous(toml::node_type::string)) {
      std::vector<std::string> strings;
      for (const auto& item : *array) strings.emplace_back(item.as_string()->get());
      return sdk::ParamValue(std::move(strings));
    }
    std::vector<double> numbers;
    for (const auto& item : *array) {
      if (item.is_integer()) {
        numbers.push_back(static_cast<double>(item.as_integer()->get()));
      } else if (item.is_floating_point()) {
        numbers.push_back(item.as_floating_point()->get());
      } else {
        return std::nullopt;
      }
    }
    return sdk::ParamValue(std::move(numbers));
  }
  if (const auto* table = node.as_table()) {
    std::map<std::string, double> map;
    for (const auto& [key, item] : *table) {
      if (item.is_integer()) {
        map[std::string(key.str())] = static_cast<double>(item.as_integer()->get());
      } else if (item.is_floating_point()) {
        map[std::string(key.str())] = item.as_floating_point()->get();
      } else {
        return std::nullopt;
      }
    }
    return sdk::ParamValue(std::move(map));
  }
  return std::nullopt;
}

std::vector<std::string> schema_names(const sdk::ParamSchema& schema) {
  std::vector<std::string> names;
  for (const auto& spec : schema.specs()) names.push_back(spec.name);
  return names;
}

}  // namespace

// Reads the plugin's own parameters: every key of `reader` not yet taken by the runner.
sdk::Params read_plugin_params(TableReader& reader, const sdk::ParamSchema& schema,
                               const std::string& full_name,
                               const std::vector<std::string>& runner_keys) {
  std::map<std::string, sdk::ParamValue> given;
  for (const auto& key : reader.unread()) {
    const sdk::ParamSpec* spec = schema.find(key);
    if (!spec) {
      std::vector<std::string> candidates = schema_names(schema);
      candidates.insert(candidates.end(), runner_keys.begin(), runner_keys.end());
      reader.fail(key, "unknown key '" + key + "': " + full_name + " has no such parameter" +
                           did_you_mean(key, candidates) + " (exprun describe " + full_name +
                           " lists them)");
    }
    const toml::node* node = reader.take(key);
    auto value = to_param_value(*node);
    if (!value) {
      reader.fail(key,
                  "expected " + sdk::type_name(spec->type) + ", found " + describe_node(*node));
    }
    if (auto error = sdk::check_and_convert(*spec, *value)) reader.fail(key, *error);
    given[key] = std::move(*value);
  }
  for (const auto& spec : schema.specs()) {
    if (spec.required() && !given.count(spec.name)) {
      fail_at(reader.layered().where(), reader.layered().path(),
              "missing required parameter '" + spec.name + "' of " + full_name + " (" +
                  sdk::type_name(spec.type) + ": " + spec.doc + ")");
    }
  }
  try {
    return sdk::Params::resolve(schema, std::move(given));
  } catch (const sdk::ParamError& e) {
    fail_at(reader.layered().where(), reader.layered().path(), e.what());
  }
}

std::map<std::string, sdk::ParamValue> declared_defaults(const sdk::ParamSchema& schema) {
  std::map<std::string, sdk::ParamValue> defaults;
  for (const auto& spec : schema.specs()) {
    if (spec.default_value) defaults.emplace(spec.name, *spec.default_value);
  }
  return defaults;
}

PluginChoice read_plugin_table(TableReader& reader, sdk::PluginKind kind,
                               const SchemaSource& plugins,
                               const std::vector<std::string>& runner_keys) {
  PluginChoice choice;
  choice.kind = kind;
  choice.key_path = reader.layered().path();
  choice.where = describe_source(reader.layered().where());
  if (reader.layered().empty()) {
    fail_at(reader.layered().where(), reader.layered().path(),
            "missing required table (needs at least plugin = \"...\"; `exprun plugins " +
                std::string(sdk::kind_folder(kind)) + "` lists the choices)");
  }
  choice.name = reader.required_string("plugin");
  sdk::ParamSchema schema;
  try {
    schema = plugins.schema(kind, choice.name);
  } catch (const std::runtime_error& e) {
    reader.fail("plugin", e.what());
  }
  const std::string full_name = std::string(sdk::kind_folder(kind)) + "/" + choice.name;
  choice.params = read_plugin_params(reader, schema, full_name, runner_keys);
  choice.defaults = declared_defaults(schema);
  return choice;
}

}  // namespace exprun

#include "config/key_declaration.hpp"

#include <cmath>

namespace exprun {
namespace {

// Unbounded sides (TableReader::kNoMin, kNoMax) stay unset, as in a plugin's ParamSpec.
void set_range(sdk::ParamSpec& spec, double min, double max) {
  if (std::isfinite(min)) spec.min = min;
  if (std::isfinite(max)) spec.max = max;
}

}  // namespace

std::string KeyInfo::documented_default() const {
  if (!default_text.empty()) return default_text;
  if (spec.required()) return "—";
  return "`" + sdk::to_string(*spec.default_value) + "`";
}

sdk::ParamSpec int_spec(std::string name, std::optional<std::int64_t> def, double min, double max,
                        std::string doc) {
  sdk::ParamSpec spec;
  spec.name = std::move(name);
  spec.type = sdk::ParamType::Int;
  if (def) spec.default_value = *def;
  spec.doc = std::move(doc);
  set_range(spec, min, max);
  return spec;
}

sdk::ParamSpec number_spec(std::string name, std::optional<double> def, double min, double max,
                           std::string doc) {
  sdk::ParamSpec spec;
  spec.name = std::move(name);
  spec.type = sdk::ParamType::Float;
  if (def) spec.default_value = *def;
  spec.doc = std::move(doc);
  set_range(spec, min, max);
  return spec;
}

sdk::ParamSpec bool_spec(std::string name, bool def, std::string doc) {
  sdk::ParamSpec spec;
  spec.name = std::move(name);
  spec.type = sdk::ParamType::Bool;
  spec.default_value = def;
  spec.doc = std::move(doc);
  return spec;
}

sdk::ParamSpec string_spec(std::string name, std::optional<std::string> def,
                           std::vector<std::string> choices, std::string doc) {
  sdk::ParamSpec spec;
  spec.name = std::move(name);
  spec.type = sdk::ParamType::String;
  if (def) spec.default_value = std::move(*def);
  spec.doc = std::move(doc);
  spec.choices = std::move(choices);
  return spec;
}

sdk::ParamSpec custom_spec(std::string name, sdk::ParamType type,
                           std::optional<sdk::ParamValue> def, std::string doc) {
  sdk::ParamSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.default_value = std::move(def);
  spec.doc = std::move(doc);
  return spec;
}

namespace detail {

double lower(const sdk::ParamSpec& spec) { return spec.min ? *spec.min : TableReader::kNoMin; }
double upper(const sdk::ParamSpec& spec) { return spec.max ? *spec.max : TableReader::kNoMax; }

}  // namespace detail
}  // namespace exprun

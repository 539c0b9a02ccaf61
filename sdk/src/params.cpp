#include "exprun/sdk/params.hpp"

#include <cmath>
#include <sstream>

namespace exprun::sdk {
using FloatMapValue = std::map<std::string, double>;
namespace {

std::string format_number(double v) {
  std::ostringstream out;
  out << v;
  std::string s = out.str();
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

template <typename T, typename F>
std::string join_list(const std::vector<T>& items, F&& fmt) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += fmt(items[i]);
  }
  return out + "]";
}

std::string range_text(const ParamSpec& spec) {
  std::string out;
  if (spec.min && spec.max) {
    out = " in [" + format_number(*spec.min) + ", " + format_number(*spec.max) + "]";
  } else if (spec.min) {
    out = " >= " + format_number(*spec.min);
  } else if (spec.max) {
    out = " <= " + format_number(*spec.max);
  }
  return out;
}

bool in_range(const ParamSpec& spec, double v) {
  return std::isfinite(v) && (!spec.min || v >= *spec.min) && (!spec.max || v <= *spec.max);
}

std::string expected_text(const ParamSpec& spec) {
  std::string out = type_name(spec.type);
  if (spec.length) out += " of length " + std::to_string(*spec.length);
  out += range_text(spec);
  if (!spec.choices.empty()) {
    out += " (one of ";
    for (std::size_t i = 0; i < spec.choices.size(); ++i) {
      if (i) out += ", ";
      out += quoted(spec.choices[i]);
    }
    out += ")";
  }
  return out;
}

std::string found_text(const ParamValue& value) {
  return type_name(type_of(value)) + " " + to_string(value);
}

// Lists arrive from TOML as whatever their elements were; an empty list or a list of
// integers is an acceptable list of numbers.
bool convert_list(ParamType want, ParamValue& value) {
  if (want == ParamType::FloatList) {
    if (auto* ints = std::get_if<std::vector<std::int64_t>>(&value)) {
      std::vector<double> d(ints->begin(), ints->end());
      value = std::move(d);
      return true;
    }
  }
  // An empty TOML array carries no element type; the reader hands it over as an empty list of
  // numbers, and it is an empty list of whatever the parameter wants.
  if (auto* dbl = std::get_if<std::vector<double>>(&value); dbl && dbl->empty()) {
    if (want == ParamType::IntList) value = std::vector<std::int64_t>{};
    if (want == ParamType::StringList) value = std::vector<std::string>{};
  }
  return type_of(value) == want;
}

}  // namespace

std::string type_name(ParamType type) {
  switch (type) {
    case ParamType::Bool:
      return "boolean";
    case ParamType::Int:
      return "integer";
    case ParamType::Float:
      return "number";
    case ParamType::String:
      return "string";
    case ParamType::IntList:
      return "list of integers";
    case ParamType::FloatList:
      return "list of numbers";
    case ParamType::StringList:
      return "list of strings";
    case ParamType::FloatMap:
      return "table of numbers";
  }
  return "value";
}

ParamType type_of(const ParamValue& value) {
  return std::visit(
      [](const auto& v) -> ParamType {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) return ParamType::Bool;
        if constexpr (std::is_same_v<T, std::int64_t>) return ParamType::Int;
        if constexpr (std::is_same_v<T, double>) return ParamType::Float;
        if constexpr (std::is_same_v<T, std::string>) return ParamType::String;
        if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) return ParamType::IntList;
        if constexpr (std::is_same_v<T, std::vector<double>>) return ParamType::FloatList;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) return ParamType::StringList;
        if constexpr (std::is_same_v<T, std::map<std::string, double>>) return ParamType::FloatMap;
      },
      value);
}

std::string to_string(const ParamValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, double>) {
          return format_number(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return quoted(v);
        } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
          return join_list(v, [](std::int64_t i) { return std::to_string(i); });
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          return join_list(v, format_number);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return join_list(v, quoted);
        } else {
          std::string out = "{";
          bool first = true;
          for (const auto& [k, d] : v) {
            out += first ? " " : ", ";
            out += k + " = " + format_number(d);
            first = false;
          }
          return out + (v.empty() ? "}" : " }");
        }
      },
      value);
}

std::optional<std::string> check_and_convert(const ParamSpec& spec, ParamValue& value) {
  const auto fail = [&]() -> std::optional<std::string> {
    return "expected " + expected_text(spec) + ", found " + found_text(value);
  };
  switch (spec.type) {
    case ParamType::Float:
      if (auto* i = std::get_if<std::int64_t>(&value)) value = static_cast<double>(*i);
      if (!std::holds_alternative<double>(value) || !in_range(spec, std::get<double>(value)))
        return fail();
      return std::nullopt;
    case ParamType::Int:
      if (!std::holds_alternative<std::int64_t>(value) ||
          !in_range(spec, static_cast<double>(std::get<std::int64_t>(value))))
        return fail();
      return std::nullopt;
    case ParamType::Bool:
      if (!std::holds_alternative<bool>(value)) return fail();
      return std::nullopt;
    case ParamType::String:
      if (!std::holds_alternative<std::string>(value)) return fail();
      if (!spec.choices.empty()) {
        const auto& s = std::get<std::string>(value);
        bool ok = false;
        for (const auto& c : spec.choices) ok = ok || c == s;
        if (!ok) return fail();
      }
      return std::nullopt;
    case ParamType::IntList:
    case ParamType::FloatList:
    case ParamType::StringList: {
      if (!convert_list(spec.type, value)) return fail();
      std::size_t n = 0;
      bool ranges_ok = true;
      if (auto* ints = std::get_if<std::vector<std::int64_t>>(&value)) {
        n = ints->size();
        for (auto i : *ints) ranges_ok = ranges_ok && in_range(spec, static_cast<double>(i));
      } else if (auto* dbl = std::get_if<std::vector<double>>(&value)) {
        n = dbl->size();
        for (auto d : *dbl) ranges_ok = ranges_ok && in_range(spec, d);
      } else {
        n = std::get<std::vector<std::string>>(value).size();
      }
      if (!ranges_ok || (spec.length && n != *spec.length)) return fail();
      return std::nullopt;
    }
    case ParamType::FloatMap: {
      auto* map = std::get_if<std::map<std::string, double>>(&value);
      if (!map) return fail();
      for (const auto& [k, d] : *map)
        if (!in_range(spec, d)) return fail();
      return std::nullopt;
    }
  }
  return fail();
}

ParamSchema& ParamSchema::add(ParamSpec spec) {
  specs_.push_back(std::move(spec));
  return *this;
}

#define EXPRUN_ADD_TYPED(METHOD, CPP_TYPE, PARAM_TYPE)                            \
  ParamSchema& ParamSchema::METHOD(std::string name, std::optional<CPP_TYPE> def, \
                                   std::string doc) {                             \
    ParamSpec spec;                                                               \
    spec.name = std::move(name);                                                  \
    spec.type = PARAM_TYPE;                                                       \
    if (def) spec.default_value = ParamValue(std::move(*def));                    \
    spec.doc = std::move(doc);                                                    \
    return add(std::move(spec));                                                  \
  }
EXPRUN_ADD_TYPED(add_bool, bool, ParamType::Bool)
EXPRUN_ADD_TYPED(add_int, std::int64_t, ParamType::Int)
EXPRUN_ADD_TYPED(add_float, double, ParamType::Float)
EXPRUN_ADD_TYPED(add_string, std::string, ParamType::String)
EXPRUN_ADD_TYPED(add_int_list, std::vector<std::int64_t>, ParamType::IntList)
EXPRUN_ADD_TYPED(add_float_list, std::vector<double>, ParamType::FloatList)
EXPRUN_ADD_TYPED(add_string_list, std::vector<std::string>, ParamType::StringList)
EXPRUN_ADD_TYPED(add_float_map, FloatMapValue, ParamType::FloatMap)
#undef EXPRUN_ADD_TYPED

ParamSpec& ParamSchema::last() {
  if (specs_.empty()) throw ParamError("ParamSchema: a constraint was added before any parameter");
  return specs_.back();
}
ParamSchema& ParamSchema::min(double v) {
  last().min = v;
  return *this;
}
ParamSchema& ParamSchema::max(double v) {
  last().max = v;
  return *this;
}
ParamSchema& ParamSchema::choices(std::vector<std::string> allowed) {
  last().choices = std::move(allowed);
  return *this;
}
ParamSchema& ParamSchema::length(std::size_t n) {
  last().length = n;
  return *this;
}

const ParamSpec* ParamSchema::find(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

Params Params::resolve(const ParamSchema& schema, std::map<std::string, ParamValue> given) {
  std::map<std::string, ParamValue> out;
  for (auto& [name, value] : given) {
    const ParamSpec* spec = schema.find(name);
    if (!spec) throw ParamError("unknown parameter '" + name + "'");
    if (auto err = check_and_convert(*spec, value)) throw ParamError(name + ": " + *err);
    out[name] = std::move(value);
  }
  for (const auto& spec : schema.specs()) {
    if (out.count(spec.name)) continue;
    if (spec.required())
      throw ParamError("missing required parameter '" + spec.name + "' (" + type_name(spec.type) +
                       ": " + spec.doc + ")");
    out[spec.name] = *spec.default_value;
  }
  return Params(std::move(out));
}

const ParamValue& Params::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw ParamError("parameter '" + name + "' was not declared");
  return it->second;
}

template <typename T>
const T& Params::get_as(const std::string& name) const {
  const ParamValue& v = get(name);
  if (const T* typed = std::get_if<T>(&v)) return *typed;
  throw ParamError("parameter '" + name + "' holds a " + type_name(type_of(v)) +
                   ", not the type the plugin asked for");
}

bool Params::get_bool(const std::string& name) const { return get_as<bool>(name); }
std::int64_t Params::get_int(const std::string& name) const { return get_as<std::int64_t>(name); }
double Params::get_float(const std::string& name) const {
  const ParamValue& v = get(name);
  if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return get_as<double>(name);
}
const std::string& Params::get_string(const std::string& name) const {
  return get_as<std::string>(name);
}
const std::vector<std::int64_t>& Params::get_int_list(const std::string& name) const {
  return get_as<std::vector<std::int64_t>>(name);
}
const std::vector<double>& Params::get_float_list(const std::string& name) const {
  return get_as<std::vector<double>>(name);
}
const std::vector<std::string>& Params::get_string_list(const std::string& name) const {
  return get_as<std::vector<std::string>>(name);
}
const std::map<std::string, double>& Params::get_float_map(const std::string& name) const {
  return get_as<std::map<std::string, double>>(name);
}

}  // namespace exprun::sdk

// Typed plugin parameters: each plugin declares a schema (name, type, default, one-line doc),
// the runner checks what the experiment wrote against it and hands the plugin resolved Params.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace exprun::sdk {

enum class ParamType { Bool, Int, Float, String, IntList, FloatList, StringList, FloatMap };

using ParamValue =
    std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>,
                 std::vector<double>, std::vector<std::string>, std::map<std::string, double>>;

// "integer", "list of numbers", ... as a user would read it in an error message.
std::string type_name(ParamType type);
// The ParamType a value currently holds.
ParamType type_of(const ParamValue& value);
// A TOML-like rendering of a value: 3, 0.5, "cosine", [1, 2], { Go = 3.0 }.
std::string to_string(const ParamValue& value);

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::Float;
  std::optional<ParamValue> default_value;  // absent: the parameter is required
  std::string doc;
  std::optional<double> min;  // for numbers and every element of number lists
  std::optional<double> max;
  std::vector<std::string> choices;   // for strings; empty means any string
  std::optional<std::size_t> length;  // for lists of fixed length

  bool required() const { return !default_value.has_value(); }
};

// Checks `value` against `spec`, converting where the conversion loses nothing (an integer
// where a number is expected, [1, 2] where a list of numbers is expected). Returns an error
// text ("expected a number >= 0, found -1") or nothing when the value is acceptable.
std::optional<std::string> check_and_convert(const ParamSpec& spec, ParamValue& value);

// A plugin's declared parameters, built fluently:
//   ParamSchema().add_float("alpha", 2.1, "exponent ...").min(0)
class ParamSchema {
 public:
  ParamSchema& add(ParamSpec spec);
  ParamSchema& add_bool(std::string name, std::optional<bool> def, std::string doc);
  ParamSchema& add_int(std::string name, std::optional<std::int64_t> def, std::string doc);
  ParamSchema& add_float(std::string name, std::optional<double> def, std::string doc);
  ParamSchema& add_string(std::string name, std::optional<std::string> def, std::string doc);
  ParamSchema& add_int_list(std::string name, std::optional<std::vector<std::int64_t>> def,
                            std::string doc);
  ParamSchema& add_float_list(std::string name, std::optional<std::vector<double>> def,
                              std::string doc);
  ParamSchema& add_string_list(std::string name, std::optional<std::vector<std::string>> def,
                               std::string doc);
  ParamSchema& add_float_map(std::string name, std::optional<std::map<std::string, double>> def,
                             std::string doc);
  // Constraints on the parameter added last.
  ParamSchema& min(double v);
  ParamSchema& max(double v);
  ParamSchema& choices(std::vector<std::string> allowed);
  ParamSchema& length(std::size_t n);

  const std::vector<ParamSpec>& specs() const { return specs_; }
  const ParamSpec* find(const std::string& name) const;

 private:
  ParamSpec& last();
  std::vector<ParamSpec> specs_;
};

class ParamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Resolved parameters as a plugin receives them: every declared parameter is present, with
// the type its spec declares, so the getters only fail on a plugin's own programming error.
class Params {
 public:
  Params() = default;
  explicit Params(std::map<std::string, ParamValue> values) : values_(std::move(values)) {}

  // Fills defaults and checks every value; throws ParamError naming the key on a bad value,
  // a missing required parameter or an undeclared one.
  static Params resolve(const ParamSchema& schema, std::map<std::string, ParamValue> given);

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  const ParamValue& get(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  std::int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  const std::vector<std::int64_t>& get_int_list(const std::string& name) const;
  const std::vector<double>& get_float_list(const std::string& name) const;
  const std::vector<std::string>& get_string_list(const std::string& name) const;
  const std::map<std::string, double>& get_float_map(const std::string& name) const;

  const std::map<std::string, ParamValue>& values() const { return values_; }
  void set(const std::string& name, ParamValue value) { values_[name] = std::move(value); }

 private:
  template <typename T>
  const T& get_as(const std::string& name) const;
  std::map<std::string, ParamValue> values_;
};

}  // namespace exprun::sdk

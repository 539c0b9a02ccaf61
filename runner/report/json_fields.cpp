#include "report/json_fields.hpp"

#include "config/config_error.hpp"

namespace exprun {
namespace {

using json = nlohmann::json;

const char* name_of(JsonType type) {
  switch (type) {
    case JsonType::kString:
      return "a string";
    case JsonType::kNumber:
      return "a number";
    case JsonType::kObject:
      return "an object";
    case JsonType::kArray:
      return "an array";
  }
  return "?";
}

bool has_type(const json& value, JsonType type) {
  switch (type) {
    case JsonType::kString:
      return value.is_string();
    case JsonType::kNumber:
      return value.is_number();
    case JsonType::kObject:
      return value.is_object();
    case JsonType::kArray:
      return value.is_array();
  }
  return false;
}

// `string "abc"`, `an array of 3`, `number 4`: enough to recognise the value, one short line.
std::string describe(const json& value) {
  if (value.is_null()) return "null";
  if (value.is_object()) return "an object";
  if (value.is_array()) return "an array of " + std::to_string(value.size());
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 40) + "...";
  return std::string(value.type_name()) + " " + text;
}

}  // namespace

const json* JsonFields::member(const json& parent, const Pointer& at, const std::string& key,
                               JsonType type, bool nullable) const {
  if (!parent.is_object()) return nullptr;
  const auto it = parent.find(key);
  if (it == parent.end()) return nullptr;
  if (nullable && it->is_null()) return nullptr;
  expect(*it, at / key, type, nullable);
  return &*it;
}

const json& JsonFields::required(const json& parent, const Pointer& at, const std::string& key,
                                 JsonType type) const {
  expect(parent, at, JsonType::kObject);
  const auto it = parent.find(key);
  if (it == parent.end()) fail(at / key, name_of(type), "nothing");
  expect(*it, at / key, type);
  return *it;
}

void JsonFields::expect(const json& value, const Pointer& at, JsonType type, bool nullable) const {
  if (has_type(value, type) || (nullable && value.is_null())) return;
  fail(at, std::string(name_of(type)) + (nullable ? " or null" : ""), describe(value));
}

void JsonFields::fail(const Pointer& at, const std::string& expected,
                      const std::string& found) const {
  // The empty pointer is the document itself, which would otherwise print as nothing.
  const std::string where = at.empty() ? "(the whole document)" : at.to_string();
  throw ConfigError(file_.string() + ": " + where + ": expected " + expected + ", found " + found);
}

}  // namespace exprun

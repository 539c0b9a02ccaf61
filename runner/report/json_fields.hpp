// Type checks on the fields of a JSON document that exprun wrote and a user may have edited or
// damaged (report.json, sweep.json). A wrong field is refused with the file, the field's JSON
// pointer and what was expected, so that the code reading the document afterwards can rely on
// it instead of failing with a library message. Used by `exprun compare` (compare/report_fields)
// and by `run --resume` (run/resume), which check different fields of the same reports.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace exprun {

enum class JsonType { kString, kNumber, kObject, kArray };

// Every check throws ConfigError "<file>: <pointer>: expected <type>, found <what>", e.g.
// "runs/e/r1/report.json: /stages/0/status: expected a string, found number 3".
class JsonFields {
 public:
  using Pointer = nlohmann::json::json_pointer;

  explicit JsonFields(std::filesystem::path file) : file_(std::move(file)) {}

  // The member `key` of `parent` (which lies at `at`) when `parent` is an object that has it
  // and, where null is allowed, it is not null; nullptr otherwise. Throws when it has another
  // type.
  const nlohmann::json* member(const nlohmann::json& parent, const Pointer& at,
                               const std::string& key, JsonType type, bool nullable = false) const;

  // The same for a member that must be there: also throws when `parent` is not an object
  // ("expected an object") or lacks `key` ("expected <type>, found nothing").
  const nlohmann::json& required(const nlohmann::json& parent, const Pointer& at,
                                 const std::string& key, JsonType type) const;

  // Throws unless `value` (found at `at`) has the type, or is null where that is allowed.
  void expect(const nlohmann::json& value, const Pointer& at, JsonType type,
              bool nullable = false) const;

 private:
  [[noreturn]] void fail(const Pointer& at, const std::string& expected,
                         const std::string& found) const;

  std::filesystem::path file_;
};

}  // namespace exprun

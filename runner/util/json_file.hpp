// Reading JSON that a user can hand us (report.json, sweep.json, the JSON inside a checkpoint).
// nlohmann's parser itself is iterative, but copying, comparing and printing a document recurse
// once per level, so a file nested tens of thousands of levels deep would overflow the stack long
// after it was read; the depth is therefore bounded while parsing. Every error is one line that
// starts with where the text came from, and where the location is known, its line and column.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace exprun {

// Far above anything exprun writes (a report nests about ten levels) and far below what the
// stack can hold.
inline constexpr std::size_t kMaxJsonDepth = 256;

class JsonInputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses `text`; `source` names it in errors ("runs/x/report.json", "checkpoint a.pt: its
// stage config"). Throws JsonInputError "<source>:<line>:<column>: not valid JSON: ...", ": nested
// deeper than 256 levels ..." or ": <pointer>: number 1e400 is out of range ...".
nlohmann::json parse_json_text(const std::string& text, const std::string& source,
                               std::size_t max_depth = kMaxJsonDepth);

// The same for a whole file; also throws JsonInputError "<file>: no such file", "...: is a
// directory, expected a JSON file" and "...: cannot be read".
nlohmann::json read_json_file(const std::filesystem::path& file,
                              std::size_t max_depth = kMaxJsonDepth);

// `value` as exprun writes it to a file: indented by 2, ending in a newline. A string that is
// not valid UTF-8 (a file name in another encoding, which ends up in a report as an image's
// id) is written with U+FFFD in place of its bad bytes: failing instead would lose the whole
// report after the work that made it.
template <class Json>
std::string json_file_text(const Json& value) {
  return value.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace exprun

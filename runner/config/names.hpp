// Names the user writes that become folders (experiment and stage names). They must be plain
// path components, and a stage name must also be addressable as `--set stages.NAME.key` and
// `init = "NAME:best"`, so each kind has one rule, checked by hand rather than by std::regex
// (whose recursive matcher overflows the stack on very long input).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace exprun {

inline constexpr std::size_t kMaxNameLength = 64;

// Letters, digits, '_' and '-', 1 to 64 characters: a TOML bare key, so --set can address it.
bool is_stage_name(const std::string& name);
// Letters, digits, '_', '-' and '.', not starting with '.', 1 to 64 characters.
bool is_experiment_name(const std::string& name);

// The rule as an error message states it: "1 to 64 letters, digits, '_' or '-' (...)".
std::string stage_name_rule();
std::string experiment_name_rule();

// A name for an error message: quoted, control characters escaped, long ones cut short
// ("abc..." (100000 characters); the count left out when say_length is false).
std::string quote_for_message(const std::string& text, std::size_t keep = 48,
                              bool say_length = true);

// The same without the quotes and the count: at most `keep` bytes of `text`, cut at a
// character boundary (never inside a UTF-8 sequence) and followed by "..." when cut.
std::string shorten_for_message(const std::string& text, std::size_t keep);

}  // namespace exprun

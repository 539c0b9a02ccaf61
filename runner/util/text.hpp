// Small text helpers shared by error messages across the runner.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace exprun {

// Levenshtein distance; used to suggest the key or plugin the user probably meant.
std::size_t edit_distance(const std::string& a, const std::string& b);

// Up to `limit` candidates close enough to `word` to be a plausible misspelling, closest first.
std::vector<std::string> closest_matches(const std::string& word,
                                         const std::vector<std::string>& candidates,
                                         std::size_t limit = 3);

// "; did you mean 'sigma'?" or "; did you mean 'a' or 'b'?", or "" when nothing is close.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// The same wording for suggestions the caller has already chosen.
std::string suggest(const std::vector<std::string>& matches);

std::string join(const std::vector<std::string>& items, const std::string& separator);
// The parts between `separator`s, empty ones kept: "a::b" is {"a", "", "b"}, "" is {""}.
std::vector<std::string> split(const std::string& text, char separator);

// `text` as one word for a POSIX shell, for commands printed to be pasted back: unchanged when
// it holds only letters, digits and ._-+=:/,@% (and is not empty), else in single quotes, each
// ' written as '\''. Inside single quotes the shell expands nothing ($, `, \, spaces).
std::string shell_quote(const std::string& text);

// Rows as columns two spaces apart, one line each. Columns for which right_aligned(column) is
// true are padded on the left; the others on the right (the last one not at all).
std::string align_columns(const std::vector<std::vector<std::string>>& rows,
                          const std::function<bool(std::size_t column)>& right_aligned);

// "1h02m", "3m05s", "12s" for progress lines and summaries.
std::string format_duration(double seconds);

// Shortest natural spelling of a number for messages: 2 not 2.000000, 1e-06 not 0.000001.
std::string format_number(double value);

// Bytes in binary units for people: "512 B", "4.00 KiB", "312 MiB", "1.50 GiB".
std::string format_bytes(std::int64_t bytes);

// printf into a string of any length, for tables of figures. The attribute lets the compiler
// check each call's arguments against its pattern, which a template forwarding to snprintf
// would not.
std::string printf_text(const char* pattern, ...) __attribute__((format(printf, 1, 2)));

// A UTC time through strftime, e.g. "%Y-%m-%dT%H:%M:%SZ" (kIsoUtc) for reports.
inline constexpr const char* kIsoUtc = "%Y-%m-%dT%H:%M:%SZ";
std::string format_utc(std::time_t when, const char* strftime_format);
std::string format_utc_now(const char* strftime_format);
// The inverse of format_utc for a whole string; nullopt when `text` does not match the format.
std::optional<std::time_t> parse_utc(const std::string& text, const char* strptime_format);

}  // namespace exprun

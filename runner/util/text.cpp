#include "util/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <numeric>
#include <sstream>
#include <string_view>

namespace exprun {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> closest_matches(const std::string& word,
                                         const std::vector<std::string>& candidates,
                                         std::size_t limit) {
  // A misspelling is at most a third of the word's letters away (at least 2 for short words),
  // or the word is a prefix of the candidate ("adaptive" for "adaptive_wing").
  const std::size_t threshold = std::max<std::size_t>(2, word.size() / 3);
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    const bool prefix = !word.empty() && c.rfind(word, 0) == 0;
    if (d <= threshold || prefix) scored.emplace_back(prefix ? std::min(d, std::size_t{1}) : d, c);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (const auto& [d, c] : scored) {
    if (out.size() == limit) break;
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  return suggest(closest_matches(word, candidates));
}

std::string suggest(const std::vector<std::string>& matches) {
  if (matches.empty()) return "";
  std::string out = "; did you mean ";
  for (std::size_t i = 0; i < matches.size(); ++i) {
    if (i) out += i + 1 == matches.size() ? " or " : ", ";
    out += "'" + matches[i] + "'";
  }
  return out + "?";
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += separator;
    out += items[i];
  }
  return out;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t end = text.find(separator, begin);
    parts.push_back(text.substr(begin, end - begin));
    if (end == std::string::npos) return parts;
    begin = end + 1;
  }
}

std::string shell_quote(const std::string& text) {
  const auto safe = [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) ||
           std::string_view("._-+=:/,@%").find(ch) != std::string_view::npos;
  };
  if (!text.empty() && std::all_of(text.begin(), text.end(), safe)) return text;
  std::string out = "'";
  for (const char ch : text) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

std::string align_columns(const std::vector<std::vector<std::string>>& rows,
                          const std::function<bool(std::size_t column)>& right_aligned) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::string pad(widths[c] - row[c].size(), ' ');
      const bool last = c + 1 == row.size();
      out += right_aligned(c) ? pad + row[c] : row[c] + (last ? "" : pad);
      if (!last) out += "  ";
    }
    out += "\n";
  }
  return out;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lds", s);
  }
  return buf;
}

std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

std::string printf_text(const char* pattern, ...) {
  std::va_list args;
  va_start(args, pattern);
  std::va_list again;
  va_copy(again, args);
  const int length = std::vsnprintf(nullptr, 0, pattern, args);
  va_end(args);
  std::string text(length > 0 ? static_cast<std::size_t>(length) : 0, '\0');
  if (length > 0) std::vsnprintf(text.data(), text.size() + 1, pattern, again);
  va_end(again);
  return text;
}

std::string format_bytes(std::int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (std::abs(value) >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%lld B", static_cast<long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, value >= 100 ? "%.0f %s" : "%.2f %s", value, units[unit]);
  }
  return text;
}

std::string format_utc(std::time_t when, const char* strftime_format) {
  std::tm tm{};
  gmtime_r(&when, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, strftime_format, &tm);
  return buf;
}

std::optional<std::time_t> parse_utc(const std::string& text, const char* strptime_format) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), strptime_format, &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return timegm(&tm);
}

std::string format_utc_now(const char* strftime_format) {
  return format_utc(std::time(nullptr), strftime_format);
}

}  // namespace exprun

#include "compare/terminal_width.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>

namespace exprun {

std::optional<std::size_t> parse_columns(const std::string& text) {
  constexpr std::size_t kWidest = 10000;
  if (text.empty() || text.size() > 5) return std::nullopt;
  std::size_t value = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return std::nullopt;
    value = value * 10 + static_cast<std::size_t>(ch - '0');
  }
  if (value == 0 || value > kWidest) return std::nullopt;
  return value;
}

std::size_t output_width(int fd) {
  constexpr std::size_t kUntoldTerminalWidth = 80;
  if (const char* columns = std::getenv("COLUMNS"))
    if (const auto width = parse_columns(columns)) return *width;
  if (!isatty(fd)) return 0;
  winsize size{};
  if (ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return kUntoldTerminalWidth;
}

}  // namespace exprun

// How wide `exprun compare` may print its table: the COLUMNS variable when it holds a width,
// else the terminal's own width when stdout is one, else no limit (a file or a pipe keeps every
// cell whole).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace exprun {

// A width a terminal can have (1 to 10000 columns) read from COLUMNS' text; none otherwise.
std::optional<std::size_t> parse_columns(const std::string& text);

// What the rule above gives for `fd` (stdout by default); 0 means no limit. A terminal that
// does not tell its width (TIOCGWINSZ fails or says 0) counts as 80 columns.
std::size_t output_width(int fd = 1);

}  // namespace exprun

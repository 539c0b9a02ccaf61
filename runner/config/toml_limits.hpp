// Bounds on the shape of TOML text, checked before TOML++ parses it. TOML++ builds one table
// per key part, recursively, and frees them recursively too, so a key of tens of thousands of
// parts overflows the stack; so would our own walks over nested values. A linear pre-scan
// refuses such text with a located error instead.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace exprun {

// The deepest level a value may sit at, this level included. A value's level counts, as
// written: each part of the table header above it ([[a.b]] like [a.b]), each part of its key
// (a key inside an inline table adds its parts to the level of the key holding that table),
// and one for each array it is an element of. `[s] x.y = [[1]]` puts `1` at level 5, and an
// empty array or table may sit at level 64 itself. exprun's own files stay below level 8.
inline constexpr std::size_t kMaxTomlDepth = 64;
// Characters of one key or table header as written.
inline constexpr std::size_t kMaxTomlKeyLength = 1024;

// Throws ConfigError "<source>:<line>:<column>: key \"...\": ..." when `text` goes beyond
// either limit. A source named "--set ..." (an override) is named without a position.
void check_toml_limits(std::string_view text, const std::string& source_name);

}  // namespace exprun

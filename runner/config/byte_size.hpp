// Memory sizes as experiments write them: 6442450944, "6GiB", "6 GiB", "512MiB", "8GB", "1.5G".
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace exprun {

// Binary units (KiB, MiB, GiB, TiB, and K, M, G, T) are powers of 1024; decimal ones (kB, MB,
// GB, TB) powers of 1000; B or no unit means bytes. Nothing when the text is not a positive
// size.
std::optional<std::int64_t> parse_byte_size(std::string_view text);
// An integer node is bytes; a string node is parsed as above.
std::optional<std::int64_t> parse_byte_size(const toml::node& node);

}  // namespace exprun

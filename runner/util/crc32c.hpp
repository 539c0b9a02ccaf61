// CRC-32C (Castagnoli), the checksum TFRecord framing and exprun checkpoints use.
#pragma once

#include <cstddef>
#include <cstdint>

namespace exprun {

std::uint32_t crc32c(const char* data, std::size_t size);

}  // namespace exprun

#include "util/crc32c.hpp"

#include <boost/crc.hpp>

namespace exprun {

std::uint32_t crc32c(const char* data, std::size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;  // Castagnoli
  crc.process_bytes(data, size);
  return crc.checksum();
}

}  // namespace exprun

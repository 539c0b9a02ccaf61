// An independent reader of TensorBoard event files for the tests: its own bitwise CRC-32C (not
// Boost's table) and a generic protocol-buffer field walker, so a writer bug in either part
// cannot cancel out against the same bug here.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace exprun::test {

struct ReadEvent {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> scalars;  // tag, simple_value
};

inline std::uint32_t bitwise_crc32c(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline std::uint32_t masked(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

namespace event_detail {

inline std::uint64_t little_endian(const std::string& s, std::size_t at, std::size_t n) {
  if (at + n > s.size()) throw std::runtime_error("event file: truncated");
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

inline std::uint64_t varint(const std::string& s, std::size_t& at) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (at >= s.size()) throw std::runtime_error("event file: truncated varint");
    const auto b = static_cast<unsigned char>(s[at++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  throw std::runtime_error("event file: varint too long");
}

struct Field {
  int number = 0;
  int wire = 0;
  std::uint64_t scalar = 0;  // varint, fixed32, fixed64
  std::string bytes;         // length-delimited
};

inline std::vector<Field> fields(const std::string& message) {
  std::vector<Field> out;
  std::size_t at = 0;
  while (at < message.size()) {
    const auto key = varint(message, at);
    Field f;
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    if (f.wire == 0) {
      f.scalar = varint(message, at);
    } else if (f.wire == 1) {
      f.scalar = little_endian(message, at, 8);
      at += 8;
    } else if (f.wire == 5) {
      f.scalar = little_endian(message, at, 4);
      at += 4;
    } else if (f.wire == 2) {
      const auto n = varint(message, at);
      if (at + n > message.size()) throw std::runtime_error("event file: truncated field");
      f.bytes = message.substr(at, n);
      at += n;
    } else {
      throw std::runtime_error("event file: unexpected wire type " + std::to_string(f.wire));
    }
    out.push_back(f);
  }
  return out;
}

}  // namespace event_detail

// Every record of the file, CRCs checked; throws std::runtime_error naming what is wrong.
inline std::vector<ReadEvent> read_event_file(const std::filesystem::path& path) {
  using namespace event_detail;
  std::ifstream in(path, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<ReadEvent> events;
  std::size_t at = 0;
  while (at < data.size()) {
    const std::string length_bytes = data.substr(at, 8);
    const auto length = little_endian(data, at, 8);
    if (little_endian(data, at + 8, 4) != masked(bitwise_crc32c(length_bytes)))
      throw std::runtime_error("event file: bad length CRC at byte " + std::to_string(at));
    const std::string payload = data.substr(at + 12, length);
    if (payload.size() != length) throw std::runtime_error("event file: truncated record");
    if (little_endian(data, at + 12 + length, 4) != masked(bitwise_crc32c(payload)))
      throw std::runtime_error("event file: bad payload CRC at byte " + std::to_string(at));
    at += 12 + length + 4;

    ReadEvent e;
    for (const auto& f : fields(payload)) {
      if (f.number == 1 && f.wire == 1) std::memcpy(&e.wall_time, &f.scalar, 8);
      if (f.number == 2 && f.wire == 0) e.step = static_cast<std::int64_t>(f.scalar);
      if (f.number == 3 && f.wire == 2) e.file_version = f.bytes;
      if (f.number == 5 && f.wire == 2) {
        for (const auto& value : fields(f.bytes)) {
          if (value.number != 1 || value.wire != 2) continue;
          std::string tag;
          float simple = 0;
          bool has_simple = false;
          for (const auto& vf : fields(value.bytes)) {
            if (vf.number == 1 && vf.wire == 2) tag = vf.bytes;
            if (vf.number == 2 && vf.wire == 5) {
              const auto bits = static_cast<std::uint32_t>(vf.scalar);
              std::memcpy(&simple, &bits, 4);
              has_simple = true;
            }
          }
          if (has_simple) e.scalars.emplace_back(tag, simple);
        }
      }
    }
    events.push_back(e);
  }
  return events;
}

}  // namespace exprun::test

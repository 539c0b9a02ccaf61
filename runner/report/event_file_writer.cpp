#include "report/event_file_writer.hpp"

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "util/crc32c.hpp"

namespace exprun {
namespace {

// Protocol-buffer wire types of the fields used below.
enum WireType : std::uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_key(std::string& out, int field, WireType type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | type);
}

template <class T>
void put_little_endian(std::string& out, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
// summary = 5 (Summary).
std::string event(double wall_time, std::int64_t step) {
  std::string out;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &wall_time, sizeof bits);
  put_key(out, 1, kFixed64);
  put_little_endian(out, bits);
  put_key(out, 2, kVarint);
  put_varint(out, static_cast<std::uint64_t>(step));
  return out;
}

// tensorflow.Summary { repeated Value value = 1; } with Value { tag = 1; simple_value = 2 }.
std::string scalar_summary(const std::string& tag, float value) {
  std::string v;
  put_bytes(v, 1, tag);
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(v, 2, kFixed32);
  put_little_endian(v, bits);
  std::string summary;
  put_bytes(summary, 1, v);
  return summary;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::uint32_t masked_crc32c(const std::string& bytes) {
  const std::uint32_t c = crc32c(bytes.data(), bytes.size());
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventFileWriter::EventFileWriter(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto seconds = static_cast<long long>(unix_now());
  path_ = dir / ("events.out.tfevents." + std::to_string(seconds) + ".exprun");
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw std::runtime_error("cannot create the TensorBoard event file " + path_.string());
  std::string header = event(unix_now(), 0);
  put_bytes(header, 3, "brain.Event:2");
  write_record(header);
  flush();
}

void EventFileWriter::add_scalar(const std::string& tag, std::int64_t step, double value,
                                 double wall_time) {
  std::string payload = event(wall_time < 0 ? unix_now() : wall_time, step);
  put_bytes(payload, 5, scalar_summary(tag, static_cast<float>(value)));
  write_record(payload);
}

void EventFileWriter::write_record(const std::string& payload) {
  std::string length;
  put_little_endian(length, static_cast<std::uint64_t>(payload.size()));
  std::string record = length;
  put_little_endian(record, masked_crc32c(length));
  record += payload;
  put_little_endian(record, masked_crc32c(payload));
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
}

void EventFileWriter::flush() {
  out_.flush();
  if (!out_) throw std::runtime_error("cannot write the TensorBoard event file " + path_.string());
}

}  // namespace exprun

// TensorBoard event files written directly: TFRecord framing (length, masked CRC-32C of the
// length, payload, masked CRC-32C of the payload) around hand-encoded tensorflow.Event protocol
// buffers. Only scalars are needed, and they take a dozen bytes of protobuf to encode, so this
// avoids a protobuf and TensorFlow dependency.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace exprun {

// The CRC TFRecord stores: CRC-32C rotated right by 15 bits plus a constant.
std::uint32_t masked_crc32c(const std::string& bytes);

class EventFileWriter {
 public:
  // Creates `dir` and events.out.tfevents.<unix seconds>.exprun in it, starting with the
  // file_version event ("brain.Event:2") TensorBoard expects first. Throws std::runtime_error
  // when the file cannot be created.
  explicit EventFileWriter(const std::filesystem::path& dir);

  const std::filesystem::path& path() const { return path_; }
  // One scalar event. wall_time: seconds since the Unix epoch (now when negative).
  void add_scalar(const std::string& tag, std::int64_t step, double value, double wall_time = -1);
  // Event files are appended to as training goes (that is how TensorBoard tails them); a
  // flush after every epoch bounds what a crash can lose to that epoch's events.
  void flush();

 private:
  void write_record(const std::string& payload);

  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace exprun

// Fuzz target: the checkpoint reader (docs/fuzzing.md). The input is a checkpoint file; it is
// read as-is, and when it starts with the EXPRUNCK header, read again with the header's length
// and CRC-32C made to match, so that mutations of the LibTorch archive inside get past the
// checksum to the archive reader.
#include <torch/torch.h>

#include <cstring>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "tiny_model.hpp"
#include "train/checkpoint.hpp"
#include "util/crc32c.hpp"

namespace {

constexpr std::size_t kHeaderSize = 8 + 4 + 8 + 4;  // magic, version, length, CRC-32C

// `file` with its header's payload length and checksum set to what follows the header.
std::string with_matching_header(std::string file) {
  const std::uint64_t length = file.size() - kHeaderSize;
  const std::uint32_t crc = exprun::crc32c(file.data() + kHeaderSize, length);
  for (std::size_t i = 0; i < 8; ++i) file[12 + i] = static_cast<char>(length >> (8 * i));
  for (std::size_t i = 0; i < 4; ++i) file[20 + i] = static_cast<char>(crc >> (8 * i));
  return file;
}

void read_back(const std::filesystem::path& path) {
  exprun::fuzz::expect_located_errors(
      [&] {
        (void)exprun::read_checkpoint_info(path);
        exprun::fuzz::TinyModel model;
        auto optimizer = exprun::fuzz::tiny_optimizer(model);
        const std::vector<std::shared_ptr<exprun::sdk::MemoryStrategy>> strategies;
        (void)exprun::load_training_state(path, {model, optimizer, strategies, torch::kCPU});
      },
      {path.string()});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  read_back(exprun::fuzz::write_scratch("checkpoints/as-is.pt", data, size));
  const std::string file(reinterpret_cast<const char*>(data), size);
  if (size >= kHeaderSize && file.compare(0, 8, "EXPRUNCK") == 0)
    read_back(exprun::fuzz::write_scratch("checkpoints/fixed.pt", with_matching_header(file)));
  return 0;
}

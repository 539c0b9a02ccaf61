// The CPU counting allocator, byte sizes as experiments write them, and their printing.
#include "memory/memory_tracker.hpp"

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <exprun/sdk/checkpointing.hpp>

#include "config/byte_size.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

class CpuMemoryTracker : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(install_cpu_memory_tracker()); }
  const torch::Device cpu{torch::kCPU};
};

TEST_F(CpuMemoryTracker, CountsLiveTensorBytesExactly) {
  const auto before = read_memory(cpu);
  ASSERT_TRUE(before);
  {
    auto t = torch::empty({256, 1024}, torch::kFloat32);  // 1 MiB
    const auto during = read_memory(cpu);
    EXPECT_EQ(during->current_bytes - before->current_bytes, 1 << 20);
  }
  EXPECT_EQ(read_memory(cpu)->current_bytes, before->current_bytes);
}

TEST_F(CpuMemoryTracker, PeakKeepsTheHighestSinceReset) {
  reset_peak_memory(cpu);
  const auto base = read_memory(cpu)->current_bytes;
  EXPECT_EQ(read_memory(cpu)->peak_bytes, base);
  {
    auto a = torch::empty({1 << 18}, torch::kFloat32);  // 1 MiB
    auto b = torch::empty({1 << 19}, torch::kFloat32);  // 2 MiB
  }
  { auto c = torch::empty({1 << 16}, torch::kFloat32); }  // 256 KiB, after a and b are gone
  const auto reading = read_memory(cpu);
  EXPECT_EQ(reading->current_bytes, base);
  EXPECT_EQ(reading->peak_bytes - base, 3 << 20);
  reset_peak_memory(cpu);
  EXPECT_EQ(read_memory(cpu)->peak_bytes, base);
}

TEST_F(CpuMemoryTracker, CountsWhatOperationsAllocate) {
  auto a = torch::ones({64, 64});
  reset_peak_memory(cpu);
  const auto base = read_memory(cpu)->current_bytes;
  auto b = a.matmul(a);  // one 64x64 float result
  EXPECT_GE(read_memory(cpu)->peak_bytes - base, 64 * 64 * 4);
  EXPECT_EQ(read_memory(cpu)->current_bytes - base, 64 * 64 * 4);
}

TEST_F(CpuMemoryTracker, InstallingTwiceIsHarmless) {
  EXPECT_TRUE(install_cpu_memory_tracker());
  auto t = torch::zeros({10});
  EXPECT_TRUE(read_memory(cpu));
}

TEST(FreeDeviceMemory, IsUnknownOnCpu) { EXPECT_FALSE(free_device_memory(torch::kCPU)); }

TEST(OutOfMemory, RecognisesTheCpuAllocatorsMessage) {
  EXPECT_TRUE(is_out_of_memory(std::runtime_error(
      "DefaultCPUAllocator: not enough memory: you tried to allocate 1099511627776 bytes.")));
  EXPECT_TRUE(is_out_of_memory(std::runtime_error("CUDA out of memory. Tried to allocate")));
  EXPECT_FALSE(is_out_of_memory(std::runtime_error("shape mismatch")));
}

TEST(ByteSize, ParsesUnitsAndPlainBytes) {
  EXPECT_EQ(parse_byte_size("512"), 512);
  EXPECT_EQ(parse_byte_size("512B"), 512);
  EXPECT_EQ(parse_byte_size("4KiB"), 4096);
  EXPECT_EQ(parse_byte_size("4 kib"), 4096);
  EXPECT_EQ(parse_byte_size("1.5GiB"), 3LL << 29);
  EXPECT_EQ(parse_byte_size("6G"), 6LL << 30);
  EXPECT_EQ(parse_byte_size("512MiB"), 512LL << 20);
  EXPECT_EQ(parse_byte_size("8GB"), 8000000000LL);
  EXPECT_EQ(parse_byte_size("2 MB"), 2000000);
  EXPECT_EQ(parse_byte_size(" 3TiB "), 3LL << 40);
}

// What activation checkpointing saves, counted by the tracker: after the forward pass a plain
// conv stack holds every layer's activations for backward, a checkpointed one only its input.
TEST_F(CpuMemoryTracker, CheckpointedSegmentKeepsOnlyItsInputUntilBackward) {
  torch::manual_seed(0);
  torch::nn::Sequential stack;
  for (int i = 0; i < 6; ++i) {
    stack->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 8, 3).padding(1)));
    stack->push_back(torch::nn::ReLU());
  }
  const auto input = torch::rand({4, 8, 32, 32}).requires_grad_();  // 128 KiB
  auto held_after_forward = [&](bool checkpointed) {
    const auto before = read_memory(cpu)->current_bytes;
    auto run = [&](const torch::Tensor& x) { return stack->forward(x); };
    auto out = checkpointed ? sdk::checkpoint_segment(*stack, run, input) : run(input);
    const auto held = read_memory(cpu)->current_bytes - before;
    out.sum().backward();
    return held;
  };
  const std::int64_t activation = 4 * 8 * 32 * 32 * 4;
  const auto plain = held_after_forward(false);
  const auto recomputed = held_after_forward(true);
  // Plain: conv outputs and ReLU outputs of 6 layers (ReLU saves its result, conv its input).
  EXPECT_GE(plain, 6 * activation);
  // Checkpointed: the output, plus the random-generator state kept for the replay.
  EXPECT_LE(recomputed, activation + 8 * 1024);
}

TEST(ByteSize, RejectsWhatIsNotASize) {
  for (const char* bad : {"", "GiB", "-1GiB", "0", "1.2.3G", "6 GiBs", "six GiB", "1e3"}) {
    EXPECT_FALSE(parse_byte_size(bad)) << bad;
  }
}

TEST(ByteSize, TomlNodes) {
  const auto doc = toml::parse("a = 1024\nb = \"2KiB\"\nc = 0\nd = 1.5\ne = true\n");
  EXPECT_EQ(parse_byte_size(*doc.get("a")), 1024);
  EXPECT_EQ(parse_byte_size(*doc.get("b")), 2048);
  EXPECT_FALSE(parse_byte_size(*doc.get("c")));
  EXPECT_FALSE(parse_byte_size(*doc.get("d")));
  EXPECT_FALSE(parse_byte_size(*doc.get("e")));
}

TEST(FormatBytes, BinaryUnits) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(4096), "4.00 KiB");
  EXPECT_EQ(format_bytes(312LL << 20), "312 MiB");
  EXPECT_EQ(format_bytes(3LL << 29), "1.50 GiB");
}

}  // namespace
}  // namespace exprun

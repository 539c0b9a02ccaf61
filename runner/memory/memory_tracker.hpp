// Peak bytes of live tensors on a stage's device, for the report and the batch tuner. On CUDA
// the caching allocator keeps these statistics; on CPU LibTorch keeps none, so the runner puts
// a counting allocator in front of the default one (install_cpu_memory_tracker, at start-up).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>

namespace exprun {

struct MemoryReading {
  std::int64_t current_bytes = 0;
  std::int64_t peak_bytes = 0;  // since the last reset_peak_memory
};

// Idempotent. CPU tensors allocated before the call are not counted, and never subtracted.
// Returns false when the default CPU allocator cannot be wrapped (the reading stays unknown).
bool install_cpu_memory_tracker();

// Nothing when the device keeps no statistics (CPU before install_cpu_memory_tracker).
std::optional<MemoryReading> read_memory(const torch::Device& device);
// The peak restarts from the bytes live now.
void reset_peak_memory(const torch::Device& device);
// Free bytes on a CUDA device; nothing on CPU, where no allocator knows a limit.
std::optional<std::int64_t> free_device_memory(const torch::Device& device);

// True for the errors an allocation raises when memory runs out (CUDA OOM, or the CPU
// allocator's "not enough memory"), which the batch tuner records as "does not fit".
bool is_out_of_memory(const std::exception& error);
// After an OOM: give cached blocks back so the next attempt starts clean (CUDA only).
void release_cached_memory(const torch::Device& device);

}  // namespace exprun

#include "memory/memory_tracker.hpp"

#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include <exprun/sdk/torch_compat.hpp>

#if EXPRUN_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace exprun {
namespace {

// LibTorch 1.13 has no CPU memory statistics (its profiler hooks report allocations only while
// a profiler runs), so allocations are counted here. The wrapped allocator's data pointer is
// its own deleter context (DefaultCPUAllocator works that way), and ours keeps that shape so
// Allocator::raw_allocate/raw_deallocate still work; sizes are looked up by pointer on free.
struct CpuCounters {
  std::mutex mutex;
  std::unordered_map<void*, std::size_t> sizes;
  std::atomic<std::int64_t> current{0};
  std::atomic<std::int64_t> peak{0};
  c10::Allocator* inner = nullptr;
  c10::DeleterFnPtr inner_deleter = nullptr;
};

CpuCounters& counters() {
  // Never destroyed: tensors freed during static destruction still call release().
  static auto* instance = new CpuCounters;
  return *instance;
}

void raise_peak(CpuCounters& c, std::int64_t now) {
  std::int64_t seen = c.peak.load(std::memory_order_relaxed);
  while (now > seen && !c.peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

void release(void* data) {
  auto& c = counters();
  {
    std::lock_guard lock(c.mutex);
    if (auto it = c.sizes.find(data); it != c.sizes.end()) {
      c.current.fetch_sub(static_cast<std::int64_t>(it->second), std::memory_order_relaxed);
      c.sizes.erase(it);
    }
  }
  c.inner_deleter(data);
}

class CountingCpuAllocator final : public sdk::compat::AllocatorBase {
 public:
  c10::DataPtr allocate_bytes(size_t bytes) const override {
    auto& c = counters();
    c10::DataPtr inner = c.inner->allocate(bytes);
    void* data = inner.get();
    if (data == nullptr || inner.get_context() != data) return inner;
    const c10::Device device = inner.device();
    inner.release_context();
    {
      std::lock_guard lock(c.mutex);
      c.sizes[data] = bytes;
    }
    raise_peak(c, c.current.fetch_add(static_cast<std::int64_t>(bytes)) +
                      static_cast<std::int64_t>(bytes));
    return {data, data, &release, device};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
};

std::atomic<bool> cpu_tracker_installed{false};

}  // namespace

bool install_cpu_memory_tracker() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& c = counters();
    c.inner = c10::GetCPUAllocator();
    c.inner_deleter = c.inner->raw_deleter();
    if (!c.inner_deleter) return;
    static CountingCpuAllocator allocator;
    // Priority above the default allocator's, so the wrapper stays in place.
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
    cpu_tracker_installed = c10::GetCPUAllocator() == &allocator;
  });
  return cpu_tracker_installed;
}

std::optional<MemoryReading> read_memory(const torch::Device& device) {
  if (device.is_cpu()) {
    if (!cpu_tracker_installed) return std::nullopt;
    auto& c = counters();
    return MemoryReading{c.current.load(), c.peak.load()};
  }
#if EXPRUN_WITH_CUDA
  if (device.is_cuda()) {
    const int index = device.has_index() ? device.index() : c10::cuda::current_device();
    const auto bytes = sdk::compat::cuda_allocator_bytes(index);
    return MemoryReading{bytes.allocated, bytes.allocated_peak};
  }
#endif
  return std::nullopt;
}

void reset_peak_memory(const torch::Device& device) {
  if (device.is_cpu()) {
    auto& c = counters();
    c.peak.store(c.current.load());
    return;
  }
#if EXPRUN_WITH_CUDA
  if (device.is_cuda()) {
    const int index = device.has_index() ? device.index() : c10::cuda::current_device();
    c10::cuda::CUDACachingAllocator::resetPeakStats(index);
  }
#endif
}

std::optional<std::int64_t> free_device_memory(const torch::Device& device) {
#if EXPRUN_WITH_CUDA
  if (device.is_cuda()) {
    c10::cuda::CUDAGuard guard(device);
    std::size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) != cudaSuccess) return std::nullopt;
    // Blocks the caching allocator holds but no tensor uses are free to this process too.
    const int index = device.has_index() ? device.index() : c10::cuda::current_device();
    const auto bytes = sdk::compat::cuda_allocator_bytes(index);
    const std::int64_t cached_unused = bytes.reserved - bytes.allocated;
    return static_cast<std::int64_t>(free) + cached_unused;
  }
#endif
  (void)device;
  return std::nullopt;
}

bool is_out_of_memory(const std::exception& error) {
#if EXPRUN_WITH_CUDA
  if (dynamic_cast<const c10::OutOfMemoryError*>(&error)) return true;
#endif
  const std::string what = error.what();
  return what.find("not enough memory") != std::string::npos ||
         what.find("out of memory") != std::string::npos;
}

void release_cached_memory(const torch::Device& device) {
#if EXPRUN_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  (void)device;
}

}  // namespace exprun

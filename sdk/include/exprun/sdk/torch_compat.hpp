// The LibTorch calls whose spelling differs between the versions exprun builds against
// (Debian's 1.13 and 2.x from the torch wheel), one function each, so that no other file tests
// the LibTorch version. Header-only: plugins include it as the runner does.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/Allocator.h>
#include <torch/optim/optimizer.h>
#include <torch/version.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>

#if defined(EXPRUN_WITH_CUDA) && EXPRUN_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

// 2.4 replaced the per-device autocast functions (is_cpu_enabled, get_autocast_gpu_dtype, ...)
// by ones taking the device type; 2.x deprecates the old ones, a later release drops them.
#define EXPRUN_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||         \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace exprun::sdk::compat {

// Autocast for one device type (CPU or CUDA): on or off, and the type it casts to.
struct AutocastState {
  bool enabled = false;
  at::ScalarType dtype = at::kFloat;
};

inline AutocastState autocast_state(c10::DeviceType device) {
#if EXPRUN_TORCH_AT_LEAST(2, 4)
  return {at::autocast::is_autocast_enabled(device), at::autocast::get_autocast_dtype(device)};
#else
  if (device == c10::DeviceType::CUDA) {
    return {at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()};
  }
  return {at::autocast::is_cpu_enabled(), at::autocast::get_autocast_cpu_dtype()};
#endif
}

inline void set_autocast_state(c10::DeviceType device, AutocastState state) {
#if EXPRUN_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(device, state.dtype);
  at::autocast::set_autocast_enabled(device, state.enabled);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(state.dtype);
    at::autocast::set_enabled(state.enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(state.dtype);
    at::autocast::set_cpu_enabled(state.enabled);
  }
#endif
}

// A c10::Allocator to derive from: 1.13 declares allocate() const, 2.x does not and adds a
// pure copy_data(). Both allocate() spellings are declared (each overrides the base's where it
// matches) and forward to allocate_bytes(); copy_data() is a plain copy, as the default one.
class AllocatorBase : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t bytes) const { return allocate_bytes(bytes); }
  c10::DataPtr allocate(std::size_t bytes) { return allocate_bytes(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    std::memcpy(dest, src, count);
  }

 protected:
  virtual c10::DataPtr allocate_bytes(std::size_t bytes) const = 0;
};

namespace detail {
// A template, so that only the branch of the map's key type is compiled.
template <typename States>
typename States::key_type state_key(const States&, c10::TensorImpl* parameter) {
  if constexpr (std::is_same_v<typename States::key_type, std::string>) {
    std::ostringstream address;  // as 1.13's c10::guts::to_string prints it: "0x55d5c3f0a2b0"
    address << static_cast<const void*>(parameter);
    return address.str();
  } else {
    return parameter;
  }
}
}  // namespace detail

// Sets the optimiser's state of one parameter. Optimizer::state() is keyed by the parameter's
// TensorImpl: by its address printed as a string in 1.13, by the address itself in 2.x.
inline void set_optimizer_state(torch::optim::Optimizer& optimizer, const at::Tensor& parameter,
                                std::unique_ptr<torch::optim::OptimizerParamState> state) {
  auto& states = optimizer.state();
  states[detail::state_key(states, parameter.unsafeGetTensorImpl())] = std::move(state);
}

// The optimiser's state of one parameter; null before its first step.
inline torch::optim::OptimizerParamState* optimizer_state(torch::optim::Optimizer& optimizer,
                                                          const at::Tensor& parameter) {
  auto& states = optimizer.state();
  const auto found = states.find(detail::state_key(states, parameter.unsafeGetTensorImpl()));
  return found == states.end() ? nullptr : found->second.get();
}

#if defined(EXPRUN_WITH_CUDA) && EXPRUN_WITH_CUDA
// The CUDA caching allocator's byte counts for one device, all block sizes together.
struct CudaAllocatorBytes {
  std::int64_t allocated = 0;       // held by tensors now
  std::int64_t allocated_peak = 0;  // most held by tensors since the last reset
  std::int64_t reserved = 0;        // taken from the driver, tensors' or cached
};

inline CudaAllocatorBytes cuda_allocator_bytes(c10::DeviceIndex device) {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  // Index 0 is StatType::AGGREGATE in every version; the enum itself moved from
  // c10::cuda::CUDACachingAllocator (1.13) to c10::CachingAllocator (2.x).
  constexpr std::size_t kAggregate = 0;
  return {stats.allocated_bytes[kAggregate].current, stats.allocated_bytes[kAggregate].peak,
          stats.reserved_bytes[kAggregate].current};
}
#endif

}  // namespace exprun::sdk::compat

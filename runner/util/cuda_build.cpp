#include "util/cuda_build.hpp"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>

namespace exprun {
#if EXPRUN_WITH_CUDA
namespace {

// CUDART_VERSION and CUDNN_VERSION encodings: 13000 is 13.0, 91900 is 9.19.0 (cuDNN 9 counts
// major * 10000, cuDNN 8 major * 1000).
std::string cuda_version_text(long v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}
std::string cudnn_version_text(long v) {
  const long major_unit = v >= 90000 ? 10000 : 1000;
  return std::to_string(v / major_unit) + "." + std::to_string(v % major_unit / 100) + "." +
         std::to_string(v % 100);
}

}  // namespace
#endif

CudaBuildInfo cuda_build_info() {
  CudaBuildInfo info;
  info.cuda_available = torch::cuda::is_available();
  info.cuda_devices = static_cast<int>(torch::cuda::device_count());
#if EXPRUN_WITH_CUDA
  // The CUDA hooks are registered when libtorch_cuda loads (exprun links it), with or without
  // a device; a CPU LibTorch's default hooks throw instead, hence the compile-time guard.
  const auto& hooks = at::detail::getCUDAHooks();
  info.cuda_compiled = true;
  info.cuda_version = cuda_version_text(hooks.versionCUDART());
  info.cudnn_compiled = hooks.hasCuDNN();
  if (info.cudnn_compiled) info.cudnn_version = cudnn_version_text(hooks.versionCuDNN());
#endif
  return info;
}

}  // namespace exprun

// What the LibTorch exprun was built against brings for CUDA, for `exprun version` and the
// report's environment.
#pragma once

#include <optional>
#include <string>

namespace exprun {

struct CudaBuildInfo {
  bool cuda_compiled = false;                // exprun's CUDA code is compiled (a CUDA LibTorch)
  bool cudnn_compiled = false;               // that LibTorch was built with cuDNN
  std::optional<std::string> cuda_version;   // the CUDA runtime LibTorch was built with, "13.0"
  std::optional<std::string> cudnn_version;  // the cuDNN LibTorch was built with, "9.19.0"
  bool cuda_available = false;               // a device is usable now
  int cuda_devices = 0;
};

CudaBuildInfo cuda_build_info();

}  // namespace exprun

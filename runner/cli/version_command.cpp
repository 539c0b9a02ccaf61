// `exprun version`: what a plugin must be built alike with. The first line stays
// "exprun <version> ..." for scripts; the rest names the compiler and flags the SDK was built
// with, which the ABI tag checks at load time.
#include <exprun/sdk/abi.hpp>

#include <iostream>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "util/allocator_reuse.hpp"
#include "util/blas_library.hpp"
#include "util/cuda_build.hpp"

namespace exprun::cli {
namespace {

const char* compiler_name() {
#if defined(__clang__)
  return "clang";
#elif defined(__GNUC__)
  return "gcc";
#else
  return "unknown";
#endif
}

}  // namespace

int version_command(const std::vector<std::string>& given) {
  // --plugins is shared by every command (and may come before it); version loads none, so
  // its directories change nothing here.
  std::vector<std::string> args;
  for (std::size_t i = 0; i < given.size(); ++i) {
    if (given[i] == "--plugins" && i + 1 < given.size()) {
      ++i;
      continue;
    }
    if (given[i].rfind("--plugins=", 0) == 0) continue;
    args.push_back(given[i]);
  }
  if (!args.empty() && args[0] != "--help" && args[0] != "-h") {
    std::cerr << "exprun: error: version takes no arguments, found '" << args[0] << "'\n";
    return kUsageError;
  }
  if (!args.empty()) {
    std::cout << "exprun version\n\nPrints exprun's version and how it and its SDK were built: "
                 "LibTorch, CUDA code, compiler, C++ standard and ABI flags, the CUDA and "
                 "cuDNN versions LibTorch was built with, how malloc is tuned, and the BLAS "
                 "library LibTorch calls.\n";
    return kOk;
  }
  std::cout << "exprun " << EXPRUN_VERSION << " (LibTorch " << TORCH_VERSION << ", CUDA code "
            << (EXPRUN_WITH_CUDA ? "compiled" : "not compiled") << ")\n";
  std::cout << "sdk:                    " << EXPRUN_SDK_VERSION_MAJOR << "."
            << EXPRUN_SDK_VERSION_MINOR << "\n";
  std::cout << "compiler:               " << compiler_name() << " " << __VERSION__ << "\n";
  std::cout << "C++ standard:           __cplusplus " << __cplusplus << "L\n";
#if defined(_GLIBCXX_USE_CXX11_ABI)
  std::cout << "_GLIBCXX_USE_CXX11_ABI: " << _GLIBCXX_USE_CXX11_ABI << "\n";
#else
  std::cout << "_GLIBCXX_USE_CXX11_ABI: not defined (not libstdc++)\n";
#endif
  // The SDK library's own tag, which every plugin's must equal.
  std::cout << "abi tag:                " << sdk::sdk_abi_tag() << "\n";
  const CudaBuildInfo cuda = cuda_build_info();
  std::cout << "cuda:                   ";
  if (cuda.cuda_version) {
    std::cout << *cuda.cuda_version << " (" << cuda.cuda_devices << " device"
              << (cuda.cuda_devices == 1 ? "" : "s") << " visible)\n";
  } else {
    std::cout << "not compiled\n";
  }
  std::cout << "cudnn:                  "
            << (cuda.cudnn_version ? *cuda.cudnn_version : std::string("not compiled")) << "\n";
  std::cout << "malloc:                 " << reuse_freed_memory() << "\n";
  std::cout << "blas:                   " << blas_library() << "\n";
  return kOk;
}

}  // namespace exprun::cli

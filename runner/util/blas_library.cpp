#include "util/blas_library.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <string>

namespace exprun {
namespace {

namespace fs = std::filesystem;

std::string openblas_threading(int parallel) {
  switch (parallel) {
    case 0:
      return "single-threaded build";
    case 1:
      return "pthread build";
    case 2:
      return "OpenMP build";
    default:
      return "threading " + std::to_string(parallel);
  }
}

}  // namespace

// Symbols are looked up rather than linked: which BLAS (if any) is in the process depends on the
// LibTorch flavour and the machine's alternatives, and exprun runs with any of them.
bool set_blas_threads(int count) {
  static const auto set =
      reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (!set) return false;
  set(count);
  return true;
}

std::string blas_library() {
  void* const gemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (!gemm) return "none exported (LibTorch's own, if any)";
  if (dladdr(gemm, &info) == 0 || !info.dli_fname) return "an unnamed library";
  // The file behind the alternatives' links says which BLAS it is.
  std::error_code error;
  const fs::path file = fs::canonical(info.dli_fname, error);
  std::string text = error ? std::string(info.dli_fname) : file.string();
  // OpenBLAS only where the product's library is or loads it: Debian's libblas.so.3 from
  // OpenBLAS is a thin wrapper around libopenblas.so.0, and an OpenBLAS that OpenCV loaded
  // beside the wheel's LibTorch is not the one LibTorch calls.
  void* const library = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (!library) return text;
  const auto config = reinterpret_cast<char* (*)()>(dlsym(library, "openblas_get_config"));
  const auto parallel = reinterpret_cast<int (*)()>(dlsym(library, "openblas_get_parallel"));
  if (config && parallel) {
    const std::string build = config();  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Zen MAX_THREADS=64"
    text += " (" + (build.rfind("OpenBLAS", 0) == 0 ? build : "OpenBLAS " + build) + ", " +
            openblas_threading(parallel()) + ")";
  }
  dlclose(library);
  return text;
}

}  // namespace exprun

#include "util/one_library_thread.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>

namespace exprun {
namespace {

// ATen has no per-thread count (at::set_num_threads is process-wide and also resets oneDNN's
// caches), but OpenMP's count is per thread. It is set in the OpenMP runtime LibTorch itself
// loaded, found by name: Debian's libgomp, or the wheel's own renamed copy, which a link-time
// dependency on the system's libgomp would miss.
using SetThreads = void (*)(int);
SetThreads openmp_set_num_threads() {
  static const auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return set;
}

}  // namespace

OneLibraryThread::OneLibraryThread() {
  const SetThreads set = openmp_set_num_threads();
  if (!set) return;
  // Also LibTorch's first-use set-up of this thread's count, which must come before ours.
  const int current = at::get_num_threads();
  if (current <= 1) return;
  set(1);
  // Another OpenMP runtime of the same name may come first in the search order (one a plugin
  // or OpenCV loaded); then LibTorch's count did not change and ours is undone.
  if (at::get_num_threads() != 1) {
    set(current);
    return;
  }
  previous_ = current;
}

OneLibraryThread::~OneLibraryThread() {
  if (previous_ > 0) openmp_set_num_threads()(previous_);
}

}  // namespace exprun

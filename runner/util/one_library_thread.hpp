// Runs LibTorch's ops on the calling thread alone for a scope (no OpenMP team).
#pragma once

namespace exprun {

// For the runner's own per-sample work (maps, copies, stacking): the data workers are the
// parallelism there, and an OpenMP team per worker only adds threads that spin on the same
// cores. Element-wise ops and copies give the same bits on any number of threads, so only the
// speed changes. The previous count of the calling thread comes back at the end of the scope.
// Where LibTorch does not use OpenMP this does nothing.
class OneLibraryThread {
 public:
  OneLibraryThread();
  ~OneLibraryThread();
  OneLibraryThread(const OneLibraryThread&) = delete;
  OneLibraryThread& operator=(const OneLibraryThread&) = delete;

 private:
  int previous_ = 0;  // 0: nothing to restore
};

}  // namespace exprun

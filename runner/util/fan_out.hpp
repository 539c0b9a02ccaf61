// Runs a loop's iterations on several threads at once, for work that LibTorch's own parallel
// loops do not fit (a whole sample's preparation, OpenCV and LibTorch calls alike).
#pragma once

#include <cstddef>
#include <functional>

namespace exprun {

// Calls body(0) ... body(count - 1), each exactly once, on the calling thread and up to
// threads - 1 threads of LibTorch's inter-op pool, and returns when all have returned. Which
// thread runs which index is not fixed, so body must give the same result on any thread.
// An index that throws does not stop the others; the error of the lowest such index is
// rethrown once all have finished.
void fan_out(std::size_t count, std::size_t threads, const std::function<void(std::size_t)>& body);

}  // namespace exprun

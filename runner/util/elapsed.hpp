// Seconds elapsed on the steady clock, for the trainer's and the benchmarks' timings.
#pragma once

#include <chrono>

namespace exprun {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace exprun

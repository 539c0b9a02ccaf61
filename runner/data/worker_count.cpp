#include "data/worker_count.hpp"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace exprun {

std::int64_t auto_worker_count(const WorkerCountInputs& in) {
  const std::int64_t ranks = std::max<std::int64_t>(1, in.ranks_on_machine);
  const std::int64_t share = std::max<std::int64_t>(1, in.usable_cores / ranks);
  const std::int64_t free_cores = in.on_accelerator
                                      ? std::max<std::int64_t>(1, share - 1)
                                      : std::max<std::int64_t>(0, share - in.compute_threads);
  return std::min(kMaxAutoWorkers, free_cores);
}

std::int64_t compute_thread_count(std::int64_t configured, std::int64_t usable_cores,
                                  std::int64_t ranks_on_machine) {
  if (configured > 0) return configured;
  return std::max<std::int64_t>(1, usable_cores / std::max<std::int64_t>(1, ranks_on_machine));
}

std::int64_t usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  // No mask to read (a kernel without it): every hardware thread.
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace exprun

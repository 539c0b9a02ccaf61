// data.workers = "auto": how many batch-preparation threads a stage gets on this machine.
#pragma once

#include <cstdint>

namespace exprun {

// What the choice depends on; usable_cores() and the stage's device fill it in a run.
struct WorkerCountInputs {
  bool on_accelerator = false;        // the step runs on a GPU, so the CPU waits during it
  std::int64_t usable_cores = 1;      // cores this process may run on (affinity, cgroups' cpusets)
  std::int64_t compute_threads = 1;   // LibTorch's intra-op threads (experiment.threads)
  std::int64_t ranks_on_machine = 1;  // processes of a data-parallel launch sharing the cores
};

// The most "auto" gives: each worker holds a batch in memory, and the 2-6 workers of the seed
// workflow kept a GPU training HRNet-W32 at 768 x 768 fed from full-size films.
inline constexpr std::int64_t kMaxAutoWorkers = 8;

// On a GPU: every core of this rank's share but one (the thread that feeds the GPU), at least
// 1, at most kMaxAutoWorkers. On a CPU: only the cores the step's threads leave free, since a
// worker on a core the step uses stalls the step's whole thread team (docs/benchmarks.md,
// "Workers and threads"); 0 when the step uses every core.
std::int64_t auto_worker_count(const WorkerCountInputs& in);

// experiment.threads: LibTorch's intra-op threads. `configured` > 0 is taken as it is; 0 is this
// process's share of the cores it may run on (usable_cores() over the ranks on the machine, at
// least 1): counting the machine's hardware threads instead would put a Slurm task of 4 CPUs on
// a 64-core node, or each of 4 ranks on one machine, at 64 threads fighting over its few cores.
std::int64_t compute_thread_count(std::int64_t configured, std::int64_t usable_cores,
                                  std::int64_t ranks_on_machine);

// The CPUs this process may run on: its affinity mask, which taskset, Slurm and container
// cpusets narrow (std::thread::hardware_concurrency counts the machine's).
std::int64_t usable_cores();

}  // namespace exprun

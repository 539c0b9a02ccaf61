// One rank's connection to the others of a launch: a c10d store (hosted by rank 0, or the
// torchrun agent's) and a Gloo process group over it. Every collective waits at most the
// timeout; a rank that died or stopped answering turns into a RankError naming the operation,
// not a hang (docs/distributed.md).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "dist/launch.hpp"

namespace exprun::dist {

// A collective failed: another rank died, or did not reach the same point within the timeout.
class RankError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// EXPRUN_DIST_BACKEND: "gloo" (the default; CPU and CUDA tensors) or "nccl" (CUDA tensors over
// NCCL, the rest over Gloo; only where LibTorch has NCCL). Throws LaunchError otherwise.
std::string backend_from_env();

// EXPRUN_DIST_TIMEOUT (seconds), else 1800: how long a rank waits for the others at any
// collective, rank 0's validation included. Throws LaunchError for a malformed value.
std::chrono::seconds collective_timeout_from_env();

class ProcessGroup {
 public:
  // Joins the launch's other ranks; returns when all have joined. Throws RankError when they
  // do not within the timeout.
  // backend: backend_from_env()'s.
  static std::shared_ptr<ProcessGroup> connect(const Launch& launch, std::chrono::seconds timeout,
                                               const std::string& backend = "gloo");
  // Leaves together: a rank other than 0 returns once rank 0 has left too (srun
  // --kill-on-bad-exit ends the whole step when any task exits non-zero, which would cut rank
  // 0's last checkpoint or requeue short); rank 0 waits, at most 2 minutes, until the others
  // have left, since its store must outlive their last reads (the run plan). Never throws: a
  // rank that is gone is not waited for.
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }
  // The ranks on this machine, where the launcher says (torchrun, env://); 1 where it does
  // not (Slurm binds each task to its own CPUs, so its cores are its own).
  int ranks_on_machine() const { return ranks_on_machine_; }
  std::chrono::seconds timeout() const { return timeout_; }
  const std::string& backend() const { return backend_; }
  // The launcher's name ("torchrun", "env", "slurm"), for reports.
  const std::string& launcher() const { return launcher_; }

  // In place, from rank 0 to all. `what` names the operation in errors.
  void broadcast(std::vector<torch::Tensor>& tensors, const std::string& what);
  // In place: the element-wise sum (or maximum) over all ranks.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what);
  void all_reduce_max(torch::Tensor& tensor, const std::string& what);
  // Rank 0's `value` under `key`, on every rank (rank 0 gets its own back). Through the store:
  // for run-level decisions such as the run directory, once per key.
  std::string share_from_rank0(const std::string& key, const std::string& value);

 private:
  struct Parts;
  ProcessGroup(std::unique_ptr<Parts> parts, const Launch& launch, std::chrono::seconds timeout);
  std::unique_ptr<Parts> parts_;
  int rank_;
  int world_size_;
  int local_rank_;
  int ranks_on_machine_;
  std::chrono::seconds timeout_;
  std::string backend_;
  std::string launcher_;
};

}  // namespace exprun::dist

// Slurm's early warning (`--signal=USR1@LEAD`, docs/distributed.md): the run has stopped with
// its position in latest.pt, and the job goes back in the queue to continue there. exprun
// requeues itself rather than leaving it to a batch-script trap because only exprun knows when
// the checkpoint is in place: `scontrol requeue` ends the job's tasks at once.
#pragma once

#include <string>

#include "dist/launch.hpp"

namespace exprun {

struct RequeueOutcome {
  bool requeued = false;
  std::string message;  // for stderr: what was requeued, or why nothing was
};

// The job id `scontrol requeue` takes: "<array job>_<task>" for an array task, else the job id.
std::string slurm_requeue_target(const dist::SlurmJob& job);

// Runs `scontrol requeue <target>` for the job this process runs in (rank 0 only; other ranks
// leave it to rank 0). Never throws: a process outside Slurm, a missing scontrol or its failure
// are reported in the outcome, and the run can still be continued by hand with --resume.
RequeueOutcome requeue_after_warning(const dist::Launch& launch);

}  // namespace exprun

#include "slurm/requeue.hpp"

#include <stdexcept>

#include "util/program.hpp"

namespace exprun {

std::string slurm_requeue_target(const dist::SlurmJob& job) {
  if (job.array_job_id && job.array_task_id)
    return std::to_string(*job.array_job_id) + "_" + std::to_string(*job.array_task_id);
  return std::to_string(job.job_id);
}

RequeueOutcome requeue_after_warning(const dist::Launch& launch) {
  if (!launch.slurm) {
    return {false,
            "SIGUSR1 outside a Slurm job: nothing to requeue; the run continues with --resume"};
  }
  if (launch.rank != 0)
    return {false, "rank " + std::to_string(launch.rank) + " leaves the requeue to rank 0"};
  const std::string target = slurm_requeue_target(*launch.slurm);
  const auto scontrol = find_on_path("scontrol");
  if (!scontrol) {
    return {false, "cannot requeue Slurm job " + target +
                       ": scontrol is not on the PATH; requeue it by hand (scontrol requeue " +
                       target + ") or resubmit it: it continues with --resume=auto"};
  }
  ProgramResult result;
  try {
    // The requeue ends this job's processes with SIGTERM, scontrol among them, possibly before
    // scontrol has its answer; it would report a requeue that happened as failed.
    result = run_program(*scontrol, {"requeue", target}, ChildTerm::kIgnored);
  } catch (const std::runtime_error& e) {
    return {false, "cannot requeue Slurm job " + target + ": " + e.what()};
  }
  if (result.exit_code != 0) {
    std::string said = result.err.empty() ? result.out : result.err;
    while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
    return {false, "scontrol requeue " + target + " failed (" +
                       (result.exit_code < 0 ? "signal " + std::to_string(result.term_signal)
                                             : "exit " + std::to_string(result.exit_code)) +
                       (said.empty() ? "" : ": " + said) +
                       "): the job ends here; resubmit it to continue"};
  }
  return {true,
          "requeued Slurm job " + target + ": it continues from latest.pt when it runs again"};
}

}  // namespace exprun

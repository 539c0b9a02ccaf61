#include "slurm/requeue.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <vector>

extern char** environ;

namespace exprun {
namespace {

// scontrol's exit status, or -errno when it could not be started. The child gets the default
// signal mask back: exprun blocks its stop signals in every thread (util/signal_thread).
int run_scontrol(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int error = posix_spawnp(&pid, argv[0], nullptr, &attributes, argv.data(), environ);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) return -error;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -errno;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

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
  const int status = run_scontrol({"scontrol", "requeue", target});
  if (status == -ENOENT) {
    return {false, "cannot requeue Slurm job " + target +
                       ": scontrol is not on the PATH; requeue it by hand (scontrol requeue " +
                       target + ") or resubmit it: it continues with --resume=auto"};
  }
  if (status < 0) {
    return {false, "cannot requeue Slurm job " + target +
                       ": cannot start scontrol: " + std::strerror(-status)};
  }
  if (status != 0) {
    return {false, "scontrol requeue " + target + " failed (exit " + std::to_string(status) +
                       "; its message is above): the job ends here, resubmit it to continue"};
  }
  return {true,
          "requeued Slurm job " + target + ": it continues from latest.pt when it runs again"};
}

}  // namespace exprun

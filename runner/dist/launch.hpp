// How this process was started: alone, or as one rank of several under torchrun, the generic
// env:// variables or a Slurm step. Detection is a pure function of the environment so that
// every launcher can be tested from a map, without the launcher (docs/distributed.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace exprun::dist {

// A launch environment that is inconsistent or that exprun must not start in (a Slurm batch
// script of several tasks): the message names the variable, its value and what was expected.
class LaunchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Launcher {
  kSingle,    // no launcher, or EXPRUN_DIST=off
  kTorchrun,  // torchrun / torch.distributed.run (TORCHELASTIC_* variables)
  kEnv,       // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set by hand or another launcher
  kSlurm,     // a task of a Slurm job step (srun)
};

// "single", "torchrun", "env", "slurm": the launcher's name in messages and reports.
const char* launcher_name(Launcher launcher);

// The Slurm job this process runs in, wherever SLURM_JOB_ID is set (also when another launcher
// started the ranks inside it): a requeued job keeps its ids and counts restarts.
struct SlurmJob {
  std::int64_t job_id = 0;                    // SLURM_JOB_ID
  std::optional<std::int64_t> array_job_id;   // SLURM_ARRAY_JOB_ID
  std::optional<std::int64_t> array_task_id;  // SLURM_ARRAY_TASK_ID
  std::int64_t restart_count = 0;             // SLURM_RESTART_COUNT; unset on the first run
};

struct Launch {
  Launcher launcher = Launcher::kSingle;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  // Ranks on this machine; unknown under Slurm, and under env:// without LOCAL_WORLD_SIZE.
  std::optional<int> local_world_size;
  // The rendezvous address; empty and 0 for a single process.
  std::string master_addr;
  int master_port = 0;
  // torchrun's agent already serves a TCPStore at the master address (binding its port again
  // collides): every rank joins it as a client under store_prefix. Otherwise rank 0 hosts the
  // store and store_prefix is empty.
  bool join_agent_store = false;
  std::string store_prefix;
  // TORCHELASTIC_RESTART_COUNT under torchrun: how often the agent has restarted the workers.
  std::optional<int> elastic_restart_count;
  std::optional<SlurmJob> slurm;
  // One line for people, as `exprun plan` prints it: "single process", "torchrun rank 0 of 2
  // (local 0 of 2), master 127.0.0.1:29500, joins the agent's store (attempt 0)".
  std::string description;

  // More than one rank: training must synchronise. A launcher's world of one is not.
  bool distributed() const { return world_size > 1; }
};

// The port of a Slurm step's rendezvous when MASTER_PORT is not set: 15000 plus the job id's
// last four digits, as Lightning derives it, so that two jobs sharing a node differ.
int slurm_default_port(std::int64_t job_id);

// Decides the launch from `env` alone (docs/distributed.md, "Launch detection"):
//   EXPRUN_DIST=off                                   one process, nothing else read
//   TORCHELASTIC_RUN_ID or TORCHELASTIC_USE_AGENT_STORE   torchrun
//   RANK, WORLD_SIZE, LOCAL_RANK or LOCAL_WORLD_SIZE  env://
//   SLURM_STEP_ID or SLURM_STEP_NUM_TASKS             a Slurm step
//   SLURM_JOB_ID with SLURM_NTASKS > 1, no step       refused: start the ranks with srun
//   none of these                                     one process, as exprun always ran
// Throws LaunchError for a malformed or missing variable, or the batch script.
Launch detect_launch(const std::map<std::string, std::string>& env);

// detect_launch() of this process's environment.
Launch detect_launch_from_process();

}  // namespace exprun::dist

// Running other programs (Slurm's sbatch and squeue, the PyTorch reference) without a shell:
// found on PATH, started with posix_spawn, their output captured.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace exprun {

// The first executable file called `name` in a directory of PATH; none when there is none.
std::optional<std::filesystem::path> find_on_path(const std::string& name);

struct ProgramResult {
  int exit_code = -1;   // the exit status, or -1 when a signal ended it
  int term_signal = 0;  // that signal, else 0
  std::string out;
  std::string err;
};

// How the child takes SIGTERM.
enum class ChildTerm {
  kDefault,  // it ends the child
  // Ignored, for a child that must outlive the SIGTERM its own action causes: `scontrol
  // requeue` of the job exprun runs in makes Slurm send SIGTERM to every process of the job,
  // scontrol included, while scontrol may still wait for slurmctld's answer. exprun itself
  // ignores SIGTERM for the instant of the spawn (a child inherits only an ignored
  // disposition), so only a caller that ignores SIGTERM anyway may ask for it.
  kIgnored,
};

// Runs `program` with `args` (argv[1...]), stdin from /dev/null, and waits for it. The child
// starts with the stop signals unblocked and at their default action (SIGTERM as `term` says):
// exprun blocks them in every thread (util/signal_thread.hpp), and a child inherits the mask,
// so Ctrl-C would otherwise not reach sbatch. Throws std::runtime_error when it cannot be
// started.
ProgramResult run_program(const std::filesystem::path& program,
                          const std::vector<std::string>& args,
                          ChildTerm term = ChildTerm::kDefault);

}  // namespace exprun

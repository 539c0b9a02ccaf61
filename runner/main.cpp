// exprun: declarative experiments for heatmap landmark detectors.
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "memory/memory_tracker.hpp"
#include "util/allocator_reuse.hpp"
#include "util/signal_thread.hpp"

namespace {

constexpr const char* kUsage = R"(usage: exprun COMMAND [ARGS] [--help]
       exprun FILE.toml [options]          same as: exprun run FILE.toml

commands:
  run FILE.toml        train every stage; results in results/<experiment>/<run-id>/
                       (a file with [sweep]: every trial, each in its own run directory)
  plan FILE.toml       validate, open datasets, build models, print the stages (and the
                       sweep's trials); train nothing
  plugins [KIND]       list plugins (datasets, models, losses, memory)
  describe KIND/NAME   a plugin's parameters with types, defaults and docs
  tune FILE.toml       measure micro-batch x accumulation for each stage: peak memory, speed
  bench FILE.toml      peak memory and images/s of one stage at several micro-batch x
                       accumulation plans, with and without mixed precision and checkpointing;
                       with --data, its data pipeline alone against what the model consumes;
                       with --training, the runner against the bare loop and PyTorch
  compare RUN ...      runs side by side: the config keys that differ, metrics with deltas
                       and the best marked (RUN: report.json, run or sweep directory)
  slurm submit|status  a sweep as a Slurm job array, one task per trial; each trial's state
  eval FILE.toml --checkpoint C
                       score a checkpoint on a split (default test); writes a JSON report
  predict --checkpoint C IMAGE... --out DIR
                       landmarks of each image as Aariz JSON, plus an overlay PNG
  data FILE.toml       read a stage's dataset: counts per split, image sizes, mm/px per
                       machine, landmarks, files skipped and why
  synth --format aariz|isbi2015 --out DIR --count N
                       write generated cephalograms as a dataset tree in that layout
  version              exprun, LibTorch, compiler, C++ standard and ABI flags it was built with

Each command takes --help. Docs: docs/experiment-file.md, docs/cli.md.
)";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace exprun::cli;
  // Before anything can start a thread, so that every thread inherits the blocked stop
  // signals. Should it fail, a run falls back to signal handlers (run/interrupt).
  exprun::start_signal_thread();
  set_executable_path(argv[0]);
  // Before any tensor exists, so that CPU peak memory counts everything (report, tuner).
  exprun::install_cpu_memory_tracker();
  exprun::reuse_freed_memory();
  std::vector<std::string> args;
  const int hoisted = guarded([&] {
    args = with_global_options_after_command({argv + 1, argv + argc});
    return int{kOk};
  });
  if (hoisted != kOk) return hoisted;
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? kUsageError : kOk;
  }
  const std::string command = args[0];
  if (command == "version" || command == "--version")
    return version_command({args.begin() + 1, args.end()});
  if (ends_with(command, ".toml")) return run_command(args);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "run") return run_command(rest);
  if (command == "plan") return plan_command(rest);
  if (command == "plugins") return plugins_command(rest);
  if (command == "describe") return describe_command(rest);
  if (command == "tune") return tune_command(rest);
  if (command == "bench") return bench_command(rest);
  if (command == "synth") return synth_command(rest);
  if (command == "data") return data_command(rest);
  if (command == "eval") return eval_command(rest);
  if (command == "predict") return predict_command(rest);
  if (command == "compare") return compare_command(rest);
  if (command == "slurm") return slurm_command(rest);
  std::cerr << "exprun: error: unknown command '" << command << "'\n\n" << kUsage;
  return kUsageError;
}

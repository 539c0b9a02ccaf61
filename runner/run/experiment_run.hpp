// Runs a whole experiment: the run directory, every stage in order, report.json.
#pragma once

#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>
#include <string>

#include "config/experiment.hpp"
#include "dist/process_group.hpp"
#include "plugins/registry.hpp"

namespace exprun {

struct RunOutcome {
  std::filesystem::path run_dir;
  nlohmann::json report;
  bool ok = false;
  int interrupted_by = 0;      // SIGINT or SIGTERM when a signal stopped the run (ok is then false)
  bool nothing_to_do = false;  // a rank other than 0: rank 0 found the run completed already
};

// Sets LibTorch's intra-op threads to compute_thread_count (0: this process's share of the cores
// it may run on) and returns the count set. LibTorch otherwise uses one thread here. An OpenBLAS
// under LibTorch gets the same count (util/blas_library.hpp).
std::int64_t apply_thread_count(std::int64_t threads, int ranks_on_machine = 1);

// <output>/<experiment>/<started as a UTC timestamp>, with -2, -3... when that exists already.
// The caller keeps `started` for the report's started_at, so that the two always agree.
std::filesystem::path make_run_dir(const std::filesystem::path& output, const std::string& name,
                                   std::time_t started);

// Never throws for a failing stage: the failure is recorded in the report and ok is false.
// run_dir: where to write the run (created if missing; a sweep passes its trial-NNN); empty:
// a new make_run_dir(experiment.output_dir, experiment.name).
// resume: continue the unfinished run in run_dir (which must then be given): completed stages
// are kept, the interrupted one continues from its newest valid checkpoint. Throws when the
// run cannot be resumed (no report, another configuration).
// The run directory is locked (run/run_lock.hpp) for the whole run: throws when another process
// holds it. With resume, the folder is first shown to be a run of this experiment, so that a
// folder given by mistake is left untouched. Temporary files that a crashed writer left in it
// are removed once the lock is held.
// Throws ConfigError, before anything is written, when EXPRUN_FAULT names no point of this
// experiment (util/fault_injection.hpp).
// group: this process is one rank of a data-parallel launch (null: one process). Rank 0 decides
// the run directory as above (run_dir, resume) and alone locks and writes it; the other ranks
// ignore run_dir and resume, take rank 0's plan (run/rank_plan.hpp) and train their shares.
RunOutcome run_experiment(const Experiment& experiment, const Registry& registry,
                          const std::filesystem::path& run_dir = {}, bool resume = false,
                          std::shared_ptr<dist::ProcessGroup> group = nullptr);

// Whether `relative` (a path inside a run directory) is a file the run writes atomically:
// report.json, experiment.toml, resolved.toml, plugins.json, STAGE/metrics.jsonl, STAGE/curves.png
// and STAGE/checkpoints/*.pt. Only their temporaries are taken for leftovers of a crash.
bool is_atomic_run_file(const std::filesystem::path& relative);

// ConfigError when EXPRUN_FAULT is set to something this experiment never reaches.
void check_fault_points(const Experiment& experiment);

// The resolved config as TOML, for the run directory.
std::string resolved_config_toml(const nlohmann::json& config);

}  // namespace exprun

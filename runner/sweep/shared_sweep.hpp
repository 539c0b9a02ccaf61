// A sweep directory that several processes share (`exprun run FILE --trial N --sweep-dir DIR`):
// each process runs its trials, a Slurm array task each, at the same time as the others. So no
// process owns sweep.json: each trial writes its own status file, DIR/status/trial-NNN.json,
// and sweep.json is rebuilt from the listing and every status file, under a lock, whenever a
// trial starts or ends (docs/cli.md, "A sweep directory shared by several processes").
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "plugins/registry.hpp"
#include "sweep/sweep_loader.hpp"
#include "sweep/sweep_run.hpp"

namespace exprun {

// DIR/status/trial-NNN.json.
std::filesystem::path trial_status_file(const std::filesystem::path& sweep_dir, std::size_t index);

// Creates DIR (when missing) with experiment.toml, the file as given with the overrides, and
// a sweep.json listing every trial of the sweep as pending. An existing DIR must be a sweep of
// the same file text and overrides: throws ConfigError naming DIR otherwise, touching nothing.
void open_shared_sweep(const std::filesystem::path& sweep_dir, const SweepFile& file,
                       const std::vector<std::string>& overrides,
                       const std::string& experiment_name);

// Rewrites DIR/sweep.json from its listing and DIR/status/*.json and returns it. The sweep is
// "running" while a trial is pending or running, then "completed" when every trial completed,
// "interrupted" when one was interrupted, else "failed". Throws JsonInputError naming a file
// that cannot be read.
nlohmann::json rebuild_shared_sweep(const std::filesystem::path& sweep_dir);

// Whether DIR is a shared sweep directory (it has status files to rebuild sweep.json from).
bool is_shared_sweep(const std::filesystem::path& sweep_dir);

// Runs `trials` one after another into DIR/trial-NNN. resume_auto: a trial whose directory
// holds a completed run is skipped, an unfinished one resumed, any other started. Without it a
// trial directory that holds a run already is an error (nothing is overwritten). A signal stops
// after the trial it arrived in, as in run_sweep. `sweep` in the outcome is the rebuilt
// sweep.json; `ok` says whether every trial *this process* ran or skipped completed.
// group: rank 0 of the ranks that train the (one) trial together; the other ranks run it with
// run_experiment and take rank 0's plan, "nothing to do" for a trial that completed already.
SweepOutcome run_shared_sweep_trials(const std::filesystem::path& sweep_dir, const SweepFile& file,
                                     const std::vector<LoadedTrial>& trials,
                                     const std::vector<std::string>& overrides,
                                     const Registry& registry, bool resume_auto,
                                     std::shared_ptr<dist::ProcessGroup> group = nullptr);

}  // namespace exprun

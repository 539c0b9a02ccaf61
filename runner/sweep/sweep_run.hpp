// Runs the trials of a sweep one after another, each in its own run directory inside one
// sweep directory, keeping sweep.json current after every trial.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "dist/process_group.hpp"
#include "plugins/registry.hpp"
#include "sweep/sweep_loader.hpp"

namespace exprun {

struct SweepOutcome {
  std::filesystem::path sweep_dir;
  nlohmann::json sweep;    // the final sweep.json
  bool ok = false;         // every trial completed
  int interrupted_by = 0;  // SIGINT or SIGTERM when a signal stopped the sweep (ok is then false)
};

// The sweep directory's experiment.toml: the file as given, under a first line naming it and
// the user's --set overrides.
std::string sweep_file_copy(const SweepFile& file, const std::vector<std::string>& overrides);

// Whether two such copies are of one sweep: the same text and --set options, whatever path
// named the file (./s.toml, or the absolute path that slurm submit gives its tasks).
bool copies_of_one_sweep(const std::string& a, const std::string& b);

// One trial run to its end in trial_dir (resume: continue the unfinished run there). Never
// throws for the trial's own failure: a stage failing or any other error becomes `error`.
struct TrialEnd {
  nlohmann::json report;  // the trial's report.json, or null when none was written
  std::string error;      // empty: completed
  double seconds = 0;     // this attempt's wall time
  int interrupted_by = 0;
};
// group: this process is rank 0 of the ranks training the trial (run_experiment's group).
TrialEnd run_trial(const LoadedTrial& trial, const Registry& registry,
                   const std::filesystem::path& trial_dir, bool resume = false,
                   std::shared_ptr<dist::ProcessGroup> group = nullptr);

// trials: validated already (load_trials). Creates <output>/<name>/<UTC time>/ with a copy of
// the experiment file, sweep.json and trial-NNN/ per trial. A failing trial (a stage failing
// when built or trained, or any other error) is recorded and the next one still runs.
// A signal stops the sweep after the trial it arrived in: that trial is "interrupted", the ones
// after it "not_run" (not failed).
// overrides: the user's --set arguments, recorded in sweep.json.
SweepOutcome run_sweep(const SweepFile& file, const std::vector<LoadedTrial>& trials,
                       const std::vector<std::string>& overrides, const Registry& registry);

}  // namespace exprun

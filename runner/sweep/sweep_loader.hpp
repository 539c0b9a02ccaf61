// A sweep's trials as validated experiments. Each trial is the experiment file loaded by the
// ordinary loader with the user's --set overrides followed by the trial's values as more
// overrides, so a swept key is read, merged and checked exactly as the same --set would be.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "config/experiment_loader.hpp"
#include "sweep/sweep_spec.hpp"

namespace exprun {

struct SweepFile {
  std::string path;
  std::string text;
  std::optional<SweepSpec> spec;  // none: the file has no [sweep]
};

// Reads the file and its [sweep] table. Throws ConfigError for an unreadable file, a TOML
// syntax error (worded as the loader words it) or a malformed [sweep].
SweepFile read_sweep_file(const std::string& path);

struct LoadedTrial {
  SweepTrial trial;
  Experiment experiment;
};

// "memory.micro_batch=2, optimizer.lr=0.001"
std::string trial_values_text(const SweepTrial& trial);

// Prefixes an error about one trial: "sweep trial 2 (<values>): <message>".
std::string trial_error(const SweepTrial& trial, const std::string& message);

// Loads one trial. A loader error caused by a swept value names that value and where the file
// lists it, in place of the --set it was applied as:
//   sweep trial 2 (memory.micro_batch=0): q.toml:14:30: stages.train.memory.micro_batch: ...
// Any other error is prefixed with all the trial's values.
Experiment load_trial(const SweepFile& file, const SweepTrial& trial,
                      const std::vector<std::string>& overrides, const SchemaSource& plugins);

// The chosen trials (every trial when `chosen` is empty), in index order, each once, each
// loaded: the first invalid one throws. Also rejects a swept key that --set gives too, and a chosen
// index the sweep does not have.
std::vector<LoadedTrial> load_trials(const SweepFile& file, const std::vector<std::size_t>& chosen,
                                     const std::vector<std::string>& overrides,
                                     const SchemaSource& plugins);

// For commands that measure one configuration (exprun tune): a file without [sweep] loads as
// usual; with one, the first trial's values apply beneath the user's --set overrides (so a
// --set of a swept key picks another value). `swept` says whether there was a sweep.
Experiment load_first_trial(const std::string& path, const std::vector<std::string>& overrides,
                            const SchemaSource& plugins, bool* swept = nullptr);

}  // namespace exprun

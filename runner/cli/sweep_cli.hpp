// What `exprun run` and `exprun plan` do with an experiment file that has a [sweep]: run the
// trials and print the summary table; list the trials and check them.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "dist/process_group.hpp"
#include "plugins/registry.hpp"
#include "sweep/sweep_loader.hpp"

namespace exprun::cli {

// --trial values: trial numbers, each option one number or a comma-separated list ("0,2").
// Throws po::error for anything else.
std::vector<std::size_t> parse_trial_option(const std::vector<std::string>& values);

// exprun run on a sweep: validates the chosen trials (all when `chosen` is empty), runs them,
// prints the summary. Returns the exit code: 128 + the signal if Ctrl-C or SIGTERM stopped it
// (printing how to run the unfinished trials), else 1 if any trial failed.
// shared_dir: --sweep-dir, a sweep directory that other processes may be running trials of
// too (sweep/shared_sweep.hpp); empty: a new sweep directory. resume_auto: --resume=auto.
int run_sweep_command(const SweepFile& file, const std::vector<std::size_t>& chosen,
                      const std::vector<std::string>& overrides, const Registry& registry,
                      const std::filesystem::path& shared_dir = {}, bool resume_auto = false,
                      std::shared_ptr<dist::ProcessGroup> group = nullptr);

// exprun plan on a sweep: lists every trial as --set arguments and validates the chosen ones;
// returns the trials whose stages `plan` should build and print: the chosen ones, else every
// trial of a short sweep, else trial 0.
std::vector<LoadedTrial> plan_sweep_trials(const SweepFile& file,
                                           const std::vector<std::size_t>& chosen,
                                           const std::vector<std::string>& overrides,
                                           const Registry& registry);

// An error about the trials that --trial names when the file has no [sweep]; does nothing if
// none was named.
void reject_trials_without_sweep(const SweepFile& file, const std::vector<std::size_t>& chosen);

// --sweep-dir names where a file with a [sweep] puts its trials, --run-dir where a file without
// one puts its run (`run`, `slurm submit`): throws ConfigError for the other combinations.
// `given` is the file as the user wrote it, for the message.
void check_directory_options(const SweepFile& file, const std::string& given,
                             const std::string& sweep_dir, const std::string& run_dir);

// For commands that measure one configuration (tune, bench): load_first_trial, with a note on
// stderr when the file has a [sweep], naming `command`.
Experiment load_one_configuration(const std::string& file,
                                  const std::vector<std::string>& overrides,
                                  const Registry& registry, const std::string& command);

}  // namespace exprun::cli

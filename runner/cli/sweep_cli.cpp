#include "cli/sweep_cli.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "cli/cli_common.hpp"
#include "config/config_error.hpp"
#include "sweep/shared_sweep.hpp"
#include "sweep/sweep_run.hpp"
#include "sweep/sweep_summary.hpp"
#include "util/interrupt_flag.hpp"
#include "util/text.hpp"

namespace exprun::cli {
namespace {

// A sweep this short is built and printed in full by plan; a longer one only its first trial.
constexpr std::size_t kPlanAllTrialsUpTo = 3;

std::string set_words(const SweepTrial& trial) {
  std::vector<std::string> words;
  for (const auto& argument : trial.set_arguments())
    words.push_back("--set " + shell_quote(argument));
  return join(words, " ");
}

void print_trial_list(const SweepFile& file) {
  const SweepSpec& spec = *file.spec;
  std::printf("sweep  (%s): %zu trial(s), %s of %s\n", spec.where.c_str(), spec.trial_count(),
              spec.mode().c_str(), join(spec.keys(), ", ").c_str());
  for (const auto& trial : spec.trials()) {
    std::printf("  trial %-4zu %s\n", trial.index, set_words(trial).c_str());
  }
}

}  // namespace

std::vector<std::size_t> parse_trial_option(const std::vector<std::string>& values) {
  std::vector<std::size_t> out;
  for (const auto& value : values) {
    std::size_t begin = 0;
    while (begin <= value.size()) {
      const std::size_t end = std::min(value.find(',', begin), value.size());
      const std::string number = value.substr(begin, end - begin);
      const bool digits = !number.empty() && number.size() <= 9 &&
                          number.find_first_not_of("0123456789") == std::string::npos;
      if (!digits) {
        throw po::error("--trial " + value +
                        ": expected a trial number (0, 1, ...) or a list "
                        "such as 0,2");
      }
      out.push_back(std::stoul(number));
      begin = end + 1;
    }
  }
  return out;
}

void reject_trials_without_sweep(const SweepFile& file, const std::vector<std::size_t>& chosen) {
  if (chosen.empty() || file.spec) return;
  throw ConfigError("--trial " + std::to_string(chosen.front()) + ": " + file.path +
                    " has no [sweep] table; --trial picks trials of a sweep");
}

void check_directory_options(const SweepFile& file, const std::string& given,
                             const std::string& sweep_dir, const std::string& run_dir) {
  if (!sweep_dir.empty() && !file.spec) {
    throw ConfigError("--sweep-dir: " + given +
                      " has no [sweep] table; --run-dir DIR names the directory of a single run");
  }
  if (!run_dir.empty() && file.spec) {
    throw ConfigError("--run-dir: " + given +
                      " has a [sweep]: its trials go into --sweep-dir DIR (trial-NNN/ each)");
  }
}

int run_sweep_command(const SweepFile& file, const std::vector<std::size_t>& chosen,
                      const std::vector<std::string>& overrides, const Registry& registry,
                      const std::filesystem::path& shared_dir, bool resume_auto,
                      std::shared_ptr<dist::ProcessGroup> group) {
  // Every chosen trial is checked before the first one trains: a typo in trial 7 should not
  // surface hours into the sweep.
  const std::vector<LoadedTrial> trials = load_trials(file, chosen, overrides, registry);
  const bool shared = !shared_dir.empty();
  const SweepOutcome outcome = shared ? run_shared_sweep_trials(shared_dir, file, trials, overrides,
                                                                registry, resume_auto, group)
                                      : run_sweep(file, trials, overrides, registry);
  const auto path = (outcome.sweep_dir / "sweep.json").string();
  if (shared && outcome.interrupted_by == 0) {
    // Other processes may still be running the rest: this one reports on its own trials.
    std::vector<std::string> numbers;
    for (const auto& t : trials) numbers.push_back(std::to_string(t.trial.index));
    std::printf("sweep trial(s) %s %s; the sweep so far (%s): %s\n", join(numbers, ",").c_str(),
                outcome.ok ? "completed" : "FAILED", sweep_status_counts(outcome.sweep).c_str(),
                path.c_str());
    std::printf("%s", sweep_summary_table(outcome.sweep).c_str());
    return outcome.ok ? int{kOk} : int{kRunFailed};
  }
  if (outcome.interrupted_by != 0) {
    // Trials the signal kept from running are not failures; say which to run again.
    std::printf("sweep interrupted (%s; %s): %s\n", stop_signal_name(outcome.interrupted_by),
                sweep_status_counts(outcome.sweep).c_str(), path.c_str());
  } else if (outcome.ok) {
    std::printf("sweep completed: %s\n", path.c_str());
  } else {
    std::size_t failed = 0;
    for (const auto& t : outcome.sweep["trials"]) failed += t["status"] == "failed";
    std::printf("sweep FAILED (%zu of %zu trial(s) failed): %s\n", failed, trials.size(),
                path.c_str());
  }
  std::printf("%s", sweep_summary_table(outcome.sweep).c_str());
  if (outcome.interrupted_by != 0) {
    std::vector<std::string> numbers;
    if (shared) {
      // This process's trials that did not end; the others' are theirs to finish.
      for (const auto& t : outcome.sweep["trials"]) {
        const bool mine = std::any_of(trials.begin(), trials.end(), [&](const LoadedTrial& l) {
          return t["index"] == l.trial.index;
        });
        if (mine && t["status"] != "completed" && t["status"] != "failed")
          numbers.push_back(std::to_string(t["index"].get<std::size_t>()));
      }
    } else {
      for (const std::size_t index : unfinished_trials(outcome.sweep))
        numbers.push_back(std::to_string(index));
    }
    std::vector<std::string> words = {"--trial", join(numbers, ",")};
    if (shared) words.insert(words.end(), {"--sweep-dir", shared_dir.string(), "--resume=auto"});
    const std::string again = rerun_command(file.path, overrides, words);
    std::printf(shared ? "Continue them in the same sweep directory with:\n  %s\n"
                       : "Run the unfinished trials (in a new sweep directory) with:\n  %s\n",
                again.c_str());
    std::fflush(stdout);
    requeue_if_warned(outcome.interrupted_by);
    return 128 + outcome.interrupted_by;
  }
  return outcome.ok ? int{kOk} : int{kRunFailed};
}

std::vector<LoadedTrial> plan_sweep_trials(const SweepFile& file,
                                           const std::vector<std::size_t>& chosen,
                                           const std::vector<std::string>& overrides,
                                           const Registry& registry) {
  print_trial_list(file);
  std::fflush(stdout);
  std::vector<LoadedTrial> trials = load_trials(file, chosen, overrides, registry);
  if (chosen.empty()) {
    std::printf("every trial's configuration is valid\n");
    if (trials.size() > kPlanAllTrialsUpTo) {
      std::printf("(built below: trial 0 only; exprun plan %s --trial N builds another)\n",
                  shell_quote(file.path).c_str());
      trials.resize(1);
    }
  } else {
    std::printf("the configuration of each chosen trial is valid\n");
  }
  return trials;
}

Experiment load_one_configuration(const std::string& file,
                                  const std::vector<std::string>& overrides,
                                  const Registry& registry, const std::string& command) {
  bool swept = false;
  Experiment experiment = load_first_trial(file, overrides, registry, &swept);
  if (swept) {
    std::cerr << "exprun: note: " << file << " has a [sweep]: " << command
              << " measures its trial 0; --set a swept key to measure another value\n";
  }
  return experiment;
}

}  // namespace exprun::cli

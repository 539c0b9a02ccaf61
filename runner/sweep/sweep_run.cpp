#include "sweep/sweep_run.hpp"

#include <c10/util/Exception.h>

#include <chrono>
#include <ctime>

#include "run/experiment_run.hpp"
#include "sweep/sweep_report.hpp"
#include "train/progress.hpp"
#include "util/atomic_file.hpp"

namespace exprun {

std::string sweep_file_copy(const SweepFile& file, const std::vector<std::string>& overrides) {
  std::string copy = "# " + file.path + " as given";
  for (const auto& o : overrides) copy += ", --set " + o;
  return copy + "\n" + file.text;
}

bool copies_of_one_sweep(const std::string& a, const std::string& b) {
  const std::size_t a_end = a.find('\n');
  const std::size_t b_end = b.find('\n');
  if (a_end == std::string::npos || b_end == std::string::npos) return a == b;
  if (a.compare(a_end, std::string::npos, b, b_end, std::string::npos) != 0) return false;
  // The first lines, from the last " as given" on (the --set list), without the path.
  const std::string marker = " as given";
  const std::size_t a_marker = a.rfind(marker, a_end);
  const std::size_t b_marker = b.rfind(marker, b_end);
  if (a_marker == std::string::npos || b_marker == std::string::npos) return a == b;
  return a.compare(a_marker, a_end - a_marker, b, b_marker, b_end - b_marker) == 0;
}

TrialEnd run_trial(const LoadedTrial& trial, const Registry& registry,
                   const std::filesystem::path& trial_dir, bool resume,
                   std::shared_ptr<dist::ProcessGroup> group) {
  TrialEnd end;
  const auto start = std::chrono::steady_clock::now();
  try {
    RunOutcome run = run_experiment(trial.experiment, registry, trial_dir, resume, group);
    end.report = run.report;
    end.interrupted_by = run.interrupted_by;
    if (!run.ok) end.error = run.report.value("error", std::string("the run failed"));
  } catch (const c10::Error& e) {
    end.error = e.what_without_backtrace();
  } catch (const std::exception& e) {
    end.error = e.what();
  }
  end.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return end;
}

SweepOutcome run_sweep(const SweepFile& file, const std::vector<LoadedTrial>& trials,
                       const std::vector<std::string>& overrides, const Registry& registry) {
  // experiment.name and experiment.output cannot be swept, so every trial agrees on them.
  const Experiment& first = trials.front().experiment;
  // Stages cannot be swept, so every trial has the first one's: a bad EXPRUN_FAULT is refused
  // before the sweep directory exists.
  check_fault_points(first);
  SweepOutcome outcome;
  const std::time_t started = std::time(nullptr);
  outcome.sweep_dir = make_run_dir(first.output_dir, first.name, started);

  write_file_atomically(outcome.sweep_dir / "experiment.toml", sweep_file_copy(file, overrides));

  std::vector<SweepTrial> listed;
  for (const auto& t : trials) listed.push_back(t.trial);
  SweepReport report(*file.spec, first.name, file.path, overrides, listed,
                     outcome.sweep_dir / "sweep.json", started);
  report.write();
  Progress::message("exprun: sweep " + outcome.sweep_dir.string() + ": " +
                    std::to_string(trials.size()) + " of " +
                    std::to_string(file.spec->trial_count()) + " trials");

  for (std::size_t n = 0; n < trials.size(); ++n) {
    const SweepTrial& trial = trials[n].trial;
    Progress::message("exprun: sweep trial " + std::to_string(trial.index) + " (" +
                      std::to_string(n + 1) + "/" + std::to_string(trials.size()) +
                      "): " + trial_values_text(trial));
    report.start_trial(trial.index);
    report.write();
    const TrialEnd end =
        run_trial(trials[n], registry, outcome.sweep_dir / trial_dir_name(trial.index));
    const std::string& error = end.error;
    outcome.interrupted_by = end.interrupted_by;
    report.finish_trial(trial.index, end.report, error, end.seconds);
    report.write();
    // Ctrl-C or SIGTERM stops the sweep, not only the trial it arrived in.
    if (outcome.interrupted_by != 0) {
      Progress::message("exprun: sweep stopped; trial " + std::to_string(trial.index) +
                        " was interrupted and the remaining trials did not run (rerun them "
                        "with --trial)");
      break;
    }
    if (!error.empty()) {
      Progress::message("exprun: sweep trial " + std::to_string(trial.index) + " failed: " + error);
    }
  }
  report.finish();
  report.write();
  outcome.sweep = report.json();
  outcome.ok = report.ok();
  return outcome;
}

}  // namespace exprun

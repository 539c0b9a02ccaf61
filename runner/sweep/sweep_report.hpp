// sweep.json: one document for a whole sweep, rewritten after every trial, with each trial's
// swept values, status and the key results of its stages (docs/report.md describes each field).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "sweep/sweep_spec.hpp"

namespace exprun {

inline constexpr int kSweepSchemaVersion = 1;

// "trial-007": a trial's run directory inside the sweep directory.
std::string trial_dir_name(std::size_t index);

// The results of one element of a report.json's "stages" that a sweep compares: best
// validation MRE, SD and SDR, best epoch, peak memory, speed, batch plan.
nlohmann::json stage_summary(const nlohmann::json& stage);

// A trial's entry in sweep.json before it runs: its values, "pending", no results.
nlohmann::json pending_trial_entry(const SweepTrial& trial);

// Fills a trial's entry once it ended: "completed" when error is empty, "interrupted" when the
// run report says so (Ctrl-C, SIGTERM), else "failed"; its error, wall time and the summary of
// each stage. run_report: the trial's report.json, or null when it failed before writing one.
void record_trial_end(nlohmann::json& entry, const nlohmann::json& run_report,
                      const std::string& error, double seconds);

// Why `entry`, read back from a trial's status file, is not an entry exprun wrote for the trial
// that sweep.json lists as `listed` (null: sweep.json lists no trial of that index): a field of
// another type, a run directory or status it never writes, values or --set arguments of another
// trial. Empty when it is one. Status files are merged into sweep.json, which must stay valid.
std::string trial_entry_problem(const nlohmann::json& entry, const nlohmann::json& listed);

class SweepReport {
 public:
  // trials: the ones this sweep runs, every one "pending" until it starts; started: the time
  // the sweep id was made from.
  SweepReport(const SweepSpec& spec, const std::string& experiment, const std::string& source_file,
              const std::vector<std::string>& overrides, const std::vector<SweepTrial>& trials,
              std::filesystem::path path, std::time_t started);
  void start_trial(std::size_t index);
  // run_report: the trial's report.json, or null when it failed before writing one. An empty
  // error means the trial completed; a run report whose status is "interrupted" (Ctrl-C,
  // SIGTERM) makes the trial "interrupted", and the sweep stopped.
  void finish_trial(std::size_t index, const nlohmann::json& run_report, const std::string& error,
                    double seconds);
  // "completed" when every trial did, "interrupted" when a signal stopped the sweep (the trials
  // it never started become "not_run", not failures), else "failed".
  void finish();
  bool ok() const;
  // Writes sweep.json atomically.
  void write() const;
  const nlohmann::json& json() const { return doc_; }

 private:
  nlohmann::json& trial(std::size_t index);
  nlohmann::json doc_;
  std::filesystem::path path_;
  std::chrono::steady_clock::time_point start_;
  bool stopped_ = false;  // a trial was interrupted: the sweep goes no further
};

}  // namespace exprun

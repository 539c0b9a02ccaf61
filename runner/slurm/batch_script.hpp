// The batch script `exprun slurm submit` writes: a job array of one task per sweep trial (or one
// job for a file without [sweep]), each task `srun exprun run FILE --trial N --sweep-dir DIR
// --resume=auto`. Pure text from a struct, so that every line can be tested without Slurm
// (docs/distributed.md, "A sweep on Slurm", says why each line is there).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace exprun::slurm {

// Seconds before the time limit at which Slurm sends SIGUSR1 to the tasks (--signal-lead).
inline constexpr std::int64_t kDefaultSignalLeadSeconds = 120;
// sbatch takes --signal=SIG@TIME with TIME up to this.
inline constexpr std::int64_t kMaxSignalLeadSeconds = 65535;
// Slurm may send the signal up to this much earlier than asked (its timer ticks once a minute).
inline constexpr std::int64_t kSignalEarlySeconds = 60;
// What a task needs from its start until it can save a checkpoint: loading plugins and data,
// building the model. A signal before then ends the task with nothing saved.
inline constexpr std::int64_t kStartupAllowanceSeconds = 60;

// The shortest limit that leaves a task time to start before the signal can come.
std::int64_t shortest_time_limit_seconds(std::int64_t signal_lead_seconds);

// Throws std::invalid_argument when `time` (as sbatch --time takes it) is malformed or, after
// Slurm rounds it up to whole minutes, shorter than shortest_time_limit_seconds. No limit
// (UNLIMITED, 0) passes: then the signal never comes.
void check_time_limit(const std::string& time, std::int64_t signal_lead_seconds);

struct BatchScriptOptions {
  std::string experiment;  // the job is named exprun-<experiment>
  // The sweep directory (a sweep) or the run directory (one run); absolute.
  std::filesystem::path dir;
  // A sweep: one array task per trial. None: a file without [sweep], one job, one run.
  std::optional<std::size_t> trial_count;
  std::optional<std::size_t> parallel;  // --parallel: array tasks running at once; none: all
  std::int64_t ranks = 1;               // --ntasks
  std::string time;                     // --time as given; empty: the partition's default
  std::int64_t signal_lead_seconds = kDefaultSignalLeadSeconds;
  // More #SBATCH lines, already checked and quoted (sbatch_option_lines).
  std::vector<std::string> sbatch_lines;
  std::filesystem::path working_dir;  // where the tasks start, as the submitting shell did
  std::filesystem::path exprun;       // absolute
  std::filesystem::path file;         // the experiment file, absolute
  // The rest of the run's command line, word by word: --set ..., --output ..., --plugins ...
  std::vector<std::string> run_options;
};

// "0-2" for 3 trials, "0-19%4" with parallel 4.
std::string array_spec(std::size_t trial_count, std::optional<std::size_t> parallel);

// DIR/slurm/: the script, the logs and job.json.
std::filesystem::path slurm_dir(const std::filesystem::path& dir);
// The log file as sbatch --output takes it: DIR/slurm/trial-%a.log (a sweep; %a is the array
// index) or DIR/slurm/run.log.
std::string log_file_pattern(const std::filesystem::path& dir, bool sweep);

// `word` as one argument of an #SBATCH line: unchanged when plain, else in double quotes with
// \, " and # escaped by a backslash (sbatch reads #SBATCH lines with its own quoting: a bare #
// starts a comment, spaces split arguments).
std::string sbatch_quote(const std::string& word);

// Throws std::invalid_argument when `dir` cannot be named in an #SBATCH line: a line break ends
// the line, and a backslash turns off sbatch's file name patterns (%a) for the log file.
void check_slurm_path(const std::filesystem::path& dir);

// The sbatch options given after `--`, one #SBATCH line each ("#SBATCH " excluded): a word that
// starts with '-' starts an option, the words after it up to the next one are its values
// (`-p debug`, `--partition=debug`). Throws std::invalid_argument for a first word that is no
// option, and for the options the script sets itself (--array, --output, --error, --open-mode,
// --ntasks, --time, --signal, --requeue, ...), naming the exprun option to use instead.
std::vector<std::string> sbatch_option_lines(const std::vector<std::string>& words);

// The whole script.
std::string batch_script_text(const BatchScriptOptions& options);

}  // namespace exprun::slurm

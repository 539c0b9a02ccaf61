// exprun slurm submit|status: a sweep as a Slurm job array, one task per trial, each running
// `exprun run FILE --trial N --sweep-dir DIR --resume=auto` (docs/distributed.md, "A sweep on
// Slurm"). The script is written by slurm/batch_script; this file decides what goes into it,
// checks everything before writing anything, and talks to sbatch and squeue.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/sweep_cli.hpp"
#include "config/config_error.hpp"
#include "run/auto_resume.hpp"
#include "run/experiment_run.hpp"
#include "slurm/batch_script.hpp"
#include "slurm/slurm_status.hpp"
#include "sweep/shared_sweep.hpp"
#include "sweep/sweep_loader.hpp"
#include "sweep/sweep_summary.hpp"
#include "util/atomic_file.hpp"
#include "util/json_file.hpp"
#include "util/program.hpp"
#include "util/text.hpp"

namespace exprun::cli {
namespace fs = std::filesystem;
namespace {

constexpr const char* kSlurmUsage =
    R"(usage: exprun slurm submit FILE.toml [options] [-- sbatch options...]
       exprun slurm status DIR

  submit FILE.toml     check every trial, write DIR/slurm/submit.sh (a job array of one task
                       per sweep trial, each resuming what an earlier attempt left) and sbatch it
  status DIR           each trial's state from its status file, and its task's state in
                       Slurm's queue

Each takes --help. Docs: docs/distributed.md, "A sweep on Slurm"; docs/cli.md.
)";

// A whole number for a count option: digits only, so that "-1" or "2x" are not read as
// something else.
std::int64_t parse_count(const std::string& option, const std::string& text, std::int64_t least,
                         std::int64_t most) {
  const bool digits = !text.empty() && text.size() <= 9 &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  const std::int64_t value = digits ? std::stoll(text) : -1;
  if (!digits || value < least || value > most) {
    throw po::error(option + " " + text + ": expected a whole number from " +
                    std::to_string(least) + " to " + std::to_string(most));
  }
  return value;
}

// The pure checks of slurm/ throw std::invalid_argument; on the command line that is a usage
// error (exit 2).
template <typename Check>
auto as_usage_error(Check check) {
  try {
    return check();
  } catch (const std::invalid_argument& e) {
    throw po::error(e.what());
  }
}

struct SplitArguments {
  std::vector<std::string> own;     // exprun's options
  std::vector<std::string> sbatch;  // after "--"
};

// Everything after the first "--" is sbatch's. main() moves a --plugins given before the
// command to the very end (with_global_options_after_command), which is after "--" when there
// is one: trailing --plugins words are exprun's, as sbatch has no such option.
SplitArguments split_at_double_dash(const std::vector<std::string>& args) {
  SplitArguments split;
  std::size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i) split.own.push_back(args[i]);
  if (i < args.size())
    split.sbatch.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
  std::vector<std::string> moved_back;
  for (;;) {
    auto& s = split.sbatch;
    if (!s.empty() && s.back().rfind("--plugins=", 0) == 0) {
      moved_back.insert(moved_back.begin(), s.back());
      s.pop_back();
    } else if (s.size() >= 2 && s[s.size() - 2] == "--plugins") {
      moved_back.insert(moved_back.begin(), s.end() - 2, s.end());
      s.resize(s.size() - 2);
    } else {
      break;
    }
  }
  split.own.insert(split.own.end(), moved_back.begin(), moved_back.end());
  return split;
}

// "/a/b/" -> "/a/b": a sweep is named after its directory's last component.
fs::path absolute_dir(const std::string& dir) {
  fs::path path = fs::absolute(dir).lexically_normal();
  while (!path.has_filename() && path.has_parent_path() && path != path.root_path())
    path = path.parent_path();
  return path;
}

int submit_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string file;
  std::vector<std::string> sets;
  std::string output;
  std::string parallel_text;
  std::string ranks_text = "1";
  std::string time;
  std::string lead_text = std::to_string(slurm::kDefaultSignalLeadSeconds);
  std::string sweep_dir_option;
  std::string run_dir_option;
  bool dry_run = false;
  po::options_description options(
      "exprun slurm submit FILE.toml [options] [-- sbatch options...]\n\nChecks every trial of "
      "the sweep, fixes its sweep directory (sweep.json lists every trial as pending), writes "
      "DIR/slurm/submit.sh, a job array of one task per trial, each running `exprun run FILE "
      "--trial N --sweep-dir DIR --resume=auto` under srun, and submits it with sbatch. A file "
      "without [sweep] is one job running `exprun run FILE --run-dir DIR --resume=auto`. "
      "Options after -- become more #SBATCH lines (-- --partition=gpu --gres=gpu:1).\n\n"
      "Options");
  add_common_options(options, common);
  options.add_options()("file", po::value(&file), "experiment file")(
      "set", po::value(&sets)->composing(),
      "override a key: KEY.PATH=VALUE (repeatable), passed on to every trial as to exprun run")(
      "output,o", po::value(&output),
      "results directory (default: experiment.output); the sweep directory is a new "
      "<output>/<experiment>/<run-id> unless --sweep-dir is given")(
      "sweep-dir", po::value(&sweep_dir_option),
      "with a [sweep]: the sweep directory (created if missing; an existing one must be this "
      "sweep's, and its trials continue)")(
      "run-dir", po::value(&run_dir_option),
      "without a [sweep]: the run directory (created if missing; an unfinished run there "
      "continues)")(
      "parallel", po::value(&parallel_text),
      "run at most K trials at once (the array's %K; default: as many as Slurm will)")(
      "ranks", po::value(&ranks_text),
      "ranks per trial (--ntasks): srun starts them as one data-parallel launch")(
      "time", po::value(&time),
      "time limit of each task as sbatch takes it: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, "
      "D-HH:MM:SS; must leave room for the signal lead time + 60 s + 60 s of start-up")(
      "signal-lead", po::value(&lead_text),
      "seconds before the time limit at which Slurm sends SIGUSR1 to the tasks (default 120)")(
      "dry-run", po::bool_switch(&dry_run),
      "write the directory and the script, print the sbatch command, submit nothing");
  po::positional_options_description positional;
  positional.add("file", 1);
  return guarded([&] {
    const SplitArguments split = split_at_double_dash(args);
    if (parse_or_show_help(split.own, options, positional, common)) return int{kOk};
    if (file.empty()) throw po::error("slurm submit needs an experiment file");

    // Every check that needs no file comes first, and every one comes before anything is
    // written: a refused submission leaves no directory behind.
    const std::int64_t ranks = parse_count("--ranks", ranks_text, 1, 1'000'000);
    const std::int64_t lead =
        parse_count("--signal-lead", lead_text, 1, slurm::kMaxSignalLeadSeconds);
    if (!time.empty()) as_usage_error([&] { slurm::check_time_limit(time, lead); });
    std::optional<std::size_t> parallel;
    if (!parallel_text.empty())
      parallel = static_cast<std::size_t>(parse_count("--parallel", parallel_text, 1, 1'000'000));
    const std::vector<std::string> sbatch_lines =
        as_usage_error([&] { return slurm::sbatch_option_lines(split.sbatch); });
    if (!sweep_dir_option.empty() && !run_dir_option.empty())
      throw po::error("--sweep-dir is for a sweep, --run-dir for one run: give one");
    const fs::path exprun = executable_path();
    if (exprun.empty() || !exprun.is_absolute())
      throw std::runtime_error("cannot tell where this exprun executable is, for the script");

    Registry registry;
    load_registry(registry, common);
    // The tasks read the file by its absolute path, and the sweep directory records the path
    // as given: both must say the same.
    const fs::path file_path = fs::absolute(file).lexically_normal();
    std::vector<std::string> overrides = sets;
    if (!output.empty()) overrides.push_back(output_override(output));
    const SweepFile sweep = read_sweep_file(file_path.string());
    check_directory_options(sweep, file, sweep_dir_option, run_dir_option);
    std::string experiment_name;
    std::string output_dir;
    std::size_t trial_count = 0;
    if (sweep.spec) {
      // Every trial is checked now: a typo in trial 7 should not surface when its task starts.
      const std::vector<LoadedTrial> trials = load_trials(sweep, {}, overrides, registry);
      experiment_name = trials.front().experiment.name;
      output_dir = trials.front().experiment.output_dir;
      trial_count = trials.size();
    } else {
      if (parallel) throw ConfigError("--parallel: " + file + " has no [sweep]: one job, one run");
      const Experiment experiment =
          parse_experiment(sweep.text, file_path.string(), overrides, registry);
      experiment_name = experiment.name;
      output_dir = experiment.output_dir;
    }

    const std::string& dir_option = sweep.spec ? sweep_dir_option : run_dir_option;
    fs::path dir;
    if (!dir_option.empty()) {
      dir = absolute_dir(dir_option);
      as_usage_error([&] { slurm::check_slurm_path(dir); });
      if (!sweep.spec && run_dir_state(dir) == RunDirState::kCompleted) {
        throw ConfigError("--run-dir " + dir.string() +
                          " holds a completed run: there is nothing to submit");
      }
    } else {
      // The run id is a UTC time stamp, so only what comes before it can be unfit.
      as_usage_error([&] { slurm::check_slurm_path(absolute_dir(output_dir) / experiment_name); });
    }

    // From here on, things are written. A directory that cannot be made or used is one of
    // submit's usage errors (exit 2); the messages name the option that chose it.
    try {
      if (dir.empty())
        dir = make_run_dir(absolute_dir(output_dir), experiment_name, std::time(nullptr));
      if (sweep.spec) {
        open_shared_sweep(dir, sweep, overrides, experiment_name);
      } else {
        try {
          fs::create_directories(dir);
        } catch (const fs::filesystem_error& e) {
          throw std::runtime_error("--run-dir " + dir_option + ": cannot create " +
                                   e.path1().string() + ": " + e.code().message());
        }
      }
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      throw ConfigError(e.what());
    }

    slurm::BatchScriptOptions script;
    script.experiment = experiment_name;
    script.dir = dir;
    if (sweep.spec) script.trial_count = trial_count;
    script.parallel = parallel;
    script.ranks = ranks;
    script.time = time;
    script.signal_lead_seconds = lead;
    script.sbatch_lines = sbatch_lines;
    script.working_dir = fs::current_path();
    script.exprun = exprun;
    script.file = file_path;
    for (const auto& s : sets) script.run_options.insert(script.run_options.end(), {"--set", s});
    if (!output.empty()) script.run_options.insert(script.run_options.end(), {"--output", output});
    for (const auto& d : common.plugin_dirs)
      script.run_options.insert(script.run_options.end(), {"--plugins", absolute_dir(d).string()});
    const fs::path script_file = slurm::slurm_dir(dir) / "submit.sh";
    const std::string text = slurm::batch_script_text(script);
    replace_atomically(script_file, [&](const fs::path& temp) {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      out << text;
      out.close();
      if (!out) throw std::runtime_error("cannot write " + temp.string());
      fs::permissions(temp, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                      fs::perm_options::add);
    });

    const std::vector<std::string> sbatch_args = {"--parsable", script_file.string()};
    const std::string what = sweep.spec
                                 ? std::to_string(trial_count) + " trial(s) of " + experiment_name +
                                       " (array " + slurm::array_spec(trial_count, parallel) + ")"
                                 : "one run of " + experiment_name;
    if (dry_run) {
      std::cout << "wrote " << script_file.string() << ": " << what << " into " << dir.string()
                << "\nnot submitted (--dry-run); submit it with:\n  sbatch --parsable "
                << shell_quote(script_file.string()) << "\n";
      return int{kOk};
    }
    const std::optional<fs::path> sbatch = find_on_path("sbatch");
    if (!sbatch) {
      throw std::runtime_error(
          "sbatch is not on PATH: install Slurm's client (Debian: slurm-client) or run where it "
          "is, or use --dry-run to write the script only. The script is written: " +
          script_file.string());
    }
    const ProgramResult result = run_program(*sbatch, sbatch_args);
    if (result.exit_code != 0) {
      std::string err = result.err;
      while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
      // Every exprun error is one line: sbatch's own lines are joined.
      for (std::size_t at = err.find('\n'); at != std::string::npos; at = err.find('\n', at))
        err.replace(at, 1, " / ");
      throw std::runtime_error("sbatch " +
                               (result.term_signal != 0
                                    ? "was ended by signal " + std::to_string(result.term_signal)
                                    : "failed (exit " + std::to_string(result.exit_code) + ")") +
                               (err.empty() ? "" : ": " + err) +
                               "; nothing was submitted. The script is " + script_file.string());
    }
    const std::string job_id = slurm::parse_sbatch_job_id(result.out);
    if (job_id.empty()) {
      throw std::runtime_error("sbatch printed no job id (expected a number, found '" +
                               result.out.substr(0, result.out.find('\n')) + "')");
    }
    std::vector<std::string> command = {sbatch->string()};
    command.insert(command.end(), sbatch_args.begin(), sbatch_args.end());
    const nlohmann::json job = {
        {"job_id", job_id},
        {"submitted_at", format_utc_now(kIsoUtc)},
        {"script", script_file.string()},
        {"command", command},
        {"trial_count", sweep.spec ? nlohmann::json(trial_count) : nlohmann::json(nullptr)}};
    write_file_atomically(slurm::slurm_dir(dir) / "job.json", json_file_text(job));
    const std::string logs =
        shell_quote(slurm::slurm_dir(dir).string()) + (sweep.spec ? "/trial-*.log" : "/run.log");
    std::cout << "submitted Slurm job " << job_id << ": " << what << " into " << dir.string()
              << "\nwatch it with:\n  squeue -j " << job_id << "\n  exprun slurm status "
              << shell_quote(dir.string()) << "\n  tail -f " << logs << "\n";
    return int{kOk};
  });
}

// The Slurm job of DIR/slurm/job.json and what squeue says of it; `note` says why there is no
// queue to show when there is none.
struct QueueView {
  std::string job_id;
  std::optional<std::map<std::string, std::string>> states;
  std::string note;
};

QueueView read_queue(const fs::path& dir) {
  QueueView view;
  const fs::path job_file = slurm::slurm_dir(dir) / "job.json";
  std::error_code ec;
  if (!fs::exists(job_file, ec)) {
    view.note = "no " + job_file.string() +
                " (not submitted by exprun slurm submit, or --dry-run): the status files' view "
                "only";
    return view;
  }
  // A damaged record costs the queue's view, not the status files' (status always exits 0
  // for a directory it can read).
  try {
    const nlohmann::json job = read_json_file(job_file);
    if (!job.is_object() || !job.contains("job_id") || !job["job_id"].is_string())
      throw JsonInputError(job_file.string() + ": expected \"job_id\" (string)");
    view.job_id = job["job_id"].get<std::string>();
  } catch (const std::exception& e) {
    view.note = std::string(e.what()) + ": the status files' view only";
    return view;
  }
  const std::optional<fs::path> squeue = find_on_path("squeue");
  if (!squeue) {
    view.note = "squeue is not on PATH: the status files' view only";
    return view;
  }
  // -r: one line per array task, pending ones too (else they are folded into one line).
  const ProgramResult r = run_program(*squeue, {"-h", "-r", "-j", view.job_id, "-o", "%i %T"});
  if (r.exit_code != 0) {
    std::string err = r.err.substr(0, r.err.find('\n'));
    view.note = "squeue -j " + view.job_id + " failed" + (err.empty() ? "" : " (" + err + ")") +
                ": the status files' view only (Slurm forgets a job some minutes after it ends)";
    return view;
  }
  view.states = slurm::parse_squeue_states(r.out);
  return view;
}

std::string submitted_line(const QueueView& queue) {
  if (queue.job_id.empty()) return "";
  return "Slurm job " + queue.job_id + (queue.states ? ", states from squeue" : "") + "\n";
}

int sweep_status(const fs::path& dir) {
  nlohmann::json sweep;
  try {
    sweep = rebuild_shared_sweep(dir);
  } catch (const JsonInputError& e) {
    throw ConfigError(e.what());
  }
  std::map<std::size_t, nlohmann::json> status_files;
  for (const auto& trial : sweep["trials"]) {
    const auto index = trial["index"].get<std::size_t>();
    const fs::path file = trial_status_file(dir, index);
    std::error_code ec;
    if (!fs::exists(file, ec)) continue;
    try {
      status_files[index] = read_json_file(file);
    } catch (const JsonInputError&) {
      // rebuild_shared_sweep read it a moment ago; a task may be replacing it right now.
    }
  }
  const QueueView queue = read_queue(dir);
  std::cout << "sweep " << dir.string() << ": " << sweep["trials"].size() << " trial(s), "
            << sweep_status_counts(sweep) << "; sweep " << sweep.value("status", "?")
            << " (sweep.json rebuilt)\n"
            << submitted_line(queue);
  if (!queue.note.empty()) std::cout << "note: " << queue.note << "\n";
  std::cout << slurm::trial_status_table(sweep, status_files, queue.states, queue.job_id);
  if (queue.states) {
    const auto missing = slurm::trials_missing_from_queue(sweep, *queue.states, queue.job_id);
    if (!missing.empty()) {
      std::vector<std::string> numbers;
      for (const auto i : missing) numbers.push_back(std::to_string(i));
      std::cout << "trial(s) " << join(numbers, ", ")
                << " are pending or running here but not in Slurm's queue: their tasks ended "
                   "without saying so (killed, or exprun refused to start); see "
                << shell_quote(slurm::slurm_dir(dir).string()) << "/trial-N.log\n";
    }
  }
  return int{kOk};
}

int run_status(const fs::path& dir) {
  const QueueView queue = read_queue(dir);
  const fs::path report_file = dir / "report.json";
  std::error_code ec;
  nlohmann::json report;
  if (fs::exists(report_file, ec)) {
    try {
      report = read_json_file(report_file);
    } catch (const JsonInputError& e) {
      throw ConfigError(e.what());
    }
  }
  const std::string status = report.is_object() ? report.value("status", std::string("?"))
                                                : "pending (no report.json yet)";
  std::cout << "run " << dir.string() << ": " << status << "\n" << submitted_line(queue);
  if (!queue.note.empty()) std::cout << "note: " << queue.note << "\n";
  if (queue.states) {
    const auto state = queue.states->find(queue.job_id);
    std::cout << "slurm  " << (state != queue.states->end() ? state->second : "not queued") << "\n";
  }
  if (!report.is_object() || !report.contains("stages") || !report["stages"].is_array())
    return int{kOk};
  std::vector<std::vector<std::string>> rows = {{"stage", "status", "best MRE"}};
  for (const auto& stage : report["stages"]) {
    if (!stage.is_object()) continue;
    std::string mre = "-";
    const nlohmann::json best = stage.value("best", nlohmann::json());
    if (best.is_object() && best.contains("overall") && best["overall"].is_object() &&
        best["overall"].value("mre", nlohmann::json()).is_number()) {
      char text[64];
      std::snprintf(text, sizeof text, "%.3f mm", best["overall"]["mre"].get<double>());
      mre = text;
    }
    rows.push_back(
        {stage.value("name", std::string("?")), stage.value("status", std::string("?")), mre});
  }
  std::cout << align_columns(rows, [](std::size_t) { return false; });
  return int{kOk};
}

int status_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string dir_text;
  po::options_description options(
      "exprun slurm status DIR\n\nRebuilds DIR/sweep.json from the trials' status files and "
      "prints each trial: its swept values, status, its array task's state in Slurm's queue "
      "(squeue, for the job in DIR/slurm/job.json), the host and pid it ran on, and the best "
      "validation MRE of a completed one. DIR may also be the run directory of a file without "
      "[sweep].\n\nOptions");
  add_common_options(options, common);
  options.add_options()("dir", po::value(&dir_text), "sweep or run directory");
  po::positional_options_description positional;
  positional.add("dir", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (dir_text.empty()) throw po::error("slurm status needs the sweep directory");
    const fs::path dir = absolute_dir(dir_text);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw ConfigError(dir_text + ": no such directory");
    if (is_shared_sweep(dir)) return sweep_status(dir);
    if (fs::exists(dir / "report.json", ec) || fs::exists(slurm::slurm_dir(dir), ec))
      return run_status(dir);
    throw ConfigError(dir_text +
                      ": neither a sweep directory shared by Slurm tasks (no status/) nor the run "
                      "directory of exprun slurm submit (no report.json, no slurm/)");
  });
}

}  // namespace

int slurm_command(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kSlurmUsage;
    return kUsageError;
  }
  const std::string& sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "submit") return submit_command(rest);
  if (sub == "status") return status_command(rest);
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::cout << kSlurmUsage;
    return kOk;
  }
  std::cerr << "exprun: error: slurm " << sub << ": expected submit or status\n\n" << kSlurmUsage;
  return kUsageError;
}

}  // namespace exprun::cli

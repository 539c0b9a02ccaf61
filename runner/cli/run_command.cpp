#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/sweep_cli.hpp"
#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "dist/launch.hpp"
#include "run/auto_resume.hpp"
#include "run/experiment_run.hpp"
#include "run/plugin_record.hpp"
#include "run/rank_plan.hpp"
#include "run/resume.hpp"
#include "train/progress.hpp"
#include "util/interrupt_flag.hpp"

namespace exprun::cli {
namespace fs = std::filesystem;

namespace {

// One rank of several (torchrun, env://, a Slurm step): joined to the others before any run
// directory is looked at, so that rank 0 can tell them where the run goes or why it cannot
// start. Null for one
// process, which runs exactly as before ranks existed. A [sweep] trains one trial per launch,
// in a shared sweep directory (what `exprun slurm submit --ranks N` writes).
std::shared_ptr<dist::ProcessGroup> join_ranks(const SweepFile& sweep,
                                               const std::vector<std::size_t>& trials,
                                               const std::string& sweep_dir) {
  dist::Launch launch;
  std::chrono::seconds timeout{};
  std::string backend;
  try {
    launch = dist::detect_launch_from_process();
    if (!launch.distributed()) return nullptr;
    timeout = dist::collective_timeout_from_env();
    backend = dist::backend_from_env();
  } catch (const dist::LaunchError& e) {
    throw ConfigError(e.what());
  }
  if (sweep.spec && (trials.size() != 1 || sweep_dir.empty())) {
    throw ConfigError(
        "a [sweep] under a launch of several ranks trains one trial together: give --trial N "
        "and --sweep-dir DIR, as exprun slurm submit --ranks does (detected: " +
        launch.description + ")");
  }
  Progress::set_quiet(launch.rank != 0);
  Progress::message("exprun: " + launch.description + ": joining the other ranks");
  return dist::ProcessGroup::connect(launch, timeout, backend);
}

// A rank other than 0 trains its share where rank 0 says, and prints nothing of its own but a
// failure: rank 0 reports for all.
int run_as_other_rank(const SweepFile& sweep, const std::string& file,
                      const std::vector<std::size_t>& trials,
                      const std::vector<std::string>& overrides, const Registry& registry,
                      const std::shared_ptr<dist::ProcessGroup>& group) {
  const Experiment experiment =
      sweep.spec ? load_trials(sweep, trials, overrides, registry).at(0).experiment
                 : parse_experiment(sweep.text, file, overrides, registry);
  const RunOutcome outcome = run_experiment(experiment, registry, {}, false, group);
  if (outcome.interrupted_by != 0) return 128 + outcome.interrupted_by;
  return outcome.ok ? int{kOk} : int{kRunFailed};
}

}  // namespace

int run_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string file;
  std::vector<std::string> overrides;
  std::string output;
  std::vector<std::string> trial_options;
  std::string resume_dir;
  std::string sweep_dir;
  std::string run_dir_option;
  po::options_description options(
      "exprun run FILE.toml [options]\n\nTrains every stage of "
      "the experiment and writes results/<experiment>/<run-id>/. With a [sweep], runs each "
      "trial in <run-id>/trial-NNN/ and writes <run-id>/sweep.json.\n\n"
      "Options");
  add_common_options(options, common);
  options.add_options()("file", po::value(&file), "experiment file")(
      "set", po::value(&overrides)->composing(),
      "override a key: KEY.PATH=VALUE (repeatable). Bare keys apply to every stage "
      "(--set epochs=2), or use experiment.KEY, defaults.KEY, stages.NAME.KEY")(
      "output,o", po::value(&output), "results directory (default: experiment.output, 'results')")(
      "trial", po::value(&trial_options)->composing(),
      "with a [sweep]: run only this trial (numbered from 0; repeatable, or a list: 0,2)")(
      "resume", po::value(&resume_dir)->implicit_value(""),
      "continue the newest unfinished run of this experiment, or the run directory given "
      "(--resume=DIR): finished stages are kept, the interrupted one continues exactly. "
      "--resume=auto with --run-dir or --sweep-dir: continue what is unfinished there, skip "
      "what completed, start the rest")(
      "run-dir", po::value(&run_dir_option),
      "write the run into this directory (created if missing) instead of a new "
      "<output>/<experiment>/<run-id>/")(
      "sweep-dir", po::value(&sweep_dir),
      "with a [sweep]: run the chosen trials into this sweep directory, which other processes "
      "(Slurm array tasks) may share; created with the sweep's listing if missing");
  po::positional_options_description positional;
  positional.add("file", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (file.empty()) throw po::error("run needs an experiment file");
    const std::vector<std::size_t> trials = parse_trial_option(trial_options);
    // --resume alone leaves resume_dir empty, like no --resume, so look for the option itself.
    const bool resume = std::any_of(args.begin(), args.end(), [](const std::string& a) {
      return a == "--resume" || a.rfind("--resume=", 0) == 0;
    });
    // "--resume=auto" means the mode; a run directory named auto is --resume=./auto.
    const bool resume_auto = resume && resume_dir == "auto";
    if (resume_auto) resume_dir.clear();
    // The --plugins directories as given, for the resume command printed on an interruption.
    const std::vector<std::string> given_plugin_dirs = common.plugin_dirs;
    // A run names the libraries its plugins came from; --resume=DIR searches their folders too,
    // so that a resume needs no --plugins (docs/cli.md, "Resuming a run").
    std::vector<RecordedPlugin> recorded;
    if (resume && !resume_dir.empty()) {
      recorded = read_plugin_record(resume_dir);
      for (const auto& dir : recorded_plugin_dirs(recorded))
        common.plugin_dirs.push_back(dir.string());
    }
    Registry registry;
    load_registry(registry, common);
    auto check_plugins = [&](const fs::path& run_dir) {
      for (const auto& warning : check_recorded_plugins(recorded, registry, run_dir))
        Progress::message("exprun: warning: " + warning);
    };
    // Before the experiment is parsed: a recorded plugin that is gone is named with the library
    // it came from, not met as an unknown plugin name.
    if (!recorded.empty()) check_plugins(resume_dir);
    if (!output.empty()) {
      overrides.push_back(output_override(output));
    }
    const SweepFile sweep = read_sweep_file(file);
    const std::shared_ptr<dist::ProcessGroup> group = join_ranks(sweep, trials, sweep_dir);
    if (group && group->rank() != 0)
      return run_as_other_rank(sweep, file, trials, overrides, registry, group);
    // Rank 0 decides for all: until run_experiment takes over, a refusal here is sent to the
    // others, which would otherwise wait for its plan until the timeout.
    bool handed_over = false;
    try {
      reject_trials_without_sweep(sweep, trials);
      if (resume_auto && sweep_dir.empty() && run_dir_option.empty()) {
        throw po::error(
            "--resume=auto continues the run in --run-dir DIR (or the trials in --sweep-dir DIR) "
            "if unfinished, else starts it there: give one of them");
      }
      if (!run_dir_option.empty() && resume && !resume_auto) {
        throw po::error(
            "--run-dir and --resume=DIR both name the run directory: give one (or "
            "--run-dir DIR --resume=auto)");
      }
      check_directory_options(sweep, file, sweep_dir, run_dir_option);
      if (sweep.spec && resume && !resume_auto) {
        throw po::error(
            "--resume continues one run; for a sweep, continue its trials in their sweep "
            "directory: exprun run FILE.toml --trial N --sweep-dir SWEEP_DIR --resume=auto");
      }
      if (sweep.spec)
        return run_sweep_command(sweep, trials, overrides, registry, sweep_dir, resume_auto, group);
      Experiment experiment = parse_experiment(sweep.text, file, overrides, registry);
      fs::path run_dir;
      bool resume_run = resume;
      if (!run_dir_option.empty()) {
        run_dir = run_dir_option;
        const RunDirState state = run_dir_state(run_dir);
        if (state != RunDirState::kNoRun && !resume_auto) {
          throw ConfigError("--run-dir " + run_dir.string() +
                            " holds a run already; --resume=auto continues it, or skips it when "
                            "it completed (nothing there is overwritten)");
        }
        if (state == RunDirState::kCompleted) {
          if (group) send_rank_plan(*group, {RankPlan::Action::kNothingToDo, run_dir, false, {}});
          std::cout << "run completed already: " << (run_dir / "report.json").string() << "\n";
          return int{kOk};
        }
        resume_run = state == RunDirState::kUnfinished;
        if (resume_run) {
          recorded = read_plugin_record(run_dir);
          check_plugins(run_dir);
        }
      } else if (resume) {
        if (resume_dir.empty()) {
          run_dir = find_run_to_resume(experiment);
          recorded = read_plugin_record(run_dir);
          check_plugins(run_dir);
        } else {
          run_dir = resume_dir;
        }
      }
      handed_over = true;
      RunOutcome outcome = run_experiment(experiment, registry, run_dir, resume_run, group);
      if (outcome.interrupted_by != 0) {
        std::vector<std::string> words;
        for (const auto& dir : given_plugin_dirs) {
          words.emplace_back("--plugins");
          words.push_back(dir);
        }
        if (run_dir_option.empty()) {
          words.push_back("--resume=" + outcome.run_dir.string());
        } else {
          words.insert(words.end(), {"--run-dir", run_dir_option, "--resume=auto"});
        }
        const std::string again = rerun_command(file, overrides, words);
        std::cout << "run interrupted (" << stop_signal_name(outcome.interrupted_by)
                  << "): the position is saved in the stage's latest.pt. Resume with:\n  " << again
                  << "\n"
                  << std::flush;
        requeue_if_warned(outcome.interrupted_by);
        return 128 + outcome.interrupted_by;
      }
      const auto& report = outcome.report;
      std::cout << "run " << (outcome.ok ? "completed" : "FAILED") << ": "
                << outcome.run_dir.string() << "/report.json\n";
      for (const auto& stage : report["stages"]) {
        if (stage.value("status", "") != "completed") {
          std::cout << "  " << stage["name"].get<std::string>() << ": "
                    << stage.value("error", std::string("did not finish")) << "\n";
          continue;
        }
        // A metric is null in JSON when it could not be computed (no valid landmark, NaN).
        auto number = [](const nlohmann::json& j) {
          return j.is_number() ? j.get<double>() : std::nan("");
        };
        std::printf(
            "  %s: best validation MRE %.3f mm (epoch %.0f), SDR@2mm %.1f%%; mean-shape "
            "baseline %.3f mm\n",
            stage["name"].get<std::string>().c_str(), number(stage["best"]["overall"]["mre"]),
            number(stage["best_epoch"]), number(stage["best"]["overall"]["sdr"]["2.0"]),
            number(stage["mean_shape_baseline"]["overall"]["mre"]));
      }
      return outcome.ok ? int{kOk} : int{kRunFailed};
    } catch (const std::exception& e) {
      if (group && !handed_over)
        send_rank_plan(*group, {RankPlan::Action::kFailed, {}, false, e.what()});
      throw;
    }
  });
}

}  // namespace exprun::cli

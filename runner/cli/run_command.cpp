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
#include "run/experiment_run.hpp"
#include "run/plugin_record.hpp"
#include "run/resume.hpp"
#include "train/progress.hpp"

namespace exprun::cli {
namespace fs = std::filesystem;

namespace {

// Until the ranks train together (issue 15), each rank of a launch would train the whole
// experiment on its own, all of them into the same results directory: refuse instead.
void refuse_distributed_launch() {
  dist::Launch launch;
  try {
    launch = dist::detect_launch_from_process();
  } catch (const dist::LaunchError& e) {
    throw ConfigError(e.what());
  }
  if (!launch.distributed()) return;
  throw ConfigError(
      "distributed training is not implemented yet (issue 15); set EXPRUN_DIST=off to run each "
      "rank alone (detected: " +
      launch.description + ")");
}

}  // namespace

int run_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string file;
  std::vector<std::string> overrides;
  std::string output;
  std::vector<std::string> trial_options;
  std::string resume_dir;
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
      "(--resume=DIR): finished stages are kept, the interrupted one continues exactly");
  po::positional_options_description positional;
  positional.add("file", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (file.empty()) throw po::error("run needs an experiment file");
    refuse_distributed_launch();
    const std::vector<std::size_t> trials = parse_trial_option(trial_options);
    // --resume alone leaves resume_dir empty, like no --resume, so look for the option itself.
    const bool resume = std::any_of(args.begin(), args.end(), [](const std::string& a) {
      return a == "--resume" || a.rfind("--resume=", 0) == 0;
    });
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
      // Quoted as a TOML string: a directory named 2024 or true is still a path.
      std::string quoted;
      for (char ch : output) {
        if (ch == '"' || ch == '\\') quoted += '\\';
        quoted += ch;
      }
      overrides.push_back("experiment.output=\"" + quoted + "\"");
    }
    const SweepFile sweep = read_sweep_file(file);
    reject_trials_without_sweep(sweep, trials);
    if (sweep.spec && resume) {
      throw po::error(
          "--resume continues one run; for a sweep, resume a trial: exprun run FILE.toml "
          "--trial N --resume=SWEEP_DIR/trial-NNN is not supported yet, rerun the trial instead");
    }
    if (sweep.spec) return run_sweep_command(sweep, trials, overrides, registry);
    Experiment experiment = parse_experiment(sweep.text, file, overrides, registry);
    fs::path run_dir;
    if (resume) {
      if (resume_dir.empty()) {
        run_dir = find_run_to_resume(experiment);
        recorded = read_plugin_record(run_dir);
        check_plugins(run_dir);
      } else {
        run_dir = resume_dir;
      }
    }
    RunOutcome outcome = run_experiment(experiment, registry, run_dir, resume);
    if (outcome.interrupted_by != 0) {
      std::vector<std::string> words;
      for (const auto& dir : given_plugin_dirs) {
        words.emplace_back("--plugins");
        words.push_back(dir);
      }
      words.push_back("--resume=" + outcome.run_dir.string());
      const std::string again = rerun_command(file, overrides, words);
      std::cout << "run interrupted (" << (outcome.interrupted_by == SIGTERM ? "SIGTERM" : "SIGINT")
                << "): the position is saved in the stage's latest.pt. Resume with:\n  " << again
                << "\n";
      return 128 + outcome.interrupted_by;
    }
    const auto& report = outcome.report;
    std::cout << "run " << (outcome.ok ? "completed" : "FAILED") << ": " << outcome.run_dir.string()
              << "/report.json\n";
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
  });
}

}  // namespace exprun::cli

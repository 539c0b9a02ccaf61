#include "bench/training_benchmark.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "bench/median.hpp"
#include "train/stage_builder.hpp"
#include "train/stage_trainer.hpp"
#include "train/step_measurement.hpp"
#include "util/interrupt_flag.hpp"
#include "util/program.hpp"
#include "util/text.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

double ratio(double a, double b) { return b > 0 ? a / b : 0; }

// The runner's speed is its second epoch's: the first one makes the optimiser's state, oneDNN's
// primitives and (for datasets that make their images) the images themselves, which a long
// training run pays once. The stage is trained from its model's own initialisation: where its
// weights come from (init, focus) does not change the speed.
StageConfig runner_config(const StageConfig& stage) {
  StageConfig config = stage;
  config.epochs = 2;
  config.init = StageInit{};
  config.focus = FocusConfig{};
  config.checkpoint.every = 0;
  return config;
}

struct RunnerEpoch {
  double images_per_second = 0;
  double data_wait_share = 0;
};

RunnerEpoch measure_runner(const Experiment& experiment, std::size_t index,
                           const Registry& registry, const fs::path& scratch) {
  Experiment copy = experiment;
  copy.stages[index] = runner_config(experiment.stages[index]);
  const StageConfig& config = copy.stages[index];
  BuiltStage built = build_stage(copy, config, index, registry);
  StageTrainer trainer(copy, config, index, std::move(built), scratch / config.name);
  trainer.run();
  if (trainer.stop_signal() != 0) throw StopRequested(trainer.stop_signal());
  const auto& history = trainer.progress().history;
  if (history.size() < 2) throw std::logic_error("the runner's stage ended before its 2nd epoch");
  fs::remove_all(scratch);
  return {history[1].images_per_second,
          ratio(history[1].data_wait_seconds, history[1].epoch_seconds)};
}

double measure_bare(const Experiment& experiment, std::size_t index, const Registry& registry,
                    std::int64_t steps) {
  const StageConfig& config = experiment.stages[index];
  BuiltStage built = build_stage(experiment, config, index, registry);
  return measure_bare_steps(built, config, built.micro_batch, /*warmup_steps=*/1,
                            static_cast<int>(steps))
      .images_per_second;
}

std::string last_lines(const std::string& text) {
  const std::size_t keep = 800;
  return text.size() <= keep ? text : "..." + text.substr(text.size() - keep);
}

struct PythonRun {
  double images_per_second = 0;
  std::string torch_version;
};

PythonRun measure_python(const std::vector<std::string>& command, const fs::path& json_path) {
  std::vector<std::string> args(command.begin() + 1, command.end());
  args.push_back("--json");
  args.push_back(json_path.string());
  const ProgramResult result = run_program(command.front(), args);
  // A terminal's Ctrl-C reaches the script too, which then fails: the stop is what to report.
  throw_if_stop_requested();
  if (result.exit_code != 0) {
    throw std::runtime_error(
        "the PyTorch reference (" + command.front() + " " + command.at(1) + ") " +
        (result.exit_code < 0 ? "was ended by signal " + std::to_string(result.term_signal)
                              : "exited with " + std::to_string(result.exit_code)) +
        ": " + last_lines(result.err));
  }
  std::ifstream in(json_path);
  nlohmann::json out;
  try {
    out = nlohmann::json::parse(in);
    PythonRun run{out.at("images_per_s").get<double>(), out.at("torch_version").get<std::string>()};
    fs::remove(json_path);
    return run;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("the PyTorch reference wrote no usable " + json_path.string() + ": " +
                             e.what());
  }
}

const PluginChoice* strategy_named(const StageConfig& stage, const std::string& name) {
  for (const auto& s : stage.memory.strategies)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace

double TrainingBenchResult::median_runner() const {
  std::vector<double> v;
  for (const auto& r : rounds) v.push_back(r.runner_images_per_second);
  return median(v);
}

double TrainingBenchResult::median_runner_data_wait_share() const {
  std::vector<double> v;
  for (const auto& r : rounds) v.push_back(r.runner_data_wait_share);
  return median(v);
}

double TrainingBenchResult::median_bare() const {
  std::vector<double> v;
  for (const auto& r : rounds) v.push_back(r.bare_images_per_second);
  return median(v);
}

double TrainingBenchResult::median_python() const {
  if (!python_measured) return 0;
  std::vector<double> v;
  for (const auto& r : rounds) v.push_back(r.python_images_per_second);
  return median(v);
}

nlohmann::json TrainingBenchResult::to_json() const {
  nlohmann::json rounds_json = nlohmann::json::array();
  auto or_null = [](bool measured, double value) {
    return measured ? nlohmann::json(value) : nlohmann::json(nullptr);
  };
  for (const auto& r : rounds) {
    rounds_json.push_back(
        {{"runner_images_per_second", r.runner_images_per_second},
         {"runner_data_wait_share", r.runner_data_wait_share},
         {"bare_images_per_second", r.bare_images_per_second},
         {"python_images_per_second", or_null(python_measured, r.python_images_per_second)}});
  }
  return {{"experiment", experiment},
          {"stage", stage},
          {"device", device},
          {"model", model},
          {"input_size", {input_width, input_height}},
          {"effective_batch", effective_batch},
          {"micro_batch", micro_batch},
          {"steps_per_epoch", steps_per_epoch},
          {"data_workers", data_workers},
          {"threads", threads},
          {"rounds", rounds_json},
          {"runner_images_per_second", median_runner()},
          {"runner_data_wait_share", median_runner_data_wait_share()},
          {"bare_images_per_second", median_bare()},
          {"python_images_per_second", or_null(python_measured, median_python())},
          {"runner_vs_bare", ratio(median_runner(), median_bare())},
          {"runner_vs_python", or_null(python_measured, ratio(median_runner(), median_python()))},
          {"bare_vs_python", or_null(python_measured, ratio(median_bare(), median_python()))},
          {"python_command", python_command},
          {"python_torch_version", python_torch_version},
          {"python_note", python_note}};
}

std::vector<std::string> python_reference_arguments(const StageConfig& stage,
                                                    std::int64_t landmarks,
                                                    std::int64_t micro_batch,
                                                    const std::string& device, std::int64_t threads,
                                                    std::int64_t steps) {
  auto refuse = [&](const std::string& what) {
    throw std::invalid_argument(
        "the PyTorch reference trains models/hrnet with "
        "losses/adaptive_wing and Adam (betas 0.9/0.999, no weight "
        "decay) only; stage " +
        stage.name + " has " + what);
  };
  if (stage.model.name != "hrnet") refuse("model " + stage.model.name);
  if (stage.loss.name != "adaptive_wing") refuse("loss " + stage.loss.name);
  const OptimizerConfig& opt = stage.optimizer;
  if (opt.name != "adam" || opt.weight_decay != 0 || opt.betas != std::vector<double>{0.9, 0.999})
    refuse("optimizer " + opt.name + " with other settings");
  for (const auto& s : stage.memory.strategies) {
    if (s.name != "mixed_precision" && s.name != "gradient_accumulation")
      refuse("memory strategy " + s.name);
  }
  const bool cuda = device.rfind("cuda", 0) == 0;
  std::string precision = "fp32";
  if (const PluginChoice* mixed = strategy_named(stage, "mixed_precision")) {
    const std::string& dtype = mixed->params.get_string("dtype");
    precision = dtype == "auto" ? (cuda ? "fp16" : "bf16") : dtype;
  }
  const sdk::Params& model = stage.model.params;
  const auto& modules = model.get_int_list("num_modules");
  std::vector<std::string> args = {
      "--device",
      cuda ? "cuda" : "cpu",
      "--width",
      std::to_string(model.get_int("width")),
      "--size",
      std::to_string(stage.data.input_width) + "x" + std::to_string(stage.data.input_height),
      "--batch",
      std::to_string(stage.memory.effective_batch),
      "--micro-batch",
      std::to_string(micro_batch),
      "--landmarks",
      std::to_string(landmarks),
      "--channels",
      std::to_string(stage.data.channels),
      "--num-modules"};
  for (const auto m : modules) args.push_back(std::to_string(m));
  for (const char* key : {"num_blocks", "stem_blocks", "head_channels"}) {
    std::string flag = std::string("--") + key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    args.push_back(flag);
    args.push_back(std::to_string(model.get_int(key)));
  }
  char sigma[32];
  std::snprintf(sigma, sizeof sigma, "%.9g", stage.data.sigma);
  char lr[32];
  std::snprintf(lr, sizeof lr, "%.9g", opt.lr);
  args.insert(args.end(), {"--sigma", sigma, "--lr", lr, "--precision", precision, "--threads",
                           std::to_string(threads), "--steps", std::to_string(steps)});
  if (stage.loss.params.get_bool("use_loss_map")) args.push_back("--loss-map");
  if (stage.channels_last) args.push_back("--channels-last");
  if (stage.cudnn_benchmark) args.push_back("--cudnn-benchmark");
  return args;
}

fs::path find_python_with_torch(const std::vector<fs::path>& candidates) {
  for (const auto& python : candidates) {
    try {
      if (run_program(python, {"-c", "import torch"}).exit_code == 0) return python;
    } catch (const std::runtime_error&) {
      // Not startable: try the next one.
    }
  }
  return {};
}

TrainingBenchResult run_training_benchmark(const Experiment& experiment, std::size_t stage_index,
                                           const Registry& registry,
                                           const TrainingBenchOptions& options,
                                           const std::function<void(const std::string&)>& on_line) {
  auto say = [&](const std::string& line) {
    if (on_line) on_line(line);
  };
  if (options.rounds < 1) throw std::invalid_argument("bench --training needs 1 round or more");
  const StageConfig& config = experiment.stages.at(stage_index);
  TrainingBenchResult result;
  result.experiment = experiment.name;
  result.stage = config.name;
  result.model = config.model.name;
  result.input_width = config.data.input_width;
  result.input_height = config.data.input_height;
  result.effective_batch = config.memory.effective_batch;
  result.threads = options.threads;
  {
    // Once, for what the sides share: device, micro-batch, landmarks and the epoch's length.
    const BuiltStage probe = build_stage(experiment, config, stage_index, registry);
    result.device = probe.device.str();
    result.micro_batch = probe.micro_batch;
    result.data_workers = probe.data_workers;
    const auto batch = static_cast<std::size_t>(config.memory.effective_batch);
    result.steps_per_epoch = static_cast<std::int64_t>((probe.train->size() + batch - 1) / batch);
    if (!options.python.empty()) {
      try {
        const auto args = python_reference_arguments(
            config, static_cast<std::int64_t>(probe.landmarks.size()), probe.micro_batch,
            result.device, options.threads, result.steps_per_epoch);
        result.python_command = {options.python.string(), options.python_script.string()};
        result.python_command.insert(result.python_command.end(), args.begin(), args.end());
        result.python_measured = true;
      } catch (const std::invalid_argument& e) {
        if (options.python_required) throw;
        result.python_note = std::string("not run: ") + e.what();
        say("PyTorch reference: " + result.python_note);
      }
    }
  }
  if (config.memory.micro_batch_auto) {
    say(printf_text(
        "memory.micro_batch = \"auto\": every side steps with micro-batches of %lld (the "
        "batch tuner is not run)",
        static_cast<long long>(result.micro_batch)));
  }
  std::string command_line;
  for (const auto& part : result.python_command)
    command_line += (command_line.empty() ? "" : " ") + part;
  if (result.python_measured) say("PyTorch reference: " + command_line);

  fs::create_directories(options.scratch_dir);
  say(printf_text("%-6s %12s %12s %12s %12s %12s", "round", "runner", "bare loop", "python",
                  "runner/bare", "runner/py"));
  for (int round = 0; round < options.rounds; ++round) {
    TrainingRound r;
    // Each round starts with another side, so no side always follows the same one.
    for (int turn = 0; turn < 3; ++turn) {
      throw_if_stop_requested();
      switch ((round + turn) % 3) {
        case 0: {
          const RunnerEpoch epoch =
              measure_runner(experiment, stage_index, registry,
                             options.scratch_dir / ("runner-" + std::to_string(round)));
          r.runner_images_per_second = epoch.images_per_second;
          r.runner_data_wait_share = epoch.data_wait_share;
          break;
        }
        case 1:
          r.bare_images_per_second =
              measure_bare(experiment, stage_index, registry, result.steps_per_epoch);
          break;
        default:
          if (result.python_measured) {
            const PythonRun run =
                measure_python(result.python_command,
                               options.scratch_dir / ("python-" + std::to_string(round) + ".json"));
            r.python_images_per_second = run.images_per_second;
            result.python_torch_version = run.torch_version;
          }
      }
    }
    result.rounds.push_back(r);
    say(printf_text(
        "%-6d %12.2f %12.2f %12s %11.3fx %12s", round + 1, r.runner_images_per_second,
        r.bare_images_per_second,
        result.python_measured ? printf_text("%.2f", r.python_images_per_second).c_str() : "-",
        ratio(r.runner_images_per_second, r.bare_images_per_second),
        result.python_measured
            ? printf_text("%.3fx", ratio(r.runner_images_per_second, r.python_images_per_second))
                  .c_str()
            : "-"));
  }
  const double runner = result.median_runner(), bare = result.median_bare(),
               python = result.median_python();
  say(printf_text(
      "%-6s %12.2f %12.2f %12s %11.3fx %12s", "median", runner, bare,
      result.python_measured ? printf_text("%.2f", python).c_str() : "-", ratio(runner, bare),
      result.python_measured ? printf_text("%.3fx", ratio(runner, python)).c_str() : "-"));
  // What the runner does besides the bare loop's steps is mostly waiting for its data: this
  // says how much of runner/bare that explains.
  say(printf_text("runner's epoch waiting for data: %.1f%% (median)",
                  100 * result.median_runner_data_wait_share()));
  if (result.python_measured) {
    say(printf_text("bare loop vs PyTorch %s: %.3fx", result.python_torch_version.c_str(),
                    ratio(bare, python)));
  }
  return result;
}

}  // namespace exprun

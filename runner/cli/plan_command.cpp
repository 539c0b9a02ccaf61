#include <cstdio>
#include <iostream>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/sweep_cli.hpp"
#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "config/runner_keys.hpp"
#include "dist/launch.hpp"
#include "dist/process_group.hpp"
#include "run/experiment_run.hpp"
#include "train/stage_builder.hpp"
#include "util/text.hpp"

namespace exprun::cli {
namespace {

std::string params_text(const PluginChoice& choice) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : choice.params.values())
    parts.push_back(key + " = " + sdk::to_string(value));
  return choice.name + " { " + join(parts, ", ") + " }";
}

// A resolved value as an experiment file would write it.
std::string toml_text(const nlohmann::json& value) {
  std::vector<std::string> parts;
  if (value.is_string()) return "\"" + value.get<std::string>() + "\"";
  if (value.is_array()) {
    for (const auto& item : value) parts.push_back(toml_text(item));
    return "[" + join(parts, ", ") + "]";
  }
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) parts.push_back(key + " = " + toml_text(item));
    return parts.empty() ? "{}" : "{ " + join(parts, ", ") + " }";
  }
  return value.dump();
}

// Every runner key of the stage as resolved, defaults included, table by table as declared:
// a key added to the declarations shows here without another edit.
void print_runner_keys(const StageConfig& s) {
  const nlohmann::json config = to_json(s);
  bool first = true;
  for (const auto& table : runner_key_reference()) {
    if (!find_stage_table(table.path)) continue;  // [experiment] is printed above the stages
    std::string pointer = table.path.empty() ? "" : "/" + table.path;
    for (char& c : pointer)
      if (c == '.') c = '/';
    const nlohmann::json::json_pointer at(pointer);
    if (!config.contains(at)) continue;  // a table written only when used, e.g. loss.focus
    const nlohmann::json& values = config.at(at);
    std::vector<std::string> parts;
    for (const auto& key : table.keys) {
      const std::string& name = key.spec.name;
      const std::string inner = table.path.empty() ? name : table.path + "." + name;
      // Tables are printed on their own line; a plugin's name on its table's line above.
      if (key.holds_table || find_stage_table(inner) || name == "plugin") continue;
      if (values.contains(name)) parts.push_back(name + " = " + toml_text(values[name]));
    }
    if (parts.empty()) continue;
    const std::string label = table.path.empty() ? "" : table.path + " { ";
    std::printf("%s%s%s%s\n", first ? "  keys        " : "              ", label.c_str(),
                join(parts, ", ").c_str(), table.path.empty() ? "" : " }");
    first = false;
  }
}

void print_stage(const StageConfig& s, const BuiltStage& b) {
  const auto accumulation =
      (s.memory.effective_batch + s.memory.micro_batch - 1) / s.memory.micro_batch;
  const auto steps = (static_cast<std::int64_t>(b.train->size()) + s.memory.effective_batch - 1) /
                     s.memory.effective_batch;
  std::printf("stage %s  (%s)\n", s.name.c_str(), s.where.c_str());
  std::printf("  device      %s (asked: %s)\n", b.device.str().c_str(), s.device.c_str());
  if (!s.init.empty()) {
    std::printf("  init        %s (model weights from %s)\n", s.init.text.c_str(),
                s.init.path.empty() ? ("stage " + s.init.from_stage + "'s " + s.init.which +
                                       ".pt, once that stage has run")
                                          .c_str()
                                    : "that checkpoint file");
  }
  std::printf("  epochs      %lld, %lld optimiser steps per epoch\n",
              static_cast<long long>(s.epochs), static_cast<long long>(steps));
  std::printf("  data        %s\n", params_text(s.data.reader).c_str());
  std::printf("              splits %s: %zu images, %s: %zu images; %zu landmarks\n",
              s.data.train_split.c_str(), b.train->size(), s.data.val_split.c_str(),
              b.valid->size(), b.landmarks.size());
  std::printf(
      "              input %lldx%lld, %lld channel(s), heatmaps %lldx%lld, sigma %.2f, "
      "%lld workers%s, augmentation %s\n",
      static_cast<long long>(s.data.input_width), static_cast<long long>(s.data.input_height),
      static_cast<long long>(s.data.channels), static_cast<long long>(b.pipeline->heatmap_width()),
      static_cast<long long>(b.pipeline->heatmap_height()), s.data.sigma,
      static_cast<long long>(b.data_workers), s.data.workers_auto ? " (auto)" : "",
      s.data.augment.enabled ? "on" : "off");
  std::printf("  model       %s\n", params_text(s.model).c_str());
  std::printf("              %lld parameters, %.3f G multiply-adds per image\n",
              static_cast<long long>(b.parameter_count), b.multiply_adds / 1e9);
  std::printf("  loss        %s\n", params_text(s.loss).c_str());
  if (!s.loss_weights.by_symbol.empty()) {
    std::vector<std::string> weights;
    for (const auto& [symbol, weight] : s.loss_weights.by_symbol)
      weights.push_back(symbol + " = " + format_number(weight));
    std::printf("              landmark weights { %s }, every other landmark 1\n",
                join(weights, ", ").c_str());
  }
  if (s.focus.worst > 0) {
    std::printf(
        "              focus: weight x%s on the %lld landmarks with the highest best MRE "
        "of the init stage (chosen when the stage starts)\n",
        format_number(s.focus.weight).c_str(), static_cast<long long>(s.focus.worst));
  }
  std::vector<std::string> strategies;
  for (const auto& m : s.memory.strategies) strategies.push_back(params_text(m));
  if (s.memory.micro_batch_auto) {
    std::printf(
        "  memory      effective batch %lld, micro-batch tuned at the start of the stage "
        "(budget %s, margin %.0f%%; `exprun tune` measures it now); strategies: %s\n",
        static_cast<long long>(s.memory.effective_batch),
        s.memory.budget_bytes ? format_bytes(*s.memory.budget_bytes).c_str()
                              : "the device's free memory",
        100 * s.memory.margin, strategies.empty() ? "none" : join(strategies, ", ").c_str());
  } else {
    std::printf(
        "  memory      effective batch %lld = micro-batch %lld x %lld accumulation; "
        "strategies: %s\n",
        static_cast<long long>(s.memory.effective_batch),
        static_cast<long long>(s.memory.micro_batch), static_cast<long long>(accumulation),
        strategies.empty() ? "none" : join(strategies, ", ").c_str());
  }
  std::printf("  optimizer   %s lr %g weight_decay %g\n", s.optimizer.name.c_str(), s.optimizer.lr,
              s.optimizer.weight_decay);
  std::printf("  schedule    %g warm-up epochs, then %s (min lr %g)\n", s.schedule.warmup_epochs,
              s.schedule.decay.c_str(), s.schedule.min_lr);
  std::printf("  eval        decode %s\n", s.eval.decode.c_str());
  const auto& c = s.checkpoint;
  std::string epochs = "no epoch_N";
  if (c.every > 0) {
    epochs = "epoch_N every " + std::to_string(c.every) + " epochs" +
             (c.keep_last > 0 ? ", last " + std::to_string(c.keep_last) + " kept" : "");
  }
  std::printf("  checkpoints best by %s (%s is better), latest, %s\n", c.monitor.c_str(),
              c.mode == "min" ? "lower" : "higher", epochs.c_str());
  print_runner_keys(s);
}

}  // namespace

namespace {

// The launch this process is in; an environment exprun cannot start in is a usage error.
dist::Launch detected_launch() {
  try {
    dist::Launch launch = dist::detect_launch_from_process();
    // What run reads only when it joins ranks; plan checks it the same way.
    if (launch.distributed()) {
      dist::collective_timeout_from_env();
      dist::backend_from_env();
    }
    return launch;
  } catch (const dist::LaunchError& e) {
    throw ConfigError(e.what());
  }
}

// The plan of one configuration: the experiment line, then each stage built and printed.
void print_plan(const Experiment& experiment, const Registry& registry) {
  const auto threads = apply_thread_count(experiment.threads);
  std::printf("experiment %s  (seed %llu, %lld threads, results in %s/%s/)\n",
              experiment.name.c_str(), static_cast<unsigned long long>(experiment.seed),
              static_cast<long long>(threads), experiment.output_dir.c_str(),
              experiment.name.c_str());
  for (std::size_t i = 0; i < experiment.stages.size(); ++i) {
    std::printf("\n");
    BuiltStage built = build_stage(experiment, experiment.stages[i], i, registry);
    print_stage(experiment.stages[i], built);
  }
}

}  // namespace

int plan_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string file;
  std::vector<std::string> overrides;
  std::vector<std::string> trial_options;
  po::options_description options(
      "exprun plan FILE.toml [options]\n\nValidates the experiment, opens its datasets, builds "
      "its models and prints every stage's resolved settings. Trains nothing. With a [sweep], "
      "lists the trials, validates each and prints the plan of the first (of every trial when "
      "there are at most three).\n\nOptions");
  add_common_options(options, common);
  options.add_options()("file", po::value(&file), "experiment file")(
      "set", po::value(&overrides)->composing(), "override a key, as for exprun run")(
      "trial", po::value(&trial_options)->composing(),
      "with a [sweep]: build and print this trial (numbered from 0; repeatable, or a list: 0,2)");
  po::positional_options_description positional;
  positional.add("file", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (file.empty()) throw po::error("plan needs an experiment file");
    std::printf("launch      %s\n", detected_launch().description.c_str());
    const std::vector<std::size_t> trials = parse_trial_option(trial_options);
    Registry registry;
    load_registry(registry, common);
    const SweepFile sweep = read_sweep_file(file);
    reject_trials_without_sweep(sweep, trials);
    if (!sweep.spec) {
      const Experiment experiment = parse_experiment(sweep.text, file, overrides, registry);
      print_plan(experiment, registry);
      std::printf("\nplan OK: %zu stage(s)\n", experiment.stages.size());
      return int{kOk};
    }
    const std::vector<LoadedTrial> shown = plan_sweep_trials(sweep, trials, overrides, registry);
    for (const auto& trial : shown) {
      std::printf("\ntrial %zu: %s\n", trial.trial.index, trial_values_text(trial.trial).c_str());
      try {
        print_plan(trial.experiment, registry);
      } catch (const ConfigError& e) {
        throw ConfigError(trial_error(trial.trial, e.what()));
      }
    }
    std::vector<std::string> built;
    for (const auto& trial : shown) built.push_back(std::to_string(trial.trial.index));
    std::printf("\nplan OK: %zu trial(s) of %zu stage(s); built: trial %s\n",
                sweep.spec->trial_count(), shown.front().experiment.stages.size(),
                join(built, ", ").c_str());
    return int{kOk};
  });
}

}  // namespace exprun::cli

#include <cstdio>
#include <iostream>
#include <optional>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/sweep_cli.hpp"
#include "config/byte_size.hpp"
#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "run/experiment_run.hpp"
#include "train/batch_tuner.hpp"
#include "util/atomic_file.hpp"
#include "util/json_file.hpp"
#include "util/text.hpp"
#include "util/timestamp.hpp"

namespace exprun::cli {

int tune_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string file;
  std::vector<std::string> overrides;
  std::vector<std::string> stages;
  std::string budget_text;
  std::optional<double> margin;
  std::string json_path;
  po::options_description options(
      "exprun tune FILE.toml [options]\n\nMeasures, for each stage, every candidate micro-batch "
      "of its effective batch (with the accumulation that keeps the effective batch): peak "
      "memory, step time, images/s, epoch time, whether it fits the budget, and which the tuner "
      "would choose. Trains nothing and changes no file but the JSON it writes.\n\nOptions");
  add_common_options(options, common);
  options.add_options()("file", po::value(&file), "experiment file")(
      "stage", po::value(&stages)->composing(), "only this stage (repeatable)")(
      "set", po::value(&overrides)->composing(), "override a key, as for exprun run")(
      "budget", po::value(&budget_text),
      "memory budget, e.g. 6GiB (default: memory.budget, else the device's free memory)")(
      "margin", po::value<double>()->notifier([&](double m) { margin = m; }),
      "share of the budget kept free (default: memory.margin, 0.1)")(
      "json", po::value(&json_path),
      "write the measurements here (default: <output>/<experiment>/tune-<UTC time>.json)");
  po::positional_options_description positional;
  positional.add("file", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (file.empty()) throw po::error("tune needs an experiment file");
    std::optional<std::int64_t> budget;
    if (!budget_text.empty()) {
      budget = parse_byte_size(budget_text);
      if (!budget) {
        throw po::error("--budget: expected a memory size such as 6GiB, 512MiB or 8GB, found '" +
                        budget_text + "'");
      }
    }
    if (margin && !(*margin >= 0 && *margin <= 0.9)) {
      throw po::error("--margin: expected a number between 0 and 0.9, found " +
                      format_number(*margin));
    }
    Registry registry;
    load_registry(registry, common);
    Experiment experiment = load_one_configuration(file, overrides, registry, "tune");
    for (const auto& name : stages) stage_index_named(experiment, name);  // throws if unknown
    // Before measuring, which takes minutes.
    const std::filesystem::path path =
        json_path.empty() ? std::filesystem::path(experiment.output_dir) / experiment.name /
                                ("tune-" + utc_timestamp() + ".json")
                          : std::filesystem::path(json_path);
    check_output_destination(
        json_path.empty() ? "the measurements " + path.string() : "--json " + json_path, path,
        path.has_parent_path() ? path.parent_path() : ".");
    const auto threads = apply_thread_count(experiment.threads);
    nlohmann::json out = {{"experiment", experiment.name},
                          {"source_file", experiment.source_file},
                          {"threads", threads},
                          {"stages", nlohmann::json::array()}};
    for (std::size_t i = 0; i < experiment.stages.size(); ++i) {
      StageConfig stage = experiment.stages[i];
      if (!stages.empty() && std::find(stages.begin(), stages.end(), stage.name) == stages.end())
        continue;
      if (budget) stage.memory.budget_bytes = budget;
      if (margin) stage.memory.margin = *margin;
      BuiltStage built = build_stage(experiment, stage, i, registry);
      const TuneOptions tune_options = tune_options_for(stage, built);
      std::printf(
          "stage %s on %s: effective batch %lld, limit %s (%s %s less %s%%)\n", stage.name.c_str(),
          built.device.str().c_str(), static_cast<long long>(stage.memory.effective_batch),
          format_bytes(tune_options.limit_bytes()).c_str(), tune_options.budget_source.c_str(),
          format_bytes(tune_options.budget_bytes).c_str(),
          format_number(100 * tune_options.margin).c_str());
      std::fflush(stdout);
      const TuneResult result = tune_micro_batch(built, stage, tune_options);
      std::printf("%s", tune_table(result).c_str());
      std::printf(
          "chosen: micro-batch %lld x %lld accumulation (%.1f s of measuring)\n\n",
          static_cast<long long>(result.chosen_micro_batch),
          static_cast<long long>(result.to_json()["chosen_accumulation"].get<std::int64_t>()),
          result.seconds);
      out["stages"].push_back(result.to_json());
    }
    write_file_atomically(path, json_file_text(out));
    std::printf("measurements: %s\n", path.string().c_str());
    return int{kOk};
  });
}

}  // namespace exprun::cli

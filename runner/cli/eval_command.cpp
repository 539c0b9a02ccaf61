#include <cstdio>
#include <iostream>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/sweep_cli.hpp"
#include "config/config_error.hpp"
#include "eval/evaluation_report.hpp"
#include "eval/evaluator.hpp"
#include "run/experiment_run.hpp"
#include "train/checkpoint.hpp"
#include "train/stage_builder.hpp"
#include "util/atomic_file.hpp"
#include "util/fp32_precision.hpp"
#include "util/json_file.hpp"
#include "util/text.hpp"

namespace exprun::cli {
namespace {

// The parts of the stage config that decide the weights' shapes and meaning: the checkpoint
// must have been trained with the same, or its numbers describe another model.
void check_checkpoint_config(const std::string& checkpoint, const nlohmann::json& saved,
                             const nlohmann::json& now) {
  const std::vector<std::pair<std::string, std::string>> checked = {
      {"model", ""}, {"data", "image_size"}, {"data", "channels"}};
  for (const auto& [section, key] : checked) {
    const nlohmann::json* a = saved.contains(section) ? &saved[section] : nullptr;
    const nlohmann::json* b = &now.at(section);
    if (a && !key.empty()) a = a->contains(key) ? &(*a)[key] : nullptr;
    if (!key.empty()) b = &b->at(key);
    const std::string name = key.empty() ? section : section + "." + key;
    if (!a || *a != *b) {
      throw ConfigError("checkpoint " + checkpoint + " was trained with " + name + " = " +
                        (a ? a->dump() : std::string("(none)")) + ", but the stage now has " +
                        name + " = " + b->dump());
    }
  }
}

std::shared_ptr<sdk::Dataset> open_split(const Experiment& experiment, const StageConfig& stage,
                                         BuiltStage& built, const std::string& split,
                                         const Registry& registry) {
  if (split == stage.data.val_split) return built.valid;
  if (split == stage.data.train_split) return built.train;
  const auto& reader = stage.data.reader;
  std::shared_ptr<sdk::Dataset> dataset;
  try {
    dataset = registry.make<sdk::Dataset>(reader.name, reader.params,
                                          sdk::DatasetContext{split, experiment.seed});
  } catch (const std::exception& e) {
    throw ConfigError(reader.where + ": " + reader.key_path + ": datasets/" + reader.name +
                      " cannot open split \"" + split + "\": " + e.what());
  }
  if (dataset->size() == 0) {
    throw ConfigError(reader.where + ": " + reader.key_path + ": the " + split +
                      " split of datasets/" + reader.name + " holds no samples");
  }
  return dataset;
}

// Before the split is scored: a report path that is a folder or cannot be written is an error
// now, and one that would replace a checkpoint (the one scored, or any other) loses weights.
void check_evaluation_destination(const std::filesystem::path& path, const std::string& given,
                                  const std::string& checkpoint) {
  const std::string what = given.empty() ? "the report " + path.string() : "--out " + given;
  std::error_code ec;
  if (std::filesystem::equivalent(path, checkpoint, ec)) {
    throw po::error(what + ": is the checkpoint being scored; give the report another path");
  }
  if (std::filesystem::is_regular_file(path, ec) && is_checkpoint_file(path)) {
    throw po::error(what + ": is an exprun checkpoint; give the report another path");
  }
  // The default lies beside the checkpoint: no folder of its own is made for a checkpoint that
  // is not there (reading it says so).
  if (given.empty() && !std::filesystem::is_directory(path.parent_path(), ec)) return;
  check_output_destination(what, path, path.parent_path());
}

}  // namespace

int eval_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string file, checkpoint, split = "test", stage_name, decode, out_path;
  std::vector<std::string> overrides;
  po::options_description options(
      "exprun eval FILE.toml --checkpoint C [options]\n\nScores a checkpoint of one of the "
      "experiment's stages on a split: MRE, SD and SDR at 2/2.5/3/4 mm overall, per landmark "
      "and per group, in original-image millimetres, and every image's errors. Writes an "
      "evaluation report (JSON) and prints a summary table.\n\nOptions");
  add_common_options(options, common);
  options.add_options()("file", po::value(&file), "experiment file")(
      "checkpoint", po::value(&checkpoint), "checkpoint to score (a stage's best.pt or latest.pt)")(
      "split", po::value(&split), "dataset split to score (default: test)")(
      "stage", po::value(&stage_name),
      "the stage the checkpoint belongs to (default: the one it records)")(
      "set", po::value(&overrides)->composing(), "override a key, as for exprun run")(
      "decode", po::value(&decode),
      "argmax | dark: how heatmaps become coordinates (default: the stage's eval.decode)")(
      "out", po::value(&out_path),
      "report path (default: eval-<split>.json in the checkpoint's stage directory)");
  po::positional_options_description positional;
  positional.add("file", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (file.empty()) throw po::error("eval needs an experiment file");
    if (checkpoint.empty()) throw po::error("eval needs --checkpoint FILE");
    if (!decode.empty() && decode != "argmax" && decode != "dark") {
      throw po::error("--decode: expected argmax or dark, found '" + decode + "'");
    }
    const std::filesystem::path path = out_path.empty() ? default_evaluation_path(checkpoint, split)
                                                        : std::filesystem::path(out_path);
    check_evaluation_destination(path, out_path, checkpoint);
    Registry registry;
    load_registry(registry, common);
    const Experiment experiment = load_one_configuration(file, overrides, registry, "eval");
    const CheckpointInfo info = read_checkpoint_info(checkpoint);
    if (info.experiment != experiment.name) {
      throw ConfigError("checkpoint " + checkpoint + " belongs to experiment \"" + info.experiment +
                        "\", not to \"" + experiment.name + "\" (" + file + ")");
    }
    if (stage_name.empty()) stage_name = info.stage;
    const std::size_t index = stage_index_named(experiment, stage_name);
    if (info.stage != stage_name) {
      throw ConfigError("checkpoint " + checkpoint + " belongs to stage \"" + info.stage +
                        "\", not to --stage " + stage_name);
    }
    StageConfig stage = experiment.stages[index];
    if (!decode.empty()) stage.eval.decode = decode;
    check_checkpoint_config(checkpoint, info.config, to_json(stage));

    apply_thread_count(experiment.threads);
    BuiltStage built = build_stage(experiment, stage, index, registry);
    auto dataset = open_split(experiment, stage, built, split, registry);
    std::vector<std::string> symbols;
    for (const auto& l : dataset->landmarks()) symbols.push_back(l.symbol);
    if (symbols != info.landmark_symbols) {
      throw ConfigError("checkpoint " + checkpoint + " predicts the landmarks " +
                        join(info.landmark_symbols, ", ") + "; the " + split + " split has " +
                        join(symbols, ", "));
    }
    load_model_weights(checkpoint, *built.model);
    use_full_fp32_on_cuda();

    std::printf("evaluating %s (stage %s, epoch %lld) on %s: %zu images, decode %s, %s\n",
                checkpoint.c_str(), stage.name.c_str(), static_cast<long long>(info.epoch),
                split.c_str(), dataset->size(), stage.eval.decode.c_str(),
                built.device.str().c_str());
    std::fflush(stdout);
    const Evaluation evaluation =
        evaluate(built.evaluated(), dataset, built.micro_batch, built.data_workers);

    EvaluationContext context{experiment.name,
                              experiment.source_file,
                              experiment.overrides,
                              stage.name,
                              split,
                              stage.eval.decode,
                              built.device.str(),
                              {checkpoint, info.epoch, info.best_epoch, info.best_metric},
                              dataset->landmarks()};
    if (const std::string note = failed_predictions_note(evaluation, symbols); !note.empty())
      std::cerr << "exprun: warning: " << note << "\n";
    const nlohmann::json report = evaluation_report(context, evaluation);
    write_file_atomically(path, json_file_text(report));
    std::printf("%s", evaluation_table(evaluation.metrics, symbols).c_str());
    std::printf("report: %s\n", path.string().c_str());
    return int{kOk};
  });
}

}  // namespace exprun::cli

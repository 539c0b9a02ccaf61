#include <algorithm>
#include <cstdio>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/sweep_cli.hpp"
#include "config/config_error.hpp"
#include "data/dataset_summary.hpp"
#include "data/worker_count.hpp"
#include "util/text.hpp"

namespace exprun::cli {
namespace {

std::shared_ptr<sdk::Dataset> open_split(const Experiment& experiment, const PluginChoice& reader,
                                         const std::string& split, const Registry& registry) {
  try {
    return registry.make<sdk::Dataset>(reader.name, reader.params,
                                       sdk::DatasetContext{split, experiment.seed});
  } catch (const std::exception& e) {
    throw ConfigError(reader.where + ": " + reader.key_path + ": datasets/" + reader.name + " (" +
                      split + " split): " + e.what());
  }
}

}  // namespace

int data_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string file;
  std::string stage_name;
  std::vector<std::string> overrides;
  std::vector<std::string> chosen_splits;
  po::options_description options(
      "exprun data FILE.toml [--stage S] [options]\n\nOpens a stage's dataset and reads every "
      "sample of its training and validation splits (and of `test` when the reader has one): "
      "counts, image sizes and pixel types, mm per pixel per group (machine), landmark names, "
      "values the reader carries (such as cvm_stage), and any file it skipped and why.\n\n"
      "Options");
  add_common_options(options, common);
  options.add_options()("file", po::value(&file), "experiment file")(
      "stage", po::value(&stage_name), "the stage whose data to read (default: the first)")(
      "set", po::value(&overrides)->composing(), "override a key, as for exprun run")(
      "split", po::value(&chosen_splits)->composing(),
      "read this split instead of the stage's two and test (repeatable)");
  po::positional_options_description positional;
  positional.add("file", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (file.empty()) throw po::error("data needs an experiment file");
    Registry registry;
    load_registry(registry, common);
    const Experiment experiment = load_one_configuration(file, overrides, registry, "data");
    const std::size_t index = stage_name.empty() ? 0 : stage_index_named(experiment, stage_name);
    const StageConfig& stage = experiment.stages.at(index);
    const PluginChoice& reader = stage.data.reader;
    const auto threads =
        static_cast<unsigned>(compute_thread_count(experiment.threads, usable_cores(), 1));

    std::vector<std::string> parts;
    for (const auto& [key, value] : reader.params.values())
      parts.push_back(key + " = " + sdk::to_string(value));
    std::printf("stage %s: datasets/%s { %s }\n", stage.name.c_str(), reader.name.c_str(),
                join(parts, ", ").c_str());

    struct SplitToRead {
      std::string name;
      std::string label;      // " (data.train_split)"
      bool optional = false;  // `test`: not used for training, so a reader may lack it
    };
    std::vector<SplitToRead> splits;
    if (chosen_splits.empty()) {
      splits = {{stage.data.train_split, " (data.train_split)"},
                {stage.data.val_split, " (data.val_split)"}};
      if (stage.data.train_split != "test" && stage.data.val_split != "test")
        splits.push_back({"test", "", true});
    } else {
      for (const auto& split : chosen_splits) splits.push_back({split, ""});
    }
    bool landmarks_shown = false;
    for (const auto& split : splits) {
      std::shared_ptr<sdk::Dataset> dataset;
      try {
        dataset = open_split(experiment, reader, split.name, registry);
      } catch (const ConfigError& e) {
        if (!split.optional) throw;
        std::printf("\nsplit %s: not read (%s)\n", split.name.c_str(), e.what());
        continue;
      }
      if (!landmarks_shown) {
        std::vector<std::string> names;
        for (const auto& l : dataset->landmarks())
          names.push_back(l.title.empty() ? l.symbol : l.symbol + " (" + l.title + ")");
        std::printf("landmarks   %zu: %s\n", names.size(), join(names, ", ").c_str());
        landmarks_shown = true;
      }
      std::printf("\nsplit %s%s\n", split.name.c_str(), split.label.c_str());
      std::fflush(stdout);
      const DatasetSummary summary = summarize_dataset(*dataset, split.name, threads);
      std::printf("%s", format_summary(summary).c_str());
      std::fflush(stdout);
    }
    return int{kOk};
  });
}

}  // namespace exprun::cli

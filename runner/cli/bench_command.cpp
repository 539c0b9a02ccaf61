#include <cstdio>
#include <iostream>

#include "bench/strategy_benchmark.hpp"
#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/sweep_cli.hpp"
#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "run/experiment_run.hpp"
#include "util/atomic_file.hpp"
#include "util/text.hpp"
#include "util/timestamp.hpp"

namespace exprun::cli {
int bench_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string file;
  std::vector<std::string> overrides;
  std::string stage_name;
  std::string plans_text;
  std::string variants_text =
      "none,mixed_precision,activation_checkpointing,mixed_precision+activation_checkpointing";
  int warmup = 1;
  int steps = 3;
  std::string json_path;
  po::options_description options(
      "exprun bench FILE.toml [options]\n\nTrains one stage for a few steps at each micro-batch x "
      "accumulation plan, with and without mixed precision and activation checkpointing, and "
      "prints peak memory and images/s for each. Every case starts from the same weights and "
      "batches. Writes nothing but the JSON.\n\nOptions");
  add_common_options(options, common);
  options.add_options()("file", po::value(&file), "experiment file")(
      "stage", po::value(&stage_name), "the stage to measure (default: the first)")(
      "plans", po::value(&plans_text),
      "MICROxACCUMULATION list, e.g. 4x1,2x2,1x4 (default: every split of the stage's "
      "effective batch)")(
      "variants", po::value(&variants_text),
      "strategy sets, comma-separated, each none or names joined by '+' (default: none, "
      "mixed_precision, activation_checkpointing, both)")(
      "warmup", po::value(&warmup), "untimed steps first, so optimiser state exists (default 1)")(
      "steps", po::value(&steps), "timed steps per case (default 3)")(
      "set", po::value(&overrides)->composing(), "override a key, as for exprun run")(
      "json", po::value(&json_path),
      "write the measurements here (default: <output>/<experiment>/bench-<UTC time>.json)");
  po::positional_options_description positional;
  positional.add("file", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (file.empty()) throw po::error("bench needs an experiment file");
    if (warmup < 0)
      throw po::error("--warmup: expected 0 or more, found " + std::to_string(warmup));
    if (steps < 1) throw po::error("--steps: expected 1 or more, found " + std::to_string(steps));
    BenchOptions bench;
    bench.warmup_steps = warmup;
    bench.timed_steps = steps;
    try {
      if (!plans_text.empty()) bench.plans = parse_bench_plans(plans_text);
    } catch (const std::invalid_argument& e) {
      throw po::error(std::string("--plans ") + e.what());
    }
    try {
      bench.variants = parse_bench_variants(variants_text);
    } catch (const std::invalid_argument& e) {
      throw po::error(std::string("--variants ") + e.what());
    }
    Registry registry;
    load_registry(registry, common);
    Experiment experiment = load_one_configuration(file, overrides, registry, "bench");
    const std::size_t index = stage_name.empty() ? 0 : stage_index_named(experiment, stage_name);
    const StageConfig& stage = experiment.stages[index];
    if (bench.plans.empty()) bench.plans = plans_for_effective_batch(stage.memory.effective_batch);
    const auto threads = apply_thread_count(experiment.threads);
    std::printf(
        "bench %s, stage %s: %s %dx%d input, %d timed steps after %d warm-up per case, %lld "
        "threads\n",
        experiment.name.c_str(), stage.name.c_str(), stage.model.name.c_str(),
        static_cast<int>(stage.data.input_width), static_cast<int>(stage.data.input_height), steps,
        warmup, static_cast<long long>(threads));
    std::printf("%s", bench_table_header().c_str());
    std::fflush(stdout);
    const BenchCase* reference = nullptr;
    std::vector<BenchCase> seen;
    seen.reserve(bench.plans.size() * bench.variants.size());
    const BenchResult result =
        run_strategy_benchmark(experiment, index, registry, bench, [&](const BenchCase& c) {
          seen.push_back(c);
          if (!reference && c.ok) reference = &seen.back();
          std::printf("%s", bench_table_row(c, reference).c_str());
          std::fflush(stdout);
        });
    nlohmann::json out = result.to_json();
    out["source_file"] = experiment.source_file;
    out["threads"] = threads;
    const std::filesystem::path path =
        json_path.empty() ? std::filesystem::path(experiment.output_dir) / experiment.name /
                                ("bench-" + utc_timestamp() + ".json")
                          : std::filesystem::path(json_path);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    write_file_atomically(path, out.dump(2) + "\n");
    std::printf("measurements: %s\n", path.string().c_str());
    for (const auto& c : result.cases)
      if (!c.ok) return int{kRunFailed};
    return int{kOk};
  });
}

}  // namespace exprun::cli

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>

#include "bench/data_benchmark.hpp"
#include "bench/strategy_benchmark.hpp"
#include "bench/training_benchmark.hpp"
#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/sweep_cli.hpp"
#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "run/experiment_run.hpp"
#include "run/interrupt.hpp"
#include "util/atomic_file.hpp"
#include "util/dead_process_leftovers.hpp"
#include "util/json_file.hpp"
#include "util/program.hpp"
#include "util/text.hpp"
#include "util/timestamp.hpp"

namespace exprun::cli {
namespace {

constexpr const char* kScratchPrefix = "exprun-bench-training-";
// Bounds that keep a typing slip (a digit too many) from an allocation failure or a run of days.
constexpr std::int64_t kMaxBenchImages = 1'000'000;
constexpr int kMaxBenchRounds = 1000;
constexpr int kMaxBenchSteps = 100'000;

// As the file says it: the count "auto" resolves to is known once the stage is built.
std::string configured_workers(const DataConfig& data) {
  return data.workers_auto ? "auto" : std::to_string(data.workers);
}

// The scratch runs of --training go under the system's temporary folder; what a run that a
// signal ended left there goes first.
std::filesystem::path scratch_folder() {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec) {
    const char* tmpdir = std::getenv("TMPDIR");
    throw po::error(std::string("no temporary folder for the scratch runs: ") + ec.message() +
                    (tmpdir ? std::string(" (TMPDIR=") + tmpdir + ")" : std::string()));
  }
  remove_dead_process_leftovers(dir, kScratchPrefix);
  return dir;
}

// Where the measurements go: the file --json names, else a new one in the experiment's output
// folder. Checked before measuring, which can take minutes: a destination that cannot be written
// is an error now, not after the work.
struct BenchJsonDestination {
  std::filesystem::path given;   // --json, or empty
  std::filesystem::path folder;  // the default file's folder
  std::string prefix;            // the default file's name before its UTC time
};

BenchJsonDestination bench_json_destination(const std::string& given, const Experiment& experiment,
                                            const std::string& prefix) {
  namespace fs = std::filesystem;
  BenchJsonDestination d{given, fs::path(experiment.output_dir) / experiment.name, prefix};
  const fs::path folder = given.empty() ? d.folder : d.given.parent_path();
  const std::string what =
      given.empty() ? "the measurements' folder " + folder.string() : "--json " + given;
  check_output_destination(what, d.given, folder);
  return d;
}

void write_bench_json(const BenchJsonDestination& destination, const nlohmann::json& out) {
  const std::string text = json_file_text(out);
  std::filesystem::path path = destination.given;
  if (!path.empty()) {
    write_file_atomically(path, text);
  } else {
    // Two benchmarks that finish in the same second get -2, -3, ... as run directories do,
    // rather than one replacing the other.
    const std::string base = destination.prefix + utc_timestamp();
    for (int attempt = 1;; ++attempt) {
      path = destination.folder /
             ((attempt == 1 ? base : base + "-" + std::to_string(attempt)) + ".json");
      if (write_new_file_atomically(path, text)) break;
    }
  }
  std::printf("measurements: %s\n", path.string().c_str());
}

int data_bench(const std::string& file, const std::vector<std::string>& overrides,
               const std::string& stage_name, const CommonOptions& common, int warmup, int steps,
               const std::string& workers_text, std::int64_t images, int rounds, bool measure_model,
               const std::string& json_path) {
  DataBenchOptions options;
  try {
    if (!workers_text.empty()) options.worker_counts = parse_worker_counts(workers_text);
  } catch (const std::invalid_argument& e) {
    throw po::error(std::string("--workers ") + e.what());
  }
  options.images = images;
  options.rounds = rounds;
  options.model_warmup_steps = warmup;
  options.model_timed_steps = steps;
  options.measure_model = measure_model;
  Registry registry;
  load_registry(registry, common);
  Experiment experiment = load_one_configuration(file, overrides, registry, "bench");
  const std::size_t index = stage_name.empty() ? 0 : stage_index_named(experiment, stage_name);
  const BenchJsonDestination destination =
      bench_json_destination(json_path, experiment, "bench-data-");
  const auto threads = apply_thread_count(experiment.threads);
  std::printf("bench --data %s, stage %s: data.workers = %s, %lld threads\n",
              experiment.name.c_str(), experiment.stages[index].name.c_str(),
              configured_workers(experiment.stages[index].data).c_str(),
              static_cast<long long>(threads));
  std::fflush(stdout);
  const DataBenchResult result =
      run_data_benchmark(experiment, index, registry, options, [](const std::string& line) {
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
      });
  nlohmann::json out = result.to_json();
  out["source_file"] = experiment.source_file;
  out["threads"] = threads;
  write_bench_json(destination, out);
  return int{kOk};
}

// --python: "auto" is the first python3 (on PATH, then Debian's) that can import torch;
// "none" skips the reference; anything else is the interpreter to use, which must work.
std::filesystem::path python_for_reference(const std::string& given, std::string& note) {
  if (given == "none") {
    note = "not run (--python none)";
    return {};
  }
  if (given != "auto") {
    const std::filesystem::path python = given.find('/') == std::string::npos
                                             ? find_on_path(given).value_or(given)
                                             : std::filesystem::path(given);
    if (find_python_with_torch({python}).empty()) {
      throw po::error("--python " + given + ": cannot run it, or it cannot import torch");
    }
    return python;
  }
  std::vector<std::filesystem::path> candidates;
  if (const auto on_path = find_on_path("python3")) candidates.push_back(*on_path);
  candidates.push_back("/usr/bin/python3");
  const auto python = find_python_with_torch(candidates);
  if (python.empty()) {
    note =
        "not run: no python3 on PATH or in /usr/bin can import torch (Debian: apt install "
        "python3-torch; or --python PATH)";
  }
  return python;
}

int training_bench(const std::string& file, const std::vector<std::string>& overrides,
                   const std::string& stage_name, const CommonOptions& common, int rounds,
                   const std::string& python, const std::string& python_script,
                   const std::string& json_path) {
  TrainingBenchOptions options;
  options.rounds = rounds;
  std::string python_note;
  options.python = python_for_reference(python, python_note);
  options.python_script = python_script;
  options.python_required = python != "auto";
  if (!options.python.empty() && !std::filesystem::is_regular_file(options.python_script)) {
    throw po::error("--python-script " + python_script +
                    ": no such file (the PyTorch reference, benchmarks/python/train_reference.py "
                    "in exprun's source tree)");
  }
  Registry registry;
  load_registry(registry, common);
  Experiment experiment = load_one_configuration(file, overrides, registry, "bench");
  const std::size_t index = stage_name.empty() ? 0 : stage_index_named(experiment, stage_name);
  const BenchJsonDestination destination =
      bench_json_destination(json_path, experiment, "bench-training-");
  options.threads = apply_thread_count(experiment.threads);
  options.scratch_dir = scratch_folder() / (kScratchPrefix + std::to_string(::getpid()));
  // The runner's checkpoints and events are written there and are of no use afterwards.
  struct RemoveScratch {
    std::filesystem::path dir;
    ~RemoveScratch() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } remove_scratch{options.scratch_dir};
  const StageConfig& stage = experiment.stages[index];
  std::printf(
      "bench --training %s, stage %s: %s %lldx%lld input, batch %lld, data.workers = "
      "%s, %lld threads, %d rounds\n",
      experiment.name.c_str(), stage.name.c_str(), stage.model.name.c_str(),
      static_cast<long long>(stage.data.input_width),
      static_cast<long long>(stage.data.input_height),
      static_cast<long long>(stage.memory.effective_batch), configured_workers(stage.data).c_str(),
      static_cast<long long>(options.threads), rounds);
  if (!python_note.empty()) std::printf("PyTorch reference: %s\n", python_note.c_str());
  std::fflush(stdout);
  TrainingBenchResult result;
  try {
    // A stop signal asks the sides to stop (the runner after a step, the others between them),
    // so that the scratch folder goes on the way out.
    const InterruptGuard stop_between_sides;
    result =
        run_training_benchmark(experiment, index, registry, options, [](const std::string& line) {
          std::printf("%s\n", line.c_str());
          std::fflush(stdout);
        });
  } catch (const std::invalid_argument& e) {
    throw ConfigError(stage.where + ": " + e.what() + " (--python none measures without it)");
  }
  if (result.python_note.empty()) result.python_note = python_note;
  nlohmann::json out = result.to_json();
  out["source_file"] = experiment.source_file;
  write_bench_json(destination, out);
  return int{kOk};
}

}  // namespace

int bench_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string file;
  std::vector<std::string> overrides;
  std::string stage_name;
  std::string plans_text;
  const std::string all_variants =
      "none,mixed_precision,activation_checkpointing,mixed_precision+activation_checkpointing";
  std::string variants_text = all_variants;
  // kNotGiven: --training refuses both, the other modes default to 1 and 3.
  constexpr int kNotGiven = std::numeric_limits<int>::min();
  int warmup = kNotGiven;
  int steps = kNotGiven;
  std::string json_path;
  bool data = false;
  std::string workers_text;
  std::int64_t images = 64;
  int rounds = 3;
  bool no_model = false;
  bool training = false;
  std::string python = "auto";
  std::string python_script = EXPRUN_PYTHON_REFERENCE;
  po::options_description options(
      "exprun bench FILE.toml [options]\nexprun bench FILE.toml --data [options]\nexprun bench "
      "FILE.toml --training [options]\n\nTrains one "
      "stage for a few steps at each micro-batch x accumulation plan, with and without mixed "
      "precision and activation checkpointing, and prints peak memory and images/s for each. "
      "Every case starts from the same weights and batches. With --data: the stage's data "
      "pipeline alone, images/s for several worker counts and where an image's time goes, next "
      "to what the model consumes. With --training: the runner's own epochs against the bare loop "
      "and the PyTorch reference script, interleaved. Writes nothing but the JSON.\n\nOptions");
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
      "data", po::bool_switch(&data), "measure the data pipeline instead of the strategies")(
      "training", po::bool_switch(&training),
      "the runner's training images/s against the bare loop and the PyTorch reference")(
      "workers", po::value(&workers_text),
      "with --data: worker counts, e.g. 0,1,2,4 (default: 0 up to max(2, data.workers))")(
      "images", po::value(&images),
      "with --data: images per measurement (default 64; the split is cycled when smaller)")(
      "rounds", po::value(&rounds),
      "with --data or --training: rounds, medians reported (default 3)")(
      "python", po::value(&python),
      "with --training: the PyTorch reference's interpreter; auto (the first python3 that can "
      "import torch) or none (default auto)")(
      "python-script", po::value(&python_script),
      "with --training: the reference script (default: benchmarks/python/train_reference.py of "
      "the source tree)")("no-model", po::bool_switch(&no_model),
                          "with --data: do not time the model (a large one on a CPU takes long)")(
      "json", po::value(&json_path),
      "write the measurements here (default: <output>/<experiment>/bench-<UTC time>.json)");
  po::positional_options_description positional;
  positional.add("file", 1);
  return guarded([&] {
    const po::variables_map given = parse(args, options, positional);
    if (common.help) {
      std::cout << options << "\n";
      return int{kOk};
    }
    const auto any_given = [&](std::initializer_list<const char*> names) {
      for (const char* name : names)
        if (given.count(name) && !given[name].defaulted()) return true;
      return false;
    };
    if (file.empty()) throw po::error("bench needs an experiment file");
    if (data && training) throw po::error("--data and --training measure different things");
    if (given.count("images") && (images < 1 || images > kMaxBenchImages)) {
      throw po::error("--images: expected 1 to " + std::to_string(kMaxBenchImages) + ", found " +
                      std::to_string(images));
    }
    if (given.count("rounds") && (rounds < 1 || rounds > kMaxBenchRounds)) {
      throw po::error("--rounds: expected 1 to " + std::to_string(kMaxBenchRounds) + ", found " +
                      std::to_string(rounds));
    }
    if (training) {
      if (any_given({"plans", "variants", "warmup", "steps", "workers", "images"}) || no_model) {
        throw po::error(
            "--plans, --variants, --warmup, --steps, --workers, --images and --no-model go "
            "without --training (its sides time the steps of one epoch)");
      }
      if (python == "none" && given.count("python-script")) {
        throw po::error("--python-script goes with a --python other than none");
      }
      return training_bench(file, overrides, stage_name, common, rounds, python, python_script,
                            json_path);
    }
    if (any_given({"python", "python-script"})) {
      throw po::error("--python and --python-script go with --training");
    }
    if (warmup == kNotGiven) warmup = 1;
    if (steps == kNotGiven) steps = 3;
    if (warmup < 0 || warmup > kMaxBenchSteps) {
      throw po::error("--warmup: expected 0 to " + std::to_string(kMaxBenchSteps) + ", found " +
                      std::to_string(warmup));
    }
    if (steps < 1 || steps > kMaxBenchSteps) {
      throw po::error("--steps: expected 1 to " + std::to_string(kMaxBenchSteps) + ", found " +
                      std::to_string(steps));
    }
    if (data && any_given({"plans", "variants"})) {
      throw po::error("--plans and --variants go without --data");
    }
    if (data)
      return data_bench(file, overrides, stage_name, common, warmup, steps, workers_text, images,
                        rounds, !no_model, json_path);
    if (any_given({"workers", "images", "rounds"}) || no_model) {
      throw po::error(
          "--workers, --images and --no-model go with --data, --rounds with --data or "
          "--training");
    }
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
    const BenchJsonDestination destination =
        bench_json_destination(json_path, experiment, "bench-");
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
    write_bench_json(destination, out);
    for (const auto& c : result.cases)
      if (!c.ok) return int{kRunFailed};
    return int{kOk};
  });
}

}  // namespace exprun::cli

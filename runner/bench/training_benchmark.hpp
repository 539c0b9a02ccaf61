// `exprun bench --training`: the runner's own training speed next to the bare loop (the stage's
// model, loss and optimiser on one pre-made batch, no data loading) and next to the same model
// trained by the PyTorch reference script (benchmarks/python/train_reference.py), measured in
// turn, round after round, and reported as medians and ratios.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "plugins/registry.hpp"

namespace exprun {

struct TrainingBenchOptions {
  int rounds = 3;
  std::int64_t threads = 1;  // LibTorch's threads, already applied; the reference gets as many
  // Where the runner's epochs write their checkpoints, metrics and events; removed afterwards.
  std::filesystem::path scratch_dir;
  // The PyTorch reference: interpreter and script; an empty interpreter skips it.
  std::filesystem::path python;
  std::filesystem::path python_script;
  // False: a stage the reference cannot train skips it (python_note says why) instead of
  // failing the benchmark.
  bool python_required = true;
};

struct TrainingRound {
  double runner_images_per_second = 0;  // the runner's second epoch: data, step, listeners
  double runner_data_wait_share = 0;    // of that epoch, the share spent waiting for batches
  double bare_images_per_second = 0;    // the same steps on one pre-made batch
  double python_images_per_second = 0;  // the PyTorch reference; 0 when not run
};

struct TrainingBenchResult {
  std::string experiment;
  std::string stage;
  std::string device;
  std::string model;
  std::int64_t input_width = 0, input_height = 0;
  std::int64_t effective_batch = 0;
  std::int64_t micro_batch = 0;
  std::int64_t steps_per_epoch = 0;  // timed steps of every side
  std::int64_t data_workers = 0;
  std::int64_t threads = 0;
  std::vector<TrainingRound> rounds;
  bool python_measured = false;
  std::vector<std::string> python_command;  // interpreter, script, arguments
  std::string python_torch_version;
  std::string python_note;  // why the reference was not run

  double median_runner() const;
  double median_runner_data_wait_share() const;
  double median_bare() const;
  double median_python() const;  // 0 when not measured
  nlohmann::json to_json() const;
};

// The reference script's arguments for a stage, so that it trains the same arithmetic: model
// shape, landmarks, input size and channels, batch and micro-batch, loss map, precision,
// channels-last, threads, device and `steps` timed steps. Throws std::invalid_argument naming
// what the reference cannot do (another model, loss, optimiser or memory strategy).
std::vector<std::string> python_reference_arguments(const StageConfig& stage,
                                                    std::int64_t landmarks,
                                                    std::int64_t micro_batch,
                                                    const std::string& device, std::int64_t threads,
                                                    std::int64_t steps);

// The first of `candidates` that can `import torch`; empty when none can.
std::filesystem::path find_python_with_torch(const std::vector<std::filesystem::path>& candidates);

// on_line sees each line of the report as soon as it is measured. Throws when a side fails.
TrainingBenchResult run_training_benchmark(
    const Experiment& experiment, std::size_t stage_index, const Registry& registry,
    const TrainingBenchOptions& options,
    const std::function<void(const std::string&)>& on_line = {});

}  // namespace exprun

// Trains one stage: epochs of optimiser steps (each split into micro-batches by the step
// itself), validation after every epoch, and a StageProgress that the stage's listeners turn
// into checkpoints, metrics.jsonl, TensorBoard events, curves.png, the console line and
// report.json. Continues exactly from a checkpoint when resuming, and stops cleanly (writing
// `latest`) when SIGINT or SIGTERM asks.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include "config/experiment.hpp"
#include "dist/process_group.hpp"
#include "train/checkpoint.hpp"
#include "train/data_parallel.hpp"
#include "train/listeners/stage_listeners.hpp"
#include "train/optimizer_factory.hpp"
#include "train/stage_builder.hpp"
#include "train/stage_progress.hpp"
#include "train/train_step.hpp"

namespace exprun {

class StageTrainer {
 public:
  // on_epoch is called after each epoch with the stage's report so far (to keep report.json
  // current while a long stage runs). chain: the stage's "init" and "focus" report sections.
  // group: this process is one rank of several (data-parallel); null for one process. Only
  // rank 0 validates and writes (checkpoints, metrics, events, curves, reports).
  StageTrainer(const Experiment& experiment, const StageConfig& config, std::size_t stage_index,
               BuiltStage stage, std::filesystem::path stage_dir,
               std::function<void(const nlohmann::json&)> on_epoch = {},
               nlohmann::json chain = nlohmann::json::object(),
               std::shared_ptr<dist::ProcessGroup> group = nullptr);

  // Restores model, optimiser, strategies, generators and the trainer's record from a
  // checkpoint of this stage; run() then continues where it was written.
  CheckpointInfo resume_from(const std::filesystem::path& checkpoint);

  // Returns the stage's section of report.json, with status "completed", or "interrupted"
  // when a stop signal arrived (latest.pt then holds the position). Throws on failure.
  // extra: listeners told of the stage besides its own outputs (called after them).
  nlohmann::json run(std::vector<std::unique_ptr<StageListener>> extra = {});

  const StageProgress& progress() const { return progress_; }
  // The stop signal that ended run() early (agreed by all ranks), or 0.
  int stop_signal() const { return stop_signal_; }

 private:
  struct FinishedEpoch {
    EpochRecord record;
    Metrics validation;
    bool improved = false;
  };
  EpochStats train_epoch(std::int64_t epoch, EpochStats so_far, const StageListeners& listeners);
  // Validates and records the epoch in the progress: history, best, final and baseline.
  FinishedEpoch finish_epoch(std::int64_t epoch, const EpochStats& stats);
  nlohmann::json finish_stage(const std::string& status, bool mid_epoch,
                              const StageListeners& listeners);
  StepParts step_parts();
  TrainingState training_state();
  StageListenerContext listener_context();
  std::optional<std::int64_t> peak_memory() const;
  nlohmann::json stage_report() const;
  // The mean-shape floor: training positions (no augmentation) scored on the validation split.
  Metrics mean_shape_metrics(const std::vector<SampleMeta>& valid_meta) const;
  bool is_better(double value) const;
  // Whether this process writes the stage's files: one process, or rank 0.
  bool writes_outputs() const { return !parallel_ || parallel_->rank() == 0; }
  // interrupt_signal(), agreed by all ranks when there are several (a collective).
  int agreed_stop_signal();
  CheckpointInfo checkpoint_info() const;
  void write_checkpoint(const std::string& name);

  const Experiment& experiment_;
  const StageConfig& config_;
  std::size_t stage_index_;
  BuiltStage stage_;
  std::filesystem::path dir_;
  std::function<void(const nlohmann::json&)> on_epoch_;
  nlohmann::json chain_;

  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  std::int64_t steps_per_epoch_ = 0;
  std::chrono::steady_clock::time_point stage_start_;
  double wall_seconds_ = 0;
  std::string status_ = "running";
  StageProgress progress_;
  std::unique_ptr<DataParallel> parallel_;
  int stop_signal_ = 0;
};

}  // namespace exprun

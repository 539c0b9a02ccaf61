// Trains one stage: epochs of optimiser steps split into micro-batches as the memory strategies
// say, validation after every epoch, best/latest/epoch_N checkpoints, metrics.jsonl, the
// progress line. Continues exactly from a checkpoint when resuming, and stops cleanly (writing
// `latest`) when SIGINT or SIGTERM asks.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include "config/experiment.hpp"
#include "train/checkpoint.hpp"
#include "train/optimizer_factory.hpp"
#include "train/stage_builder.hpp"
#include "train/train_step.hpp"

namespace exprun {

class StageTrainer {
 public:
  // on_epoch is called after each epoch with the stage's report so far (to keep report.json
  // current while a long stage runs). chain: the stage's "init" and "focus" report sections.
  StageTrainer(const Experiment& experiment, const StageConfig& config, std::size_t stage_index,
               BuiltStage stage, std::filesystem::path stage_dir,
               std::function<void(const nlohmann::json&)> on_epoch = {},
               nlohmann::json chain = nlohmann::json::object());

  // Restores model, optimiser, strategies, generators and the trainer's record from a
  // checkpoint of this stage; run() then continues where it was written.
  CheckpointInfo resume_from(const std::filesystem::path& checkpoint);

  // Returns the stage's section of report.json, with status "completed", or "interrupted"
  // when a stop signal arrived (latest.pt then holds the position). Throws on failure.
  nlohmann::json run();

 private:
  struct EpochStats {
    double loss_sum = 0;  // loss x images, summed over the epoch's steps
    double seconds = 0;
    std::int64_t images = 0;
    std::int64_t skipped_steps = 0;
    std::int64_t steps = 0;  // optimiser steps done in the epoch
    bool interrupted = false;
    double loss() const;
    double images_per_second() const;
    nlohmann::json to_json() const;
    static EpochStats from_json(const nlohmann::json& j);
  };
  EpochStats train_epoch(std::int64_t epoch, EpochStats so_far);
  StepParts step_parts();
  TrainingState training_state();
  // Peak bytes of live tensors on the stage's device since the stage began; null if unknown.
  nlohmann::json peak_memory_json() const;
  nlohmann::json stage_report() const;
  // The mean-shape floor: training positions (no augmentation) scored on the validation split.
  nlohmann::json mean_shape_metrics(const std::vector<SampleMeta>& valid_meta) const;
  double monitored_value(const nlohmann::json& line) const;
  bool is_better(double value) const;
  CheckpointInfo checkpoint_info(std::int64_t epoch, const EpochStats& partial) const;
  void write_checkpoint(const std::string& name, std::int64_t epoch, const EpochStats& partial);
  void write_epoch_checkpoints(std::int64_t epoch, bool improved);

  const Experiment& experiment_;
  const StageConfig& config_;
  std::size_t stage_index_;
  BuiltStage stage_;
  std::filesystem::path dir_;
  std::function<void(const nlohmann::json&)> on_epoch_;
  nlohmann::json chain_;

  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  std::int64_t global_step_ = 0;
  std::int64_t steps_per_epoch_ = 0;
  double elapsed_train_seconds_ = 0;
  std::int64_t trained_images_ = 0;
  double wall_seconds_ = 0;

  nlohmann::json history_ = nlohmann::json::array();
  nlohmann::json best_metrics_;
  nlohmann::json final_metrics_;
  nlohmann::json baseline_metrics_;
  std::optional<double> best_value_;
  std::int64_t best_epoch_ = 0;
  std::int64_t epochs_done_ = 0;
  std::vector<std::string> epoch_checkpoints_;  // epoch_N.pt kept, oldest first
  EpochStats unfinished_;                       // a resumed epoch's steps before the interrupt
  nlohmann::json resumed_ = nlohmann::json::array();
  std::string status_ = "running";
};

}  // namespace exprun

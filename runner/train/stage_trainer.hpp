// Trains one stage: epochs of optimiser steps split into micro-batches as the memory strategies
// say, validation after every epoch, best/latest checkpoints, metrics.jsonl, the progress line.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>

#include "config/experiment.hpp"
#include "train/optimizer_factory.hpp"
#include "train/stage_builder.hpp"
#include "train/train_step.hpp"

namespace exprun {

class StageTrainer {
 public:
  // on_epoch is called after each epoch with the stage's report so far (to keep report.json
  // current while a long stage runs).
  StageTrainer(const Experiment& experiment, const StageConfig& config, std::size_t stage_index,
               BuiltStage stage, std::filesystem::path stage_dir,
               std::function<void(const nlohmann::json&)> on_epoch = {});

  // Returns the stage's section of report.json. Throws on failure.
  nlohmann::json run();

 private:
  struct EpochStats {
    double loss = 0;
    double images_per_second = 0;
    double seconds = 0;
    std::int64_t images = 0;
    std::int64_t skipped_steps = 0;
  };
  EpochStats train_epoch(std::int64_t epoch);
  StepParts step_parts();
  // Peak bytes of live tensors on the stage's device since the stage began; null if unknown.
  nlohmann::json peak_memory_json() const;
  nlohmann::json stage_report() const;

  const Experiment& experiment_;
  const StageConfig& config_;
  std::size_t stage_index_;
  BuiltStage stage_;
  std::filesystem::path dir_;
  std::function<void(const nlohmann::json&)> on_epoch_;

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
  double best_mre_ = 0;
  std::int64_t best_epoch_ = 0;
  std::int64_t epochs_done_ = 0;
  std::string status_ = "running";
};

}  // namespace exprun

#include "train/stage_trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include "data/batch_loader.hpp"
#include "eval/mean_shape.hpp"
#include "memory/memory_tracker.hpp"
#include "report/event_file_writer.hpp"
#include "report/learning_curves.hpp"
#include "report/tensorboard_scalars.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluator.hpp"
#include "train/optimizer_factory.hpp"
#include "train/progress.hpp"
#include "train/train_step.hpp"
#include "util/atomic_file.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string relative_to(const fs::path& path, const fs::path& base) {
  return fs::relative(path, base).generic_string();
}

}  // namespace

StageTrainer::StageTrainer(const Experiment& experiment, const StageConfig& config,
                           std::size_t stage_index, BuiltStage stage, fs::path stage_dir,
                           std::function<void(const nlohmann::json&)> on_epoch)
    : experiment_(experiment),
      config_(config),
      stage_index_(stage_index),
      stage_(std::move(stage)),
      dir_(std::move(stage_dir)),
      on_epoch_(std::move(on_epoch)) {
  optimizer_ = make_optimizer(config_.optimizer, stage_.model->parameters());
  const auto batch = static_cast<std::size_t>(config_.memory.effective_batch);
  steps_per_epoch_ = static_cast<std::int64_t>((stage_.train->size() + batch - 1) / batch);
  schedule_ = std::make_unique<LrSchedule>(config_.optimizer, config_.schedule, steps_per_epoch_,
                                           config_.epochs);
}

nlohmann::json StageTrainer::peak_memory_json() const {
  const auto memory = read_memory(stage_.device);
  return memory ? nlohmann::json(memory->peak_bytes) : nlohmann::json(nullptr);
}

StepParts StageTrainer::step_parts() {
  return {*stage_.model, *stage_.loss, stage_.strategies, stage_.landmark_weights, stage_.device};
}

StageTrainer::EpochStats StageTrainer::train_epoch(std::int64_t epoch) {
  EpochStats stats;
  const std::uint64_t epoch_seed = mix_seed(experiment_.seed, stage_index_, epoch);
  BatchLoader loader(stage_.train, *stage_.pipeline,
                     shuffled_order(stage_.train->size(), epoch_seed),
                     config_.memory.effective_batch, config_.data.workers, true, epoch_seed);
  Progress progress(config_.name, config_.epochs);
  progress.start_epoch(epoch, static_cast<std::int64_t>(loader.batch_count()));
  const auto start = Clock::now();
  double loss_sum = 0;
  std::int64_t step = 0;
  stage_.model->train();
  while (auto batch = loader.next()) {
    const double lr = schedule_->at(global_step_);
    set_learning_rate(*optimizer_, lr);
    const StepResult result = optimisation_step(
        step_parts(), *optimizer_, stage_.partition(batch->size()), batch->images, batch->heatmaps);
    const double loss = result.loss;
    if (!std::isfinite(loss)) {
      throw std::runtime_error("stage " + config_.name + ": the training loss became " +
                               std::to_string(loss) + " at epoch " + std::to_string(epoch + 1) +
                               " step " + std::to_string(step + 1) +
                               " (lower optimizer.lr or add warm-up)");
    }
    if (!result.stepped) ++stats.skipped_steps;
    loss_sum += loss * static_cast<double>(batch->size());
    stats.images += batch->size();
    ++step;
    ++global_step_;
    const double seconds = seconds_since(start);
    const double rate = static_cast<double>(stats.images) / std::max(seconds, 1e-9);
    const double images_left =
        static_cast<double>(stage_.train->size()) * static_cast<double>(config_.epochs - epoch) -
        static_cast<double>(stats.images);
    progress.step(step, loss_sum / static_cast<double>(stats.images), lr, rate, images_left / rate);
  }
  stats.seconds = seconds_since(start);
  stats.loss = loss_sum / static_cast<double>(std::max<std::int64_t>(1, stats.images));
  stats.images_per_second = static_cast<double>(stats.images) / std::max(stats.seconds, 1e-9);
  return stats;
}

nlohmann::json StageTrainer::run() {
  const auto stage_start = Clock::now();
  const fs::path checkpoints = dir_ / "checkpoints";
  fs::create_directories(checkpoints);
  const fs::path metrics_file = dir_ / "metrics.jsonl";
  const std::int64_t eval_batch = stage_.micro_batch;
  reset_peak_memory(stage_.device);

  // The mean-shape floor: training positions are read once (no augmentation), the validation
  // split is scored against them.
  MeanShapeBaseline mean_shape;
  {
    std::vector<std::size_t> order(stage_.train->size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    BatchLoader loader(stage_.train, *stage_.pipeline, std::move(order),
                       config_.memory.effective_batch, config_.data.workers, false, 0);
    while (auto batch = loader.next())
      for (const auto& m : batch->meta) mean_shape.add(m);
  }

  best_mre_ = std::numeric_limits<double>::infinity();
  std::string metrics_lines;
  // In the stage directory, so `tensorboard --logdir results/` names the curves
  // <experiment>/<run-id>/<stage>.
  EventFileWriter events(dir_);
  for (std::int64_t epoch = 0; epoch < config_.epochs; ++epoch) {
    const EpochStats stats = train_epoch(epoch);
    elapsed_train_seconds_ += stats.seconds;
    trained_images_ += stats.images;

    Evaluation val = evaluate(stage_, stage_.valid, eval_batch, config_.data.workers);
    if (baseline_metrics_.is_null()) {
      Evaluation floor = score(mean_shape.predict(val.meta), val.meta);
      baseline_metrics_ = to_json(floor.metrics, stage_.symbols());
    }
    const double mre = val.metrics.overall.mre;
    const nlohmann::json metrics = to_json(val.metrics, stage_.symbols());
    final_metrics_ = metrics;
    ++epochs_done_;
    const bool improved = mre < best_mre_;
    if (improved) {
      best_mre_ = mre;
      best_epoch_ = epoch + 1;
      best_metrics_ = metrics;
    }

    nlohmann::json line = {{"epoch", epoch + 1},
                           {"train_loss", stats.loss},
                           {"lr", schedule_->at(std::max<std::int64_t>(0, global_step_ - 1))},
                           {"val_mre_mm", mre},
                           {"val_sd_mm", val.metrics.overall.sd},
                           {"val_sdr", metrics["overall"]["sdr"]},
                           {"images_per_second", stats.images_per_second},
                           {"epoch_seconds", stats.seconds},
                           {"skipped_steps", stats.skipped_steps},
                           {"peak_memory_bytes", peak_memory_json()},
                           {"best", improved}};
    history_.push_back(line);
    metrics_lines += line.dump() + "\n";
    write_file_atomically(metrics_file, metrics_lines);
    write_epoch_scalars(events, line, metrics);
    write_learning_curves_png(
        dir_ / "curves.png",
        learning_curves_from_history(experiment_.name + " / " + config_.name, history_,
                                     baseline_metrics_["overall"]["mre"], best_epoch_));

    CheckpointInfo info{experiment_.name,   config_.name,
                        epoch + 1,          best_mre_,
                        best_epoch_,        config_.memory.effective_batch,
                        stage_.micro_batch, to_json(config_).dump()};
    save_checkpoint(checkpoints / "latest.pt", *stage_.model, *optimizer_, stage_.strategies, info);
    if (improved) {
      save_checkpoint(checkpoints / "best.pt", *stage_.model, *optimizer_, stage_.strategies, info);
    }

    char summary[256];
    std::snprintf(summary, sizeof summary,
                  "loss %.5f  val MRE %.3f mm  SDR@2mm %.1f%%  (mean shape %.3f mm)  %.1f img/s%s",
                  stats.loss, mre, val.metrics.overall.sdr.at(0),
                  baseline_metrics_["overall"]["mre"].get<double>(), stats.images_per_second,
                  improved ? "  *best*" : "");
    Progress p(config_.name, config_.epochs);
    p.start_epoch(epoch, 0);
    p.end_epoch(summary);
    wall_seconds_ = seconds_since(stage_start);
    if (on_epoch_) on_epoch_(stage_report());
  }
  status_ = "completed";
  wall_seconds_ = seconds_since(stage_start);
  return stage_report();
}

nlohmann::json StageTrainer::stage_report() const {
  const fs::path run_dir = dir_.parent_path();
  const auto micro = stage_.micro_batch;
  const auto effective = config_.memory.effective_batch;
  return {
      {"name", config_.name},
      {"status", status_},
      {"device", stage_.device.str()},
      {"epochs", config_.epochs},
      {"epochs_completed", epochs_done_},
      {"monitor", "val_mre_mm"},
      {"best_epoch", best_epoch_},
      {"best", best_metrics_},
      {"final", final_metrics_},
      {"mean_shape_baseline", baseline_metrics_},
      {"history", history_},
      {"wall_time_s", wall_seconds_},
      {"train_time_s", elapsed_train_seconds_},
      {"train_images_per_second",
       elapsed_train_seconds_ > 0 ? static_cast<double>(trained_images_) / elapsed_train_seconds_
                                  : 0.0},
      {"batch_plan",
       {{"effective_batch", effective},
        {"micro_batch", micro},
        {"accumulation_steps", (effective + micro - 1) / micro},
        {"steps_per_epoch", steps_per_epoch_},
        {"chosen_by", config_.memory.micro_batch_auto ? "tuner" : "config"},
        {"tuning", stage_.tuning}}},
      {"peak_memory_bytes", peak_memory_json()},
      {"model",
       {{"plugin", config_.model.name},
        {"parameters", stage_.parameter_count},
        {"multiply_adds", static_cast<std::int64_t>(std::llround(stage_.multiply_adds))}}},
      {"data",
       {{"plugin", config_.data.reader.name},
        {"train_samples", stage_.train->size()},
        {"valid_samples", stage_.valid->size()},
        {"landmarks", stage_.symbols()}}},
      {"checkpoints",
       {{"best", relative_to(dir_ / "checkpoints" / "best.pt", run_dir)},
        {"latest", relative_to(dir_ / "checkpoints" / "latest.pt", run_dir)}}},
      {"metrics_file", relative_to(dir_ / "metrics.jsonl", run_dir)},
  };
}

}  // namespace exprun

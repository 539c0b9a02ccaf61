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
#include "run/interrupt.hpp"
#include "train/evaluator.hpp"
#include "train/progress.hpp"
#include "util/atomic_file.hpp"
#include "util/fault_injection.hpp"

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

// JSON has no NaN or infinity; nlohmann writes them as null.
double number_or_nan(const nlohmann::json& j) {
  return j.is_number() ? j.get<double>() : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

double StageTrainer::EpochStats::loss() const {
  return loss_sum / static_cast<double>(std::max<std::int64_t>(1, images));
}

double StageTrainer::EpochStats::images_per_second() const {
  return static_cast<double>(images) / std::max(seconds, 1e-9);
}

nlohmann::json StageTrainer::EpochStats::to_json() const {
  return {{"loss_sum", loss_sum},
          {"seconds", seconds},
          {"images", images},
          {"skipped_steps", skipped_steps},
          {"steps", steps}};
}

StageTrainer::EpochStats StageTrainer::EpochStats::from_json(const nlohmann::json& j) {
  EpochStats s;
  s.loss_sum = j.at("loss_sum").get<double>();
  s.seconds = j.at("seconds").get<double>();
  s.images = j.at("images").get<std::int64_t>();
  s.skipped_steps = j.at("skipped_steps").get<std::int64_t>();
  s.steps = j.at("steps").get<std::int64_t>();
  return s;
}

StageTrainer::StageTrainer(const Experiment& experiment, const StageConfig& config,
                           std::size_t stage_index, BuiltStage stage, fs::path stage_dir,
                           std::function<void(const nlohmann::json&)> on_epoch,
                           nlohmann::json chain)
    : experiment_(experiment),
      config_(config),
      stage_index_(stage_index),
      stage_(std::move(stage)),
      dir_(std::move(stage_dir)),
      on_epoch_(std::move(on_epoch)),
      chain_(std::move(chain)) {
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

TrainingState StageTrainer::training_state() {
  return {*stage_.model, *optimizer_, stage_.strategies, stage_.device};
}

CheckpointInfo StageTrainer::resume_from(const fs::path& checkpoint) {
  const CheckpointInfo info = load_training_state(checkpoint, training_state());
  const nlohmann::json expected = to_json(config_);
  const nlohmann::json& written = info.config;
  if (info.experiment != experiment_.name || info.stage != config_.name || written != expected) {
    std::string what = "stage \"" + info.stage + "\" of experiment \"" + info.experiment + "\"";
    if (info.stage == config_.name && info.experiment == experiment_.name) {
      what = "another configuration of this stage (";
      for (const auto& change : nlohmann::json::diff(written, expected)) {
        what += change["path"].get<std::string>() + " ";
      }
      what.back() = ')';
    }
    throw std::runtime_error("checkpoint " + checkpoint.string() + " belongs to " + what +
                             "; resume needs the experiment as it was run");
  }
  const nlohmann::json& s = info.trainer_state;
  global_step_ = info.global_step;
  epochs_done_ = info.epoch;
  history_ = s.at("history");
  best_metrics_ = s.at("best_metrics");
  final_metrics_ = s.at("final_metrics");
  baseline_metrics_ = s.at("baseline_metrics");
  if (s.at("best_value").is_number()) best_value_ = s["best_value"].get<double>();
  best_epoch_ = info.best_epoch;
  elapsed_train_seconds_ = s.at("train_seconds").get<double>();
  trained_images_ = s.at("trained_images").get<std::int64_t>();
  epoch_checkpoints_ = s.at("epoch_checkpoints").get<std::vector<std::string>>();
  unfinished_ = EpochStats::from_json(s.at("unfinished"));
  resumed_ = s.at("resumed");
  if (stage_.tuning.is_null()) stage_.tuning = s.at("tuning");
  resumed_.push_back({{"from", relative_to(checkpoint, dir_.parent_path())},
                      {"epoch", info.epoch},
                      {"step_in_epoch", info.step_in_epoch}});
  return info;
}

StageTrainer::EpochStats StageTrainer::train_epoch(std::int64_t epoch, EpochStats so_far) {
  EpochStats stats = so_far;
  const std::uint64_t epoch_seed = mix_seed(experiment_.seed, stage_index_, epoch);
  // A resumed epoch skips the batches already trained: batches are fixed slices of the
  // epoch's order, so the rest come out exactly as they would have.
  std::vector<std::size_t> order = shuffled_order(stage_.train->size(), epoch_seed);
  const auto done = std::min<std::size_t>(
      order.size(), static_cast<std::size_t>(so_far.steps * config_.memory.effective_batch));
  order.erase(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(done));
  BatchLoader loader(stage_.train, *stage_.pipeline, std::move(order),
                     config_.memory.effective_batch, config_.data.workers, true, epoch_seed);
  const auto total_steps = so_far.steps + static_cast<std::int64_t>(loader.batch_count());
  Progress progress(config_.name, config_.epochs);
  progress.start_epoch(epoch, total_steps);
  const auto start = Clock::now();
  const std::string fault_prefix = "step:" + config_.name + ":" + std::to_string(epoch + 1) + ":";
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
                               " step " + std::to_string(stats.steps + 1) +
                               " (lower optimizer.lr or add warm-up)");
    }
    if (!result.stepped) ++stats.skipped_steps;
    stats.loss_sum += loss * static_cast<double>(batch->size());
    stats.images += batch->size();
    ++stats.steps;
    ++global_step_;
    const double seconds = so_far.seconds + seconds_since(start);
    const double rate = static_cast<double>(stats.images) / std::max(seconds, 1e-9);
    const double images_left =
        static_cast<double>(stage_.train->size()) * static_cast<double>(config_.epochs - epoch) -
        static_cast<double>(stats.images);
    progress.step(stats.steps, stats.loss(), lr, rate, images_left / rate);
    fault_point(fault_prefix + std::to_string(stats.steps));
    // The epoch's last step is followed by validation and the epoch-end checkpoints anyway.
    if (interrupt_signal() != 0 && stats.steps < total_steps) {
      stats.interrupted = true;
      break;
    }
  }
  stats.seconds = so_far.seconds + seconds_since(start);
  return stats;
}

nlohmann::json StageTrainer::mean_shape_metrics(const std::vector<SampleMeta>& valid_meta) const {
  MeanShapeBaseline mean_shape;
  std::vector<std::size_t> order(stage_.train->size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  BatchLoader loader(stage_.train, *stage_.pipeline, std::move(order),
                     config_.memory.effective_batch, config_.data.workers, false, 0);
  while (auto batch = loader.next())
    for (const auto& m : batch->meta) mean_shape.add(m);
  const Evaluation floor = score(mean_shape.predict(valid_meta), valid_meta);
  return to_json(floor.metrics, stage_.symbols());
}

double StageTrainer::monitored_value(const nlohmann::json& line) const {
  const std::string& monitor = config_.checkpoint.monitor;
  static const std::map<std::string, std::string> sdr_keys = {{"val_sdr_2mm", "2.0"},
                                                              {"val_sdr_2.5mm", "2.5"},
                                                              {"val_sdr_3mm", "3.0"},
                                                              {"val_sdr_4mm", "4.0"}};
  if (const auto sdr = sdr_keys.find(monitor); sdr != sdr_keys.end()) {
    return number_or_nan(line["val_sdr"][sdr->second]);
  }
  return number_or_nan(line[monitor]);
}

bool StageTrainer::is_better(double value) const {
  if (!std::isfinite(value)) return false;
  if (!best_value_) return true;
  return config_.checkpoint.mode == "max" ? value > *best_value_ : value < *best_value_;
}

CheckpointInfo StageTrainer::checkpoint_info(std::int64_t epoch, const EpochStats& partial) const {
  CheckpointInfo info;
  info.experiment = experiment_.name;
  info.stage = config_.name;
  info.epoch = epoch;
  info.step_in_epoch = partial.steps;
  info.global_step = global_step_;
  info.monitor = config_.checkpoint.monitor;
  info.best_metric = best_value_.value_or(std::numeric_limits<double>::quiet_NaN());
  info.best_epoch = best_epoch_;
  info.effective_batch = config_.memory.effective_batch;
  info.micro_batch = stage_.micro_batch;
  info.config = to_json(config_);
  for (const auto& landmark : stage_.landmarks) {
    info.landmark_symbols.push_back(landmark.symbol);
    info.landmark_titles.push_back(landmark.title);
  }
  info.trainer_state = {
      {"history", history_},
      {"best_metrics", best_metrics_},
      {"final_metrics", final_metrics_},
      {"baseline_metrics", baseline_metrics_},
      {"best_value", best_value_ ? nlohmann::json(*best_value_) : nlohmann::json(nullptr)},
      {"train_seconds", elapsed_train_seconds_},
      {"trained_images", trained_images_},
      {"epoch_checkpoints", epoch_checkpoints_},
      {"unfinished", partial.to_json()},
      {"resumed", resumed_},
      {"tuning", stage_.tuning}};
  return info;
}

void StageTrainer::write_checkpoint(const std::string& name, std::int64_t epoch,
                                    const EpochStats& partial) {
  save_checkpoint(dir_ / "checkpoints" / (name + ".pt"), training_state(),
                  checkpoint_info(epoch, partial),
                  "checkpoint:" + config_.name + ":" + std::to_string(epoch) + ":" + name);
}

// epoch_N, then best, then latest: whatever a crash interrupts, latest never claims an epoch
// whose best or epoch_N file was not yet written.
void StageTrainer::write_epoch_checkpoints(std::int64_t epoch, bool improved) {
  const EpochStats none;
  const auto& policy = config_.checkpoint;
  if (policy.every > 0 && epoch % policy.every == 0) {
    epoch_checkpoints_.push_back("epoch_" + std::to_string(epoch));
    write_checkpoint(epoch_checkpoints_.back(), epoch, none);
  }
  if (improved) write_checkpoint("best", epoch, none);
  std::vector<std::string> removed;
  while (policy.keep_last > 0 &&
         epoch_checkpoints_.size() > static_cast<std::size_t>(policy.keep_last)) {
    removed.push_back(epoch_checkpoints_.front());
    epoch_checkpoints_.erase(epoch_checkpoints_.begin());
  }
  write_checkpoint("latest", epoch, none);
  for (const auto& name : removed) {
    std::error_code ignored;
    fs::remove(dir_ / "checkpoints" / (name + ".pt"), ignored);
  }
}

nlohmann::json StageTrainer::run() {
  const auto stage_start = Clock::now();
  fs::create_directories(dir_ / "checkpoints");
  const fs::path metrics_file = dir_ / "metrics.jsonl";
  const std::int64_t eval_batch = stage_.micro_batch;
  reset_peak_memory(stage_.device);
  status_ = "running";

  auto write_metrics_file = [&] {
    std::string lines;
    for (const auto& line : history_) lines += line.dump() + "\n";
    write_file_atomically(metrics_file, lines);
  };
  // A resumed stage may have written lines for epochs it is about to train again.
  if (!resumed_.empty()) write_metrics_file();

  // In the stage directory, so `tensorboard --logdir results/` names the curves
  // <experiment>/<run-id>/<stage>. A resumed stage starts a new event file beside the old.
  EventFileWriter events(dir_);
  for (std::int64_t epoch = epochs_done_; epoch < config_.epochs; ++epoch) {
    const EpochStats stats = train_epoch(epoch, unfinished_);
    if (stats.interrupted) {
      write_checkpoint("latest", epoch, stats);
      status_ = "interrupted";
      wall_seconds_ = seconds_since(stage_start);
      return stage_report();
    }
    unfinished_ = EpochStats{};
    elapsed_train_seconds_ += stats.seconds;
    trained_images_ += stats.images;

    Evaluation val = evaluate(stage_, stage_.valid, eval_batch, config_.data.workers);
    if (baseline_metrics_.is_null()) baseline_metrics_ = mean_shape_metrics(val.meta);
    const double mre = val.metrics.overall.mre;
    const nlohmann::json metrics = to_json(val.metrics, stage_.symbols());
    final_metrics_ = metrics;
    ++epochs_done_;

    nlohmann::json line = {{"epoch", epoch + 1},
                           {"train_loss", stats.loss()},
                           {"lr", schedule_->at(std::max<std::int64_t>(0, global_step_ - 1))},
                           {"val_mre_mm", mre},
                           {"val_sd_mm", val.metrics.overall.sd},
                           {"val_sdr", metrics["overall"]["sdr"]},
                           {"images_per_second", stats.images_per_second()},
                           {"epoch_seconds", stats.seconds},
                           {"skipped_steps", stats.skipped_steps},
                           {"peak_memory_bytes", peak_memory_json()}};
    const double monitored = monitored_value(line);
    const bool improved = is_better(monitored);
    if (improved) {
      best_value_ = monitored;
      best_epoch_ = epoch + 1;
      best_metrics_ = metrics;
    }
    line["best"] = improved;
    history_.push_back(line);
    write_metrics_file();
    write_epoch_scalars(events, line, metrics);
    write_learning_curves_png(
        dir_ / "curves.png",
        learning_curves_from_history(experiment_.name + " / " + config_.name, history_,
                                     baseline_metrics_["overall"]["mre"], best_epoch_));
    write_epoch_checkpoints(epoch + 1, improved);

    char summary[256];
    std::snprintf(summary, sizeof summary,
                  "loss %.5f  val MRE %.3f mm  SDR@2mm %.1f%%  (mean shape %.3f mm)  %.1f img/s%s",
                  stats.loss(), mre, val.metrics.overall.sdr.at(0),
                  number_or_nan(baseline_metrics_["overall"]["mre"]), stats.images_per_second(),
                  improved ? "  *best*" : "");
    Progress p(config_.name, config_.epochs);
    p.start_epoch(epoch, 0);
    p.end_epoch(summary);
    wall_seconds_ = seconds_since(stage_start);
    if (on_epoch_) on_epoch_(stage_report());
    if (interrupt_signal() != 0 && epoch + 1 < config_.epochs) {
      status_ = "interrupted";
      return stage_report();
    }
  }
  status_ = "completed";
  wall_seconds_ = seconds_since(stage_start);
  return stage_report();
}

nlohmann::json StageTrainer::stage_report() const {
  const fs::path run_dir = dir_.parent_path();
  const auto micro = stage_.micro_batch;
  const auto effective = config_.memory.effective_batch;
  nlohmann::json epoch_files = nlohmann::json::array();
  for (const auto& name : epoch_checkpoints_)
    epoch_files.push_back(relative_to(dir_ / "checkpoints" / (name + ".pt"), run_dir));
  nlohmann::json report = {
      {"name", config_.name},
      {"status", status_},
      {"device", stage_.device.str()},
      {"epochs", config_.epochs},
      {"epochs_completed", epochs_done_},
      {"monitor", config_.checkpoint.monitor},
      {"monitor_mode", config_.checkpoint.mode},
      {"best_value", best_value_ ? nlohmann::json(*best_value_) : nlohmann::json(nullptr)},
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
        {"latest", relative_to(dir_ / "checkpoints" / "latest.pt", run_dir)},
        {"epochs", epoch_files}}},
      {"metrics_file", relative_to(dir_ / "metrics.jsonl", run_dir)},
      {"resumed", resumed_},
  };
  for (const auto& [key, value] : chain_.items()) report[key] = value;
  return report;
}

}  // namespace exprun

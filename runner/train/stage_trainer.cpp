#include "train/stage_trainer.hpp"

#include <chrono>
#include <cmath>
#include <limits>

#include "config/config_compat.hpp"
#include "data/batch_loader.hpp"
#include "eval/evaluator.hpp"
#include "eval/mean_shape.hpp"
#include "memory/memory_tracker.hpp"
#include "train/progress.hpp"
#include "util/elapsed.hpp"
#include "util/fault_injection.hpp"
#include "util/interrupt_flag.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

std::string relative_to(const fs::path& path, const fs::path& base) {
  return fs::relative(path, base).generic_string();
}

}  // namespace

StageTrainer::StageTrainer(const Experiment& experiment, const StageConfig& config,
                           std::size_t stage_index, BuiltStage stage, fs::path stage_dir,
                           std::function<void(const nlohmann::json&)> on_epoch,
                           nlohmann::json chain, std::shared_ptr<dist::ProcessGroup> group)
    : experiment_(experiment),
      config_(config),
      stage_index_(stage_index),
      stage_(std::move(stage)),
      dir_(std::move(stage_dir)),
      on_epoch_(std::move(on_epoch)),
      chain_(std::move(chain)) {
  if (group) parallel_ = std::make_unique<DataParallel>(std::move(group), *stage_.model);
  optimizer_ = make_optimizer(config_.optimizer, stage_.model->parameters());
  const auto batch = static_cast<std::size_t>(config_.memory.effective_batch);
  steps_per_epoch_ = static_cast<std::int64_t>((stage_.train->size() + batch - 1) / batch);
  schedule_ = std::make_unique<LrSchedule>(config_.optimizer, config_.schedule, steps_per_epoch_,
                                           config_.epochs);
  progress_.tuning = stage_.tuning;
}

std::optional<std::int64_t> StageTrainer::peak_memory() const {
  const auto memory = read_memory(stage_.device);
  if (!memory) return std::nullopt;
  return static_cast<std::int64_t>(memory->peak_bytes);
}

StepParts StageTrainer::step_parts() {
  return {*stage_.model,           *stage_.loss,  stage_.strategies,
          stage_.landmark_weights, stage_.device, stage_.input_format};
}

TrainingState StageTrainer::training_state() {
  return {*stage_.model, *optimizer_, stage_.strategies, stage_.device};
}

CheckpointInfo StageTrainer::resume_from(const fs::path& checkpoint) {
  const CheckpointInfo info = load_training_state(checkpoint, training_state());
  const std::vector<std::string> changed =
      resume_config_differences(info.config, to_json(config_), plugin_defaults_json(config_));
  if (info.experiment != experiment_.name || info.stage != config_.name || !changed.empty()) {
    std::string what = "stage \"" + info.stage + "\" of experiment \"" + info.experiment + "\"";
    if (info.stage == config_.name && info.experiment == experiment_.name) {
      what = "another configuration of this stage (";
      for (const auto& path : changed) what += path + " ";
      what.back() = ')';
    }
    throw std::runtime_error("checkpoint " + checkpoint.string() + " belongs to " + what +
                             "; resume needs the experiment as it was run");
  }
  if (info.seed && *info.seed != experiment_.seed) {
    throw std::runtime_error(
        "checkpoint " + checkpoint.string() + " belongs to a run with experiment.seed = " +
        std::to_string(*info.seed) + ", this run's is " + std::to_string(experiment_.seed) +
        "; resume needs the experiment as it was run");
  }
  // Weights, optimiser state and generators carry over between LibTorch versions, but kernels
  // differ: the continuation is sound, not bit-identical to a run that stayed on one version.
  // Files without the version are older than 2.x support: 1.13 wrote them.
  const bool unrecorded = info.libtorch_version.empty();
  const std::string written_by = unrecorded ? "1.13" : info.libtorch_version;
  const bool same = unrecorded ? TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR == 13
                               : written_by == TORCH_VERSION;
  if (!same && writes_outputs()) {
    Progress::message("exprun: warning: checkpoint " + checkpoint.string() +
                      " was written with LibTorch " + written_by +
                      " and is resumed with LibTorch " + TORCH_VERSION +
                      ": training continues from it, but not bit-identically to a "
                      "run that stays on one LibTorch version");
  }
  const std::int64_t ranks = parallel_ ? parallel_->world_size() : 1;
  if (info.world_size != ranks && writes_outputs()) {
    Progress::message("exprun: warning: checkpoint " + checkpoint.string() + " was written by " +
                      std::to_string(info.world_size) + " rank(s) and is resumed by " +
                      std::to_string(ranks) +
                      ": each global batch is split differently, so training continues "
                      "soundly but not bit-identically to a run that kept its world size");
  }
  progress_ = stage_progress_from_json(info.trainer_state, stage_.symbols(), info.epoch,
                                       info.global_step, info.best_epoch);
  if (stage_.tuning.is_null()) stage_.tuning = progress_.tuning;
  progress_.tuning = stage_.tuning;
  progress_.resumed.push_back(
      {relative_to(checkpoint, dir_.parent_path()), info.epoch, info.step_in_epoch});
  return info;
}

EpochStats StageTrainer::train_epoch(std::int64_t epoch, EpochStats so_far,
                                     const StageListeners& listeners) {
  EpochStats stats = so_far;
  const std::uint64_t epoch_seed = mix_seed(experiment_.seed, stage_index_, epoch);
  // A resumed epoch skips the batches already trained: batches are fixed slices of the
  // epoch's order, so the rest come out exactly as they would have.
  std::vector<std::size_t> order = shuffled_order(stage_.train->size(), epoch_seed);
  const auto done = std::min<std::size_t>(
      order.size(), static_cast<std::size_t>(so_far.steps * config_.memory.effective_batch));
  order.erase(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(done));
  std::vector<std::vector<std::size_t>> batches =
      split_into_batches(order, config_.memory.effective_batch);
  // Counted globally (images/s, the mean loss): every rank trains its share of each batch.
  std::vector<std::int64_t> global_sizes;
  for (const auto& b : batches) global_sizes.push_back(static_cast<std::int64_t>(b.size()));
  if (parallel_) batches = rank_shares(batches, parallel_->rank(), parallel_->world_size());
  BatchLoader loader(stage_.train, *stage_.pipeline, std::move(batches), stage_.data_workers, true,
                     epoch_seed);
  const auto total_steps = so_far.steps + static_cast<std::int64_t>(loader.batch_count());
  for (const auto& l : listeners) l->on_epoch_start(epoch, total_steps);
  const auto start = Clock::now();
  const std::string fault_prefix = "step:" + config_.name + ":" + std::to_string(epoch + 1) + ":";
  stage_.model->train();
  // Waiting for the loader is what separates the epoch from its steps alone: with no workers
  // it is the batch's preparation, with workers the part of it the step did not hide.
  auto next_batch = [&] {
    const auto asked = Clock::now();
    std::optional<Batch> batch = loader.next();
    stats.data_wait_seconds += seconds_since(asked);
    return batch;
  };
  for (std::size_t index = 0; auto batch = next_batch(); ++index) {
    const double lr = schedule_->at(progress_.global_step);
    set_learning_rate(*optimizer_, lr);
    const std::int64_t images = global_sizes[index];
    std::optional<StepSync> sync;
    if (parallel_) sync.emplace(StepSync{*parallel_, images, stats.steps + 1, interrupt_signal()});
    const StepResult result =
        optimisation_step(step_parts(), *optimizer_, stage_.micro_batch, batch->images,
                          batch->heatmaps, sync ? &*sync : nullptr);
    const double loss = result.loss;
    if (!std::isfinite(loss)) {
      throw std::runtime_error("stage " + config_.name + ": the training loss became " +
                               std::to_string(loss) + " at epoch " + std::to_string(epoch + 1) +
                               " step " + std::to_string(stats.steps + 1) +
                               " (lower optimizer.lr or add warm-up)");
    }
    if (!result.stepped) ++stats.skipped_steps;
    stats.loss_sum += loss * static_cast<double>(images);
    stats.images += images;
    ++stats.steps;
    ++progress_.global_step;
    const double seconds = so_far.seconds + seconds_since(start);
    const double rate = static_cast<double>(stats.images) / std::max(seconds, 1e-9);
    const double images_left =
        static_cast<double>(stage_.train->size()) * static_cast<double>(config_.epochs - epoch) -
        static_cast<double>(stats.images);
    const StepEvent step{epoch, stats.steps, total_steps,       stats.loss(),
                         lr,    rate,        images_left / rate};
    for (const auto& l : listeners) l->on_step(step);
    fault_point(fault_prefix + std::to_string(stats.steps));
    // The epoch's last step is followed by validation and the epoch-end checkpoints anyway.
    // Ranks stop after the same step: the signal may have reached one of them only.
    const int stop = parallel_ ? result.stop_signal : interrupt_signal();
    if (stop != 0 && stats.steps < total_steps) {
      stats.interrupted = true;
      stop_signal_ = stop;
      break;
    }
  }
  stats.seconds = so_far.seconds + seconds_since(start);
  return stats;
}

Metrics StageTrainer::mean_shape_metrics(const std::vector<SampleMeta>& valid_meta) const {
  MeanShapeBaseline mean_shape;
  std::vector<std::size_t> order(stage_.train->size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  BatchLoader loader(stage_.train, *stage_.pipeline, std::move(order),
                     config_.memory.effective_batch, stage_.data_workers, false, 0);
  while (auto batch = loader.next())
    for (const auto& m : batch->meta) mean_shape.add(m);
  return score(mean_shape.predict(valid_meta), valid_meta).metrics;
}

bool StageTrainer::is_better(double value) const {
  if (!std::isfinite(value)) return false;
  if (!progress_.best_value) return true;
  return config_.checkpoint.mode == "max" ? value > *progress_.best_value
                                          : value < *progress_.best_value;
}

CheckpointInfo StageTrainer::checkpoint_info() const {
  CheckpointInfo info;
  info.experiment = experiment_.name;
  info.stage = config_.name;
  info.epoch = progress_.epochs_done;
  info.step_in_epoch = progress_.unfinished.steps;
  info.global_step = progress_.global_step;
  info.monitor = config_.checkpoint.monitor;
  info.best_metric = progress_.best_value.value_or(std::numeric_limits<double>::quiet_NaN());
  info.best_epoch = progress_.best_epoch;
  info.effective_batch = config_.memory.effective_batch;
  info.micro_batch = stage_.micro_batch;
  info.config = to_json(config_);
  for (const auto& landmark : stage_.landmarks) {
    info.landmark_symbols.push_back(landmark.symbol);
    info.landmark_titles.push_back(landmark.title);
  }
  info.trainer_state = to_json(progress_, stage_.symbols());
  info.world_size = parallel_ ? parallel_->world_size() : 1;
  info.seed = experiment_.seed;
  return info;
}

void StageTrainer::write_checkpoint(const std::string& name) {
  save_checkpoint(
      dir_ / "checkpoints" / (name + ".pt"), training_state(), checkpoint_info(),
      "checkpoint:" + config_.name + ":" + std::to_string(progress_.epochs_done) + ":" + name);
}

StageListenerContext StageTrainer::listener_context() {
  StageListenerContext c;
  c.stage_dir = dir_;
  c.experiment = experiment_.name;
  c.stage = config_.name;
  c.epochs = config_.epochs;
  c.checkpoint = config_.checkpoint;
  c.symbols = stage_.symbols();
  c.write_checkpoint = [this](const std::string& name) { write_checkpoint(name); };
  c.stage_report = [this] {
    wall_seconds_ = seconds_since(stage_start_);
    return stage_report();
  };
  c.on_report = on_epoch_;
  return c;
}

StageTrainer::FinishedEpoch StageTrainer::finish_epoch(std::int64_t epoch,
                                                       const EpochStats& stats) {
  progress_.unfinished = EpochStats{};
  progress_.train_seconds += stats.seconds;
  progress_.trained_images += stats.images;

  FinishedEpoch out;
  // The other ranks wait at the next collective while rank 0 validates.
  if (!writes_outputs()) {
    ++progress_.epochs_done;
    return out;
  }
  Evaluation val =
      evaluate(stage_.evaluated(), stage_.valid, stage_.micro_batch, stage_.data_workers);
  if (const std::string note = failed_predictions_note(val, stage_.symbols()); !note.empty()) {
    Progress::message("exprun: warning: stage " + config_.name + ", epoch " +
                      std::to_string(epoch + 1) + ", validation: " + note);
  }
  if (!progress_.baseline_metrics) progress_.baseline_metrics = mean_shape_metrics(val.meta);
  out.validation = std::move(val.metrics);
  progress_.final_metrics = out.validation;
  ++progress_.epochs_done;

  const ErrorSummary& overall = out.validation.overall;
  EpochRecord& r = out.record;
  r.epoch = epoch + 1;
  r.train_loss = stats.loss();
  r.lr = schedule_->at(std::max<std::int64_t>(0, progress_.global_step - 1));
  r.val_mre_mm = overall.mre;
  r.val_sd_mm = overall.sd;
  for (std::size_t t = 0; t < kSdrThresholdsMm.size(); ++t)
    r.val_sdr.push_back(sdr_or_nan(overall, t));
  r.images_per_second = stats.images_per_second();
  r.epoch_seconds = stats.seconds;
  r.data_wait_seconds = stats.data_wait_seconds;
  r.skipped_steps = stats.skipped_steps;
  r.peak_memory_bytes = peak_memory();

  const double monitored =
      monitored_value(config_.checkpoint.monitor, out.validation, r.train_loss);
  out.improved = is_better(monitored);
  if (out.improved) {
    progress_.best_value = monitored;
    progress_.best_epoch = epoch + 1;
    progress_.best_metrics = out.validation;
  }
  r.best = out.improved;
  progress_.history.push_back(r);
  return out;
}

int StageTrainer::agreed_stop_signal() {
  return parallel_ ? parallel_->agree_stop(interrupt_signal()) : interrupt_signal();
}

nlohmann::json StageTrainer::finish_stage(const std::string& status, bool mid_epoch,
                                          const StageListeners& listeners) {
  if (parallel_) parallel_->check_in_step("at the end of stage " + config_.name);
  status_ = status;
  wall_seconds_ = seconds_since(stage_start_);
  for (const auto& l : listeners) l->on_stage_end({status, mid_epoch}, progress_);
  return stage_report();
}

nlohmann::json StageTrainer::run(std::vector<std::unique_ptr<StageListener>> extra) {
  stage_start_ = Clock::now();
  if (writes_outputs()) fs::create_directories(dir_ / "checkpoints");
  reset_peak_memory(stage_.device);
  status_ = "running";
  StageListeners listeners;
  if (writes_outputs()) {
    listeners = make_stage_listeners(listener_context(), progress_);
    for (auto& l : extra) listeners.push_back(std::move(l));
  }
  // After a resume too: every rank continues from rank 0's weights and statistics.
  if (parallel_) parallel_->broadcast_model();

  for (const auto& l : listeners) l->on_stage_start(progress_);
  for (std::int64_t epoch = progress_.epochs_done; epoch < config_.epochs; ++epoch) {
    const EpochStats stats = train_epoch(epoch, progress_.unfinished, listeners);
    if (stats.interrupted) {
      progress_.unfinished = stats;
      return finish_stage("interrupted", /*mid_epoch=*/true, listeners);
    }
    const FinishedEpoch finished = finish_epoch(epoch, stats);
    const EpochEndEvent event{finished.record, finished.validation, finished.improved};
    for (const auto& l : listeners) l->on_epoch_end(event, progress_);
    const int stop = agreed_stop_signal();
    if (stop != 0 && epoch + 1 < config_.epochs) {
      stop_signal_ = stop;
      return finish_stage("interrupted", /*mid_epoch=*/false, listeners);
    }
  }
  return finish_stage("completed", /*mid_epoch=*/false, listeners);
}

nlohmann::json StageTrainer::stage_report() const {
  const fs::path run_dir = dir_.parent_path();
  const auto micro = stage_.micro_batch;
  const auto effective = config_.memory.effective_batch;
  const nlohmann::json state = to_json(progress_, stage_.symbols());
  nlohmann::json epoch_files = nlohmann::json::array();
  for (const auto& name : progress_.epoch_checkpoints)
    epoch_files.push_back(relative_to(dir_ / "checkpoints" / (name + ".pt"), run_dir));
  const auto peak = peak_memory();
  const double train_seconds = progress_.train_seconds;
  nlohmann::json report = {
      {"name", config_.name},
      {"status", status_},
      {"device", stage_.device.str()},
      {"epochs", config_.epochs},
      {"epochs_completed", progress_.epochs_done},
      {"monitor", config_.checkpoint.monitor},
      {"monitor_mode", config_.checkpoint.mode},
      {"best_value", state.at("best_value")},
      {"best_epoch", progress_.best_epoch},
      {"best", state.at("best_metrics")},
      {"final", state.at("final_metrics")},
      {"mean_shape_baseline", state.at("baseline_metrics")},
      {"history", state.at("history")},
      {"wall_time_s", wall_seconds_},
      {"train_time_s", train_seconds},
      {"train_images_per_second",
       train_seconds > 0 ? static_cast<double>(progress_.trained_images) / train_seconds : 0.0},
      {"batch_plan",
       {{"effective_batch", effective},
        {"micro_batch", micro},
        {"accumulation_steps", (effective + micro - 1) / micro},
        {"steps_per_epoch", steps_per_epoch_},
        {"chosen_by", config_.memory.micro_batch_auto ? "tuner" : "config"},
        {"tuning", state.at("tuning")}}},
      {"peak_memory_bytes", peak ? nlohmann::json(*peak) : nlohmann::json(nullptr)},
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
      {"resumed", state.at("resumed")},
  };
  for (const auto& [key, value] : chain_.items()) report[key] = value;
  return report;
}

}  // namespace exprun

// A stage's progress and history as one typed record: where training is (epoch, step, global
// step), what it has seen (history rows, best, last and mean-shape metrics) and what it has
// written (epoch_N checkpoints). JSON exists only at the edges: to_json/from_json here give the
// checkpoint's trainer_state, and the metrics.jsonl lines and report.json's stage section are
// written from the same record (docs/report.md names every field).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eval/metrics.hpp"

namespace exprun {

// Sums over the optimiser steps of one epoch (or of the part of it done before an interrupt).
struct EpochStats {
  double loss_sum = 0;  // loss x images, summed over the epoch's steps
  double seconds = 0;
  // Of `seconds`, the time spent waiting for the data loader's batches; NaN when part of the
  // epoch ran before this was recorded (a checkpoint from an older exprun).
  double data_wait_seconds = 0;
  std::int64_t images = 0;
  std::int64_t skipped_steps = 0;
  std::int64_t steps = 0;    // optimiser steps done in the epoch
  bool interrupted = false;  // not saved: a saved partial epoch is one that was interrupted
  double loss() const;
  double images_per_second() const;
};
nlohmann::json to_json(const EpochStats& stats);
EpochStats epoch_stats_from_json(const nlohmann::json& j);

// One finished epoch: a metrics.jsonl line and an element of report.json's "history". NaN is
// written as null (a metric nothing was measured for).
struct EpochRecord {
  std::int64_t epoch = 0;  // 1-based
  double train_loss = 0;
  double lr = 0;
  double val_mre_mm = 0;
  double val_sd_mm = 0;
  std::vector<double> val_sdr;  // per kSdrThresholdsMm, percent; NaN when nothing was scored
  double images_per_second = 0;
  double epoch_seconds = 0;
  double data_wait_seconds = 0;  // NaN: not recorded (older checkpoints)
  std::int64_t skipped_steps = 0;
  std::optional<std::int64_t> peak_memory_bytes;  // unknown on devices without statistics
  bool best = false;
};
nlohmann::json to_json(const EpochRecord& record);
EpochRecord epoch_record_from_json(const nlohmann::json& j);

// Each time the stage continued from a checkpoint.
struct ResumeRecord {
  std::string from;  // the checkpoint, relative to the run directory
  std::int64_t epoch = 0;
  std::int64_t step_in_epoch = 0;
};

struct StageProgress {
  std::int64_t epochs_done = 0;
  std::int64_t global_step = 0;  // optimiser steps since the stage began
  EpochStats unfinished;         // the steps of the epoch under way (its step in epoch)
  std::optional<double> best_value;
  std::int64_t best_epoch = 0;  // 0: none yet
  std::vector<EpochRecord> history;
  std::optional<Metrics> best_metrics, final_metrics, baseline_metrics;
  double train_seconds = 0;
  std::int64_t trained_images = 0;
  std::vector<std::string> epoch_checkpoints;  // epoch_N names kept, oldest first
  std::vector<ResumeRecord> resumed;
  nlohmann::json tuning;  // the batch tuner's measurements (TuneResult::to_json), or null
};

// The checkpoint's trainer_state (its layout since format version 2): history, best_metrics,
// final_metrics, baseline_metrics, best_value, train_seconds, trained_images,
// epoch_checkpoints, unfinished, resumed, tuning. The position (epochs done, step in epoch,
// global step, best epoch) is the checkpoint's own metadata, so from_json takes it apart.
// symbols: the landmarks in model-output order, the keys of per_landmark.
nlohmann::json to_json(const StageProgress& progress, const std::vector<std::string>& symbols);
StageProgress stage_progress_from_json(const nlohmann::json& trainer_state,
                                       const std::vector<std::string>& symbols,
                                       std::int64_t epochs_done, std::int64_t global_step,
                                       std::int64_t best_epoch);

// Metrics as stored: null when there are none yet.
nlohmann::json metrics_or_null(const std::optional<Metrics>& metrics,
                               const std::vector<std::string>& symbols);

// What checkpoint.monitor names ("val_mre_mm", "val_sdr_2mm", "train_loss", ...), read from
// the epoch's validation metrics and training loss. NaN when it could not be measured. Throws
// std::invalid_argument for a name the config does not allow.
double monitored_value(const std::string& monitor, const Metrics& validation, double train_loss);

}  // namespace exprun

// What a stage's training loop tells the outputs that follow it (metrics.jsonl, TensorBoard,
// curves.png, checkpoints, the console, report.json): the loop only sequences, and each output
// is one StageListener (make_stage_listeners assembles them).
#pragma once

#include <cstdint>
#include <string>

#include "eval/metrics.hpp"
#include "train/stage_progress.hpp"

namespace exprun {

struct StepEvent {
  std::int64_t epoch = 0;        // 0-based
  std::int64_t step = 0;         // 1-based, within the epoch (a resumed epoch's included)
  std::int64_t total_steps = 0;  // of the epoch
  double loss = 0;               // mean over the epoch's images so far
  double lr = 0;
  double images_per_second = 0;
  double seconds_left = 0;  // estimate for the whole stage
};

struct EpochEndEvent {
  const EpochRecord& record;  // also the last row of the progress's history
  const Metrics& validation;
  bool improved = false;  // record is the stage's new best
};

struct StageEndEvent {
  std::string status;      // "completed" | "interrupted"
  bool mid_epoch = false;  // interrupted between two steps: progress.unfinished holds them
};

// Every hook sees the stage's progress as it stands after the event.
class StageListener {
 public:
  virtual ~StageListener() = default;
  virtual void on_stage_start(const StageProgress&) {}
  virtual void on_epoch_start(std::int64_t epoch, std::int64_t total_steps) {
    (void)epoch;
    (void)total_steps;
  }
  virtual void on_step(const StepEvent&) {}
  virtual void on_epoch_end(const EpochEndEvent&, const StageProgress&) {}
  virtual void on_stage_end(const StageEndEvent&, const StageProgress&) {}
};

}  // namespace exprun

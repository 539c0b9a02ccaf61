// micro_batch = "auto": measures candidate micro-batches for a stage's effective batch, each
// for a few full optimiser steps on real training batches from the stage's loader (so optimiser
// state and the workers' queued batches exist), and keeps the fastest that stays
// under the memory budget minus the margin. The stage's model (weights, buffers, gradients)
// and the global random state are restored afterwards; the stage's optimiser is never touched
// (each trial has its own), so tuning changes nothing that training will see.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "train/stage_builder.hpp"

namespace exprun {

struct TuneOptions {
  std::int64_t budget_bytes = 0;
  std::string budget_source;  // "memory.budget" or "free device memory"
  double margin = 0.1;
  // Speeds within this share of the fastest fitting candidate's count as equal, and the larger
  // micro-batch wins; 1 chooses the largest that fits whatever the timings say.
  double speed_tolerance = 0.05;
  std::int64_t steps_per_epoch = 1;
  int warmup_steps = 1;
  int timed_steps = 2;
  std::int64_t limit_bytes() const;  // budget minus margin
};

struct TuneTrial {
  std::int64_t micro_batch = 0;
  std::int64_t accumulation = 0;
  std::vector<std::int64_t> passes;
  bool tried = false;
  std::optional<std::int64_t> peak_bytes;
  double step_seconds = 0;
  double images_per_second = 0;
  double epoch_seconds = 0;
  bool fits = false;
  bool chosen = false;
  std::string note;  // why it does not fit or was not tried
};

struct TuneResult {
  std::string stage;
  std::string device;
  std::int64_t effective_batch = 0;
  TuneOptions options;
  std::vector<TuneTrial> trials;
  std::int64_t chosen_micro_batch = 0;
  double seconds = 0;
  nlohmann::json to_json() const;
};

// The budget and margin a stage's config asks for (on CUDA without memory.budget: the free
// memory). Throws when neither gives a budget.
TuneOptions tune_options_for(const StageConfig& config, const BuiltStage& stage);

// Micro-batches worth trying for an effective batch: its divisors and the powers of two below
// it, ascending.
std::vector<std::int64_t> candidate_micro_batches(std::int64_t effective_batch);

// The tuner's choice among measured trials: the fastest that fits, or the largest within
// speed_tolerance of it. None when no trial fits.
std::optional<std::int64_t> choose_micro_batch(const std::vector<TuneTrial>& trials,
                                               double speed_tolerance);

// Throws when no candidate fits. on_trial sees each trial as soon as it is measured.
TuneResult tune_micro_batch(BuiltStage& stage, const StageConfig& config,
                            const TuneOptions& options,
                            const std::function<void(const TuneTrial&)>& on_trial = {});

// Rebuilds the stage's strategies for the chosen micro-batch.
void apply_tuning(BuiltStage& stage, const TuneResult& result);

// One line per trial, with a header: micro-batch, accumulation, peak, step time, images/s,
// epoch estimate, fits, chosen.
std::string tune_table(const TuneResult& result);

}  // namespace exprun

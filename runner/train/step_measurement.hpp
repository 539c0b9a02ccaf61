// Runs a few full optimiser steps of a stage (forward, backward, optimiser step, on real
// training batches from its pipeline and loader) and measures peak memory and speed. Shared by
// the batch tuner, which chooses a micro-batch from these numbers, and `exprun bench`.
#pragma once

#include <cstdint>
#include <vector>

#include "config/experiment.hpp"
#include "train/stage_builder.hpp"

namespace exprun {

struct StepMeasurement {
  std::vector<std::int64_t> passes;  // micro-batch sizes of one step
  std::int64_t peak_bytes = 0;       // since just before the first step
  double step_seconds = 0;           // mean of the timed steps
  double images_per_second = 0;
};

// Steps with `micro_batch` images per pass, each with a fresh optimiser of the stage's kind
// (its state appears in the warm-up step, so the peak includes it). Changes the model's weights
// and the global random stream: callers that must not, snapshot and restore them. Throws when
// the device keeps no memory statistics, and lets an out-of-memory error through.
StepMeasurement measure_training_steps(BuiltStage& stage, const StageConfig& config,
                                       std::int64_t micro_batch, int warmup_steps, int timed_steps);

// The bare loop: the same steps on one batch made before the clock starts and used for every
// step, so no data loading is timed; what the model, loss and optimiser alone consume.
StepMeasurement measure_bare_steps(BuiltStage& stage, const StageConfig& config,
                                   std::int64_t micro_batch, int warmup_steps, int timed_steps);

}  // namespace exprun

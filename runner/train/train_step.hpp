// One optimiser step: forward/backward over micro-batches of the batch (gradient accumulation),
// each loss weighted by its share of the batch, then the strategies' checks and the optimiser.
// The trainer, the batch tuner and bench all step through here, so what they measure is what
// training does.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/sdk.hpp>

#include <cstdint>
#include <memory>
#include <vector>

#include "train/data_parallel.hpp"

namespace exprun {

struct StepParts {
  sdk::Model& model;
  sdk::Loss& loss;
  const std::vector<std::shared_ptr<sdk::MemoryStrategy>>& strategies;
  const torch::Tensor& landmark_weights;
  torch::Device device;
  torch::MemoryFormat input_format = torch::MemoryFormat::Contiguous;  // the model's weights'
};

struct StepResult {
  double loss = 0;       // mean over the batch's images (the global batch's, across ranks)
  bool stepped = false;  // false: a strategy skipped the step (inf/NaN gradients)
  int stop_signal = 0;   // across ranks: a stop signal some rank had received by this step
};

// One rank's step of a data-parallel stage: its images are its share of a global batch.
struct StepSync {
  DataParallel& parallel;
  std::int64_t global_batch = 0;  // images in the global batch, every rank's share together
  std::int64_t step = 0;          // for messages
  int stop_signal = 0;            // the stop signal this rank has received, or 0
};

// The forward/backward passes one step of `batch_size` images runs as: full micro-batches
// first, then what is left (an epoch's last batch is often short). {4, 3} for 7 in 4s.
std::vector<std::int64_t> micro_batch_passes(std::int64_t batch_size, std::int64_t micro_batch);

// images: N x C x H x W, targets: N x K x h x w, on any device; micro_batch >= 1 images per
// forward/backward pass (N or more: one pass). sync: a data-parallel step (N may then be 0);
// null for one process, which steps exactly as before data parallelism existed.
StepResult optimisation_step(const StepParts& parts, torch::optim::Optimizer& optimizer,
                             std::int64_t micro_batch, const torch::Tensor& images,
                             const torch::Tensor& targets, const StepSync* sync = nullptr);

}  // namespace exprun

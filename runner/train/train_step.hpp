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
  double loss = 0;       // mean over the batch's images
  bool stepped = false;  // false: a strategy skipped the step (inf/NaN gradients)
};

// The forward/backward passes one step of `batch_size` images runs as: full micro-batches
// first, then what is left (an epoch's last batch is often short). {4, 3} for 7 in 4s.
std::vector<std::int64_t> micro_batch_passes(std::int64_t batch_size, std::int64_t micro_batch);

// images: N x C x H x W, targets: N x K x h x w, on any device; micro_batch >= 1 images per
// forward/backward pass (N or more: one pass).
StepResult optimisation_step(const StepParts& parts, torch::optim::Optimizer& optimizer,
                             std::int64_t micro_batch, const torch::Tensor& images,
                             const torch::Tensor& targets);

}  // namespace exprun

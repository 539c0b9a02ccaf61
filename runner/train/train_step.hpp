// One optimiser step: forward/backward over the micro-batches a partition gives, each loss
// weighted by its share of the batch, then the strategies' checks and the optimiser. The
// trainer and the batch tuner both step through here, so the tuner measures what training does.
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
};

struct StepResult {
  double loss = 0;       // mean over the batch's images
  bool stepped = false;  // false: a strategy skipped the step (inf/NaN gradients)
};

// images: N x C x H x W, targets: N x K x h x w, on any device; `passes` sums to N.
StepResult optimisation_step(const StepParts& parts, torch::optim::Optimizer& optimizer,
                             const std::vector<std::int64_t>& passes, const torch::Tensor& images,
                             const torch::Tensor& targets);

}  // namespace exprun

// Adam and AdamW whose step on CPU makes one pass over each parameter's elements.
//
// LibTorch's step runs about ten tensor operations per parameter, each a pass over its
// elements and a dispatch of its own: for HRNet's 200 to 900 parameter tensors that is
// thousands of small operations, about 3% of its training step on a CPU (docs/benchmarks.md).
// LibTorch 1.13 has no fused CPU Adam (2.4 added one), and its multi-tensor `_foreach_`
// operations loop over the tensors one by one on a CPU, so this loop is written here.
//
// The state is LibTorch's own (AdamParamState, AdamWParamState: step, exp_avg, exp_avg_sq), so
// checkpoints are the same either way and a run can resume with the other implementation.
// The arithmetic is LibTorch's, element for element, in float; LibTorch's vectorised kernels
// fuse some of its multiply-adds, so the two differ in the last bits. Each element's result
// depends on nothing but its own values: the same bits for any thread count.
//
// Parameters that are not dense float32 CPU tensors (CUDA, half precision), and amsgrad, take
// LibTorch's own step.
#pragma once

#include <torch/torch.h>

namespace exprun {

class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace exprun

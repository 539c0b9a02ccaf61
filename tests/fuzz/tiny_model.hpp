// The smallest model a checkpoint can hold (a 1x1 convolution and a batch norm) and its
// optimiser: the checkpoint fuzz target loads into it and make_checkpoint_seed saves from it,
// so the seed exercises the whole read path and stays a few kilobytes.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/model.hpp>

namespace exprun::fuzz {

class TinyModel : public sdk::Model {
 public:
  TinyModel()
      : conv_(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 2, 1)))),
        norm_(register_module("norm", torch::nn::BatchNorm2d(2))) {}
  torch::Tensor forward(const torch::Tensor& images) override { return norm_(conv_(images)); }
  std::int64_t output_stride() const override { return 1; }

 private:
  torch::nn::Conv2d conv_;
  torch::nn::BatchNorm2d norm_;
};

inline torch::optim::AdamW tiny_optimizer(TinyModel& model) {
  return torch::optim::AdamW(model.parameters(), torch::optim::AdamWOptions(1e-3));
}

}  // namespace exprun::fuzz

// Model plugins map images to one heatmap per landmark.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace exprun::sdk {

struct ModelContext {
  std::int64_t num_landmarks = 0;
  std::int64_t in_channels = 1;
};

class Model : public torch::nn::Module {
 public:
  // images: N x C x H x W float in [0, 1]; returns N x K x H/s x W/s with s = output_stride().
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  virtual std::int64_t output_stride() const = 0;
  // Multiply-adds of one forward pass for a C x height x width input; 0 when unknown.
  virtual double multiply_adds(std::int64_t height, std::int64_t width) const {
    (void)height;
    (void)width;
    return 0.0;
  }
};

}  // namespace exprun::sdk

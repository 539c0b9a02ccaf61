// Model plugins map images to one heatmap per landmark.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace exprun::sdk {

struct ModelContext {
  std::int64_t num_landmarks = 0;
  std::int64_t in_channels = 1;
};

class Model : public torch::nn::Module {
 public:
  using PluginInterface = Model;  // its kind: PluginKindTraits<Model>
  // images: N x C x H x W float in [0, 1]; returns N x K x H/s x W/s with s = output_stride().
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  virtual std::int64_t output_stride() const = 0;
  // Multiply-adds of one forward pass for a C x height x width input; 0 when unknown.
  virtual double multiply_adds(std::int64_t height, std::int64_t width) const {
    (void)height;
    (void)width;
    return 0.0;
  }

  // Parts of the model that can be recomputed in backward (activation checkpointing), e.g.
  // {"stem", "stage2", "head"}; empty when the model has none. A model checks
  // is_checkpointed(part) in forward() and runs that part through sdk::checkpoint_segment.
  virtual std::vector<std::string> checkpointable_parts() const { return {}; }
  // Set by the activation_checkpointing strategy, after checking the names against
  // checkpointable_parts().
  void set_checkpointed_parts(std::set<std::string> parts) { checkpointed_ = std::move(parts); }
  bool is_checkpointed(const std::string& part) const { return checkpointed_.count(part) > 0; }

 private:
  std::set<std::string> checkpointed_;
};

}  // namespace exprun::sdk

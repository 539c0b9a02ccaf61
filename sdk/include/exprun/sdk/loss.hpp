// Loss plugins turn predicted and target heatmaps into one scalar to minimise.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "exprun/sdk/dataset.hpp"

namespace exprun::sdk {

struct LossContext {
  std::vector<LandmarkInfo> landmarks;
};

class Loss {
 public:
  using PluginInterface = Loss;  // its kind: PluginKindTraits<Loss>
  virtual ~Loss() = default;
  // predicted, target: N x K x H x W. landmark_weights: K, float, on the same device; the
  // runner passes ones unless the experiment weights landmarks. Returns the mean over the
  // batch, so that halving a batch and averaging the halves gives the same value.
  virtual torch::Tensor compute(const torch::Tensor& predicted, const torch::Tensor& target,
                                const torch::Tensor& landmark_weights) = 0;
};

}  // namespace exprun::sdk

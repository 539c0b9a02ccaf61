// The floor every model must beat: each landmark at its mean training position, with positions
// taken relative to the image size so that images of different sizes average sensibly.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "data/sample_pipeline.hpp"

namespace exprun {

class MeanShapeBaseline {
 public:
  void add(const SampleMeta& meta);
  bool empty() const { return count_ == 0; }
  // N x K x 2 original pixels: the mean relative position scaled to each image's size.
  torch::Tensor predict(const std::vector<SampleMeta>& meta) const;

 private:
  torch::Tensor sum_;     // K x 2 relative positions, summed
  torch::Tensor counts_;  // K x 1 landmarks seen (missing ones are skipped)
  std::size_t count_ = 0;
};

}  // namespace exprun

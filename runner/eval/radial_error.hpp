// Radial errors in millimetres, always measured in the original image's pixels.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "data/sample_pipeline.hpp"

namespace exprun {

// predicted_heatmap_coords: N x K x 2 in heatmap cells (as decode_heatmaps returns them).
// Returns N x K coordinates mapped back through each sample's input->original map.
torch::Tensor heatmap_to_original(const torch::Tensor& predicted_heatmap_coords,
                                  const std::vector<SampleMeta>& meta, double stride);

// predicted_original: N x K x 2 original pixels. One row of K errors (mm) per sample; NaN
// where the ground truth is missing, and +infinity where it is there but the prediction is
// not a finite point (a model whose heatmaps hold NaN): a failed prediction is a miss at every
// SDR threshold and leaves MRE and SD undefined, never a landmark left out.
std::vector<std::vector<double>> radial_errors_mm(const torch::Tensor& predicted_original,
                                                  const std::vector<SampleMeta>& meta);

}  // namespace exprun

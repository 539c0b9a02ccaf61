// Gaussian heatmap targets and their decoding back to coordinates.
#pragma once

#include <torch/torch.h>

namespace exprun {

// landmarks: K x 2 (x, y) in heatmap cells (NaN for a missing landmark, whose map is zero).
// Returns K x height x width float32 with peak 1 at each landmark.
torch::Tensor encode_heatmaps(const torch::Tensor& landmarks, std::int64_t height,
                              std::int64_t width, double sigma);

// heatmaps: N x K x H x W. Returns N x K x 2 (x, y) float64 in heatmap cells: the arg-max,
// refined to sub-cell precision by a parabola through the log of the peak and its neighbours
// along each axis. For a Gaussian the log is exactly a parabola, so a noiseless target decodes
// exactly; where the neighbours are not positive, the parabola goes through the raw values.
torch::Tensor decode_heatmaps(const torch::Tensor& heatmaps);

}  // namespace exprun

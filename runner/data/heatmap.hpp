// Gaussian heatmap targets and their decoding back to coordinates.
#pragma once

#include <torch/torch.h>

#include <string>

namespace exprun {

// How heatmaps become coordinates (experiment key eval.decode).
enum class DecodeMethod {
  Argmax,  // the arg-max cell, refined by a parabola per axis
  Dark,    // distribution-aware (Zhang et al., CVPR 2020): smooth, log, 2-D Taylor step
};

// "argmax" | "dark"; throws std::invalid_argument naming the choices otherwise.
DecodeMethod parse_decode_method(const std::string& name);
std::string to_string(DecodeMethod method);

// landmarks: K x 2 (x, y) in heatmap cells (NaN for a missing landmark, whose map is zero).
// Returns K x height x width float32 with peak 1 at each landmark.
torch::Tensor encode_heatmaps(const torch::Tensor& landmarks, std::int64_t height,
                              std::int64_t width, double sigma);

// heatmaps: N x K x H x W. Returns N x K x 2 (x, y) float64 in heatmap cells: the arg-max,
// refined to sub-cell precision by a parabola through the log of the peak and its neighbours
// along each axis. For a Gaussian the log is exactly a parabola, so a noiseless target decodes
// exactly; where the neighbours are not positive, the parabola goes through the raw values.
torch::Tensor decode_heatmaps(const torch::Tensor& heatmaps);

// DARK: each map is smoothed with a Gaussian of the training `sigma` (modulating the network's
// multi-peaked output back towards the Gaussian it was trained on), its log taken, and the
// peak found by one Newton step from the arg-max of the smoothed map: offset = -H^-1 g, with
// gradient g and Hessian H by central differences. Exact for a noiseless Gaussian (the log of
// a Gaussian smoothed by a Gaussian is still a paraboloid) and less disturbed by noise than
// the per-axis parabola, because it fits both axes and their correlation from 9 cells of a
// smoothed map. Where the step is undefined (peak on the border cell, Hessian not negative
// definite, flat map) it falls back to decode_heatmaps' refinement of the raw map. The Newton
// step is kept within half a cell of the arg-max. Where the smoothing kernel (radius
// ceil(3 sigma)) around the peak would reach past the border, smoothing cannot be faithful
// (zero padding, as in the authors' code, pulls the peak inwards by up to 1.5 cells), so there
// the step is taken on the raw map's log, without the smoothing. Same shapes and types as
// decode_heatmaps.
torch::Tensor decode_heatmaps_dark(const torch::Tensor& heatmaps, double sigma);

// decode_heatmaps or decode_heatmaps_dark; `sigma` is used by DARK only.
torch::Tensor decode_heatmaps(const torch::Tensor& heatmaps, DecodeMethod method, double sigma);

}  // namespace exprun

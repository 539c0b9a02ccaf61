// 2-D affine maps between original-image pixels, network-input pixels and heatmap cells.
// Convention everywhere: a pixel's centre has integer coordinates (pixel (0,0) is centred at
// (0,0)), so that maps are exact in continuous coordinates and predictions map back without
// a half-pixel bias.
#pragma once

#include <array>

namespace exprun {

struct Affine {
  // x' = a*x + b*y + c ; y' = d*x + e*y + f
  std::array<double, 6> m = {1, 0, 0, 0, 1, 0};

  std::array<double, 2> apply(double x, double y) const {
    return {m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]};
  }
  // (this ∘ first): first `first`, then this.
  Affine after(const Affine& first) const;
  Affine inverse() const;
};

// The map cv::resize uses between a w0 x h0 image and a w1 x h1 one.
Affine resize_map(double w0, double h0, double w1, double h1);
// Rotation (degrees, counter-clockwise on screen), scale and shift about the centre of a
// w x h image.
Affine similarity_about_centre(double w, double h, double rotation_deg, double scale, double dx,
                               double dy);

// Input pixel <-> heatmap cell, for heatmaps `stride` times smaller than the input.
inline double input_to_heatmap(double x, double stride) { return (x + 0.5) / stride - 0.5; }
inline double heatmap_to_input(double u, double stride) { return (u + 0.5) * stride - 0.5; }

}  // namespace exprun

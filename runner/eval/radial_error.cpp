#include "eval/radial_error.hpp"

#include <cmath>
#include <limits>

#include "data/affine.hpp"

namespace exprun {

torch::Tensor heatmap_to_original(const torch::Tensor& predicted_heatmap_coords,
                                  const std::vector<SampleMeta>& meta, double stride) {
  auto coords = predicted_heatmap_coords.to(torch::kFloat64).contiguous().clone();
  auto c = coords.accessor<double, 3>();
  for (std::int64_t i = 0; i < coords.size(0); ++i) {
    const Affine& back = meta.at(static_cast<std::size_t>(i)).input_to_original;
    for (std::int64_t j = 0; j < coords.size(1); ++j) {
      auto p =
          back.apply(heatmap_to_input(c[i][j][0], stride), heatmap_to_input(c[i][j][1], stride));
      c[i][j][0] = p[0];
      c[i][j][1] = p[1];
    }
  }
  return coords;
}

std::vector<std::vector<double>> radial_errors_mm(const torch::Tensor& predicted_original,
                                                  const std::vector<SampleMeta>& meta) {
  auto pred = predicted_original.to(torch::kFloat64).contiguous();
  auto p = pred.accessor<double, 3>();
  std::vector<std::vector<double>> out;
  for (std::int64_t i = 0; i < pred.size(0); ++i) {
    const auto& m = meta.at(static_cast<std::size_t>(i));
    auto truth = m.landmarks.contiguous();
    auto t = truth.accessor<double, 2>();
    std::vector<double> row;
    for (std::int64_t j = 0; j < pred.size(1); ++j) {
      const bool truth_known = !std::isnan(t[j][0]) && !std::isnan(t[j][1]);
      const bool predicted = std::isfinite(p[i][j][0]) && std::isfinite(p[i][j][1]);
      if (truth_known && !predicted) {
        row.push_back(std::numeric_limits<double>::infinity());
        continue;
      }
      const double dx = p[i][j][0] - t[j][0], dy = p[i][j][1] - t[j][1];
      row.push_back(std::sqrt(dx * dx + dy * dy) * m.mm_per_pixel);  // a missing truth: NaN
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace exprun

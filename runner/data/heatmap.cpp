#include "data/heatmap.hpp"

#include <algorithm>
#include <cmath>

namespace exprun {
namespace {

constexpr double kPositive = 1e-10;

// Offset of the vertex of the parabola through (-1, a), (0, b), (1, c); 0 when it is not a
// maximum.
double vertex_offset(double a, double b, double c) {
  const double curvature = a - 2 * b + c;
  if (curvature >= 0) return 0;
  return 0.5 * (a - c) / curvature;
}

// A Gaussian is a parabola in the log domain, so the fit is exact on a noiseless target.
double fitted_offset(double left, double centre, double right) {
  if (left > kPositive && centre > kPositive && right > kPositive) {
    return vertex_offset(std::log(left), std::log(centre), std::log(right));
  }
  return vertex_offset(left, centre, right);
}

// Sub-pixel position along one axis of the arg-max cell `peak` of a line of `size` values. At
// the border the three cells nearest the peak are fitted instead of the peak and its two
// neighbours, so a landmark in the first or last cell is still refined. The result stays
// within half a cell of the peak.
template <typename ValueAt>
double refine_axis(std::int64_t peak, std::int64_t size, ValueAt value_at) {
  if (size < 3) return static_cast<double>(peak);
  const std::int64_t centre = std::clamp<std::int64_t>(peak, 1, size - 2);
  const double offset = fitted_offset(value_at(centre - 1), value_at(centre), value_at(centre + 1));
  const double position = static_cast<double>(centre) + offset;
  return std::clamp(position, peak - 0.5, peak + 0.5);
}

}  // namespace

torch::Tensor encode_heatmaps(const torch::Tensor& landmarks, std::int64_t height,
                              std::int64_t width, double sigma) {
  auto points = landmarks.to(torch::kFloat64);
  auto valid = torch::isfinite(points).all(1);  // K
  auto safe = torch::where(valid.unsqueeze(1), points, torch::zeros_like(points));
  auto xs = torch::arange(width, torch::kFloat64).view({1, 1, width});
  auto ys = torch::arange(height, torch::kFloat64).view({1, height, 1});
  auto dx = xs - safe.select(1, 0).view({-1, 1, 1});
  auto dy = ys - safe.select(1, 1).view({-1, 1, 1});
  auto maps = torch::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
  maps = maps * valid.view({-1, 1, 1}).to(torch::kFloat64);
  return maps.to(torch::kFloat32);
}

torch::Tensor decode_heatmaps(const torch::Tensor& heatmaps) {
  TORCH_CHECK(heatmaps.dim() == 4, "decode_heatmaps expects N x K x H x W");
  auto maps = heatmaps.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const auto n = maps.size(0), k = maps.size(1), h = maps.size(2), w = maps.size(3);
  auto flat_index = maps.view({n, k, h * w}).argmax(2);
  auto out = torch::empty({n, k, 2}, torch::kFloat64);
  auto m = maps.accessor<double, 4>();
  auto idx = flat_index.accessor<std::int64_t, 2>();
  auto o = out.accessor<double, 3>();
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int64_t y = idx[i][j] / w, x = idx[i][j] % w;
      const auto map = m[i][j];
      o[i][j][0] = refine_axis(x, w, [&](std::int64_t c) { return map[y][c]; });
      o[i][j][1] = refine_axis(y, h, [&](std::int64_t r) { return map[r][x]; });
    }
  }
  return out;
}

}  // namespace exprun

#include "data/heatmap.hpp"

#include <cmath>

namespace exprun {
namespace {

constexpr double kPositive = 1e-10;

// Offset of the vertex of the parabola through (-1, a), (0, b), (1, c), within half a cell.
double vertex_offset(double a, double b, double c) {
  const double curvature = a - 2 * b + c;
  if (curvature >= 0) return 0;  // not a maximum: keep the arg-max cell
  const double offset = 0.5 * (a - c) / curvature;
  return std::clamp(offset, -0.5, 0.5);
}

double refine(double left, double centre, double right) {
  if (left > kPositive && centre > kPositive && right > kPositive) {
    return vertex_offset(std::log(left), std::log(centre), std::log(right));
  }
  return vertex_offset(left, centre, right);
}

}  // namespace

torch::Tensor encode_heatmaps(const torch::Tensor& landmarks, std::int64_t height,
                              std::int64_t width, double sigma) {
  auto points = landmarks.to(torch::kFloat64);
  auto valid = torch::isfinite(points).all(1);                         // K
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
      double fx = static_cast<double>(x), fy = static_cast<double>(y);
      if (x > 0 && x + 1 < w) fx += refine(m[i][j][y][x - 1], m[i][j][y][x], m[i][j][y][x + 1]);
      if (y > 0 && y + 1 < h) fy += refine(m[i][j][y - 1][x], m[i][j][y][x], m[i][j][y + 1][x]);
      o[i][j][0] = fx;
      o[i][j][1] = fy;
    }
  }
  return out;
}

}  // namespace exprun

#include "data/heatmap.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <vector>

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

// decode_heatmaps' answer for one map: the arg-max cell (x, y), refined along each axis.
template <typename Map>
std::array<double, 2> refine_peak(const Map& map, std::int64_t x, std::int64_t y, std::int64_t h,
                                  std::int64_t w) {
  return {refine_axis(x, w, [&](std::int64_t c) { return map[y][c]; }),
          refine_axis(y, h, [&](std::int64_t r) { return map[r][x]; })};
}

// DARK's Newton step on the log of the map `s` (CV_64F) at its arg-max (x, y); empty when the
// step is undefined there.
std::optional<std::array<double, 2>> taylor_step(const cv::Mat& s, int x, int y) {
  if (x < 1 || y < 1 || x > s.cols - 2 || y > s.rows - 2) return std::nullopt;
  auto l = [&](int dx, int dy) {
    return std::log(std::max(s.at<double>(y + dy, x + dx), kPositive));
  };
  const double gx = 0.5 * (l(1, 0) - l(-1, 0));
  const double gy = 0.5 * (l(0, 1) - l(0, -1));
  const double hxx = l(1, 0) - 2 * l(0, 0) + l(-1, 0);
  const double hyy = l(0, 1) - 2 * l(0, 0) + l(0, -1);
  const double hxy = 0.25 * (l(1, 1) - l(-1, 1) - l(1, -1) + l(-1, -1));
  const double det = hxx * hyy - hxy * hxy;
  // Only a maximum (negative definite Hessian) has a meaningful vertex.
  if (!(hxx < 0 && det > 1e-12)) return std::nullopt;
  const double dx = -(hyy * gx - hxy * gy) / det;
  const double dy = -(hxx * gy - hxy * gx) / det;
  if (!std::isfinite(dx) || !std::isfinite(dy)) return std::nullopt;
  return std::array<double, 2>{x + std::clamp(dx, -0.5, 0.5), y + std::clamp(dy, -0.5, 0.5)};
}

// Whether the smoothed 3 x 3 cells around `peak` were computed from map cells only: the
// kernel (radius cells) reaching past the border would read the zero padding, which pulls the
// peak inwards.
bool smoothing_is_faithful(cv::Point peak, int radius, cv::Size size) {
  const int reach = radius + 1;
  return peak.x - reach >= 0 && peak.y - reach >= 0 && peak.x + reach < size.width &&
         peak.y + reach < size.height;
}

}  // namespace

DecodeMethod parse_decode_method(const std::string& name) {
  if (name == "argmax") return DecodeMethod::Argmax;
  if (name == "dark") return DecodeMethod::Dark;
  throw std::invalid_argument("unknown decode method \"" + name +
                              "\": expected \"argmax\" or \"dark\"");
}

std::string to_string(DecodeMethod method) {
  return method == DecodeMethod::Dark ? "dark" : "argmax";
}

torch::Tensor encode_heatmaps(const torch::Tensor& landmarks, std::int64_t height,
                              std::int64_t width, double sigma) {
  const auto points = landmarks.to(torch::kFloat64).contiguous();
  const auto k = points.size(0);
  const auto p = points.accessor<double, 2>();
  // Beyond 14.43 sigma the Gaussian is below 2^-150, which rounds to 0 in float32: computing it
  // only in a window of that radius around each landmark gives the same maps, at 768 x 768 input
  // (192 x 192 maps, sigma 2) a tenth of the work, which was half of a cached sample's time.
  // Along an axis shorter than the window, the window is the whole axis.
  const auto radius = static_cast<std::int64_t>(std::ceil(14.43 * sigma)) + 1;
  const std::int64_t cols = std::min(2 * radius + 1, width);
  const std::int64_t rows = std::min(2 * radius + 1, height);
  // Each window's top-left cell, clamped so that the window lies inside the map: a landmark
  // outside it still gets every cell within the radius. nearbyint rounds half to even, as
  // torch::round did here before.
  auto corner = [&](double at, std::int64_t size, std::int64_t span) {
    const double first = std::nearbyint(at) - static_cast<double>(radius);
    return static_cast<std::int64_t>(std::clamp(first, 0.0, static_cast<double>(size - span)));
  };
  std::vector<std::int64_t> left(k, 0), top(k, 0);
  std::vector<bool> valid(k);
  // The exponent, -(dx * dx + dy * dy) / (2 sigma^2), written cell by cell with the tensor
  // expression's operations in its order, so each rounds as it did: one pass, where the tensor
  // expression took one pass and one dispatch per operation (most of a small map's time).
  auto exponents = torch::empty({k, rows, cols}, torch::kFloat64);
  double* e = exponents.data_ptr<double>();
  const double two_sigma_squared = 2 * sigma * sigma;
  for (std::int64_t i = 0; i < k; ++i) {
    valid[i] = std::isfinite(p[i][0]) && std::isfinite(p[i][1]);
    // A missing landmark's map is zero; its exponents are those of a landmark at (0, 0), as
    // the definition computes and then zeroes them.
    const double x = valid[i] ? p[i][0] : 0.0, y = valid[i] ? p[i][1] : 0.0;
    left[i] = corner(x, width, cols);
    top[i] = corner(y, height, rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      const double dy = static_cast<double>(top[i] + r) - y;
      const double dy2 = dy * dy;
      double* row = e + (i * rows + r) * cols;
      for (std::int64_t c = 0; c < cols; ++c) {
        const double dx = static_cast<double>(left[i] + c) - x;
        row[c] = -(dx * dx + dy2) / two_sigma_squared;
      }
    }
  }
  // LibTorch's exp, as the definition's: its vectorised exp and a plain one for the last few
  // elements of the tensor round differently in the last bit.
  exponents.exp_();
  auto maps = torch::zeros({k, height, width}, torch::kFloat32);
  float* map = maps.data_ptr<float>();
  for (std::int64_t i = 0; i < k; ++i) {
    if (!valid[i]) continue;
    for (std::int64_t r = 0; r < rows; ++r) {
      const double* from = e + (i * rows + r) * cols;
      float* to = map + (i * height + top[i] + r) * width + left[i];
      for (std::int64_t c = 0; c < cols; ++c) to[c] = static_cast<float>(from[c]);
    }
  }
  return maps;
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
      const auto p = refine_peak(m[i][j], idx[i][j] % w, idx[i][j] / w, h, w);
      o[i][j][0] = p[0];
      o[i][j][1] = p[1];
    }
  }
  return out;
}

torch::Tensor decode_heatmaps_dark(const torch::Tensor& heatmaps, double sigma) {
  TORCH_CHECK(heatmaps.dim() == 4, "decode_heatmaps_dark expects N x K x H x W");
  TORCH_CHECK(sigma > 0, "decode_heatmaps_dark needs sigma > 0");
  auto maps = heatmaps.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const auto n = maps.size(0), k = maps.size(1), h = maps.size(2), w = maps.size(3);
  auto out = torch::empty({n, k, 2}, torch::kFloat64);
  auto m = maps.accessor<double, 4>();
  auto o = out.accessor<double, 3>();
  // +-3 sigma holds all but 0.3 % of the kernel's weight.
  const int radius = static_cast<int>(std::ceil(3 * sigma));
  const cv::Size kernel(2 * radius + 1, 2 * radius + 1);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < k; ++j) {
      cv::Mat raw(static_cast<int>(h), static_cast<int>(w), CV_64F, maps[i][j].data_ptr<double>());
      cv::Mat smooth;
      cv::GaussianBlur(raw, smooth, kernel, sigma, sigma, cv::BORDER_CONSTANT);
      cv::Point peak;
      cv::minMaxLoc(smooth, nullptr, nullptr, nullptr, &peak);
      std::optional<std::array<double, 2>> p;
      if (smoothing_is_faithful(peak, radius, raw.size())) {
        p = taylor_step(smooth, peak.x, peak.y);
      } else {
        // Near the border the smoothing would have to know what lies beyond it; the raw map's
        // own log is exact for a Gaussian, so the Newton step is taken on it instead.
        const auto flat = maps[i][j].view({-1}).argmax().item<std::int64_t>();
        p = taylor_step(raw, static_cast<int>(flat % w), static_cast<int>(flat / w));
      }
      if (!p) {
        const auto flat = maps[i][j].view({-1}).argmax().item<std::int64_t>();
        p = refine_peak(m[i][j], flat % w, flat / w, h, w);
      }
      o[i][j][0] = (*p)[0];
      o[i][j][1] = (*p)[1];
    }
  }
  return out;
}

torch::Tensor decode_heatmaps(const torch::Tensor& heatmaps, DecodeMethod method, double sigma) {
  return method == DecodeMethod::Dark ? decode_heatmaps_dark(heatmaps, sigma)
                                      : decode_heatmaps(heatmaps);
}

}  // namespace exprun

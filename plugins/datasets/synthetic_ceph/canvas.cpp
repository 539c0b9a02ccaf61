#include "canvas.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace exprun::synthetic_ceph {
namespace {

constexpr int kSupersample = 2;
constexpr int kShiftBits = 4;  // OpenCV's fixed-point sub-pixel coordinates
constexpr double kFixedScale = 1 << kShiftBits;
constexpr double kPi = 3.14159265358979323846;

}  // namespace

double MmToPixels::pixels_per_mm() const { return std::sqrt(std::abs(a * d - b * c)); }

Canvas::Canvas(int width, int height, MmToPixels to_pixels)
    : image_(height * kSupersample, width * kSupersample, CV_32F, cv::Scalar(0)),
      to_pixels_(to_pixels) {}

std::vector<cv::Point> Canvas::to_fixed_point(const std::vector<Vec2>& mm) const {
  std::vector<cv::Point> out;
  out.reserve(mm.size());
  for (const auto& p : mm) {
    const Vec2 px = to_pixels_(p);
    // Output pixel centre i covers supersampled pixels k*i .. k*i+k-1, whose centre is
    // k*i + (k-1)/2.
    const double sx = kSupersample * px.x + (kSupersample - 1) / 2.0;
    const double sy = kSupersample * px.y + (kSupersample - 1) / 2.0;
    out.emplace_back(static_cast<int>(std::lround(sx * kFixedScale)),
                     static_cast<int>(std::lround(sy * kFixedScale)));
  }
  return out;
}

template <class Draw>
void Canvas::add_layer(const std::vector<cv::Point>& points, int pad, double value, Draw draw) {
  if (points.empty()) return;
  int x0 = INT32_MAX, y0 = INT32_MAX, x1 = INT32_MIN, y1 = INT32_MIN;
  for (const auto& p : points) {
    x0 = std::min(x0, p.x >> kShiftBits);
    y0 = std::min(y0, p.y >> kShiftBits);
    x1 = std::max(x1, (p.x >> kShiftBits) + 1);
    y1 = std::max(y1, (p.y >> kShiftBits) + 1);
  }
  const cv::Rect box(x0 - pad, y0 - pad, x1 - x0 + 2 * pad + 1, y1 - y0 + 2 * pad + 1);
  const cv::Rect visible = box & cv::Rect(0, 0, image_.cols, image_.rows);
  if (visible.empty()) return;
  // Drawn into its own layer first: one structure must not add to itself where its strokes
  // overlap.
  cv::Mat layer(box.size(), CV_32F, cv::Scalar(0));
  std::vector<cv::Point> shifted;
  shifted.reserve(points.size());
  const cv::Point origin(box.x * static_cast<int>(kFixedScale),
                         box.y * static_cast<int>(kFixedScale));
  for (const auto& p : points) shifted.push_back(p - origin);
  draw(layer, shifted, value);
  image_(visible) += layer(visible - box.tl());
}

void Canvas::fill(const std::vector<Vec2>& outline_mm, double value) {
  add_layer(to_fixed_point(outline_mm), 2, value,
            [](cv::Mat& layer, const std::vector<cv::Point>& pts, double v) {
              std::vector<std::vector<cv::Point>> polys{pts};
              cv::fillPoly(layer, polys, cv::Scalar(v), cv::LINE_8, kShiftBits);
            });
}

void Canvas::stroke(const std::vector<Vec2>& line_mm, double thickness_mm, double value,
                    bool closed) {
  const int thickness = std::max(
      1, static_cast<int>(std::lround(thickness_mm * to_pixels_.pixels_per_mm() * kSupersample)));
  add_layer(to_fixed_point(line_mm), thickness + 2, value,
            [&](cv::Mat& layer, const std::vector<cv::Point>& pts, double v) {
              std::vector<std::vector<cv::Point>> lines{pts};
              cv::polylines(layer, lines, closed, cv::Scalar(v), thickness, cv::LINE_8, kShiftBits);
            });
}

cv::Mat Canvas::result() const {
  cv::Mat out;
  cv::resize(image_, out, cv::Size(image_.cols / kSupersample, image_.rows / kSupersample), 0, 0,
             cv::INTER_AREA);
  return out;
}

std::vector<Vec2> smooth_curve(const std::vector<Vec2>& points, bool closed, int per_span) {
  const std::size_t n = points.size();
  if (n < 3) return points;
  auto at = [&](std::ptrdiff_t i) -> Vec2 {
    if (closed)
      return points[static_cast<std::size_t>((i % static_cast<std::ptrdiff_t>(n) + n) % n)];
    return points[static_cast<std::size_t>(std::clamp<std::ptrdiff_t>(i, 0, n - 1))];
  };
  std::vector<Vec2> out;
  const std::ptrdiff_t spans =
      closed ? static_cast<std::ptrdiff_t>(n) : static_cast<std::ptrdiff_t>(n) - 1;
  for (std::ptrdiff_t i = 0; i < spans; ++i) {
    const Vec2 p0 = at(i - 1), p1 = at(i), p2 = at(i + 1), p3 = at(i + 2);
    for (int k = 0; k < per_span; ++k) {
      const double t = static_cast<double>(k) / per_span, t2 = t * t, t3 = t2 * t;
      out.push_back(0.5 * (2.0 * p1 + t * (p2 - p0) + t2 * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) +
                           t3 * (3.0 * p1 - p0 - 3.0 * p2 + p3)));
    }
  }
  if (!closed) out.push_back(points.back());
  return out;
}

std::vector<Vec2> ellipse_arc(Vec2 centre, double rx, double ry, double start, double end,
                              int count) {
  std::vector<Vec2> out;
  for (int i = 0; i <= count; ++i) {
    const double a = (start + (end - start) * i / count) * kPi / 180.0;
    out.push_back({centre.x + rx * std::cos(a), centre.y + ry * std::sin(a)});
  }
  return out;
}

}  // namespace exprun::synthetic_ceph

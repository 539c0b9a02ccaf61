#include "data/affine.hpp"

#include <cmath>
#include <stdexcept>

namespace exprun {

Affine Affine::after(const Affine& first) const {
  const auto& a = m;
  const auto& b = first.m;
  return Affine{{a[0] * b[0] + a[1] * b[3], a[0] * b[1] + a[1] * b[4],
                 a[0] * b[2] + a[1] * b[5] + a[2], a[3] * b[0] + a[4] * b[3],
                 a[3] * b[1] + a[4] * b[4], a[3] * b[2] + a[4] * b[5] + a[5]}};
}

Affine Affine::inverse() const {
  const double det = m[0] * m[4] - m[1] * m[3];
  if (std::abs(det) < 1e-12) throw std::runtime_error("affine map is not invertible");
  const double i0 = m[4] / det, i1 = -m[1] / det, i3 = -m[3] / det, i4 = m[0] / det;
  return Affine{{i0, i1, -(i0 * m[2] + i1 * m[5]), i3, i4, -(i3 * m[2] + i4 * m[5])}};
}

Affine resize_map(double w0, double h0, double w1, double h1) {
  // cv::resize aligns pixel corners: x1 + 0.5 = (x0 + 0.5) * w1 / w0.
  const double sx = w1 / w0, sy = h1 / h0;
  return Affine{{sx, 0, 0.5 * sx - 0.5, 0, sy, 0.5 * sy - 0.5}};
}

Affine similarity_about_centre(double w, double h, double rotation_deg, double scale, double dx,
                               double dy) {
  const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
  const double r = rotation_deg * M_PI / 180.0;
  // Image y points down, so a positive angle turns the picture counter-clockwise on screen.
  const double c = std::cos(r) * scale, s = std::sin(r) * scale;
  return Affine{{c, s, cx - c * cx - s * cy + dx, -s, c, cy + s * cx - c * cy + dy}};
}

}  // namespace exprun

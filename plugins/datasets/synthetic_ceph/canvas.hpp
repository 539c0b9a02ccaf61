// Additive drawing in millimetres on a supersampled float image: an X-ray sums what every
// structure along a ray absorbs, so overlapping structures add up instead of covering each
// other. Drawn at 2x and reduced with area averaging for anti-aliased edges.
#pragma once

#include <opencv2/core.hpp>

#include <vector>

#include "anatomy.hpp"

namespace exprun::synthetic_ceph {

// Millimetres to output pixels: px = linear * mm + offset (pixel-centre convention).
struct MmToPixels {
  double a = 1, b = 0, c = 0, d = 1;  // row-major 2x2
  Vec2 offset;
  Vec2 operator()(Vec2 mm) const {
    return {a * mm.x + b * mm.y + offset.x, c * mm.x + d * mm.y + offset.y};
  }
  double pixels_per_mm() const;
};

class Canvas {
 public:
  Canvas(int width, int height, MmToPixels to_pixels);

  void fill(const std::vector<Vec2>& outline_mm, double value);
  void stroke(const std::vector<Vec2>& line_mm, double thickness_mm, double value, bool closed);

  // The image at output resolution.
  cv::Mat result() const;

 private:
  template <class Draw>
  void add_layer(const std::vector<cv::Point>& points, int pad, double value, Draw draw);
  std::vector<cv::Point> to_fixed_point(const std::vector<Vec2>& mm) const;

  cv::Mat image_;  // CV_32F, supersampled
  MmToPixels to_pixels_;
};

// A smooth curve through `points` (Catmull-Rom), so outlines pass exactly through the
// landmarks that define them.
std::vector<Vec2> smooth_curve(const std::vector<Vec2>& points, bool closed, int per_span = 8);

// Points on an ellipse from `start` to `end` degrees (0 = +x, 90 = +y, i.e. down).
std::vector<Vec2> ellipse_arc(Vec2 centre, double rx, double ry, double start, double end,
                              int count = 32);

}  // namespace exprun::synthetic_ceph

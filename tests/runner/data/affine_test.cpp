// Affine maps between original pixels, network-input pixels and heatmap cells, with pixel
// centres at integer coordinates; checked against OpenCV's own resize and rotation.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <utility>

#include "data/affine.hpp"

namespace exprun {
namespace {

void expect_point(const std::array<double, 2>& p, double x, double y, double tol) {
  EXPECT_NEAR(p[0], x, tol);
  EXPECT_NEAR(p[1], y, tol);
}

TEST(Affine, DefaultIsIdentity) {
  const Affine id;
  expect_point(id.apply(3.5, -2.0), 3.5, -2.0, 0);
}

TEST(Affine, ResizeAlignsPixelCorners) {
  const Affine m = resize_map(1935, 2400, 768, 768);
  // The outer corners of the corner pixels map onto each other.
  expect_point(m.apply(-0.5, -0.5), -0.5, -0.5, 1e-12);
  expect_point(m.apply(1934.5, 2399.5), 767.5, 767.5, 1e-9);
  // The image centre maps to the centre.
  expect_point(m.apply(967.0, 1199.5), 383.5, 383.5, 1e-9);
  // Scale factors.
  EXPECT_DOUBLE_EQ(m.m[0], 768.0 / 1935.0);
  EXPECT_DOUBLE_EQ(m.m[4], 768.0 / 2400.0);
  EXPECT_EQ(m.m[1], 0.0);
  EXPECT_EQ(m.m[3], 0.0);
}

TEST(Affine, SameSizeResizeIsIdentity) {
  const Affine m = resize_map(640, 480, 640, 480);
  expect_point(m.apply(12.25, 400.5), 12.25, 400.5, 1e-12);
}

TEST(Affine, AfterAppliesTheArgumentFirst) {
  const Affine shift{{1, 0, 10, 0, 1, -4}};
  const Affine scale{{2, 0, 0, 0, 3, 0}};
  // scale after shift: (x + 10) * 2, (y - 4) * 3
  expect_point(scale.after(shift).apply(1, 2), 22, -6, 1e-12);
  // shift after scale: 2x + 10, 3y - 4
  expect_point(shift.after(scale).apply(1, 2), 12, 2, 1e-12);
}

TEST(Affine, InverseUndoesAGeneralMap) {
  const Affine m{{1.3, -0.4, 17.0, 0.25, 0.9, -3.5}};
  const Affine inv = m.inverse();
  for (double x : {-100.0, 0.0, 3.25, 1934.0})
    for (double y : {-7.0, 0.5, 2399.0}) {
      const auto there = m.apply(x, y);
      expect_point(inv.apply(there[0], there[1]), x, y, 1e-9);
    }
  const Affine id = inv.after(m);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(id.m[i], Affine{}.m[i], 1e-12) << i;
}

TEST(Affine, SingularMapCannotBeInverted) {
  const Affine flat{{1, 2, 0, 2, 4, 0}};
  EXPECT_THROW(flat.inverse(), std::runtime_error);
}

TEST(Affine, InputHeatmapRoundTrip) {
  for (double x : {-0.5, 0.0, 1.5, 383.25, 767.0}) {
    EXPECT_NEAR(heatmap_to_input(input_to_heatmap(x, 4), 4), x, 1e-12);
  }
  // Cell u of a stride-4 heatmap covers input pixels 4u .. 4u+3, centred at 4u + 1.5.
  EXPECT_DOUBLE_EQ(heatmap_to_input(0, 4), 1.5);
  EXPECT_DOUBLE_EQ(heatmap_to_input(10, 4), 41.5);
  EXPECT_DOUBLE_EQ(input_to_heatmap(-0.5, 4), -0.5);
  EXPECT_DOUBLE_EQ(input_to_heatmap(767.5, 4), 191.5);
}

TEST(Affine, IsbiLandmarkMapsBackWithinAMicroPixel) {
  // An ISBI 2015 film (1935 x 2400) resized to 768 x 768, HRNet heatmaps at stride 4.
  const Affine to_input = resize_map(1935, 2400, 768, 768);
  const Affine to_original = to_input.inverse();
  const double stride = 4;
  const double points[][2] = {{835.0, 996.0}, {0.0, 0.0}, {1934.0, 2399.0}, {1212.37, 1780.91}};
  for (const auto& p : points) {
    const auto in = to_input.apply(p[0], p[1]);
    const double u = input_to_heatmap(in[0], stride), v = input_to_heatmap(in[1], stride);
    EXPECT_GE(u, -0.5);
    EXPECT_LE(u, 191.5);
    const auto back = to_original.apply(heatmap_to_input(u, stride), heatmap_to_input(v, stride));
    expect_point(back, p[0], p[1], 1e-6);
  }
  // A heatmap-cell error of one cell is 4 input pixels, i.e. 4 * 1935/768 original pixels in x.
  const auto a = to_original.apply(heatmap_to_input(100, stride), heatmap_to_input(100, stride));
  const auto b = to_original.apply(heatmap_to_input(101, stride), heatmap_to_input(100, stride));
  EXPECT_NEAR(b[0] - a[0], 4 * 1935.0 / 768.0, 1e-9);
  EXPECT_NEAR(b[1] - a[1], 0, 1e-12);
}

// The convention is OpenCV's: resizing a ramp whose value is the x coordinate yields, at each
// output pixel, the original x that resize_map's inverse gives.
TEST(Affine, ResizeMapMatchesOpenCvResize) {
  const int w0 = 1935, h0 = 12, w1 = 768, h1 = 12;
  cv::Mat ramp(h0, w0, CV_32F);
  for (int y = 0; y < h0; ++y)
    for (int x = 0; x < w0; ++x) ramp.at<float>(y, x) = static_cast<float>(x);
  const Affine back = resize_map(w0, h0, w1, h1).inverse();
  // INTER_AREA's fractional box weights are rounded a little, so it gets a wider bound; a
  // half-pixel convention error would be 0.5 * 1935 / 768 = 1.26 original pixels everywhere.
  for (auto [interpolation, tolerance] :
       {std::pair{cv::INTER_LINEAR, 2e-2}, std::pair{cv::INTER_AREA, 0.1}}) {
    cv::Mat small;
    cv::resize(ramp, small, cv::Size(w1, h1), 0, 0, interpolation);
    double signed_sum = 0;
    int n = 0;
    for (int x = 2; x < w1 - 2; ++x, ++n) {
      const double error = small.at<float>(5, x) - back.apply(x, 5)[0];
      signed_sum += error;
      EXPECT_NEAR(error, 0, tolerance) << "interpolation " << interpolation << " x " << x;
    }
    EXPECT_NEAR(signed_sum / n, 0, 1e-2) << "interpolation " << interpolation;
  }
}

TEST(Affine, SimilarityWithoutChangeIsIdentity) {
  const Affine m = similarity_about_centre(128, 160, 0, 1, 0, 0);
  expect_point(m.apply(3, 150), 3, 150, 1e-12);
}

TEST(Affine, SimilarityKeepsTheCentreAndShifts) {
  const Affine m = similarity_about_centre(128, 160, 17, 1.1, 0, 0);
  expect_point(m.apply(63.5, 79.5), 63.5, 79.5, 1e-9);
  const Affine shifted = similarity_about_centre(128, 160, 17, 1.1, 5, -3);
  expect_point(shifted.apply(63.5, 79.5), 68.5, 76.5, 1e-9);
}

TEST(Affine, PositiveRotationTurnsCounterClockwiseOnScreen) {
  // 90 degrees: a point right of the centre moves above it (y points down).
  const Affine m = similarity_about_centre(101, 101, 90, 1, 0, 0);
  expect_point(m.apply(60, 50), 50, 40, 1e-9);
  const Affine twice = similarity_about_centre(101, 101, 2, 2, 0, 0);
  const auto p = twice.apply(60, 50);
  EXPECT_NEAR(std::hypot(p[0] - 50, p[1] - 50), 20, 1e-9);  // scale 2 doubles the distance
}

TEST(Affine, SimilarityMatchesOpenCvRotationMatrix) {
  const double w = 256, h = 320, angle = -12.5, scale = 0.93;
  const cv::Mat cv_m = cv::getRotationMatrix2D(cv::Point2f((w - 1) / 2, (h - 1) / 2), angle, scale);
  const Affine m = similarity_about_centre(w, h, angle, scale, 0, 0);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(m.m[i], cv_m.at<double>(i / 3, i % 3), 1e-4) << i;
}

}  // namespace
}  // namespace exprun

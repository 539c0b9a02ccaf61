// The mean-shape baseline: mean relative landmark positions, scaled to each image.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "eval/mean_shape.hpp"

namespace exprun {
namespace {

SampleMeta meta(std::int64_t width, std::int64_t height, std::vector<double> xy) {
  SampleMeta m;
  m.original_width = width;
  m.original_height = height;
  m.mm_per_pixel = 0.1;
  m.landmarks = torch::tensor(xy, torch::kFloat64).view({-1, 2});
  return m;
}

TEST(MeanShape, EmptyUntilSomethingIsAdded) {
  MeanShapeBaseline baseline;
  EXPECT_TRUE(baseline.empty());
  baseline.add(meta(10, 10, {1, 1}));
  EXPECT_FALSE(baseline.empty());
}

TEST(MeanShape, MeanOfRelativePositionsScaledToEachImage) {
  MeanShapeBaseline baseline;
  // Relative positions: (0.1, 0.1), (0.5, 0.5) and (0.2, 0.3), (0.7, 0.9).
  baseline.add(meta(100, 200, {10, 20, 50, 100}));
  baseline.add(meta(200, 100, {40, 30, 140, 90}));
  const auto predicted =
      baseline.predict({meta(1000, 500, {0, 0, 0, 0}), meta(10, 20, {0, 0, 0, 0})});
  ASSERT_EQ(predicted.sizes(), (std::vector<std::int64_t>{2, 2, 2}));
  EXPECT_EQ(predicted.scalar_type(), torch::kFloat64);
  const double expected[2][2][2] = {{{150, 100}, {600, 350}}, {{1.5, 4}, {6, 14}}};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int d = 0; d < 2; ++d)
        EXPECT_NEAR(predicted[i][j][d].item<double>(), expected[i][j][d], 1e-9)
            << i << " " << j << " " << d;
}

TEST(MeanShape, MissingLandmarksAreSkippedNotCountedAsZero) {
  MeanShapeBaseline baseline;
  const double nan = std::nan("");
  baseline.add(meta(100, 100, {10, 10, 40, 60}));
  baseline.add(meta(100, 100, {30, 50, nan, nan}));
  const auto predicted = baseline.predict({meta(100, 100, {0, 0, 0, 0})});
  EXPECT_NEAR(predicted[0][0][0].item<double>(), 20, 1e-9);
  EXPECT_NEAR(predicted[0][0][1].item<double>(), 30, 1e-9);
  EXPECT_NEAR(predicted[0][1][0].item<double>(), 40, 1e-9);  // from the first image alone
  EXPECT_NEAR(predicted[0][1][1].item<double>(), 60, 1e-9);
}

}  // namespace
}  // namespace exprun

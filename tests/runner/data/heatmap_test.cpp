// Gaussian heatmap targets and their sub-cell decoding.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "data/heatmap.hpp"

namespace exprun {
namespace {

torch::Tensor points(const std::vector<std::pair<double, double>>& xy) {
  auto t = torch::empty({static_cast<std::int64_t>(xy.size()), 2}, torch::kFloat64);
  for (std::size_t i = 0; i < xy.size(); ++i) {
    t[static_cast<std::int64_t>(i)][0] = xy[i].first;
    t[static_cast<std::int64_t>(i)][1] = xy[i].second;
  }
  return t;
}

// The Gaussian over every cell, as encode_heatmaps defines it.
torch::Tensor full_maps(const torch::Tensor& landmarks, std::int64_t h, std::int64_t w,
                        double sigma) {
  auto valid = torch::isfinite(landmarks).all(1);
  auto safe = torch::where(valid.unsqueeze(1), landmarks, torch::zeros_like(landmarks));
  auto dx = torch::arange(w, torch::kFloat64).view({1, 1, w}) - safe.select(1, 0).view({-1, 1, 1});
  auto dy = torch::arange(h, torch::kFloat64).view({1, h, 1}) - safe.select(1, 1).view({-1, 1, 1});
  auto maps = torch::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
  return (maps * valid.view({-1, 1, 1}).to(torch::kFloat64)).to(torch::kFloat32);
}

// encode_heatmaps computes each Gaussian in a window around its landmark only (along an axis
// shorter than the window, over the whole axis); the maps are the definition's to the bit, for
// landmarks inside, on the edge of, and outside the map, and missing.
TEST(Heatmap, WindowedMapsEqualTheDefinitionToTheBit) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  torch::manual_seed(5);
  for (const auto& [h, w, sigma] : {std::tuple<std::int64_t, std::int64_t, double>{192, 192, 2.0},
                                    {80, 64, 1.5},
                                    {64, 48, 2.0},
                                    {200, 120, 3.3},
                                    {40, 32, 1.5},
                                    {100, 24, 2.0},
                                    {24, 100, 2.0},
                                    {7, 9, 0.7}}) {
    auto random = torch::rand({29, 2}, torch::kFloat64) *
                  torch::tensor({static_cast<double>(w), static_cast<double>(h)}, torch::kFloat64);
    auto landmarks =
        torch::cat({random, points({{-0.5, -0.5},
                                    {static_cast<double>(w) - 0.5, 3.0},
                                    {-40, 12.5},
                                    {static_cast<double>(w) + 25, static_cast<double>(h) + 31},
                                    {nan, 4},
                                    {1e9, -1e9}})});
    const auto encoded = encode_heatmaps(landmarks, h, w, sigma);
    EXPECT_TRUE(torch::equal(encoded, full_maps(landmarks, h, w, sigma)))
        << h << "x" << w << " sigma " << sigma;
  }
}

TEST(Heatmap, EncodeShapeTypeAndPeak) {
  const auto maps = encode_heatmaps(points({{10, 20}, {3.5, 7.25}}), 48, 40, 2.0);
  ASSERT_EQ(maps.sizes(), (std::vector<std::int64_t>{2, 48, 40}));
  EXPECT_EQ(maps.scalar_type(), torch::kFloat32);
  // A landmark on a cell centre has its peak, exactly 1, on that cell.
  EXPECT_EQ(maps[0][20][10].item<float>(), 1.0f);
  EXPECT_EQ(maps[0].max().item<float>(), 1.0f);
  EXPECT_EQ(maps[0].argmax().item<std::int64_t>(), 20 * 40 + 10);
  // The Gaussian's value one cell away and sqrt(2) cells away (diagonal).
  EXPECT_NEAR(maps[0][20][11].item<float>(), std::exp(-1.0 / 8.0), 1e-6);
  EXPECT_NEAR(maps[0][21][11].item<float>(), std::exp(-2.0 / 8.0), 1e-6);
  // Off a cell centre the peak is below 1 by exactly the Gaussian at that offset.
  EXPECT_NEAR(maps[1].max().item<float>(), std::exp(-(0.5 * 0.5 + 0.25 * 0.25) / 8.0), 1e-6);
  EXPECT_GE(maps.min().item<float>(), 0.0f);
}

TEST(Heatmap, MissingLandmarkHasAnEmptyMap) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto maps = encode_heatmaps(points({{nan, 4}, {5, 6}, {7, nan}}), 16, 16, 1.5);
  EXPECT_EQ(maps[0].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(maps[2].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(maps[1][6][5].item<float>(), 1.0f);
}

TEST(Heatmap, SigmaSetsTheWidth) {
  const auto narrow = encode_heatmaps(points({{16, 16}}), 32, 32, 1.0);
  const auto wide = encode_heatmaps(points({{16, 16}}), 32, 32, 3.0);
  // Sum of a sampled 2-D Gaussian ~ 2 pi sigma^2 when it lies well inside the map.
  EXPECT_NEAR(narrow.to(torch::kFloat64).sum().item<double>(), 2 * M_PI * 1.0, 1e-4);
  EXPECT_NEAR(wide.to(torch::kFloat64).sum().item<double>(), 2 * M_PI * 9.0, 1e-3);
}

struct RoundTripCase {
  double x, y, sigma;
};

class HeatmapRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(HeatmapRoundTrip, DecodesWithinATenthOfACell) {
  const auto c = GetParam();
  const std::int64_t h = 48, w = 64;
  const auto maps = encode_heatmaps(points({{c.x, c.y}}), h, w, c.sigma).unsqueeze(0);
  const auto decoded = decode_heatmaps(maps);
  ASSERT_EQ(decoded.sizes(), (std::vector<std::int64_t>{1, 1, 2}));
  EXPECT_EQ(decoded.scalar_type(), torch::kFloat64);
  EXPECT_NEAR(decoded[0][0][0].item<double>(), c.x, 0.1);
  EXPECT_NEAR(decoded[0][0][1].item<double>(), c.y, 0.1);
  // A noiseless Gaussian's log is a parabola: the decode is far better than the bound.
  EXPECT_NEAR(decoded[0][0][0].item<double>(), c.x, 1e-3);
  EXPECT_NEAR(decoded[0][0][1].item<double>(), c.y, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(
    SubCellPositions, HeatmapRoundTrip,
    ::testing::Values(RoundTripCase{20.0, 30.0, 2.0},     // on a cell centre
                      RoundTripCase{20.25, 30.75, 2.0},   // quarter cells
                      RoundTripCase{20.49, 10.51, 2.0},   // near half a cell
                      RoundTripCase{20.5, 10.5, 2.0},     // exactly between two cells
                      RoundTripCase{33.1, 17.9, 1.0},     // narrow Gaussian
                      RoundTripCase{33.3, 17.6, 4.0},     // wide Gaussian
                      RoundTripCase{1.3, 1.2, 2.0},       // near the top-left border
                      RoundTripCase{0.6, 46.4, 1.5},      // next to the left and bottom edges
                      RoundTripCase{62.4, 0.55, 2.0},     // next to the right and top edges
                      RoundTripCase{61.6, 46.45, 3.0}));  // near the bottom-right corner

TEST(Heatmap, DecodesABatchOfSeveralLandmarks) {
  const auto a = encode_heatmaps(points({{5.2, 7.7}, {30.5, 2.25}, {12, 40.4}}), 48, 32, 2.0);
  const auto b = encode_heatmaps(points({{25.9, 44.1}, {1.5, 1.5}, {16.3, 24.0}}), 48, 32, 2.0);
  const auto decoded = decode_heatmaps(torch::stack({a, b}));
  ASSERT_EQ(decoded.sizes(), (std::vector<std::int64_t>{2, 3, 2}));
  const double expected[2][3][2] = {{{5.2, 7.7}, {30.5, 2.25}, {12, 40.4}},
                                    {{25.9, 44.1}, {1.5, 1.5}, {16.3, 24.0}}};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int d = 0; d < 2; ++d)
        EXPECT_NEAR(decoded[i][j][d].item<double>(), expected[i][j][d], 1e-3)
            << "sample " << i << " landmark " << j << " axis " << d;
}

TEST(Heatmap, DecodeIsScaleInvariantAndAcceptsFloat16) {
  // A network's output is not a unit-peak Gaussian; scaling it must not move the decode.
  const auto maps = encode_heatmaps(points({{9.3, 14.6}}), 24, 24, 2.0).unsqueeze(0);
  const auto scaled = decode_heatmaps(maps * 0.37);
  EXPECT_NEAR(scaled[0][0][0].item<double>(), 9.3, 1e-3);
  EXPECT_NEAR(scaled[0][0][1].item<double>(), 14.6, 1e-3);
  const auto half = decode_heatmaps(maps.to(torch::kFloat16));
  EXPECT_NEAR(half[0][0][0].item<double>(), 9.3, 0.05);
  EXPECT_NEAR(half[0][0][1].item<double>(), 14.6, 0.05);
}

TEST(Heatmap, NonPositiveNeighboursFallBackToRawParabola) {
  // A single hot cell with zero neighbours: no sub-cell information, the arg-max itself.
  auto maps = torch::zeros({1, 1, 9, 9});
  maps[0][0][4][6] = 1.0;
  auto decoded = decode_heatmaps(maps);
  EXPECT_DOUBLE_EQ(decoded[0][0][0].item<double>(), 6.0);
  EXPECT_DOUBLE_EQ(decoded[0][0][1].item<double>(), 4.0);
  // Neighbours of 0.5 and 0 along x: parabola through (-1, 0.5), (0, 1), (1, 0) has its
  // vertex at 0.5 * (0.5 - 0) / (0.5 - 2 + 0) = -1/6.
  maps[0][0][4][5] = 0.5;
  decoded = decode_heatmaps(maps);
  EXPECT_NEAR(decoded[0][0][0].item<double>(), 6.0 - 1.0 / 6.0, 1e-12);
  EXPECT_DOUBLE_EQ(decoded[0][0][1].item<double>(), 4.0);
}

TEST(Heatmap, NegativeOutputsDecodeToTheArgMax) {
  auto maps = torch::full({1, 1, 5, 5}, -1.0);
  maps[0][0][2][3] = -0.2;
  const auto decoded = decode_heatmaps(maps);
  // Curvature of (-1, -0.2, -1) is negative: the vertex is the centre cell.
  EXPECT_DOUBLE_EQ(decoded[0][0][0].item<double>(), 3.0);
  EXPECT_DOUBLE_EQ(decoded[0][0][1].item<double>(), 2.0);
}

TEST(Heatmap, DecodeRejectsWrongRank) {
  EXPECT_THROW(decode_heatmaps(torch::zeros({3, 8, 8})), c10::Error);
}

// A landmark within half a cell of the image border: its arg-max is the border cell, which
// has a neighbour on one side only. The three cells nearest the border are fitted instead, which
// is exact for a Gaussian.
TEST(Heatmap, BorderCellDecodesWithinATenthOfACell) {
  const auto maps = encode_heatmaps(points({{0.3, 23.0}, {47.0, 0.45}}), 24, 48, 2.0).unsqueeze(0);
  const auto decoded = decode_heatmaps(maps);
  EXPECT_NEAR(decoded[0][0][0].item<double>(), 0.3, 0.1);
  EXPECT_NEAR(decoded[0][0][1].item<double>(), 23.0, 1e-3);
  EXPECT_NEAR(decoded[0][1][0].item<double>(), 47.0, 0.1);
  EXPECT_NEAR(decoded[0][1][1].item<double>(), 0.45, 0.1);
}

}  // namespace
}  // namespace exprun

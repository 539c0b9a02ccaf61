// Adaptive wing loss against values worked out from the paper's formula:
//   |d| <  theta: omega * ln(1 + |d / epsilon|^(alpha - y))
//   |d| >= theta: A |d| - C, with
//   A = omega / (1 + (theta/epsilon)^(alpha-y)) * (alpha-y) * (theta/epsilon)^(alpha-y-1) / epsilon
//   C = theta A - omega ln(1 + (theta/epsilon)^(alpha-y))
// e.g. y = 1, p = 0.8: 14 ln(1 + 0.2^1.1) = 14 ln(1.170253) = 2.2012588.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;

std::shared_ptr<Loss> make(std::map<std::string, ParamValue> given = {}) {
  const auto* info = exprun_plugin_info();
  return make_plugin<Loss>(*info, Params::resolve(info->schema(), std::move(given)), LossContext{});
}

// The loss of one 1x1 heatmap: exactly the per-pixel formula.
double pixel_loss(Loss& loss, double target, double predicted) {
  auto p = torch::full({1, 1, 1, 1}, predicted);
  auto t = torch::full({1, 1, 1, 1}, target);
  return loss.compute(p, t, torch::ones({1})).item<double>();
}

struct Case {
  double target, predicted, expected;
};

TEST(AdaptiveWing, MatchesTheFormulaOnBothSidesOfTheta) {
  auto loss = make();
  const Case cases[] = {
      {1.0, 0.8, 2.201258768341499},   // |d| = 0.2 < theta: log branch, foreground
      {0.0, 0.3, 1.0747467860167443},  // log branch, background
      {0.7, 0.45, 1.878380996852247},  // log branch, just under theta
      {0.3, 0.3, 0.0},                 // no error, no loss
      {0.5, 1.2, 6.213744852565336},   // |d| = 0.7 > theta: linear branch
      {0.0, 0.9, 7.3838037456878265},  // linear branch, background
      {1.0, 0.2, 8.299812890391426},   // linear branch, foreground
  };
  for (const auto& c : cases) {
    const double got = pixel_loss(*loss, c.target, c.predicted);
    EXPECT_NEAR(got, c.expected, 1e-5 * std::max(1.0, c.expected))
        << "target " << c.target << " predicted " << c.predicted;
  }
}

TEST(AdaptiveWing, IsContinuousAtTheta) {
  auto loss = make();
  for (double y : {0.0, 0.4, 1.0}) {
    const double below = pixel_loss(*loss, y, y + 0.5 - 1e-6);
    const double above = pixel_loss(*loss, y, y + 0.5 + 1e-6);
    EXPECT_NEAR(below, above, 1e-4) << "target " << y;
  }
}

TEST(AdaptiveWing, ParametersChangeTheValue) {
  // omega scales the log branch linearly.
  auto base = make();
  auto doubled = make({{"omega", 28.0}});
  EXPECT_NEAR(pixel_loss(*doubled, 1.0, 0.8), 2 * pixel_loss(*base, 1.0, 0.8), 1e-5);
}

TEST(AdaptiveWing, LossMapWeightsTheDilatedForeground) {
  // One row of five pixels; only the middle one is foreground (> 0.2). The 3x3 dilation
  // covers pixels 1..3, which weigh 1 + W = 11; the others weigh 1.
  auto target = torch::tensor({0.0, 0.0, 1.0, 0.0, 0.1}).view({1, 1, 1, 5});
  auto predicted = torch::tensor({0.1, 0.2, 0.4, 0.05, 0.0}).view({1, 1, 1, 5});
  auto with_map = make({{"use_loss_map", true}});
  auto without = make();
  EXPECT_NEAR(with_map->compute(predicted, target, torch::ones({1})).item<double>(),
              15.086950895414848, 1e-5 * 15.1);
  EXPECT_NEAR(without->compute(predicted, target, torch::ones({1})).item<double>(),
              1.4170084886181828, 1e-5 * 1.5);
}

// The authors' code weights pixels whose dilated target is strictly above the threshold: a
// target exactly at it is background, one just above it foreground.
TEST(AdaptiveWing, LossMapForegroundIsStrictlyAboveTheThreshold) {
  auto predicted = torch::tensor({0.1, 0.2, 0.4, 0.05, 0.0}).view({1, 1, 1, 5});
  auto loss_of = [&](Loss& loss, double middle) {
    auto target = torch::tensor({0.0, 0.0, middle, 0.0, 0.0}).view({1, 1, 1, 5});
    return loss.compute(predicted, target, torch::ones({1})).item<double>();
  };
  // 0.25 is exact in float and double alike.
  auto with_map = make({{"use_loss_map", true}, {"loss_map_threshold", 0.25}});
  auto without = make();
  EXPECT_DOUBLE_EQ(loss_of(*with_map, 0.25), loss_of(*without, 0.25));
  EXPECT_GT(loss_of(*with_map, 0.2500001), 2 * loss_of(*without, 0.2500001));
  // The default 0.2, with the target in float32 as the trainer builds it.
  auto by_default = make({{"use_loss_map", true}});
  auto target = torch::tensor({0.0f, 0.0f, 0.2f, 0.0f, 0.0f}).view({1, 1, 1, 5});
  EXPECT_DOUBLE_EQ(by_default->compute(predicted, target, torch::ones({1})).item<double>(),
                   without->compute(predicted, target, torch::ones({1})).item<double>());
}

TEST(AdaptiveWing, WeightsLandmarksAndAveragesTheBatch) {
  auto loss = make();
  // Two landmarks with different errors; weight 3 on the second.
  auto target = torch::tensor({1.0, 0.0}).view({1, 2, 1, 1});
  auto predicted = torch::tensor({0.8, 0.3}).view({1, 2, 1, 1});
  const double l0 = 2.201258768341499, l1 = 1.0747467860167443;
  EXPECT_NEAR(loss->compute(predicted, target, torch::tensor({1.0f, 3.0f})).item<double>(),
              (l0 + 3 * l1) / 4, 1e-5);
  // A batch of the same sample twice has the same (mean) loss.
  EXPECT_NEAR(
      loss->compute(predicted.repeat({2, 1, 1, 1}), target.repeat({2, 1, 1, 1}), torch::ones({2}))
          .item<double>(),
      (l0 + l1) / 2, 1e-5);
}

TEST(AdaptiveWing, RejectsAlphaThatBreaksTheExponent) {
  EXPECT_THROW(make({{"alpha", 0.5}}), ParamError);
}

}  // namespace

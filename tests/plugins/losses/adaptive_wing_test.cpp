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

// fused = true (the default) and LibTorch's tensor operations on the same batch: the value and
// the gradient of the prediction agree to float rounding. The batch covers both branches
// (|d| below and above theta), exact hits (|d| = 0), targets of 0, 1 and in between, a
// channels-last prediction against an NCHW target, landmark weights and the loss map.
struct LossAndGradient {
  torch::Tensor loss, gradient;
};

LossAndGradient loss_and_gradient(Loss& loss, const torch::Tensor& predicted,
                                  const torch::Tensor& target, const torch::Tensor& weights) {
  auto p = predicted.detach().clone(at::MemoryFormat::Preserve).requires_grad_(true);
  auto value = loss.compute(p, target, weights);
  value.backward();
  return {value.detach(), p.grad()};
}

struct Batch {
  torch::Tensor predicted, target, weights;
};

Batch mixed_batch() {
  torch::manual_seed(3);
  const int64_t n = 3, k = 5, h = 24, w = 20;
  auto target = torch::rand({n, k, h, w});
  target.index_put_({torch::indexing::Slice(), 0}, 0.0);
  target.index_put_({torch::indexing::Slice(), 1, 3, 4}, 1.0);
  auto predicted = target + 0.9 * (torch::rand({n, k, h, w}) - 0.5);  // |d| up to 0.45
  predicted.index_put_({torch::indexing::Slice(), 2}, torch::rand({n, h, w}) * 2 - 0.5);
  predicted.index_put_({0, 3}, target.index({0, 3}));  // |d| = 0 on a whole map
  return {predicted.contiguous(at::MemoryFormat::ChannelsLast), target,
          torch::tensor({1.0f, 2.0f, 0.5f, 1.0f, 3.0f})};
}

TEST(AdaptiveWing, FusedEqualsTheTensorOperations) {
  const Batch b = mixed_batch();
  for (bool loss_map : {false, true}) {
    auto fused = make({{"use_loss_map", loss_map}});
    auto by_operations = make({{"use_loss_map", loss_map}, {"fused", false}});
    const auto f = loss_and_gradient(*fused, b.predicted, b.target, b.weights);
    const auto o = loss_and_gradient(*by_operations, b.predicted, b.target, b.weights);
    EXPECT_NEAR(f.loss.item<double>(), o.loss.item<double>(), 1e-6 * o.loss.item<double>())
        << "loss map " << loss_map;
    ASSERT_EQ(f.gradient.sizes(), o.gradient.sizes());
    EXPECT_TRUE(torch::allclose(f.gradient, o.gradient, 1e-5, 1e-9))
        << "loss map " << loss_map << ", largest difference "
        << (f.gradient - o.gradient).abs().max().item<double>();
    // Both branches were taken: some gradients are A (constant in the prediction), some not.
    EXPECT_GT(f.gradient.abs().max().item<double>(), 0.0);
  }
}

TEST(AdaptiveWing, FusedGradientIsZeroWherePredictionHitsTheTarget) {
  auto target = torch::tensor({0.0f, 0.5f, 1.0f, 0.25f}).view({1, 1, 2, 2});
  const auto g = loss_and_gradient(*make(), target, target, torch::ones({1}));
  EXPECT_TRUE(torch::equal(g.gradient, torch::zeros_like(target))) << g.gradient;
  EXPECT_EQ(g.loss.item<double>(), 0.0);
}

TEST(AdaptiveWing, FusedGradientHasTheSignOfTheError) {
  // Over and under the target by the same amount, either branch: opposite gradients.
  auto target = torch::tensor({0.5f, 0.5f, 0.2f, 0.2f}).view({1, 1, 1, 4});
  auto predicted = torch::tensor({0.7f, 0.3f, 0.9f, -0.5f}).view({1, 1, 1, 4});
  const auto g = loss_and_gradient(*make(), predicted, target, torch::ones({1}));
  auto v = g.gradient.flatten();
  EXPECT_GT(v[0].item<float>(), 0.0f);
  EXPECT_LT(v[1].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(v[0].item<float>(), -v[1].item<float>());
  EXPECT_GT(v[2].item<float>(), 0.0f);  // |d| = 0.7 >= theta: the linear branch, slope A
  EXPECT_LT(v[3].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(v[2].item<float>(), -v[3].item<float>());
}

TEST(AdaptiveWing, FusedIsTheSameWithAndWithoutGradientAndForAnyThreadCount) {
  // Large enough for LibTorch's loop to split it among threads.
  torch::manual_seed(5);
  auto target = torch::rand({4, 29, 64, 80});
  auto predicted = target + 0.6 * (torch::rand_like(target) - 0.5);
  auto loss = make();
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = loss_and_gradient(*loss, predicted, target, torch::ones({29}));
  at::set_num_threads(3);
  const auto three = loss_and_gradient(*loss, predicted, target, torch::ones({29}));
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one.loss, three.loss));
  EXPECT_TRUE(torch::equal(one.gradient, three.gradient));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(loss->compute(predicted, target, torch::ones({29})), one.loss));
}

TEST(AdaptiveWing, FusedRefusesASecondDerivative) {
  const Batch b = mixed_batch();
  auto p = b.predicted.clone().requires_grad_(true);
  auto value = make()->compute(p, b.target, b.weights);
  EXPECT_THROW(torch::autograd::grad({value}, {p}, {}, true, /*create_graph=*/true), c10::Error);
  auto by_operations = make({{"fused", false}})->compute(p, b.target, b.weights);
  EXPECT_NO_THROW(torch::autograd::grad({by_operations}, {p}, {}, true, true));
}

TEST(AdaptiveWing, TargetThatNeedsAGradientTakesTheTensorOperations) {
  const Batch b = mixed_batch();
  auto target = b.target.clone().requires_grad_(true);
  make()->compute(b.predicted, target, b.weights).backward();
  ASSERT_TRUE(target.grad().defined());
  EXPECT_GT(target.grad().abs().sum().item<double>(), 0.0);
}

TEST(AdaptiveWing, RejectsAlphaThatBreaksTheExponent) {
  EXPECT_THROW(make({{"alpha", 0.5}}), ParamError);
}

}  // namespace

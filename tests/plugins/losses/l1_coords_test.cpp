// The soft-argmax coordinate loss against values worked out by hand.
//
// A 3 x 3 predicted map of zeros with ln 3 at (x 2, y 1), beta 1: the softmax weights are 1 for
// eight cells and 3 for that one, 11 in all. Column sums 3, 3, 5 give x = (0*3 + 1*3 + 2*5) / 11
// = 13/11; row sums 3, 5, 3 give y = 1. With beta 2 the cell weighs 9 of 17: x = 25/17, y = 1.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;

std::shared_ptr<Loss> make(std::map<std::string, ParamValue> given = {}) {
  const auto* info = exprun_plugin_info();
  return make_plugin<Loss>(*info, Params::resolve(info->schema(), std::move(given)), LossContext{});
}

// The runner's target: an untruncated Gaussian sampled at the cell centres, float32.
torch::Tensor gaussian(double cx, double cy, std::int64_t h, std::int64_t w, double sigma) {
  auto xs = torch::arange(w, torch::kFloat64).view({1, w});
  auto ys = torch::arange(h, torch::kFloat64).view({h, 1});
  auto d2 = (xs - cx).pow(2) + (ys - cy).pow(2);
  return torch::exp(-d2 / (2 * sigma * sigma)).to(torch::kFloat);
}

torch::Tensor peaked_map() {
  auto p = torch::zeros({3, 3});
  p[1][2] = std::log(3.0);
  return p;
}

double value(Loss& loss, const torch::Tensor& predicted, const torch::Tensor& target,
             const torch::Tensor& weights) {
  return loss.compute(predicted, target, weights).item<double>();
}

void expect_relative(double got, double expected) {
  EXPECT_NEAR(got, expected, 1e-5 * std::abs(expected)) << "expected " << expected;
}

TEST(L1Coords, MatchesTheSoftArgmaxWorkedByHand) {
  auto target = gaussian(0.3, 1.6, 3, 3, 1.0).view({1, 1, 3, 3});
  auto predicted = peaked_map().view({1, 1, 3, 3});
  auto one = torch::ones({1});
  expect_relative(value(*make(), predicted, target, one), (13.0 / 11 - 0.3) + (1.6 - 1.0));
  expect_relative(value(*make({{"beta", 2.0}}), predicted, target, one),
                  (25.0 / 17 - 0.3) + (1.6 - 1.0));
  expect_relative(value(*make({{"scale", 0.5}}), predicted, target, one),
                  0.5 * ((13.0 / 11 - 0.3) + (1.6 - 1.0)));
}

// The target's centre is read back exactly, whatever sigma, even off the last cell centre.
TEST(L1Coords, TargetCentresAreExactAtTheBorderAndForAnySigma) {
  auto loss = make({{"beta", 1000.0}});  // a hard arg-max: exp(-1000) is 0 in float32
  for (double sigma : {0.7, 1.5, 3.0}) {
    auto target = gaussian(0.2, 4.7, 5, 6, sigma).view({1, 1, 5, 6});
    auto predicted = torch::zeros({1, 1, 5, 6});
    predicted[0][0][4][0] = 1.0;  // the cell (x 0, y 4)
    expect_relative(value(*loss, predicted, target, torch::ones({1})), 0.2 + 0.7);
  }
}

TEST(L1Coords, WeighsLandmarksAndSkipsMissingOnes) {
  auto loss = make();
  // Landmark 0 as above (loss a); landmark 1 predicted uniform on a target centred at (2, 0):
  // x = 1, y = 1, loss 1 + 1 = 2; landmark 2 missing (zero target).
  const double a = (13.0 / 11 - 0.3) + 0.6, b = 2.0;
  auto predicted = torch::stack({peaked_map(), torch::zeros({3, 3}), peaked_map()}).unsqueeze(0);
  auto target =
      torch::stack({gaussian(0.3, 1.6, 3, 3, 1.0), gaussian(2, 0, 3, 3, 1.0), torch::zeros({3, 3})})
          .unsqueeze(0);
  expect_relative(value(*loss, predicted, target, torch::tensor({1.0f, 1.0f, 5.0f})), (a + b) / 2);
  expect_relative(value(*loss, predicted, target, torch::tensor({3.0f, 1.0f, 5.0f})),
                  (3 * a + b) / 4);
  // The batch mean: a second image whose only landmarks are missing but one.
  auto second_target =
      torch::stack({torch::zeros({3, 3}), gaussian(2, 0, 3, 3, 1.0), torch::zeros({3, 3})})
          .unsqueeze(0);
  expect_relative(value(*loss, torch::cat({predicted, predicted}),
                        torch::cat({target, second_target}), torch::tensor({3.0f, 1.0f, 5.0f})),
                  ((3 * a + b) / 4 + b) / 2);
}

TEST(L1Coords, GradientsFlowToWeightedLandmarksOnly) {
  auto loss = make();
  auto predicted = torch::randn({2, 2, 8, 8}, torch::requires_grad());
  auto target = torch::stack({gaussian(2.5, 3.2, 8, 8, 1.5), gaussian(6.1, 1.0, 8, 8, 1.5)})
                    .unsqueeze(0)
                    .repeat({2, 1, 1, 1});
  loss->compute(predicted, target, torch::tensor({1.0f, 0.0f})).backward();
  auto grad = predicted.grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_TRUE(torch::isfinite(grad).all().item<bool>());
  EXPECT_GT(grad.select(1, 0).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(grad.select(1, 1).abs().sum().item<double>(), 0.0);
}

TEST(L1Coords, PerfectPredictionCostsNothingAndBetaIsValidated) {
  // A prediction whose soft-argmax lands on the centre: symmetric around an integer cell.
  auto target = gaussian(3, 2, 5, 7, 1.0).view({1, 1, 5, 7});
  EXPECT_NEAR(value(*make({{"beta", 5.0}}), target.clone(), target, torch::ones({1})), 0.0, 1e-6);
  const auto* info = exprun_plugin_info();
  EXPECT_THROW(Params::resolve(info->schema(), {{"beta", 0.0}}), ParamError);
}

}  // namespace

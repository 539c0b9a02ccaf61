// memory/mixed_precision on a CUDA device, built through the plugin registry as a stage builds
// it: fp16 autocast inside the forward scope only, and the dynamic loss scaler on its CUDA path
// (scale and clean-step count kept on the device, the fused
// _amp_foreach_non_finite_check_and_unscale_ and _amp_update_scale_): an inf gradient skips
// the step and backs the scale off, clean steps are unscaled exactly and grow the scale after
// growth_interval of them, and save()/load() carry the device's scale to a fresh strategy.
//
// Scales are powers of two and gradients small integers, so every product and quotient below
// is exact in fp32 and the checks can use equality.
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <exprun/sdk/sdk.hpp>
#include <exprun/sdk/torch_compat.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "cuda_test_support.hpp"
#include "plugins/registry.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

const torch::Device kCuda(torch::kCUDA, 0);

std::shared_ptr<sdk::MemoryStrategy> make_strategy(std::map<std::string, sdk::ParamValue> given) {
  const Registry& registry = test::built_plugins();
  const auto schema = registry.schema(sdk::PluginKind::Memory, "mixed_precision");
  const auto params = sdk::Params::resolve(schema, std::move(given));
  // As a stage on "cuda" with effective batch 4 in micro-batches of 2 would build it.
  return registry.make<sdk::MemoryStrategy>("mixed_precision", params,
                                            sdk::MemoryContext{4, 2, kCuda});
}

// The scaler's state as a checkpoint records it.
struct SavedScale {
  double scale = 0;
  std::int64_t clean_steps = -1;
};

SavedScale saved_scale(const sdk::MemoryStrategy& strategy, std::string* bytes = nullptr) {
  torch::serialize::OutputArchive out;
  strategy.save(out);
  std::ostringstream stream;
  out.save_to(stream);
  if (bytes) *bytes = stream.str();
  torch::serialize::InputArchive in;
  std::istringstream read_back(stream.str());
  in.load_from(read_back);
  torch::Tensor scale, clean;
  EXPECT_TRUE(in.try_read("mixed_precision.scale", scale));
  EXPECT_TRUE(in.try_read("mixed_precision.clean_steps", clean));
  if (!scale.defined() || !clean.defined()) return {};
  return {scale.item<double>(), clean.item<std::int64_t>()};
}

// One optimiser step as optimisation_step takes it: backward on the scaled loss, the
// strategy's check (which unscales), the step only when it allows, then its update.
struct StepOutcome {
  bool stepped = false;
  torch::Tensor scaled_grad;  // the gradient backward() left, before unscaling
  torch::Tensor grad;         // the gradient the optimiser saw (or would have)
};

StepOutcome step(sdk::MemoryStrategy& strategy, torch::optim::Optimizer& optimizer,
                 const torch::Tensor& w, double factor) {
  optimizer.zero_grad();
  const auto loss = (w * factor).sum();  // d loss / d w = factor, for every element
  strategy.scale_loss(loss).backward();
  StepOutcome out;
  out.scaled_grad = w.grad().detach().clone();
  out.stepped = strategy.before_step(optimizer);
  out.grad = w.grad().detach().clone();
  if (out.stepped) optimizer.step();
  strategy.after_step();
  return out;
}

TEST(MixedPrecisionCuda, AutocastsMatmulsToFp16OnlyInsideTheForwardScope) {
  EXPRUN_SKIP_WITHOUT_CUDA();
  auto strategy = make_strategy({{"dtype", std::string("fp16")}});
  const auto a = torch::randn({16, 16}, torch::dtype(torch::kFloat).device(kCuda));
  const auto b = torch::randn({16, 16}, torch::dtype(torch::kFloat).device(kCuda));
  ASSERT_FALSE(sdk::compat::autocast_state(torch::kCUDA).enabled);
  {
    auto scope = strategy->enter_forward();
    EXPECT_TRUE(sdk::compat::autocast_state(torch::kCUDA).enabled);
    EXPECT_EQ(sdk::compat::autocast_state(torch::kCUDA).dtype, torch::kHalf);
    const auto product = torch::mm(a, b);
    EXPECT_EQ(product.scalar_type(), torch::kHalf);
    EXPECT_TRUE(product.is_cuda());
    // CPU autocast is not touched by a CUDA strategy.
    EXPECT_FALSE(sdk::compat::autocast_state(torch::kCPU).enabled);
  }
  EXPECT_FALSE(sdk::compat::autocast_state(torch::kCUDA).enabled);
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
}

TEST(MixedPrecisionCuda, LossScalerSkipsBacksOffUnscalesGrowsAndIsSaved) {
  EXPRUN_SKIP_WITHOUT_CUDA();
  // fp16 on CUDA: loss scaling is on ("auto"). Scale 8, halved on inf, doubled after 2 clean
  // steps.
  const std::map<std::string, sdk::ParamValue> config = {{"dtype", std::string("fp16")},
                                                         {"init_scale", 8.0},
                                                         {"growth_factor", 2.0},
                                                         {"backoff_factor", 0.5},
                                                         {"growth_interval", std::int64_t{2}}};
  auto strategy = make_strategy(config);
  auto w = torch::ones({5}, torch::dtype(torch::kFloat).device(kCuda).requires_grad(true));
  torch::optim::SGD optimizer({w}, torch::optim::SGDOptions(0.25));

  // The configured start, before anything ran on the device.
  EXPECT_DOUBLE_EQ(saved_scale(*strategy).scale, 8.0);

  // An infinite gradient: the step is skipped (w unchanged) and the scale backs off to 4.
  const auto w_before = w.detach().clone();
  const StepOutcome inf = step(*strategy, optimizer, w, std::numeric_limits<double>::infinity());
  EXPECT_FALSE(inf.stepped);
  EXPECT_TRUE(inf.scaled_grad.is_cuda());
  EXPECT_TRUE(torch::isinf(inf.scaled_grad).all().item<bool>());
  EXPECT_TRUE(torch::equal(w.detach(), w_before)) << "a skipped step must not move the weights";
  SavedScale s = saved_scale(*strategy);
  EXPECT_DOUBLE_EQ(s.scale, 4.0);
  EXPECT_EQ(s.clean_steps, 0);
  // scale_loss multiplies by the device's scale: the backed-off one.
  const auto one = torch::ones({}, torch::dtype(torch::kFloat).device(kCuda));
  EXPECT_DOUBLE_EQ(strategy->scale_loss(one).item<double>(), 4.0);

  // A clean step at scale 4: backward saw 3 * 4 = 12, the optimiser sees exactly 12 / 4 = 3.
  const StepOutcome first = step(*strategy, optimizer, w, 3.0);
  EXPECT_TRUE(first.stepped);
  EXPECT_TRUE(torch::equal(first.scaled_grad, torch::full({5}, 12.0f, first.scaled_grad.options())))
      << first.scaled_grad;
  EXPECT_TRUE(torch::equal(first.grad, first.scaled_grad / 4.0)) << first.grad;
  EXPECT_TRUE(torch::equal(first.grad, torch::full({5}, 3.0f, first.grad.options())));
  // SGD moved w by lr * 3 = 0.75 (exact in fp32).
  EXPECT_TRUE(torch::equal(w.detach(), w_before - 0.75));
  s = saved_scale(*strategy);
  EXPECT_DOUBLE_EQ(s.scale, 4.0);
  EXPECT_EQ(s.clean_steps, 1);

  // The second clean step completes growth_interval: the scale grows to 8, the count restarts.
  const StepOutcome second = step(*strategy, optimizer, w, 0.5);
  EXPECT_TRUE(second.stepped);
  EXPECT_TRUE(
      torch::equal(second.scaled_grad, torch::full({5}, 2.0f, second.scaled_grad.options())));
  EXPECT_TRUE(torch::equal(second.grad, torch::full({5}, 0.5f, second.grad.options())));
  s = saved_scale(*strategy);
  EXPECT_DOUBLE_EQ(s.scale, 8.0);
  EXPECT_EQ(s.clean_steps, 0);
  EXPECT_DOUBLE_EQ(strategy->scale_loss(one).item<double>(), 8.0);

  // One more clean step, so the saved count is not the trivial 0.
  const StepOutcome third = step(*strategy, optimizer, w, 2.0);
  EXPECT_TRUE(third.stepped);
  EXPECT_TRUE(
      torch::equal(third.scaled_grad, torch::full({5}, 16.0f, third.scaled_grad.options())));
  EXPECT_TRUE(torch::equal(third.grad, torch::full({5}, 2.0f, third.grad.options())));
  std::string checkpoint;
  s = saved_scale(*strategy, &checkpoint);
  EXPECT_DOUBLE_EQ(s.scale, 8.0);
  EXPECT_EQ(s.clean_steps, 1);

  // A fresh strategy configured with another start takes the saved state: its first scaled
  // backward uses 8, and its next clean step is the second of the interval, so it grows to 16.
  std::map<std::string, sdk::ParamValue> other = config;
  other["init_scale"] = 1024.0;
  auto restored = make_strategy(other);
  {
    torch::serialize::InputArchive in;
    std::istringstream stream(checkpoint);
    in.load_from(stream);
    restored->load(in);
  }
  s = saved_scale(*restored);
  EXPECT_DOUBLE_EQ(s.scale, 8.0);
  EXPECT_EQ(s.clean_steps, 1);
  auto v = torch::ones({5}, torch::dtype(torch::kFloat).device(kCuda).requires_grad(true));
  torch::optim::SGD v_optimizer({v}, torch::optim::SGDOptions(0.25));
  const StepOutcome resumed = step(*restored, v_optimizer, v, 1.0);
  EXPECT_TRUE(resumed.stepped);
  EXPECT_TRUE(
      torch::equal(resumed.scaled_grad, torch::full({5}, 8.0f, resumed.scaled_grad.options())))
      << resumed.scaled_grad;
  EXPECT_TRUE(torch::equal(resumed.grad, torch::full({5}, 1.0f, resumed.grad.options())));
  s = saved_scale(*restored);
  EXPECT_DOUBLE_EQ(s.scale, 16.0);
  EXPECT_EQ(s.clean_steps, 0);

  // And a NaN gradient backs off like an inf one.
  const StepOutcome nan = step(*restored, v_optimizer, v, std::numeric_limits<double>::quiet_NaN());
  EXPECT_FALSE(nan.stepped);
  s = saved_scale(*restored);
  EXPECT_DOUBLE_EQ(s.scale, 8.0);
  EXPECT_EQ(s.clean_steps, 0);
}

}  // namespace
}  // namespace exprun

// Mixed precision on CPU: bf16 autocast inside the forward scope only, and the dynamic loss
// scaler (forced on with loss_scaling = "always") skipping, backing off and growing like
// PyTorch's GradScaler, with its state surviving a save and load.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>

#include <exprun/sdk/torch_compat.hpp>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;

std::shared_ptr<MemoryStrategy> make(std::map<std::string, ParamValue> given) {
  const auto* info = exprun_plugin_info();
  return make_plugin<MemoryStrategy>(*info, Params::resolve(info->schema(), std::move(given)),
                                     MemoryContext{});
}

TEST(MixedPrecision, AutocastsToBf16OnlyInsideTheForwardScope) {
  auto strategy = make({});
  auto a = torch::randn({4, 4}), b = torch::randn({4, 4});
  {
    auto scope = strategy->enter_forward();
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_FALSE(compat::autocast_state(torch::kCPU).enabled);
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
}

TEST(MixedPrecision, Fp16IsRefusedOnCpu) {
  EXPECT_THROW(make({{"dtype", std::string("fp16")}}), ParamError);
}

TEST(MixedPrecision, LossScalerSkipsBacksOffGrowsAndIsSaved) {
  auto strategy = make({{"loss_scaling", std::string("always")},
                        {"init_scale", 8.0},
                        {"growth_interval", std::int64_t{2}}});
  auto w = torch::ones({3}, torch::requires_grad());
  torch::optim::SGD optimizer({w}, torch::optim::SGDOptions(0.1));

  auto step = [&](double factor) {
    optimizer.zero_grad();
    auto loss = (w * factor).sum();
    strategy->scale_loss(loss).backward();
    const bool stepped = strategy->before_step(optimizer);
    strategy->after_step();
    return stepped;
  };

  // Scale 8: the gradient is unscaled back to the true one before the step.
  EXPECT_TRUE(step(2.0));
  EXPECT_TRUE(torch::allclose(w.grad(), torch::full({3}, 2.0)));
  EXPECT_DOUBLE_EQ(strategy->scale_loss(torch::tensor(1.0)).item<double>(), 8.0);
  // Second clean step: the scale grows to 16.
  EXPECT_TRUE(step(1.0));
  EXPECT_DOUBLE_EQ(strategy->scale_loss(torch::tensor(1.0)).item<double>(), 16.0);
  // An infinite gradient skips the step and halves the scale.
  EXPECT_FALSE(step(std::numeric_limits<double>::infinity()));
  EXPECT_DOUBLE_EQ(strategy->scale_loss(torch::tensor(1.0)).item<double>(), 8.0);

  torch::serialize::OutputArchive out;
  strategy->save(out);
  std::stringstream buffer;
  out.save_to(buffer);
  auto restored = make({{"loss_scaling", std::string("always")}});
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  restored->load(in);
  EXPECT_DOUBLE_EQ(restored->scale_loss(torch::tensor(1.0)).item<double>(), 8.0);
}

TEST(MixedPrecision, Bf16LeavesTheLossUnscaledByDefault) {
  auto strategy = make({});
  EXPECT_DOUBLE_EQ(strategy->scale_loss(torch::tensor(3.0)).item<double>(), 3.0);
}

}  // namespace

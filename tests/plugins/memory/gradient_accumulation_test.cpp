// gradient_accumulation is kept for older experiment files and does nothing: the optimisation
// step splits batches itself (tests/runner/train/train_step_test.cpp). Here: it still loads,
// says in its summary that it does nothing, and leaves every hook as it finds it.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>

#include <string>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;

std::shared_ptr<MemoryStrategy> make(std::int64_t micro, std::int64_t effective) {
  const auto* info = exprun_plugin_info();
  MemoryContext context;
  context.effective_batch = effective;
  context.micro_batch = micro;
  return make_plugin<MemoryStrategy>(*info, Params::resolve(info->schema(), {}), context);
}

TEST(GradientAccumulation, SummarySaysItIsANoOp) {
  const std::string summary = exprun_plugin_info()->summary;
  EXPECT_NE(summary.find("does nothing"), std::string::npos) << summary;
  EXPECT_TRUE(exprun_plugin_info()->schema().specs().empty());
}

TEST(GradientAccumulation, LeavesEveryHookAsItFindsIt) {
  auto strategy = make(2, 6);
  EXPECT_EQ(strategy->enter_forward(), nullptr);
  const auto loss = torch::tensor(0.75);
  EXPECT_TRUE(strategy->scale_loss(loss).equal(loss));
  torch::nn::Linear layer(2, 1);
  torch::optim::SGD optimizer(layer->parameters(), torch::optim::SGDOptions(0.1));
  EXPECT_TRUE(strategy->before_step(optimizer));
}

TEST(GradientAccumulation, RefusesAMicroBatchBelowOne) { EXPECT_THROW(make(0, 4), ParamError); }

}  // namespace

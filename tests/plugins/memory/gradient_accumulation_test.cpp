// Gradient accumulation: the trainer's micro-batch weighting (each batch-mean loss times
// micro / batch) must give the full batch's gradient, uneven last micro-batch included.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;

std::unique_ptr<MemoryStrategy> make(std::int64_t micro, std::int64_t effective) {
  const auto* info = exprun_plugin_info();
  MemoryContext context;
  context.effective_batch = effective;
  context.micro_batch = micro;
  return info->make_memory(Params::resolve(info->schema(), {}), context);
}

TEST(GradientAccumulation, PartitionsIntoMicroBatchesWithAShortLastOne) {
  EXPECT_EQ(make(2, 6)->partition(6), (std::vector<std::int64_t>{2, 2, 2}));
  EXPECT_EQ(make(4, 8)->partition(7), (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(make(3, 6)->partition(2), (std::vector<std::int64_t>{2}));
  EXPECT_EQ(make(5, 5)->partition(5), (std::vector<std::int64_t>{5}));
}

// A small conv net with a batch-mean loss, gradients compared parameter by parameter.
TEST(GradientAccumulation, AccumulatedGradientEqualsFullBatchGradient) {
  torch::manual_seed(1);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 3, 3).padding(1)),
                            torch::nn::ReLU(),
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 2, 1)));
  net->to(torch::kFloat64);
  auto x = torch::randn({7, 1, 6, 5}, torch::kFloat64);
  auto y = torch::randn({7, 2, 6, 5}, torch::kFloat64);
  auto loss_of = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return (net->forward(a) - b).pow(2).mean({1, 2, 3}).mean();
  };

  net->zero_grad();
  loss_of(x, y).backward();
  std::vector<torch::Tensor> full;
  for (auto& p : net->parameters()) full.push_back(p.grad().clone());

  net->zero_grad();
  auto strategy = make(3, 7);
  std::int64_t offset = 0;
  for (std::int64_t micro : strategy->partition(7)) {
    auto loss = loss_of(x.narrow(0, offset, micro), y.narrow(0, offset, micro));
    (loss * (static_cast<double>(micro) / 7.0)).backward();
    offset += micro;
  }
  EXPECT_EQ(offset, 7);
  auto params = net->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(params[i].grad(), full[i], 1e-12, 1e-12)) << "parameter " << i;
  }
}

}  // namespace

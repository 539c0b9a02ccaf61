// The fused Adam and AdamW: LibTorch's arithmetic (to float rounding), LibTorch's state (so
// checkpoints serve both), the same bits whatever the thread count and the gradient's layout,
// and LibTorch's own step for what the loop does not take.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <exprun/sdk/torch_compat.hpp>

#include <initializer_list>
#include <memory>
#include <sstream>
#include <vector>

#include "train/fused_adam.hpp"
#include "train/optimizer_factory.hpp"
#include "train/optimizer_state.hpp"

namespace exprun {
namespace {

// A weight in channels-last (as a channels-last run's convolutions have), a matrix, a bias.
std::vector<torch::Tensor> make_parameters(torch::Dtype dtype = torch::kFloat) {
  torch::manual_seed(11);
  return {
      torch::randn({8, 4, 3, 3}, dtype).contiguous(torch::MemoryFormat::ChannelsLast),
      torch::randn({33, 17}, dtype),
      torch::randn({40000}, dtype),  // more than one parallel task's elements
      torch::randn({5}, dtype),
  };
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> out;
  for (const auto& p : parameters) out.push_back(p.detach().clone().requires_grad_(true));
  return out;
}

// Steps `optimizer` over `parameters` with gradients drawn from `seed`, step after step.
void run_steps(torch::optim::Optimizer& optimizer, std::vector<torch::Tensor>& parameters,
               int steps, std::uint64_t seed) {
  torch::manual_seed(seed);
  for (int s = 0; s < steps; ++s) {
    for (auto& p : parameters) {
      p.mutable_grad() = torch::randn(p.sizes(), p.options()).contiguous(p.suggest_memory_format());
    }
    optimizer.step();
  }
}

void expect_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6))
        << "parameter " << i << ": largest difference " << (a[i] - b[i]).abs().max().item<double>();
  }
}

void expect_same_bits(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

TEST(FusedAdam, StepsAsLibTorchsAdamDoes) {
  for (double decay : {0.0, 0.05}) {
    auto fused_parameters = make_parameters();
    auto reference_parameters = copies(fused_parameters);
    for (auto& p : fused_parameters) p.requires_grad_(true);
    const auto options = torch::optim::AdamOptions(2e-3).betas({0.8, 0.99}).weight_decay(decay);
    FusedAdam fused(fused_parameters, options);
    torch::optim::Adam reference(reference_parameters, options);
    run_steps(fused, fused_parameters, 6, 3);
    run_steps(reference, reference_parameters, 6, 3);
    SCOPED_TRACE(decay);
    expect_close(fused_parameters, reference_parameters);
    for (const auto& p : fused_parameters) {
      auto* state =
          static_cast<torch::optim::AdamParamState*>(sdk::compat::optimizer_state(fused, p));
      ASSERT_NE(state, nullptr);
      EXPECT_EQ(state->step(), 6);
      // The moments keep the parameter's layout, as LibTorch's zeros_like(Preserve) does.
      EXPECT_EQ(state->exp_avg().strides(), p.strides());
      EXPECT_EQ(state->exp_avg_sq().strides(), p.strides());
    }
    EXPECT_EQ(fused.state().size(), reference.state().size());
  }
}

TEST(FusedAdam, AdamwDecaysDecoupledAsLibTorchsAdamwDoes) {
  auto fused_parameters = make_parameters();
  auto reference_parameters = copies(fused_parameters);
  for (auto& p : fused_parameters) p.requires_grad_(true);
  const auto options = torch::optim::AdamWOptions(1e-2).weight_decay(0.1);
  FusedAdamW fused(fused_parameters, options);
  torch::optim::AdamW reference(reference_parameters, options);
  run_steps(fused, fused_parameters, 5, 4);
  run_steps(reference, reference_parameters, 5, 4);
  expect_close(fused_parameters, reference_parameters);
}

TEST(FusedAdam, SameBitsForAnyThreadCount) {
  const int threads = at::get_num_threads();
  std::vector<std::vector<torch::Tensor>> results;
  for (int count : {1, 2, 3}) {
    at::set_num_threads(count);
    auto parameters = make_parameters();
    for (auto& p : parameters) p.requires_grad_(true);
    FusedAdam fused(parameters, torch::optim::AdamOptions(1e-3).weight_decay(0.01));
    run_steps(fused, parameters, 3, 5);
    results.push_back(parameters);
  }
  at::set_num_threads(threads);
  expect_same_bits(results[0], results[1]);
  expect_same_bits(results[0], results[2]);
}

TEST(FusedAdam, GradientLaidOutUnlikeItsParameterGivesTheSameBits) {
  // A gradient bucket's view of a channels-last weight is NCHW-contiguous.
  std::vector<std::vector<torch::Tensor>> results;
  for (bool contiguous_gradient : {false, true}) {
    auto parameters = make_parameters();
    for (auto& p : parameters) p.requires_grad_(true);
    FusedAdam fused(parameters, torch::optim::AdamOptions(1e-3));
    torch::manual_seed(6);
    for (int s = 0; s < 3; ++s) {
      for (auto& p : parameters) {
        auto g = torch::randn(p.sizes());
        p.mutable_grad() = contiguous_gradient ? g : g.contiguous(p.suggest_memory_format());
      }
      fused.step();
    }
    results.push_back(parameters);
  }
  ASSERT_FALSE(results[1][0].is_contiguous());  // the weight stayed channels-last
  expect_same_bits(results[0], results[1]);
}

TEST(FusedAdam, ItsStateIsLibTorchsBothWays) {
  auto parameters = make_parameters();
  for (auto& p : parameters) p.requires_grad_(true);
  FusedAdam fused(parameters, torch::optim::AdamOptions(1e-3));
  run_steps(fused, parameters, 3, 7);

  std::stringstream saved;
  {
    torch::serialize::OutputArchive archive;
    fused.save(archive);
    archive.save_to(saved);
  }
  // Read back by LibTorch's Adam, as a run resumed with optimizer.fused = false does, and by a
  // fused one: both continue from the same moments and step count.
  auto plain_parameters = copies(parameters);
  auto fused_parameters = copies(parameters);
  torch::optim::Adam plain(plain_parameters, torch::optim::AdamOptions(1e-3));
  FusedAdam fused_again(fused_parameters, torch::optim::AdamOptions(1e-3));
  for (torch::optim::Optimizer* optimizer :
       std::initializer_list<torch::optim::Optimizer*>{&plain, &fused_again}) {
    saved.seekg(0);
    torch::serialize::InputArchive archive;
    archive.load_from(saved);
    load_optimizer_state(*optimizer, archive);
  }
  run_steps(plain, plain_parameters, 2, 8);
  run_steps(fused_again, fused_parameters, 2, 8);
  run_steps(fused, parameters, 2, 8);
  expect_same_bits(fused_parameters, parameters);  // a resume of the fused step is exact
  expect_close(plain_parameters, parameters);
  for (const auto& [key, state] : plain.state()) {
    EXPECT_EQ(static_cast<torch::optim::AdamParamState&>(*state).step(), 5) << key;
  }
}

TEST(FusedAdam, ParametersWithoutAGradientAreLeftAlone) {
  auto parameters = make_parameters();
  for (auto& p : parameters) p.requires_grad_(true);
  const auto before = copies(parameters);
  FusedAdam fused(parameters, torch::optim::AdamOptions(1e-3));
  parameters[1].mutable_grad() = torch::ones_like(parameters[1]);
  fused.step();
  EXPECT_EQ(fused.state().size(), 1u);
  EXPECT_TRUE(torch::equal(parameters[0], before[0]));
  EXPECT_FALSE(torch::equal(parameters[1], before[1]));
}

TEST(FusedAdam, DoubleParametersTakeLibTorchsOwnStep) {
  auto fused_parameters = make_parameters(torch::kDouble);
  auto reference_parameters = copies(fused_parameters);
  for (auto& p : fused_parameters) p.requires_grad_(true);
  FusedAdam fused(fused_parameters, torch::optim::AdamOptions(1e-3).weight_decay(0.01));
  torch::optim::Adam reference(reference_parameters,
                               torch::optim::AdamOptions(1e-3).weight_decay(0.01));
  run_steps(fused, fused_parameters, 3, 9);
  run_steps(reference, reference_parameters, 3, 9);
  expect_same_bits(fused_parameters, reference_parameters);
}

TEST(FusedAdam, ClosureIsEvaluatedAndItsLossReturned) {
  auto parameter = torch::full({3}, 2.0f).requires_grad_(true);
  FusedAdam fused({parameter}, torch::optim::AdamOptions(0.1));
  const torch::Tensor loss = fused.step([&] {
    fused.zero_grad();
    auto l = (parameter * parameter).sum();
    l.backward();
    return l;
  });
  EXPECT_FLOAT_EQ(loss.item<float>(), 12.0f);
  // Adam's first step moves each element by lr against its gradient's sign.
  EXPECT_TRUE(torch::allclose(parameter, torch::full({3}, 1.9f)));
}

TEST(FusedAdam, OptimizerFusedChoosesTheImplementation) {
  auto parameters = make_parameters();
  OptimizerConfig config;
  config.lr = 1e-3;
  for (const char* name : {"adam", "adamw"}) {
    config.name = name;
    config.fused = true;
    auto fused = make_optimizer(config, parameters);
    config.fused = false;
    auto plain = make_optimizer(config, parameters);
    const bool adam = config.name == "adam";
    EXPECT_NE(adam ? static_cast<void*>(dynamic_cast<FusedAdam*>(fused.get()))
                   : static_cast<void*>(dynamic_cast<FusedAdamW*>(fused.get())),
              nullptr)
        << name;
    EXPECT_EQ(dynamic_cast<FusedAdam*>(plain.get()), nullptr) << name;
    EXPECT_EQ(dynamic_cast<FusedAdamW*>(plain.get()), nullptr) << name;
  }
}

}  // namespace
}  // namespace exprun

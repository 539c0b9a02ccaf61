// The optimisation step the trainer and the tuner share: splitting a batch into micro-batches
// (uneven last one included) gives the full batch's gradient, to float tolerance.
#include "train/train_step.hpp"

#include <gtest/gtest.h>

namespace exprun {
namespace {

// Convolutions only: batch norm would make micro-batch statistics differ from the batch's.
class ConvModel : public sdk::Model {
 public:
  ConvModel() {
    conv1_ = register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 3).stride(2).padding(1)));
    conv2_ = register_module(
        "conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 2, 3).stride(2).padding(1)));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return conv2_->forward(torch::tanh(conv1_->forward(x)));
  }
  std::int64_t output_stride() const override { return 4; }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
};

class MeanSquare : public sdk::Loss {
 public:
  torch::Tensor compute(const torch::Tensor& predicted, const torch::Tensor& target,
                        const torch::Tensor&) override {
    return (predicted - target).pow(2).mean();
  }
};

std::vector<torch::Tensor> gradients_after(const std::vector<std::int64_t>& passes,
                                           double* loss = nullptr) {
  torch::manual_seed(5);
  ConvModel model;
  MeanSquare mse;
  const std::vector<std::shared_ptr<sdk::MemoryStrategy>> strategies;
  const auto weights = torch::ones({2});
  const auto images = torch::rand({6, 1, 32, 32});
  const auto targets = torch::rand({6, 2, 8, 8});
  // Learning rate 0: the step leaves the weights, so the gradients are the only change.
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.0));
  const StepResult result = optimisation_step({model, mse, strategies, weights, torch::kCPU},
                                              optimizer, passes, images, targets);
  EXPECT_TRUE(result.stepped);
  if (loss) *loss = result.loss;
  std::vector<torch::Tensor> grads;
  for (const auto& p : model.parameters()) grads.push_back(p.grad().clone());
  return grads;
}

TEST(OptimisationStep, AccumulatedGradientsEqualTheFullBatch) {
  double full_loss = 0;
  const auto full = gradients_after({6}, &full_loss);
  for (const auto& passes :
       std::vector<std::vector<std::int64_t>>{{2, 2, 2}, {4, 2}, {1, 5}, {1, 1, 1, 1, 1, 1}}) {
    double loss = 0;
    const auto split = gradients_after(passes, &loss);
    ASSERT_EQ(split.size(), full.size());
    for (std::size_t i = 0; i < full.size(); ++i) {
      EXPECT_TRUE(torch::allclose(split[i], full[i], 1e-5, 1e-7))
          << "parameter " << i << ", passes of " << passes.size() << ": max difference "
          << (split[i] - full[i]).abs().max().item<double>();
    }
    EXPECT_NEAR(loss, full_loss, 1e-6 * full_loss);
  }
}

}  // namespace
}  // namespace exprun

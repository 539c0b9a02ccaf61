// The optimisation step the trainer and the tuner share: it splits a batch into micro-batches
// itself (full ones first, then the rest), and the accumulated gradient is the full batch's, to
// float tolerance, uneven last micro-batch included.
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

std::vector<torch::Tensor> gradients_after(std::int64_t micro_batch, double* loss = nullptr) {
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
                                              optimizer, micro_batch, images, targets);
  EXPECT_TRUE(result.stepped);
  if (loss) *loss = result.loss;
  std::vector<torch::Tensor> grads;
  for (const auto& p : model.parameters()) grads.push_back(p.grad().clone());
  return grads;
}

TEST(MicroBatchPasses, FullMicroBatchesFirstThenTheRest) {
  EXPECT_EQ(micro_batch_passes(6, 2), (std::vector<std::int64_t>{2, 2, 2}));
  EXPECT_EQ(micro_batch_passes(7, 4), (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(micro_batch_passes(2, 3), (std::vector<std::int64_t>{2}));
  EXPECT_EQ(micro_batch_passes(5, 5), (std::vector<std::int64_t>{5}));
  EXPECT_EQ(micro_batch_passes(3, 1), (std::vector<std::int64_t>{1, 1, 1}));
  EXPECT_THROW(micro_batch_passes(3, 0), std::invalid_argument);
}

TEST(OptimisationStep, AccumulatedGradientsEqualTheFullBatch) {
  double full_loss = 0;
  const auto full = gradients_after(6, &full_loss);
  for (const std::int64_t micro_batch : {2, 4, 5, 1}) {
    const auto passes = micro_batch_passes(6, micro_batch);
    double loss = 0;
    const auto split = gradients_after(micro_batch, &loss);
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

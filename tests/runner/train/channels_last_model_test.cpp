// use_channels_last: every 4-d weight ends up with channels-last strides, the ambiguous ones of
// a grey input's first convolution included, so that LibTorch runs that convolution (and what
// follows it) channels-last, as PyTorch's Module.to(memory_format=torch.channels_last) does.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/stage_builder.hpp"

namespace exprun {
namespace {

struct GreyStem : torch::nn::Module {
  torch::nn::Conv2d first{nullptr};
  torch::nn::Conv2d second{nullptr};
  GreyStem() {
    first = register_module("first", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 3)));
    second = register_module("second", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 4, 1)));
  }
};

TEST(UseChannelsLast, AOneChannelWeightGetsChannelsLastStrides) {
  GreyStem model;
  const torch::Tensor before = model.first->weight.detach().clone();
  const torch::Tensor* leaf = &model.first->weight;
  use_channels_last(model);
  EXPECT_EQ(&model.first->weight, leaf);
  // [8, 1, 3, 3] in NHWC: the channel stride is 1 (contiguous() would have kept 9).
  EXPECT_EQ(model.first->weight.strides(), (std::vector<std::int64_t>{9, 1, 3, 1}));
  EXPECT_EQ(model.first->weight.suggest_memory_format(), torch::MemoryFormat::ChannelsLast);
  EXPECT_EQ(model.second->weight.suggest_memory_format(), torch::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(torch::equal(model.first->weight, before));
  EXPECT_TRUE(model.first->weight.requires_grad());
}

TEST(UseChannelsLast, AGreyInputsFirstConvolutionAnswersChannelsLast) {
  GreyStem model;
  use_channels_last(model);
  const torch::Tensor grey =
      torch::rand({2, 1, 12, 10}).contiguous(torch::MemoryFormat::ChannelsLast);
  const torch::Tensor out = model.first->forward(grey);
  EXPECT_TRUE(out.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_FALSE(out.is_contiguous());
}

}  // namespace
}  // namespace exprun

// Gradients as views into flat buckets: assignment by size in reverse parameter order, autograd
// accumulating in place across micro-batches, zero() rebinding what an optimiser replaced.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <vector>

#include "train/gradient_buckets.hpp"

namespace exprun {
namespace {

std::vector<torch::Tensor> parameters(const std::vector<std::int64_t>& sizes) {
  std::vector<torch::Tensor> out;
  for (auto n : sizes) out.push_back(torch::randn({n}).requires_grad_(true));
  return out;
}

TEST(GradientBuckets, FillsBucketsBySizeFromTheLastParameter) {
  torch::manual_seed(1);
  // 4-byte floats: 100 B buckets take 25 values. From the end: 10 + 10 | 20 | 30 (alone, over
  // the limit) | 5 + 5.
  auto params = parameters({5, 5, 30, 20, 10, 10});
  params.push_back(torch::randn({7}));  // no gradient wanted: not bucketed
  GradientBuckets buckets(params, 100);
  std::vector<std::int64_t> sizes;
  for (const auto& b : buckets.buckets()) sizes.push_back(b.numel());
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{20, 20, 30, 10}));
  EXPECT_TRUE(buckets.bound());
  EXPECT_FALSE(params.back().grad().defined());
}

TEST(GradientBuckets, BackwardAccumulatesIntoTheViews) {
  torch::manual_seed(2);
  auto params = parameters({3, 4});
  GradientBuckets buckets(params, 1 << 20);
  ASSERT_EQ(buckets.buckets().size(), 1u);
  buckets.zero();
  for (int pass = 0; pass < 2; ++pass)
    (params[0].sum() * 2 + (params[1] * params[1]).sum()).backward();
  EXPECT_TRUE(buckets.bound()) << "accumulation kept the views";
  EXPECT_TRUE(torch::allclose(params[0].grad(), torch::full({3}, 4.0)));
  EXPECT_TRUE(torch::allclose(params[1].grad(), 4 * params[1].detach()));
  // The bucket is the gradients, last parameter first.
  EXPECT_TRUE(torch::equal(buckets.buckets()[0].narrow(0, 0, 4), params[1].grad()));
  EXPECT_TRUE(torch::equal(buckets.buckets()[0].narrow(0, 4, 3), params[0].grad()));
  buckets.buckets()[0].mul_(0.5);  // what a reduction does in place
  EXPECT_TRUE(torch::allclose(params[0].grad(), torch::full({3}, 2.0)));
}

TEST(GradientBuckets, ZeroRebindsAReplacedGradient) {
  auto params = parameters({6});
  GradientBuckets buckets(params, 1 << 20);
  params[0].mutable_grad() = torch::Tensor();  // zero_grad(set_to_none) does this
  EXPECT_FALSE(buckets.bound());
  buckets.zero();
  EXPECT_TRUE(buckets.bound());
  params[0].sum().backward();
  EXPECT_TRUE(torch::equal(buckets.buckets()[0], torch::ones({6})));
}

TEST(GradientBuckets, KeepsExistingGradients) {
  auto params = parameters({2});
  params[0].mutable_grad() = torch::tensor({1.5f, -2.0f});
  GradientBuckets buckets(params, 1 << 20);
  EXPECT_TRUE(torch::equal(buckets.buckets()[0], torch::tensor({1.5f, -2.0f})));
  EXPECT_THROW(GradientBuckets(params, 0), std::invalid_argument);
}

}  // namespace
}  // namespace exprun

// Activation checkpointing: recomputed segments must give the same outputs and gradients as a
// plain forward pass, update batch-norm statistics once, replay dropout's random draws, and
// leave the random stream where a plain pass leaves it. The strategy must check part names.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>

#include <exprun/sdk/torch_compat.hpp>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;
namespace nn = torch::nn;

// Two parts, "a" (conv, batch norm, dropout) and "b" (conv on two inputs), in float64 so that
// recomputation can be compared to 1e-12.
class TwoPartModel : public Model {
 public:
  TwoPartModel() {
    a_ = register_module("a", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)),
                                             nn::BatchNorm2d(4), nn::ReLU(), nn::Dropout(0.3)));
    b_ = register_module("b", nn::Conv2d(nn::Conv2dOptions(8, 2, 1)));
    to(torch::kFloat64);
  }
  torch::Tensor forward(const torch::Tensor& images) override {
    auto run_a = [this](const torch::Tensor& x) { return a_->forward(x); };
    auto x = is_training() && is_checkpointed("a") ? checkpoint_segment(*a_, run_a, images)
                                                   : run_a(images);
    // Two inputs, one of them also used outside the segment.
    auto run_b = [this](const std::vector<torch::Tensor>& in) {
      return std::vector<torch::Tensor>{b_->forward(torch::cat({in[0], in[1].sin()}, 1))};
    };
    std::vector<torch::Tensor> in{x, x * 2};
    auto y = is_training() && is_checkpointed("b") ? checkpoint_segment(*b_, run_b, in) : run_b(in);
    return y.front() + x.sum(1, true);
  }
  std::int64_t output_stride() const override { return 1; }
  std::vector<std::string> checkpointable_parts() const override { return {"a", "b"}; }

  nn::Sequential a_{nullptr};
  nn::Conv2d b_{nullptr};
};

class NoPartsModel : public Model {
 public:
  torch::Tensor forward(const torch::Tensor& images) override { return images; }
  std::int64_t output_stride() const override { return 1; }
};

std::shared_ptr<MemoryStrategy> make_strategy(std::vector<std::string> parts) {
  const auto* info = exprun_plugin_info();
  std::map<std::string, ParamValue> given{{"parts", std::move(parts)}};
  return make_plugin<MemoryStrategy>(*info, Params::resolve(info->schema(), std::move(given)),
                                     MemoryContext{});
}

struct PassResult {
  torch::Tensor output;
  std::vector<torch::Tensor> grads;
  std::vector<torch::Tensor> buffers;
  torch::Tensor next_draw;  // the random stream after the pass
};

PassResult train_pass(const std::set<std::string>& parts) {
  torch::manual_seed(11);
  TwoPartModel model;
  model.set_checkpointed_parts(parts);
  model.train();
  auto images = torch::rand({3, 1, 6, 5}, torch::kFloat64);
  PassResult out;
  out.output = model.forward(images);
  (out.output * torch::linspace(0, 1, out.output.numel(), torch::kFloat64).view_as(out.output))
      .sum()
      .backward();
  for (const auto& p : model.parameters()) out.grads.push_back(p.grad().clone());
  for (const auto& b : model.buffers()) out.buffers.push_back(b.clone());
  out.next_draw = torch::rand({4}, torch::kFloat64);
  return out;
}

void expect_same(const PassResult& plain, const PassResult& recomputed) {
  EXPECT_TRUE(torch::allclose(plain.output, recomputed.output, 1e-12, 1e-12));
  ASSERT_EQ(plain.grads.size(), recomputed.grads.size());
  for (std::size_t i = 0; i < plain.grads.size(); ++i) {
    EXPECT_TRUE(torch::allclose(plain.grads[i], recomputed.grads[i], 1e-12, 1e-12))
        << "parameter " << i;
  }
  ASSERT_EQ(plain.buffers.size(), recomputed.buffers.size());
  for (std::size_t i = 0; i < plain.buffers.size(); ++i) {
    EXPECT_TRUE(torch::equal(plain.buffers[i], recomputed.buffers[i])) << "buffer " << i;
  }
  EXPECT_TRUE(torch::equal(plain.next_draw, recomputed.next_draw));
}

TEST(CheckpointSegment, GradientsStatisticsAndRandomStreamMatchAPlainPass) {
  const auto plain = train_pass({});
  expect_same(plain, train_pass({"a"}));
  expect_same(plain, train_pass({"b"}));
  expect_same(plain, train_pass({"a", "b"}));
}

// The stem of a network takes the image batch, which needs no gradient: its parameters must
// still get theirs.
TEST(CheckpointSegment, ParametersGetGradientsWhenNoInputNeedsOne) {
  torch::manual_seed(3);
  auto conv = nn::Conv2d(nn::Conv2dOptions(1, 2, 3));
  auto x = torch::rand({2, 1, 5, 5});
  auto y = checkpoint_segment(
      *conv, [&](const torch::Tensor& in) { return conv->forward(in); }, x);
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  ASSERT_TRUE(conv->weight.grad().defined());
  auto expected_weight_grad = conv->weight.grad().clone();
  conv->zero_grad();
  conv->forward(x).sum().backward();
  EXPECT_TRUE(torch::allclose(conv->weight.grad(), expected_weight_grad, 1e-6, 1e-6));
}

TEST(CheckpointSegment, WithoutGradientRecordingItIsAPlainCall) {
  auto conv = nn::Conv2d(nn::Conv2dOptions(1, 2, 3));
  torch::NoGradGuard no_grad;
  auto y = checkpoint_segment(
      *conv, [&](const torch::Tensor& in) { return conv->forward(in); }, torch::rand({1, 1, 4, 4}));
  EXPECT_FALSE(y.requires_grad());
  EXPECT_FALSE(y.grad_fn());
}

TEST(CheckpointSegment, ASegmentReturningItsInputIsRefused) {
  auto conv = nn::Conv2d(nn::Conv2dOptions(1, 2, 3));
  auto x = torch::rand({1, 1, 4, 4}).requires_grad_();
  EXPECT_THROW(checkpoint_segment(
                   *conv, [](const torch::Tensor& in) { return in; }, x),
               std::logic_error);
}

// The recomputation runs under the autocast state of the first pass, not the one of backward.
TEST(CheckpointSegment, RecomputesUnderTheFirstPassAutocast) {
  torch::manual_seed(5);
  auto conv = nn::Conv2d(nn::Conv2dOptions(1, 2, 3));
  auto x = torch::rand({2, 1, 6, 6});
  auto grad_of = [&](bool checkpointed) {
    conv->zero_grad();
    torch::Tensor y;
    compat::set_autocast_state(torch::kCPU, {true, at::kBFloat16});
    auto run = [&](const torch::Tensor& in) { return conv->forward(in); };
    y = checkpointed ? checkpoint_segment(*conv, run, x) : run(x);
    compat::set_autocast_state(torch::kCPU, {false, at::kBFloat16});
    at::autocast::clear_cache();
    EXPECT_EQ(y.scalar_type(), at::kBFloat16);
    y.to(torch::kFloat32).pow(2).sum().backward();
    return conv->weight.grad().clone();
  };
  EXPECT_TRUE(torch::equal(grad_of(false), grad_of(true)));
}

TEST(ActivationCheckpointing, AllChoosesEveryPartTheModelOffers) {
  TwoPartModel model;
  make_strategy({"all"})->prepare(model);
  EXPECT_TRUE(model.is_checkpointed("a"));
  EXPECT_TRUE(model.is_checkpointed("b"));
}

TEST(ActivationCheckpointing, NamedPartsOnly) {
  TwoPartModel model;
  make_strategy({"b"})->prepare(model);
  EXPECT_FALSE(model.is_checkpointed("a"));
  EXPECT_TRUE(model.is_checkpointed("b"));
}

TEST(ActivationCheckpointing, UnknownPartNamesTheOffer) {
  TwoPartModel model;
  try {
    make_strategy({"stage9"})->prepare(model);
    FAIL() << "expected ParamError";
  } catch (const ParamError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown part \"stage9\"; this model offers \"a\", \"b\""),
              std::string::npos)
        << e.what();
  }
}

TEST(ActivationCheckpointing, ModelWithoutPartsIsAnError) {
  NoPartsModel model;
  EXPECT_THROW(make_strategy({"all"})->prepare(model), ParamError);
}

TEST(ActivationCheckpointing, EmptyPartListIsAnError) {
  EXPECT_THROW(make_strategy({}), ParamError);
}

}  // namespace

// HRNetV2 built through the plugin's exported interface, checked against the published sizes.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>
#include "channels_last_batch_norm.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;
using Given = std::map<std::string, ParamValue>;

std::shared_ptr<Model> make(std::map<std::string, ParamValue> given, std::int64_t landmarks,
                            std::int64_t channels) {
  const auto* info = exprun_plugin_info();
  return make_plugin<Model>(*info, Params::resolve(info->schema(), std::move(given)),
                            ModelContext{landmarks, channels});
}

std::int64_t parameter_count(const Model& model) {
  std::int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

// The face-landmark HRNetV2-W18 (98 landmarks, WFLW) as its authors publish it.
TEST(HRNet, W18With98OutputsHasThePublishedParameterCount) {
  EXPECT_EQ(parameter_count(*make({}, 98, 3)), 9'662'528);
  // A grey input only changes the stem's first conv: 64 x 2 x 3 x 3 weights fewer.
  EXPECT_EQ(parameter_count(*make({}, 98, 1)), 9'661'376);
}

TEST(HRNet, W18MultiplyAddsAt256WithoutHeadMatchThePaper) {
  auto model = make({}, 98, 3);
  const double total = model->multiply_adds(256, 256);
  // The head: 1x1 conv 270 -> 270 and 270 -> 98 at 64 x 64 (biases are not multiply-adds).
  const double head = (270.0 * 270.0 + 270.0 * 98.0) * 64.0 * 64.0;
  EXPECT_NEAR((total - head) / 1e9, 4.29, 0.005);
}

TEST(HRNet, OutputsOneHeatmapPerLandmarkAtQuarterResolution) {
  auto model = make({{"width", std::int64_t{4}},
                     {"num_modules", std::vector<std::int64_t>{1, 1, 1}},
                     {"num_blocks", std::int64_t{1}},
                     {"stem_blocks", std::int64_t{1}}},
                    29, 1);
  model->eval();
  torch::NoGradGuard no_grad;
  auto out = model->forward(torch::rand({2, 1, 96, 64}));
  EXPECT_EQ(out.sizes(), (std::vector<std::int64_t>{2, 29, 24, 16}));
  EXPECT_EQ(model->output_stride(), 4);
}

TEST(HRNet, ParameterNamesFollowThePyTorchModel) {
  auto model = make({}, 98, 3);
  auto named = model->named_parameters();
  for (const char* name :
       {"conv1.weight", "bn1.weight", "layer1.0.conv3.weight", "layer1.0.downsample.0.weight",
        "transition1.0.0.weight", "transition1.1.0.0.weight", "transition2.2.0.0.weight",
        "stage2.0.branches.1.3.conv2.weight", "stage4.2.fuse_layers.3.0.2.0.weight",
        "stage3.3.fuse_layers.0.2.1.bias", "head.0.weight", "head.3.bias"}) {
    EXPECT_NE(named.find(name), nullptr) << name;
  }
  // Existing branches whose width does not change need no transition layer.
  EXPECT_EQ(named.find("transition2.0.0.weight"), nullptr);
}

TEST(HRNet, WidthAndDepthAreValidated) {
  const auto* info = exprun_plugin_info();
  EXPECT_THROW(Params::resolve(info->schema(), {{"width", std::int64_t{0}}}), ParamError);
  EXPECT_THROW(Params::resolve(info->schema(), {{"num_modules", std::vector<std::int64_t>{1, 2}}}),
               ParamError);
}

}  // namespace

namespace {

struct TrainPass {
  torch::Tensor output;
  std::vector<torch::Tensor> grads, buffers;
};

// One training forward/backward of a small HRNet in float64 with the given parts recomputed.
TrainPass train_pass(const std::set<std::string>& parts) {
  torch::manual_seed(2);
  auto model = make({{"width", std::int64_t{4}},
                     {"num_modules", std::vector<std::int64_t>{1, 2, 1}},
                     {"num_blocks", std::int64_t{1}},
                     {"stem_blocks", std::int64_t{1}}},
                    3, 1);
  model->to(torch::kFloat64);
  model->set_checkpointed_parts(parts);
  model->train();
  auto images = torch::rand({2, 1, 64, 48}, torch::kFloat64);
  TrainPass out;
  out.output = model->forward(images);
  out.output.pow(2).mean().backward();
  for (const auto& p : model->parameters()) out.grads.push_back(p.grad().clone());
  for (const auto& b : model->buffers()) out.buffers.push_back(b.clone());
  return out;
}

TEST(HRNet, OffersItsStagesForActivationCheckpointing) {
  EXPECT_EQ(make({}, 19, 1)->checkpointable_parts(),
            (std::vector<std::string>{"stem", "stage2", "stage3", "stage4", "head"}));
}

TEST(HRNet, CheckpointedPartsGiveTheSameOutputGradientsAndStatistics) {
  const auto plain = train_pass({});
  for (const std::set<std::string>& parts : {std::set<std::string>{"stem"},
                                             {"stage3"},
                                             {"head"},
                                             {"stem", "stage2", "stage3", "stage4", "head"}}) {
    const auto recomputed = train_pass(parts);
    const std::string which = *parts.begin() + (parts.size() > 1 ? " and more" : "");
    EXPECT_TRUE(torch::allclose(plain.output, recomputed.output, 1e-12, 1e-12)) << which;
    ASSERT_EQ(plain.grads.size(), recomputed.grads.size());
    for (std::size_t i = 0; i < plain.grads.size(); ++i) {
      ASSERT_TRUE(recomputed.grads[i].defined()) << which << ", parameter " << i;
      EXPECT_TRUE(torch::allclose(plain.grads[i], recomputed.grads[i], 1e-10, 1e-12))
          << which << ", parameter " << i;
    }
    for (std::size_t i = 0; i < plain.buffers.size(); ++i) {
      EXPECT_TRUE(torch::allclose(plain.buffers[i], recomputed.buffers[i], 1e-12, 1e-12))
          << which << ", buffer " << i;
    }
  }
}

}  // namespace

namespace {

// Starting from a state dict: the RGB weights of a small HRNet whose file has no heatmap head
// and an ImageNet-like classifier instead, loaded into a grey model (torch::pickle_save writes
// the zip format torch.save does).
TEST(HRNet, PretrainedLoadsMatchingNamesAndSumsTheFirstConvIntoGrey) {
  const Given small{{"width", std::int64_t{4}},
                    {"num_modules", std::vector<std::int64_t>{1, 1, 1}},
                    {"num_blocks", std::int64_t{1}},
                    {"stem_blocks", std::int64_t{1}}};
  torch::manual_seed(5);
  auto rgb = make(small, 7, 3);
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& p : rgb->named_parameters())
    if (p.key().rfind("head.", 0) != 0) dict.insert(p.key(), p.value().detach());
  for (const auto& b : rgb->named_buffers())
    if (b.key().rfind("head.", 0) != 0) dict.insert(b.key(), b.value());
  dict.insert("classifier.weight", torch::ones({1000, 2048}));
  const auto bytes = torch::pickle_save(torch::IValue(dict));
  const auto dir = std::filesystem::path(EXPRUN_BINARY_DIR) / "test_scratch" / "hrnet";
  std::filesystem::create_directories(dir);
  const auto file = (dir / "imagenet_like.pth").string();
  std::ofstream(file, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));

  Given with_weights = small;
  with_weights["pretrained"] = file;
  with_weights["pretrained_strict"] = false;  // the head is missing, the classifier left over
  testing::internal::CaptureStdout();
  auto grey = make(with_weights, 19, 1);
  const std::string printed = testing::internal::GetCapturedStdout();
  auto got = grey->named_parameters();
  auto want = rgb->named_parameters();
  EXPECT_TRUE(torch::allclose(got["conv1.weight"], want["conv1.weight"].sum(1, true), 1e-6, 1e-9));
  EXPECT_TRUE(torch::equal(got["stage4.0.fuse_layers.3.0.2.0.weight"],
                           want["stage4.0.fuse_layers.3.0.2.0.weight"]));
  EXPECT_NE(printed.find("models/hrnet: pretrained weights from " + file), std::string::npos);
  EXPECT_NE(printed.find("  summed over the 3 input channels into 1: conv1.weight\n"),
            std::string::npos)
      << printed;
  // head: 2 convs with bias (4) + BN weight, bias (2) and 3 buffers.
  EXPECT_NE(printed.find("  missing: head.* (9)\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("  left over: classifier.weight\n"), std::string::npos) << printed;
}

}  // namespace

namespace {

namespace fs = std::filesystem;

// The configuration of tests/fixtures/hrnet_official/make_names.py. That script, and the
// name lists it wrote (facial_w4.txt, imagenet_w4.txt), are transcribed from the official
// code's module tree (HRNet-Facial-Landmark-Detection lib/models/hrnet.py and
// HRNet-Image-Classification lib/models/cls_hrnet.py), not generated from this model: a
// naming slip here cannot make both sides agree.
const Given kOfficialFixture{{"width", std::int64_t{4}},
                             {"num_modules", std::vector<std::int64_t>{1, 2, 1}},
                             {"num_blocks", std::int64_t{2}},
                             {"stem_blocks", std::int64_t{4}}};

struct NamedShape {
  std::string name, shape;  // shape as c10 prints sizes: "[8, 256, 3, 3]"
};

// A fixture's "name [shape]" lines: what the official code's state_dict() holds.
std::vector<NamedShape> official_names(const std::string& file) {
  std::ifstream in(fs::path(EXPRUN_SOURCE_DIR) / "tests" / "fixtures" / "hrnet_official" / file);
  EXPECT_TRUE(in) << file;
  std::vector<NamedShape> out;
  for (std::string line; std::getline(in, line);) {
    const auto space = line.find(' ');
    out.push_back({line.substr(0, space), line.substr(space + 1)});
  }
  return out;
}

std::vector<std::int64_t> parse_shape(const std::string& text) {
  std::vector<std::int64_t> sizes;
  std::istringstream in(text.substr(1, text.size() - 2));
  for (std::string d; std::getline(in, d, ',');) sizes.push_back(std::stoll(d));
  return sizes;
}

// A state dict file holding a distinct tensor of the listed shape under every listed name
// (batch counters as int64 scalars, as PyTorch saves them), and those tensors.
std::map<std::string, torch::Tensor> save_named(const std::vector<NamedShape>& names,
                                                const fs::path& file) {
  torch::manual_seed(11);
  std::map<std::string, torch::Tensor> tensors;
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, shape] : names) {
    const auto t = name.size() > 19 && name.ends_with("num_batches_tracked")
                       ? torch::tensor(std::int64_t{17})
                       : torch::rand(parse_shape(shape)) + 0.5;  // > 0: valid running_var
    tensors[name] = t;
    dict.insert(name, t);
  }
  const auto bytes = torch::pickle_save(torch::IValue(dict));
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return tensors;
}

fs::path scratch(const std::string& name) {
  return fs::path(EXPRUN_BINARY_DIR) / "test_scratch" / "hrnet" / name;
}

// The official module tree, names and shapes, written out from the reference code: every
// tensor loads strictly, none is missing, none left over, and each holds the file's values.
TEST(HRNet, OfficialStateDictLoadsStrictlyWithEveryTensorMatched) {
  const auto names = official_names("facial_w4.txt");
  ASSERT_EQ(names.size(), 603u);
  const auto file = scratch("official_facial.pth");
  const auto tensors = save_named(names, file);

  Given given = kOfficialFixture;
  given["pretrained"] = file.string();  // pretrained_strict is true by default
  testing::internal::CaptureStdout();
  auto model = make(given, 5, 3);
  const std::string printed = testing::internal::GetCapturedStdout();
  EXPECT_EQ(printed, "models/hrnet: pretrained weights from " + file.string() +
                         ": 603 tensors matched, 0 missing (left as initialised), 0 left over "
                         "(ignored)\n");
  std::size_t compared = 0;
  auto expect_loaded = [&](const std::string& name, const torch::Tensor& got) {
    auto it = tensors.find(name);
    ASSERT_NE(it, tensors.end()) << name << " is not in the official state dict";
    EXPECT_TRUE(torch::equal(got, it->second.to(got.dtype()))) << name;
    ++compared;
  };
  for (const auto& p : model->named_parameters()) expect_loaded(p.key(), p.value());
  for (const auto& b : model->named_buffers()) expect_loaded(b.key(), b.value());
  EXPECT_EQ(compared, names.size());
}

// The ImageNet classification HRNet (same backbone, classification head instead of the
// landmark head) into a grey model: strict once the parts meant to differ are ignored.
TEST(HRNet, ImageNetStateDictLoadsStrictlyWithTheHeadsIgnored) {
  const auto names = official_names("imagenet_w4.txt");
  const auto file = scratch("official_imagenet.pth");
  const auto tensors = save_named(names, file);
  Given given = kOfficialFixture;
  given["pretrained"] = file.string();

  // Strict without pretrained_ignore: the error lists the first names of each kind.
  try {
    make(given, 5, 1);
    FAIL() << "an ImageNet state dict loaded strictly without pretrained_ignore";
  } catch (const StateDictError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(file.string() + ": the file does not match the model"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("9 missing (in the model, not in the file): head.0.weight, "
                           "head.0.bias, head.1.weight, head.1.bias, head.3.weight, ... (4 more)"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("left over (in the file, not in the model): "
                           "incre_modules.0.0.conv1.weight"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("[\"head\", \"incre_modules\", \"downsamp_modules\", "
                           "\"final_layer\", \"classifier\"]"),
              std::string::npos)
        << message;
  }

  given["pretrained_ignore"] = std::vector<std::string>{"incre_modules", "downsamp_modules",
                                                        "final_layer", "classifier", "head"};
  testing::internal::CaptureStdout();
  auto model = make(given, 5, 1);
  const std::string printed = testing::internal::GetCapturedStdout();
  // 603 names less the head's 9 match; conv1.weight among them, summed into grey.
  EXPECT_NE(printed.find(": 594 tensors matched, 0 missing (left as initialised), 0 left over "
                         "(ignored), 135 under pretrained_ignore\n"
                         "  summed over the 3 input channels into 1: conv1.weight\n"),
            std::string::npos)
      << printed;
  auto got = model->named_parameters();
  EXPECT_TRUE(torch::allclose(got["conv1.weight"], tensors.at("conv1.weight").sum(1, true)));
  EXPECT_TRUE(
      torch::equal(got["transition3.3.0.0.weight"], tensors.at("transition3.3.0.0.weight")));
}

// A small HRNet built with `given`: every batch norm has `momentum`, and after one training
// batch bn1's running mean is momentum x the batch mean and its running variance
// (1 - momentum) x 1 plus momentum x the batch's unbiased variance.
void expect_running_statistics_move_by(double momentum, Given given) {
  given.insert({{"width", std::int64_t{4}},
                {"num_modules", std::vector<std::int64_t>{1, 1, 1}},
                {"num_blocks", std::int64_t{1}},
                {"stem_blocks", std::int64_t{1}}});
  auto model = make(std::move(given), 3, 1);
  std::size_t batch_norms = 0;
  for (const auto& m : model->modules(/*include_self=*/false)) {
    if (auto* bn = dynamic_cast<exprun::hrnet::ChannelsLastBatchNorm2dImpl*>(m.get())) {
      ++batch_norms;
      EXPECT_EQ(bn->options.momentum(), momentum);
    }
  }
  EXPECT_GT(batch_norms, 20u);

  model->to(torch::kFloat64);
  model->train();
  torch::manual_seed(4);
  const auto images = torch::rand({2, 1, 32, 32}, torch::kFloat64);
  torch::Tensor conv1_out;
  {
    torch::NoGradGuard no_grad;
    conv1_out = torch::nn::functional::conv2d(
        images, model->named_parameters()["conv1.weight"],
        torch::nn::functional::Conv2dFuncOptions().stride(2).padding(1));
    model->forward(images);
  }
  auto buffers = model->named_buffers();
  const auto mean = conv1_out.mean({0, 2, 3});
  const auto variance = conv1_out.var({0, 2, 3}, /*unbiased=*/true);
  EXPECT_TRUE(torch::allclose(buffers["bn1.running_mean"], momentum * mean, 1e-9, 1e-15));
  EXPECT_TRUE(torch::allclose(buffers["bn1.running_var"], (1 - momentum) + momentum * variance,
                              1e-9, 1e-15));
}

// BN_MOMENTUM = 0.01 in the reference code: after one training batch the running mean is 1%
// of the batch mean and the running variance 99% of 1 plus 1% of the batch variance.
TEST(HRNet, BatchNormRunningStatisticsMoveOnePercentPerBatch) {
  expect_running_statistics_move_by(0.01, {});
}

// bn_momentum sets every batch norm's momentum, and the running statistics move by it.
TEST(HRNet, BatchNormMomentumParameterSetsEveryBatchNorm) {
  expect_running_statistics_move_by(0.25, {{"bn_momentum", 0.25}});
}

TEST(HRNet, BatchNormMomentumOutsideZeroToOneIsRefused) {
  for (const double momentum : {-0.1, 1.5}) {
    EXPECT_THROW(make({{"width", std::int64_t{4}}, {"bn_momentum", momentum}}, 3, 1), ParamError)
        << momentum;
  }
}

}  // namespace

// exprun's batch norm for channels-last tensors in training (channels_last_batch_norm.hpp),
// against LibTorch's batch norm computed in double precision.
namespace {

using exprun::hrnet::channels_last_batch_norm_train;
using exprun::hrnet::ChannelsLastBatchNorm2d;
using exprun::hrnet::uses_channels_last_kernel;

struct BatchNormResult {
  torch::Tensor output, grad_input, grad_weight, grad_bias, running_mean, running_var;
};

torch::Tensor channels_last(const torch::Tensor& t) {
  return t.contiguous(torch::MemoryFormat::ChannelsLast);
}

// One training-mode batch norm forward and backward of `input` with upstream gradient `grad`,
// by exprun's kernel (own = true) or by LibTorch in double precision.
BatchNormResult batch_norm_pass(const torch::Tensor& input, const torch::Tensor& grad,
                                double momentum, bool own) {
  const auto channels = input.size(1);
  const auto type = own ? torch::kFloat : torch::kDouble;
  torch::manual_seed(11);
  auto x = (own ? channels_last(input) : input.to(type)).detach().requires_grad_();
  auto weight = (torch::rand({channels}) + 0.5).to(type).requires_grad_();
  auto bias = torch::randn({channels}).to(type).requires_grad_();
  auto running_mean = torch::randn({channels}).to(type);
  auto running_var = (torch::rand({channels}) + 0.5).to(type);
  const auto output =
      own ? channels_last_batch_norm_train(x, weight, bias, running_mean, running_var, momentum,
                                           1e-5)
          : torch::nn::functional::batch_norm(x, running_mean, running_var,
                                              torch::nn::functional::BatchNormFuncOptions()
                                                  .weight(weight)
                                                  .bias(bias)
                                                  .training(true)
                                                  .momentum(momentum)
                                                  .eps(1e-5));
  output.backward(own ? channels_last(grad) : grad.to(type));
  return {output.detach().to(torch::kDouble), x.grad().to(torch::kDouble),
          weight.grad().to(torch::kDouble),   bias.grad().to(torch::kDouble),
          running_mean.to(torch::kDouble),    running_var.to(torch::kDouble)};
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>() / (want.abs().max().item<double>() + 1e-30);
}

TEST(ChannelsLastBatchNorm, MatchesLibTorchInDoublePrecision) {
  // HRNet-W18's channel counts, one that fills no vector, and row counts that are and are not
  // a multiple of the kernel's block of rows; inputs off zero, as activations are.
  const std::vector<std::vector<std::int64_t>> shapes = {
      {4, 18, 16, 16}, {2, 36, 9, 7}, {3, 5, 11, 13}, {2, 144, 4, 4}, {1, 270, 33, 3}};
  for (const auto& shape : shapes) {
    torch::manual_seed(3);
    const auto input = torch::randn(shape) * 3.0 + 2.0;
    const auto grad = torch::randn(shape);
    for (const double momentum : {0.01, 0.1}) {
      const auto own = batch_norm_pass(input, grad, momentum, true);
      const auto reference = batch_norm_pass(input, grad, momentum, false);
      const std::string where =
          "shape " + torch::str(input.sizes()) + ", momentum " + std::to_string(momentum);
      EXPECT_LT(relative_error(own.output, reference.output), 1e-6) << where;
      EXPECT_LT(relative_error(own.grad_input, reference.grad_input), 1e-5) << where;
      EXPECT_LT(relative_error(own.grad_weight, reference.grad_weight), 1e-6) << where;
      EXPECT_LT(relative_error(own.grad_bias, reference.grad_bias), 1e-6) << where;
      EXPECT_LT(relative_error(own.running_mean, reference.running_mean), 1e-6) << where;
      EXPECT_LT(relative_error(own.running_var, reference.running_var), 1e-6) << where;
    }
  }
}

TEST(ChannelsLastBatchNorm, GivesTheSameBitsWhateverTheNumberOfThreads) {
  torch::manual_seed(5);
  const auto input = torch::randn({4, 18, 40, 40}) + 1.0;
  const auto grad = torch::randn({4, 18, 40, 40});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = batch_norm_pass(input, grad, 0.01, true);
  at::set_num_threads(3);
  const auto three = batch_norm_pass(input, grad, 0.01, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one.output, three.output));
  EXPECT_TRUE(torch::equal(one.grad_input, three.grad_input));
  EXPECT_TRUE(torch::equal(one.grad_weight, three.grad_weight));
  EXPECT_TRUE(torch::equal(one.running_var, three.running_var));
}

// The batch norm followed by a ReLU, or by a residual's sum and a ReLU, in one pass
// (fused = true) or as the kernel followed by LibTorch's own ops; grad_residual is undefined
// without a residual.
struct FusedResult {
  BatchNormResult bn;
  torch::Tensor grad_residual;
};

FusedResult batch_norm_then(const torch::Tensor& input, const torch::Tensor& residual,
                            const torch::Tensor& grad, bool fused) {
  using exprun::hrnet::BatchNormThen;
  const auto channels = input.size(1);
  torch::manual_seed(11);
  auto x = channels_last(input).detach().requires_grad_();
  auto r = residual.defined() ? channels_last(residual).detach().requires_grad_() : residual;
  auto weight = (torch::rand({channels}) + 0.5).requires_grad_();
  auto bias = torch::randn({channels}).requires_grad_();
  auto running_mean = torch::randn({channels});
  auto running_var = torch::rand({channels}) + 0.5;
  torch::Tensor output;
  if (fused) {
    output = channels_last_batch_norm_train(
        x, weight, bias, running_mean, running_var, 0.1, 1e-5,
        r.defined() ? BatchNormThen::kAddAndRelu : BatchNormThen::kRelu, r);
  } else {
    output = channels_last_batch_norm_train(x, weight, bias, running_mean, running_var, 0.1, 1e-5);
    output = torch::relu(r.defined() ? output + r : output);
  }
  output.backward(channels_last(grad));
  return {{output.detach(), x.grad(), weight.grad(), bias.grad(), running_mean, running_var},
          r.defined() ? r.grad() : torch::Tensor()};
}

bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(),
                     a.numel() * a.element_size()) == 0;
}

TEST(ChannelsLastBatchNorm, FusedReluAndResidualGiveTheBitsOfTheSeparateOps) {
  // Half the outputs negative, so the ReLU's mask matters in both directions; the gradient has
  // a NaN-free mix of signs.
  const std::vector<std::vector<std::int64_t>> shapes = {
      {4, 18, 16, 16}, {2, 36, 9, 7}, {3, 5, 11, 13}, {1, 270, 33, 3}};
  for (const auto& shape : shapes) {
    torch::manual_seed(7);
    const auto input = torch::randn(shape) * 2.0 + 1.0;
    const auto residual = torch::randn(shape);
    const auto grad = torch::randn(shape);
    for (const bool with_residual : {false, true}) {
      const auto r = with_residual ? residual : torch::Tensor();
      const auto fused = batch_norm_then(input, r, grad, true);
      const auto separate = batch_norm_then(input, r, grad, false);
      const std::string where =
          "shape " + torch::str(input.sizes()) + (with_residual ? ", residual" : "");
      EXPECT_TRUE(fused.bn.output.is_contiguous(torch::MemoryFormat::ChannelsLast)) << where;
      EXPECT_TRUE(same_bits(fused.bn.output, separate.bn.output)) << where;
      EXPECT_TRUE(same_bits(fused.bn.grad_input, separate.bn.grad_input)) << where;
      EXPECT_TRUE(same_bits(fused.bn.grad_weight, separate.bn.grad_weight)) << where;
      EXPECT_TRUE(same_bits(fused.bn.grad_bias, separate.bn.grad_bias)) << where;
      EXPECT_TRUE(same_bits(fused.bn.running_mean, separate.bn.running_mean)) << where;
      EXPECT_TRUE(same_bits(fused.bn.running_var, separate.bn.running_var)) << where;
      if (with_residual) {
        EXPECT_TRUE(same_bits(fused.grad_residual, separate.grad_residual)) << where;
      }
      const auto zeros = (fused.bn.output == 0).to(torch::kDouble).mean().item<double>();
      EXPECT_GT(zeros, 0.1) << where;
      EXPECT_LT(zeros, 0.9) << where;
    }
  }
}

TEST(ChannelsLastBatchNorm, FusedReluLetsNanThroughAsTorchReluDoes) {
  auto input = channels_last(torch::randn({2, 4, 3, 3}));
  input[1][2][0][0] = std::numeric_limits<float>::quiet_NaN();
  auto weight = torch::ones({4});
  auto bias = torch::zeros({4});
  auto mean = torch::zeros({4});
  auto var = torch::ones({4});
  const auto out = channels_last_batch_norm_train(input, weight, bias, mean, var, 0.1, 1e-5,
                                                  exprun::hrnet::BatchNormThen::kRelu);
  // Channel 2's statistics are NaN, so all its outputs are; the other channels are finite.
  EXPECT_TRUE(torch::isnan(out.select(1, 2)).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(out.select(1, 1)).all().item<bool>());
}

TEST(ChannelsLastBatchNorm, FusedPathsRefuseAMismatchedResidual) {
  using exprun::hrnet::BatchNormThen;
  const auto input = channels_last(torch::randn({2, 4, 3, 3}));
  auto weight = torch::ones({4});
  auto bias = torch::zeros({4});
  auto mean = torch::zeros({4});
  auto var = torch::ones({4});
  EXPECT_THROW(channels_last_batch_norm_train(input, weight, bias, mean, var, 0.1, 1e-5,
                                              BatchNormThen::kAddAndRelu),
               c10::Error);
  EXPECT_THROW(channels_last_batch_norm_train(input, weight, bias, mean, var, 0.1, 1e-5,
                                              BatchNormThen::kRelu, input),
               c10::Error);
  EXPECT_THROW(channels_last_batch_norm_train(input, weight, bias, mean, var, 0.1, 1e-5,
                                              BatchNormThen::kAddAndRelu,
                                              channels_last(torch::randn({2, 4, 3, 4}))),
               c10::Error);
  // The module falls back to the separate ops for a residual the kernel cannot take.
  auto module = ChannelsLastBatchNorm2d(torch::nn::BatchNorm2dOptions(4));
  const auto nchw_residual = torch::randn({2, 4, 3, 3});
  const auto out = module->forward_add_relu(input, nchw_residual);
  EXPECT_EQ(out.sizes(), input.sizes());
  EXPECT_GE(out.min().item<float>(), 0.f);
}

TEST(ChannelsLastBatchNorm, TakesOnlyChannelsLastFloatCpuTensors) {
  const auto nchw = torch::rand({2, 3, 4, 5});
  EXPECT_TRUE(uses_channels_last_kernel(channels_last(nchw)));
  EXPECT_FALSE(uses_channels_last_kernel(nchw));
  EXPECT_FALSE(uses_channels_last_kernel(channels_last(nchw).to(torch::kDouble)));
  EXPECT_FALSE(uses_channels_last_kernel(channels_last(nchw).to(torch::kBFloat16)));
  // One pixel per channel is contiguous both ways: LibTorch's kernel.
  EXPECT_FALSE(uses_channels_last_kernel(channels_last(torch::rand({2, 3, 1, 1}))));
  EXPECT_FALSE(uses_channels_last_kernel(torch::rand({2, 3, 4})));
}

TEST(ChannelsLastBatchNorm, RefusesOneValuePerChannelAsLibTorchDoes) {
  auto weight = torch::ones({3});
  auto bias = torch::zeros({3});
  auto mean = torch::zeros({3});
  auto var = torch::ones({3});
  // [1, 3, 1, 2] in channels-last: one row per pixel, two rows, fine; [1, 3, 1, 1] is not taken.
  EXPECT_NO_THROW(channels_last_batch_norm_train(channels_last(torch::rand({1, 3, 1, 2})), weight,
                                                 bias, mean, var, 0.1, 1e-5));
  EXPECT_THROW(
      channels_last_batch_norm_train(torch::rand({1, 3, 1, 2}), weight, bias, mean, var, 0.1, 1e-5),
      c10::Error);
  EXPECT_THROW(channels_last_batch_norm_train(channels_last(torch::rand({1, 3, 2, 2})),
                                              weight.narrow(0, 0, 2), bias, mean, var, 0.1, 1e-5),
               c10::Error);
}

// The module: NCHW tensors and evaluation keep LibTorch's batch norm to the bit; channels-last
// training counts the batch, as torch::nn::BatchNorm2d does.
TEST(ChannelsLastBatchNorm, ModuleKeepsLibTorchsKernelForEverythingElse) {
  torch::manual_seed(8);
  auto ours = ChannelsLastBatchNorm2d(torch::nn::BatchNorm2dOptions(6).momentum(0.01));
  auto theirs = torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(6).momentum(0.01));
  std::ostringstream printed_ours, printed_theirs;
  printed_ours << *ours;
  printed_theirs << *theirs;
  EXPECT_EQ(printed_ours.str(), printed_theirs.str());
  EXPECT_EQ(ours->named_parameters().keys(), theirs->named_parameters().keys());
  EXPECT_EQ(ours->named_buffers().keys(), theirs->named_buffers().keys());

  const auto input = torch::randn({3, 6, 7, 5}) + 0.5;
  EXPECT_TRUE(torch::equal(ours(input), theirs(input)));
  EXPECT_TRUE(torch::equal(ours->running_var, theirs->running_var));
  EXPECT_EQ(ours->num_batches_tracked.item<std::int64_t>(), 1);

  const auto trained = ours(channels_last(input));
  EXPECT_TRUE(trained.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::allclose(trained, theirs(channels_last(input)), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(ours->running_var, theirs->running_var, 1e-6, 1e-7));
  EXPECT_EQ(ours->num_batches_tracked.item<std::int64_t>(), 2);

  ours->eval();
  theirs->eval();
  ours->running_mean.detach().copy_(theirs->running_mean);
  ours->running_var.detach().copy_(theirs->running_var);
  EXPECT_TRUE(torch::equal(ours(channels_last(input)), theirs(channels_last(input))));
  EXPECT_EQ(ours->num_batches_tracked.item<std::int64_t>(), 2);
}

// The whole model in channels-last against the same model in NCHW: same outputs, gradients
// and running statistics up to float rounding.
TEST(ChannelsLastBatchNorm, ChannelsLastHRNetTrainsAsTheNchwOne) {
  const Given small = {{"width", std::int64_t{6}},
                       {"num_modules", std::vector<std::int64_t>{1, 1, 1}},
                       {"num_blocks", std::int64_t{1}},
                       {"stem_blocks", std::int64_t{1}}};
  torch::manual_seed(21);
  auto nchw = make(small, 5, 1);
  auto nhwc = make(small, 5, 1);
  {
    torch::NoGradGuard no_grad;
    auto from = nchw->named_parameters();
    for (auto& p : nhwc->named_parameters()) {
      p.value().set_data(from[p.key()].detach().clone());
      if (p.value().dim() == 4) p.value().set_data(channels_last(p.value()));
    }
  }
  const auto images = torch::rand({2, 1, 64, 48});
  const auto out_nchw = nchw->forward(images);
  const auto out_nhwc = nhwc->forward(channels_last(images));
  EXPECT_LT(relative_error(out_nhwc.to(torch::kDouble), out_nchw.to(torch::kDouble)), 1e-4);
  out_nchw.square().sum().backward();
  out_nhwc.square().sum().backward();
  // A gradient that is zero but for rounding (a conv bias right before a batch norm) is
  // compared against the largest gradient of the model.
  auto grads_nchw = nchw->named_parameters();
  double largest = 0;
  for (const auto& p : grads_nchw)
    largest = std::max(largest, p.value().grad().abs().max().item<double>());
  for (const auto& p : nhwc->named_parameters()) {
    const auto& want = grads_nchw[p.key()].grad();
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    const double scale = std::max(want.abs().max().item<double>(), 1e-4 * largest);
    EXPECT_LT((p.value().grad() - want).abs().max().item<double>() / scale, 1e-3) << p.key();
  }
  auto buffers_nchw = nchw->named_buffers();
  for (const auto& b : nhwc->named_buffers()) {
    if (b.value().is_floating_point()) {
      EXPECT_TRUE(torch::allclose(b.value(), buffers_nchw[b.key()], 1e-4, 1e-6)) << b.key();
    } else {
      EXPECT_TRUE(torch::equal(b.value(), buffers_nchw[b.key()])) << b.key();
    }
  }
}

}  // namespace

// HRNetV2 built through the plugin's exported interface, checked against the published sizes.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>

#include <filesystem>
#include <fstream>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;
using Given = std::map<std::string, ParamValue>;

std::shared_ptr<Model> make(std::map<std::string, ParamValue> given, std::int64_t landmarks,
                            std::int64_t channels) {
  const auto* info = exprun_plugin_info();
  return info->make_model(Params::resolve(info->schema(), std::move(given)),
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
        "transition1.0.0.weight", "transition1.1.0.weight", "transition2.2.0.weight",
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

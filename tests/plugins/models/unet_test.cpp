// U-Net built through the plugin's exported interface, with sizes worked out by hand, and the
// SDK's state-dict loading (read_state_dict / load_state_dict) through its `pretrained` option.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>

#include <filesystem>
#include <fstream>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;
namespace fs = std::filesystem;

using Given = std::map<std::string, ParamValue>;

std::shared_ptr<Model> make(Given given, std::int64_t landmarks = 3, std::int64_t channels = 1) {
  const auto* info = exprun_plugin_info();
  return make_plugin<Model>(*info, Params::resolve(info->schema(), std::move(given)),
                            ModelContext{landmarks, channels});
}

// width 2, depth 2: levels of 2, 4 and 8 channels.
Given tiny(Given extra = {}) {
  Given g{
      {"width", std::int64_t{2}}, {"depth", std::int64_t{2}}, {"output_stride", std::int64_t{1}}};
  for (auto& [k, v] : extra) g[k] = v;
  return g;
}

std::int64_t parameter_count(const Model& model) {
  std::int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

std::vector<std::int64_t> output_shape(Model& model, std::int64_t h, std::int64_t w) {
  model.eval();
  torch::NoGradGuard no_grad;
  return model.forward(torch::rand({2, 1, h, w})).sizes().vec();
}

TEST(UNet, HeatmapsAtTheOutputStride) {
  for (bool bilinear : {false, true}) {
    for (std::int64_t stride : {1, 2, 4}) {
      auto model = make(tiny({{"output_stride", stride}, {"bilinear", bilinear}}), 5);
      EXPECT_EQ(model->output_stride(), stride);
      EXPECT_EQ(output_shape(*model, 16, 24),
                (std::vector<std::int64_t>{2, 5, 16 / stride, 24 / stride}))
          << "stride " << stride << (bilinear ? " bilinear" : " transposed");
    }
  }
  // The defaults: the paper's U-Net (width 64, depth 4), heatmaps at 1/4 like HRNet.
  EXPECT_EQ(make({})->output_stride(), 4);
}

TEST(UNet, RejectsAStrideBeyondItsDepthAndAnInputNotDivisibleBy2PowDepth) {
  EXPECT_THROW(make(tiny({{"output_stride", std::int64_t{8}}})), std::invalid_argument);
  EXPECT_THROW(make(tiny({{"output_stride", std::int64_t{3}}})), std::invalid_argument);
  auto model = make(tiny());
  try {
    output_shape(*model, 18, 24);
    FAIL() << "an 18-pixel-high input passed a depth-2 U-Net";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("divisible by 2^depth = 4; got 24x18"), std::string::npos)
        << e.what();
  }
}

// width 2, depth 2, 1 input channel, 3 heatmaps, by module (3x3 convs without bias under BN;
// BN: weight + bias; transposed 2x2 convs and the 1x1 head with bias):
//   inc   1->2->2      18 + 4 + 36 + 4                 =   62
//   down1 2->4->4      72 + 8 + 144 + 8                =  232
//   down2 4->8->8      288 + 16 + 576 + 16             =  896
//   up1   T 8->4 (128 + 4), 8->4->4 (288 + 8 + 144 + 8) =  580
//   up2   T 4->2 (32 + 2), 4->2->2 (72 + 4 + 36 + 4)    =  150
//   outc  2->3         6 + 3                           =    9   total 1929
// Without batch norm each 3x3 conv has a bias instead of BN's 2 per channel: 1929 - 40 = 1889.
// Bilinear halves the bottleneck and the decoder: down2 4->4->4 (144+8+144+8 = 304), up1
// 8->4->2 (288+8+72+4 = 372), up2 4->2->2 (116), so 62 + 232 + 304 + 372 + 116 + 9 = 1095.
TEST(UNet, ParameterCountsWorkedByHand) {
  EXPECT_EQ(parameter_count(*make(tiny())), 1929);
  EXPECT_EQ(parameter_count(*make(tiny({{"batch_norm", false}}))), 1889);
  EXPECT_EQ(parameter_count(*make(tiny({{"bilinear", true}}))), 1095);
  // Stride 4 leaves out both decoder levels: the head reads the 8-channel bottleneck.
  EXPECT_EQ(parameter_count(*make(tiny({{"output_stride", std::int64_t{4}}}))),
            62 + 232 + 896 + 8 * 3 + 3);
}

// At 8x8 the levels have 64, 16 and 4 pixels; weights x output pixels, a transposed conv's
// weights x input pixels:
//   inc (18 + 36) x 64, down1 (72 + 144) x 16, down2 (288 + 576) x 4: 3456 each
//   up1 128 x 4 + (288 + 144) x 16 = 7424; up2 32 x 16 + (72 + 36) x 64 = 7424; outc 6 x 64
TEST(UNet, MultiplyAddsWorkedByHand) {
  EXPECT_DOUBLE_EQ(make(tiny())->multiply_adds(8, 8), 3 * 3456 + 2 * 7424 + 384);
  EXPECT_DOUBLE_EQ(make(tiny({{"output_stride", std::int64_t{4}}}))->multiply_adds(8, 8),
                   3 * 3456 + 8 * 3 * 4);
  // Twice the height, twice every level's pixels.
  EXPECT_DOUBLE_EQ(make(tiny())->multiply_adds(16, 8), 2 * (3 * 3456 + 2 * 7424 + 384));
}

TEST(UNet, ParameterNamesFollowPytorchUNet) {
  auto named = make({{"output_stride", std::int64_t{1}}}, 2, 3)->named_parameters();
  for (const char* name :
       {"inc.double_conv.0.weight", "inc.double_conv.1.weight",
        "down1.maxpool_conv.1.double_conv.3.weight", "down4.maxpool_conv.1.double_conv.0.weight",
        "up1.up.weight", "up1.up.bias", "up4.conv.double_conv.4.bias", "outc.conv.weight",
        "outc.conv.bias"}) {
    EXPECT_NE(named.find(name), nullptr) << name;
  }
  // milesial/Pytorch-UNet's UNet(n_channels=3, n_classes=2, bilinear=False): 31,037,698
  // parameters (inc 38,848; down1-4 221,696 + 885,760 + 3,540,992 + 14,159,872; up1-4
  // 9,177,600 + 2,295,040 + 574,080 + 143,680; outc 130).
  EXPECT_EQ(named["down4.maxpool_conv.1.double_conv.0.weight"].sizes(),
            (std::vector<std::int64_t>{1024, 512, 3, 3}));
  std::int64_t total = 0;
  for (const auto& p : named) total += p.value().numel();
  EXPECT_EQ(total, 31'037'698);
}

struct TrainPass {
  torch::Tensor output;
  std::vector<torch::Tensor> grads, buffers;
};

TrainPass train_pass(const std::set<std::string>& parts) {
  torch::manual_seed(3);
  auto model = make(tiny());
  model->to(torch::kFloat64);
  model->set_checkpointed_parts(parts);
  model->train();
  auto images = torch::rand({2, 1, 16, 12}, torch::kFloat64);
  TrainPass out;
  out.output = model->forward(images);
  out.output.pow(2).mean().backward();
  for (const auto& p : model->parameters()) out.grads.push_back(p.grad().clone());
  for (const auto& b : model->buffers()) out.buffers.push_back(b.clone());
  return out;
}

TEST(UNet, CheckpointedPartsGiveTheSameOutputGradientsAndStatistics) {
  EXPECT_EQ(make(tiny())->checkpointable_parts(),
            (std::vector<std::string>{"inc", "down1", "down2", "up1", "up2"}));
  EXPECT_EQ(make(tiny({{"output_stride", std::int64_t{2}}}))->checkpointable_parts(),
            (std::vector<std::string>{"inc", "down1", "down2", "up1"}));
  const auto plain = train_pass({});
  for (const std::set<std::string>& parts : {std::set<std::string>{"inc"},
                                             {"down2"},
                                             {"up1"},
                                             {"inc", "down1", "down2", "up1", "up2"}}) {
    const auto recomputed = train_pass(parts);
    const std::string which = *parts.begin() + (parts.size() > 1 ? " and more" : "");
    EXPECT_TRUE(torch::allclose(plain.output, recomputed.output, 1e-12, 1e-12)) << which;
    ASSERT_EQ(plain.grads.size(), recomputed.grads.size());
    for (std::size_t i = 0; i < plain.grads.size(); ++i) {
      EXPECT_TRUE(torch::allclose(plain.grads[i], recomputed.grads[i], 1e-10, 1e-12))
          << which << ", parameter " << i;
    }
    for (std::size_t i = 0; i < plain.buffers.size(); ++i) {
      EXPECT_TRUE(torch::allclose(plain.buffers[i], recomputed.buffers[i], 1e-12, 1e-12))
          << which << ", buffer " << i;
    }
  }
}

// ---------------------------------------------------------------- pretrained state dicts

fs::path scratch(const std::string& name) {
  auto dir = fs::path(EXPRUN_BINARY_DIR) / "test_scratch" / "unet";
  fs::create_directories(dir);
  return dir / name;
}

// A state dict written by LibTorch's torch::pickle_save, the C++ counterpart of torch.save
// (zip format), from `model`'s parameters and buffers, with `drop` left out and `extra` added.
fs::path save_state_dict(const Model& model, const std::string& name, const std::string& drop,
                         std::map<std::string, torch::Tensor> extra = {}) {
  auto keep = [&](const std::string& key) { return drop.empty() || key.rfind(drop, 0) != 0; };
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& p : model.named_parameters())
    if (keep(p.key())) dict.insert(p.key(), p.value().detach());
  for (const auto& b : model.named_buffers())
    if (keep(b.key())) dict.insert(b.key(), b.value());
  for (auto& [k, v] : extra) dict.insert(k, v);
  const auto bytes = torch::pickle_save(torch::IValue(dict));
  const auto path = scratch(name);
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

TEST(StateDict, PretrainedMatchesByNameSumsRgbIntoGreyAndReportsTheRest) {
  torch::manual_seed(1);
  auto source = make(tiny(), 5, 3);  // RGB, 5 heatmaps: an "ImageNet" model with another head
  {
    torch::NoGradGuard no_grad;
    for (auto& b : source->buffers()) b.fill_(2);  // running statistics that differ from init
  }
  const auto file = save_state_dict(*source, "rgb.pth", "outc.",
                                    {{"classifier.weight", torch::ones({10, 2})},
                                     {"classifier.bias", torch::ones({10})},
                                     {"final_layer.weight", torch::ones({1})}});
  testing::internal::CaptureStdout();
  auto model = make(tiny({{"pretrained", file.string()}, {"pretrained_strict", false}}), 3, 1);
  const std::string printed = testing::internal::GetCapturedStdout();

  auto got = model->named_parameters();
  auto want = source->named_parameters();
  EXPECT_TRUE(torch::equal(got["down2.maxpool_conv.1.double_conv.3.weight"],
                           want["down2.maxpool_conv.1.double_conv.3.weight"]));
  EXPECT_TRUE(torch::equal(got["up1.up.bias"], want["up1.up.bias"]));
  EXPECT_TRUE(torch::allclose(got["inc.double_conv.0.weight"],
                              want["inc.double_conv.0.weight"].sum(1, true), 1e-6, 1e-7));
  EXPECT_TRUE(torch::equal(model->named_buffers()["inc.double_conv.1.running_var"],
                           torch::full({2}, 2.0f)));

  // 36 parameters + 30 buffers (10 batch norms x 3), less outc's 2 parameters.
  const std::string expected =
      "models/unet: pretrained weights from " + file.string() +
      ": 64 tensors matched, 2 missing (left as initialised), 3 left over (ignored)\n"
      "  summed over the 3 input channels into 1: inc.double_conv.0.weight\n"
      "  missing: outc.conv.weight, outc.conv.bias\n"
      "  left over: classifier.bias, classifier.weight, final_layer.weight\n";
  EXPECT_EQ(printed, expected);
}

// What strict, non-strict and pretrained_ignore make of a file with another head: the
// ImageNet-like case (the model's head missing, a classifier left over).
fs::path imagenet_like(const std::string& name, std::map<std::string, torch::Tensor> extra = {}) {
  torch::manual_seed(1);
  auto source = make(tiny(), 5, 1);
  extra["classifier.weight"] = torch::ones({10, 2});
  extra["classifier.bias"] = torch::ones({10});
  extra["final_layer.weight"] = torch::ones({1});
  return save_state_dict(*source, name, "outc.", extra);
}

TEST(StateDict, StrictRefusesMissingAndLeftOverNamesListingThem) {
  const auto file = imagenet_like("partial.pth");
  try {
    make(tiny({{"pretrained", file.string()}}));
    FAIL() << "a file without the head and with a classifier loaded strictly";
  } catch (const StateDictError& e) {
    EXPECT_EQ(std::string(e.what()),
              file.string() +
                  ": the file does not match the model (pretrained_strict = true): 2 missing (in "
                  "the model, not in the file): outc.conv.weight, outc.conv.bias; 3 left over "
                  "(in the file, not in the model): classifier.bias, classifier.weight, "
                  "final_layer.weight; if parts are meant to differ, list their prefixes in "
                  "pretrained_ignore (these names lie under [\"outc\", \"classifier\", "
                  "\"final_layer\"]), or set "
                  "pretrained_strict = false to load what matches");
  }
  // Only the first five names of a kind, and how many more.
  std::map<std::string, torch::Tensor> many;
  for (int i = 0; i < 7; ++i) many["extra" + std::to_string(i) + ".weight"] = torch::ones({1});
  const auto crowded = imagenet_like("crowded.pth", many);
  try {
    make(tiny({{"pretrained", crowded.string()},
               {"pretrained_ignore", std::vector<std::string>{"outc"}}}));
    FAIL() << "left-over names loaded strictly";
  } catch (const StateDictError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(": 10 left over (in the file, not in the model): classifier.bias, "
                           "classifier.weight, extra0.weight, extra1.weight, extra2.weight, ... "
                           "(5 more); "),
              std::string::npos)
        << message;
    EXPECT_EQ(message.find("missing"), std::string::npos) << message;
  }
}

TEST(StateDict, IgnoredPrefixesLoadTheImageNetLikeCaseStrictly) {
  const auto file = imagenet_like("ignored.pth");
  torch::manual_seed(1);
  auto source = make(tiny(), 5, 1);
  testing::internal::CaptureStdout();
  // "up1." and "up1" are the same prefix: whole components, so "up1" does not cover "up10".
  auto model = make(tiny({{"pretrained", file.string()},
                          {"pretrained_ignore", std::vector<std::string>{"outc", "classifier",
                                                                         "final_layer", "up1."}}}));
  const std::string printed = testing::internal::GetCapturedStdout();
  EXPECT_EQ(printed, "models/unet: pretrained weights from " + file.string() +
                         ": 50 tensors matched, 0 missing (left as initialised), 0 left over "
                         "(ignored), 19 under pretrained_ignore\n"
                         "  under pretrained_ignore: up1.* (14), outc.conv.weight, outc.conv.bias, "
                         "classifier.bias, classifier.weight, final_layer.weight\n");
  auto got = model->named_parameters();
  auto want = source->named_parameters();
  EXPECT_TRUE(torch::equal(got["inc.double_conv.0.weight"], want["inc.double_conv.0.weight"]));
  // An ignored name is not loaded even where the file has it.
  EXPECT_FALSE(torch::equal(got["up1.up.weight"], want["up1.up.weight"]));
}

TEST(StateDict, IgnorePrefixMatchingNothingIsAnErrorWhenStrictAWarningOtherwise) {
  const auto file = imagenet_like("typo.pth");
  const std::vector<std::string> typo{"outc", "classifer", "classifier", "final_layer"};
  try {
    make(tiny({{"pretrained", file.string()}, {"pretrained_ignore", typo}}));
    FAIL() << "a prefix that matches nothing was accepted";
  } catch (const StateDictError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(file.string() + ": pretrained_ignore prefix "
                                                          "\"classifer\" matches no name in the "
                                                          "file or the model (a typo?)",
                                          0),
              0u)
        << e.what();
  }
  testing::internal::CaptureStdout();
  make(tiny(
      {{"pretrained", file.string()}, {"pretrained_ignore", typo}, {"pretrained_strict", false}}));
  const std::string printed = testing::internal::GetCapturedStdout();
  EXPECT_NE(printed.find("  warning: pretrained_ignore prefix \"classifer\" matches no name in "
                         "the file or the model\n"),
            std::string::npos)
      << printed;
  EXPECT_THROW(make(tiny({{"pretrained", file.string()},
                          {"pretrained_ignore", std::vector<std::string>{"outc", "."}}})),
               StateDictError);
}

// PyTorch < 0.4.1 saved no batch counters; PyTorch's strict loading accepts that, and so
// does this: a BN with a momentum never reads its counter.
TEST(StateDict, AbsentBatchCountersAreNotAStrictError) {
  torch::manual_seed(1);
  auto source = make(tiny(), 3, 1);
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& p : source->named_parameters()) dict.insert(p.key(), p.value().detach());
  for (const auto& b : source->named_buffers())
    if (!b.key().ends_with("num_batches_tracked")) dict.insert(b.key(), b.value());
  const auto bytes = torch::pickle_save(torch::IValue(dict));
  const auto file = scratch("old_bn.pth");
  std::ofstream(file, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  testing::internal::CaptureStdout();
  make(tiny({{"pretrained", file.string()}}));
  const std::string printed = testing::internal::GetCapturedStdout();
  EXPECT_NE(printed.find(": 56 tensors matched, 10 missing (left as initialised)"),
            std::string::npos)
      << printed;
}

TEST(StateDict, ShapeMismatchIsAnErrorNamingFileAndKeyUnlessNotStrict) {
  auto wider = make(tiny({{"width", std::int64_t{3}}}), 3, 1);
  const auto file = save_state_dict(*wider, "wider.pth", "");
  try {
    make(tiny({{"pretrained", file.string()}}));
    FAIL() << "a width-3 state dict loaded into a width-2 model";
  } catch (const StateDictError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(file.string() + ": inc.double_conv.0.weight: the file holds a tensor "
                                           "of shape [3, 1, 3, 3], the model expects [2, 1, 3, 3]"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("pretrained_strict = false"), std::string::npos) << message;
  }
  testing::internal::CaptureStdout();
  make(tiny({{"pretrained", file.string()}, {"pretrained_strict", false}}));
  const std::string printed = testing::internal::GetCapturedStdout();
  EXPECT_NE(printed.find("skipped (shape mismatch)"), std::string::npos) << printed;
  EXPECT_NE(
      printed.find("  skipped: inc.double_conv.0.weight: file [3, 1, 3, 3], model [2, 1, 3, 3]\n"),
      std::string::npos)
      << printed;
}

TEST(StateDict, UnreadableFilesAreErrorsNamingTheFile) {
  const auto text = scratch("notes.pth");
  std::ofstream(text) << "not a state dict\n";
  const auto zip = scratch("other.pth");
  std::ofstream(zip, std::ios::binary) << "PK\x03\x04 and nothing else";
  for (const auto& file : {text, zip, scratch("absent.pth")}) {
    try {
      read_state_dict(file.string());
      FAIL() << file << " was read";
    } catch (const StateDictError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(file.string() + ": ", 0), 0u) << e.what();
    }
  }
  // A state dict of another architecture: nothing matches.
  c10::Dict<std::string, torch::Tensor> dict;
  dict.insert("fc.weight", torch::ones({2, 2}));
  const auto bytes = torch::pickle_save(torch::IValue(dict));
  const auto other = scratch("fc.pth");
  std::ofstream(other, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_THROW(make(tiny({{"pretrained", other.string()}})), StateDictError);
}

// Files written by tests/fixtures/state_dicts/make_fixtures.py exactly as Python's torch.save
// writes model.state_dict(): an OrderedDict with _metadata, in both formats.
void expect_fixture_tensors(const std::string& file) {
  const auto tensors = read_state_dict(file);
  ASSERT_EQ(tensors.size(), 4u) << file;
  EXPECT_EQ(tensors[0].first, "conv.weight");
  EXPECT_TRUE(torch::equal(tensors[0].second, torch::arange(6, torch::kFloat).view({2, 3, 1, 1})));
  EXPECT_EQ(tensors[1].first, "bn.running_mean");  // a strided view from offset 1
  EXPECT_TRUE(torch::equal(tensors[1].second, torch::tensor({11.0f, 13.0f})));
  EXPECT_EQ(tensors[2].first, "bn.num_batches_tracked");
  EXPECT_EQ(tensors[2].second.dim(), 0);
  EXPECT_EQ(tensors[2].second.scalar_type(), torch::kLong);
  EXPECT_EQ(tensors[2].second.item<std::int64_t>(), 7);
  EXPECT_EQ(tensors[3].first, "head.bias");
  EXPECT_TRUE(
      torch::equal(tensors[3].second, torch::tensor({0.25, -0.5, 1e-300}, torch::kFloat64)));
}

TEST(StateDict, ReadsPythonStateDictsInZipAndLegacyFormat) {
  const fs::path dir = fs::path(EXPRUN_SOURCE_DIR) / "tests" / "fixtures" / "state_dicts";
  expect_fixture_tensors((dir / "python_zip.pth").string());
  expect_fixture_tensors((dir / "python_legacy.pth").string());
  // Why the SDK runs the pickle itself: LibTorch 1.13's reader fails on these files.
  std::ifstream in(dir / "python_zip.pth", std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  EXPECT_THROW(torch::pickle_load(bytes), c10::Error);
}

TEST(StateDict, UnwrapsCheckpointsAndDataParallelPrefixes) {
  c10::Dict<std::string, torch::Tensor> inner;
  inner.insert("module.conv.weight", torch::ones({2}));
  inner.insert("module.conv.bias", torch::zeros({2}));
  c10::impl::GenericDict outer(c10::StringType::get(), c10::AnyType::get());
  outer.insert("epoch", torch::IValue(std::int64_t{3}));
  outer.insert("state_dict", torch::IValue(inner));
  const auto bytes = torch::pickle_save(torch::IValue(outer));
  const auto path = scratch("checkpoint.pth");
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const auto tensors = read_state_dict(path.string());
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].first, "conv.weight");
  EXPECT_EQ(tensors[1].first, "conv.bias");
}

}  // namespace

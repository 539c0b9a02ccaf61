// Checkpoints of exprun 0.1.0 before HRNet followed the official module tree (a new branch's
// transition conv at `transition1.1.0.weight`, not `transition1.1.0.0.weight`) are refused by
// every path that loads checkpoint weights, with a message naming the file and the tensor.
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <exprun/sdk/model.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "plugins/registry.hpp"
#include "test_support.hpp"
#include "train/checkpoint.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<sdk::Model> small_hrnet() {
  const auto& registry = test::built_plugins();
  const auto params = sdk::Params::resolve(registry.schema(sdk::PluginKind::Model, "hrnet"),
                                           {{"width", std::int64_t{4}},
                                            {"num_modules", std::vector<std::int64_t>{1, 1, 1}},
                                            {"num_blocks", std::int64_t{1}},
                                            {"stem_blocks", std::int64_t{1}}});
  return registry.make<sdk::Model>("hrnet", params, sdk::ModelContext{3, 1});
}

// The name the old layout gave a tensor or module ("a.b."): the new branches' chain level
// dropped.
std::string old_name(const std::string& name) {
  static const std::regex chain_step(R"(^(transition([123])\.\2)\.0\.)");
  return std::regex_replace(name, chain_step, "$1.");
}

// A module tree holding `model`'s tensors under their old-layout names, so that
// save_checkpoint writes what the old exprun wrote.
class OldLayout : public sdk::Model {
 public:
  explicit OldLayout(sdk::Model& model) {
    // Modules without tensors (ReLU) too: LibTorch saves an empty archive for each.
    for (const auto& m : model.named_modules("", /*include_self=*/false))
      node(old_name(m.key() + "."));
    for (const auto& p : model.named_parameters()) add(old_name(p.key()), p.value(), false);
    for (const auto& b : model.named_buffers()) add(old_name(b.key()), b.value(), true);
  }
  torch::Tensor forward(const torch::Tensor& images) override { return images; }
  std::int64_t output_stride() const override { return 4; }

 private:
  // The module at `path` ("a.b.": every component ends in a dot), made with its parents.
  torch::nn::Module* node(const std::string& path) {
    torch::nn::Module* parent = this;
    std::size_t start = 0;
    for (auto dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
      auto& child = children_[path.substr(0, dot + 1)];
      if (!child) {
        child = parent->register_module(path.substr(start, dot - start),
                                        std::make_shared<torch::nn::Module>());
      }
      parent = child.get();
      start = dot + 1;
    }
    return parent;
  }
  void add(const std::string& name, const torch::Tensor& value, bool buffer) {
    const auto dot = name.rfind('.');
    torch::nn::Module* parent = node(name.substr(0, dot + 1));
    const auto leaf = name.substr(dot + 1);
    if (buffer) {
      parent->register_buffer(leaf, value.clone());
    } else {
      parent->register_parameter(leaf, value.detach().clone());
    }
  }
  std::map<std::string, std::shared_ptr<torch::nn::Module>> children_;
};

CheckpointInfo info() {
  CheckpointInfo i;
  i.experiment = "e";
  i.stage = "s";
  i.monitor = "val_mre_mm";
  i.landmark_symbols = {"A", "B", "C"};
  i.landmark_titles = {"A", "B", "C"};
  return i;
}

void save(const fs::path& file, sdk::Model& model) {
  torch::optim::SGD optimizer(model.parameters(), 0.1);
  const std::vector<std::shared_ptr<sdk::MemoryStrategy>> none;
  save_checkpoint(file, TrainingState{model, optimizer, none, torch::kCPU}, info());
}

void expect_old_layout_error(const std::string& message, const fs::path& file) {
  EXPECT_NE(message.find("checkpoint " + file.string()), std::string::npos) << message;
  // As docs/plugins.md (models/hrnet) shows it.
  EXPECT_NE(message.find(
                "models/hrnet: it holds 'transition1.1.0.weight', the HRNet layout of exprun 0.1.0 "
                "before the model followed the official HRNet module tree (now "
                "'transition1.1.0.0.weight'; that model also trained with BN momentum 0.1, now "
                "0.01); such weights cannot be loaded, resumed, evaluated or used as `init`: "
                "retrain the stage with this exprun"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("No such serialized"), std::string::npos) << message;
}

TEST(HRNetCheckpoint, OldLayoutIsRefusedByWeightsAndResumeLoadingNamingFileAndTensor) {
  test::TempDir dir;
  auto trained = small_hrnet();
  OldLayout old(*trained);
  ASSERT_TRUE(old.named_parameters().contains("transition1.1.0.weight"));
  ASSERT_TRUE(old.named_parameters().contains("transition3.3.1.bias"));
  const auto file = dir / "best.pt";
  save(file, old);

  // init, eval and predict read weights only.
  auto model = small_hrnet();
  try {
    load_model_weights(file, *model);
    FAIL() << "an old-layout checkpoint loaded";
  } catch (const std::runtime_error& e) {
    expect_old_layout_error(e.what(), file);
  }

  // --resume restores everything: it must stop, not continue under the new BN momentum.
  torch::optim::SGD optimizer(model->parameters(), 0.1);
  const std::vector<std::shared_ptr<sdk::MemoryStrategy>> none;
  try {
    load_training_state(file, TrainingState{*model, optimizer, none, torch::kCPU});
    FAIL() << "an old-layout checkpoint resumed";
  } catch (const std::runtime_error& e) {
    expect_old_layout_error(e.what(), file);
  }
}

TEST(HRNetCheckpoint, CurrentLayoutStillLoads) {
  test::TempDir dir;
  auto trained = small_hrnet();
  const auto file = dir / "best.pt";
  save(file, *trained);
  auto model = small_hrnet();
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.zero_();
  ASSERT_NO_THROW(load_model_weights(file, *model));
  EXPECT_TRUE(torch::equal(model->named_parameters()["transition1.1.0.0.weight"],
                           trained->named_parameters()["transition1.1.0.0.weight"]));
}

}  // namespace
}  // namespace exprun

// Resume on CUDA restores the random generators: save_checkpoint of a TrainingState whose device
// is "cuda" records the CUDA generator ("rng.device") beside the CPU one ("rng.cpu"), and
// load_training_state puts both back, so the draws after a resume are the draws that followed
// the save. The model and optimiser state on the device come back too, still on the device.
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <exprun/sdk/model.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cuda_test_support.hpp"
#include "test_support.hpp"
#include "train/checkpoint.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;

class TinyModel : public sdk::Model {
 public:
  TinyModel() {
    conv_ = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 2, 3)));
    norm_ = register_module("norm", torch::nn::BatchNorm2d(2));
  }
  torch::Tensor forward(const torch::Tensor& x) override { return norm_(conv_(x)); }
  std::int64_t output_stride() const override { return 1; }

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d norm_{nullptr};
};

TEST(CheckpointCuda, ResumeRestoresTheCudaAndCpuGenerators) {
  EXPRUN_SKIP_WITHOUT_CUDA();
  // As resolve_device("cuda") gives it: no index, i.e. the current device, which is the one
  // torch::rand(..., kCUDA) below draws from (nothing in this test changes the current device).
  const torch::Device device("cuda");
  const auto on_device = torch::dtype(torch::kFloat).device(device);
  test::TempDir dir("exprun-cuda-checkpoint");
  const fs::path file = dir / "latest.pt";

  torch::manual_seed(20240611);  // seeds the CPU generator and every CUDA device's
  auto model = std::make_shared<TinyModel>();
  model->to(device);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  std::vector<std::shared_ptr<sdk::MemoryStrategy>> strategies;
  // One step, so the optimiser has state on the device; and draws on both generators, so
  // neither is at its seeded start when the checkpoint is written.
  model->forward(torch::rand({2, 1, 6, 6}, on_device)).square().sum().backward();
  optimizer.step();
  torch::randn({1000}, on_device);
  torch::randn({10});

  const TrainingState state{*model, optimizer, strategies, device};
  CheckpointInfo info;
  info.experiment = "e";
  info.stage = "s";
  info.monitor = "val_mre_mm";
  info.landmark_symbols = {"A", "B"};
  info.landmark_titles = {"first", "second"};
  save_checkpoint(file, state, info);
  std::map<std::string, torch::Tensor> saved_weights;
  for (const auto& p : model->named_parameters()) saved_weights[p.key()] = p.value().clone();

  // What a run that was never interrupted draws next: on the device (two shapes, so more than
  // one kernel's offset is covered) and on the CPU.
  const auto want_device = torch::rand({4099}, on_device);
  const auto want_device_normal = torch::randn({3, 257}, on_device);
  const auto want_cpu = torch::rand({64});

  // Training goes on: both generators move, the weights change.
  torch::rand({100000}, on_device);
  torch::randn({77}, on_device);
  torch::rand({1000});
  model->forward(torch::rand({2, 1, 6, 6}, on_device)).square().sum().backward();
  optimizer.step();
  ASSERT_FALSE(torch::equal(torch::rand({4099}, on_device), want_device))
      << "the CUDA generator did not move, so the test would prove nothing";

  load_training_state(file, state);
  const auto got_device = torch::rand({4099}, on_device);
  const auto got_device_normal = torch::randn({3, 257}, on_device);
  const auto got_cpu = torch::rand({64});
  EXPECT_TRUE(got_device.is_cuda());
  EXPECT_TRUE(torch::equal(got_device, want_device))
      << "max difference " << (got_device - want_device).abs().max().item<float>();
  EXPECT_TRUE(torch::equal(got_device_normal, want_device_normal));
  EXPECT_TRUE(torch::equal(got_cpu, want_cpu));

  for (const auto& p : model->named_parameters()) {
    EXPECT_TRUE(p.value().is_cuda()) << p.key() << " left the device on load";
    EXPECT_TRUE(torch::equal(p.value(), saved_weights.at(p.key()))) << p.key();
  }
}

// A checkpoint written on the CPU (no "rng.device") resumes on CUDA without touching the CUDA
// generator, and a CPU state never writes one: the device's stream simply goes on.
TEST(CheckpointCuda, ACpuCheckpointLeavesTheCudaGeneratorAlone) {
  EXPRUN_SKIP_WITHOUT_CUDA();
  test::TempDir dir("exprun-cuda-checkpoint");
  const fs::path file = dir / "cpu.pt";
  const auto on_device = torch::dtype(torch::kFloat).device(torch::kCUDA);

  torch::manual_seed(7);
  TinyModel model;
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.1));
  std::vector<std::shared_ptr<sdk::MemoryStrategy>> strategies;
  CheckpointInfo info;
  info.experiment = "e";
  info.stage = "s";
  info.landmark_symbols = {"A", "B"};
  info.landmark_titles = {"first", "second"};
  save_checkpoint(file, TrainingState{model, optimizer, strategies, torch::kCPU}, info);

  // The CUDA stream as it would go on without any load...
  torch::manual_seed(11);
  const auto expected = torch::rand({513}, on_device);
  // ...and with a load of the CPU checkpoint into a CUDA state in between.
  torch::manual_seed(11);
  load_training_state(file, TrainingState{model, optimizer, strategies, torch::Device("cuda")});
  EXPECT_TRUE(torch::equal(torch::rand({513}, on_device), expected));
}

}  // namespace
}  // namespace exprun

// The batch tuner on a tiny model in-process: the candidates, the choice under a budget that
// fits micro-batch 2 but not 3 of an effective batch of 6, and that tuning leaves the model,
// an optimiser and the random stream as they were.
#include "train/batch_tuner.hpp"

#include <gtest/gtest.h>
#include <torch/version.h>

#include <stdexcept>

#include "fake_dataset.hpp"
#include "memory/memory_tracker.hpp"
#include "test_support.hpp"
#include "train/optimizer_factory.hpp"
#include "train/train_step.hpp"

namespace exprun {
namespace {

constexpr std::int64_t kLandmarks = 2;  // as FakeDataset has

// Conv, batch norm (running statistics are buffers the tuner must put back), conv; stride 4.
class TinyModel : public sdk::Model {
 public:
  TinyModel() {
    conv1_ = register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 3).stride(2).padding(1)));
    bn_ = register_module("bn", torch::nn::BatchNorm2d(8));
    conv2_ = register_module(
        "conv2",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(8, kLandmarks, 3).stride(2).padding(1)));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return conv2_->forward(torch::relu(bn_->forward(conv1_->forward(x))));
  }
  std::int64_t output_stride() const override { return 4; }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};

class MeanSquare : public sdk::Loss {
 public:
  torch::Tensor compute(const torch::Tensor& predicted, const torch::Tensor& target,
                        const torch::Tensor&) override {
    return (predicted - target).pow(2).mean();
  }
};

class BatchTuner : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(install_cpu_memory_tracker());
    // One compute thread: with more, which threads take a kernel's chunks (and allocate their
    // scratch at the same time) depends on timing, and LibTorch 2.x's peaks then vary by more
    // than this test's margin on a loaded machine.
    torch::set_num_threads(1);
    torch::manual_seed(1);
    config_.name = "train";
    // Large enough that activations make the peak: at 64 x 64 a convolution's scratch space,
    // the same for any batch, did on CPUs where oneDNN takes its AVX-512 kernels (0.5 MB).
    config_.data.input_width = 256;
    config_.data.input_height = 256;
    config_.data.channels = 1;
    config_.memory.effective_batch = 6;
    config_.memory.micro_batch_auto = true;
    config_.optimizer.name = "adam";
    config_.optimizer.lr = 1e-3;

    stage_.model = std::make_shared<TinyModel>();
    stage_.loss = std::make_shared<MeanSquare>();
    stage_.train = std::make_shared<test::FakeDataset>(12, 320, 320);
    stage_.landmarks = stage_.train->landmarks();
    // Batches on the calling thread: with a worker, whether its next batch is alive at the
    // step's peak depends on timing, and this model is so small that a batch shows.
    stage_.data_workers = 0;
    stage_.landmark_weights = torch::ones({kLandmarks});
    PipelineSpec spec;
    spec.input_width = 256;
    spec.input_height = 256;
    spec.num_landmarks = kLandmarks;
    stage_.pipeline = std::make_unique<SamplePipeline>(spec);
    // No strategy: the step itself splits a batch into micro-batches.
    stage_.make_strategies = [](std::int64_t) {
      return std::vector<std::shared_ptr<sdk::MemoryStrategy>>{};
    };
    stage_.micro_batch = 6;
    stage_.strategies = stage_.make_strategies(6);
  }

  TuneOptions options(std::int64_t budget) const {
    TuneOptions o;
    o.budget_bytes = budget;
    o.budget_source = "memory.budget";
    o.margin = 0.1;
    o.steps_per_epoch = 10;
    return o;
  }

  // Peak of every candidate under a budget that all of them fit.
  std::map<std::int64_t, std::int64_t> peaks() {
    const TuneResult all = tune_micro_batch(stage_, config_, options(std::int64_t{1} << 40));
    std::map<std::int64_t, std::int64_t> out;
    for (const auto& t : all.trials) {
      EXPECT_TRUE(t.tried && t.fits && t.peak_bytes) << t.micro_batch << ": " << t.note;
      if (t.peak_bytes) out[t.micro_batch] = *t.peak_bytes;
    }
    return out;
  }

  StageConfig config_;
  BuiltStage stage_;
};

TEST(CandidateMicroBatches, DivisorsAndPowersOfTwo) {
  EXPECT_EQ(candidate_micro_batches(6), (std::vector<std::int64_t>{1, 2, 3, 4, 6}));
  EXPECT_EQ(candidate_micro_batches(8), (std::vector<std::int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(candidate_micro_batches(1), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(candidate_micro_batches(12), (std::vector<std::int64_t>{1, 2, 3, 4, 6, 8, 12}));
}

TuneTrial measured(std::int64_t micro_batch, double images_per_second, bool fits = true) {
  TuneTrial t;
  t.micro_batch = micro_batch;
  t.tried = true;
  t.images_per_second = images_per_second;
  t.fits = fits;
  return t;
}

TEST(ChooseMicroBatch, TheFastestThatFits) {
  EXPECT_EQ(choose_micro_batch({measured(1, 10), measured(2, 20), measured(4, 15)}, 0.05), 2);
  // The fastest does not fit: the fastest of the rest.
  EXPECT_EQ(choose_micro_batch({measured(1, 10), measured(2, 12), measured(4, 30, false)}, 0.05),
            2);
}

TEST(ChooseMicroBatch, WithinTheToleranceTheLargerWins) {
  const std::vector<TuneTrial> trials = {measured(1, 20), measured(2, 19.2), measured(4, 18.9)};
  EXPECT_EQ(choose_micro_batch(trials, 0.05), 2);  // 19.2 >= 19, 18.9 < 19
  EXPECT_EQ(choose_micro_batch(trials, 0.06), 4);
  EXPECT_EQ(choose_micro_batch(trials, 0), 1);
}

TEST(ChooseMicroBatch, ToleranceOneTakesTheLargestThatFits) {
  EXPECT_EQ(choose_micro_batch({measured(1, 50), measured(2, 1), measured(3, 90, false)}, 1), 2);
}

TEST(ChooseMicroBatch, NoneFits) {
  EXPECT_EQ(choose_micro_batch({measured(1, 10, false), measured(2, 0, false)}, 0.05),
            std::nullopt);
  EXPECT_EQ(choose_micro_batch({}, 0.05), std::nullopt);
}

TEST_F(BatchTuner, PeakMemoryGrowsWithTheMicroBatch) {
  const auto p = peaks();
  ASSERT_EQ(p.size(), 5u);
  EXPECT_LT(p.at(1), p.at(2));
  EXPECT_LT(p.at(2), p.at(3));
  EXPECT_LT(p.at(3), p.at(6));
}

TEST_F(BatchTuner, ChoosesTwoByThreeWhenTwoFitsAndThreeDoesNot) {
  // The budget is placed between two peaks measured by an earlier tuning, so the test needs
  // the same peaks again. LibTorch 1.13's CPU kernels allocate the same bytes every run;
  // 2.x's do not (seen: micro-batch 2's peak differs between two tunings in one process),
  // so there the choice is left to the tests that do not depend on a repeat measurement.
  if (TORCH_VERSION_MAJOR >= 2) {
    GTEST_SKIP() << "CPU peaks are not repeatable run to run under LibTorch " << TORCH_VERSION;
  }
  const auto p = peaks();
  // A limit a quarter of the way from micro-batch 2's peak to 3's, as a budget with 10 % margin.
  const double limit = static_cast<double>(p.at(2)) + 0.25 * static_cast<double>(p.at(3) - p.at(2));
  const auto budget = static_cast<std::int64_t>(limit / 0.9);
  // Micro-batches 1 and 2 both fit; by speed either can win (two timed steps vary by more than
  // 5 %), so this test about memory takes the largest that fits.
  TuneOptions largest_fitting = options(budget);
  largest_fitting.speed_tolerance = 1;
  const TuneResult result = tune_micro_batch(stage_, config_, largest_fitting);
  EXPECT_EQ(result.chosen_micro_batch, 2);
  const auto json = result.to_json();
  EXPECT_EQ(json["chosen_accumulation"], 3);
  ASSERT_EQ(result.trials.size(), 5u);
  EXPECT_TRUE(result.trials[0].fits);
  EXPECT_TRUE(result.trials[1].fits && result.trials[1].chosen);
  EXPECT_EQ(result.trials[1].passes, (std::vector<std::int64_t>{2, 2, 2}));
  EXPECT_TRUE(result.trials[2].tried);
  EXPECT_FALSE(result.trials[2].fits);
  EXPECT_CONTAINS(result.trials[2].note, "> limit");
  for (std::size_t i : {3u, 4u}) {
    EXPECT_FALSE(result.trials[i].tried);
    EXPECT_CONTAINS(result.trials[i].note, "not tried");
  }

  // Training at the choice stays under the budget: the same steps as the stage would take.
  apply_tuning(stage_, result);
  EXPECT_EQ(stage_.micro_batch, 2);
  EXPECT_EQ(micro_batch_passes(6, stage_.micro_batch), (std::vector<std::int64_t>{2, 2, 2}));
  auto optimizer = make_optimizer(config_.optimizer, stage_.model->parameters());
  const auto images = torch::rand({6, 1, 64, 64});
  const auto targets = torch::rand({6, kLandmarks, 16, 16});
  reset_peak_memory(torch::kCPU);
  StepParts parts{*stage_.model, *stage_.loss, stage_.strategies, stage_.landmark_weights,
                  torch::kCPU};
  for (int i = 0; i < 3; ++i)
    optimisation_step(parts, *optimizer, stage_.micro_batch, images, targets);
  EXPECT_LE(read_memory(torch::kCPU)->peak_bytes, budget);
}

TEST_F(BatchTuner, AmongFittingCandidatesTheTableMarksOneChosen) {
  const TuneResult result = tune_micro_batch(stage_, config_, options(std::int64_t{1} << 40));
  int chosen = 0;
  for (const auto& t : result.trials) {
    chosen += t.chosen;
    EXPECT_GT(t.images_per_second, 0);
    EXPECT_NEAR(t.epoch_seconds, 10 * t.step_seconds, 1e-9);
  }
  EXPECT_EQ(chosen, 1);
  const std::string table = tune_table(result);
  EXPECT_EQ(test::split_lines(table).size(), 6u) << table;
  EXPECT_CONTAINS(table, "<- chosen");
}

TEST_F(BatchTuner, NothingFitsIsAClearError) {
  try {
    tune_micro_batch(stage_, config_, options(1024));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_CONTAINS(message, "stage train: no micro-batch fits the memory limit 921 B");
    EXPECT_CONTAINS(message, "memory.budget 1.00 KiB less a 10% margin");
    EXPECT_CONTAINS(message, "Raise memory.budget");
  }
}

TEST_F(BatchTuner, LeavesModelOptimizerAndRandomStreamUnchanged) {
  // An optimiser with state, as on a stage that has trained already.
  auto optimizer = make_optimizer(config_.optimizer, stage_.model->parameters());
  StepParts parts{*stage_.model, *stage_.loss, stage_.strategies, stage_.landmark_weights,
                  torch::kCPU};
  optimisation_step(parts, *optimizer, {6}, torch::rand({6, 1, 64, 64}),
                    torch::rand({6, kLandmarks, 16, 16}));
  auto snapshot = [&] {
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : stage_.model->named_parameters()) {
      out["param." + p.key()] = p.value().detach().clone();
      out["grad." + p.key()] = p.value().grad().detach().clone();
    }
    for (const auto& b : stage_.model->named_buffers())
      out["buffer." + b.key()] = b.value().clone();
    std::ostringstream saved;
    torch::serialize::OutputArchive archive;
    optimizer->save(archive);
    archive.save_to(saved);
    return std::pair{out, saved.str()};
  };
  const auto [before, optimizer_before] = snapshot();
  const auto rng_before = at::detail::getDefaultCPUGenerator().get_state();

  tune_micro_batch(stage_, config_, options(std::int64_t{1} << 40));

  const auto [after, optimizer_after] = snapshot();
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [name, tensor] : before)
    EXPECT_TRUE(torch::equal(tensor, after.at(name))) << name;
  EXPECT_EQ(optimizer_before, optimizer_after);
  EXPECT_TRUE(torch::equal(rng_before, at::detail::getDefaultCPUGenerator().get_state()));
  EXPECT_TRUE(stage_.model->is_training());
}

}  // namespace
}  // namespace exprun

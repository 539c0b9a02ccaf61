// The stage's outputs as listeners: the assembly function, the checkpoint listener's crash-safe
// order and pruning, the writes_files switch, and a listener added to a real (tiny, in-process)
// training run seeing every hook while the built-in outputs are written.
#include "train/listeners/stage_listeners.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "fake_dataset.hpp"
#include "test_support.hpp"
#include "train/stage_trainer.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Counts every hook, and checks that the progress it is shown is the loop's.
class CountingListener : public StageListener {
 public:
  struct Counts {
    int stage_start = 0, epoch_start = 0, steps = 0, epoch_end = 0, stage_end = 0;
    std::vector<std::int64_t> epochs_ended;
    std::string status;
  };
  explicit CountingListener(Counts& counts) : counts_(counts) {}
  void on_stage_start(const StageProgress&) override { ++counts_.stage_start; }
  void on_epoch_start(std::int64_t, std::int64_t) override { ++counts_.epoch_start; }
  void on_step(const StepEvent&) override { ++counts_.steps; }
  void on_epoch_end(const EpochEndEvent& event, const StageProgress& progress) override {
    ++counts_.epoch_end;
    counts_.epochs_ended.push_back(event.record.epoch);
    EXPECT_EQ(progress.history.back().epoch, event.record.epoch);
    EXPECT_EQ(progress.epochs_done, event.record.epoch);
  }
  void on_stage_end(const StageEndEvent& event, const StageProgress&) override {
    ++counts_.stage_end;
    counts_.status = event.status;
  }

 private:
  Counts& counts_;
};

Metrics validation(double error_mm) { return compute_metrics({{error_mm, error_mm + 1}}, {""}); }

// Drives the listeners as the loop does for one finished epoch.
void end_epoch(const StageListeners& listeners, StageProgress& progress, std::int64_t epoch,
               bool improved) {
  const Metrics metrics = validation(1.0 * static_cast<double>(epoch));
  EpochRecord r;
  r.epoch = epoch;
  r.train_loss = 0.5;
  r.val_mre_mm = metrics.overall.mre;
  r.val_sdr = {100.0, 100.0, 100.0, 100.0};
  r.best = improved;
  progress.epochs_done = epoch;
  progress.history.push_back(r);
  progress.final_metrics = metrics;
  if (!progress.baseline_metrics) progress.baseline_metrics = validation(9.0);
  if (improved) progress.best_epoch = epoch;
  for (const auto& l : listeners) l->on_epoch_end({r, metrics, improved}, progress);
}

StageListenerContext context_in(const fs::path& dir, std::vector<std::string>& written) {
  StageListenerContext c;
  c.stage_dir = dir;
  c.experiment = "listeners";
  c.stage = "train";
  c.epochs = 4;
  c.checkpoint.every = 2;
  c.checkpoint.keep_last = 1;
  c.symbols = {"A", "B"};
  c.write_checkpoint = [&written, dir](const std::string& name) {
    written.push_back(name);
    test::write_text(dir / "checkpoints" / (name + ".pt"), name);
  };
  return c;
}

TEST(StageListeners, CheckpointsAreWrittenEpochThenBestThenLatestAndPruned) {
  test::TempDir dir;
  std::vector<std::string> written;
  StageProgress progress;
  const StageListeners listeners = make_stage_listeners(context_in(dir.path(), written), progress);
  for (const auto& l : listeners) l->on_stage_start(progress);
  for (std::int64_t epoch = 1; epoch <= 4; ++epoch)
    end_epoch(listeners, progress, epoch, epoch != 3);

  EXPECT_EQ(written, (std::vector<std::string>{"best", "latest", "epoch_2", "best", "latest",
                                               "latest", "epoch_4", "best", "latest"}));
  EXPECT_EQ(progress.epoch_checkpoints, (std::vector<std::string>{"epoch_4"}));
  EXPECT_FALSE(fs::exists(dir / "checkpoints/epoch_2.pt"));
  EXPECT_TRUE(fs::exists(dir / "checkpoints/epoch_4.pt"));

  const auto lines = test::split_lines(test::read_text(dir / "metrics.jsonl"));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(json::parse(lines[2])["epoch"], 3);
  EXPECT_EQ(json::parse(lines[2])["best"], false);
  EXPECT_TRUE(fs::is_regular_file(dir / "curves.png"));
  bool events = false;
  for (const auto& entry : fs::directory_iterator(dir.path()))
    events = events || entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_TRUE(events);

  // Interrupted between two steps: latest alone; between epochs: nothing more.
  written.clear();
  for (const auto& l : listeners) l->on_stage_end({"interrupted", false}, progress);
  EXPECT_TRUE(written.empty());
  for (const auto& l : listeners) l->on_stage_end({"interrupted", true}, progress);
  EXPECT_EQ(written, (std::vector<std::string>{"latest"}));
}

TEST(StageListeners, WithoutWritingFilesOnlyTheConsoleListens) {
  test::TempDir dir;
  std::vector<std::string> written;
  StageListenerContext context = context_in(dir.path(), written);
  bool reported = false;
  context.stage_report = [] { return json::object(); };
  context.on_report = [&](const json&) { reported = true; };
  context.writes_files = false;
  StageProgress progress;
  const StageListeners listeners = make_stage_listeners(context, progress);
  EXPECT_EQ(listeners.size(), 1u);
  for (const auto& l : listeners) l->on_stage_start(progress);
  end_epoch(listeners, progress, 1, true);
  EXPECT_TRUE(written.empty());
  EXPECT_FALSE(reported);
  EXPECT_TRUE(fs::is_empty(dir.path()));

  context.writes_files = true;
  const StageListeners all = make_stage_listeners(context, progress);
  EXPECT_EQ(all.size(), 6u);  // metrics, tensorboard, curves, checkpoints, console, report
}

// Convolutions only; stride 4 as the pipeline expects.
class TinyModel : public sdk::Model {
 public:
  TinyModel() {
    conv1_ = register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).stride(2).padding(1)));
    conv2_ = register_module(
        "conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 2, 3).stride(2).padding(1)));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return conv2_->forward(torch::relu(conv1_->forward(x)));
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

TEST(StageTrainerListeners, AnAddedListenerSeesEveryHookOfARun) {
  test::TempDir dir;
  torch::manual_seed(3);
  Experiment experiment;
  experiment.name = "listeners";
  StageConfig config;
  config.name = "train";
  config.epochs = 2;
  config.memory.effective_batch = 4;
  config.memory.micro_batch = 2;
  BuiltStage stage;
  stage.data_workers = 0;
  stage.model = std::make_shared<TinyModel>();
  stage.loss = std::make_shared<MeanSquare>();
  stage.train = std::make_shared<test::FakeDataset>(6, 40, 40);
  stage.valid = std::make_shared<test::FakeDataset>(2, 40, 40);
  stage.landmarks = stage.train->landmarks();
  stage.landmark_weights = torch::ones({2});
  stage.micro_batch = 2;
  PipelineSpec spec;
  spec.input_width = 32;
  spec.input_height = 32;
  spec.num_landmarks = 2;
  stage.pipeline = std::make_unique<SamplePipeline>(spec);

  int reports = 0;
  StageTrainer trainer(experiment, config, 0, std::move(stage), dir / "train",
                       [&](const json&) { ++reports; });
  CountingListener::Counts counts;
  std::vector<std::unique_ptr<StageListener>> extra;
  extra.push_back(std::make_unique<CountingListener>(counts));
  const json report = trainer.run(std::move(extra));

  EXPECT_EQ(report["status"], "completed");
  EXPECT_EQ(counts.stage_start, 1);
  EXPECT_EQ(counts.epoch_start, 2);
  EXPECT_EQ(counts.steps, 4);  // 6 images in batches of 4: two steps an epoch
  EXPECT_EQ(counts.epochs_ended, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(counts.stage_end, 1);
  EXPECT_EQ(counts.status, "completed");
  EXPECT_EQ(reports, 2);

  // The built-in outputs all ran, and agree with the typed record.
  const StageProgress& progress = trainer.progress();
  EXPECT_EQ(progress.epochs_done, 2);
  EXPECT_EQ(progress.global_step, 4);
  EXPECT_EQ(report["history"], to_json(progress, {"A", "B"})["history"]);
  EXPECT_EQ(report["batch_plan"]["accumulation_steps"], 2);
  const auto lines = test::split_lines(test::read_text(dir / "train/metrics.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[1]), report["history"][1]);
  EXPECT_TRUE(fs::is_regular_file(dir / "train/checkpoints/latest.pt"));
  EXPECT_TRUE(fs::is_regular_file(dir / "train/checkpoints/best.pt"));
  EXPECT_TRUE(fs::is_regular_file(dir / "train/curves.png"));
  const CheckpointInfo latest = read_checkpoint_info(dir / "train/checkpoints/latest.pt");
  EXPECT_EQ(latest.epoch, 2);
  EXPECT_EQ(latest.global_step, 4);
  EXPECT_EQ(latest.trainer_state, to_json(progress, {"A", "B"}));
}

}  // namespace
}  // namespace exprun

// Stage chains, checkpoints and exact resume: experiments/weighted_chain_tiny.toml (pretrain,
// then a weighted fine-tune from pretrain:best) cut down with --set, killed with SIGKILL at
// chosen points (EXPRUN_FAULT, util/fault_injection.hpp), resumed, and compared with an
// uninterrupted run: the same weights and the same report metrics, to the bit.
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <exprun/sdk/model.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "config/experiment_loader.hpp"
#include "plugins/registry.hpp"
#include "run/resume.hpp"
#include "test_support.hpp"
#include "train/checkpoint.hpp"
#include "train/stage_builder.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::expect_no_crash;
using test::ProcessResult;

const fs::path kChain = fs::path(EXPRUN_SOURCE_DIR) / "experiments" / "weighted_chain_tiny.toml";

// Small enough for seconds per run: pretrain 3 epochs of 2 steps (epoch_2 written), fine-tune
// 2 epochs of 3 steps at 2 x accumulation 2.
const std::vector<std::string> kShrink = {"data.train_count=12",
                                          "data.valid_count=6",
                                          "data.image_size=[64, 80]",
                                          "data.workers=1",
                                          "experiment.threads=2",
                                          "stages.pretrain.epochs=3",
                                          "stages.weighted_finetune.epochs=2"};

std::vector<std::string> run_args(const fs::path& output) {
  std::vector<std::string> args = {"run", kChain.string(), "--output", output.string()};
  for (const auto& s : kShrink) {
    args.push_back("--set");
    args.push_back(s);
  }
  return args;
}

fs::path only_run_dir(const fs::path& output) {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(output / "weighted_chain_tiny")) dirs.push_back(e);
  EXPECT_EQ(dirs.size(), 1u);
  return dirs.empty() ? fs::path() : dirs.front();
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// What must be identical between an interrupted-and-resumed run and an uninterrupted one:
// everything measured, nothing timed.
json metrics_of(const json& stage) {
  json history = json::array();
  for (const auto& line : stage["history"]) {
    history.push_back({{"epoch", line["epoch"]},
                       {"train_loss", line["train_loss"]},
                       {"lr", line["lr"]},
                       {"val_mre_mm", line["val_mre_mm"]},
                       {"val_sd_mm", line["val_sd_mm"]},
                       {"val_sdr", line["val_sdr"]},
                       {"skipped_steps", line["skipped_steps"]},
                       {"best", line["best"]}});
  }
  return {{"status", stage["status"]},
          {"best", stage["best"]},
          {"final", stage["final"]},
          {"best_epoch", stage["best_epoch"]},
          {"best_value", stage["best_value"]},
          {"baseline", stage["mean_shape_baseline"]},
          {"history", history},
          {"focus", stage.value("focus", json())},
          {"batch_plan", stage["batch_plan"]}};
}

// Every parameter and buffer of the stage's model as saved in `checkpoint`.
std::map<std::string, torch::Tensor> weights_in(const fs::path& checkpoint,
                                                const std::string& stage_name) {
  const Experiment e = load_experiment(kChain.string(), kShrink, test::built_plugins());
  std::size_t index = 0;
  while (e.stages[index].name != stage_name) ++index;
  BuiltStage built = build_stage(e, e.stages[index], index, test::built_plugins());
  load_model_weights(checkpoint, *built.model);
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : built.model->named_parameters()) out[p.key()] = p.value().clone();
  for (const auto& b : built.model->named_buffers()) out[b.key()] = b.value().clone();
  return out;
}

void expect_same_weights(const fs::path& a, const fs::path& b, const std::string& stage) {
  const auto x = weights_in(a, stage), y = weights_in(b, stage);
  ASSERT_EQ(x.size(), y.size());
  for (const auto& [name, tensor] : x) {
    EXPECT_TRUE(torch::equal(tensor, y.at(name))) << stage << ": " << name << " differs";
  }
}

// The uninterrupted run every resumed one is compared with, made once.
class ResumeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_dir_ = new test::TempDir("exprun-resume-reference");
    const ProcessResult r = test::run_exprun(run_args(reference_dir_->path()));
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    reference_run_ = only_run_dir(reference_dir_->path());
  }
  static void TearDownTestSuite() {
    delete reference_dir_;
    reference_dir_ = nullptr;
  }

  // Runs with EXPRUN_FAULT=fault, expects the process to die by `signal` (or exit with
  // 128 + signal for the ones exprun handles), resumes, and compares with the reference.
  void kill_resume_and_compare(const std::string& fault, int signal) {
    test::TempDir output("exprun-resume");
    test::ProcessOptions with_fault;
    with_fault.env["EXPRUN_FAULT"] = fault;
    const ProcessResult killed = test::run_exprun(run_args(output.path()), with_fault);
    if (signal == SIGKILL) {
      ASSERT_EQ(killed.term_signal, SIGKILL) << fault << "\n" << killed.describe();
    } else {
      ASSERT_EQ(killed.exit_code, 128 + signal) << fault << "\n" << killed.describe();
      EXPECT_CONTAINS(killed.out, "Resume with:");
      EXPECT_CONTAINS(killed.out, "--resume=");
    }
    const fs::path run = only_run_dir(output.path());
    const json before = read_json(run / "report.json");
    EXPECT_NE(before["status"], "completed") << fault;
    if (fault.rfind("KILL@checkpoint:", 0) == 0) {
      // The kill came half-way through the write: the partial temporary file is there.
      bool partial = false;
      for (const auto& e : fs::recursive_directory_iterator(run))
        partial = partial || e.path().string().find(".pt.tmp-") != std::string::npos;
      EXPECT_TRUE(partial) << fault;
    }
    if (signal != SIGKILL) {
      // A handled signal stops after the step and saves the position inside the epoch.
      EXPECT_EQ(before["status"], "interrupted");
      EXPECT_EQ(read_checkpoint_info(run / "pretrain/checkpoints/latest.pt").step_in_epoch, 1);
    }

    std::vector<std::string> resume = run_args(output.path());
    resume.push_back("--resume");
    const ProcessResult resumed = test::run_exprun(resume);
    ASSERT_EQ(resumed.exit_code, 0) << fault << "\n" << resumed.describe();
    EXPECT_CONTAINS(resumed.err, "resuming " + run.string());

    const json got = read_json(run / "report.json");
    const json want = read_json(reference_run_ / "report.json");
    EXPECT_EQ(got["status"], "completed");
    ASSERT_EQ(got["stages"].size(), 2u);
    ASSERT_EQ(got["resumes"].size(), 1u);
    for (std::size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(metrics_of(got["stages"][i]), metrics_of(want["stages"][i]))
          << fault << ": stage " << want["stages"][i]["name"];
    }
    // Every checkpoint a stage ends with is the reference's, the same files at the same epochs
    // with the same weights: a resume that lands at the end of an epoch writes that epoch's
    // files again (a kill while writing latest.pt used to leave it an epoch behind, and the
    // next stage's init = "STAGE:latest" started from there).
    for (const std::string stage : {"pretrain", "weighted_finetune"}) {
      std::set<std::string> got_files, want_files;
      for (const auto& e : fs::directory_iterator(run / stage / "checkpoints"))
        got_files.insert(e.path().filename().string());
      for (const auto& e : fs::directory_iterator(reference_run_ / stage / "checkpoints"))
        want_files.insert(e.path().filename().string());
      EXPECT_EQ(got_files, want_files) << fault << ": " << stage;
      for (const auto& name : want_files) {
        if (got_files.count(name) == 0) continue;
        const fs::path got_file = run / stage / "checkpoints" / name;
        const fs::path want_file = reference_run_ / stage / "checkpoints" / name;
        EXPECT_EQ(read_checkpoint_info(got_file).epoch, read_checkpoint_info(want_file).epoch)
            << fault << ": " << stage << "/" << name;
        expect_same_weights(got_file, want_file, stage);
      }
    }
    // No temporary file of an interrupted write is left behind.
    for (const auto& e : fs::recursive_directory_iterator(run))
      EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
  }

  static test::TempDir* reference_dir_;
  static fs::path reference_run_;
};

test::TempDir* ResumeTest::reference_dir_ = nullptr;
fs::path ResumeTest::reference_run_;

TEST_F(ResumeTest, TheChainStartsFromPretrainBestAndFocusesOnItsWorstLandmarks) {
  const json report = read_json(reference_run_ / "report.json");
  const json& pretrain = report["stages"][0];
  const json& finetune = report["stages"][1];
  EXPECT_EQ(finetune["init"]["from"], "pretrain:best");
  EXPECT_EQ(finetune["init"]["stage"], "pretrain");
  EXPECT_EQ(finetune["init"]["epoch"], pretrain["best_epoch"]);
  // The 6 chosen are the 6 largest best-epoch MREs of pretrain, worst first.
  std::vector<std::pair<double, std::string>> by_mre;
  for (const auto& [symbol, summary] : pretrain["best"]["per_landmark"].items())
    by_mre.push_back({summary["mre"].get<double>(), symbol});
  std::sort(by_mre.rbegin(), by_mre.rend());
  const json& chosen = finetune["focus"]["chosen"];
  ASSERT_EQ(chosen.size(), 6u);
  for (std::size_t r = 0; r < 6; ++r) {
    EXPECT_EQ(chosen[r]["rank"], r + 1);
    EXPECT_EQ(chosen[r]["symbol"], by_mre[r].second);
    EXPECT_EQ(chosen[r]["mre_mm"], by_mre[r].first);
  }
  EXPECT_EQ(finetune["focus"]["weight"], 3.0);
  EXPECT_CONTAINS(finetune["focus"]["ranked_by"].get<std::string>(), "of stage pretrain");
  // epoch_N every 2 epochs, the last 2 kept: only epoch_2 in a 3-epoch stage.
  EXPECT_EQ(pretrain["checkpoints"]["epochs"], json::array({"pretrain/checkpoints/epoch_2.pt"}));
  EXPECT_TRUE(fs::exists(reference_run_ / "pretrain/checkpoints/epoch_2.pt"));
  // The fine-tune's batch plan is its own: effective 4 at micro-batch 2.
  EXPECT_EQ(finetune["batch_plan"]["micro_batch"], 2);
  EXPECT_EQ(finetune["batch_plan"]["accumulation_steps"], 2);
}

// Two runs of the chain that differ in one key: compare shows that key alone, with the
// fine-tune's metric deltas, in every format.
TEST_F(ResumeTest, CompareShowsTheOneKeyThatDiffersBetweenTwoChainRuns) {
  std::vector<std::string> args = run_args(reference_dir_->path());  // same experiment.output
  args.insert(args.end(), {"--set", "stages.weighted_finetune.optimizer.lr=1e-4"});
  const ProcessResult other = test::run_exprun(args);
  ASSERT_EQ(other.exit_code, 0) << other.describe();
  fs::path other_run;
  for (const auto& e : fs::directory_iterator(reference_dir_->path() / "weighted_chain_tiny"))
    if (e.path() != reference_run_) other_run = e.path();
  ASSERT_FALSE(other_run.empty());
  const std::string key = "stages.weighted_finetune.optimizer.lr";
  auto compare = [&](const std::string& format) {
    const ProcessResult r = test::run_exprun(
        {"compare", reference_run_.string(), other_run.string(), "--format", format});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return r.out;
  };

  const std::string table = compare("table");
  EXPECT_CONTAINS(table, "stage: weighted_finetune (the last stage");
  EXPECT_CONTAINS(table, "config: 1 of ");
  EXPECT_CONTAINS(table, key);
  const json doc = json::parse(compare("json"));
  EXPECT_EQ(doc["keys"], json::array({key}));
  EXPECT_EQ(doc["runs"][0]["stage"], "weighted_finetune");  // the last stage, by default
  ASSERT_EQ(doc["runs"].size(), 2u);
  const json want = read_json(reference_run_ / "report.json")["stages"][1]["best"]["overall"];
  const json got = read_json(other_run / "report.json")["stages"][1]["best"]["overall"];
  EXPECT_EQ(doc["runs"][0]["metrics"]["mre_mm"]["value"], want["mre"]);
  EXPECT_EQ(doc["runs"][1]["metrics"]["mre_mm"]["value"], got["mre"]);
  EXPECT_DOUBLE_EQ(doc["runs"][1]["metrics"]["mre_mm"]["delta"].get<double>(),
                   got["mre"].get<double>() - want["mre"].get<double>());
  EXPECT_CONTAINS(compare("markdown"), "| # | run | status | " + key + " | MRE mm |");
  const auto csv = test::split_lines(compare("csv"));
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(csv[0].rfind("number,label,path,status,stage," + key + ",mre_mm,mre_mm_delta", 0), 0u)
      << csv[0];
}

TEST_F(ResumeTest, KilledMidEpochResumesToTheSameResult) {
  kill_resume_and_compare("KILL@step:pretrain:2:1", SIGKILL);
}

TEST_F(ResumeTest, KilledDuringACheckpointWriteResumesToTheSameResult) {
  kill_resume_and_compare("KILL@checkpoint:pretrain:2:latest", SIGKILL);
}

TEST_F(ResumeTest, KilledWritingTheLastEpochsLatestResumesToTheSameFiles) {
  kill_resume_and_compare("KILL@checkpoint:pretrain:3:latest", SIGKILL);
}

TEST_F(ResumeTest, KilledWritingTheLastStagesLastLatestResumesToTheSameFiles) {
  kill_resume_and_compare("KILL@checkpoint:weighted_finetune:2:latest", SIGKILL);
}

TEST_F(ResumeTest, KilledBetweenStagesResumesToTheSameResult) {
  kill_resume_and_compare("KILL@stage-end:pretrain", SIGKILL);
}

TEST_F(ResumeTest, KilledInTheSecondStageResumesToTheSameResult) {
  kill_resume_and_compare("KILL@step:weighted_finetune:2:2", SIGKILL);
}

TEST_F(ResumeTest, SigtermMidEpochSavesThePositionAndResumesToTheSameResult) {
  kill_resume_and_compare("TERM@step:pretrain:1:1", SIGTERM);
}

TEST_F(ResumeTest, ResumeRefusesAnotherConfiguration) {
  test::TempDir output("exprun-resume");
  test::ProcessOptions with_fault;
  with_fault.env["EXPRUN_FAULT"] = "KILL@step:pretrain:1:1";
  ASSERT_EQ(test::run_exprun(run_args(output.path()), with_fault).term_signal, SIGKILL);
  std::vector<std::string> changed = run_args(output.path());
  changed.insert(changed.end(), {"--set", "stages.pretrain.optimizer.lr=1e-3", "--resume"});
  const ProcessResult r = test::run_exprun(changed);
  expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_CONTAINS(r.err, "it was run with another configuration");
  EXPECT_CONTAINS(r.err, "/stages/0/optimizer/lr");
}

// A checkpoint copied in from a run of the same experiment under another seed would continue
// with this run's epoch orders from the other run's weights: neither run's result.
TEST_F(ResumeTest, ResumeRefusesACheckpointOfAnotherSeed) {
  test::TempDir output("exprun-resume"), other("exprun-resume-other");
  test::ProcessOptions with_fault;
  with_fault.env["EXPRUN_FAULT"] = "KILL@step:pretrain:2:1";
  ASSERT_EQ(test::run_exprun(run_args(output.path()), with_fault).term_signal, SIGKILL);
  std::vector<std::string> reseeded = run_args(other.path());
  reseeded.insert(reseeded.end(), {"--set", "experiment.seed=7"});
  ASSERT_EQ(test::run_exprun(reseeded, with_fault).term_signal, SIGKILL);
  const fs::path ours = only_run_dir(output.path()) / "pretrain" / "checkpoints";
  const fs::path theirs = only_run_dir(other.path()) / "pretrain" / "checkpoints";
  for (const auto& e : fs::directory_iterator(ours)) fs::remove(e.path());
  fs::copy_file(theirs / "latest.pt", ours / "latest.pt");
  std::vector<std::string> resume = run_args(output.path());
  resume.push_back("--resume");
  const ProcessResult r = test::run_exprun(resume);
  expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_CONTAINS(r.out + r.err, "belongs to a run with experiment.seed = 7, this run's is 11");
  EXPECT_TRUE(read_checkpoint_info(ours / "latest.pt").seed == std::optional<std::uint64_t>(7));
}

// micro_batch = "auto": the resumed stage trains with the micro-batch the tuner chose before
// the interruption, without measuring again.
TEST(ResumeBatchPlan, TheTunersChoiceIsReusedNotRemeasured) {
  test::TempDir output("exprun-resume");
  std::vector<std::string> args = run_args(output.path());
  for (const std::string& s :
       std::vector<std::string>{"stages.pretrain.memory.micro_batch=\"auto\"",
                                "stages.pretrain.memory.budget=\"4GiB\""}) {
    args.push_back("--set");
    args.push_back(s);
  }
  test::ProcessOptions with_fault;
  with_fault.env["EXPRUN_FAULT"] = "TERM@step:pretrain:2:1";
  with_fault.timeout_s = 400;  // the tuner measures five candidates first
  const ProcessResult stopped = test::run_exprun(args, with_fault);
  ASSERT_EQ(stopped.exit_code, 143) << stopped.describe();
  EXPECT_CONTAINS(stopped.err, "tuning the micro-batch");
  const fs::path run = only_run_dir(output.path());
  const json before = read_json(run / "report.json")["stages"][0]["batch_plan"];
  EXPECT_EQ(before["chosen_by"], "tuner");
  ASSERT_TRUE(before["tuning"].is_object());

  args.push_back("--resume");
  test::ProcessOptions patient;
  patient.timeout_s = 400;
  const ProcessResult resumed = test::run_exprun(args, patient);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
  EXPECT_NOT_CONTAINS(resumed.err, "tuning the micro-batch");
  EXPECT_CONTAINS(resumed.err, "stage pretrain: micro-batch " + before["micro_batch"].dump() +
                                   " as chosen before the interruption");
  const json after = read_json(run / "report.json")["stages"][0]["batch_plan"];
  EXPECT_EQ(after, before);
}

TEST(ResumeErrors, NothingToResumeIsAClearError) {
  test::TempDir output("exprun-resume");
  std::vector<std::string> args = run_args(output.path());
  args.push_back("--resume");
  const ProcessResult r = test::run_exprun(args);
  expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_CONTAINS(r.err, "--resume: no unfinished run of experiment weighted_chain_tiny");
}

// ---------------------------------------------------------------- the shipped 768 chain

// experiments/768_weighted.toml as written, on an Aariz tree from `exprun synth`, cut down by
// --set to seconds on a CPU: both stages run, the fine-tune starts from pretrain_768's best
// checkpoint and weights its 12 worst landmarks.
TEST(WeightedChain768, RunsEndToEndOnASynthAarizTree) {
  test::TempDir scratch("exprun-768");
  const fs::path tree = scratch / "aariz";
  const ProcessResult synth = test::run_exprun(
      {"synth", "--format", "aariz", "--out", tree.string(), "--count", "14", "--seed", "5"});
  ASSERT_EQ(synth.exit_code, 0) << synth.describe();
  std::vector<std::string> args = {
      "run", (fs::path(EXPRUN_SOURCE_DIR) / "experiments" / "768_weighted.toml").string(),
      "--output", (scratch / "results").string()};
  for (const std::string& s : std::vector<std::string>{
           "data.root=" + tree.string(), "epochs=1", "schedule.warmup_epochs=0",
           "data.image_size=[64, 64]", "data.workers=1", "model.width=4",
           "model.num_modules=[1, 1, 1]", "model.num_blocks=1", "model.stem_blocks=1",
           "experiment.threads=2"}) {
    args.push_back("--set");
    args.push_back(s);
  }
  const ProcessResult r = test::run_exprun(args);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  std::vector<fs::path> runs;
  for (const auto& e : fs::directory_iterator(scratch / "results" / "aariz-hrnet-768-weighted"))
    runs.push_back(e.path());
  ASSERT_EQ(runs.size(), 1u);
  const json report = read_json(runs[0] / "report.json");
  EXPECT_EQ(report["status"], "completed");
  ASSERT_EQ(report["stages"].size(), 2u);
  const json& finetune = report["stages"][1];
  EXPECT_EQ(finetune["name"], "weighted_finetune");
  EXPECT_EQ(finetune["init"]["from"], "pretrain_768:best");
  EXPECT_EQ(finetune["focus"]["chosen"].size(), 12u);
  EXPECT_EQ(finetune["batch_plan"]["micro_batch"], 2);
  EXPECT_EQ(finetune["batch_plan"]["accumulation_steps"], 2);
  EXPECT_EQ(report["stages"][0]["data"]["landmarks"].size(), 29u);
  EXPECT_CONTAINS(r.err, "loss weight x3 on the 12 worst landmarks of pretrain_768");
}

// ---------------------------------------------------------------- checkpoint files

// A model with a parameter and a buffer, enough to write real checkpoints quickly.
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

struct CheckpointFiles : ::testing::Test {
  void SetUp() override {
    torch::manual_seed(0);
    model = std::make_shared<TinyModel>();
    optimizer = std::make_unique<torch::optim::Adam>(model->parameters());
    // One real step, so the optimiser has state worth saving.
    model->forward(torch::rand({2, 1, 6, 6})).sum().backward();
    optimizer->step();
  }
  void write(const std::string& name, std::int64_t epoch, std::int64_t step = 0) {
    CheckpointInfo info;
    info.experiment = "e";
    info.stage = "s";
    info.epoch = epoch;
    info.step_in_epoch = step;
    info.monitor = "val_mre_mm";
    info.best_metric = 1.5;
    info.landmark_symbols = {"S", "N"};
    info.landmark_titles = {"Sella", "Nasion"};
    info.trainer_state = {{"history", json::array({{{"epoch", epoch}}})}};
    save_checkpoint(dir / "checkpoints" / (name + ".pt"), state(), info);
  }
  TrainingState state() { return {*model, *optimizer, strategies, torch::kCPU}; }
  std::string error_reading(const fs::path& path) {
    try {
      read_checkpoint_info(path);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    ADD_FAILURE() << path << " read without error";
    return "";
  }

  test::TempDir dir{"exprun-checkpoints"};
  std::shared_ptr<TinyModel> model;
  std::unique_ptr<torch::optim::Adam> optimizer;
  std::vector<std::shared_ptr<sdk::MemoryStrategy>> strategies;
};

TEST_F(CheckpointFiles, RoundTripRestoresWeightsOptimiserGeneratorAndRecord) {
  write("latest", 3, 2);
  const auto saved_weight = model->named_parameters()["conv.weight"].clone();
  const auto next_draw = torch::rand({4});  // the draw after the state was saved
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(1.0);
  }
  optimizer->step();
  const CheckpointInfo info = load_training_state(dir / "checkpoints/latest.pt", state());
  EXPECT_TRUE(torch::equal(model->named_parameters()["conv.weight"], saved_weight));
  EXPECT_TRUE(torch::equal(torch::rand({4}), next_draw));
  EXPECT_EQ(info.epoch, 3);
  EXPECT_EQ(info.step_in_epoch, 2);
  EXPECT_EQ(info.landmark_symbols, (std::vector<std::string>{"S", "N"}));
  EXPECT_EQ(info.trainer_state["history"][0]["epoch"], 3);
}

TEST_F(CheckpointFiles, TruncatedDamagedAndForeignFilesGiveClearErrors) {
  write("latest", 1);
  const fs::path file = dir / "checkpoints/latest.pt";
  const std::string bytes = test::read_text(file);

  test::write_text(file, bytes.substr(0, bytes.size() / 2));
  EXPECT_CONTAINS(error_reading(file), "checkpoint " + file.string() + " is truncated: ");

  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x40);
  test::write_text(file, flipped);
  EXPECT_CONTAINS(error_reading(file), "is damaged: its CRC-32C does not match");

  test::write_text(file, "PK\x03\x04 not ours");
  EXPECT_CONTAINS(error_reading(file), "is not an exprun checkpoint");

  test::write_text(file, "");
  EXPECT_CONTAINS(error_reading(file), "is truncated (0 bytes)");

  fs::remove(file);
  EXPECT_CONTAINS(error_reading(file), "cannot be opened");
}

// Module::load alone took the stored shapes: a checkpoint of another width silently turned the
// model into that width, and stored tensors the model lacks were dropped.
class WiderModel : public sdk::Model {
 public:
  explicit WiderModel(std::int64_t channels, bool extra = false) {
    conv_ = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, channels, 3)));
    norm_ = register_module("norm", torch::nn::BatchNorm2d(channels));
    if (extra) register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 1, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) override { return norm_(conv_(x)); }
  std::int64_t output_stride() const override { return 1; }

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d norm_{nullptr};
};

TEST_F(CheckpointFiles, WeightsOfAnotherModelAreRefusedNamingTheTensors) {
  write("best", 1);
  const fs::path file = dir / "checkpoints/best.pt";
  auto error_loading = [&](sdk::Model& into) -> std::string {
    try {
      load_model_weights(file, into);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    ADD_FAILURE() << "loaded";
    return "";
  };
  WiderModel wider(4);
  const std::string reshaped = error_loading(wider);
  EXPECT_CONTAINS(reshaped,
                  "checkpoint " + file.string() +
                      " does not fit this model: its "
                      "weights have other shapes than the model's (conv.weight, conv.bias, "
                      "norm.weight and ");
  EXPECT_CONTAINS(reshaped, "conv.weight is [2, 1, 3, 3] in it, [4, 1, 3, 3] in the model");
  WiderModel more(2, /*extra=*/true);
  EXPECT_CONTAINS(error_loading(more),
                  "does not fit this model: it lacks weights the model has "
                  "(head.bias, head.weight)");
  // A checkpoint of the model with one more module, loaded into the one without it.
  auto fewer = std::make_shared<TinyModel>();
  {
    torch::optim::Adam adam(more.parameters());
    TrainingState wide_state{more, adam, strategies, torch::kCPU};
    CheckpointInfo info;
    info.experiment = "e";
    info.stage = "s";
    save_checkpoint(file, wide_state, info);
  }
  EXPECT_CONTAINS(error_loading(*fewer),
                  "does not fit this model: it holds weights the model "
                  "lacks (head.bias, head.weight)");
  // The same shapes load, and for resuming too.
  write("best", 1);
  TinyModel same;
  EXPECT_NO_THROW(load_model_weights(file, same));
}

TEST_F(CheckpointFiles, ResumeFallsBackToTheNewestValidCheckpoint) {
  write("epoch_2", 2);
  write("best", 3);
  write("latest", 4);
  const fs::path latest = dir / "checkpoints/latest.pt";
  EXPECT_EQ(newest_valid_checkpoint(dir.path()), latest);

  const std::string bytes = test::read_text(latest);
  test::write_text(latest, bytes.substr(0, bytes.size() - 100));
  test::write_text(dir / "checkpoints/latest.pt.tmp-4242", bytes.substr(0, 10));
  testing::internal::CaptureStderr();
  const auto chosen = newest_valid_checkpoint(dir.path());
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_EQ(chosen, dir / "checkpoints/best.pt");
  EXPECT_CONTAINS(warning, latest.string() + " is truncated");
  EXPECT_CONTAINS(warning, "passing over it");
  EXPECT_FALSE(fs::exists(dir / "checkpoints/latest.pt.tmp-4242"));

  test::write_text(dir / "checkpoints/best.pt", "garbage");
  testing::internal::CaptureStderr();
  EXPECT_EQ(newest_valid_checkpoint(dir.path()), dir / "checkpoints/epoch_2.pt");
  testing::internal::GetCapturedStderr();
}

}  // namespace
}  // namespace exprun

// exprun tune and micro_batch = "auto" through the real binary on the tiny synthetic
// experiment (HRNet of width 4): the measured table, its JSON, and a run whose tuner picks
// micro-batch 2 x 3 under a budget that fits 2 but not 3, and whose measured peak stays under it.
// Also exprun bench, which measures the same steps across plans and memory strategies, and
// exprun bench --data, which measures the stage's data pipeline alone, and exprun bench
// --training, which times the runner's epochs against the bare loop and the PyTorch reference.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>

#include "bench/data_benchmark.hpp"
#include "bench/strategy_benchmark.hpp"
#include "bench/training_benchmark.hpp"
#include "config/experiment_loader.hpp"
#include "plugins/registry.hpp"
#include "test_support.hpp"
#include "util/timestamp.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::expect_no_crash;
using test::ProcessResult;

ProcessResult exprun(std::vector<std::string> args, const fs::path& cwd) {
  test::ProcessOptions options;
  options.cwd = cwd;
  options.timeout_s = 300;
  return test::run_exprun(std::move(args), std::move(options));
}

class TuneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    experiment_.threads = 1;  // one thread: peaks do not depend on how work is split
    experiment_.epochs = 1;
    experiment_.effective_batch = 6;
    experiment_.micro_batch = 6;
  }

  // exprun tune with a budget everything fits: peak bytes by micro-batch.
  std::map<std::int64_t, std::int64_t> measured_peaks() {
    test::write_text(file_, experiment_.toml());
    const auto r = exprun(
        {"tune", file_.string(), "--budget", "1TiB", "--json", (dir_ / "tune.json").string()},
        dir_.path());
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    const json tune = json::parse(test::read_text(dir_ / "tune.json"));
    std::map<std::int64_t, std::int64_t> out;
    for (const auto& t : tune["stages"][0]["trials"])
      out[t["micro_batch"].get<std::int64_t>()] = t["peak_bytes"].get<std::int64_t>();
    return out;
  }

  test::TempDir dir_{"exprun-tune"};
  fs::path file_ = dir_ / "tiny.toml";
  test::TinyExperiment experiment_;
};

TEST_F(TuneTest, PrintsTheTableAndWritesItsJson) {
  test::write_text(file_, experiment_.toml());
  const auto r = exprun({"tune", file_.string(), "--budget", "1TiB"}, dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  expect_no_crash(r);
  const auto lines = test::split_lines(r.out);
  ASSERT_GE(lines.size(), 9u) << r.out;
  EXPECT_EQ(lines[0].rfind("stage train on cpu: effective batch 6, limit 922 GiB (memory.budget "
                           "1.00 TiB less 10%)",
                           0),
            0u)
      << lines[0];
  EXPECT_CONTAINS(lines[1], "micro");
  EXPECT_CONTAINS(lines[1], "accum");
  EXPECT_CONTAINS(lines[1], "peak");
  EXPECT_CONTAINS(lines[1], "img/s");
  EXPECT_CONTAINS(lines[1], "epoch");
  EXPECT_CONTAINS(lines[1], "fits");
  // 1, 2, 3, 4, 6: all measured, all fit.
  for (std::size_t i = 2; i < 7; ++i) EXPECT_CONTAINS(lines[i], "yes");
  EXPECT_CONTAINS(r.out, "<- chosen");
  EXPECT_CONTAINS(r.out, "chosen: micro-batch ");
  const std::string last = lines.back();
  ASSERT_EQ(last.rfind("measurements: results/tiny/tune-", 0), 0u) << last;
  const json tune =
      json::parse(test::read_text(dir_ / last.substr(std::string("measurements: ").size())));
  EXPECT_EQ(tune["experiment"], "tiny");
  EXPECT_EQ(tune["threads"], 1);
  ASSERT_EQ(tune["stages"].size(), 1u);
  const json& stage = tune["stages"][0];
  EXPECT_EQ(stage["stage"], "train");
  EXPECT_EQ(stage["device"], "cpu");
  EXPECT_EQ(stage["effective_batch"], 6);
  EXPECT_EQ(stage["budget_bytes"], std::int64_t{1} << 40);
  EXPECT_EQ(stage["budget_source"], "memory.budget");
  EXPECT_EQ(stage["margin"], 0.1);
  EXPECT_EQ(stage["speed_tolerance"], 0.05);
  ASSERT_EQ(stage["trials"].size(), 5u);
  const std::vector<std::int64_t> micro = {1, 2, 3, 4, 6}, accumulation = {6, 3, 2, 2, 1};
  for (std::size_t i = 0; i < 5; ++i) {
    const json& t = stage["trials"][i];
    EXPECT_EQ(t["micro_batch"], micro[i]);
    EXPECT_EQ(t["accumulation"], accumulation[i]);
    EXPECT_TRUE(t["fits"].get<bool>());
    EXPECT_GT(t["peak_bytes"].get<std::int64_t>(), 0);
    EXPECT_GT(t["images_per_second"].get<double>(), 0);
    // 16 training images in steps of 6: 3 steps per epoch.
    EXPECT_NEAR(t["epoch_seconds"].get<double>(), 3 * t["step_seconds"].get<double>(), 1e-9);
  }
  EXPECT_EQ(stage["trials"][3]["passes"], json::array({4, 2}));
}

TEST_F(TuneTest, AutoChoosesTwoByThreeAndTheRunStaysUnderBudget) {
  // No data worker: a worker's next batch is in the peak or not depending on when the worker
  // runs (docs/cli.md, "Peak memory is deterministic"), and the budget below leaves a quarter
  // of the step from micro-batch 2 to 3, which a batch of the queue can exceed under load.
  experiment_.stage_extra = "data.workers = 0\n";
  const auto peaks = measured_peaks();
  ASSERT_EQ(peaks.size(), 5u);
  ASSERT_LT(peaks.at(2), peaks.at(3));
  const double limit =
      static_cast<double>(peaks.at(2)) + 0.25 * static_cast<double>(peaks.at(3) - peaks.at(2));
  const auto budget = static_cast<std::int64_t>(limit / 0.9);

  experiment_.micro_batch_auto = true;
  // Micro-batches 1 and 2 both fit, and which is faster varies from run to run: the largest
  // that fits, so that the choice repeats as the peaks do.
  experiment_.memory_extra = "budget = " + std::to_string(budget) + "\nspeed_tolerance = 1";
  test::write_text(file_, experiment_.toml());
  const auto r =
      exprun({"run", file_.string(), "--output", (dir_ / "results").string()}, dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  expect_no_crash(r);
  EXPECT_CONTAINS(r.err, "tuning the micro-batch for effective batch 6");
  EXPECT_CONTAINS(r.err, "micro-batch 2 x 3 accumulation");

  fs::path run_dir;
  for (const auto& entry : fs::directory_iterator(dir_ / "results" / "tiny"))
    run_dir = entry.path();
  const json report = json::parse(test::read_text(run_dir / "report.json"));
  const json& stage = report["stages"][0];
  EXPECT_EQ(stage["batch_plan"]["micro_batch"], 2);
  EXPECT_EQ(stage["batch_plan"]["accumulation_steps"], 3);
  EXPECT_EQ(stage["batch_plan"]["chosen_by"], "tuner");
  EXPECT_EQ(stage["batch_plan"]["tuning"]["chosen_micro_batch"], 2);
  EXPECT_EQ(stage["batch_plan"]["tuning"]["budget_bytes"], budget);
  EXPECT_EQ(stage["batch_plan"]["tuning"]["speed_tolerance"], 1.0);
  EXPECT_EQ(report["config"]["stages"][0]["memory"]["micro_batch"], "auto");
  EXPECT_EQ(report["config"]["stages"][0]["memory"]["budget"], budget);
  const auto peak = stage["peak_memory_bytes"].get<std::int64_t>();
  EXPECT_GT(peak, 0);
  EXPECT_LE(peak, budget);
}

TEST_F(TuneTest, AutoWithoutABudgetOnCpuIsAnError) {
  experiment_.micro_batch_auto = true;
  test::write_text(file_, experiment_.toml());
  const auto r = exprun({"plan", file_.string()}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();  // a configuration error
  expect_no_crash(r);
  EXPECT_CONTAINS(r.err,
                  "stages.train.memory.budget: micro_batch = \"auto\" on cpu needs a "
                  "memory budget");
}

TEST_F(TuneTest, TuneOnCpuWithoutABudgetNamesTheKeyToSet) {
  test::write_text(file_, experiment_.toml());
  const auto r = exprun({"tune", file_.string()}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  expect_no_crash(r);
  EXPECT_CONTAINS(r.err,
                  "stages.train.memory.budget: the batch tuner on cpu needs a memory "
                  "budget");
}

TEST_F(TuneTest, BadBudgetAndUnknownStageAreUsageErrors) {
  test::write_text(file_, experiment_.toml());
  auto r = exprun({"tune", file_.string(), "--budget", "lots"}, dir_.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "--budget: expected a memory size such as 6GiB");
  r = exprun({"tune", file_.string(), "--budget", "1GiB", "--stage", "trian"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--stage trian: no stage is named \"trian\"; did you mean 'train'?");
}

// ---------------------------------------------------------------- exprun bench

TEST(BenchPlans, ParseMicroByAccumulation) {
  const auto plans = parse_bench_plans("4x1, 2x2,1x4");
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_EQ(plans[1].micro_batch, 2);
  EXPECT_EQ(plans[1].accumulation, 2);
  EXPECT_EQ(plans[2].effective_batch(), 4);
  for (const char* bad : {"4", "x2", "4x0", "2x2x2", "ax1", ""}) {
    EXPECT_THROW(parse_bench_plans(bad), std::invalid_argument) << bad;
  }
  const auto all = plans_for_effective_batch(6);
  ASSERT_EQ(all.size(), 4u);  // 6x1, 3x2, 2x3, 1x6
  EXPECT_EQ(all[0].micro_batch, 6);
  EXPECT_EQ(all[3].accumulation, 6);
}

TEST(BenchVariants, ParseNamesJoinedByPlus) {
  const auto v = parse_bench_variants("none,mixed_precision+activation_checkpointing");
  ASSERT_EQ(v.size(), 2u);
  EXPECT_TRUE(v[0].empty());
  EXPECT_EQ(variant_name(v[1]), "mixed_precision+activation_checkpointing");
  try {
    parse_bench_variants("none,gradient_accumulation");
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_CONTAINS(e.what(), "found 'gradient_accumulation'");
  }
}

class BenchTest : public TuneTest {};

// Peaks are exact byte counts of live tensors with one thread, so they can be compared.
TEST_F(BenchTest, MeasuresEveryPlanWithAndWithoutEachStrategy) {
  // No data worker: whether its next batch is alive at a step's peak depends on timing, and the
  // closest comparisons below differ by less than a batch.
  experiment_.stage_extra = "data.workers = 0\n";
  experiment_.effective_batch = 4;
  experiment_.micro_batch = 4;
  test::write_text(file_, experiment_.toml());
  const auto r = exprun({"bench", file_.string(), "--plans", "4x1,2x2,1x4", "--steps", "1",
                         "--json", (dir_ / "bench.json").string()},
                        dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  expect_no_crash(r);
  const auto lines = test::split_lines(r.out);
  ASSERT_EQ(lines.size(), 15u) << r.out;  // title, header, 12 cases, JSON path
  EXPECT_CONTAINS(lines[1], "peak");
  EXPECT_CONTAINS(lines[1], "img/s");
  EXPECT_EQ(lines[2].rfind("4x1    none", 0), 0u) << lines[2];
  EXPECT_CONTAINS(lines[13], "1x4    mixed_precision+activation_checkpointing");

  const json bench = json::parse(test::read_text(dir_ / "bench.json"));
  EXPECT_EQ(bench["stage"], "train");
  EXPECT_EQ(bench["timed_steps"], 1);
  ASSERT_EQ(bench["cases"].size(), 12u);
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> peak;
  for (const auto& c : bench["cases"]) {
    ASSERT_TRUE(c["ok"].get<bool>()) << c.dump();
    EXPECT_EQ(c["effective_batch"], 4);
    EXPECT_GT(c["images_per_second"].get<double>(), 0);
    peak[{c["variant"].get<std::string>(), c["micro_batch"].get<std::int64_t>()}] =
        c["peak_bytes"].get<std::int64_t>();
  }
  EXPECT_EQ(bench["cases"][3]["strategies"],
            json::array({"mixed_precision", "gradient_accumulation", "activation_checkpointing"}));
  for (const std::string variant : {"none", "mixed_precision", "activation_checkpointing",
                                    "mixed_precision+activation_checkpointing"}) {
    // Smaller micro-batches hold fewer activations.
    EXPECT_GT(peak.at({variant, 4}), peak.at({variant, 2})) << variant;
    EXPECT_GT(peak.at({variant, 2}), peak.at({variant, 1})) << variant;
  }
  // Halved activations outweigh bf16's extra weight copies only where activations dominate:
  // on CPUs with AMX, oneDNN's bf16 kernels also keep reordered weights and workspace, which at
  // micro-batch 1 of this width-4 net cost more than they save (9.63 against 8.42 MiB,
  // measured), while without AMX bf16 wins at every size. So the claim is made where it holds
  // on every CPU: the largest micro-batch.
  EXPECT_LT(peak.at({"mixed_precision", 4}), peak.at({"none", 4}));
  for (std::int64_t micro : {4, 2, 1}) {
    EXPECT_LT(peak.at({"activation_checkpointing", micro}), peak.at({"none", micro})) << micro;
    EXPECT_LT(peak.at({"mixed_precision+activation_checkpointing", micro}),
              peak.at({"mixed_precision", micro}))
        << micro;
  }
}

TEST_F(BenchTest, BadPlansAreUsageErrors) {
  test::write_text(file_, experiment_.toml());
  auto r = exprun({"bench", file_.string(), "--plans", "4x0"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  expect_no_crash(r);
  EXPECT_CONTAINS(r.err,
                  "--plans '4x0': expected MICROxACCUMULATION with integers from 1 to 1048576");
  // Each side within memory.effective_batch's bound, and their product too (no overflow).
  r = exprun({"bench", file_.string(), "--plans", "9223372036854775807x2"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "with integers from 1 to 1048576");
  r = exprun({"bench", file_.string(), "--plans", "1024x1025"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "'1024x1025': 1049600 images per step; expected at most 1048576");
}

// ---------------------------------------------------------------- exprun bench --data

TEST(BenchDataWorkers, ParseDistinctCounts) {
  EXPECT_EQ(parse_worker_counts("0, 1,2,2,4"), (std::vector<std::int64_t>{0, 1, 2, 4}));
  for (const std::string bad : {"", "1,", "-1", "x", "2.5", "257"}) {
    EXPECT_THROW(parse_worker_counts(bad), std::invalid_argument) << bad;
  }
}

TEST_F(BenchTest, DataMeasuresThePipelineForEachWorkerCountAndNamesTheBottleneck) {
  test::write_text(file_, experiment_.toml());
  const auto r = exprun({"bench", file_.string(), "--data", "--workers", "0,1,2", "--images", "8",
                         "--rounds", "1", "--steps", "1", "--json", (dir_ / "data.json").string()},
                        dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  expect_no_crash(r);
  EXPECT_CONTAINS(r.out, "bench --data tiny, stage train: data.workers = 1, 1 threads");
  EXPECT_CONTAINS(r.out, "8 images of train");
  EXPECT_CONTAINS(r.out, "at 64x80, batches of 6");
  EXPECT_CONTAINS(r.out, "one image on one thread, decoding: read+decode ");
  // synthetic_ceph draws its films: no file for the film cache, and the film memo is measured.
  EXPECT_CONTAINS(r.out,
                  "one image on one thread, film memo warm (the dataset makes its images): "
                  "read+decode ");
  EXPECT_CONTAINS(r.out, "model: hrnet, 1 timed steps of 6 images (micro-batch 6) on pre-made");
  EXPECT_CONTAINS(r.out, "bottleneck: the ");

  const json data = json::parse(test::read_text(dir_ / "data.json"));
  EXPECT_EQ(data["stage"], "train");
  EXPECT_EQ(data["input_size"], json::array({64, 80}));
  EXPECT_EQ(data["batch_size"], 6);
  EXPECT_EQ(data["images"], 8);
  EXPECT_EQ(data["configured_workers"], 1);
  // synthetic_ceph draws 440 x 540 and 480 x 600 films.
  EXPECT_GT(data["mean_megapixels"].get<double>(), 0.23);
  EXPECT_LT(data["mean_megapixels"].get<double>(), 0.29);
  for (const auto* phase : {"read_decode", "resize_augment", "targets"})
    EXPECT_GT(data["phases_ms_per_image"][phase].get<double>(), 0) << phase;
  EXPECT_EQ(data["cache_measured"], true);
  EXPECT_EQ(data["cache_kind"], "memory");
  EXPECT_EQ(data["cache_note"], "");
  // The memo warm skips the resize: what is left of read+decode is get() and the image's hash.
  const json& warm = data["cached_phases_ms_per_image"];
  EXPECT_LT(warm["read_decode"].get<double>(), data["phases_ms_per_image"]["read_decode"]);
  EXPECT_LT(warm["resize_augment"].get<double>(), data["phases_ms_per_image"]["resize_augment"]);
  ASSERT_EQ(data["workers"].size(), 3u);
  for (std::int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(data["workers"][i]["workers"], i);
    EXPECT_GT(data["workers"][i]["images_per_second"].get<double>(), 0);
    EXPECT_GT(data["workers"][i]["cached_images_per_second"].get<double>(), 0);
  }
  EXPECT_EQ(data["configured_images_per_second"], data["workers"][1]["cached_images_per_second"]);
  const double model = data["model_images_per_second"].get<double>();
  EXPECT_GT(model, 0);
  const double pipeline = data["configured_images_per_second"].get<double>();
  EXPECT_EQ(data["bottleneck"], pipeline < model ? "data pipeline" : "model");
}

TEST_F(BenchTest, DataOptionsAreCheckedAndBelongToData) {
  test::write_text(file_, experiment_.toml());
  auto r = exprun({"bench", file_.string(), "--data", "--workers", "0,x"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--workers 'x': expected worker counts 0 to 256");
  r = exprun({"bench", file_.string(), "--data", "--images", "0"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--images: expected 1 to 1000000, found 0");
  r = exprun({"bench", file_.string(), "--data", "--images", "99999999999999"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--images: expected 1 to 1000000, found 99999999999999");
  // An empty value is not the default; an option of another mode is refused at its default too.
  r = exprun({"bench", file_.string(), "--data", "--workers", ""}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--workers: empty; give a value or leave the option out");
  r = exprun({"bench", file_.string(), "--rounds", "3"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--rounds with --data or --training");
  r = exprun({"bench", file_.string(), "--workers", "0,1"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err,
                  "--workers, --images and --no-model go with --data, --rounds with --data "
                  "or --training");
  r = exprun({"bench", file_.string(), "--data", "--plans", "4x1"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--plans and --variants go without --data");
}

// The default JSON name takes -2, -3, ... rather than replacing the file of a benchmark that
// finished in the same second.
TEST_F(BenchTest, DefaultJsonNameNeverReplacesAnother) {
  experiment_.stage_extra = "data.workers = 0\n";
  experiment_.output = dir_ / "results";
  test::write_text(file_, experiment_.toml());
  // Files for every second the benchmark may finish in: it must pick a suffixed name.
  const fs::path folder = experiment_.output / experiment_.name;
  fs::create_directories(folder);
  const std::time_t now = std::time(nullptr);
  for (std::time_t t = now; t < now + 120; ++t)
    test::write_text(folder / ("bench-data-" + utc_timestamp(t) + ".json"), "taken");
  const auto r = exprun({"bench", file_.string(), "--data", "--no-model", "--workers", "0",
                         "--images", "2", "--rounds", "1"},
                        dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  std::size_t suffixed = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 7 && name.compare(name.size() - 7, 7, "-2.json") == 0) {
      ++suffixed;
      EXPECT_CONTAINS(r.out, name);
      EXPECT_EQ(json::parse(test::read_text(entry.path()))["images"], 2);
    } else {
      EXPECT_EQ(test::read_text(entry.path()), "taken") << name;
    }
  }
  EXPECT_EQ(suffixed, 1u);
}

// ---------------------------------------------------------------- exprun bench --training

// Debian's PyTorch, which scripts/setup.sh installs (python3-torch) for these tests.
const char* const kDebianPython = "/usr/bin/python3";

Experiment parsed(const test::TinyExperiment& tiny) {
  return parse_experiment(tiny.toml(), "tiny.toml", {}, test::built_plugins());
}

TEST(BenchTrainingPython, ArgumentsFollowTheStage) {
  test::TinyExperiment tiny;
  tiny.loss = "adaptive_wing";
  tiny.strategies = {"mixed_precision", "gradient_accumulation"};
  tiny.stage_extra = "channels_last = true\nloss.use_loss_map = true\n";
  const Experiment e = parsed(tiny);
  const auto args = python_reference_arguments(e.stages[0], 29, 2, "cpu", 2, 5);
  const std::vector<std::string> expected = {"--device",
                                             "cpu",
                                             "--width",
                                             "4",
                                             "--size",
                                             "64x80",
                                             "--batch",
                                             "4",
                                             "--micro-batch",
                                             "2",
                                             "--landmarks",
                                             "29",
                                             "--channels",
                                             "1",
                                             "--num-modules",
                                             "1",
                                             "1",
                                             "1",
                                             "--num-blocks",
                                             "1",
                                             "--stem-blocks",
                                             "1",
                                             "--head-channels",
                                             "0",
                                             "--sigma",
                                             "1.5",
                                             "--lr",
                                             "0.002",
                                             "--precision",
                                             "bf16",
                                             "--threads",
                                             "2",
                                             "--steps",
                                             "5",
                                             "--loss-map",
                                             "--channels-last"};
  EXPECT_EQ(args, expected);
  // mixed_precision's dtype "auto" is fp16 on CUDA, as exprun's own step.
  const auto cuda = python_reference_arguments(e.stages[0], 29, 2, "cuda:0", 2, 5);
  EXPECT_EQ(cuda[1], "cuda");
  EXPECT_EQ(*(std::find(cuda.begin(), cuda.end(), "--precision") + 1), "fp16");
}

TEST(BenchTrainingPython, RefusesWhatTheReferenceCannotTrain) {
  auto refusal = [](test::TinyExperiment tiny) {
    try {
      python_reference_arguments(parsed(tiny).stages[0], 29, 2, "cpu", 1, 1);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  test::TinyExperiment tiny;
  tiny.loss = "mse";
  EXPECT_CONTAINS(refusal(tiny), "stage train has loss mse");
  tiny.loss = "adaptive_wing";
  tiny.strategies = {"activation_checkpointing", "gradient_accumulation"};
  EXPECT_CONTAINS(refusal(tiny), "stage train has memory strategy activation_checkpointing");
  tiny.strategies = {"gradient_accumulation"};
  tiny.stage_extra = "optimizer.weight_decay = 0.01\n";
  EXPECT_CONTAINS(refusal(tiny), "stage train has optimizer adam with other settings");
}

TEST_F(BenchTest, TrainingTimesTheRunnerTheBareLoopAndThePyTorchReference) {
  experiment_.loss = "adaptive_wing";
  experiment_.threads = 1;
  test::write_text(file_, experiment_.toml());
  const fs::path scratch = dir_ / "tmp";
  fs::create_directories(scratch);
  test::ProcessOptions options;
  options.cwd = dir_.path();
  options.timeout_s = 300;
  options.env["TMPDIR"] = scratch.string();  // where the runner's epochs write
  const auto r =
      test::run_exprun({"bench", file_.string(), "--training", "--rounds", "2", "--python",
                        kDebianPython, "--json", (dir_ / "training.json").string()},
                       options);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  expect_no_crash(r);
  EXPECT_CONTAINS(r.out,
                  "bench --training tiny, stage train: hrnet 64x80 input, batch 6, "
                  "data.workers = 1, 1 threads, 2 rounds");
  EXPECT_CONTAINS(r.out, std::string("PyTorch reference: ") + kDebianPython + " ");
  EXPECT_CONTAINS(r.out, "train_reference.py --device cpu --width 4 --size 64x80 --batch 6 ");
  EXPECT_CONTAINS(r.out, "runner/bare");
  EXPECT_CONTAINS(r.out, "\nmedian ");
  EXPECT_CONTAINS(r.out, "runner's epoch waiting for data: ");
  EXPECT_CONTAINS(r.out, "bare loop vs PyTorch ");
  // The runner's checkpoints and events went to a scratch folder that is gone.
  EXPECT_TRUE(fs::is_empty(scratch));

  const json out = json::parse(test::read_text(dir_ / "training.json"));
  EXPECT_EQ(out["stage"], "train");
  EXPECT_EQ(out["input_size"], json::array({64, 80}));
  EXPECT_EQ(out["effective_batch"], 6);
  EXPECT_EQ(out["micro_batch"], 6);
  EXPECT_EQ(out["steps_per_epoch"], 3);  // 16 images in batches of 6
  EXPECT_EQ(out["threads"], 1);
  ASSERT_EQ(out["rounds"].size(), 2u);
  std::vector<double> runner, bare, python, data_wait;
  for (const auto& round : out["rounds"]) {
    runner.push_back(round["runner_images_per_second"].get<double>());
    data_wait.push_back(round["runner_data_wait_share"].get<double>());
    bare.push_back(round["bare_images_per_second"].get<double>());
    python.push_back(round["python_images_per_second"].get<double>());
  }
  for (const auto& side : {runner, bare, python})
    for (double v : side) EXPECT_GT(v, 0);
  // A share of the runner's epoch: its steps took the rest.
  for (double share : data_wait) {
    EXPECT_GT(share, 0);
    EXPECT_LT(share, 1);
  }
  EXPECT_DOUBLE_EQ(out["runner_data_wait_share"].get<double>(), (data_wait[0] + data_wait[1]) / 2);
  // Medians of two rounds are their means; the ratios are of the medians.
  const double runner_median = (runner[0] + runner[1]) / 2, bare_median = (bare[0] + bare[1]) / 2,
               python_median = (python[0] + python[1]) / 2;
  EXPECT_DOUBLE_EQ(out["runner_images_per_second"].get<double>(), runner_median);
  EXPECT_DOUBLE_EQ(out["runner_vs_bare"].get<double>(), runner_median / bare_median);
  EXPECT_DOUBLE_EQ(out["runner_vs_python"].get<double>(), runner_median / python_median);
  EXPECT_DOUBLE_EQ(out["bare_vs_python"].get<double>(), bare_median / python_median);
  EXPECT_EQ(out["python_command"][0], kDebianPython);
  EXPECT_EQ(out["python_torch_version"].get<std::string>().rfind("1.13", 0), 0u)
      << out["python_torch_version"];
}

TEST_F(BenchTest, TrainingWithoutTheReferenceSaysWhy) {
  experiment_.threads = 1;  // loss mse: the reference trains adaptive wing only
  test::write_text(file_, experiment_.toml());
  auto r = exprun({"bench", file_.string(), "--training", "--rounds", "1", "--json",
                   (dir_ / "auto.json").string()},
                  dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_CONTAINS(r.out,
                  "PyTorch reference: not run: the PyTorch reference trains models/hrnet "
                  "with losses/adaptive_wing");
  json out = json::parse(test::read_text(dir_ / "auto.json"));
  EXPECT_TRUE(out["python_images_per_second"].is_null());
  EXPECT_TRUE(out["runner_vs_python"].is_null());
  EXPECT_GT(out["runner_vs_bare"].get<double>(), 0);
  EXPECT_CONTAINS(out["python_note"].get<std::string>(), "stage train has loss mse");

  // Asked for by name, the reference must run: the stage is an error, naming where it is.
  r = exprun({"bench", file_.string(), "--training", "--python", kDebianPython}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  expect_no_crash(r);
  EXPECT_CONTAINS(r.err, "tiny.toml:");
  EXPECT_CONTAINS(r.err, "stage train has loss mse (--python none measures without it)");

  r = exprun({"bench", file_.string(), "--training", "--rounds", "1", "--python", "none", "--json",
              (dir_ / "none.json").string()},
             dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_CONTAINS(r.out, "PyTorch reference: not run (--python none)");
  out = json::parse(test::read_text(dir_ / "none.json"));
  EXPECT_EQ(out["python_note"], "not run (--python none)");
}

TEST_F(BenchTest, TrainingOptionsAreChecked) {
  test::write_text(file_, experiment_.toml());
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--training", "--data"}, "--data and --training measure different things"},
      {{"--training", "--plans", "4x1"}, "go without --training"},
      {{"--training", "--steps", "2"}, "go without --training"},
      {{"--training", "--workers", "0"}, "go without --training"},
      {{"--training", "--rounds", "0"}, "--rounds: expected 1 to 1000, found 0"},
      {{"--training", "--images", "64"}, "go without --training"},
      {{"--training", "--python", "none", "--python-script", "x.py"},
       "--python-script goes with a --python other than none"},
      {{"--training", "--json", ""}, "--json: empty"},
      {{"--training", "--python", "none", "--json", dir_.path().string()},
       ": is a folder; expected the path of the file to write"},
      {{"--training", "--python", (dir_ / "no-python").string()},
       ": cannot run it, or it cannot import torch"},
      {{"--training", "--python-script", (dir_ / "none.py").string(), "--python", kDebianPython},
       "none.py: no such file"},
      {{"--python", "none"}, "--python and --python-script go with --training"},
  };
  for (const auto& [extra, message] : cases) {
    std::vector<std::string> args = {"bench", file_.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = exprun(args, dir_.path());
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    expect_no_crash(r);
    EXPECT_CONTAINS(r.err, message) << extra[1];
  }
}

}  // namespace
}  // namespace exprun

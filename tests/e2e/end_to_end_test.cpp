// exprun run on a tiny real experiment (synthetic_ceph, HRNet of width 4, 2 epochs on the CPU),
// then the run directory and report.json checked field by field against docs/report.md and
// docs/cli.md. Each run takes a few seconds on two cores.
#include <gtest/gtest.h>

#include <toml++/toml.h>
#include <torch/version.h>
#include <exprun/sdk/landmarks.hpp>
#include <exprun/sdk/params.hpp>
#include <exprun/sdk/plugin.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <limits>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "event_file_reader.hpp"
#include "plugins/registry.hpp"
#include "test_support.hpp"
#include "train/checkpoint.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::expect_no_crash;
using test::ProcessResult;

// The LibTorch archive inside a checkpoint, read as docs/report.md lays the file out: 24 header
// bytes starting "EXPRUNCK", then the payload.
void load_checkpoint_payload(const fs::path& file, torch::serialize::InputArchive& archive) {
  const std::string bytes = test::read_text(file);
  ASSERT_GT(bytes.size(), 24u);
  ASSERT_EQ(bytes.substr(0, 8), "EXPRUNCK");
  std::uint64_t length = 0;
  for (int i = 0; i < 8; ++i)
    length |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[12 + i])) << (8 * i);
  ASSERT_EQ(length, bytes.size() - 24);
  archive.load_from(bytes.data() + 24, bytes.size() - 24);
}

const fs::path kPluginDir = EXPRUN_PLUGIN_DIR;
// Seconds. A tiny run takes about 5 s on two idle cores, but the machine may be shared.
constexpr double kRunTimeout = 240;

ProcessResult exprun(std::vector<std::string> args, const fs::path& cwd) {
  test::ProcessOptions options;
  options.cwd = cwd;
  options.timeout_s = kRunTimeout;
  return test::run_exprun(std::move(args), std::move(options));
}

std::vector<std::string> symbols() {
  std::vector<std::string> out;
  for (const auto& l : sdk::aariz_landmarks()) out.push_back(l.symbol);
  return out;
}

std::vector<std::string> keys_of(const json& object) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.push_back(key);
  return keys;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The only folder in `dir`.
fs::path single_subdirectory(const fs::path& dir) {
  std::vector<fs::path> found;
  if (fs::is_directory(dir))
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_directory()) found.push_back(entry.path());
  if (found.size() != 1) {
    ADD_FAILURE() << "expected exactly one folder in " << dir << ", found " << found.size();
    return found.empty() ? fs::path() : found.front();
  }
  return found.front();
}

const std::regex kRunId(R"(\d{8}-\d{6}(-\d+)?)");
const std::regex kUtcTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");

// One summary object {mre, sd, sdr{2.0,2.5,3.0,4.0}, count} of `expected_count` errors.
void check_summary(json s, std::size_t expected_count, const std::string& where) {
  SCOPED_TRACE(where);
  ASSERT_TRUE(s.is_object()) << s;
  EXPECT_EQ(sorted(keys_of(s)), (std::vector<std::string>{"count", "mre", "sd", "sdr"}));
  ASSERT_TRUE(s["count"].is_number_integer()) << s;
  EXPECT_EQ(s["count"].get<std::size_t>(), expected_count);
  ASSERT_TRUE(s["mre"].is_number()) << s;
  ASSERT_TRUE(s["sd"].is_number()) << s;
  const double mre = s["mre"].get<double>();
  const double sd = s["sd"].get<double>();
  EXPECT_TRUE(std::isfinite(mre) && mre > 0) << mre;
  EXPECT_TRUE(std::isfinite(sd) && sd >= 0) << sd;
  // Synthetic films are ~195 x 240 mm: no error can exceed the diagonal.
  EXPECT_LT(mre, 310.0);
  json sdr = s["sdr"];
  ASSERT_TRUE(sdr.is_object()) << s;
  EXPECT_EQ(keys_of(sdr), (std::vector<std::string>{"2.0", "2.5", "3.0", "4.0"}));
  double previous = 0;
  for (const char* t : {"2.0", "2.5", "3.0", "4.0"}) {
    ASSERT_TRUE(sdr[t].is_number()) << t << ": " << sdr;
    const double v = sdr[t].get<double>();
    EXPECT_GE(v, 0.0) << t;
    EXPECT_LE(v, 100.0) << t;
    EXPECT_GE(v, previous) << "SDR grows with the threshold, " << t;
    previous = v;
    // A percentage of `count` errors: count * v / 100 is a whole number of errors.
    const double hits = v * static_cast<double>(expected_count) / 100.0;
    EXPECT_NEAR(hits, std::round(hits), 1e-6) << t << " = " << v;
  }
}

// A metrics object: overall, per_landmark for every symbol, per_group of synth_a/synth_b.
void check_metrics(json m, std::size_t images, const std::string& where) {
  SCOPED_TRACE(where);
  ASSERT_TRUE(m.is_object()) << where << ": " << m;
  EXPECT_EQ(sorted(keys_of(m)), (std::vector<std::string>{"overall", "per_group", "per_landmark"}));
  const auto syms = symbols();
  check_summary(m["overall"], images * syms.size(), "overall");
  ASSERT_TRUE(m["per_landmark"].is_object());
  EXPECT_EQ(sorted(keys_of(m["per_landmark"])), sorted(syms));
  double mean_of_means = 0;
  for (const auto& sym : syms) {
    if (!m["per_landmark"].contains(sym)) continue;
    check_summary(m["per_landmark"][sym], images, "per_landmark " + sym);
    if (m["per_landmark"][sym]["mre"].is_number())
      mean_of_means +=
          m["per_landmark"][sym]["mre"].get<double>() / static_cast<double>(syms.size());
  }
  // Every landmark has the same count, so the overall MRE is the mean of the landmarks' MREs.
  if (m["overall"]["mre"].is_number()) {
    EXPECT_NEAR(m["overall"]["mre"].get<double>(), mean_of_means, 1e-6 * (1 + mean_of_means));
  }
  ASSERT_TRUE(m["per_group"].is_object());
  std::size_t pooled = 0;
  for (const auto& [group, summary] : m["per_group"].items()) {
    EXPECT_TRUE(group == "synth_a" || group == "synth_b") << group;
    ASSERT_TRUE(summary["count"].is_number_integer());
    const auto count = summary["count"].get<std::size_t>();
    EXPECT_EQ(count % syms.size(), 0u) << "a group pools every landmark of its images";
    check_summary(summary, count, "per_group " + group);
    pooled += count;
  }
  EXPECT_EQ(pooled, images * syms.size()) << "every synthetic image has a group";
}

double lr_at(std::int64_t step, std::int64_t total, double lr) {  // cosine, no warm-up, min 0
  const double pi = std::acos(-1.0);
  return lr * 0.5 * (1 + std::cos(pi * std::min(1.0, static_cast<double>(step) / total)));
}

// ---------------------------------------------------------------- the tiny run

// One run shared by the tests of this suite: exprun run tiny.toml with mse and
// gradient_accumulation (effective batch 4 = 2 x 2).
class TinyRunTest : public ::testing::Test {
 protected:
  struct Run {
    test::TempDir dir{"exprun-e2e"};
    fs::path file;
    fs::path results;
    std::string toml;
    ProcessResult result;
    fs::path run_dir;
    json report;
  };
  static inline std::unique_ptr<Run> run_;

  static void SetUpTestSuite() {
    run_ = std::make_unique<Run>();
    Run& r = *run_;
    r.file = r.dir / "tiny.toml";
    r.results = r.dir / "results";
    test::TinyExperiment e;
    e.output = r.results;
    r.toml = e.toml();
    test::write_text(r.file, r.toml);
    r.result = exprun({"run", r.file.string()}, r.dir.path());
    r.run_dir = single_subdirectory(r.results / "tiny");
    if (fs::exists(r.run_dir / "report.json"))
      r.report = json::parse(test::read_text(r.run_dir / "report.json"));
  }
  static void TearDownTestSuite() { run_.reset(); }

  void SetUp() override {
    ASSERT_EQ(run_->result.exit_code, 0) << run_->result.describe();
    ASSERT_FALSE(run_->run_dir.empty());
    ASSERT_TRUE(run_->report.is_object()) << "no report.json in " << run_->run_dir;
  }

  // Copies: operator[] on a non-const json is safe for a missing key (it gives null).
  json report() const { return run_->report; }
  json stage() const {
    json r = run_->report;
    return r["stages"][0];
  }
  const fs::path& run_dir() const { return run_->run_dir; }

  // The checks, one per part of docs/report.md.
  void ExitsCleanly();
  void PrintsTheSummaryOnStdout();
  void ProgressGoesToStderr();
  void RunDirectoryLayout();
  void ExperimentTomlIsTheFileWithAHeader();
  void ResolvedTomlHasEveryStageAndNoDefaults();
  void ResolvedTomlIsAValidExperimentFile();
  void ReportIsPrettyPrintedWithSortedKeys();
  void TopLevel();
  void ConfigEchoesTheExperiment();
  void Environment();
  void StageSummary();
  void StageTimes();
  void FinalBestAndBaselineMetrics();
  void History();
  void BestIsTheMinimumOfTheHistory();
  void MetricsJsonlMatchesTheHistory();
  void CheckpointsHoldTheDocumentedEntries();
  void TensorBoardEventsHoldTheHistory();
  void CurvesPngShowsBothCurves();
};

void TinyRunTest::ExitsCleanly() { expect_no_crash(run_->result); }

void TinyRunTest::PrintsTheSummaryOnStdout() {
  const auto lines = test::split_lines(run_->result.out);
  ASSERT_EQ(lines.size(), 2u) << run_->result.out;
  EXPECT_EQ(lines[0], "run completed: " + run_dir().string() + "/report.json");
  const std::regex summary(
      R"(  train: best validation MRE \d+\.\d{3} mm \(epoch [12]\), SDR@2mm \d+\.\d%; )"
      R"(mean-shape baseline \d+\.\d{3} mm)");
  EXPECT_TRUE(std::regex_match(lines[1], summary)) << lines[1];
  char expected[64];
  std::snprintf(expected, sizeof expected, "best validation MRE %.3f mm (epoch %lld)",
                stage()["best"]["overall"]["mre"].get<double>(),
                static_cast<long long>(stage()["best_epoch"].get<std::int64_t>()));
  EXPECT_CONTAINS(lines[1], expected);
}

void TinyRunTest::ProgressGoesToStderr() {
  EXPECT_CONTAINS(run_->result.err, "[train] epoch 1/2");
  EXPECT_CONTAINS(run_->result.err, "[train] epoch 2/2");
  EXPECT_CONTAINS(run_->result.err, "val MRE");
}

void TinyRunTest::RunDirectoryLayout() {
  const fs::path dir = run_dir();
  EXPECT_EQ(dir.parent_path().filename(), "tiny");
  EXPECT_TRUE(std::regex_match(dir.filename().string(), kRunId)) << dir;
  for (const char* f :
       {"experiment.toml", "resolved.toml", "plugins.json", "report.json", "train/metrics.jsonl",
        "train/checkpoints/latest.pt", "train/checkpoints/best.pt"}) {
    EXPECT_TRUE(fs::is_regular_file(dir / f)) << f;
    EXPECT_GT(fs::file_size(dir / f), 0u) << f;
  }
  // No temporary files are left behind by the atomic writes, and no epoch_N checkpoints.
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "experiment.toml" || name == "resolved.toml" || name == "plugins.json" ||
                name == "report.json" || name == "metrics.jsonl" || name == "latest.pt" ||
                name == "best.pt" || name == "curves.png" ||
                name.rfind("events.out.tfevents.", 0) == 0)
        << "unexpected file " << entry.path();
  }
}

void TinyRunTest::ExperimentTomlIsTheFileWithAHeader() {
  const std::string text = test::read_text(run_dir() / "experiment.toml");
  const std::string header = "# " + run_->file.string() + " as given\n";
  EXPECT_EQ(text, header + run_->toml);
}

void TinyRunTest::ResolvedTomlHasEveryStageAndNoDefaults() {
  toml::table doc;
  try {
    doc = toml::parse_file((run_dir() / "resolved.toml").string());
  } catch (const toml::parse_error& e) {
    FAIL() << "resolved.toml does not parse: " << e.description();
  }
  EXPECT_TRUE(doc["experiment"].is_table());
  EXPECT_FALSE(doc.contains("defaults"));
  EXPECT_EQ(doc["experiment"]["name"].value_or(std::string()), "tiny");
  EXPECT_EQ(doc["experiment"]["threads"].value_or(std::int64_t{-1}), 2);
  ASSERT_TRUE(doc["stage"].is_array_of_tables());
  ASSERT_EQ(doc["stage"].as_array()->size(), 1u);
  auto s = doc["stage"][0];
  EXPECT_EQ(s["name"].value_or(std::string()), "train");
  EXPECT_EQ(s["epochs"].value_or(std::int64_t{0}), 2);
  EXPECT_EQ(s["device"].value_or(std::string()), "cpu");
  EXPECT_EQ(s["memory"]["effective_batch"].value_or(std::int64_t{0}), 4);
  EXPECT_EQ(s["memory"]["micro_batch"].value_or(std::int64_t{0}), 2);
  EXPECT_EQ(s["model"]["plugin"].value_or(std::string()), "hrnet");
  EXPECT_EQ(s["model"]["width"].value_or(std::int64_t{0}), 4);
  // Defaults the file left out are filled in.
  EXPECT_EQ(s["model"]["head_channels"].value_or(std::int64_t{-1}), 0);
  EXPECT_EQ(s["data"]["test_count"].value_or(std::int64_t{0}), 50);
  EXPECT_EQ(s["schedule"]["decay"].value_or(std::string()), "cosine");
  EXPECT_DOUBLE_EQ(s["loss"]["scale"].value_or(0.0), 1.0);
}

void TinyRunTest::ResolvedTomlIsAValidExperimentFile() {
  // "It has the same schema as an experiment file": plan accepts it as it is.
  const ProcessResult r =
      exprun({"plan", (run_dir() / "resolved.toml").string()}, run_->dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_CONTAINS(r.out, "plan OK: 1 stage(s)");
  EXPECT_CONTAINS(r.out, "epochs      2, 4 optimiser steps per epoch");
}

void TinyRunTest::ReportIsPrettyPrintedWithSortedKeys() {
  const std::string text = test::read_text(run_dir() / "report.json");
  EXPECT_EQ(text.rfind("{\n  \"", 0), 0u) << "2-space indentation";
  // json::parse keeps the file's order only when asked; read the top-level keys in file order.
  std::vector<std::string> in_file;
  const std::regex top_key("\n  \"([a-z_]+)\": ");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), top_key);
       it != std::sregex_iterator(); ++it)
    in_file.push_back((*it)[1]);
  EXPECT_EQ(in_file, sorted(in_file));
  EXPECT_EQ(in_file.size(), report().size());
}

void TinyRunTest::TopLevel() {
  json r = report();
  EXPECT_EQ(sorted(keys_of(r)),
            (std::vector<std::string>{"config", "environment", "experiment", "finished_at", "kind",
                                      "resumes", "run_id", "schema_version", "stages", "started_at",
                                      "status", "wall_time_s"}))
      << "no \"error\" key when the run completed";
  EXPECT_EQ(r["schema_version"], 2);
  EXPECT_TRUE(r["schema_version"].is_number_integer());
  EXPECT_EQ(r["kind"], "run");
  EXPECT_EQ(r["experiment"], "tiny");
  EXPECT_EQ(r["run_id"], run_dir().filename().string());
  EXPECT_EQ(r["status"], "completed");
  ASSERT_TRUE(r["started_at"].is_string());
  ASSERT_TRUE(r["finished_at"].is_string()) << "set once the run completed";
  EXPECT_TRUE(std::regex_match(r["started_at"].get<std::string>(), kUtcTime)) << r["started_at"];
  EXPECT_TRUE(std::regex_match(r["finished_at"].get<std::string>(), kUtcTime)) << r["finished_at"];
  EXPECT_LE(r["started_at"].get<std::string>(), r["finished_at"].get<std::string>());
  // The run id is the start time in UTC.
  const std::string started = r["started_at"].get<std::string>();
  const std::string id_from_start = started.substr(0, 4) + started.substr(5, 2) +
                                    started.substr(8, 2) + "-" + started.substr(11, 2) +
                                    started.substr(14, 2) + started.substr(17, 2);
  EXPECT_EQ(r["run_id"].get<std::string>().substr(0, 15), id_from_start);
  ASSERT_TRUE(r["wall_time_s"].is_number());
  EXPECT_GT(r["wall_time_s"].get<double>(), 0.0);
  EXPECT_LT(r["wall_time_s"].get<double>(), run_->result.seconds + 1.0);
  ASSERT_TRUE(r["stages"].is_array());
  EXPECT_EQ(r["stages"].size(), 1u);
}

void TinyRunTest::ConfigEchoesTheExperiment() {
  json c = report()["config"];
  EXPECT_EQ(sorted(keys_of(c)),
            (std::vector<std::string>{"experiment", "overrides", "source_file", "stages"}));
  EXPECT_EQ(c["experiment"], (json{{"name", "tiny"},
                                   {"seed", 3},
                                   {"threads", 2},
                                   {"output", run_->results.string()},
                                   {"description", "exprun test: tiny synthetic run"}}));
  EXPECT_EQ(c["source_file"], run_->file.string());
  EXPECT_EQ(c["overrides"], json::array());
  ASSERT_TRUE(c["stages"].is_array());
  ASSERT_EQ(c["stages"].size(), 1u);
  json s = c["stages"][0];
  EXPECT_EQ(sorted(keys_of(s)),
            (std::vector<std::string>{"channels_last", "checkpoint", "cudnn_benchmark", "data",
                                      "device", "epochs", "eval", "loss", "memory", "model", "name",
                                      "optimizer", "schedule"}));
  EXPECT_EQ(s["name"], "train");
  EXPECT_EQ(s["epochs"], 2);
  EXPECT_EQ(s["device"], "cpu");
  EXPECT_EQ(s["cudnn_benchmark"], false);
  EXPECT_EQ(s["channels_last"], false);

  // data: the runner's keys, then every synthetic_ceph parameter.
  json d = s["data"];
  EXPECT_EQ(d["plugin"], "synthetic_ceph");
  EXPECT_EQ(d["image_size"], json::array({64, 80}));
  EXPECT_EQ(d["sigma"], 1.5);
  EXPECT_EQ(d["workers"], 1);
  EXPECT_EQ(d["channels"], 1);
  EXPECT_EQ(d["train_split"], "train");
  EXPECT_EQ(d["val_split"], "valid");
  EXPECT_EQ(d["augment"], (json{{"enabled", true},
                                {"rotation", 10.0},
                                {"scale", 0.1},
                                {"shift", 0.05},
                                {"brightness", 0.1},
                                {"contrast", 0.1},
                                {"gamma", 0.0},
                                {"clahe", 0.0},
                                {"clahe_clip", 2.0},
                                {"clahe_tiles", 8}}));
  EXPECT_EQ(d["train_count"], 16);
  EXPECT_EQ(d["valid_count"], 8);

  json m = s["model"];
  EXPECT_EQ(m["plugin"], "hrnet");
  EXPECT_EQ(m["width"], 4);
  EXPECT_EQ(m["num_modules"], json::array({1, 1, 1}));
  EXPECT_EQ(m["num_blocks"], 1);
  EXPECT_EQ(m["stem_blocks"], 1);

  EXPECT_EQ(s["loss"], (json{{"plugin", "mse"}, {"scale", 1.0}}));
  EXPECT_EQ(s["memory"], (json{{"effective_batch", 4},
                               {"micro_batch", 2},
                               {"strategies", {"gradient_accumulation"}},
                               {"gradient_accumulation", json::object()}}));
  EXPECT_EQ(s["optimizer"], (json{{"name", "adam"},
                                  {"lr", 2e-3},
                                  {"weight_decay", 0.0},
                                  {"betas", {0.9, 0.999}},
                                  {"fused", true}}));
  EXPECT_EQ(s["schedule"], (json{{"warmup_epochs", 0.0}, {"decay", "cosine"}, {"min_lr", 0.0}}));

  // Every parameter of every plugin has its resolved value, with the plugin's default where the
  // file said nothing.
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  const std::pair<const char*, const char*> tables[] = {
      {"data", "datasets/synthetic_ceph"}, {"model", "models/hrnet"}, {"loss", "losses/mse"}};
  for (const auto& [key, plugin] : tables) {
    for (const auto& spec : registry.find(plugin).schema.specs()) {
      SCOPED_TRACE(std::string(key) + "." + spec.name);
      ASSERT_TRUE(s[key].contains(spec.name));
      if (spec.name == "train_count" || spec.name == "valid_count" || spec.name == "width" ||
          spec.name == "num_modules" || spec.name == "num_blocks" || spec.name == "stem_blocks")
        continue;
      ASSERT_TRUE(spec.default_value.has_value());
      EXPECT_EQ(s[key][spec.name],
                std::visit([](const auto& v) { return json(v); }, *spec.default_value));
    }
  }
}

void TinyRunTest::Environment() {
  json e = report()["environment"];
  std::vector<std::string> keys = {"cuda_available",   "cuda_compiled",  "cuda_devices",
                                   "distributed",      "exprun_version", "hardware_threads",
                                   "libtorch_version", "threads"};
  // The versions of a CUDA LibTorch's runtime and cuDNN (the wheel's has both).
  if (EXPRUN_WITH_CUDA) keys.insert(keys.end(), {"cuda_version", "cudnn_version"});
  EXPECT_EQ(sorted(keys_of(e)), sorted(keys));
  EXPECT_EQ(e["distributed"], json({{"world_size", 1}, {"launcher", "single"}}));
  if (EXPRUN_WITH_CUDA) {
    EXPECT_TRUE(std::regex_match(e["cuda_version"].get<std::string>(), std::regex(R"(\d+\.\d+)")))
        << e["cuda_version"];
    EXPECT_TRUE(
        std::regex_match(e["cudnn_version"].get<std::string>(), std::regex(R"(\d+\.\d+\.\d+)")))
        << e["cudnn_version"];
  }
  EXPECT_EQ(e["exprun_version"], EXPRUN_VERSION);
  EXPECT_EQ(e["libtorch_version"], TORCH_VERSION);
  EXPECT_EQ(e["cuda_compiled"], EXPRUN_WITH_CUDA == 1);
  EXPECT_TRUE(e["cuda_available"].is_boolean());
  EXPECT_TRUE(e["cuda_devices"].is_number_integer());
  EXPECT_GE(e["cuda_devices"].get<std::int64_t>(), 0);
  EXPECT_EQ(e["threads"], 2);
  EXPECT_EQ(e["hardware_threads"], std::thread::hardware_concurrency());
}

void TinyRunTest::StageSummary() {
  json s = stage();
  EXPECT_EQ(sorted(keys_of(s)),
            (std::vector<std::string>{"batch_plan",   "best",        "best_epoch",
                                      "best_value",   "checkpoints", "data",
                                      "device",       "epochs",      "epochs_completed",
                                      "final",        "history",     "mean_shape_baseline",
                                      "metrics_file", "model",       "monitor",
                                      "monitor_mode", "name",        "peak_memory_bytes",
                                      "resumed",      "status",      "train_images_per_second",
                                      "train_time_s", "wall_time_s"}))
      << "no \"error\" key when the stage completed";
  EXPECT_EQ(s["name"], "train");
  EXPECT_EQ(s["status"], "completed");
  EXPECT_EQ(s["device"], "cpu");
  EXPECT_EQ(s["epochs"], 2);
  EXPECT_EQ(s["epochs_completed"], 2);
  EXPECT_EQ(s["monitor"], "val_mre_mm");
  ASSERT_TRUE(s["best_epoch"].is_number_integer());
  EXPECT_GE(s["best_epoch"].get<int>(), 1);
  EXPECT_LE(s["best_epoch"].get<int>(), 2);

  EXPECT_EQ(s["batch_plan"], (json{{"effective_batch", 4},
                                   {"micro_batch", 2},
                                   {"accumulation_steps", 2},
                                   {"steps_per_epoch", 4},
                                   {"chosen_by", "config"},
                                   {"tuning", nullptr}}));
  // The counting CPU allocator sees at least the model's weights, gradients and Adam's two
  // moments: 4 copies of every parameter in float32.
  ASSERT_TRUE(s["peak_memory_bytes"].is_number_integer());
  EXPECT_GE(s["peak_memory_bytes"].get<std::int64_t>(),
            16 * s["model"]["parameters"].get<std::int64_t>());
  EXPECT_EQ(s["model"]["plugin"], "hrnet");
  ASSERT_TRUE(s["model"]["parameters"].is_number_integer());
  EXPECT_GT(s["model"]["parameters"].get<std::int64_t>(), 1000);
  ASSERT_TRUE(s["model"]["multiply_adds"].is_number_integer());
  // A plain count for one 64x80 image, not GMACs: far more than one per parameter.
  EXPECT_GT(s["model"]["multiply_adds"].get<std::int64_t>(),
            s["model"]["parameters"].get<std::int64_t>());
  EXPECT_EQ(sorted(keys_of(s["model"])),
            (std::vector<std::string>{"multiply_adds", "parameters", "plugin"}));
  EXPECT_EQ(s["data"], (json{{"plugin", "synthetic_ceph"},
                             {"train_samples", 16},
                             {"valid_samples", 8},
                             {"landmarks", symbols()}}));
  EXPECT_EQ(s["data"]["landmarks"].size(), 29u);
  EXPECT_EQ(s["checkpoints"], (json{{"best", "train/checkpoints/best.pt"},
                                    {"latest", "train/checkpoints/latest.pt"},
                                    {"epochs", json::array()}}));
  EXPECT_EQ(s["metrics_file"], "train/metrics.jsonl");
}

void TinyRunTest::StageTimes() {
  json s = stage();
  ASSERT_TRUE(s["wall_time_s"].is_number());
  ASSERT_TRUE(s["train_time_s"].is_number());
  ASSERT_TRUE(s["train_images_per_second"].is_number());
  const double wall = s["wall_time_s"].get<double>();
  const double train = s["train_time_s"].get<double>();
  const double rate = s["train_images_per_second"].get<double>();
  EXPECT_GT(wall, 0.0);
  EXPECT_GT(train, 0.0);
  EXPECT_GT(rate, 0.0);
  EXPECT_LE(train, wall) << "stage wall time includes training";
  EXPECT_LE(wall, report()["wall_time_s"].get<double>());
  double epoch_seconds = 0;
  for (const auto& h : s["history"]) epoch_seconds += h["epoch_seconds"].get<double>();
  EXPECT_NEAR(train, epoch_seconds, 1e-9 + 1e-9 * train) << "sum of the epochs' epoch_seconds";
  EXPECT_NEAR(rate, 32.0 / train, 1e-6 * rate) << "2 epochs x 16 images / train_time_s";
}

void TinyRunTest::FinalBestAndBaselineMetrics() {
  json s = stage();
  check_metrics(s["final"], 8, "final");
  check_metrics(s["best"], 8, "best");
  check_metrics(s["mean_shape_baseline"], 8, "mean_shape_baseline");
  ASSERT_TRUE(s["mean_shape_baseline"]["overall"]["mre"].is_number());
  EXPECT_GT(s["mean_shape_baseline"]["overall"]["mre"].get<double>(), 0.0);
}

void TinyRunTest::History() {
  json h = stage()["history"];
  ASSERT_TRUE(h.is_array());
  ASSERT_EQ(h.size(), 2u);
  const double lr = 2e-3;
  double best_so_far = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < h.size(); ++i) {
    SCOPED_TRACE("history[" + std::to_string(i) + "]");
    json line = h[i];
    EXPECT_EQ(
        sorted(keys_of(line)),
        (std::vector<std::string>{"best", "data_wait_seconds", "epoch", "epoch_seconds",
                                  "images_per_second", "lr", "peak_memory_bytes", "skipped_steps",
                                  "train_loss", "val_mre_mm", "val_sd_mm", "val_sdr"}));
    ASSERT_TRUE(line["peak_memory_bytes"].is_number_integer());
    EXPECT_LE(line["peak_memory_bytes"].get<std::int64_t>(),
              stage()["peak_memory_bytes"].get<std::int64_t>());
    EXPECT_EQ(line["epoch"], static_cast<int>(i) + 1);
    ASSERT_TRUE(line["train_loss"].is_number());
    EXPECT_TRUE(std::isfinite(line["train_loss"].get<double>()));
    EXPECT_GT(line["train_loss"].get<double>(), 0.0);
    // Cosine from 2e-3 to 0 over 8 steps, no warm-up: the epoch's last step is step 4i+3.
    ASSERT_TRUE(line["lr"].is_number());
    EXPECT_NEAR(line["lr"].get<double>(), lr_at(4 * static_cast<std::int64_t>(i) + 3, 8, lr),
                1e-12);
    ASSERT_TRUE(line["val_mre_mm"].is_number());
    ASSERT_TRUE(line["val_sd_mm"].is_number());
    EXPECT_GT(line["val_mre_mm"].get<double>(), 0.0);
    ASSERT_TRUE(line["epoch_seconds"].is_number());
    EXPECT_GT(line["epoch_seconds"].get<double>(), 0.0);
    // Part of the epoch: each step waited for its batch, which took some time to make.
    ASSERT_TRUE(line["data_wait_seconds"].is_number());
    EXPECT_GT(line["data_wait_seconds"].get<double>(), 0.0);
    EXPECT_LT(line["data_wait_seconds"].get<double>(), line["epoch_seconds"].get<double>());
    ASSERT_TRUE(line["images_per_second"].is_number());
    EXPECT_GT(line["images_per_second"].get<double>(), 0.0);
    EXPECT_NEAR(line["images_per_second"].get<double>(), 16.0 / line["epoch_seconds"].get<double>(),
                1e-6 * line["images_per_second"].get<double>());
    EXPECT_EQ(line["skipped_steps"], 0);
    EXPECT_EQ(keys_of(line["val_sdr"]), (std::vector<std::string>{"2.0", "2.5", "3.0", "4.0"}));
    const double mre = line["val_mre_mm"].get<double>();
    EXPECT_EQ(line["best"], mre < best_so_far);
    best_so_far = std::min(best_so_far, mre);
  }
  EXPECT_EQ(h[0]["best"], true) << "the first finite MRE is the best so far";
  EXPECT_LT(h[0]["epoch"].get<int>(), h[1]["epoch"].get<int>());
}

void TinyRunTest::BestIsTheMinimumOfTheHistory() {
  json s = stage();
  json h = s["history"];
  ASSERT_EQ(h.size(), 2u);
  std::size_t argmin = 0;
  for (std::size_t i = 1; i < h.size(); ++i)
    if (h[i]["val_mre_mm"].get<double>() < h[argmin]["val_mre_mm"].get<double>()) argmin = i;
  EXPECT_EQ(s["best_epoch"].get<std::size_t>(), argmin + 1) << "ties keep the earlier epoch";
  EXPECT_DOUBLE_EQ(s["best"]["overall"]["mre"].get<double>(),
                   h[argmin]["val_mre_mm"].get<double>());
  EXPECT_DOUBLE_EQ(s["best"]["overall"]["sd"].get<double>(), h[argmin]["val_sd_mm"].get<double>());
  EXPECT_EQ(s["best"]["overall"]["sdr"], h[argmin]["val_sdr"]);
  // final is the last epoch.
  EXPECT_DOUBLE_EQ(s["final"]["overall"]["mre"].get<double>(),
                   h.back()["val_mre_mm"].get<double>());
  EXPECT_DOUBLE_EQ(s["final"]["overall"]["sd"].get<double>(), h.back()["val_sd_mm"].get<double>());
  EXPECT_EQ(s["final"]["overall"]["sdr"], h.back()["val_sdr"]);
  if (argmin + 1 == h.size()) {
    EXPECT_EQ(s["best"], s["final"]);
  }
}

void TinyRunTest::MetricsJsonlMatchesTheHistory() {
  const std::string text = test::read_text(run_dir() / "train" / "metrics.jsonl");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const auto lines = test::split_lines(text);
  ASSERT_EQ(lines.size(), 2u) << text;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    EXPECT_EQ(lines[i].find('\n'), std::string::npos);
    const json line = json::parse(lines[i]);
    EXPECT_EQ(line, stage()["history"][i]);
    // Keys in alphabetical order in the file itself.
    std::vector<std::size_t> positions;
    for (const auto& key : keys_of(line)) positions.push_back(lines[i].find("\"" + key + "\":"));
    EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end()));
  }
}

void TinyRunTest::CheckpointsHoldTheDocumentedEntries() {
  json s = stage();
  const CheckpointInfo latest = read_checkpoint_info(run_dir() / "train/checkpoints/latest.pt");
  EXPECT_EQ(latest.experiment, "tiny");
  EXPECT_EQ(latest.stage, "train");
  EXPECT_EQ(latest.epoch, 2);
  EXPECT_EQ(latest.best_epoch, s["best_epoch"].get<std::int64_t>());
  EXPECT_DOUBLE_EQ(latest.best_metric, s["best"]["overall"]["mre"].get<double>());
  EXPECT_EQ(latest.effective_batch, 4);
  EXPECT_EQ(latest.micro_batch, 2);
  EXPECT_EQ(latest.config, report()["config"]["stages"][0]);

  const CheckpointInfo best = read_checkpoint_info(run_dir() / "train/checkpoints/best.pt");
  EXPECT_EQ(best.epoch, s["best_epoch"].get<std::int64_t>()) << "best.pt: the best epoch";
  EXPECT_EQ(best.best_epoch, s["best_epoch"].get<std::int64_t>());
  EXPECT_DOUBLE_EQ(best.best_metric, s["best"]["overall"]["mre"].get<double>());

  torch::serialize::InputArchive archive;
  load_checkpoint_payload(run_dir() / "train/checkpoints/latest.pt", archive);
  for (const char* key : {"model", "optimizer", "memory.0"}) {
    torch::serialize::InputArchive sub;
    EXPECT_TRUE(archive.try_read(key, sub)) << key;
  }
}

// The stage's event file, read with the tests' own reader: one event per scalar per epoch,
// equal (as float) to metrics.jsonl.
void TinyRunTest::TensorBoardEventsHoldTheHistory() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(run_dir() / "train"))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      files.push_back(entry.path());
  ASSERT_EQ(files.size(), 1u);
  const auto events = test::read_event_file(files[0]);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  std::map<std::pair<std::string, std::int64_t>, float> scalars;
  for (const auto& e : events)
    for (const auto& [tag, value] : e.scalars) scalars[{tag, e.step}] = value;
  const json& history = run_->report["stages"][0]["history"];
  ASSERT_EQ(history.size(), 2u);
  for (const auto& line : history) {
    const std::int64_t epoch = line["epoch"];
    EXPECT_EQ(scalars.at({"train/loss", epoch}), line["train_loss"].get<float>());
    EXPECT_EQ(scalars.at({"train/lr", epoch}), line["lr"].get<float>());
    EXPECT_EQ(scalars.at({"val/mre_mm", epoch}), line["val_mre_mm"].get<float>());
    EXPECT_EQ(scalars.at({"val/sdr_2.0mm", epoch}), line["val_sdr"]["2.0"].get<float>());
    EXPECT_EQ(scalars.at({"memory/peak_bytes", epoch}), line["peak_memory_bytes"].get<float>());
    EXPECT_EQ(scalars.count({"train/images_per_second", epoch}), 1u);
    EXPECT_EQ(scalars.at({"train/data_wait_seconds", epoch}),
              line["data_wait_seconds"].get<float>());
    EXPECT_EQ(scalars.count({"val/sd_mm", epoch}), 1u);
  }
  const json& final_landmarks = run_->report["stages"][0]["final"]["per_landmark"];
  for (const auto& [symbol, m] : final_landmarks.items()) {
    if (m["mre"].is_number()) {
      EXPECT_EQ(scalars.at({"val_landmark_mre_mm/" + symbol, 2}), m["mre"].get<float>()) << symbol;
    }
  }
}

// 800 x 380, with the loss curve (blue) in the left panel and the MRE curve (red) in the right.
void TinyRunTest::CurvesPngShowsBothCurves() {
  const cv::Mat image = cv::imread((run_dir() / "train" / "curves.png").string());
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(image.cols, 800);
  EXPECT_EQ(image.rows, 380);
  auto count = [&](int x0, int x1, const cv::Vec3b& bgr) {
    int n = 0;
    for (int y = 0; y < image.rows; ++y)
      for (int x = x0; x < x1; ++x) n += image.at<cv::Vec3b>(y, x) == bgr;
    return n;
  };
  EXPECT_GT(count(0, 400, {180, 90, 30}), 50);
  EXPECT_GT(count(400, 800, {40, 40, 200}), 50);
}

// One test, so that ctest (which runs every test in its own process) trains once.
TEST_F(TinyRunTest, RunDirectoryAndReportMatchTheDocs) {
  {
    SCOPED_TRACE("ExitsCleanly");
    ExitsCleanly();
  }
  {
    SCOPED_TRACE("PrintsTheSummaryOnStdout");
    PrintsTheSummaryOnStdout();
  }
  {
    SCOPED_TRACE("ProgressGoesToStderr");
    ProgressGoesToStderr();
  }
  {
    SCOPED_TRACE("RunDirectoryLayout");
    RunDirectoryLayout();
  }
  {
    SCOPED_TRACE("ExperimentTomlIsTheFileWithAHeader");
    ExperimentTomlIsTheFileWithAHeader();
  }
  {
    SCOPED_TRACE("ResolvedTomlHasEveryStageAndNoDefaults");
    ResolvedTomlHasEveryStageAndNoDefaults();
  }
  {
    SCOPED_TRACE("ResolvedTomlIsAValidExperimentFile");
    ResolvedTomlIsAValidExperimentFile();
  }
  {
    SCOPED_TRACE("ReportIsPrettyPrintedWithSortedKeys");
    ReportIsPrettyPrintedWithSortedKeys();
  }
  {
    SCOPED_TRACE("TopLevel");
    TopLevel();
  }
  {
    SCOPED_TRACE("ConfigEchoesTheExperiment");
    ConfigEchoesTheExperiment();
  }
  {
    SCOPED_TRACE("Environment");
    Environment();
  }
  {
    SCOPED_TRACE("StageSummary");
    StageSummary();
  }
  {
    SCOPED_TRACE("StageTimes");
    StageTimes();
  }
  {
    SCOPED_TRACE("FinalBestAndBaselineMetrics");
    FinalBestAndBaselineMetrics();
  }
  {
    SCOPED_TRACE("TensorBoardEventsHoldTheHistory");
    TensorBoardEventsHoldTheHistory();
  }
  {
    SCOPED_TRACE("CurvesPngShowsBothCurves");
    CurvesPngShowsBothCurves();
  }
  {
    SCOPED_TRACE("History");
    History();
  }
  {
    SCOPED_TRACE("BestIsTheMinimumOfTheHistory");
    BestIsTheMinimumOfTheHistory();
  }
  {
    SCOPED_TRACE("MetricsJsonlMatchesTheHistory");
    MetricsJsonlMatchesTheHistory();
  }
  {
    SCOPED_TRACE("CheckpointsHoldTheDocumentedEntries");
    CheckpointsHoldTheDocumentedEntries();
  }
}

// ---------------------------------------------------------------- more runs

class RunTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-e2e"};
  fs::path file_ = dir_ / "tiny.toml";
  fs::path results_ = dir_ / "results";

  json read_report(const fs::path& run_dir) {
    return json::parse(test::read_text(run_dir / "report.json"));
  }
};

TEST_F(RunTest, MixedPrecisionWithGradientAccumulation) {
  test::TinyExperiment e;
  e.loss = "adaptive_wing";
  e.strategies = {"mixed_precision", "gradient_accumulation"};
  e.memory_extra = "mixed_precision = { dtype = \"bf16\" }";
  test::write_text(file_, e.toml());  // no output key: --output gives it
  const auto r = exprun({"run", file_.string(), "--output", results_.string(), "--set",
                         "experiment.description=bf16"},
                        dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  expect_no_crash(r);
  EXPECT_EQ(r.out.rfind("run completed: ", 0), 0u) << r.out;
  const fs::path run_dir = single_subdirectory(results_ / "tiny");
  json report = read_report(run_dir);
  EXPECT_EQ(report["status"], "completed");
  EXPECT_EQ(report["config"]["experiment"]["output"], results_.string());
  EXPECT_EQ(report["config"]["experiment"]["description"], "bf16");
  json memory = report["config"]["stages"][0]["memory"];
  EXPECT_EQ(memory["strategies"], json::array({"mixed_precision", "gradient_accumulation"}));
  EXPECT_EQ(memory["mixed_precision"]["dtype"], "bf16");
  EXPECT_EQ(memory["gradient_accumulation"], json::object());
  EXPECT_EQ(report["config"]["stages"][0]["loss"]["plugin"], "adaptive_wing");
  EXPECT_EQ(report["config"]["stages"][0]["loss"]["alpha"], 2.1);
  json s = report["stages"][0];
  EXPECT_EQ(s["status"], "completed");
  EXPECT_EQ(s["epochs_completed"], 2);
  EXPECT_EQ(s["batch_plan"]["accumulation_steps"], 2);
  ASSERT_EQ(s["history"].size(), 2u);
  for (const auto& h : s["history"]) {
    EXPECT_TRUE(std::isfinite(h["train_loss"].get<double>())) << h;
    EXPECT_EQ(h["skipped_steps"], 0) << "bf16 needs no loss scaling" << h;
  }
  check_metrics(s["final"], 8, "final");
  EXPECT_TRUE(fs::is_regular_file(run_dir / "train/checkpoints/best.pt"));
  // Both strategies' states are in the checkpoint, in list order.
  torch::serialize::InputArchive archive;
  load_checkpoint_payload(run_dir / "train/checkpoints/latest.pt", archive);
  for (const char* key : {"memory.0", "memory.1"}) {
    torch::serialize::InputArchive sub;
    EXPECT_TRUE(archive.try_read(key, sub)) << key;
  }
}

TEST_F(RunTest, OverridesAndRelativeOutput) {
  // FILE.toml alone means run; a relative output is relative to the working directory; the
  // --set arguments are recorded in order.
  test::TinyExperiment e;
  e.epochs = 3;
  e.output = "relative-results";
  test::write_text(file_, e.toml());
  const auto r =
      exprun({"tiny.toml", "--set", "epochs=1", "--set", "data.valid_count=4"}, dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  expect_no_crash(r);
  const fs::path run_dir = single_subdirectory(dir_ / "relative-results" / "tiny");
  ASSERT_TRUE(fs::is_regular_file(run_dir / "report.json"));
  json report = read_report(run_dir);
  EXPECT_EQ(report["config"]["source_file"], "tiny.toml");
  EXPECT_EQ(report["config"]["experiment"]["output"], "relative-results");
  EXPECT_EQ(report["config"]["overrides"], json::array({"epochs=1", "data.valid_count=4"}));
  EXPECT_EQ(report["config"]["stages"][0]["epochs"], 1);
  EXPECT_EQ(report["stages"][0]["epochs"], 1);
  EXPECT_EQ(report["stages"][0]["history"].size(), 1u);
  EXPECT_EQ(report["stages"][0]["data"]["valid_samples"], 4);
  check_metrics(report["stages"][0]["final"], 4, "final");
  const std::string text = test::read_text(run_dir / "experiment.toml");
  EXPECT_EQ(text, "# tiny.toml as given, --set epochs=1, --set data.valid_count=4\n" + e.toml());
  EXPECT_EQ(test::split_lines(test::read_text(run_dir / "train" / "metrics.jsonl")).size(), 1u);
}

TEST_F(RunTest, OutputOptionIsRecordedAsAnOverride) {
  // docs/cli.md and docs/report.md: --output DIR is the override experiment.output=DIR, added
  // after every --set, recorded in config.overrides as experiment.output="DIR" (quoted as a TOML
  // string, so any path survives) and in the header of experiment.toml the same way. (The stage
  // fails at once, when built: the run directory is written all the same, and nothing is trained.)
  test::TinyExperiment e;
  e.micro_batch_auto = true;  // on the CPU without memory.budget: refused when built
  test::write_text(file_, e.toml());
  const auto r = exprun({"run", file_.string(), "--output", results_.string(), "--set",
                         "experiment.output=elsewhere", "--set", "epochs=1"},
                        dir_.path());
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere")) << "--output wins over --set experiment.output";
  const fs::path run_dir = single_subdirectory(results_ / "tiny");
  ASSERT_TRUE(fs::is_regular_file(run_dir / "report.json"));
  json report = read_report(run_dir);
  EXPECT_EQ(report["config"]["experiment"]["output"], results_.string());
  EXPECT_EQ(report["config"]["overrides"],
            json::array({"experiment.output=elsewhere", "epochs=1",
                         "experiment.output=\"" + results_.string() + "\""}));
  const std::string header = test::split_lines(test::read_text(run_dir / "experiment.toml"))[0];
  EXPECT_EQ(header, "# " + file_.string() +
                        " as given, --set experiment.output=elsewhere, --set "
                        "epochs=1, --set experiment.output=\"" +
                        results_.string() + "\"");
}

TEST_F(RunTest, BuildErrorFailsTheStage) {
  // A loss weight for a landmark the dataset lacks: the stage fails when built.
  test::TinyExperiment e;
  e.output = results_;
  e.stage_extra = "loss = { weights = { Zz = 2.0 } }\n";
  test::write_text(file_, e.toml());
  const auto r = exprun({"run", file_.string()}, dir_.path());
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  expect_no_crash(r);
  const auto out = test::split_lines(r.out);
  ASSERT_GE(out.size(), 2u) << r.out;
  EXPECT_EQ(out[0].rfind("run FAILED: ", 0), 0u) << out[0];
  EXPECT_EQ(out[1].rfind("  train: ", 0), 0u) << out[1];
  EXPECT_CONTAINS(out[1], "the dataset has no landmark 'Zz'");

  const fs::path run_dir = single_subdirectory(results_ / "tiny");
  json report = read_report(run_dir);
  EXPECT_EQ(report["status"], "failed");
  ASSERT_TRUE(report["error"].is_string());
  EXPECT_EQ(report["error"].get<std::string>().rfind("stage train: ", 0), 0u) << report["error"];
  EXPECT_CONTAINS(report["error"].get<std::string>(), "the dataset has no landmark 'Zz'");
  EXPECT_TRUE(report["finished_at"].is_string());
  ASSERT_EQ(report["stages"].size(), 1u);
  json s = report["stages"][0];
  EXPECT_EQ(sorted(keys_of(s)), (std::vector<std::string>{"error", "name", "status"}))
      << "a stage that failed while being built holds only name, status and error";
  EXPECT_EQ(s["name"], "train");
  EXPECT_EQ(s["status"], "failed");
  EXPECT_EQ("stage train: " + s["error"].get<std::string>(), report["error"].get<std::string>());
  EXPECT_TRUE(fs::is_regular_file(run_dir / "experiment.toml"));
  EXPECT_TRUE(fs::is_regular_file(run_dir / "resolved.toml"));
}

TEST_F(RunTest, FailedStageSkipsTheRest) {
  // Two stages; the first cannot be built, so the second never starts and is absent.
  test::TinyExperiment e;
  e.output = results_;
  e.stage_extra = "memory.micro_batch = \"auto\"\n\n[[stage]]\nname = \"second\"\nepochs = 1";
  test::write_text(file_, e.toml());
  const auto r = exprun({"run", file_.string()}, dir_.path());
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  json report = read_report(single_subdirectory(results_ / "tiny"));
  EXPECT_EQ(report["status"], "failed");
  ASSERT_EQ(report["stages"].size(), 1u);
  EXPECT_EQ(report["stages"][0]["name"], "train");
  EXPECT_EQ(report["config"]["stages"].size(), 2u);
}

// A process pinned to one core (as taskset, Slurm's --cpus-per-task or a container's cpuset pin
// it) trains with one thread for threads = 0, not with one per hardware thread of the machine.
TEST_F(RunTest, ThreadsZeroIsTheCoresTheProcessMayRunOn) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  int first = 0;
  while (!CPU_ISSET(first, &allowed)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  // This thread's mask, which the exprun process started from it inherits.
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  test::TinyExperiment e;
  e.output = results_;
  e.threads = 0;
  test::write_text(file_, e.toml());
  const auto r = exprun({"run", file_.string()}, dir_.path());
  sched_setaffinity(0, sizeof(allowed), &allowed);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const json report = read_report(single_subdirectory(results_ / "tiny"));
  EXPECT_EQ(report["config"]["experiment"]["threads"], 0);
  EXPECT_EQ(report["environment"]["threads"], 1);
}

TEST_F(RunTest, TakenRunIdGetsASuffix) {
  // Occupy the run ids of every second the run may start in, however slowly a loaded machine
  // starts it, so the run has to add "-2".
  test::TinyExperiment e;
  e.output = results_;
  // micro_batch = "auto" on the CPU without memory.budget fails at once when built: the run
  // directory is all this test needs.
  e.micro_batch_auto = true;
  test::write_text(file_, e.toml());
  const std::time_t now = std::time(nullptr);
  std::set<std::string> taken;
  for (int i = 0; i < static_cast<int>(kRunTimeout); ++i) {
    const std::time_t t = now + i;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char id[32];
    std::strftime(id, sizeof id, "%Y%m%d-%H%M%S", &tm);
    fs::create_directories(results_ / "tiny" / id);
    taken.insert(id);
  }
  const auto r = exprun({"run", file_.string()}, dir_.path());
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  std::vector<std::string> made;
  for (const auto& entry : fs::directory_iterator(results_ / "tiny"))
    if (!taken.count(entry.path().filename().string()))
      made.push_back(entry.path().filename().string());
  ASSERT_EQ(made.size(), 1u);
  EXPECT_TRUE(std::regex_match(made[0], kRunId)) << made[0];
  EXPECT_EQ(made[0].substr(15), "-2") << made[0];
  EXPECT_TRUE(taken.count(made[0].substr(0, 15))) << made[0];
  EXPECT_EQ(read_report(results_ / "tiny" / made[0])["run_id"], made[0]);
}

}  // namespace
}  // namespace exprun

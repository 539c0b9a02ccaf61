// The stage keys channels_last and cudnn_benchmark (docs/experiment-file.md): what they set,
// and that a channels-last run stopped by SIGTERM resumes to the bit of an uninterrupted one.
#include <gtest/gtest.h>

#include <ATen/Context.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <map>
#include <string>

#include "config/experiment_loader.hpp"
#include "test_support.hpp"
#include "train/checkpoint.hpp"
#include "train/stage_builder.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

test::TinyExperiment channels_last_experiment(const fs::path& output) {
  test::TinyExperiment e;
  e.output = output;
  e.stage_extra = "channels_last = true\n";
  return e;
}

Experiment load(const test::TinyExperiment& e, const test::TempDir& dir) {
  const fs::path file = dir / "tiny.toml";
  test::write_text(file, e.toml());
  return load_experiment(file.string(), {}, test::built_plugins());
}

fs::path only_run_dir(const fs::path& output) {
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(output / "tiny")) dirs.push_back(entry.path());
  EXPECT_EQ(dirs.size(), 1u);
  return dirs.empty() ? fs::path() : dirs.front();
}

json read_json(const fs::path& path) { return json::parse(test::read_text(path)); }

TEST(MemoryFormat, ChannelsLastPutsEveryFourDimensionalWeightInNhwc) {
  test::TempDir dir;
  const Experiment e = load(channels_last_experiment(dir / "results"), dir);
  ASSERT_TRUE(e.stages[0].channels_last);
  BuiltStage stage = build_stage(e, e.stages[0], 0, test::built_plugins());
  EXPECT_EQ(stage.input_format, torch::MemoryFormat::ChannelsLast);
  int convolutions = 0;
  for (const auto& p : stage.model->named_parameters()) {
    if (p.value().dim() != 4) continue;
    ++convolutions;
    EXPECT_TRUE(p.value().is_contiguous(torch::MemoryFormat::ChannelsLast)) << p.key();
    EXPECT_TRUE(p.value().requires_grad()) << p.key();
  }
  EXPECT_GT(convolutions, 10);

  test::TinyExperiment plain = channels_last_experiment(dir / "results");
  plain.stage_extra.clear();
  const Experiment p = load(plain, dir);
  BuiltStage contiguous = build_stage(p, p.stages[0], 0, test::built_plugins());
  EXPECT_EQ(contiguous.input_format, torch::MemoryFormat::Contiguous);
  for (const auto& param : contiguous.model->parameters()) EXPECT_TRUE(param.is_contiguous());
}

// The flag is process-wide; each stage sets it for itself when it is built.
TEST(MemoryFormat, EachStageSetsCudnnBenchmarkWhenBuilt) {
  test::TempDir dir;
  test::TinyExperiment e;
  e.output = dir / "results";
  e.stage_extra = "cudnn_benchmark = true\n";
  const Experiment on = load(e, dir);
  build_stage(on, on.stages[0], 0, test::built_plugins());
  EXPECT_TRUE(at::globalContext().benchmarkCuDNN());
  e.stage_extra.clear();
  const Experiment off = load(e, dir);
  build_stage(off, off.stages[0], 0, test::built_plugins());
  EXPECT_FALSE(at::globalContext().benchmarkCuDNN());
}

TEST(MemoryFormat, TheKeysAreBooleans) {
  test::TempDir dir;
  test::TinyExperiment e;
  e.output = dir / "results";
  e.stage_extra = "channels_last = \"yes\"\n";
  const fs::path file = dir / "tiny.toml";
  test::write_text(file, e.toml());
  const auto r = test::run_exprun({"plan", file.string()});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "stages.train.channels_last");
  EXPECT_CONTAINS(r.err, "tiny.toml:" + std::to_string(test::line_of(e.toml(), "channels_last")));
}

TEST(MemoryFormat, AChannelsLastRunStoppedMidEpochResumesToTheSameResult) {
  test::TempDir reference_dir, dir;
  const test::TinyExperiment reference = channels_last_experiment(reference_dir / "results");
  test::write_text(reference_dir / "tiny.toml", reference.toml());
  const auto whole = test::run_exprun({"run", (reference_dir / "tiny.toml").string()});
  ASSERT_EQ(whole.exit_code, 0) << whole.describe();

  const test::TinyExperiment stopped = channels_last_experiment(dir / "results");
  const fs::path file = dir / "tiny.toml";
  test::write_text(file, stopped.toml());
  test::ProcessOptions with_fault;
  with_fault.env["EXPRUN_FAULT"] = "TERM@step:train:2:1";
  const auto first = test::run_exprun({"run", file.string()}, with_fault);
  ASSERT_EQ(first.exit_code, 128 + SIGTERM) << first.describe();
  const fs::path run = only_run_dir(dir / "results");
  const auto resumed = test::run_exprun({"run", file.string(), "--resume=" + run.string()});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();

  const json got = read_json(run / "report.json");
  const json want = read_json(only_run_dir(reference_dir / "results") / "report.json");
  ASSERT_EQ(got["stages"].size(), 1u);
  // Everything measured, nothing timed.
  auto measured = [](json history) {
    for (auto& epoch : history) {
      for (const char* timed :
           {"epoch_seconds", "data_wait_seconds", "images_per_second", "peak_memory_bytes"})
        epoch.erase(timed);
    }
    return history;
  };
  EXPECT_EQ(measured(got["stages"][0]["history"]), measured(want["stages"][0]["history"]));
  EXPECT_EQ(got["stages"][0]["best"], want["stages"][0]["best"]);

  // The saved weights are equal to the bit, and were saved in the format they trained in.
  const Experiment e = load(stopped, dir);
  auto weights = [&](const fs::path& checkpoint) {
    BuiltStage stage = build_stage(e, e.stages[0], 0, test::built_plugins());
    load_model_weights(checkpoint, *stage.model);
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : stage.model->named_parameters()) out[p.key()] = p.value().clone();
    for (const auto& b : stage.model->named_buffers()) out[b.key()] = b.value().clone();
    return out;
  };
  const auto a = weights(run / "train/checkpoints/latest.pt");
  const auto b = weights(only_run_dir(reference_dir / "results") / "train/checkpoints/latest.pt");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name;
    if (tensor.dim() == 4) {
      EXPECT_TRUE(tensor.is_contiguous(torch::MemoryFormat::ChannelsLast)) << name;
    }
  }
}

}  // namespace
}  // namespace exprun

// A run stopped under Debian's LibTorch 1.13 (tests/fixtures/libtorch_1_13_run, made by its
// make.sh), resumed and evaluated by this build, whichever LibTorch it has: under 1.13 as any
// resume, under 2.x with a warning naming both versions (docs/libtorch.md).
#include <gtest/gtest.h>

#include <torch/version.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "test_support.hpp"
#include "train/checkpoint.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixture = fs::path(EXPRUN_SOURCE_DIR) / "tests/fixtures/libtorch_1_13_run";
const bool kBuiltOn113 = TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR == 13;

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// The fixture's run directory copied to <output>/libtorch_1_13_run/<run-id>, as it was.
fs::path copy_of_run(const fs::path& output) {
  fs::create_directories(output / "libtorch_1_13_run");
  fs::copy(kFixture / "run", output / "libtorch_1_13_run", fs::copy_options::recursive);
  for (const auto& entry : fs::directory_iterator(output / "libtorch_1_13_run")) {
    return entry.path();
  }
  ADD_FAILURE() << "no run directory in " << (kFixture / "run");
  return {};
}

TEST(LibTorchVersions, TheFixtureWasWrittenByLibTorch113) {
  test::TempDir tmp;
  const fs::path run = copy_of_run(tmp.path());
  const CheckpointInfo info = read_checkpoint_info(run / "train/checkpoints/latest.pt");
  EXPECT_EQ(info.libtorch_version.rfind("1.13.", 0), 0u) << info.libtorch_version;
  EXPECT_EQ(info.epoch, 1);          // stopped in epoch 2 ...
  EXPECT_EQ(info.step_in_epoch, 2);  // ... after its second step
  EXPECT_EQ(read_json(run / "report.json")["status"], "interrupted");
}

TEST(LibTorchVersions, ARunStoppedUnder113ResumesToItsEnd) {
  test::TempDir tmp;
  const fs::path run = copy_of_run(tmp.path());
  const auto r = test::run_exprun({"run", (kFixture / "experiment.toml").string(), "--output",
                                   tmp.path().string(), "--resume=" + run.string()});
  test::expect_no_crash(r);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const std::string warning = "was written with LibTorch 1.13.0 and is resumed with LibTorch " +
                              std::string(TORCH_VERSION) + ": training continues from it";
  if (kBuiltOn113) {
    EXPECT_NOT_CONTAINS(r.err, "was written with LibTorch");
  } else {
    EXPECT_CONTAINS(r.err, warning);
  }
  const json report = read_json(run / "report.json");
  EXPECT_EQ(report["status"], "completed");
  ASSERT_EQ(report["stages"].size(), 1u);
  const json& stage = report["stages"][0];
  EXPECT_EQ(stage["status"], "completed");
  ASSERT_EQ(stage["history"].size(), 2u);
  EXPECT_TRUE(stage["history"][1]["val_mre_mm"].is_number()) << stage["history"][1];
  ASSERT_EQ(report["resumes"].size(), 1u);
  // What the resumed run writes records the LibTorch it ran on.
  const CheckpointInfo latest = read_checkpoint_info(run / "train/checkpoints/latest.pt");
  EXPECT_EQ(latest.libtorch_version, TORCH_VERSION);
  EXPECT_EQ(latest.epoch, 2);
  EXPECT_EQ(report["environment"]["libtorch_version"], TORCH_VERSION);
}

// Runs recorded before a stage key existed (cudnn_benchmark and channels_last came with
// LibTorch 2.x support) resume: the key's default is what they ran with.
TEST(LibTorchVersions, ARunFromBeforeTheMemoryFormatKeysResumes) {
  test::TempDir tmp;
  const fs::path run = copy_of_run(tmp.path());
  json report = read_json(run / "report.json");
  for (auto& stage : report["config"]["stages"]) {
    stage.erase("channels_last");
    stage.erase("cudnn_benchmark");
  }
  test::write_text(run / "report.json", report.dump(2));
  const auto r = test::run_exprun({"run", (kFixture / "experiment.toml").string(), "--output",
                                   tmp.path().string(), "--resume=" + run.string()});
  test::expect_no_crash(r);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(read_json(run / "report.json")["status"], "completed");

  // A key the run had at another value than the default is a difference.
  test::TempDir other;
  const fs::path changed = copy_of_run(other.path());
  json changed_report = read_json(changed / "report.json");
  changed_report["config"]["stages"][0]["channels_last"] = true;
  test::write_text(changed / "report.json", changed_report.dump(2));
  const auto refused = test::run_exprun({"run", (kFixture / "experiment.toml").string(), "--output",
                                         other.path().string(), "--resume=" + changed.string()});
  EXPECT_EQ(refused.exit_code, 1) << refused.describe();
  EXPECT_CONTAINS(refused.err, "replace /stages/0/channels_last");
}

TEST(LibTorchVersions, ACheckpointWrittenUnder113Evaluates) {
  test::TempDir tmp;
  const fs::path run = copy_of_run(tmp.path());
  const auto r = test::run_exprun({"eval", (kFixture / "experiment.toml").string(), "--checkpoint",
                                   (run / "train/checkpoints/latest.pt").string(), "--out",
                                   (tmp / "eval.json").string()});
  test::expect_no_crash(r);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_CONTAINS(r.out, "MRE");
  const json report = read_json(tmp / "eval.json");
  EXPECT_TRUE(report["overall"]["mre"].is_number()) << report.dump().substr(0, 400);
}

}  // namespace
}  // namespace exprun

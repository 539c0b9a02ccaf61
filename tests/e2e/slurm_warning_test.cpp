// SIGUSR1, Slurm's early warning (`--signal=USR1@LEAD`): the run stops as on SIGTERM with its
// position in latest.pt, and then exprun requeues the job it runs in with `scontrol requeue`.
// Here `scontrol` is a stand-in script, the only thing on the PATH, that records how it was
// called; tests/slurm/slurm_cluster_test.sh does the same on a real single-node Slurm cluster.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class SlurmWarningTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-slurm-warning"};
  fs::path run_dir_ = dir_ / "run";
  fs::path bin_ = dir_ / "bin";
  fs::path calls_ = dir_ / "scontrol-calls";

  void SetUp() override {
    test::TinyExperiment tiny;
    test::write_text(dir_ / "tiny.toml", tiny.toml());
    fs::create_directories(bin_);
  }

  // A scontrol that appends its arguments to calls_ and exits with `status`.
  void install_scontrol(int status) {
    const fs::path script = bin_ / "scontrol";
    test::write_text(script, "#!/bin/sh\necho \"$*\" >>'" + calls_.string() + "'\nexit " +
                                 std::to_string(status) + "\n");
    ::chmod(script.c_str(), 0755);
  }

  test::ProcessResult run(std::map<std::string, std::optional<std::string>> env) {
    test::ProcessOptions options;
    options.env = std::move(env);
    options.env["PATH"] = bin_.string();  // a real scontrol elsewhere must not be found
    options.timeout_s = 600;
    return test::run_exprun(
        {"run", (dir_ / "tiny.toml").string(), "--run-dir", run_dir_.string(), "--resume=auto"},
        options);
  }
};

TEST_F(SlurmWarningTest, AnArrayTaskSavesThenRequeuesItselfAndTheRerunContinues) {
  install_scontrol(0);
  const std::map<std::string, std::optional<std::string>> slurm = {
      {"SLURM_JOB_ID", "1234"}, {"SLURM_ARRAY_JOB_ID", "1230"}, {"SLURM_ARRAY_TASK_ID", "4"}};
  auto with_fault = slurm;
  with_fault["EXPRUN_FAULT"] = "USR1@step:train:1:1";
  const auto warned = run(with_fault);
  ASSERT_EQ(warned.exit_code, 128 + 10) << warned.describe();
  EXPECT_CONTAINS(warned.out, "run interrupted (SIGUSR1)");
  EXPECT_CONTAINS(warned.err, "exprun: requeued Slurm job 1230_4");
  EXPECT_EQ(test::read_text(calls_), "requeue 1230_4\n") << "an array task, by its own id";
  const json report = json::parse(test::read_text(run_dir_ / "report.json"));
  EXPECT_EQ(report["status"], "interrupted");
  EXPECT_EQ(report["error"], "stopped by SIGUSR1");
  EXPECT_TRUE(fs::exists(run_dir_ / "train/checkpoints/latest.pt"))
      << "the checkpoint is in place before the requeue ends the job";

  // What the requeued job runs: the same command line continues the run.
  const auto rerun = run(slurm);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.describe();
  const json resumed = json::parse(test::read_text(run_dir_ / "report.json"));
  EXPECT_EQ(resumed["status"], "completed");
  EXPECT_EQ(resumed["resumes"].size(), 1u);
  EXPECT_EQ(test::read_text(calls_), "requeue 1230_4\n") << "no second requeue";
}

TEST_F(SlurmWarningTest, OutsideSlurmTheRunStopsAndNothingIsRequeued) {
  install_scontrol(0);
  const auto warned = run({{"SLURM_JOB_ID", std::nullopt},
                           {"SLURM_ARRAY_JOB_ID", std::nullopt},
                           {"SLURM_ARRAY_TASK_ID", std::nullopt},
                           {"EXPRUN_FAULT", "USR1@step:train:1:1"}});
  ASSERT_EQ(warned.exit_code, 128 + 10) << warned.describe();
  EXPECT_CONTAINS(warned.err, "SIGUSR1 outside a Slurm job: nothing to requeue");
  EXPECT_FALSE(fs::exists(calls_));
}

TEST_F(SlurmWarningTest, AFailingOrMissingScontrolIsReportedAndTheRunIsStillSaved) {
  install_scontrol(1);
  auto env = std::map<std::string, std::optional<std::string>>{
      {"SLURM_JOB_ID", "99"}, {"EXPRUN_FAULT", "USR1@step:train:1:1"}};
  const auto failed = run(env);
  ASSERT_EQ(failed.exit_code, 128 + 10) << failed.describe();
  test::expect_no_crash(failed);
  EXPECT_CONTAINS(failed.err, "scontrol requeue 99 failed (exit 1");
  EXPECT_TRUE(fs::exists(run_dir_ / "train/checkpoints/latest.pt"));

  fs::remove(bin_ / "scontrol");
  fs::remove_all(run_dir_);
  const auto missing = run(env);
  ASSERT_EQ(missing.exit_code, 128 + 10) << missing.describe();
  EXPECT_CONTAINS(missing.err, "cannot requeue Slurm job 99: scontrol is not on the PATH");
}

}  // namespace
}  // namespace exprun

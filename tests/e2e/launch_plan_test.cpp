// Launch detection as the exprun process meets it: `plan` prints the detected launch, a bad
// launch environment is a usage error in `plan` and `run` (docs/distributed.md). Ranks that
// train together are tests/e2e/data_parallel_test.cpp's.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using Env = std::map<std::string, std::optional<std::string>>;

// Every variable launch detection reads, unset, so that a test run under torchrun or inside a
// Slurm job sees only what each test sets.
Env without_launcher() {
  Env env;
  for (const char* name : {"EXPRUN_DIST",
                           "EXPRUN_DIST_TIMEOUT",
                           "TORCHELASTIC_RUN_ID",
                           "TORCHELASTIC_USE_AGENT_STORE",
                           "TORCHELASTIC_RESTART_COUNT",
                           "RANK",
                           "WORLD_SIZE",
                           "LOCAL_RANK",
                           "LOCAL_WORLD_SIZE",
                           "MASTER_ADDR",
                           "MASTER_PORT",
                           "SLURM_STEP_ID",
                           "SLURM_STEP_NUM_TASKS",
                           "SLURM_PROCID",
                           "SLURM_LOCALID",
                           "SLURM_STEP_NODELIST",
                           "SLURM_NODELIST",
                           "SLURM_JOB_ID",
                           "SLURM_NTASKS",
                           "SLURM_ARRAY_JOB_ID",
                           "SLURM_ARRAY_TASK_ID",
                           "SLURM_RESTART_COUNT"})
    env[name] = std::nullopt;
  return env;
}

class LaunchPlanTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-launch"};
  fs::path file_ = dir_ / "tiny.toml";
  fs::path results_ = dir_ / "results";

  void SetUp() override {
    test::TinyExperiment tiny;
    tiny.output = results_;
    test::write_text(file_, tiny.toml());
  }

  test::ProcessResult exprun(std::vector<std::string> args, const Env& set) {
    test::ProcessOptions options;
    options.env = without_launcher();
    for (const auto& [name, value] : set) options.env[name] = value;
    options.timeout_s = 120;
    return test::run_exprun(std::move(args), std::move(options));
  }

  // A usage error (exit 2) of one line on stderr, with nothing written; the message without
  // its "exprun: error: " prefix.
  std::string usage_error(std::vector<std::string> args, const Env& set) {
    const test::ProcessResult r = exprun(std::move(args), set);
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    test::expect_no_crash(r);
    const auto lines = test::split_lines(r.err);
    EXPECT_EQ(lines.size(), 1u) << r.describe();
    EXPECT_FALSE(fs::exists(results_)) << "a refused launch must write nothing";
    const std::string prefix = "exprun: error: ";
    if (lines.empty() || lines[0].rfind(prefix, 0) != 0) {
      ADD_FAILURE() << "no error line\n" << r.describe();
      return "";
    }
    return lines[0].substr(prefix.size());
  }

  // The first line of a successful plan.
  std::string plan_launch_line(const Env& set) {
    const test::ProcessResult r = exprun({"plan", file_.string()}, set);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    test::expect_no_crash(r);
    EXPECT_CONTAINS(r.out, "plan OK: 1 stage(s)");
    const auto lines = test::split_lines(r.out);
    return lines.empty() ? "" : lines[0];
  }
};

TEST_F(LaunchPlanTest, PlanPrintsASingleProcess) {
  EXPECT_EQ(plan_launch_line({}), "launch      single process");
}

TEST_F(LaunchPlanTest, PlanPrintsATorchrunRank) {
  const Env torchrun = {{"TORCHELASTIC_RUN_ID", "none"},
                        {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                        {"TORCHELASTIC_RESTART_COUNT", "0"},
                        {"RANK", "1"},
                        {"WORLD_SIZE", "2"},
                        {"LOCAL_RANK", "1"},
                        {"LOCAL_WORLD_SIZE", "2"},
                        {"MASTER_ADDR", "127.0.0.1"},
                        {"MASTER_PORT", "29500"}};
  EXPECT_EQ(plan_launch_line(torchrun),
            "launch      torchrun rank 1 of 2 (local 1 of 2), master 127.0.0.1:29500, joins the "
            "agent's store (attempt 0)");
}

TEST_F(LaunchPlanTest, PlanPrintsASlurmStep) {
  const Env srun = {{"SLURM_JOB_ID", "4321"},       {"SLURM_STEP_ID", "0"},
                    {"SLURM_PROCID", "0"},          {"SLURM_LOCALID", "0"},
                    {"SLURM_STEP_NUM_TASKS", "2"},  {"SLURM_STEP_NODELIST", "cn[07-08]"},
                    {"SLURM_ARRAY_JOB_ID", "4318"}, {"SLURM_ARRAY_TASK_ID", "3"}};
  EXPECT_EQ(plan_launch_line(srun),
            "launch      Slurm step rank 0 of 2 (local 0), master cn07:19321, rank 0 hosts the "
            "store; Slurm job 4321, array task 4318_3");
}

TEST_F(LaunchPlanTest, DistOffIsASingleProcess) {
  EXPECT_EQ(plan_launch_line({{"EXPRUN_DIST", "off"}, {"RANK", "1"}, {"WORLD_SIZE", "2"}}),
            "launch      single process (EXPRUN_DIST=off)");
}

TEST_F(LaunchPlanTest, BadLaunchEnvironmentIsAUsageError) {
  EXPECT_EQ(usage_error({"plan", file_.string()}, {{"RANK", "one"}, {"WORLD_SIZE", "2"}}),
            "RANK=\"one\": expected a whole number from 0 to 2147483647");
  EXPECT_CONTAINS(usage_error({"plan", file_.string()}, {{"RANK", "0"}}),
                  "expected RANK and WORLD_SIZE, but WORLD_SIZE is not set");
  EXPECT_CONTAINS(usage_error({"plan", file_.string()}, {{"EXPRUN_DIST", "yes"}}),
                  "EXPRUN_DIST=\"yes\": expected off");
}

TEST_F(LaunchPlanTest, SlurmBatchScriptIsRefused) {
  const Env batch = {{"SLURM_JOB_ID", "77"}, {"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "0"}};
  for (const std::string command : {"plan", "run"}) {
    SCOPED_TRACE(command);
    const std::string message = usage_error({command, file_.string()}, batch);
    EXPECT_CONTAINS(message, "SLURM_NTASKS=\"2\"");
    EXPECT_CONTAINS(message, "start the ranks with srun");
  }
}

// Checked before a rank joins the others, so a typo does not leave rank 0 waiting.
TEST_F(LaunchPlanTest, RunRefusesABadCollectiveTimeout) {
  const Env two_ranks = {{"RANK", "0"},
                         {"WORLD_SIZE", "2"},
                         {"MASTER_ADDR", "127.0.0.1"},
                         {"MASTER_PORT", "29500"},
                         {"EXPRUN_DIST_TIMEOUT", "10m"}};
  // `exprun FILE.toml` is `exprun run FILE.toml`.
  for (const std::vector<std::string>& args : {std::vector<std::string>{"run", file_.string()},
                                               std::vector<std::string>{file_.string()}}) {
    SCOPED_TRACE(args.front());
    EXPECT_EQ(usage_error(args, two_ranks),
              "EXPRUN_DIST_TIMEOUT=\"10m\": expected whole seconds from 1 to 604800");
  }
  // plan is how a launch is checked before it is started: it refuses the same settings.
  EXPECT_EQ(usage_error({"plan", file_.string()}, two_ranks),
            "EXPRUN_DIST_TIMEOUT=\"10m\": expected whole seconds from 1 to 604800");
  Env mpi = two_ranks;
  mpi["EXPRUN_DIST_TIMEOUT"] = "60";
  mpi["EXPRUN_DIST_BACKEND"] = "mpi";
  EXPECT_EQ(usage_error({"plan", file_.string()}, mpi),
            "EXPRUN_DIST_BACKEND=\"mpi\": expected gloo or nccl");
}

}  // namespace
}  // namespace exprun

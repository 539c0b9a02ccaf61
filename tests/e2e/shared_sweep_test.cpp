// A sweep directory shared by several processes (`--sweep-dir DIR`, each a Slurm array task in
// real use) and `--resume=auto` (docs/cli.md, "A sweep directory shared by several processes"):
// trials run at the same time fill one sweep.json, a trial that completed is skipped, one that
// was interrupted resumes, and a directory that is not this sweep's is refused untouched.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& file) { return json::parse(test::read_text(file)); }

class SharedSweepTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-shared-sweep"};
  fs::path file_ = dir_ / "tiny.toml";
  fs::path sweep_dir_ = dir_ / "sweep";

  void SetUp() override {
    test::TinyExperiment e;
    e.output = dir_ / "results";
    e.epochs = 1;
    test::write_text(file_, e.toml() + "\n[sweep.zip]\n\"memory.micro_batch\" = [4, 2]\n");
  }

  test::ProcessResult run_trial(const std::string& trial, std::vector<std::string> extra = {},
                                test::ProcessOptions options = {}) {
    // Two trials training at once on a machine the suite keeps busy take minutes, not seconds.
    options.timeout_s = 600;
    std::vector<std::string> args = {"run", file_.string(), "--trial",
                                     trial, "--sweep-dir",  sweep_dir_.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_exprun(args, options);
  }
};

TEST_F(SharedSweepTest, TrialsRunAtTheSameTimeFillOneSweepJson) {
  auto first = std::async(std::launch::async, [&] { return run_trial("0"); });
  auto second = std::async(std::launch::async, [&] { return run_trial("1"); });
  const auto r0 = first.get();
  const auto r1 = second.get();
  ASSERT_EQ(r0.exit_code, 0) << r0.describe();
  ASSERT_EQ(r1.exit_code, 0) << r1.describe();

  EXPECT_EQ(test::read_text(sweep_dir_ / "experiment.toml"),
            "# " + file_.string() + " as given\n" + test::read_text(file_));
  const json sweep = read_json(sweep_dir_ / "sweep.json");
  EXPECT_EQ(sweep["kind"], "sweep");
  EXPECT_EQ(sweep["sweep_id"], "sweep") << "the directory's name";
  EXPECT_EQ(sweep["trial_count"], 2);
  EXPECT_EQ(sweep["status"], "completed") << sweep.dump(2);
  EXPECT_TRUE(sweep["finished_at"].is_string());
  EXPECT_GE(sweep["wall_time_s"].get<double>(), 0.0);
  ASSERT_EQ(sweep["trials"].size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("trial " + std::to_string(i));
    const json& t = sweep["trials"][i];
    EXPECT_EQ(t["index"], i);
    EXPECT_EQ(t["run_dir"], "trial-00" + std::to_string(i));
    EXPECT_EQ(t["status"], "completed");
    EXPECT_TRUE(t["error"].is_null());
    ASSERT_EQ(t["stages"].size(), 1u);
    EXPECT_TRUE(t["stages"][0]["best_val_mre_mm"].is_number());
    // Its own status file holds the same entry, and where it ran.
    const json status =
        read_json(sweep_dir_ / "status" / ("trial-00" + std::to_string(i) + ".json"));
    EXPECT_EQ(status["trial"], t);
    EXPECT_TRUE(status["finished_at"].is_string());
    EXPECT_TRUE(status["pid"].is_number_integer());
  }
  EXPECT_EQ(sweep["trials"][0]["values"], (json{{"memory.micro_batch", 4}}));
  EXPECT_EQ(sweep["trials"][1]["values"], (json{{"memory.micro_batch", 2}}));
  EXPECT_CONTAINS(r1.out, "the sweep so far");

  // A trial directory that holds a run is not run over without --resume=auto ...
  const std::string report_before = test::read_text(sweep_dir_ / "trial-000" / "report.json");
  const auto again = run_trial("0");
  EXPECT_EQ(again.exit_code, 2) << again.describe();
  test::expect_no_crash(again);
  EXPECT_CONTAINS(again.err, "trial-000 holds a run already; --resume=auto continues it");
  // ... and with it, a completed trial is skipped.
  const auto skipped = run_trial("0", {"--resume=auto"});
  EXPECT_EQ(skipped.exit_code, 0) << skipped.describe();
  EXPECT_CONTAINS(skipped.err, "sweep trial 0 completed already");
  EXPECT_EQ(test::read_text(sweep_dir_ / "trial-000" / "report.json"), report_before);
  EXPECT_EQ(read_json(sweep_dir_ / "sweep.json")["status"], "completed");
}

TEST_F(SharedSweepTest, ResumeAutoContinuesAnInterruptedTrial) {
  test::ProcessOptions fault;
  fault.env["EXPRUN_FAULT"] = "TERM@step:train:1:1";
  const auto stopped = run_trial("0", {"--resume=auto"}, fault);
  ASSERT_EQ(stopped.exit_code, 128 + 15) << stopped.describe();
  EXPECT_CONTAINS(stopped.out, "--trial 0 --sweep-dir " + sweep_dir_.string() + " --resume=auto");
  json sweep = read_json(sweep_dir_ / "sweep.json");
  EXPECT_EQ(sweep["trials"][0]["status"], "interrupted");
  EXPECT_EQ(sweep["trials"][1]["status"], "pending") << "another process's to run";
  EXPECT_EQ(sweep["status"], "running");
  EXPECT_TRUE(sweep["finished_at"].is_null());

  const auto resumed = run_trial("0", {"--resume=auto"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
  EXPECT_CONTAINS(resumed.err, "resuming");
  const json report = read_json(sweep_dir_ / "trial-000" / "report.json");
  EXPECT_EQ(report["status"], "completed");
  EXPECT_EQ(report["resumes"].size(), 1u) << "resumed, not started over";
  sweep = read_json(sweep_dir_ / "sweep.json");
  EXPECT_EQ(sweep["trials"][0]["status"], "completed");
  EXPECT_EQ(sweep["status"], "running") << "trial 1 has not run";

  const auto last = run_trial("1", {"--resume=auto"});
  ASSERT_EQ(last.exit_code, 0) << last.describe();
  EXPECT_EQ(read_json(sweep_dir_ / "sweep.json")["status"], "completed");
}

TEST_F(SharedSweepTest, ASweepDirectoryOfOtherSettingsIsRefusedUntouched) {
  ASSERT_EQ(run_trial("0").exit_code, 0);
  const std::string before = test::read_text(sweep_dir_ / "sweep.json");
  const auto r = run_trial("1", {"--set", "epochs=2"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  test::expect_no_crash(r);
  EXPECT_CONTAINS(r.err, "--sweep-dir " + sweep_dir_.string() + ": ");
  EXPECT_CONTAINS(r.err, "was given other --set options than " + file_.string());
  EXPECT_FALSE(fs::exists(sweep_dir_ / "trial-001"));
  EXPECT_EQ(test::read_text(sweep_dir_ / "sweep.json"), before);
}

// The copy's first line names the file as it was typed: slurm submit gives its tasks an
// absolute path, a user may type ./tiny.toml. The same file is the same sweep.
TEST_F(SharedSweepTest, TheSameFileReachedByAnotherPathContinuesTheSweep) {
  ASSERT_EQ(run_trial("0").exit_code, 0);
  const fs::path same = dir_ / "." / "tiny.toml";
  const auto r = test::run_exprun(
      {"run", same.string(), "--trial", "1", "--sweep-dir", sweep_dir_.string()}, [] {
        test::ProcessOptions o;
        o.timeout_s = 600;
        return o;
      }());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(read_json(sweep_dir_ / "sweep.json")["status"], "completed");

  // A status file edited into one exprun never writes is not merged: sweep.json stays valid.
  json before = read_json(sweep_dir_ / "sweep.json");
  const fs::path status_file = sweep_dir_ / "status" / "trial-001.json";
  for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{
           {"status", "bogus"}, {"run_dir", "../../etc"}, {"index", 5}}) {
    SCOPED_TRACE(key);
    const std::string original = test::read_text(status_file);
    json status = json::parse(original);
    status["trial"][key] = value;
    test::write_text(status_file, status.dump(2));
    const auto compared = test::run_exprun({"compare", sweep_dir_.string()});
    EXPECT_EQ(compared.exit_code, 0) << compared.describe();
    EXPECT_CONTAINS(compared.err, status_file.string() + ": not merged into ");
    // The listing keeps the trials as they were (the sweep's end time is then the last merged
    // trial's).
    json after = read_json(sweep_dir_ / "sweep.json");
    EXPECT_EQ(after["trials"], before["trials"]);
    EXPECT_EQ(after["status"], "completed");
    test::write_text(status_file, original);
  }
}

TEST_F(SharedSweepTest, OptionsThatDoNotFitAreUsageErrors) {
  const auto no_sweep_dir = test::run_exprun({"run", file_.string(), "--resume=auto"});
  EXPECT_EQ(no_sweep_dir.exit_code, 2) << no_sweep_dir.describe();
  EXPECT_CONTAINS(no_sweep_dir.err, "--resume=auto continues the run in --run-dir DIR");
  const auto run_dir_with_sweep =
      test::run_exprun({"run", file_.string(), "--run-dir", (dir_ / "r").string()});
  EXPECT_EQ(run_dir_with_sweep.exit_code, 2) << run_dir_with_sweep.describe();
  EXPECT_CONTAINS(run_dir_with_sweep.err, "its trials go into --sweep-dir DIR");
  const auto plain_resume = run_trial("0", {"--resume"});
  EXPECT_EQ(plain_resume.exit_code, 2) << plain_resume.describe();
  EXPECT_CONTAINS(plain_resume.err, "--sweep-dir SWEEP_DIR --resume=auto");
  EXPECT_FALSE(fs::exists(sweep_dir_));
  EXPECT_FALSE(fs::exists(dir_ / "r"));
  EXPECT_FALSE(fs::exists(dir_ / "results"));
}

TEST(RunDirTest, ResumeAutoStartsThenSkipsACompletedRun) {
  test::TempDir dir("exprun-run-dir");
  test::TinyExperiment e;
  e.epochs = 1;
  const fs::path file = dir / "tiny.toml";
  test::write_text(file, e.toml());
  const fs::path run_dir = dir / "run";
  test::ProcessOptions patient;
  patient.timeout_s = 600;
  const auto first = test::run_exprun(
      {"run", file.string(), "--run-dir", run_dir.string(), "--resume=auto"}, patient);
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  EXPECT_EQ(read_json(run_dir / "report.json")["status"], "completed");
  EXPECT_EQ(read_json(run_dir / "report.json")["run_id"], "run");

  const std::string before = test::read_text(run_dir / "report.json");
  const auto second =
      test::run_exprun({"run", file.string(), "--run-dir", run_dir.string(), "--resume=auto"});
  EXPECT_EQ(second.exit_code, 0) << second.describe();
  EXPECT_CONTAINS(second.out, "run completed already: " + (run_dir / "report.json").string());
  const auto without_auto = test::run_exprun({"run", file.string(), "--run-dir", run_dir.string()});
  EXPECT_EQ(without_auto.exit_code, 2) << without_auto.describe();
  EXPECT_CONTAINS(without_auto.err, "holds a run already; --resume=auto continues it");
  EXPECT_EQ(test::read_text(run_dir / "report.json"), before);
}

TEST(RunDirTest, ResumeAutoContinuesAnInterruptedRun) {
  test::TempDir dir("exprun-run-dir");
  test::TinyExperiment e;
  const fs::path file = dir / "tiny.toml";
  test::write_text(file, e.toml());
  const fs::path run_dir = dir / "run";
  test::ProcessOptions fault;
  fault.env["EXPRUN_FAULT"] = "TERM@step:train:1:1";
  fault.timeout_s = 600;
  const std::vector<std::string> args = {"run", file.string(), "--run-dir", run_dir.string(),
                                         "--resume=auto"};
  const auto stopped = test::run_exprun(args, fault);
  ASSERT_EQ(stopped.exit_code, 128 + 15) << stopped.describe();
  EXPECT_CONTAINS(stopped.out, "--run-dir " + run_dir.string() + " --resume=auto");
  test::ProcessOptions patient;
  patient.timeout_s = 600;
  const auto resumed = test::run_exprun(args, patient);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
  const json report = read_json(run_dir / "report.json");
  EXPECT_EQ(report["status"], "completed");
  EXPECT_EQ(report["resumes"].size(), 1u);
}

}  // namespace
}  // namespace exprun

// `exprun slurm submit` and `exprun slurm status` (docs/distributed.md, "A sweep on Slurm"): the
// script and the sweep directory a submission leaves, the submissions refused with nothing
// written, and the status of a sweep one of whose trials ran. Without a Slurm cluster: --dry-run,
// `bash -n` for the script's syntax, and for the talk with sbatch and squeue two stand-in shell
// scripts on PATH that record their arguments and answer as Slurm's clients do.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& file) { return json::parse(test::read_text(file)); }

class SlurmSubmitTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-slurm"};
  fs::path file_ = dir_ / "tiny sweep.toml";  // a space, for the quoting
  fs::path results_ = dir_ / "results";
  fs::path sweep_dir_ = dir_ / "sweep";

  void SetUp() override { write_sweep("[0.001, 0.002, 0.003]"); }

  void write_sweep(const std::string& values, const std::string& key = "optimizer.lr") {
    test::TinyExperiment e;
    e.output = results_;
    e.epochs = 1;
    test::write_text(file_, e.toml() + "\n[sweep.zip]\n\"" + key + "\" = " + values + "\n");
  }

  test::ProcessResult submit(std::vector<std::string> extra, test::ProcessOptions options = {}) {
    std::vector<std::string> args = {"slurm", "submit", file_.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_exprun(args, options);
  }

  // A refused submission: exit 2, one error line, and no directory anywhere.
  void expect_refused(const test::ProcessResult& r, const std::string& message) {
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    test::expect_no_crash(r);
    EXPECT_EQ(r.err.rfind("exprun: error: ", 0), 0u) << r.describe();
    EXPECT_CONTAINS(r.err, message);
    EXPECT_FALSE(fs::exists(sweep_dir_)) << r.describe();
    EXPECT_FALSE(fs::exists(results_)) << r.describe();
  }
};

TEST_F(SlurmSubmitTest, DryRunWritesTheScriptAndTheSweepThenStatusShowsARunTrial) {
  const auto r = submit({"--dry-run", "--parallel", "2", "--time", "10", "--set", "epochs=1",
                         "--sweep-dir", sweep_dir_.string(), "--", "--partition=debug"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const fs::path script = sweep_dir_ / "slurm" / "submit.sh";
  EXPECT_CONTAINS(r.out, "wrote " + script.string() + ": 3 trial(s) of tiny (array 0-2%2)");
  EXPECT_CONTAINS(r.out, "not submitted (--dry-run)");
  EXPECT_CONTAINS(r.out, "sbatch --parsable " + script.string());
  EXPECT_FALSE(fs::exists(sweep_dir_ / "slurm" / "job.json"));

  const std::string text = test::read_text(script);
  for (const std::string& line : std::vector<std::string>{
           "#SBATCH --job-name=exprun-tiny\n", "#SBATCH --array=0-2%2\n", "#SBATCH --ntasks=1\n",
           "#SBATCH --time=10\n", "#SBATCH --requeue\n", "#SBATCH --open-mode=append\n",
           "#SBATCH --output=" + (sweep_dir_ / "slurm").string() + "/trial-%a.log\n",
           "#SBATCH --signal=USR1@120\n", "#SBATCH --partition=debug\n"}) {
    EXPECT_CONTAINS(text, line);
  }
  EXPECT_CONTAINS(text, "exec srun --kill-on-bad-exit=1 " + std::string(EXPRUN_EXE) + " run '" +
                            file_.string() + "' --trial \"$SLURM_ARRAY_TASK_ID\" --sweep-dir " +
                            sweep_dir_.string() + " --resume=auto --set epochs=1\n");
  const auto syntax = test::run_process({"/bin/bash", "-n", script.string()});
  EXPECT_EQ(syntax.exit_code, 0) << syntax.describe();

  // The sweep directory is fixed before any task starts: every trial pending.
  json sweep = read_json(sweep_dir_ / "sweep.json");
  EXPECT_EQ(sweep["status"], "running");
  ASSERT_EQ(sweep["trials"].size(), 3u);
  for (const auto& t : sweep["trials"]) EXPECT_EQ(t["status"], "pending");
  EXPECT_TRUE(fs::is_directory(sweep_dir_ / "status"));

  // What array task 0 runs, without srun: it takes the directory as its own.
  const auto trial = test::run_exprun({"run", file_.string(), "--trial", "0", "--sweep-dir",
                                       sweep_dir_.string(), "--resume=auto", "--set", "epochs=1"});
  ASSERT_EQ(trial.exit_code, 0) << trial.describe();

  const auto status = test::run_exprun({"slurm", "status", sweep_dir_.string()});
  ASSERT_EQ(status.exit_code, 0) << status.describe();
  EXPECT_CONTAINS(status.out, "sweep " + sweep_dir_.string() +
                                  ": 3 trial(s), 1 completed, 2 pending; sweep running");
  EXPECT_CONTAINS(status.out, "no " + (sweep_dir_ / "slurm" / "job.json").string());
  EXPECT_CONTAINS(status.out, "the status files' view only");
  const auto lines = test::split_lines(status.out);
  ASSERT_GE(lines.size(), 5u) << status.describe();
  const std::vector<std::string> rows(lines.end() - 4, lines.end());
  EXPECT_EQ(rows[0].rfind("trial  optimizer.lr  status     host", 0), 0u) << rows[0];
  EXPECT_EQ(rows[1].rfind("0      0.001         completed  ", 0), 0u) << rows[1];
  EXPECT_CONTAINS(rows[1], " mm");
  EXPECT_EQ(rows[2].rfind("1      0.002         pending    -", 0), 0u) << rows[2];
  EXPECT_EQ(rows[3].rfind("2      0.003         pending    -", 0), 0u) << rows[3];
  sweep = read_json(sweep_dir_ / "sweep.json");
  EXPECT_EQ(sweep["trials"][0]["status"], "completed");
}

// Each array task is a step of N tasks that srun starts as the ranks of one trial
// (tests/e2e/data_parallel_test.cpp runs such a trial).
TEST_F(SlurmSubmitTest, RanksAreTheTasksOfEachArrayTask) {
  const auto r = submit({"--dry-run", "--ranks", "2", "--sweep-dir", sweep_dir_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const std::string text = test::read_text(sweep_dir_ / "slurm" / "submit.sh");
  EXPECT_CONTAINS(text, "#SBATCH --ntasks=2\n");
  EXPECT_CONTAINS(text, "exec srun --kill-on-bad-exit=1 ");
}

TEST_F(SlurmSubmitTest, ADefaultSweepDirectoryIsANewRunDirectory) {
  const auto r = submit({"--dry-run", "--set", "epochs=1"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  std::vector<fs::path> made;
  for (const auto& entry : fs::directory_iterator(results_ / "tiny")) made.push_back(entry.path());
  ASSERT_EQ(made.size(), 1u);
  const std::string text = test::read_text(made[0] / "slurm" / "submit.sh");
  EXPECT_CONTAINS(text, "#SBATCH --array=0-2\n");
  EXPECT_NOT_CONTAINS(text, "--time=");
  EXPECT_CONTAINS(text, "--sweep-dir " + made[0].string() + " --resume=auto");
  EXPECT_EQ(read_json(made[0] / "sweep.json")["trials"].size(), 3u);
}

TEST_F(SlurmSubmitTest, RefusalsLeaveNothingWritten) {
  const std::vector<std::string> dir = {"--sweep-dir", sweep_dir_.string()};
  auto with_dir = [&](std::vector<std::string> args) {
    args.insert(args.end(), dir.begin(), dir.end());
    return args;
  };
  {
    SCOPED_TRACE("too short a time limit");
    expect_refused(submit(with_dir({"--time", "3"})), "--time 3: a limit of 3 min is too short");
    expect_refused(submit({"--time", "3"}), "give at least --time 4");
    expect_refused(submit(with_dir({"--time", "10", "--signal-lead", "600"})),
                   "give at least --time 12");
  }
  {
    SCOPED_TRACE("a malformed time limit");
    expect_refused(submit(with_dir({"--time", "1h"})),
                   "--time 1h: '1h' is not a whole number of digits; expected MM, MM:SS, "
                   "HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS");
  }
  {
    SCOPED_TRACE("no ranks");
    expect_refused(submit(with_dir({"--ranks", "0"})),
                   "--ranks 0: expected a whole number from 1 to");
  }
  {
    SCOPED_TRACE("an sbatch option the script sets");
    expect_refused(submit(with_dir({"--", "--array=0-9"})),
                   "sbatch option '--array=0-9' after --: --array is set by exprun slurm submit");
  }
  {
    SCOPED_TRACE("bad counts");
    expect_refused(submit(with_dir({"--parallel", "0"})),
                   "--parallel 0: expected a whole number from 1 to");
    expect_refused(submit(with_dir({"--signal-lead", "70000"})),
                   "--signal-lead 70000: expected a whole number from 1 to 65535");
  }
}

// docs/cli.md: status always exits 0 for a sweep directory it can read. A damaged job.json
// used to end it with exit 1; now only the queue's view is lost, and the note says why.
TEST_F(SlurmSubmitTest, StatusWithADamagedJobRecordFallsBackToTheStatusFiles) {
  ASSERT_EQ(submit({"--dry-run", "--sweep-dir", sweep_dir_.string()}).exit_code, 0);
  const fs::path job = sweep_dir_ / "slurm" / "job.json";
  for (const std::string text : {"garbage", "{\"job_id\": 123}"}) {
    test::write_text(job, text);
    const auto status = test::run_exprun({"slurm", "status", sweep_dir_.string()});
    EXPECT_EQ(status.exit_code, 0) << status.describe();
    EXPECT_CONTAINS(status.out, "note: " + job.string());
    EXPECT_CONTAINS(status.out, "the status files' view only");
    EXPECT_CONTAINS(status.out, "trial");
  }
}

// std::filesystem's own message named neither option, and exited 1 where docs/cli.md says 2.
TEST_F(SlurmSubmitTest, ADirectoryThatCannotBeMadeNamesItsOption) {
  const fs::path in_the_way = dir_ / "a-file";
  test::write_text(in_the_way, "keep me\n");
  for (const fs::path& sweep_dir : {in_the_way, in_the_way / "sub"}) {
    const auto r = submit({"--dry-run", "--sweep-dir", sweep_dir.string()});
    expect_refused(r, "--sweep-dir " + sweep_dir.string() + ": cannot create ");
    EXPECT_CONTAINS(r.err, "Not a directory");
    EXPECT_EQ(r.err.find("filesystem error"), std::string::npos) << r.describe();
  }
  expect_refused(submit({"--dry-run", "--", "--comment=a\nb"}),
                 "holds a line break or another control character");
  EXPECT_EQ(test::read_text(in_the_way), "keep me\n");
}

TEST_F(SlurmSubmitTest, ABadTrialIsRefusedWithNothingWritten) {
  write_sweep("[2, 0, 1]", "memory.micro_batch");
  expect_refused(submit({"--dry-run", "--sweep-dir", sweep_dir_.string()}),
                 "sweep trial 1 (memory.micro_batch=0): ");
  expect_refused(submit({"--dry-run"}), "sweep trial 1 (memory.micro_batch=0): ");
}

TEST_F(SlurmSubmitTest, AnotherSweepsDirectoryIsRefusedUntouched) {
  ASSERT_EQ(submit({"--dry-run", "--sweep-dir", sweep_dir_.string()}).exit_code, 0);
  const std::string script = test::read_text(sweep_dir_ / "slurm" / "submit.sh");
  const auto r = submit({"--dry-run", "--sweep-dir", sweep_dir_.string(), "--set", "epochs=2"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "was given other --set options than");
  EXPECT_EQ(test::read_text(sweep_dir_ / "slurm" / "submit.sh"), script);
}

TEST_F(SlurmSubmitTest, AFileWithoutSweepIsOneJobOfOneRun) {
  test::TinyExperiment e;
  e.output = results_;
  e.epochs = 1;
  test::write_text(file_, e.toml());
  const fs::path run_dir = dir_ / "run";
  const auto refused = submit({"--dry-run", "--parallel", "2"});
  EXPECT_EQ(refused.exit_code, 2) << refused.describe();
  EXPECT_CONTAINS(refused.err, "--parallel: " + file_.string() + " has no [sweep]");
  const auto r = submit({"--dry-run", "--run-dir", run_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const std::string text = test::read_text(run_dir / "slurm" / "submit.sh");
  EXPECT_NOT_CONTAINS(text, "--array");
  EXPECT_CONTAINS(text, "#SBATCH --output=" + (run_dir / "slurm").string() + "/run.log\n");
  EXPECT_CONTAINS(text, "--run-dir " + run_dir.string() + " --resume=auto\n");
  EXPECT_EQ(
      test::run_process({"/bin/bash", "-n", (run_dir / "slurm" / "submit.sh").string()}).exit_code,
      0);
  const auto status = test::run_exprun({"slurm", "status", run_dir.string()});
  EXPECT_EQ(status.exit_code, 0) << status.describe();
  EXPECT_CONTAINS(status.out, "run " + run_dir.string() + ": pending (no report.json yet)");
}

TEST_F(SlurmSubmitTest, HelpAndUsageErrors) {
  const auto help = test::run_exprun({"slurm", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.describe();
  EXPECT_CONTAINS(help.out, "usage: exprun slurm submit FILE.toml");
  for (const std::string sub : {"submit", "status"}) {
    const auto r = test::run_exprun({"slurm", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_CONTAINS(r.out, "exprun slurm " + sub);
  }
  EXPECT_CONTAINS(test::run_exprun({"slurm", "submit", "--help"}).out, "--signal-lead");
  const auto none = test::run_exprun({"slurm"});
  EXPECT_EQ(none.exit_code, 2) << none.describe();
  const auto unknown = test::run_exprun({"slurm", "cancel"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.describe();
  EXPECT_CONTAINS(unknown.err, "exprun: error: slurm cancel: expected submit or status");
  const auto no_dir = test::run_exprun({"slurm", "status", (dir_ / "nowhere").string()});
  EXPECT_EQ(no_dir.exit_code, 2) << no_dir.describe();
  EXPECT_CONTAINS(no_dir.err, "nowhere: no such directory");
  const auto not_a_sweep = test::run_exprun({"slurm", "status", dir_.path().string()});
  EXPECT_EQ(not_a_sweep.exit_code, 2) << not_a_sweep.describe();
  EXPECT_CONTAINS(not_a_sweep.err, "neither a sweep directory");
  test::expect_no_crash(not_a_sweep);
}

TEST_F(SlurmSubmitTest, PluginsGivenBeforeTheCommandStayExpruns) {
  // main() moves a leading --plugins DIR behind everything, so behind `--` too.
  const auto r =
      test::run_exprun({"--plugins", EXPRUN_PLUGIN_DIR, "slurm", "submit", file_.string(),
                        "--dry-run", "--sweep-dir", sweep_dir_.string(), "--", "-p", "debug"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const std::string text = test::read_text(sweep_dir_ / "slurm" / "submit.sh");
  EXPECT_CONTAINS(text, "#SBATCH -p debug\n\n");
  EXPECT_NOT_CONTAINS(text, "#SBATCH --plugins");
  EXPECT_CONTAINS(text, " --resume=auto --plugins " +
                            fs::path(EXPRUN_PLUGIN_DIR).lexically_normal().string() + "\n");
}

// Stand-ins for Slurm's clients: each records its arguments, one a line, then answers as the
// real one does. What they check is exprun's side: what it runs, and what it makes of the answer.
class SlurmClientsTest : public SlurmSubmitTest {
 protected:
  fs::path bin_ = dir_ / "bin";
  test::ProcessOptions with_clients_;

  void SetUp() override {
    SlurmSubmitTest::SetUp();
    with_clients_.env["PATH"] = bin_.string() + ":/usr/bin:/bin";
  }

  void client(const std::string& name, const std::string& answer) {
    const fs::path program = bin_ / name;
    test::write_text(program, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > \"$0.args\"\n" +
                                  answer + "\n");
    fs::permissions(program, fs::perms::owner_all);
  }
  std::vector<std::string> args_of(const std::string& name) {
    return test::split_lines(test::read_text(bin_ / (name + ".args")));
  }
};

TEST_F(SlurmClientsTest, SubmitRecordsTheJobAndStatusAsksSqueue) {
  client("sbatch", "echo '4242;main'");
  client("squeue", "printf '4242_1 RUNNING\\n4242_2 PENDING\\n'");
  const auto r = submit({"--sweep-dir", sweep_dir_.string()}, with_clients_);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const fs::path script = sweep_dir_ / "slurm" / "submit.sh";
  EXPECT_EQ(args_of("sbatch"), (std::vector<std::string>{"--parsable", script.string()}));
  EXPECT_CONTAINS(r.out, "submitted Slurm job 4242: 3 trial(s) of tiny");
  EXPECT_CONTAINS(r.out, "squeue -j 4242\n");
  EXPECT_CONTAINS(r.out, "exprun slurm status " + sweep_dir_.string() + "\n");
  EXPECT_CONTAINS(r.out, "tail -f " + (sweep_dir_ / "slurm").string() + "/trial-*.log\n");
  const json job = read_json(sweep_dir_ / "slurm" / "job.json");
  EXPECT_EQ(job["job_id"], "4242");
  EXPECT_EQ(job["script"], script.string());
  EXPECT_EQ(job["command"], (json{(bin_ / "sbatch").string(), "--parsable", script.string()}));
  EXPECT_TRUE(job["submitted_at"].is_string());

  const auto status = test::run_exprun({"slurm", "status", sweep_dir_.string()}, with_clients_);
  ASSERT_EQ(status.exit_code, 0) << status.describe();
  EXPECT_EQ(args_of("squeue"), (std::vector<std::string>{"-h", "-r", "-j", "4242", "-o", "%i %T"}));
  EXPECT_CONTAINS(status.out, "Slurm job 4242, states from squeue\n");
  EXPECT_CONTAINS(status.out, "trial  optimizer.lr  status   slurm       host  pid  best MRE\n");
  EXPECT_CONTAINS(status.out, "0      0.001         pending  not queued  -     -    -\n");
  EXPECT_CONTAINS(status.out, "1      0.002         pending  RUNNING     -     -    -\n");
  EXPECT_CONTAINS(status.out, "2      0.003         pending  PENDING     -     -    -\n");
  EXPECT_CONTAINS(status.out, "trial(s) 0 are pending or running here but not in Slurm's queue");
}

TEST_F(SlurmClientsTest, AFailingSbatchIsReportedAndTheScriptKept) {
  client("sbatch", "echo 'sbatch: error: invalid partition specified: nope' >&2; exit 1");
  const auto r = submit({"--sweep-dir", sweep_dir_.string(), "--", "-p", "nope"}, with_clients_);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  test::expect_no_crash(r);
  EXPECT_CONTAINS(r.err,
                  "exprun: error: sbatch failed (exit 1): sbatch: error: invalid "
                  "partition specified: nope; nothing was submitted");
  EXPECT_TRUE(fs::exists(sweep_dir_ / "slurm" / "submit.sh"));
  EXPECT_FALSE(fs::exists(sweep_dir_ / "slurm" / "job.json"));
}

TEST_F(SlurmClientsTest, WithoutSbatchTheErrorSaysWhatToDo) {
  fs::create_directories(bin_);
  test::ProcessOptions no_slurm;
  no_slurm.env["PATH"] = bin_.string();
  const auto r = submit({"--sweep-dir", sweep_dir_.string()}, no_slurm);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_CONTAINS(r.err, "sbatch is not on PATH: install Slurm's client");
  EXPECT_CONTAINS(r.err, "use --dry-run");
  EXPECT_TRUE(fs::exists(sweep_dir_ / "slurm" / "submit.sh"));
  const auto status = test::run_exprun({"slurm", "status", sweep_dir_.string()}, no_slurm);
  EXPECT_EQ(status.exit_code, 0) << status.describe();
  EXPECT_CONTAINS(status.out, "no " + (sweep_dir_ / "slurm" / "job.json").string());
}

}  // namespace
}  // namespace exprun

// Run directories under hostile conditions (issue 12, items 7, 9, 10, 16, 17): one writer per
// run directory, a printed resume command that survives any path, temporary files left by a
// crash, a sweep stopped by Ctrl-C, and a misspelt EXPRUN_FAULT.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "run/experiment_run.hpp"
#include "run/run_lock.hpp"
#include "sweep/sweep_summary.hpp"
#include "test_support.hpp"
#include "util/atomic_file.hpp"
#include "util/fault_injection.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::string my_host() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

std::string lock_error(const fs::path& dir) {
  try {
    RunLock second(dir);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "the second lock of " << dir << " was granted";
  return "";
}

// A directory name with everything a shell would split, expand or unquote.
const std::string kHostileName = "it's a $HOME `x` \\ \"dir\"";

// ---------------------------------------------------------------- shell quoting (item 9)

TEST(ShellQuote, EveryWordRoundTripsThroughTheShell) {
  const std::vector<std::string> words = {"plain/path-1.toml",
                                          "",
                                          "with space",
                                          "it's",
                                          "$HOME",
                                          "back\\slash",
                                          "`date`",
                                          "a\"b",
                                          "--resume=" + kHostileName,
                                          "*",
                                          "~",
                                          "semi;colon",
                                          "x=$(id)",
                                          "'",
                                          "''"};
  std::string command = "printf '%s\\n'";
  for (const auto& word : words) command += " " + shell_quote(word);
  const test::ProcessResult r = test::run_process({"/bin/sh", "-c", command});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(test::split_lines(r.out), words) << command;
}

TEST(ShellQuote, PlainWordsStayReadable) {
  EXPECT_EQ(shell_quote("results/quickstart/20261123-070248"),
            "results/quickstart/20261123-070248");
  EXPECT_EQ(shell_quote("--resume=results/q/1"), "--resume=results/q/1");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
}

// ---------------------------------------------------------------- run lock (item 7)

TEST(RunLock, ASecondWriterIsRefusedWithTheHolderNamed) {
  test::TempDir dir("exprun-lock");
  {
    const RunLock first(dir.path());
    EXPECT_TRUE(fs::exists(dir / ".exprun.lock"));
    const std::string error = lock_error(dir.path());
    EXPECT_CONTAINS(error, "run directory " + dir.path().string() + " is in use by pid " +
                               std::to_string(::getpid()) + " on host " + my_host() + " since ");
    EXPECT_CONTAINS(error, "wait for that one to end or stop it");
  }
  // Released and removed at the end of the run; the directory can be taken again.
  EXPECT_FALSE(fs::exists(dir / ".exprun.lock"));
  EXPECT_NO_THROW(RunLock again(dir.path()));
}

TEST(RunLock, AStaleLockFileIsTakenOver) {
  test::TempDir dir("exprun-lock");
  // What a process killed while running leaves: the file, but no flock on it.
  test::write_text(dir / ".exprun.lock",
                   "pid 999999\nhost elsewhere\nsince 2026-01-01T00:00:00Z\n");
  const RunLock lock(dir.path());
  EXPECT_CONTAINS(test::read_text(dir / ".exprun.lock"),
                  "pid " + std::to_string(::getpid()) + "\n");
}

TEST(RunLock, HeldByAnotherProcessUntilItDies) {
  test::TempDir dir("exprun-lock");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    try {
      new RunLock(dir.path());  // never released: the process is killed holding it
    } catch (...) {
      ::_exit(3);
    }
    const char ok = 'y';
    if (::write(ready[1], &ok, 1) != 1) ::_exit(4);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char got = 0;
  ASSERT_EQ(::read(ready[0], &got, 1), 1);
  ::close(ready[0]);
  EXPECT_CONTAINS(lock_error(dir.path()),
                  "is in use by pid " + std::to_string(child) + " on host " + my_host());
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  // The kernel released the dead process's lock; its file is still there, and stale.
  ASSERT_TRUE(fs::exists(dir / ".exprun.lock"));
  EXPECT_NO_THROW(RunLock taken(dir.path()));
}

// ---------------------------------------------------------------- stale temporary files (item 10)

TEST(RunLock, AFileSystemWithoutLocksIsToldFromALockThatIsTaken) {
  for (const int error : {ENOLCK, EOPNOTSUPP, ENOSYS}) EXPECT_TRUE(flock_unsupported(error));
  for (const int error : {EWOULDBLOCK, EBADF, EINTR, EINVAL, ENOMEM})
    EXPECT_FALSE(flock_unsupported(error)) << error;
}

TEST(RunLock, AUsersOwnLockFileIsNotTheRunsLock) {
  test::TempDir dir("exprun-lock");
  test::write_text(dir / ".lock", "mine");
  { const RunLock lock(dir.path()); }
  EXPECT_EQ(test::read_text(dir / ".lock"), "mine");
}

// ---------------------------------------------------------------- stale temporary files (item 10)

TEST(StaleTemporaries, OnlyTemporariesOfTheRunsOwnFilesAreRemovedWhateverTheirPid) {
  test::TempDir dir("exprun-tmp");
  // Ours too: in a container every run may have the same pid (1), and one that crashed left
  // report.json.tmp-1 for the next pid 1 to find.
  const std::string mine = std::to_string(::getpid());
  const std::vector<std::string> stale = {"report.json.tmp-999999",
                                          "report.json.tmp-" + mine,
                                          "experiment.toml.tmp-3",
                                          "resolved.toml.tmp-3",
                                          "train/metrics.jsonl.tmp-12",
                                          "train/curves.png.tmp-" + mine,
                                          "train/checkpoints/latest.pt.tmp-7",
                                          "train/checkpoints/epoch_3.pt.tmp-1"};
  const std::vector<std::string> kept = {"report.json",
                                         "notes.tmp-2024",
                                         "notes.tmp-abc",
                                         "x.tmp-",
                                         ".tmp-5",
                                         "train/notes.tmp-" + mine,
                                         "train/report.json.tmp-4",
                                         "metrics.jsonl.tmp-4",
                                         "model.pt.tmp-4",
                                         "train/model.pt.tmp-4",
                                         "train/eval-test.json.tmp-4",
                                         "a/b/checkpoints/x.pt.tmp-4"};
  for (const auto& name : stale) test::write_text(dir / name, "partial");
  for (const auto& name : kept) test::write_text(dir / name, "keep");
  const std::vector<fs::path> removed = remove_stale_temporaries(dir.path(), is_atomic_run_file);
  EXPECT_EQ(removed.size(), stale.size());
  for (const auto& name : stale) EXPECT_FALSE(fs::exists(dir / name)) << name;
  for (const auto& name : kept) EXPECT_TRUE(fs::exists(dir / name)) << name;
}

// ---------------------------------------------------------------- EXPRUN_FAULT (item 17)

class FaultSetting : public ::testing::Test {
 protected:
  void TearDown() override { ::unsetenv("EXPRUN_FAULT"); }
  std::string error_of(const std::string& value) {
    ::setenv("EXPRUN_FAULT", value.c_str(), 1);
    try {
      check_fault_setting({"pretrain", "train"});
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(FaultSetting, EveryKnownPointIsAccepted) {
  for (const char* value :
       {"KILL@step:train:1:1", "TERM@step:pretrain:12:30", "INT@checkpoint:train:0:latest",
        "KILL@checkpoint:train:2:best", "KILL@checkpoint:train:3:epoch_3", "KILL@stage-end:train"})
    EXPECT_EQ(error_of(value), "") << value;
  ::unsetenv("EXPRUN_FAULT");
  EXPECT_NO_THROW(check_fault_setting({"train"}));
}

TEST_F(FaultSetting, AnUnknownPointIsRefusedListingTheKnownOnes) {
  EXPECT_EQ(error_of("KILL@stpe:train:1:1"),
            "EXPRUN_FAULT=KILL@stpe:train:1:1: unknown point 'stpe:train:1:1'; the points are "
            "step:STAGE:EPOCH:STEP, checkpoint:STAGE:EPOCH:NAME, stage-end:STAGE");
  EXPECT_CONTAINS(error_of("KILL@"), "unknown point ''");
  EXPECT_CONTAINS(error_of("KILL@step:train:1"),
                  "point 'step:train:1' does not have the form step:STAGE:EPOCH:STEP");
  EXPECT_CONTAINS(error_of("KILL@stage-end:train:1"), "does not have the form stage-end:STAGE");
  EXPECT_CONTAINS(error_of("KIL@step:train:1:1"), "expected KILL@POINT, TERM@POINT, INT@POINT or USR1@POINT");
}

TEST_F(FaultSetting, FieldsThatCanNeverMatchAreRefused) {
  EXPECT_EQ(error_of("KILL@step:trian:1:1"),
            "EXPRUN_FAULT=KILL@step:trian:1:1: point 'step:trian:1:1': STAGE 'trian' is not a "
            "stage of this experiment ('pretrain', 'train'); did you mean 'train'?");
  EXPECT_CONTAINS(error_of("KILL@step:train:01:1"),
                  "EPOCH '01' is not a whole number from 1 written without leading zeros");
  EXPECT_CONTAINS(error_of("KILL@step:train:1:0"), "STEP '0' is not a whole number from 1");
  EXPECT_CONTAINS(error_of("KILL@checkpoint:train:x:latest"),
                  "EPOCH 'x' is not a whole number from 0");
  EXPECT_CONTAINS(error_of("KILL@checkpoint:train:1:lastest"),
                  "NAME 'lastest' is not latest, best or epoch_N");
}

// ---------------------------------------------------------------- sweep summary (item 16)

TEST(SweepSummary, TrialsThatNeverRanAreNotCountedAsFailed) {
  const json sweep = {{"keys", {"optimizer.lr"}},
                      {"trials",
                       {{{"index", 0},
                         {"values", {{"optimizer.lr", 0.1}}},
                         {"status", "completed"},
                         {"error", nullptr},
                         {"wall_time_s", 3.0},
                         {"stages", json::array()}},
                        {{"index", 1},
                         {"values", {{"optimizer.lr", 0.2}}},
                         {"status", "interrupted"},
                         {"error", "stopped by SIGINT"},
                         {"wall_time_s", 1.0},
                         {"stages", json::array()}},
                        {{"index", 2},
                         {"values", {{"optimizer.lr", 0.3}}},
                         {"status", "not_run"},
                         {"error", nullptr},
                         {"wall_time_s", nullptr},
                         {"stages", json::array()}}}}};
  EXPECT_EQ(sweep_status_counts(sweep), "1 completed, 1 interrupted, 1 not run");
  EXPECT_EQ(unfinished_trials(sweep), (std::vector<std::size_t>{1, 2}));
  const std::string table = sweep_summary_table(sweep);
  EXPECT_NOT_CONTAINS(table, "failed");
  EXPECT_CONTAINS(table, "not_run");
}

// ---------------------------------------------------------------- through the built exprun

test::ProcessResult exprun(std::vector<std::string> args,
                           std::map<std::string, std::string> env = {}, const fs::path& cwd = {}) {
  test::ProcessOptions options;
  for (const auto& [k, v] : env) options.env[k] = v;
  options.cwd = cwd;
  options.timeout_s = 300;  // tiny runs, but the machine may be shared
  return test::run_exprun(std::move(args), std::move(options));
}

// The one run directory of experiment `name` under `output`.
fs::path only_run(const fs::path& output, const std::string& name = "tiny") {
  std::vector<fs::path> runs;
  if (fs::is_directory(output / name))
    for (const auto& e : fs::directory_iterator(output / name)) runs.push_back(e.path());
  EXPECT_EQ(runs.size(), 1u) << output / name;
  return runs.empty() ? fs::path() : runs.front();
}

json read_json(const fs::path& file) { return json::parse(test::read_text(file)); }

TEST(RunDirectory, ResumeIsRefusedWhileHeldAndThePrintedCommandWorksOnAHostilePath) {
  test::TempDir scratch("exprun-rundir");
  const fs::path home = scratch / kHostileName;
  const fs::path file = home / "tiny.toml";
  test::TinyExperiment tiny;
  test::write_text(file, tiny.toml());
  const fs::path output = home / "out put";
  const auto first =
      exprun({"run", file.string(), "--output", output.string(), "--set", "stages.train.epochs=1"},
             {{"EXPRUN_FAULT", "INT@step:train:1:1"}});
  ASSERT_EQ(first.exit_code, 130) << first.describe();
  const fs::path run = only_run(output);
  EXPECT_FALSE(fs::exists(run / ".exprun.lock")) << "the lock is removed when the run ends";
  const auto lines = test::split_lines(first.out);
  ASSERT_GE(lines.size(), 2u) << first.describe();
  ASSERT_CONTAINS(lines[0], "Resume with:");
  const std::string command = lines[1].substr(2);

  {
    // A second writer while this process holds the run (as a training exprun would).
    const RunLock held(run);
    const auto refused = exprun({"run", file.string(), "--output", output.string(), "--set",
                                 "stages.train.epochs=1", "--resume=" + run.string()});
    EXPECT_EQ(refused.exit_code, 1) << refused.describe();
    EXPECT_CONTAINS(refused.err, "exprun: error: run directory " + run.string() +
                                     " is in use by pid " + std::to_string(::getpid()) +
                                     " on host " + my_host());
    EXPECT_EQ(read_json(run / "report.json")["status"], "interrupted");
  }

  // Temporaries of writes a crash cut short, of a process that no longer exists.
  const std::vector<std::string> stale = {
      "report.json.tmp-999999", "train/metrics.jsonl.tmp-999998", "train/curves.png.tmp-999997"};
  for (const auto& name : stale) test::write_text(run / name, "partial");
  test::write_text(run / "train" / "notes.tmp-x", "not ours");

  // The printed command, as a user would paste it, with exprun found on PATH.
  const std::string path = fs::path(EXPRUN_EXE).parent_path().string() + ":" +
                           (std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
  test::ProcessOptions options;
  options.env["PATH"] = path;
  options.env["EXPRUN_PLUGIN_PATH"] = std::nullopt;  // as run_exprun: the plugins of this build
  options.timeout_s = 300;
  const auto resumed = test::run_process({"/bin/sh", "-c", command}, options);
  ASSERT_EQ(resumed.exit_code, 0) << command << "\n" << resumed.describe();
  EXPECT_CONTAINS(resumed.out, "run completed: " + run.string() + "/report.json");
  EXPECT_EQ(read_json(run / "report.json")["status"], "completed");
  for (const auto& name : stale) {
    EXPECT_FALSE(fs::exists(run / name)) << name;
    EXPECT_CONTAINS(resumed.err, "exprun: removed " + (run / name).string());
  }
  EXPECT_TRUE(fs::exists(run / "train" / "notes.tmp-x"));
  EXPECT_FALSE(fs::exists(run / ".exprun.lock"));
}

TEST(RunDirectory, ALockLeftByAKilledRunIsTakenOver) {
  test::TempDir scratch("exprun-rundir");
  test::TinyExperiment tiny;
  tiny.output = scratch / "results";
  tiny.epochs = 1;
  test::write_text(scratch / "tiny.toml", tiny.toml());
  const auto killed =
      exprun({"run", (scratch / "tiny.toml").string()}, {{"EXPRUN_FAULT", "KILL@step:train:1:2"}});
  ASSERT_EQ(killed.term_signal, SIGKILL) << killed.describe();
  const fs::path run = only_run(tiny.output);
  ASSERT_TRUE(fs::exists(run / ".exprun.lock"));
  const auto resumed = exprun({"run", (scratch / "tiny.toml").string(), "--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
  EXPECT_CONTAINS(resumed.err, "was left by pid ");
  EXPECT_CONTAINS(resumed.err, "which has ended; taking it over");
  EXPECT_FALSE(fs::exists(run / ".exprun.lock"));
}

// Every file under `dir` with its content.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    files[e.path().lexically_relative(dir).string()] =
        e.is_regular_file() ? test::read_text(e.path()) : "<dir>";
  return files;
}

TEST(RunDirectory, AFolderThatIsNotARunGivenToResumeIsLeftUntouched) {
  test::TempDir scratch("exprun-rundir");
  test::TinyExperiment tiny;
  tiny.output = scratch / "results";
  test::write_text(scratch / "tiny.toml", tiny.toml());
  const fs::path folder = scratch / "my project";
  test::write_text(folder / ".lock", "the user's own lock");
  test::write_text(folder / "notes.txt", "notes");
  test::write_text(folder / "report.json.tmp-4242", "looks like ours, is not in a run");
  const auto before = snapshot(folder);
  const auto r = exprun({"run", (scratch / "tiny.toml").string(), "--resume=" + folder.string()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_CONTAINS(r.err, (folder / "report.json").string());
  EXPECT_EQ(snapshot(folder), before);

  // A run of another configuration is refused before it is touched too.
  const auto first =
      exprun({"run", (scratch / "tiny.toml").string()}, {{"EXPRUN_FAULT", "INT@step:train:1:1"}});
  ASSERT_EQ(first.exit_code, 130) << first.describe();
  const fs::path run = only_run(tiny.output);
  test::write_text(run / "report.json.tmp-4242", "partial");
  const auto run_before = snapshot(run);
  const auto other = exprun({"run", (scratch / "tiny.toml").string(), "--set",
                             "stages.train.optimizer.lr=0.5", "--resume=" + run.string()});
  EXPECT_EQ(other.exit_code, 1) << other.describe();
  EXPECT_CONTAINS(other.err, "it was run with another configuration");
  EXPECT_EQ(snapshot(run), run_before);
}

TEST(RunDirectory, AMisspeltFaultIsAnErrorBeforeAnythingIsWritten) {
  test::TempDir scratch("exprun-rundir");
  test::TinyExperiment tiny;
  tiny.output = scratch / "results";
  test::write_text(scratch / "tiny.toml", tiny.toml());
  const auto r =
      exprun({"run", (scratch / "tiny.toml").string()}, {{"EXPRUN_FAULT", "KILL@stpe:train:1:1"}});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err,
                  "exprun: error: EXPRUN_FAULT=KILL@stpe:train:1:1: unknown point "
                  "'stpe:train:1:1'; the points are step:STAGE:EPOCH:STEP, "
                  "checkpoint:STAGE:EPOCH:NAME, stage-end:STAGE\n");
  EXPECT_FALSE(fs::exists(tiny.output));

  // A sweep checks it before its directory is made.
  test::write_text(scratch / "sweep.toml",
                   tiny.toml() + "\n[sweep.grid]\n\"optimizer.lr\" = [0.001, 0.002]\n");
  const auto sweep =
      exprun({"run", (scratch / "sweep.toml").string()}, {{"EXPRUN_FAULT", "KILL@step:trian:1:1"}});
  EXPECT_EQ(sweep.exit_code, 2) << sweep.describe();
  EXPECT_CONTAINS(sweep.err, "STAGE 'trian' is not a stage of this experiment ('train')");
  EXPECT_FALSE(fs::exists(tiny.output));
}

TEST(RunDirectory, CtrlCInASweepCountsTheTrialsThatNeverRanAsNotRun) {
  test::TempDir scratch("exprun-rundir");
  test::TinyExperiment tiny;
  tiny.output = scratch / "results";
  tiny.epochs = 1;
  test::write_text(scratch / "sweep.toml",
                   tiny.toml() + "\n[sweep.grid]\n\"optimizer.lr\" = [0.001, 0.002, 0.003]\n");
  const auto r =
      exprun({"run", (scratch / "sweep.toml").string()}, {{"EXPRUN_FAULT", "INT@step:train:1:1"}});
  EXPECT_EQ(r.exit_code, 130) << r.describe();
  const fs::path sweep_dir = only_run(tiny.output);
  EXPECT_CONTAINS(r.out, "sweep interrupted (SIGINT; 1 interrupted, 2 not run): " +
                             (sweep_dir / "sweep.json").string() + "\n");
  EXPECT_NOT_CONTAINS(r.out, "failed");
  EXPECT_CONTAINS(r.out,
                  "Run the unfinished trials (in a new sweep directory) with:\n  exprun run " +
                      shell_quote((scratch / "sweep.toml").string()) + " --trial 0,1,2\n");
  const json doc = read_json(sweep_dir / "sweep.json");
  EXPECT_EQ(doc["status"], "interrupted");
  ASSERT_EQ(doc["trials"].size(), 3u);
  EXPECT_EQ(doc["trials"][0]["status"], "interrupted");
  EXPECT_EQ(doc["trials"][1]["status"], "not_run");
  EXPECT_EQ(doc["trials"][2]["status"], "not_run");
  EXPECT_FALSE(fs::exists(sweep_dir / "trial-001"));
  // sweep.json is checked against docs/report.schema.json when `scratch` goes away.
}

}  // namespace
}  // namespace exprun

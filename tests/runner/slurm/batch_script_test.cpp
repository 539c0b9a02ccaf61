// The batch script of `exprun slurm submit` as text: the array, the options each task relies
// on, the sbatch options given after --, and quoting that survives spaces, quotes, # and %.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "slurm/batch_script.hpp"
#include "test_support.hpp"

namespace exprun::slurm {
namespace {

BatchScriptOptions sweep_of_three() {
  BatchScriptOptions o;
  o.experiment = "tiny";
  o.dir = "/scratch/results/tiny/20261201-120000";
  o.trial_count = 3;
  o.working_dir = "/home/me/exps";
  o.exprun = "/opt/exprun/bin/exprun";
  o.file = "/home/me/exps/tiny.toml";
  return o;
}

std::vector<std::string> sbatch_lines_of(const std::string& script) {
  std::vector<std::string> lines;
  for (const auto& line : test::split_lines(script))
    if (line.rfind("#SBATCH ", 0) == 0) lines.push_back(line.substr(8));
  return lines;
}

std::string last_line(const std::string& script) { return test::split_lines(script).back(); }

TEST(BatchScript, ASweepOfThreeTrials) {
  const std::string script = batch_script_text(sweep_of_three());
  EXPECT_EQ(script.rfind("#!/bin/bash\n", 0), 0u);
  const std::vector<std::string> expected = {
      "--job-name=exprun-tiny",
      "--array=0-2",
      "--ntasks=1",
      "--requeue",
      "--open-mode=append",
      "--output=/scratch/results/tiny/20261201-120000/slurm/trial-%a.log",
      "--error=/scratch/results/tiny/20261201-120000/slurm/trial-%a.log",
      "--signal=USR1@120",
  };
  EXPECT_EQ(sbatch_lines_of(script), expected);
  EXPECT_CONTAINS(script, "\ncd /home/me/exps || exit 1\n");
  EXPECT_EQ(last_line(script),
            "exec srun --kill-on-bad-exit=1 /opt/exprun/bin/exprun run /home/me/exps/tiny.toml "
            "--trial \"$SLURM_ARRAY_TASK_ID\" --sweep-dir /scratch/results/tiny/20261201-120000 "
            "--resume=auto");
}

TEST(BatchScript, SbatchReadsNoDirectiveAfterTheFirstCommand) {
  // sbatch stops reading #SBATCH lines at the first line that is not a comment.
  const std::string script = batch_script_text(sweep_of_three());
  bool command_seen = false;
  for (const auto& line : test::split_lines(script)) {
    if (line.empty()) continue;
    if (line[0] != '#') command_seen = true;
    EXPECT_FALSE(command_seen && line.rfind("#SBATCH", 0) == 0) << line;
  }
}

TEST(BatchScript, ParallelTimeRanksAndSignalLead) {
  BatchScriptOptions o = sweep_of_three();
  o.trial_count = 20;
  o.parallel = 4;
  o.time = "1-00:00:00";
  o.signal_lead_seconds = 300;
  o.ranks = 2;
  const auto lines = sbatch_lines_of(batch_script_text(o));
  EXPECT_EQ(lines[1], "--array=0-19%4");
  EXPECT_EQ(lines[2], "--ntasks=2");
  EXPECT_EQ(lines[3], "--time=1-00:00:00");
  EXPECT_EQ(lines.back(), "--signal=USR1@300");
}

TEST(BatchScript, ArraySpec) {
  EXPECT_EQ(array_spec(1, std::nullopt), "0-0");
  EXPECT_EQ(array_spec(3, std::nullopt), "0-2");
  EXPECT_EQ(array_spec(3, 1), "0-2%1");
  EXPECT_EQ(array_spec(100, 10), "0-99%10");
}

TEST(BatchScript, OneRunWithoutSweep) {
  BatchScriptOptions o = sweep_of_three();
  o.trial_count.reset();
  o.dir = "/scratch/run";
  const std::string script = batch_script_text(o);
  const auto lines = sbatch_lines_of(script);
  for (const auto& line : lines) EXPECT_EQ(line.find("--array"), std::string::npos) << line;
  EXPECT_EQ(lines[4], "--output=/scratch/run/slurm/run.log");
  EXPECT_EQ(last_line(script),
            "exec srun --kill-on-bad-exit=1 /opt/exprun/bin/exprun run /home/me/exps/tiny.toml "
            "--run-dir /scratch/run --resume=auto");
  EXPECT_EQ(script.find("SLURM_ARRAY_TASK_ID"), std::string::npos);
}

TEST(BatchScript, RunOptionsAreShellQuoted) {
  BatchScriptOptions o = sweep_of_three();
  o.run_options = {
      "--set",    "optimizer.lr=0.001", "--set",     "experiment.description=it's \"new\"",
      "--output", "my results",         "--plugins", "/p/$HOME"};
  EXPECT_EQ(last_line(batch_script_text(o)),
            "exec srun --kill-on-bad-exit=1 /opt/exprun/bin/exprun run /home/me/exps/tiny.toml "
            "--trial \"$SLURM_ARRAY_TASK_ID\" --sweep-dir /scratch/results/tiny/20261201-120000 "
            "--resume=auto --set optimizer.lr=0.001 --set 'experiment.description=it'\\''s "
            "\"new\"' --output 'my results' --plugins '/p/$HOME'");
}

TEST(BatchScript, PathsWithSpacesQuotesAndPercent) {
  BatchScriptOptions o = sweep_of_three();
  o.dir = "/scratch/my \"best\" sweep #1 100%";
  o.working_dir = "/home/o'neil/exps";
  o.exprun = "/opt/ex run/exprun";
  o.file = "/home/o'neil/exps/tiny sweep.toml";
  const std::string script = batch_script_text(o);
  const auto lines = sbatch_lines_of(script);
  // sbatch's own quoting: a bare # starts a comment, spaces split, and a literal % in a file
  // name is %%.
  EXPECT_EQ(lines[5], "\"--output=/scratch/my \\\"best\\\" sweep \\#1 100%%/slurm/trial-%a.log\"");
  EXPECT_EQ(lines[6], "\"--error=/scratch/my \\\"best\\\" sweep \\#1 100%%/slurm/trial-%a.log\"");
  EXPECT_CONTAINS(script, "\ncd '/home/o'\\''neil/exps' || exit 1\n");
  EXPECT_EQ(last_line(script),
            "exec srun --kill-on-bad-exit=1 '/opt/ex run/exprun' run "
            "'/home/o'\\''neil/exps/tiny sweep.toml' --trial \"$SLURM_ARRAY_TASK_ID\" "
            "--sweep-dir '/scratch/my \"best\" sweep #1 100%' --resume=auto");
}

TEST(BatchScript, SbatchQuote) {
  EXPECT_EQ(sbatch_quote("--partition=gpu"), "--partition=gpu");
  EXPECT_EQ(sbatch_quote("--comment=two words"), "\"--comment=two words\"");
  EXPECT_EQ(sbatch_quote("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(sbatch_quote("a\\b"), "\"a\\\\b\"");
  EXPECT_EQ(sbatch_quote("it's"), "\"it's\"");
  EXPECT_EQ(sbatch_quote("#x"), "\"\\#x\"");
  EXPECT_EQ(sbatch_quote(""), "\"\"");
}

TEST(BatchScript, ExtraSbatchOptionsBecomeMoreLines) {
  BatchScriptOptions o = sweep_of_three();
  o.sbatch_lines = sbatch_option_lines(
      {"--partition=gpu", "-A", "lab", "--gres", "gpu:1", "--comment=lr sweep", "--exclusive"});
  EXPECT_EQ(o.sbatch_lines, (std::vector<std::string>{"--partition=gpu", "-A lab", "--gres gpu:1",
                                                      "\"--comment=lr sweep\"", "--exclusive"}));
  const auto lines = sbatch_lines_of(batch_script_text(o));
  ASSERT_EQ(lines.size(), 13u);
  // After exprun's own: where both name an option, sbatch takes the last.
  EXPECT_EQ(lines[7], "--signal=USR1@120");
  EXPECT_EQ(lines[8], "--partition=gpu");
  EXPECT_EQ(lines[12], "--exclusive");
  EXPECT_TRUE(sbatch_option_lines({}).empty());
}

std::string option_error(const std::vector<std::string>& words) {
  try {
    sbatch_option_lines(words);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(BatchScript, OptionsTheScriptSetsAreRefused) {
  for (const std::string word :
       {"--array=0-3", "--arr=1", "-a", "-a0-3", "--output=x.log", "-o", "--error=e", "-e",
        "--open-mode=truncate", "--ntasks=2", "-n2", "--time=10", "-t", "--signal=B:USR1@60",
        "--requeue", "--no-requeue", "--parsable", "--wrap=ls"}) {
    SCOPED_TRACE(word);
    const std::string message = option_error({word});
    ASSERT_FALSE(message.empty()) << "accepted";
    EXPECT_CONTAINS(message, "sbatch option '" + word + "' after --: --");
    EXPECT_CONTAINS(message, " is set by exprun slurm submit; ");
  }
  EXPECT_CONTAINS(option_error({"--ntasks=2"}), "use --ranks N");
  EXPECT_CONTAINS(option_error({"--time", "10"}), "use --time T");
  EXPECT_CONTAINS(option_error({"--signal=USR2@60"}), "use --signal-lead SECONDS");
  EXPECT_CONTAINS(option_error({"-a", "0-3"}), "--parallel K limits how many run at once");
  // Options that merely start alike are not the same option.
  EXPECT_NO_THROW(sbatch_option_lines(
      {"--ntasks-per-node=1", "--time-min=10", "-N", "1", "--export=ALL", "--nodes=1"}));
}

TEST(BatchScript, AFirstWordThatIsNoOptionIsRefused) {
  EXPECT_CONTAINS(option_error({"gpu"}), "sbatch option 'gpu' after --: expected options");
  EXPECT_CONTAINS(option_error({"-p", "gpu", "--"}), "a second '--'");
}

// A line break inside an option ended its #SBATCH line, and the rest became a line of shell
// code: a script that bash cannot parse, written with exit 0.
TEST(BatchScript, AnOptionWithALineBreakIsRefused) {
  EXPECT_CONTAINS(option_error({"--comment=a\nb"}),
                  "after --: holds a line break or another control character");
  EXPECT_CONTAINS(option_error({"-p", "gpu\rx"}), "holds a line break");
  EXPECT_CONTAINS(option_error({"--comment", "a\tb"}), "another control character");
}

TEST(BatchScript, PathsSbatchCannotName) {
  EXPECT_NO_THROW(check_slurm_path("/scratch/a b/\"c\"/#d/100%"));
  try {
    check_slurm_path("/scratch/a\nb");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_CONTAINS(e.what(), "holds a line break");
  }
  try {
    check_slurm_path("/scratch/a\\b");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_CONTAINS(e.what(), "holds a backslash");
  }
}

}  // namespace
}  // namespace exprun::slurm

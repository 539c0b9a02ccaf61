// A SIGTERM sent from outside, as a user or a scheduler sends it, while data workers prepare
// batches: exprun's signal thread takes it (no worker's system call is interrupted), the run
// stops after a step with latest.pt written, and --resume finishes it. EXPRUN_FAULT's signals
// come from exprun itself at a chosen point; this one lands wherever the run happens to be.
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

// Starts exprun in the background, waits for its first optimiser step (the data workers are
// busy from then on), sends one SIGTERM and exits with the status `wait` reports.
constexpr const char* kSignalAfterFirstStep = R"(
exprun=$1; shift
"$exprun" "$@" >"$OUT" 2>"$ERR" &
pid=$!
until grep -q ' step ' "$ERR"; do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -TERM "$pid"
wait "$pid"
)";

TEST(StopSignal, SigtermWhileDataWorkersRunStopsAfterAStepAndResumes) {
  test::TempDir dir("exprun-stop-signal");
  test::TinyExperiment tiny;
  tiny.output = dir / "results";
  test::write_text(dir / "tiny.toml", tiny.toml());
  const std::vector<std::string> run_args = {"run", (dir / "tiny.toml").string(), "--set",
                                             "data.workers=2"};

  std::vector<std::string> argv = {"/bin/sh", "-c", kSignalAfterFirstStep, "sh", EXPRUN_EXE};
  argv.insert(argv.end(), run_args.begin(), run_args.end());
  test::ProcessOptions options;
  options.env["OUT"] = (dir / "stdout").string();
  options.env["ERR"] = (dir / "stderr").string();
  options.env["EXPRUN_PLUGIN_PATH"] = std::nullopt;
  options.env["EXPRUN_FAULT"] = std::nullopt;
  options.timeout_s = 300;
  const test::ProcessResult shell = test::run_process(argv, options);
  const std::string out = test::read_text(dir / "stdout");
  const std::string err = test::read_text(dir / "stderr");
  const std::string both =
      shell.describe() + "\n--- exprun stdout ---\n" + out + "\n--- exprun stderr ---\n" + err;
  // 143 from `wait` is also what a death by SIGTERM gives; the message tells them apart.
  ASSERT_EQ(shell.exit_code, 143) << both;
  ASSERT_CONTAINS(out, "run interrupted (SIGTERM)");
  EXPECT_NOT_CONTAINS(err, "Interrupted system call");

  std::vector<fs::path> runs;
  for (const auto& entry : fs::directory_iterator(tiny.output / "tiny")) runs.push_back(entry);
  ASSERT_EQ(runs.size(), 1u);
  const fs::path run = runs.front();
  EXPECT_EQ(json::parse(test::read_text(run / "report.json"))["status"], "interrupted");
  EXPECT_TRUE(fs::exists(run / "train/checkpoints/latest.pt")) << both;

  std::vector<std::string> resume = run_args;
  resume.push_back("--resume=" + run.string());
  test::ProcessOptions patient;
  patient.timeout_s = 300;
  const test::ProcessResult resumed = test::run_exprun(resume, patient);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
  EXPECT_EQ(json::parse(test::read_text(run / "report.json"))["status"], "completed");
}

}  // namespace
}  // namespace exprun

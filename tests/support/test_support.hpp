// Small helpers shared by the unit tests: a scratch directory that cleans up after itself and
// one-line file writing/reading.
#pragma once

#include <filesystem>
#include <string>

namespace exprun::test {

// A unique directory under the system temp directory (usually /tmp), removed with everything
// in it when the object goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "exprun-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / name
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Writes `text` to `path` (creating parent directories), replacing any existing file.
void write_text(const std::filesystem::path& path, const std::string& text);
// The whole file; throws std::runtime_error when it cannot be opened.
std::string read_text(const std::filesystem::path& path);

}  // namespace exprun::test

// ---------------------------------------------------------------- subprocesses
// Running the built exprun (or any program) as a child process, for CLI and end-to-end tests.

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace exprun::test {

struct ProcessOptions {
  // Environment changes for the child: a value sets the variable, std::nullopt unsets it.
  // Everything else is inherited.
  std::map<std::string, std::optional<std::string>> env;
  // Working directory of the child; empty: the test's own.
  std::filesystem::path cwd;
  // The child is killed (SIGKILL) after this many seconds; ProcessResult::timed_out says so.
  double timeout_s = 120;
};

struct ProcessResult {
  int exit_code = -1;   // the exit status, or -1 when the child did not exit normally
  int term_signal = 0;  // the signal that ended the child, 0 if it exited
  bool timed_out = false;
  double seconds = 0;  // wall time
  std::string out;     // everything written to stdout
  std::string err;     // everything written to stderr

  // "exit 2 after 0.1 s\n--- stdout ---\n...\n--- stderr ---\n..." for assertion messages.
  std::string describe() const;
};

// Runs argv[0] (a path, not looked up in PATH) with argv, capturing stdout and stderr in
// separate temporary files. Never throws for a failing child; throws std::runtime_error when
// the child cannot be started at all.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// The built exprun (EXPRUN_EXE) with `args`. EXPRUN_PLUGIN_PATH is unset unless options.env
// names it, so the plugins found are the ones built beside the executable.
ProcessResult run_exprun(std::vector<std::string> args, ProcessOptions options = {});

// The lines of `text` (without their '\n'); a final line without '\n' counts too.
std::vector<std::string> split_lines(const std::string& text);

}  // namespace exprun::test

// ---------------------------------------------------------------- substring assertions
// gmock is not linked, so HasSubstr is not available:
//   EXPECT_CONTAINS(message, "did you mean");   EXPECT_NOT_CONTAINS(err, "terminate called");

#include <gtest/gtest.h>

namespace exprun::test {

::testing::AssertionResult text_contains(const char* text_expr, const char* needle_expr,
                                         const std::string& text, const std::string& needle);
::testing::AssertionResult text_lacks(const char* text_expr, const char* needle_expr,
                                      const std::string& text, const std::string& needle);

}  // namespace exprun::test

#define EXPECT_CONTAINS(text, needle) \
  EXPECT_PRED_FORMAT2(::exprun::test::text_contains, text, needle)
#define ASSERT_CONTAINS(text, needle) \
  ASSERT_PRED_FORMAT2(::exprun::test::text_contains, text, needle)
#define EXPECT_NOT_CONTAINS(text, needle) \
  EXPECT_PRED_FORMAT2(::exprun::test::text_lacks, text, needle)

namespace exprun::test {

// What no error path may show on stdout or stderr: an uncaught exception, an abort, a crash or
// a LibTorch backtrace; nor may the process die by a signal or hang.
void expect_no_crash(const ProcessResult& r);

}  // namespace exprun::test

// ---------------------------------------------------------------- a tiny real experiment
// For CLI and end-to-end tests against the built plugins: synthetic_ceph with 16 training and
// 8 validation images of 64x80, an HRNet of width 4 with one module per stage, 2 epochs of 4
// optimiser steps on the CPU. Trains in seconds on two cores.

namespace exprun::test {

struct TinyExperiment {
  std::string name = "tiny";
  std::filesystem::path output;  // experiment.output; empty: the key is left out
  std::int64_t threads = 2;
  std::int64_t epochs = 2;
  std::string loss = "mse";
  std::int64_t effective_batch = 4;
  std::int64_t micro_batch = 2;
  bool micro_batch_auto = false;  // writes micro_batch = "auto" instead
  std::vector<std::string> strategies = {"gradient_accumulation"};
  // Lines added to [defaults.memory], e.g. `mixed_precision = { dtype = "bf16" }`.
  std::string memory_extra;
  // Lines added at the end of the [[stage]] table (named "train").
  std::string stage_extra;

  // The experiment file's text. The stage is the last table, so more stage keys can be
  // appended.
  std::string toml() const;
};

// A TOML basic string holding `text`, quotes included: "a \"b\"".
std::string toml_quote(const std::string& text);

// 1-based line of the first line of `text` that contains `needle`; 0 if none does.
std::size_t line_of(const std::string& text, const std::string& needle);

}  // namespace exprun::test

// ---------------------------------------------------------------- plugins

namespace exprun {
class Registry;  // plugins/registry.hpp; kept out so this header stays free of torch
}  // namespace exprun

namespace exprun::test {

// A registry of the plugins this build made (EXPRUN_PLUGIN_DIR), loaded once per process.
const Registry& built_plugins();

}  // namespace exprun::test

// ---------------------------------------------------------------- report schema
// Every report.json and sweep.json that exprun writes into a TempDir is checked against
// docs/report.schema.json when the TempDir goes away (python3-jsonschema, see scripts/setup.sh),
// so each test that runs exprun also tests the schema. "Written by exprun" means: the file's
// directory holds experiment.toml, as every run and sweep directory does; hand-made JSON
// elsewhere is left alone.

namespace exprun::test {

// The validator's messages for `files` ("<file>: $.stages[0].status: 'x' is not one of ...",
// one per line), or "" when every file matches the schema.
std::string report_schema_errors(const std::vector<std::filesystem::path>& files);
// Fails the current test with those messages.
void expect_report_matches_schema(const std::filesystem::path& file);
// The report.json and sweep.json files under `dir` that lie in a run or sweep directory.
std::vector<std::filesystem::path> written_reports(const std::filesystem::path& dir);

}  // namespace exprun::test

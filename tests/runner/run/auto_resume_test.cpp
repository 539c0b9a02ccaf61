// run_dir_state: what --resume=auto does with a run directory.
#include "run/auto_resume.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"
#include "util/json_file.hpp"

namespace exprun {
namespace {

TEST(RunDirState, NoFolderOrNoReportStartsARun) {
  test::TempDir dir("exprun-auto-resume");
  EXPECT_EQ(run_dir_state(dir / "missing"), RunDirState::kNoRun);
  EXPECT_EQ(run_dir_state(dir.path()), RunDirState::kNoRun) << "an empty folder";
}

TEST(RunDirState, TheReportsStatusDecides) {
  test::TempDir dir("exprun-auto-resume");
  for (const char* status : {"running", "interrupted", "failed"}) {
    test::write_text(dir / "report.json", std::string("{\"status\": \"") + status + "\"}");
    EXPECT_EQ(run_dir_state(dir.path()), RunDirState::kUnfinished) << status;
  }
  test::write_text(dir / "report.json", "{\"status\": \"completed\"}");
  EXPECT_EQ(run_dir_state(dir.path()), RunDirState::kCompleted);
}

TEST(RunDirState, ADamagedReportIsAnErrorNotAFreshStart) {
  test::TempDir dir("exprun-auto-resume");
  test::write_text(dir / "report.json", "{\"status\": ");
  EXPECT_THROW(run_dir_state(dir.path()), JsonInputError);
  test::write_text(dir / "report.json", "{\"status\": 3}");
  try {
    run_dir_state(dir.path());
    FAIL() << "a status that is not a string";
  } catch (const JsonInputError& e) {
    EXPECT_CONTAINS(e.what(), "report.json: expected \"status\" (string)");
  }
}

}  // namespace
}  // namespace exprun

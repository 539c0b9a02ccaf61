// main() of every test executable. CTest runs a whole gtest suite per process
// (cmake/gtest_suites.cmake), so a suite that had nothing it could run (the CUDA suites without a
// GPU) must say so by its exit status: 77, which CTest reports as "Skipped" rather than
// "Passed". A suite of which only some cases skipped passes; gtest's "[  SKIPPED ]" lines name
// them in its output.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const int failed = RUN_ALL_TESTS();
  const testing::UnitTest& run = *testing::UnitTest::GetInstance();
  constexpr int kAllSkipped = 77;
  if (failed == 0 && run.test_to_run_count() > 0 &&
      run.skipped_test_count() == run.test_to_run_count())
    return kAllSkipped;
  return failed;
}

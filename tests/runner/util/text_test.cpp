// Text helpers for error messages and progress lines, atomic file replacement, and the removal
// of what processes a signal ended left behind.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "util/atomic_file.hpp"
#include "util/dead_process_leftovers.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {
namespace fs = std::filesystem;

TEST(EditDistance, Levenshtein) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("sigma", "sigma"), 0u);
  EXPECT_EQ(edit_distance("sigma", "sigmma"), 1u);   // insertion
  EXPECT_EQ(edit_distance("epochs", "epcohs"), 2u);  // a swap is two edits
  EXPECT_EQ(edit_distance("flaw", "lawn"), 2u);
}

TEST(EditDistance, IsSymmetricAndCaseInsensitive) {
  EXPECT_EQ(edit_distance("adaptive_wing", "adaptivewing"),
            edit_distance("adaptivewing", "adaptive_wing"));
  EXPECT_EQ(edit_distance("Sigma", "sigma"), 0u);
  EXPECT_EQ(edit_distance("HRNET", "hrnet"), 0u);
}

TEST(ClosestMatches, WithinAThirdOfTheWordOrAtLeastTwo) {
  const std::vector<std::string> keys = {"sigma", "workers", "image_size", "plugin", "channels"};
  EXPECT_EQ(closest_matches("sigmma", keys), (std::vector<std::string>{"sigma"}));
  EXPECT_EQ(closest_matches("wrkers", keys), (std::vector<std::string>{"workers"}));
  EXPECT_EQ(closest_matches("imagesize", keys), (std::vector<std::string>{"image_size"}));
  EXPECT_TRUE(closest_matches("zzz", keys).empty());
  // Short words: up to 2 edits.
  EXPECT_EQ(closest_matches("lr", {"lr", "xy", "abcd"}), (std::vector<std::string>{"lr", "xy"}));
  // A prefix matches however long the rest is.
  EXPECT_EQ(closest_matches("ab", {"abcde"}), (std::vector<std::string>{"abcde"}));
}

TEST(ClosestMatches, PrefixCounts) {
  const std::vector<std::string> plugins = {"adaptive_wing", "mse", "hrnet"};
  EXPECT_EQ(closest_matches("adaptive", plugins), (std::vector<std::string>{"adaptive_wing"}));
}

TEST(ClosestMatches, ClosestFirstStableAndLimited) {
  const std::vector<std::string> c = {"abcx", "abyy", "abcd", "abzz", "abww"};
  // "abcd" (0) first, then "abcx" (1), then the distance-2 ones in their given order.
  EXPECT_EQ(closest_matches("abcd", c), (std::vector<std::string>{"abcd", "abcx", "abyy"}));
  EXPECT_EQ(closest_matches("abcd", c, 5),
            (std::vector<std::string>{"abcd", "abcx", "abyy", "abzz", "abww"}));
  EXPECT_EQ(closest_matches("abcd", c, 1), (std::vector<std::string>{"abcd"}));
}

TEST(ClosestMatches, DuplicatesListedOnce) {
  EXPECT_EQ(closest_matches("sigm", {"sigma", "sigma"}), (std::vector<std::string>{"sigma"}));
}

TEST(DidYouMean, Phrasing) {
  EXPECT_EQ(did_you_mean("sigmma", {"sigma", "workers"}), "; did you mean 'sigma'?");
  EXPECT_EQ(did_you_mean("ab", {"ax", "ay"}), "; did you mean 'ax' or 'ay'?");
  EXPECT_EQ(did_you_mean("ab", {"ax", "ay", "az"}), "; did you mean 'ax', 'ay' or 'az'?");
  EXPECT_EQ(did_you_mean("zzzzzz", {"sigma"}), "");
  EXPECT_EQ(did_you_mean("x", {}), "");
}

TEST(Join, Separators) {
  EXPECT_EQ(join({}, ", "), "");
  EXPECT_EQ(join({"a"}, ", "), "a");
  EXPECT_EQ(join({"a", "b", "c"}, ", "), "a, b, c");
}

TEST(FormatDuration, Units) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(12.4), "12s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(59.6), "1m00s");  // rounded before choosing the unit
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3599.4), "59m59s");
  EXPECT_EQ(format_duration(3600), "1h00m");
  EXPECT_EQ(format_duration(3725), "1h02m");
  EXPECT_EQ(format_duration(36.0 * 3600 + 59 * 60 + 59), "36h59m");
}

TEST(FormatDuration, UnknownIsDashes) {
  EXPECT_EQ(format_duration(-1), "--");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::quiet_NaN()), "--");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::infinity()), "--");
}

// ---------------------------------------------------------------- atomic files

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir))
    out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(AtomicFile, WritesThenReadsBackAndLeavesNoTemporary) {
  test::TempDir dir;
  const fs::path target = dir / "nested" / "deeper" / "report.json";
  write_file_atomically(target, "{\"a\": 1}\n");
  EXPECT_EQ(test::read_text(target), "{\"a\": 1}\n");
  EXPECT_EQ(names_in(target.parent_path()), (std::vector<std::string>{"report.json"}));
}

TEST(AtomicFile, ReplacesExistingContent) {
  test::TempDir dir;
  const fs::path target = dir / "f.txt";
  test::write_text(target, "old content that is longer");
  write_file_atomically(target, "new");
  EXPECT_EQ(test::read_text(target), "new");
  write_file_atomically(target, "");
  EXPECT_EQ(test::read_text(target), "");
  EXPECT_EQ(fs::file_size(target), 0u);
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"f.txt"}));
}

TEST(AtomicFile, BinaryContentSurvives) {
  test::TempDir dir;
  const std::string bytes("a\0b\r\n\xff", 6);
  write_file_atomically(dir / "bin", bytes);
  EXPECT_EQ(test::read_text(dir / "bin"), bytes);
}

TEST(AtomicFile, FailedWriteKeepsTheOldFileAndRemovesTheTemporary) {
  test::TempDir dir;
  const fs::path target = dir / "checkpoint.pt";
  test::write_text(target, "old");
  fs::path seen;
  EXPECT_THROW(replace_atomically(target,
                                  [&](const fs::path& temp) {
                                    seen = temp;
                                    test::write_text(temp, "half");
                                    throw std::runtime_error("disk full");
                                  }),
               std::runtime_error);
  EXPECT_EQ(seen.parent_path(), target.parent_path());  // beside the target: same file system
  EXPECT_NE(seen, target);
  EXPECT_EQ(test::read_text(target), "old");
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"checkpoint.pt"}));
}

TEST(AtomicFile, WriterThatWritesNothingIsAnError) {
  test::TempDir dir;
  const fs::path target = dir / "x.json";
  EXPECT_THROW(replace_atomically(target, [](const fs::path&) {}), std::runtime_error);
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(names_in(dir.path()).empty());
}

TEST(AtomicFile, ReplaceAtomicallyHandsTheWriterAPathItMayFill) {
  test::TempDir dir;
  const fs::path target = dir / "model.bin";
  replace_atomically(target, [](const fs::path& temp) { test::write_text(temp, "weights"); });
  EXPECT_EQ(test::read_text(target), "weights");
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"model.bin"}));
}

TEST(AtomicFile, NewFileNeverReplacesOne) {
  test::TempDir dir;
  const fs::path target = dir / "sub" / "bench.json";
  EXPECT_TRUE(write_new_file_atomically(target, "first"));  // its folder created too
  EXPECT_FALSE(write_new_file_atomically(target, "second"));
  EXPECT_EQ(test::read_text(target), "first");
  EXPECT_EQ(names_in(dir / "sub"), (std::vector<std::string>{"bench.json"}));
}

// A child that has exited and been waited for: its pid names no process any more.
pid_t pid_of_an_ended_process() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TEST(DeadProcessLeftovers, RemovesOnlyThoseOfProcessesThatEnded) {
  test::TempDir dir;
  const std::string prefix = ".tree.partial-";
  const pid_t ended = pid_of_an_ended_process();
  ASSERT_GT(ended, 0);
  fs::create_directories(dir / (prefix + std::to_string(ended)) / "train");
  test::write_text(dir / (prefix + std::to_string(ended)) / "train" / "a.png", "x");
  fs::create_directories(dir / (prefix + std::to_string(::getpid())));  // a running process's
  fs::create_directories(dir / (prefix + "12ab"));                      // not a pid
  fs::create_directories(dir / "tree");                                 // the user's own
  const auto removed = remove_dead_process_leftovers(dir.path(), prefix);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].filename(), prefix + std::to_string(ended));
  std::vector<std::string> kept = {prefix + "12ab", prefix + std::to_string(::getpid()), "tree"};
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(names_in(dir.path()), kept);
  // A folder that cannot be listed removes nothing and does not throw.
  EXPECT_TRUE(remove_dead_process_leftovers(dir / "missing", prefix).empty());
}

TEST(TempDirTest, RemovesItselfAndIsUnique) {
  fs::path kept;
  {
    test::TempDir a, b;
    EXPECT_NE(a.path(), b.path());
    EXPECT_TRUE(fs::is_directory(a.path()));
    test::write_text(a / "sub" / "f.txt", "x");
    kept = a.path();
  }
  EXPECT_FALSE(fs::exists(kept));
}

}  // namespace
}  // namespace exprun

namespace exprun {
namespace {

TEST(AlignColumns, PadsToTheWidestCellTwoSpacesApart) {
  const std::vector<std::vector<std::string>> rows = {
      {"#", "name", "mre"}, {"1", "baseline", "2.5"}, {"10", "x", "12.25"}};
  EXPECT_EQ(align_columns(rows, [](std::size_t) { return false; }),
            "#   name      mre\n"
            "1   baseline  2.5\n"
            "10  x         12.25\n");
  EXPECT_EQ(align_columns(rows, [](std::size_t c) { return c != 1; }),
            " #  name        mre\n"
            " 1  baseline    2.5\n"
            "10  x         12.25\n");
  EXPECT_EQ(align_columns({}, [](std::size_t) { return false; }), "");
}

TEST(PrintfText, FormatsLikePrintfAtAnyLength) {
  EXPECT_EQ(printf_text("%-6s %8.2f %lld", "round", 3.14159, 42LL), "round      3.14 42");
  EXPECT_EQ(printf_text("%s", ""), "");
  // Longer than any fixed line buffer a table would use.
  const std::string long_cell(2000, 'x');
  EXPECT_EQ(printf_text("[%s]", long_cell.c_str()), "[" + long_cell + "]");
}

}  // namespace
}  // namespace exprun

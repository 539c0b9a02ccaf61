// sbatch --time read as Slurm reads it, and the rule that a limit must leave room for the
// early-warning signal (docs/distributed.md, "A sweep on Slurm").
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "slurm/batch_script.hpp"
#include "slurm/slurm_time.hpp"
#include "test_support.hpp"

namespace exprun::slurm {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_slurm_time(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(SlurmTime, EveryFormSbatchAccepts) {
  EXPECT_EQ(parse_slurm_time("30"), 30 * 60);                        // MM
  EXPECT_EQ(parse_slurm_time("30:15"), 30 * 60 + 15);                // MM:SS
  EXPECT_EQ(parse_slurm_time("2:30:15"), 2 * 3600 + 30 * 60 + 15);   // HH:MM:SS
  EXPECT_EQ(parse_slurm_time("1-12"), 86400 + 12 * 3600);            // D-HH
  EXPECT_EQ(parse_slurm_time("1-12:30"), 86400 + 12 * 3600 + 1800);  // D-HH:MM
  EXPECT_EQ(parse_slurm_time("2-00:00:30"), 2 * 86400 + 30);         // D-HH:MM:SS
}

TEST(SlurmTime, FieldsHaveNoUpperBoundOfTheirOwn) {
  // As in Slurm: the fields are added up, not range-checked.
  EXPECT_EQ(parse_slurm_time("90"), 90 * 60);
  EXPECT_EQ(parse_slurm_time("1:90"), 60 + 90);
  EXPECT_EQ(parse_slurm_time("0-48"), 48 * 3600);
  EXPECT_EQ(parse_slurm_time("007"), 7 * 60) << "leading zeros";
}

TEST(SlurmTime, NoLimit) {
  EXPECT_EQ(parse_slurm_time("UNLIMITED"), std::nullopt);
  EXPECT_EQ(parse_slurm_time("unlimited"), std::nullopt);
  EXPECT_EQ(parse_slurm_time("INFINITE"), std::nullopt);
  EXPECT_EQ(parse_slurm_time("0"), std::nullopt) << "sbatch: zero means no limit";
  EXPECT_EQ(parse_slurm_time("0:00:00"), std::nullopt);
}

TEST(SlurmTime, BadSyntaxNamesTheValueAndTheForms) {
  for (const std::string bad : {"", "1h", "-5", "5-", "1:2:3:4", "1-2-3", "1-2:3:4:5", ":30",
                                "30:", "1::2", " 30", "30 ", "+30", "1.5", "1234567890"}) {
    SCOPED_TRACE("'" + bad + "'");
    const std::string message = error_of(bad);
    ASSERT_FALSE(message.empty()) << "accepted";
    EXPECT_CONTAINS(message, "--time ");
    EXPECT_CONTAINS(message, "expected MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS");
  }
  EXPECT_CONTAINS(error_of("1h"), "--time 1h: '1h' is not a whole number of digits");
  EXPECT_CONTAINS(error_of("1-2-3"), "more than one '-'");
  EXPECT_CONTAINS(error_of("1:2:3:4"), "more than two ':'");
  EXPECT_CONTAINS(error_of(""), "--time '': empty");
}

TEST(SlurmTime, SlurmCountsWholeMinutes) {
  EXPECT_EQ(slurm_limit_seconds(30), 60);
  EXPECT_EQ(slurm_limit_seconds(60), 60);
  EXPECT_EQ(slurm_limit_seconds(61), 120);
}

TEST(SlurmTime, FormatsTheShortestSpelling) {
  EXPECT_EQ(format_slurm_time(240), "4");
  EXPECT_EQ(format_slurm_time(241), "5") << "rounded up, as Slurm rounds";
  EXPECT_EQ(format_slurm_time(5400), "1:30:00");
  EXPECT_EQ(format_slurm_time(90000), "1-01:00:00");
  for (const std::int64_t s : {240, 5400, 90000, 3 * 86400 + 7 * 3600 + 5 * 60})
    EXPECT_EQ(parse_slurm_time(format_slurm_time(s)), s);
}

TEST(TimeLimit, MustLeaveRoomForTheSignalAndTheStart) {
  EXPECT_EQ(shortest_time_limit_seconds(120), 120 + 60 + 60);
  EXPECT_NO_THROW(check_time_limit("4", 120));
  EXPECT_NO_THROW(check_time_limit("3:01", 120)) << "Slurm makes it 4 minutes";
  EXPECT_NO_THROW(check_time_limit("1-00", 120));
  EXPECT_NO_THROW(check_time_limit("UNLIMITED", 120)) << "no limit, no signal";
  EXPECT_NO_THROW(check_time_limit("3", 30)) << "a shorter lead allows a shorter limit";
  try {
    check_time_limit("3", 120);
    FAIL() << "a 3 minute limit passed with a 120 s lead";
  } catch (const std::invalid_argument& e) {
    EXPECT_CONTAINS(e.what(), "--time 3: a limit of 3 min is too short");
    EXPECT_CONTAINS(e.what(), "120 s before the limit (--signal-lead)");
    EXPECT_CONTAINS(e.what(), "give at least --time 4 (or a shorter --signal-lead)");
  }
  try {
    check_time_limit("10", 900);
    FAIL() << "a 10 minute limit passed with a 900 s lead";
  } catch (const std::invalid_argument& e) {
    EXPECT_CONTAINS(e.what(), "give at least --time 17");
  }
  EXPECT_THROW(check_time_limit("soon", 120), std::invalid_argument);
}

}  // namespace
}  // namespace exprun::slurm

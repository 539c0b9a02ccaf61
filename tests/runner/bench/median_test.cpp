// bench/median: the figure every benchmark reports from its rounds.
#include "bench/median.hpp"

#include <gtest/gtest.h>

namespace exprun {
namespace {

TEST(Median, OfAnOddCountIsTheMiddleValueInAnyOrder) {
  EXPECT_EQ(median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(median({5.0}), 5.0);
}

TEST(Median, OfAnEvenCountIsTheMeanOfTheMiddleTwo) { EXPECT_EQ(median({4.0, 1.0, 3.0, 2.0}), 2.5); }

TEST(Median, OneSlowRoundDoesNotMoveIt) { EXPECT_EQ(median({40.0, 41.0, 3.0}), 40.0); }

TEST(Median, OfNoRoundsIsZero) { EXPECT_EQ(median({}), 0.0); }

}  // namespace
}  // namespace exprun

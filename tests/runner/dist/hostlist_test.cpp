// Slurm hostlist expansion: every syntax SLURM_STEP_NODELIST uses, and the errors of a
// malformed list.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "dist/hostlist.hpp"
#include "test_support.hpp"

namespace exprun::dist {
namespace {

using Hosts = std::vector<std::string>;

TEST(Hostlist, SingleHost) { EXPECT_EQ(expand_hostlist("cn01"), Hosts{"cn01"}); }

TEST(Hostlist, CommaSeparatedNames) {
  EXPECT_EQ(expand_hostlist("alpha,beta,gamma"), (Hosts{"alpha", "beta", "gamma"}));
}

TEST(Hostlist, RangesAndSinglesInOneGroup) {
  EXPECT_EQ(expand_hostlist("cn[01-04,07]"), (Hosts{"cn01", "cn02", "cn03", "cn04", "cn07"}));
}

TEST(Hostlist, PlainAndBracketedItems) {
  EXPECT_EQ(expand_hostlist("a1,b[2-3]"), (Hosts{"a1", "b2", "b3"}));
  EXPECT_EQ(expand_hostlist("a[1,3],b,c[5-6]x"), (Hosts{"a1", "a3", "b", "c5x", "c6x"}));
}

TEST(Hostlist, TextAfterTheGroup) {
  EXPECT_EQ(expand_hostlist("node[1-2]-ib"), (Hosts{"node1-ib", "node2-ib"}));
}

TEST(Hostlist, HyphensInNamesAreText) {
  EXPECT_EQ(expand_hostlist("gpu-node[1-2]"), (Hosts{"gpu-node1", "gpu-node2"}));
  EXPECT_EQ(expand_hostlist("login-1,login-2"), (Hosts{"login-1", "login-2"}));
}

TEST(Hostlist, SeveralGroupsLeftmostVariesSlowest) {
  EXPECT_EQ(expand_hostlist("r[1-2]n[01-02]"), (Hosts{"r1n01", "r1n02", "r2n01", "r2n02"}));
  EXPECT_EQ(expand_hostlist("x[1-2]y[3],z"), (Hosts{"x1y3", "x2y3", "z"}));
}

TEST(Hostlist, ZeroPaddingOfTheLowerBoundIsKept) {
  EXPECT_EQ(expand_hostlist("cn[08-10]"), (Hosts{"cn08", "cn09", "cn10"}));
  EXPECT_EQ(expand_hostlist("cn[098-101]"), (Hosts{"cn098", "cn099", "cn100", "cn101"}));
  EXPECT_EQ(expand_hostlist("cn[8-10]"), (Hosts{"cn8", "cn9", "cn10"}));
  EXPECT_EQ(expand_hostlist("cn[007]"), Hosts{"cn007"});
}

TEST(Hostlist, AGroupAlone) { EXPECT_EQ(expand_hostlist("[1-2]"), (Hosts{"1", "2"})); }

TEST(Hostlist, RangeOfOne) { EXPECT_EQ(expand_hostlist("cn[3-3]"), Hosts{"cn3"}); }

// The message names the whole list and what was expected there.
std::string error_of(const std::string& hostlist) {
  try {
    const Hosts hosts = expand_hostlist(hostlist);
    ADD_FAILURE() << "\"" << hostlist << "\" expanded to " << hosts.size() << " host(s)";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_CONTAINS(message, "hostlist \"" + hostlist + "\": ");
    EXPECT_CONTAINS(message, "expected");
    return message;
  }
  return "";
}

TEST(HostlistErrors, Empty) { EXPECT_CONTAINS(error_of(""), "expected at least one host name"); }

TEST(HostlistErrors, UnclosedBracket) {
  EXPECT_CONTAINS(error_of("cn[01-04"), "the '[' at position 2 is never closed: expected ']'");
}

TEST(HostlistErrors, CloseWithoutOpen) {
  EXPECT_CONTAINS(error_of("cn01]"), "']' at position 4 closes no group");
  EXPECT_CONTAINS(error_of("cn[1]]"), "']' at position 5 closes no group");
}

TEST(HostlistErrors, NestedBrackets) {
  EXPECT_CONTAINS(error_of("cn[1[2]]"), "groups do not nest");
}

TEST(HostlistErrors, DescendingRange) {
  EXPECT_CONTAINS(error_of("cn[5-3]"),
                  "range 5-3 in \"[5-3]\" descends: expected FIRST-LAST with FIRST <= LAST");
  EXPECT_CONTAINS(error_of("cn[1,10-09]"), "range 10-09");
}

TEST(HostlistErrors, EmptyOrMalformedRanges) {
  for (const std::string list : {"cn[]", "cn[1,]", "cn[,1]", "cn[-3]", "cn[3-]", "cn[a-b]",
                                 "cn[1-2-3]", "cn[1:2]", "cn[1234567890123456789]"}) {
    SCOPED_TRACE(list);
    EXPECT_CONTAINS(error_of(list), "expected a number or FIRST-LAST of numbers");
  }
}

TEST(HostlistErrors, EmptyItems) {
  EXPECT_CONTAINS(error_of("a,,b"),
                  "empty host name at position 2: expected a name between commas");
  EXPECT_CONTAINS(error_of(",a"), "empty host name at position 0");
  EXPECT_CONTAINS(error_of("a,"), "empty host name at position 2");
}

TEST(HostlistErrors, Whitespace) {
  EXPECT_CONTAINS(error_of("a, b"), "unexpected whitespace or control character at position 2");
}

TEST(HostlistErrors, ControlCharactersAreEscapedInTheMessage) {
  try {
    expand_hostlist("a\nb");
    ADD_FAILURE() << "a newline was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()),
              "hostlist \"a\\x0ab\": unexpected whitespace or control character at position 1: "
              "expected host names separated by commas only");
  }
}

TEST(HostlistErrors, TooManyHosts) {
  EXPECT_CONTAINS(error_of("cn[0-99999999]"), "expands to more than 1000000 hosts");
  EXPECT_CONTAINS(error_of("a[0-999]b[0-999]c[0-9]"), "expands to more than 1000000 hosts");
}

}  // namespace
}  // namespace exprun::dist

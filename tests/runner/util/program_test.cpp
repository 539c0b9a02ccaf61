// util/program: other programs started without a shell, their output and status captured, and
// SIGTERM ignored in the child when the caller asks (the requeue's scontrol).
#include "util/program.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <csignal>

#include "util/signal_thread.hpp"

namespace exprun {
namespace {

// A child that sends itself SIGTERM and then says it is still there.
const std::vector<std::string> kTermItself = {"-c", "kill -TERM $$; echo survived"};

std::filesystem::path shell() {
  const auto sh = find_on_path("sh");
  if (!sh) throw std::runtime_error("no sh on the PATH");
  return *sh;
}

TEST(RunProgram, CapturesBothStreamsAndTheExitStatus) {
  const ProgramResult r = run_program(shell(), {"-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(RunProgram, ByDefaultSigtermEndsTheChildThoughExprunBlocksIt) {
  // As in exprun: the signal thread blocks SIGTERM in this process, and the child must not
  // inherit that, or Slurm's and the user's signals would never reach sbatch.
  ASSERT_TRUE(start_signal_thread());
  const ProgramResult r = run_program(shell(), kTermItself);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_EQ(r.out, "");
}

TEST(RunProgram, AChildAskedToIgnoreSigtermOutlivesIt) {
  ASSERT_TRUE(start_signal_thread());
  const ProgramResult r = run_program(shell(), kTermItself, ChildTerm::kIgnored);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_EQ(r.out, "survived\n");
}

TEST(RunProgram, IgnoringSigtermInTheChildLeavesThisProcesssDispositionAsItWas) {
  struct sigaction before {
  }, after{};
  ::sigaction(SIGTERM, nullptr, &before);
  ASSERT_NE(before.sa_handler, SIG_IGN);
  run_program(shell(), {"-c", "true"}, ChildTerm::kIgnored);
  ::sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
  // And the next child takes SIGTERM at its default again.
  EXPECT_EQ(run_program(shell(), kTermItself).term_signal, SIGTERM);
}

TEST(RunProgram, AProgramThatCannotBeStartedIsAnErrorNamingIt) {
  try {
    run_program("/nonexistent/exprun-no-such-program", {});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/exprun-no-such-program"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace exprun

// Stop signals taken by util/signal_thread, with run/interrupt's guard marking the run, as
// exprun's main() sets them up. What ends the process runs in death tests: each re-executes
// this binary ("threadsafe" style), since a forked copy would lack the signal thread.
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "run/interrupt.hpp"
#include "util/signal_thread.hpp"

namespace exprun {
namespace {

bool blocked_in_this_thread(int signal) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal) == 1;
}

// The request the signal thread records, after waiting up to 10 s for one.
int requested_stop() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (interrupt_signal() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return interrupt_signal();
}

// Ends a death test's statement that should have died already, so that it fails, not hangs.
[[noreturn]] void outlive_a_fatal_signal() {
  std::this_thread::sleep_for(std::chrono::seconds(10));
  std::exit(0);
}

TEST(SignalThread, StartsOnceAndEveryLaterThreadHasTheStopSignalsBlocked) {
  ASSERT_TRUE(start_signal_thread());
  EXPECT_TRUE(start_signal_thread());
  EXPECT_TRUE(signal_thread_running());
  for (const int signal : {SIGINT, SIGTERM, SIGUSR1}) EXPECT_TRUE(blocked_in_this_thread(signal));
  bool worker_blocks_all = false;
  std::thread([&] {
    worker_blocks_all = blocked_in_this_thread(SIGINT) && blocked_in_this_thread(SIGTERM) &&
                        blocked_in_this_thread(SIGUSR1);
  }).join();
  EXPECT_TRUE(worker_blocks_all);
}

TEST(SignalThread, DuringARunTheFirstSignalAsksToStopWithoutInterruptingAWorkersSystemCall) {
  ASSERT_TRUE(start_signal_thread());
  int pipe_ends[2];
  ASSERT_EQ(::pipe(pipe_ends), 0);
  int polled = -2;
  std::thread worker([&] {
    pollfd readable{pipe_ends[0], POLLIN, 0};
    polled = ::poll(&readable, 1, 10000);  // a handler run here would end it with EINTR
  });
  {
    const InterruptGuard run;
    EXPECT_EQ(interrupt_signal(), 0);
    ::kill(::getpid(), SIGTERM);
    EXPECT_EQ(requested_stop(), SIGTERM);
    ASSERT_EQ(::write(pipe_ends[1], "x", 1), 1);
    worker.join();
  }
  EXPECT_EQ(polled, 1);
  ::close(pipe_ends[0]);
  ::close(pipe_ends[1]);
}

TEST(SignalThread, AGuardClearsAnEarlierRequest) {
  ASSERT_TRUE(start_signal_thread());
  request_interrupt(SIGINT);
  const InterruptGuard run;
  EXPECT_EQ(interrupt_signal(), 0);
}

TEST(SignalThread, Sigusr1DuringARunStopsItUnderItsOwnName) {
  ASSERT_TRUE(start_signal_thread());
  const InterruptGuard run;
  ::kill(::getpid(), SIGUSR1);
  // Stopped as SIGTERM stops a run; the name tells the command to requeue a Slurm job after.
  EXPECT_EQ(requested_stop(), SIGUSR1);
  EXPECT_STREQ(stop_signal_name(SIGUSR1), "SIGUSR1");
}

TEST(SignalThread, RaiseInProcessReturnsOnceTheRequestIsRecorded) {
  ASSERT_TRUE(start_signal_thread());
  const InterruptGuard run;
  raise_in_process(SIGINT);
  EXPECT_EQ(interrupt_signal(), SIGINT);
}

TEST(SignalThreadDeathTest, ASecondSignalDuringARunEndsTheProcessByThatSignal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        start_signal_thread();
        const InterruptGuard run;
        ::kill(::getpid(), SIGTERM);
        if (requested_stop() != SIGTERM) std::exit(1);
        ::kill(::getpid(), SIGINT);
        outlive_a_fatal_signal();
      },
      testing::KilledBySignal(SIGINT), "");
}

TEST(SignalThreadDeathTest, OutsideARunASignalEndsTheProcessAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        start_signal_thread();
        ::kill(::getpid(), SIGTERM);
        outlive_a_fatal_signal();
      },
      testing::KilledBySignal(SIGTERM), "");
  EXPECT_EXIT(
      {
        start_signal_thread();
        ::kill(::getpid(), SIGUSR1);
        outlive_a_fatal_signal();
      },
      testing::KilledBySignal(SIGUSR1), "");
}

TEST(SignalThreadDeathTest, AfterTheRunASignalEndsTheProcessAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        start_signal_thread();
        { const InterruptGuard run; }
        ::kill(::getpid(), SIGINT);
        outlive_a_fatal_signal();
      },
      testing::KilledBySignal(SIGINT), "");
}

// `exprun run ... &` in a script starts with SIGINT ignored; outside a run it stays ignored.
TEST(SignalThreadDeathTest, ASignalIgnoredAtStartStaysIgnoredOutsideARun) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        std::signal(SIGINT, SIG_IGN);
        start_signal_thread();
        raise_in_process(SIGINT);
        std::exit(3);
      },
      testing::ExitedWithCode(3), "");
}

}  // namespace
}  // namespace exprun

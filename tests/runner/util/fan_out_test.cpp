// fan_out: every index once, on several threads, errors after all have finished.
#include "util/fan_out.hpp"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace exprun {
namespace {

TEST(FanOut, RunsEveryIndexExactlyOnce) {
  for (std::size_t threads : {0u, 1u, 2u, 3u, 16u}) {
    for (std::size_t count : {0u, 1u, 2u, 7u, 100u}) {
      std::vector<std::atomic<int>> calls(count);
      fan_out(count, threads, [&](std::size_t i) { ++calls[i]; });
      for (std::size_t i = 0; i < count; ++i)
        EXPECT_EQ(calls[i].load(), 1) << i << " of " << count << ", " << threads << " threads";
    }
  }
}

TEST(FanOut, OneThreadIsTheCallingThread) {
  std::set<std::thread::id> seen;
  fan_out(10, 1, [&](std::size_t) { seen.insert(std::this_thread::get_id()); });
  EXPECT_EQ(seen, std::set<std::thread::id>{std::this_thread::get_id()});
}

TEST(FanOut, UsesMoreThanOneThreadWhenAskedAndEveryoneWaits) {
  // Each index waits until two threads are inside the loop at once, so this returns only if a
  // helper runs beside the calling thread.
  std::mutex mutex;
  std::set<std::thread::id> seen;
  std::atomic<int> inside{0};
  std::atomic<bool> met{false};
  fan_out(2, 2, [&](std::size_t) {
    {
      std::lock_guard lock(mutex);
      seen.insert(std::this_thread::get_id());
    }
    if (++inside == 2) met = true;
    while (!met) std::this_thread::yield();
  });
  EXPECT_EQ(seen.size(), 2u);
}

TEST(FanOut, FinishesOnTheCallingThreadWhenThePoolIsBusy) {
  // Every thread of LibTorch's inter-op pool is held until fan_out has returned, so its
  // helpers cannot start before then: it must not wait for them.
  const int pool_threads = at::get_num_interop_threads();
  std::atomic<int> holding{0};
  std::atomic<bool> release{false};
  for (int t = 0; t < pool_threads; ++t)
    at::launch([&] {
      ++holding;
      while (!release) std::this_thread::yield();
      --holding;
    });
  while (holding < pool_threads) std::this_thread::yield();
  std::vector<std::thread::id> ran_on(6);
  fan_out(6, 4, [&](std::size_t i) { ran_on[i] = std::this_thread::get_id(); });
  for (const auto& id : ran_on) EXPECT_EQ(id, std::this_thread::get_id());
  release = true;
  while (holding > 0) std::this_thread::yield();
}

TEST(FanOut, RethrowsTheLowestFailingIndexAfterEveryIndexRan) {
  std::atomic<int> ran{0};
  try {
    fan_out(20, 3, [&](std::size_t i) {
      ++ran;
      if (i == 13 || i == 4 || i == 17) throw std::runtime_error("index " + std::to_string(i));
    });
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "index 4");
  }
  EXPECT_EQ(ran.load(), 20);
}

}  // namespace
}  // namespace exprun

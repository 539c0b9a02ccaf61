// data.workers = "auto": the count for a CPU step, a GPU step and several ranks per machine.
#include "data/worker_count.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace exprun {
namespace {

WorkerCountInputs cpu(std::int64_t cores, std::int64_t threads, std::int64_t ranks = 1) {
  return {false, cores, threads, ranks};
}

WorkerCountInputs gpu(std::int64_t cores, std::int64_t ranks = 1) {
  return {true, cores, /*compute_threads=*/cores, ranks};
}

TEST(AutoWorkerCount, OnACpuOnlyTheCoresTheStepLeavesFree) {
  EXPECT_EQ(auto_worker_count(cpu(2, 2)), 0);  // this project's 2-core machine, threads = 0
  EXPECT_EQ(auto_worker_count(cpu(2, 1)), 1);
  EXPECT_EQ(auto_worker_count(cpu(16, 4)), 8);  // 12 free, at most kMaxAutoWorkers
  EXPECT_EQ(auto_worker_count(cpu(8, 6)), 2);
  EXPECT_EQ(auto_worker_count(cpu(4, 16)), 0);  // more threads than cores: none free
}

TEST(AutoWorkerCount, OnAGpuEveryCoreButTheOneFeedingIt) {
  EXPECT_EQ(auto_worker_count(gpu(1)), 1);
  EXPECT_EQ(auto_worker_count(gpu(2)), 1);
  EXPECT_EQ(auto_worker_count(gpu(6)), 5);
  EXPECT_EQ(auto_worker_count(gpu(16)), kMaxAutoWorkers);
}

TEST(AutoWorkerCount, RanksOnOneMachineShareItsCores) {
  EXPECT_EQ(auto_worker_count(gpu(16, 4)), 3);  // 4 cores each, one feeds the GPU
  EXPECT_EQ(auto_worker_count(gpu(16, 32)), 1);
  EXPECT_EQ(auto_worker_count(cpu(16, 2, 4)), 2);
  EXPECT_EQ(auto_worker_count(cpu(16, 2, 0)), 8);  // an unknown count counts as 1
}

TEST(ComputeThreadCount, ZeroIsThisProcesssShareOfItsCores) {
  EXPECT_EQ(compute_thread_count(3, 64, 1), 3);  // as configured, whatever the cores
  EXPECT_EQ(compute_thread_count(8, 2, 4), 8);
  EXPECT_EQ(compute_thread_count(0, 4, 1), 4);  // a Slurm task of 4 CPUs on a larger node
  EXPECT_EQ(compute_thread_count(0, 16, 4), 4);
  EXPECT_EQ(compute_thread_count(0, 6, 4), 1);
  EXPECT_EQ(compute_thread_count(0, 2, 8), 1);    // at least 1
  EXPECT_EQ(compute_thread_count(0, 16, 0), 16);  // an unknown rank count counts as 1
}

TEST(AutoWorkerCount, UsableCoresAreThisProcesssAffinity) {
  const std::int64_t cores = usable_cores();
  EXPECT_GE(cores, 1);
  EXPECT_LE(cores, static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency())));
}

}  // namespace
}  // namespace exprun

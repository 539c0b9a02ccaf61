// The batch loader: shuffling by seed, batch boundaries, worker errors, batches that do not
// depend on how many worker threads prepared them, and the workers' CPU priority.
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "data/batch_loader.hpp"
#include "fake_dataset.hpp"
#include "fake_pipeline_spec.hpp"

namespace exprun {
namespace {

PipelineSpec spec() { return test::fake_pipeline_spec(); }

std::vector<std::size_t> iota(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

struct Epoch {
  std::vector<std::vector<std::string>> ids;
  std::vector<torch::Tensor> images, heatmaps;
};

Epoch run_epoch(std::size_t workers, std::uint64_t seed, std::size_t count = 11,
                std::int64_t batch = 4, std::int64_t between_steps_threads = 1) {
  auto data = std::make_shared<test::FakeDataset>(count, 200, 250);
  PipelineSpec s = spec();
  s.between_steps_threads = between_steps_threads;
  const SamplePipeline pipeline(s);
  BatchLoader loader(data, pipeline, shuffled_order(count, seed), batch,
                     static_cast<std::int64_t>(workers), true, seed);
  Epoch out;
  while (auto b = loader.next()) {
    std::vector<std::string> ids;
    for (const auto& m : b->meta) ids.push_back(m.id);
    out.ids.push_back(ids);
    out.images.push_back(b->images);
    out.heatmaps.push_back(b->heatmaps);
  }
  return out;
}

TEST(ShuffledOrder, IsAPermutationFixedByTheSeed) {
  const auto a = shuffled_order(50, 7);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, iota(50));
  EXPECT_EQ(shuffled_order(50, 7), a);
  EXPECT_NE(shuffled_order(50, 8), a);
  EXPECT_NE(a, iota(50));
  EXPECT_TRUE(shuffled_order(0, 1).empty());
  EXPECT_EQ(shuffled_order(1, 1), (std::vector<std::size_t>{0}));
}

// mt19937_64 is fully specified by the standard and the shuffle uses its raw draws, so the
// order is the same with every standard library: a resumed run sees the same batches.
TEST(ShuffledOrder, PinnedValues) {
  EXPECT_EQ(shuffled_order(8, 42), (std::vector<std::size_t>{7, 0, 5, 1, 2, 4, 3, 6}));
}

TEST(BatchLoader, BatchBoundariesAndEnd) {
  auto data = std::make_shared<test::FakeDataset>(10, 200, 250);
  const SamplePipeline pipeline(spec());
  BatchLoader loader(data, pipeline, iota(10), 4, 0, false, 1);
  EXPECT_EQ(loader.batch_count(), 3u);
  std::vector<std::int64_t> sizes;
  std::vector<std::string> ids;
  while (auto b = loader.next()) {
    sizes.push_back(b->size());
    for (const auto& m : b->meta) ids.push_back(m.id);
  }
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{4, 4, 2}));
  EXPECT_EQ(ids,
            (std::vector<std::string>{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"}));
  EXPECT_FALSE(loader.next().has_value());  // stays at the end
}

TEST(BatchLoader, FollowsTheGivenOrder) {
  auto data = std::make_shared<test::FakeDataset>(6, 200, 250);
  const SamplePipeline pipeline(spec());
  BatchLoader loader(data, pipeline, {5, 0, 3}, 2, 2, false, 1);
  auto first = loader.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->meta[0].id, "s5");
  EXPECT_EQ(first->meta[1].id, "s0");
  auto second = loader.next();
  ASSERT_TRUE(second);
  ASSERT_EQ(second->size(), 1);
  EXPECT_EQ(second->meta[0].id, "s3");
  EXPECT_FALSE(loader.next());
}

TEST(BatchLoader, SameBatchesWhateverTheWorkerCount) {
  const Epoch serial = run_epoch(0, 1234);
  ASSERT_EQ(serial.ids.size(), 3u);
  for (std::size_t workers : {1u, 2u, 5u}) {
    const Epoch threaded = run_epoch(workers, 1234);
    ASSERT_EQ(threaded.ids, serial.ids) << workers << " workers";
    for (std::size_t b = 0; b < serial.images.size(); ++b) {
      EXPECT_TRUE(torch::equal(threaded.images[b], serial.images[b]))
          << workers << " workers, batch " << b;
      EXPECT_TRUE(torch::equal(threaded.heatmaps[b], serial.heatmaps[b]))
          << workers << " workers, batch " << b;
    }
  }
  for (std::int64_t threads : {2, 3, 8}) {
    const Epoch fanned = run_epoch(0, 1234, 11, 4, threads);
    ASSERT_EQ(fanned.ids, serial.ids) << threads << " threads between steps";
    for (std::size_t b = 0; b < serial.images.size(); ++b) {
      EXPECT_TRUE(torch::equal(fanned.images[b], serial.images[b])) << threads << ", batch " << b;
      EXPECT_TRUE(torch::equal(fanned.heatmaps[b], serial.heatmaps[b]))
          << threads << ", batch " << b;
    }
  }
}

TEST(BatchLoader, SeedChangesOrderAndAugmentation) {
  const Epoch a = run_epoch(2, 1);
  const Epoch b = run_epoch(2, 2);
  EXPECT_NE(a.ids, b.ids);
  // The same sample augmented under two seeds differs.
  auto data = std::make_shared<test::FakeDataset>(2, 200, 250);
  const SamplePipeline pipeline(spec());
  BatchLoader one(data, pipeline, {0}, 1, 0, true, 1);
  BatchLoader two(data, pipeline, {0}, 1, 0, true, 2);
  EXPECT_FALSE(torch::equal(one.next()->images, two.next()->images));
}

TEST(BatchLoader, WorkerErrorNamesTheSample) {
  for (std::int64_t workers : {0, 2}) {
    auto data = std::make_shared<test::FakeDataset>(8, 200, 250, 5);
    const SamplePipeline pipeline(spec());
    BatchLoader loader(data, pipeline, iota(8), 3, workers, false, 1);
    ASSERT_TRUE(loader.next());  // samples 0-2
    try {
      loader.next();  // samples 3-5
      FAIL() << "expected an error from sample 5";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "dataset sample #5: cannot read film") << workers;
    }
  }
}

TEST(BatchLoader, ErrorBetweenStepsNamesTheSampleAndTheLoaderStaysUsable) {
  // Samples 5 and 6 both fail; with three threads either may fail first, the lower is named.
  class TwoBadFilms : public test::FakeDataset {
   public:
    using FakeDataset::FakeDataset;
    sdk::Sample get(std::size_t index) const override {
      if (index == 6) throw std::runtime_error("cannot read film");
      return FakeDataset::get(index);
    }
  };
  auto data = std::make_shared<TwoBadFilms>(8, 200, 250, 5);
  PipelineSpec s = spec();
  s.between_steps_threads = 3;
  const SamplePipeline pipeline(s);
  BatchLoader loader(data, pipeline, iota(8), 4, 0, false, 1);
  ASSERT_EQ(loader.next()->size(), 4);  // samples 0-3
  for (int call = 0; call < 2; ++call) {
    try {
      loader.next();  // samples 4-7
      FAIL() << "expected an error from sample 5";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "dataset sample #5: cannot read film") << call;
    }
  }
}

TEST(BatchLoader, AWorkerErrorComesBackOnEveryLaterCall) {
  for (std::int64_t workers : {0, 2, 3}) {
    auto data = std::make_shared<test::FakeDataset>(12, 200, 250, 4);
    const SamplePipeline pipeline(spec());
    BatchLoader loader(data, pipeline, iota(12), 2, workers, false, 1);
    ASSERT_TRUE(loader.next());  // samples 0-1
    ASSERT_TRUE(loader.next());  // samples 2-3
    for (int call = 0; call < 3; ++call) {
      try {
        loader.next();
        FAIL() << "expected an error from sample 4, workers " << workers << ", call " << call;
      } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "dataset sample #4: cannot read film") << workers;
      }
    }
  }
}

TEST(BatchLoader, StoppingEarlyDoesNotHang) {
  auto data = std::make_shared<test::FakeDataset>(20, 200, 250);
  const SamplePipeline pipeline(spec());
  {
    BatchLoader loader(data, pipeline, iota(20), 2, 4, true, 1);
    ASSERT_TRUE(loader.next());
  }  // destroyed with batches still being prepared
  SUCCEED();
}

TEST(BatchLoader, RejectsABatchSizeBelowOne) {
  auto data = std::make_shared<test::FakeDataset>(4, 200, 250);
  const SamplePipeline pipeline(spec());
  EXPECT_THROW(BatchLoader(data, pipeline, iota(4), 0, 0, false, 1), std::invalid_argument);
  EXPECT_THROW(BatchLoader(data, pipeline, iota(4), -1, 0, false, 1), std::invalid_argument);
}

TEST(BatchLoader, EmptyOrderHasNoBatches) {
  auto data = std::make_shared<test::FakeDataset>(4, 200, 250);
  const SamplePipeline pipeline(spec());
  BatchLoader loader(data, pipeline, {}, 2, 2, false, 1);
  EXPECT_EQ(loader.batch_count(), 0u);
  EXPECT_FALSE(loader.next());
}

TEST(RankShares, SplitEachBatchContiguouslyWithTheRemainderOnLowRanks) {
  const auto batches = split_into_batches(iota(16), 5);
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches[3], (std::vector<std::size_t>{15}));
  using Shares = std::vector<std::vector<std::size_t>>;
  EXPECT_EQ(rank_shares(batches, 0, 2), (Shares{{0, 1, 2}, {5, 6, 7}, {10, 11, 12}, {15}}));
  EXPECT_EQ(rank_shares(batches, 1, 2), (Shares{{3, 4}, {8, 9}, {13, 14}, {}}));
  // Every index once, in order, whatever the world size.
  for (int world = 1; world <= 7; ++world) {
    std::vector<std::vector<std::vector<std::size_t>>> by_rank;
    for (int rank = 0; rank < world; ++rank) by_rank.push_back(rank_shares(batches, rank, world));
    std::vector<std::size_t> seen;
    for (std::size_t b = 0; b < batches.size(); ++b)
      for (const auto& shares : by_rank)
        seen.insert(seen.end(), shares[b].begin(), shares[b].end());
    EXPECT_EQ(seen, iota(16)) << world << " ranks";
  }
  EXPECT_EQ(rank_shares(batches, 0, 1), batches);
  EXPECT_THROW(rank_shares(batches, 2, 2), std::invalid_argument);
  EXPECT_THROW(rank_shares(batches, 0, 0), std::invalid_argument);
}

// A rank's share of a short last batch may be empty: a batch of 0 images of the right shapes.
TEST(BatchLoader, GivenBatchesWithAnEmptyOne) {
  auto data = std::make_shared<test::FakeDataset>(10, 200, 250);
  const SamplePipeline pipeline(spec());
  BatchLoader loader(data, pipeline, std::vector<std::vector<std::size_t>>{{3, 1}, {}, {7}}, 1,
                     false, 1);
  ASSERT_EQ(loader.batch_count(), 3u);
  EXPECT_EQ(loader.next()->size(), 2);
  const auto empty = loader.next();
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->images.sizes(), (std::vector<std::int64_t>{0, 1, 80, 64}));
  EXPECT_EQ(empty->heatmaps.sizes(), (std::vector<std::int64_t>{0, 2, 20, 16}));
  EXPECT_TRUE(empty->meta.empty());
  EXPECT_EQ(loader.next()->meta.at(0).id, data->get(7).id);
  EXPECT_FALSE(loader.next().has_value());
}

// A FakeDataset that records the scheduling policy, the thread and LibTorch's thread count of
// each call that reads a sample.
class PolicyRecordingDataset : public test::FakeDataset {
 public:
  using FakeDataset::FakeDataset;
  sdk::Sample get(std::size_t index) const override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      policies_.push_back(sched_getscheduler(0));
      threads_.insert(std::this_thread::get_id());
      library_threads_.insert(at::get_num_threads());
    }
    return FakeDataset::get(index);
  }
  std::vector<int> policies() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return policies_;
  }
  std::size_t thread_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_.size();
  }
  std::set<int> library_threads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return library_threads_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::vector<int> policies_;
  mutable std::set<std::thread::id> threads_;
  mutable std::set<int> library_threads_;
};

std::vector<int> policies_seen(bool idle_workers, std::int64_t workers) {
  auto data = std::make_shared<PolicyRecordingDataset>(6, 100, 120);
  PipelineSpec s = spec();
  s.idle_workers = idle_workers;
  const SamplePipeline pipeline(s);
  BatchLoader loader(data, pipeline, iota(6), 2, workers, true, 1);
  while (loader.next()) {
  }
  return data->policies();
}

TEST(BatchLoaderWorkers, RunAtIdlePriorityWhenAskedAndLeaveTheTrainingThreadAlone) {
  const int own = sched_getscheduler(0);
  ASSERT_NE(own, SCHED_IDLE);
  EXPECT_EQ(policies_seen(true, 2), std::vector<int>(6, SCHED_IDLE));
  EXPECT_EQ(policies_seen(false, 2), std::vector<int>(6, own));
  // No workers: the batches are made on this thread, whose priority stays as it was.
  EXPECT_EQ(policies_seen(true, 0), std::vector<int>(6, own));
  EXPECT_EQ(sched_getscheduler(0), own);
}

// A thread's first LibTorch op resets LibTorch 1.13's oneDNN convolution cache, so workers are
// kept for the loader's life rather than started per batch.
TEST(BatchLoaderWorkers, AreTheSameThreadsForEveryBatch) {
  for (std::int64_t workers : {1, 2, 3}) {
    auto data = std::make_shared<PolicyRecordingDataset>(20, 100, 120);
    const SamplePipeline pipeline(spec());
    BatchLoader loader(data, pipeline, iota(20), 2, workers, true, 1);
    std::size_t batches = 0;
    while (loader.next()) ++batches;
    EXPECT_EQ(batches, 10u);
    EXPECT_EQ(data->thread_count(), static_cast<std::size_t>(workers));
  }
}

// No workers: a batch's samples are shared among `between_steps_threads` threads, the
// calling one included, and come back in order.
TEST(BatchLoaderBetweenSteps, SharesABatchAmongThreads) {
  auto data = std::make_shared<PolicyRecordingDataset>(40, 100, 120);
  PipelineSpec s = spec();
  s.between_steps_threads = 2;
  const SamplePipeline pipeline(s);
  BatchLoader loader(data, pipeline, iota(40), 20, 0, true, 1);
  std::vector<std::string> ids;
  while (auto batch = loader.next())
    for (const auto& m : batch->meta) ids.push_back(m.id);
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < 40; ++i) expected.push_back(data->get(i).id);
  EXPECT_EQ(ids, expected);
  EXPECT_GE(data->thread_count(), 1u);
  EXPECT_LE(data->thread_count(), 3u);  // this thread and at most two of LibTorch's pool
}

// However a sample is prepared, the dataset reads it with one LibTorch thread: threads outside
// the step must not start OpenMP teams of their own on the step's cores.
TEST(BatchLoaderBetweenSteps, DatasetsReadWithOneLibraryThreadEverywhere) {
  const int own = at::get_num_threads();
  at::set_num_threads(2);
  for (const auto& [workers, between] :
       {std::pair<std::int64_t, std::int64_t>{0, 1}, {0, 2}, {2, 1}}) {
    auto data = std::make_shared<PolicyRecordingDataset>(8, 100, 120);
    PipelineSpec s = spec();
    s.between_steps_threads = between;
    const SamplePipeline pipeline(s);
    BatchLoader loader(data, pipeline, iota(8), 4, workers, true, 1);
    while (loader.next()) {
    }
    EXPECT_EQ(data->library_threads(), std::set<int>{1}) << workers << " workers, " << between;
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(own);
}

}  // namespace
}  // namespace exprun

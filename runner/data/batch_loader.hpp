// Prepares batches on worker threads ahead of the trainer. Each batch is a pure function of
// (dataset, order, epoch seed), so results do not depend on thread timing.
#pragma once

#include <exprun/sdk/dataset.hpp>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/sample_pipeline.hpp"

namespace exprun {

class BatchLoader {
 public:
  // workers = 0 prepares each batch on the calling thread; otherwise `workers` threads, kept
  // for the loader's life, prepare up to `workers` batches ahead of the one asked for.
  BatchLoader(std::shared_ptr<const sdk::Dataset> dataset, const SamplePipeline& pipeline,
              std::vector<std::size_t> order, std::int64_t batch_size, std::int64_t workers,
              bool augment, std::uint64_t seed);
  // Batches given as lists of dataset indices; an empty one comes out as a batch of 0 images
  // (a rank's share of an epoch's short last batch).
  BatchLoader(std::shared_ptr<const sdk::Dataset> dataset, const SamplePipeline& pipeline,
              std::vector<std::vector<std::size_t>> batches, std::int64_t workers, bool augment,
              std::uint64_t seed);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in order, or nothing at the end. Rethrows a worker's error.
  std::optional<Batch> next();
  std::size_t batch_count() const { return batch_count_; }

 private:
  // What one worker thread holds: the batch it prepared, until next() takes it.
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };

  Batch make_batch(std::size_t batch_index) const;
  void start_workers();
  void work(std::size_t worker);

  std::shared_ptr<const sdk::Dataset> dataset_;
  const SamplePipeline& pipeline_;
  std::vector<std::vector<std::size_t>> batches_;
  std::int64_t workers_;
  bool augment_;
  std::uint64_t seed_;
  std::size_t batch_count_;
  std::size_t next_to_return_ = 0;
  std::exception_ptr failed_;  // a worker's error, given again to every later next()

  // Worker w prepares batches w, w + workers, w + 2 workers, ...: each its next one only once
  // next() took the one before, so at most `workers` batches are in preparation or waiting.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Slot> slots_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// `order` cut into batches of batch_size (the last one shorter when it does not divide).
std::vector<std::vector<std::size_t>> split_into_batches(const std::vector<std::size_t>& order,
                                                         std::int64_t batch_size);

// Data parallelism: rank `rank`'s part of each of `batches`, contiguous, sizes differing by at
// most one (the lower ranks take the remainder); a rank's part may be empty.
std::vector<std::vector<std::size_t>> rank_shares(
    const std::vector<std::vector<std::size_t>>& batches, int rank, int world_size);

// 0, 1, ..., n-1 shuffled by `seed` (Fisher-Yates with our own draws, so the order is the
// same with every standard library).
std::vector<std::size_t> shuffled_order(std::size_t n, std::uint64_t seed);

}  // namespace exprun

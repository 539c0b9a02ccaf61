#include "data/batch_loader.hpp"

#include <sched.h>

#include <algorithm>
#include <random>
#include <stdexcept>

#include "util/fan_out.hpp"
#include "util/one_library_thread.hpp"

namespace exprun {
namespace {

// Workers prepare batches while the training step computes on the same cores. At the normal
// priority the kernel shares a core between them, which stalls every thread team of the step
// at its next barrier; at SCHED_IDLE a worker takes what the step leaves idle (its waits, its
// serial parts), and the loader still gets its batch when the step waits for it. Lowering the
// own policy needs no privilege; where it fails the worker keeps the normal priority, which
// changes only the speed.
void run_this_thread_when_idle() {
  sched_param none{};
  sched_setscheduler(0, SCHED_IDLE, &none);  // 0: the calling thread
}

}  // namespace

std::vector<std::size_t> shuffled_order(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (std::size_t i = n; i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

std::vector<std::vector<std::size_t>> split_into_batches(const std::vector<std::size_t>& order,
                                                         std::int64_t batch_size) {
  if (batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
  std::vector<std::vector<std::size_t>> batches;
  const auto size = static_cast<std::size_t>(batch_size);
  for (std::size_t begin = 0; begin < order.size(); begin += size) {
    const std::size_t end = std::min(order.size(), begin + size);
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(begin),
                         order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

std::vector<std::vector<std::size_t>> rank_shares(
    const std::vector<std::vector<std::size_t>>& batches, int rank, int world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size)
    throw std::invalid_argument("rank " + std::to_string(rank) + " of " +
                                std::to_string(world_size));
  const auto ranks = static_cast<std::size_t>(world_size);
  const auto r = static_cast<std::size_t>(rank);
  std::vector<std::vector<std::size_t>> shares;
  for (const auto& batch : batches) {
    const std::size_t base = batch.size() / ranks;
    const std::size_t extra = batch.size() % ranks;
    const std::size_t begin = r * base + std::min(r, extra);
    const std::size_t count = base + (r < extra ? 1 : 0);
    shares.emplace_back(batch.begin() + static_cast<std::ptrdiff_t>(begin),
                        batch.begin() + static_cast<std::ptrdiff_t>(begin + count));
  }
  return shares;
}

BatchLoader::BatchLoader(std::shared_ptr<const sdk::Dataset> dataset,
                         const SamplePipeline& pipeline, std::vector<std::size_t> order,
                         std::int64_t batch_size, std::int64_t workers, bool augment,
                         std::uint64_t seed)
    : BatchLoader(std::move(dataset), pipeline, split_into_batches(order, batch_size), workers,
                  augment, seed) {}

BatchLoader::BatchLoader(std::shared_ptr<const sdk::Dataset> dataset,
                         const SamplePipeline& pipeline,
                         std::vector<std::vector<std::size_t>> batches, std::int64_t workers,
                         bool augment, std::uint64_t seed)
    : dataset_(std::move(dataset)),
      pipeline_(pipeline),
      batches_(std::move(batches)),
      workers_(workers),
      augment_(augment),
      seed_(seed),
      batch_count_(batches_.size()) {
  start_workers();
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  // A worker finishes the batch it is preparing first; its error, if any, is dropped here.
  for (auto& thread : threads_) thread.join();
}

Batch BatchLoader::make_batch(std::size_t batch_index) const {
  const std::vector<std::size_t>& indices = batches_[batch_index];
  if (indices.empty()) return pipeline_.empty_batch();
  std::vector<PreparedSample> samples(indices.size());
  const auto prepare = [&](std::size_t position) {
    const std::size_t index = indices[position];
    // The dataset's get() too, on whichever thread prepares the sample: a thread outside the
    // step that starts an OpenMP team of its own adds spinning threads on the step's cores,
    // and once they outnumber the cores libgomp shortens every team's spin-wait, the step's
    // included (the quickstart's bare loop measured 1.3x slower). The same thread count
    // everywhere also keeps a sample the same whatever `workers` and `threads` are.
    const OneLibraryThread one_thread;
    try {
      samples[position] =
          pipeline_.prepare(*dataset_, index, augment_, mix_seed(seed_, index, 0xA11CE));
    } catch (const c10::Error& e) {
      throw std::runtime_error("dataset sample #" + std::to_string(index) + ": " +
                               e.what_without_backtrace());
    } catch (const std::exception& e) {
      throw std::runtime_error("dataset sample #" + std::to_string(index) + ": " + e.what());
    }
  };
  // Between steps (no workers) the step's cores are idle while the batch is made: its samples
  // are prepared on as many threads as the step uses. Workers have a thread each already.
  fan_out(indices.size(),
          workers_ == 0 ? static_cast<std::size_t>(pipeline_.spec().between_steps_threads) : 1,
          prepare);
  return SamplePipeline::collate(std::move(samples));
}

// Threads kept for the loader's life rather than one per batch: a thread's first LibTorch op
// sets up its thread count, and in LibTorch 1.13 that set-up also empties oneDNN's cache of
// forward convolutions, which the training step then builds again.
void BatchLoader::start_workers() {
  if (workers_ == 0 || batch_count_ == 0) return;
  const auto count = std::min(static_cast<std::size_t>(workers_), batch_count_);
  slots_.resize(count);
  threads_.reserve(count);
  try {
    for (std::size_t w = 0; w < count; ++w) threads_.emplace_back([this, w] { work(w); });
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    for (auto& thread : threads_) thread.join();
    throw;
  }
}

void BatchLoader::work(std::size_t worker) {
  if (pipeline_.spec().idle_workers) run_this_thread_when_idle();
  Slot& slot = slots_[worker];
  for (std::size_t index = worker; index < batch_count_; index += slots_.size()) {
    Slot made;
    try {
      made.batch = make_batch(index);
    } catch (...) {
      made.error = std::current_exception();
    }
    const bool failed = made.error != nullptr;
    std::unique_lock lock(mutex_);
    slot = std::move(made);
    changed_.notify_all();
    if (failed) return;  // next() gives the error to every later call
    changed_.wait(lock, [&] { return stopping_ || (!slot.batch && !slot.error); });
    if (stopping_) return;
  }
}

std::optional<Batch> BatchLoader::next() {
  if (failed_) std::rethrow_exception(failed_);
  if (next_to_return_ >= batch_count_) return std::nullopt;
  if (workers_ == 0) {
    try {
      return make_batch(next_to_return_++);
    } catch (...) {
      failed_ = std::current_exception();
      throw;
    }
  }
  Slot& slot = slots_[next_to_return_ % slots_.size()];
  Slot taken;
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return slot.batch || slot.error; });
    taken = std::move(slot);
    slot = Slot{};
  }
  changed_.notify_all();
  ++next_to_return_;
  if (taken.error) {
    failed_ = taken.error;
    std::rethrow_exception(failed_);
  }
  return std::move(*taken.batch);
}

}  // namespace exprun

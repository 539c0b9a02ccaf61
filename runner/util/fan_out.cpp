#include "util/fan_out.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

namespace exprun {
namespace {

// What the calling thread and its helpers share. Held by a shared_ptr: a helper that the pool
// starts only after every index is done still reads `next`, after the caller has returned.
struct SharedLoop {
  explicit SharedLoop(std::size_t count, const std::function<void(std::size_t)>& body)
      : count(count), body(body), errors(count) {}

  // Takes indices until none is left. Indices are handed out one by one rather than in fixed
  // chunks: samples differ in cost, and an idle helper should take the next one.
  void run() {
    for (std::size_t index = next.fetch_add(1); index < count; index = next.fetch_add(1)) {
      try {
        body(index);
      } catch (...) {
        errors[index] = std::current_exception();
      }
      std::lock_guard lock(mutex);
      if (++done == count) all_done.notify_all();
    }
  }

  const std::size_t count;
  // The caller's; only touched for an index below count, and the caller waits for those.
  const std::function<void(std::size_t)>& body;
  std::atomic<std::size_t> next{0};
  std::vector<std::exception_ptr> errors;
  std::mutex mutex;
  std::condition_variable all_done;
  std::size_t done = 0;
};

}  // namespace

// LibTorch's inter-op pool rather than threads of our own: its threads live as long as the
// process, so the per-thread set-up of LibTorch and oneDNN happens once, not once per batch
// or per epoch, and its size is LibTorch's to set (`at::set_num_interop_threads`). The caller
// waits for the indices, not for the helpers: a helper the pool cannot start at once (its
// threads busy, or the caller one of them) finds nothing left to do when it does start.
void fan_out(std::size_t count, std::size_t threads, const std::function<void(std::size_t)>& body) {
  if (count == 0) return;
  const std::size_t helpers = std::min(count, std::max<std::size_t>(threads, 1)) - 1;
  auto loop = std::make_shared<SharedLoop>(count, body);
  for (std::size_t h = 0; h < helpers; ++h) {
    try {
      at::launch([loop] { loop->run(); });
    } catch (...) {
      break;  // no thread to be had: the helpers that did start and this thread do the rest
    }
  }
  loop->run();
  {
    std::unique_lock lock(loop->mutex);
    loop->all_done.wait(lock, [&] { return loop->done == count; });
  }
  for (const auto& error : loop->errors)
    if (error) std::rethrow_exception(error);
}

}  // namespace exprun

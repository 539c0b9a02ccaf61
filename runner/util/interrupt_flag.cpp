#include "util/interrupt_flag.hpp"

#include <atomic>

namespace exprun {
namespace {

std::atomic<int> requested{0};
static_assert(std::atomic<int>::is_always_lock_free, "set from a signal handler");

}  // namespace

int interrupt_signal() { return requested.load(); }

void request_interrupt(int signal) { requested.store(signal); }

void clear_interrupt_request() { requested.store(0); }

}  // namespace exprun

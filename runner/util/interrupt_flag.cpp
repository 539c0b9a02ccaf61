#include "util/interrupt_flag.hpp"

#include <atomic>
#include <csignal>
#include <string>

namespace exprun {
namespace {

std::atomic<int> requested{0};
static_assert(std::atomic<int>::is_always_lock_free, "set from a signal handler");

}  // namespace

int interrupt_signal() { return requested.load(); }

void request_interrupt(int signal) { requested.store(signal); }

void clear_interrupt_request() { requested.store(0); }

const char* stop_signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGUSR1:
      return "SIGUSR1";
    default:
      return "a signal";
  }
}

StopRequested::StopRequested(int signal)
    : std::runtime_error(std::string("stopped by ") + stop_signal_name(signal)), signal_(signal) {}

void throw_if_stop_requested() {
  if (const int signal = interrupt_signal(); signal != 0) throw StopRequested(signal);
}

}  // namespace exprun

#include "run/interrupt.hpp"

#include <atomic>
#include <csignal>

namespace exprun {
namespace {

std::atomic<int> requested{0};
struct sigaction previous_int, previous_term;

extern "C" void on_stop_signal(int signal) {
  requested.store(signal);
  // Back to the default action: a second signal stops the process at once.
  std::signal(signal, SIG_DFL);
}

}  // namespace

InterruptGuard::InterruptGuard() {
  requested.store(0);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
}

int interrupt_signal() { return requested.load(); }

}  // namespace exprun

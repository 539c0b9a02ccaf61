#include "run/interrupt.hpp"

#include <csignal>

#include "util/signal_thread.hpp"

namespace exprun {
namespace {

struct sigaction previous_int, previous_term;

extern "C" void on_stop_signal(int signal) {
  request_interrupt(signal);
  // Back to the default action: a second signal stops the process at once.
  std::signal(signal, SIG_DFL);
}

}  // namespace

InterruptGuard::InterruptGuard() : signal_thread_(signal_thread_running()) {
  clear_interrupt_request();
  if (signal_thread_) {
    set_run_accepts_stop_requests(true);
    return;
  }
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);
}

InterruptGuard::~InterruptGuard() {
  if (signal_thread_) {
    set_run_accepts_stop_requests(false);
    return;
  }
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
}

}  // namespace exprun

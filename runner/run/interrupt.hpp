// SIGINT/SIGTERM during a run: the first one asks training to stop after the current step
// (writing `latest` so the run can be resumed); a second one kills as usual.
#pragma once

#include "util/interrupt_flag.hpp"

namespace exprun {

// Marks a run in progress for its lifetime and clears any earlier stop request. A stop signal
// then raises util/interrupt_flag's request, which the trainer polls.
//
// exprun's main() has util/signal_thread take the signals; the guard only tells that thread a
// run is on. Without it (a test executable that links the runner), the guard installs handlers
// for SIGINT and SIGTERM and restores the previous ones after: such a process has no worker
// thread in a system call that a handler could break, and its tests keep working unchanged.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  // Decided once, so that the destructor undoes what the constructor did.
  bool signal_thread_ = false;
};

}  // namespace exprun

// SIGINT/SIGTERM during a run: the first one asks training to stop after the current step
// (writing `latest` so the run can be resumed); a second one kills as usual.
#pragma once

namespace exprun {

// Installs the handlers for the lifetime of the guard and restores the previous ones after.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

// The signal that asked to stop (SIGINT, SIGTERM), or 0.
int interrupt_signal();

}  // namespace exprun

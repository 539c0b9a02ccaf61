// SIGINT/SIGTERM during a run: the first one asks training to stop after the current step
// (writing `latest` so the run can be resumed); a second one kills as usual.
#pragma once

#include "util/interrupt_flag.hpp"

namespace exprun {

// Installs the handlers for the lifetime of the guard and restores the previous ones after.
// A handled signal raises util/interrupt_flag's request, which the trainer polls.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

}  // namespace exprun

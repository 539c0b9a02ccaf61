// The request to stop a run, as a flag that the trainer polls between steps. Who raises it
// (run/interrupt's signal handlers) lives above the trainer; the flag lives below it.
#pragma once

namespace exprun {

// The signal that asked to stop (SIGINT, SIGTERM), or 0.
int interrupt_signal();

// Async-signal-safe: a lock-free atomic store, so a signal handler may call it.
void request_interrupt(int signal);
void clear_interrupt_request();

}  // namespace exprun

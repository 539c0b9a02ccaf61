// The request to stop a run, as a flag that the trainer polls between steps. Who raises it
// (util/signal_thread, or run/interrupt's fallback handlers) decides when a signal means a
// request; the flag itself lives below the trainer, so that a collective stop can poll it too.
#pragma once

#include <stdexcept>

namespace exprun {

// The signal that asked to stop (SIGINT, SIGTERM), or 0.
int interrupt_signal();

// Async-signal-safe: a lock-free atomic store, so a signal handler may call it (the fallback
// handlers do; the signal thread calls it as a plain function).
void request_interrupt(int signal);
void clear_interrupt_request();

// "SIGINT", "SIGTERM" or "SIGUSR1" (Slurm's early warning), for reports and messages.
const char* stop_signal_name(int signal);

// How a command other than run (synth, bench --training) stops on a request: thrown where
// stopping is safe, so that the command's clean-up (its staging or scratch folder) runs on the
// way out; the command line exits with 128 + the signal. run stops differently: it saves.
class StopRequested : public std::runtime_error {
 public:
  explicit StopRequested(int signal);
  int signal() const { return signal_; }

 private:
  int signal_;
};

// Throws StopRequested when a stop was requested.
void throw_if_stop_requested();

}  // namespace exprun

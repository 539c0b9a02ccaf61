// The stop signals (SIGINT, SIGTERM, SIGUSR1) taken by one dedicated thread instead of a handler.
// A handler runs on whichever thread the kernel picks; in a thread blocked in a system call
// (a data worker, later c10d's sockets) it makes that call fail with EINTR, which killed a rank
// with "Interrupted system call" in ../shared/design/DISTRIBUTED.md. Blocked in every thread
// and taken with sigwait, a signal interrupts nobody: it only sets util/interrupt_flag, which
// the trainer polls between steps (and which a collective stop can poll later).
#pragma once

namespace exprun {

// Blocks the stop signals in the calling thread and starts the thread that waits for them.
// Call first thing in main(), before any other thread exists: threads inherit the mask, so a
// thread started earlier could still receive them. A second call does nothing and returns the
// first one's answer. false: the thread could not start; the signals are unblocked again and
// InterruptGuard falls back to handlers.
bool start_signal_thread();

// Whether start_signal_thread succeeded in this process.
bool signal_thread_running();

// Set by InterruptGuard for the length of a run. While set, the first stop signal asks the run
// to stop (request_interrupt) and a second one ends the process by that signal; while unset, a
// stop signal ends the process at once, as the default action would. Except SIGTERM after a
// SIGUSR1 stop (Slurm's early warning), during the run or after it: it is ignored, because
// `scontrol requeue` (and the time limit) send it while exprun saves and requeues.
void set_run_accepts_stop_requests(bool accepts);

// std::raise(signal) for the whole process, for EXPRUN_FAULT: raise() sends a signal to the
// calling thread, where the stop signals are blocked and no sigwait sees it. Sends it to the
// process instead and, when the signal thread takes it, returns after the thread dispatched it
// (as raise returns after a handler ran), so a run stops at exactly that point.
void raise_in_process(int signal);

}  // namespace exprun

#include "util/signal_thread.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <system_error>
#include <thread>

#include "util/interrupt_flag.hpp"

namespace exprun {
namespace {

// SIGUSR1 is Slurm's early warning (`--signal=USR1@LEAD`): it saves and stops a run as SIGTERM
// does, and the command then requeues the job (slurm/requeue.hpp). It is blocked from the
// start: a signal added to the mask later would miss the threads already running.
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGUSR1};

std::atomic<bool> running{false};
std::atomic<bool> run_accepts_requests{false};
std::atomic<unsigned> signals_dispatched{0};
// Written before the thread starts, read only by it. A signal exprun inherited as ignored
// (SIGINT under `exprun ... &` in a script) stays ignored outside a run; a run takes it as its
// handlers did before the signal thread.
bool ignored_at_start[NSIG] = {};

bool is_stop_signal(int signal) {
  for (const int s : kStopSignals)
    if (s == signal) return true;
  return false;
}

sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  for (const int s : kStopSignals) sigaddset(&set, s);
  return set;
}

// Dies by `signal` with its default action, so that the exit status says "killed by signal N"
// as it did when a second signal met the default disposition.
[[noreturn]] void end_process_by(int signal) {
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  sigaction(signal, &default_action, nullptr);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signal);
  pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  pthread_kill(pthread_self(), signal);
  // The default action of every stop signal ends the process before this; should it not,
  // exit with the status a shell gives for that signal rather than carry on.
  _exit(128 + signal);
}

void dispatch(int signal) {
  // After Slurm's early warning the process saves, requeues its job and exits by itself; the
  // SIGTERM that follows (scontrol requeue cancels the running job, or the time limit comes)
  // must not cut that short. Slurm sends SIGKILL after KillWait should the process hang.
  if (signal == SIGTERM && interrupt_signal() == SIGUSR1) return;
  const bool in_run = run_accepts_requests.load();
  if (in_run && interrupt_signal() == 0) {
    request_interrupt(signal);
    return;
  }
  if (!in_run && ignored_at_start[signal]) return;
  end_process_by(signal);
}

void wait_for_signals(sigset_t set) {
  pthread_setname_np(pthread_self(), "exprun-signals");
  for (;;) {
    int signal = 0;
    // sigwait fails only for an invalid set; this one is valid.
    if (sigwait(&set, &signal) != 0) continue;
    dispatch(signal);
    signals_dispatched.fetch_add(1);
  }
}

bool start_once() {
  for (const int s : kStopSignals) {
    struct sigaction current {};
    sigaction(s, nullptr, &current);
    ignored_at_start[s] = current.sa_handler == SIG_IGN;
  }
  const sigset_t set = stop_signal_set();
  sigset_t previous;
  if (pthread_sigmask(SIG_BLOCK, &set, &previous) != 0) return false;
  try {
    // Detached: it blocks in sigwait for the life of the process, and exit() does not wait for
    // it. It touches only atomics and the signal dispositions, so exiting under it is safe.
    std::thread(wait_for_signals, set).detach();
  } catch (const std::system_error&) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return false;
  }
  running = true;
  return true;
}

}  // namespace

// A child inherits the blocked mask across fork and exec, and a signal to it would then stay
// pending forever: every program exprun starts (sbatch, squeue, scontrol) goes through
// util/program.hpp, which gives the child the default mask back.
bool start_signal_thread() {
  static const bool started = start_once();
  return started;
}

bool signal_thread_running() { return running.load(); }

void set_run_accepts_stop_requests(bool accepts) { run_accepts_requests.store(accepts); }

void raise_in_process(int signal) {
  if (!running.load() || !is_stop_signal(signal)) {
    std::raise(signal);
    return;
  }
  const unsigned before = signals_dispatched.load();
  if (::kill(::getpid(), signal) != 0) return;
  // Bounded, so that a signal thread that never answers cannot hang a run.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (signals_dispatched.load() == before && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace exprun

#include "train/progress.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "util/text.hpp"

namespace exprun {

Progress::Progress(std::string stage, std::int64_t epochs)
    : stage_(std::move(stage)), epochs_(epochs), tty_(::isatty(STDERR_FILENO) == 1) {}

void Progress::start_epoch(std::int64_t epoch, std::int64_t steps) {
  epoch_ = epoch;
  steps_ = steps;
  last_print_ = std::chrono::steady_clock::now();
}

void Progress::step(std::int64_t step, double loss, double lr, double images_per_second,
                    double seconds_left) {
  const auto now = std::chrono::steady_clock::now();
  const auto interval = tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000);
  if (now - last_print_ < interval && step != steps_) return;
  last_print_ = now;
  std::fprintf(
      stderr, "%s[%s] epoch %lld/%lld step %lld/%lld  loss %.5f  lr %.2e  %.1f img/s  ETA %s%s",
      tty_ ? "\r\033[K" : "", stage_.c_str(), static_cast<long long>(epoch_ + 1),
      static_cast<long long>(epochs_), static_cast<long long>(step), static_cast<long long>(steps_),
      loss, lr, images_per_second, format_duration(seconds_left).c_str(), tty_ ? "" : "\n");
  line_open_ = tty_;
  std::fflush(stderr);
}

void Progress::end_epoch(const std::string& summary) {
  std::fprintf(stderr, "%s[%s] epoch %lld/%lld  %s\n", line_open_ ? "\r\033[K" : "", stage_.c_str(),
               static_cast<long long>(epoch_ + 1), static_cast<long long>(epochs_),
               summary.c_str());
  line_open_ = false;
  std::fflush(stderr);
}

namespace {
std::atomic<bool> quiet_messages{false};
}  // namespace

void Progress::set_quiet(bool quiet) { quiet_messages = quiet; }

void Progress::message(const std::string& text) {
  if (!quiet_messages) message_always(text);
}

void Progress::message_always(const std::string& text) {
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

}  // namespace exprun

// The progress line: loss, learning rate, images/s and the time left. On a terminal it
// redraws one line; in a log it prints a line every few seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace exprun {

class Progress {
 public:
  explicit Progress(std::string stage, std::int64_t epochs);
  void start_epoch(std::int64_t epoch, std::int64_t steps);
  // images: images trained so far in this epoch; seconds_left: estimate for the whole stage.
  void step(std::int64_t step, double loss, double lr, double images_per_second,
            double seconds_left);
  void end_epoch(const std::string& summary);
  static void message(const std::string& text);
  // Ranks other than 0 of a data-parallel run keep quiet: rank 0 says the same for all.
  static void set_quiet(bool quiet);
  // Printed also when quiet: what only this rank knows (its own failure).
  static void message_always(const std::string& text);

 private:
  std::string stage_;
  std::int64_t epochs_;
  std::int64_t epoch_ = 0;
  std::int64_t steps_ = 0;
  bool tty_;
  bool line_open_ = false;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace exprun

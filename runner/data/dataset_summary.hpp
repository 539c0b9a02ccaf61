// What one split of a dataset holds, for `exprun data`: every sample is read once, so an
// unreadable image is found here rather than in the middle of training.
#pragma once

#include <exprun/sdk/dataset.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace exprun {

struct GroupSummary {
  std::size_t count = 0;
  double min_mm_per_pixel = 0;
  double max_mm_per_pixel = 0;
};

struct DatasetSummary {
  std::string split;
  std::size_t count = 0;
  std::int64_t min_width = 0, max_width = 0, min_height = 0, max_height = 0;
  std::map<std::string, std::size_t> image_kinds;  // "8-bit grey" -> count
  std::map<std::string, GroupSummary> groups;      // by Sample::group; "" when none
  // Sample::extra values counted per key: cvm_stage -> { "1": 3, "2": 5 }.
  std::map<std::string, std::map<std::string, std::size_t>> extra;
  std::size_t landmarks_outside = 0;  // points outside their image
  // The first few of them by image id, "train_0003: landmark 5 (Or) at (5000, 12)", so that
  // the warning says where to look.
  std::vector<std::string> outside_examples;
  std::vector<std::string> skipped;  // Dataset::skipped()
};

// Reads every sample with `threads` threads (get() is thread-safe by contract). An error from
// a sample is rethrown as it came.
DatasetSummary summarize_dataset(const sdk::Dataset& dataset, const std::string& split,
                                 unsigned threads);

// Lines for the terminal, each indented by two spaces.
std::string format_summary(const DatasetSummary& summary);

}  // namespace exprun

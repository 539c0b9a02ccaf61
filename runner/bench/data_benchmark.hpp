// `exprun bench --data`: the data pipeline of a stage alone (no model): images/s delivered at
// the stage's input size with 0, 1, 2, ... workers, where one image's time goes (reading and
// decoding the film, resizing and augmenting it, making its targets), next to what the stage's
// model consumes per second on pre-made batches, and which of the two is the bottleneck.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "plugins/registry.hpp"

namespace exprun {

struct DataBenchOptions {
  std::vector<std::int64_t> worker_counts;  // empty: 0 up to max(2, data.workers)
  std::int64_t images = 64;                 // per measurement; the split is cycled when smaller
  int rounds = 3;  // the worker counts are measured in turn this many times; medians reported
  int model_warmup_steps = 1;
  int model_timed_steps = 3;
  bool measure_model = true;
};

// Milliseconds per image on one thread (workers = 0), summed over the measured images.
struct DataPhases {
  double read_decode_ms = 0;      // Dataset::get: the file read and decoded
  double resize_augment_ms = 0;   // to the input size, augmentation, to a tensor
  double targets_ms = 0;          // heatmaps
  double collate_ms = 0;          // samples stacked into a batch
  std::int64_t cache_misses = 0;  // samples whose film the cache or memo did not have
  double total_ms() const { return read_decode_ms + resize_augment_ms + targets_ms + collate_ms; }
};

struct WorkerRate {
  std::int64_t workers = 0;
  double images_per_second = 0;         // decoding every film
  double cached_images_per_second = 0;  // films from the warm cache; 0 when not measured
};

struct DataBenchResult {
  std::string experiment;
  std::string stage;
  std::string device;
  std::int64_t input_width = 0, input_height = 0;
  std::int64_t batch_size = 0;  // the stage's effective batch: what one loader batch holds
  std::int64_t images = 0;
  std::int64_t configured_workers = 0;  // data.workers
  double mean_megapixels = 0;           // of the decoded films
  DataPhases phases;                    // decoding every film
  // The cache (or memo): measured when data.cache is on; else why not.
  bool cache_measured = false;
  // What "cache warm" measured: "files" (the decoded-film cache on disk) or "memory" (the film
  // memo of a dataset that makes its images); empty when not measured.
  std::string cache_kind;
  std::string cache_note;
  DataPhases cached_phases;  // with the cache warm
  std::vector<WorkerRate> rates;
  double model_images_per_second = 0;  // 0 when not measured
  std::string model_error;             // when the model could not be measured

  // The rate at data.workers (measured, or the nearest measured count below it).
  const WorkerRate* configured_rate() const;
  // What training gets at data.workers after its first epoch: the cached rate when measured.
  double steady_images_per_second() const;
  // "data pipeline" or "model"; empty when the model was not measured.
  std::string bottleneck() const;
  nlohmann::json to_json() const;
};

// "0,1,2,4": distinct non-negative worker counts. Throws std::invalid_argument.
std::vector<std::int64_t> parse_worker_counts(const std::string& text);

// on_line sees each line of the report as soon as it is measured.
DataBenchResult run_data_benchmark(const Experiment& experiment, std::size_t stage_index,
                                   const Registry& registry, const DataBenchOptions& options,
                                   const std::function<void(const std::string&)>& on_line = {});

}  // namespace exprun

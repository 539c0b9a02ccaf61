// Turns dataset samples into network inputs and heatmap targets: resize to the input size
// (remembering the map back to original pixels), augment (training only), Gaussian targets.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/dataset.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "data/affine.hpp"
#include "data/film_cache.hpp"
#include "data/film_memo.hpp"

namespace exprun {

struct SampleMeta {
  std::string id;
  std::string group;
  double mm_per_pixel = 0;
  std::int64_t original_width = 0;
  std::int64_t original_height = 0;
  torch::Tensor landmarks;  // K x 2 float64, original pixels
  Affine input_to_original;
};

struct PreparedSample {
  torch::Tensor image;     // C x H x W float32 in [0, 1]
  torch::Tensor heatmaps;  // K x h x w float32
  SampleMeta meta;
};

struct Batch {
  torch::Tensor images;    // N x C x H x W
  torch::Tensor heatmaps;  // N x K x h x w
  std::vector<SampleMeta> meta;
  std::int64_t size() const { return images.size(0); }
};

struct PipelineSpec {
  std::int64_t input_width = 256;
  std::int64_t input_height = 256;
  std::int64_t channels = 1;
  std::int64_t stride = 4;  // the model's output stride
  std::int64_t num_landmarks = 0;
  double sigma = 2.0;
  AugmentConfig augment;
  // data.worker_priority = "idle": a BatchLoader's worker threads run at SCHED_IDLE.
  bool idle_workers = false;
  // With no workers: the threads that prepare a batch's samples, between steps (the step's own
  // `threads`, idle then).
  std::int64_t between_steps_threads = 1;
};

// Where prepare's time goes, added to by each call that is given one (`exprun bench --data`).
struct PrepareTimes {
  double read_decode_seconds = 0;     // Dataset::get, or the film read from the cache or memo
  double resize_augment_seconds = 0;  // to the input size, warp, photometric changes, to a tensor
  double target_seconds = 0;          // landmarks mapped, Gaussian heatmaps drawn
  std::int64_t cache_hits = 0;
  std::int64_t cache_misses = 0;
};

class SamplePipeline {
 public:
  explicit SamplePipeline(PipelineSpec spec);

  // Films of datasets that read image files go through `cache` from now on, keyed by `reader`
  // (the dataset plugin's name) too, and films of images a dataset makes are kept in a memo of
  // this pipeline's own (FilmMemo, at most max_memo_bytes). Null turns both off; a copy of the
  // pipeline shares the memo.
  void use_cache(FilmCache* cache, std::string reader,
                 std::int64_t max_memo_bytes = default_film_memo_bytes());
  bool uses_cache() const { return cache_ != nullptr; }
  // Null when the cache is off.
  const FilmMemo* memo() const { return memo_.get(); }

  // Sample `index` of `dataset`, its film from the cache when the dataset names the file and
  // the cache is on (decoded and stored there when missing), else from Dataset::get (and then
  // from the memo when it holds the film of that image).
  PreparedSample prepare(const sdk::Dataset& dataset, std::size_t index, bool augment,
                         std::uint64_t rng_seed, PrepareTimes* times = nullptr) const;
  // rng_seed fixes the augmentation of this sample, so batches do not depend on which worker
  // thread prepared them.
  PreparedSample prepare(const sdk::Sample& sample, bool augment, std::uint64_t rng_seed,
                         PrepareTimes* times = nullptr) const;
  // The first step alone: the decoded image as grey float, area-averaged to the input size.
  InputFilm to_input_size(const torch::Tensor& image) const;
  static Batch collate(std::vector<PreparedSample> samples);
  // A batch of 0 images of this pipeline's shapes.
  Batch empty_batch() const;

  const PipelineSpec& spec() const { return spec_; }
  std::int64_t heatmap_width() const { return spec_.input_width / spec_.stride; }
  std::int64_t heatmap_height() const { return spec_.input_height / spec_.stride; }

 private:
  // Everything after the first step; `sample` needs no image.
  PreparedSample finish(const sdk::Sample& sample, const InputFilm& film, bool augment,
                        std::uint64_t rng_seed, PrepareTimes* times) const;
  void check(const sdk::Sample& sample) const;

  PipelineSpec spec_;
  FilmCache* cache_ = nullptr;
  std::string reader_;
  std::shared_ptr<FilmMemo> memo_;
};

// Mixes several numbers into one well-spread seed (SplitMix64 finaliser).
std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0);

}  // namespace exprun

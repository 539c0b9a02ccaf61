// Turns dataset samples into network inputs and heatmap targets: resize to the input size
// (remembering the map back to original pixels), augment (training only), Gaussian targets.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/dataset.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "data/affine.hpp"

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
};

class SamplePipeline {
 public:
  explicit SamplePipeline(PipelineSpec spec);

  // rng_seed fixes the augmentation of this sample, so batches do not depend on which worker
  // thread prepared them.
  PreparedSample prepare(const sdk::Sample& sample, bool augment, std::uint64_t rng_seed) const;
  static Batch collate(std::vector<PreparedSample> samples);
  // A batch of 0 images of this pipeline's shapes.
  Batch empty_batch() const;

  const PipelineSpec& spec() const { return spec_; }
  std::int64_t heatmap_width() const { return spec_.input_width / spec_.stride; }
  std::int64_t heatmap_height() const { return spec_.input_height / spec_.stride; }

 private:
  PipelineSpec spec_;
};

// Mixes several numbers into one well-spread seed (SplitMix64 finaliser).
std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0);

}  // namespace exprun

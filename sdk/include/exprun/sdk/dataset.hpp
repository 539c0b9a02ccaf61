// Dataset plugins read one on-disk format into samples. Resizing, augmentation and heatmap
// targets belong to the runner's pipeline, so a reader only reports what the files hold.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace exprun::sdk {

struct LandmarkInfo {
  std::string symbol;  // "Go", "N`"; what experiments and reports name a landmark by
  std::string title;   // "Gonion"
};

struct Sample {
  // H x W (grey) or H x W x C (interleaved, like an OpenCV image); uint8, int16 (16-bit
  // data stored as signed), uint16 via int32, or float32 in [0, 1]. The pipeline normalises.
  torch::Tensor image;
  // K x 2 float64 (x, y) in original-image pixels, origin at the top-left pixel's centre.
  torch::Tensor landmarks;
  double mm_per_pixel = 0.1;
  std::string id;
  std::string group;                         // e.g. the X-ray machine; "" when unknown
  std::map<std::string, std::string> extra;  // anything else a reader carries (CVM stage)
};

// A sample without its image, and the file get() decodes that image from (SDK 1.5).
struct SampleFile {
  Sample sample;                     // image left undefined
  std::filesystem::path image_file;  // absolute, or relative to the working directory
};

struct DatasetContext {
  std::string split;       // "train", "valid", "test" as the experiment names them
  std::uint64_t seed = 0;  // the experiment seed, for readers that generate data
};

class Dataset {
 public:
  using PluginInterface = Dataset;  // its kind: PluginKindTraits<Dataset>
  virtual ~Dataset() = default;
  virtual std::size_t size() const = 0;
  // Must be safe to call from several threads at once: the pipeline's workers do. Each call
  // runs with one LibTorch thread on its calling thread.
  virtual Sample get(std::size_t index) const = 0;
  virtual std::vector<LandmarkInfo> landmarks() const = 0;
  // Files a reader skipped and why, for `exprun data`; empty when nothing was skipped.
  virtual std::vector<std::string> skipped() const { return {}; }
  // Readers of image files: everything get(index) returns but the image, with the file the
  // image is decoded from, without decoding it. The runner keeps films decoded and resized in
  // its cache (data.cache) and calls get() only for a film it has not seen, so get(index) must
  // decode exactly this file. Thread-safe like get(). nullopt (the default): the dataset makes
  // its images some other way, and get() is called every time.
  virtual std::optional<SampleFile> get_without_image(std::size_t index) const {
    return std::nullopt;
  }
};

}  // namespace exprun::sdk

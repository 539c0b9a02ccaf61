// The per-format writers behind write_synthetic_tree: each lays out the samples of every split
// the way its release does.
#pragma once

#include <exprun/sdk/dataset.hpp>
#include <opencv2/core.hpp>

#include "synth/film_size.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace exprun::synth {

struct SplitSamples {
  std::string folder;  // the release's folder name for the split
  std::shared_ptr<sdk::Dataset> samples;
};

// A deterministic integer in [lo, hi] from a seed and a few keys.
std::int64_t draw(std::uint64_t seed, const std::string& id, std::uint64_t key, std::int64_t lo,
                  std::int64_t hi);

// A sample's landmarks as integer pixels of `film` (the sample's image resampled), in the order
// of `symbols` (looked up by symbol in `available`, the synthetic dataset's landmark list).
std::vector<std::array<long, 2>> landmarks_by_symbol(
    const sdk::Sample& sample, const std::vector<sdk::LandmarkInfo>& available,
    const std::vector<sdk::LandmarkInfo>& symbols, const Film& film);

// A synthetic sample's 8-bit grey image as an OpenCV image.
cv::Mat grey_image(const sdk::Sample& sample);

// cv::imwrite, throwing std::runtime_error naming the file when it fails.
void write_image(const std::filesystem::path& file, const cv::Mat& image,
                 const std::vector<int>& params = {});

// Writes `text` to `file` (plain write: the whole tree is renamed into place when complete).
void write_text_file(const std::filesystem::path& file, const std::string& text);

void write_aariz(const std::filesystem::path& root, const std::vector<SplitSamples>& splits,
                 std::uint64_t seed, const FilmSize& size);
void write_isbi2015(const std::filesystem::path& root, const std::vector<SplitSamples>& splits,
                    std::uint64_t seed);

}  // namespace exprun::synth

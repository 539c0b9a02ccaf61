// `exprun synth`: the synthetic_ceph cephalograms written to disk as a dataset tree in a real
// release's layout, so that the readers are tested on files and a newcomer can try the
// real-data path without the data. The samples come from the synthetic_ceph plugin through the
// registry.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "plugins/registry.hpp"

namespace exprun {

// --count's bound: 20 times Aariz's 1000 films. The generator keeps each film it made in memory
// (about 0.25 MB at its native size), so a digit too many would exhaust memory, not make a tree.
inline constexpr std::int64_t kMaxSynthCount = 20'000;

struct SynthRequest {
  std::string format;  // "aariz" | "isbi2015"
  std::filesystem::path out;
  std::int64_t count = 0;  // images over all splits; 3 to kMaxSynthCount
  std::uint64_t seed = 0;
  // "native" (the generator's 440 x 540 and 480 x 600), "release" (the release's sizes: 2-5
  // megapixels) or "WxH"; empty: the format's default (default_film_size).
  std::string size;
};

struct SynthSplitCount {
  std::string folder;  // "train", "Test1Data", ...
  std::size_t count = 0;
};

// aariz: native (fast, what tests need); isbi2015: release (its reader assumes 0.1 mm/px).
std::string default_film_size(const std::string& format);

// The formats `synth` writes.
const std::vector<std::string>& synth_formats();

// Writes the tree into a hidden sibling folder and renames it to `out` when complete, so an
// error never leaves a tree that looks whole. `out` must not exist, or be an empty folder.
// Throws std::runtime_error (ConfigError for a bad request).
std::vector<SynthSplitCount> write_synthetic_tree(const Registry& registry,
                                                  const SynthRequest& request);

}  // namespace exprun

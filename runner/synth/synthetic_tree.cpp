#include "synth/synthetic_tree.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include <opencv2/imgcodecs.hpp>

#include "config/config_error.hpp"
#include "synth/synth_formats.hpp"
#include "util/dead_process_leftovers.hpp"
#include "util/text.hpp"

namespace exprun {
namespace fs = std::filesystem;

namespace synth {

std::int64_t draw(std::uint64_t seed, const std::string& id, std::uint64_t key, std::int64_t lo,
                  std::int64_t hi) {
  std::uint64_t h = 1469598103934665603ULL ^ seed;  // FNV-1a over the id, then splitmix
  for (unsigned char c : id) h = (h ^ c) * 1099511628211ULL;
  h += 0x9E3779B97F4A7C15ULL * (key + 1);
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ULL;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBULL;
  h ^= h >> 31;
  return lo + static_cast<std::int64_t>(h % static_cast<std::uint64_t>(hi - lo + 1));
}

std::vector<std::array<long, 2>> landmarks_by_symbol(
    const sdk::Sample& sample, const std::vector<sdk::LandmarkInfo>& available,
    const std::vector<sdk::LandmarkInfo>& symbols, const Film& film) {
  auto acc = sample.landmarks.accessor<double, 2>();
  std::vector<std::array<long, 2>> out;
  for (const auto& wanted : symbols) {
    const auto it = std::find_if(available.begin(), available.end(),
                                 [&](const auto& l) { return l.symbol == wanted.symbol; });
    if (it == available.end()) {
      throw std::runtime_error("datasets/synthetic_ceph has no landmark " + wanted.symbol);
    }
    const auto i = it - available.begin();
    // Pixel centres stay pixel centres under a resize: x' = (x + 0.5) * s - 0.5.
    out.push_back({std::lround((acc[i][0] + 0.5) * film.scale_x - 0.5 + film.offset_x),
                   std::lround((acc[i][1] + 0.5) * film.scale_y - 0.5 + film.offset_y)});
  }
  return out;
}

cv::Mat grey_image(const sdk::Sample& sample) {
  const torch::Tensor t = sample.image.contiguous();
  if (t.scalar_type() != torch::kUInt8 || t.dim() != 2) {
    throw std::runtime_error("datasets/synthetic_ceph handed over an image that is not 8-bit grey");
  }
  return cv::Mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_8U, t.data_ptr())
      .clone();
}

void write_image(const fs::path& file, const cv::Mat& image, const std::vector<int>& params) {
  bool ok = false;
  try {
    ok = cv::imwrite(file.string(), image, params);
  } catch (const cv::Exception& e) {
    throw std::runtime_error("cannot write " + file.string() + ": " + e.what());
  }
  if (!ok) throw std::runtime_error("cannot write " + file.string());
}

void write_text_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace synth

namespace {

struct SplitPlan {
  std::string source_split;  // synthetic_ceph's split name
  std::string folder;
  double share;
};

std::vector<SplitPlan> plan_for(const std::string& format) {
  if (format == "aariz") {  // 700 / 150 / 150 in the release
    return {{"train", "train", 0.70}, {"valid", "valid", 0.15}, {"test", "test", 0.15}};
  }
  // 150 / 150 / 100 in the release
  return {
      {"train", "TrainingData", 0.375}, {"valid", "Test1Data", 0.375}, {"test", "Test2Data", 0.25}};
}

}  // namespace

std::string default_film_size(const std::string& format) {
  return format == "isbi2015" ? "release" : "native";
}

namespace {

// --out as the folder it names: "DIR/" and "." have no last name part to stage beside, and a
// symbolic link to an empty folder is filled where it points, not replaced by a folder.
fs::path resolved_out(const fs::path& given) {
  fs::path out = fs::absolute(given).lexically_normal();
  if (out.filename().empty() && out.has_parent_path()) out = out.parent_path();
  std::error_code ec;
  if (fs::is_symlink(out, ec)) {
    const fs::path target = fs::canonical(out, ec);
    if (!ec) out = target;
  }
  if (out.filename().empty() || out == out.root_path()) {
    throw ConfigError("--out " + given.string() + ": expected a folder to create, not the root");
  }
  return out;
}

}  // namespace

const std::vector<std::string>& synth_formats() {
  static const std::vector<std::string> formats = {"aariz", "isbi2015"};
  return formats;
}

std::vector<SynthSplitCount> write_synthetic_tree(const Registry& registry,
                                                  const SynthRequest& request) {
  if (std::find(synth_formats().begin(), synth_formats().end(), request.format) ==
      synth_formats().end()) {
    throw ConfigError("--format " + request.format + ": expected " + join(synth_formats(), " or ") +
                      did_you_mean(request.format, synth_formats()));
  }
  if (request.count < 3 || request.count > kMaxSynthCount) {
    throw ConfigError("--count " + std::to_string(request.count) + ": expected 3 (one image per " +
                      "split) to " + std::to_string(kMaxSynthCount));
  }
  if (request.out.empty()) throw ConfigError("--out: a folder to write the tree into is needed");
  const synth::FilmSize size = synth::parse_film_size(
      request.size.empty() ? default_film_size(request.format) : request.size);
  if (request.format == "isbi2015" && size.kind != synth::FilmSize::Kind::Release) {
    throw ConfigError("--size " + request.size +
                      ": isbi2015 films are always written at the release's 0.1 mm per pixel "
                      "(about 1935 x 2400), which its reader assumes; --size applies to aariz");
  }
  const fs::path out = resolved_out(request.out);
  std::error_code ec;
  // An existing empty folder is filled where it is, staged inside it, so that it stays the same
  // folder: a shell standing in it, its owner and mode, a mount point (where a rename from beside
  // it would cross file systems). A new folder is staged beside it and renamed into place.
  const bool fill_existing = fs::is_directory(out, ec);
  const fs::path staging_parent = fill_existing ? out : out.parent_path();
  const std::string staging_prefix =
      fill_existing ? std::string(".synth.partial-") : "." + out.filename().string() + ".partial-";
  // A staging tree that a signal left behind inside the folder does not make it non-empty.
  if (fill_existing) remove_dead_process_leftovers(out, staging_prefix);
  if (fs::is_symlink(out, ec)) {
    throw ConfigError("--out " + request.out.string() +
                      ": a symbolic link to nothing; expected a folder to create or an empty one");
  }
  if (fs::exists(out, ec) && !(fill_existing && fs::is_empty(out, ec))) {
    throw ConfigError("--out " + request.out.string() +
                      ": already exists and is not an empty folder; synth writes a new tree");
  }

  // Split the count by the release's proportions, every split at least one image (for 3 or
  // more images the shares leave the training split at least one too).
  std::vector<SplitPlan> plan = plan_for(request.format);
  std::vector<SynthSplitCount> counts;
  std::size_t assigned = 0;
  for (std::size_t i = 1; i < plan.size(); ++i) {
    const auto n = std::max<std::size_t>(
        1,
        static_cast<std::size_t>(std::lround(plan[i].share * static_cast<double>(request.count))));
    counts.push_back({plan[i].folder, n});
    assigned += n;
  }
  counts.insert(
      counts.begin(),
      SynthSplitCount{plan[0].folder, static_cast<std::size_t>(request.count) - assigned});

  const LoadedPlugin& source = registry.find(sdk::PluginKind::Dataset, "synthetic_ceph");
  std::map<std::string, sdk::ParamValue> given = {
      {"train_count", static_cast<std::int64_t>(counts[0].count)},
      {"valid_count", static_cast<std::int64_t>(counts[1].count)},
      {"test_count", static_cast<std::int64_t>(counts[2].count)}};
  const sdk::Params params = sdk::Params::resolve(source.schema, given);
  std::vector<synth::SplitSamples> splits;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    splits.push_back(
        {plan[i].folder,
         registry.make<sdk::Dataset>("synthetic_ceph", params,
                                     sdk::DatasetContext{plan[i].source_split, request.seed})});
  }

  // Written under a hidden name and moved into place when complete. Trees of earlier synths that
  // a signal ended are removed first: their names hold a pid, which a later synth would not reuse.
  const fs::path staging = staging_parent / (staging_prefix + std::to_string(::getpid()));
  try {
    fs::create_directories(staging_parent);
    remove_dead_process_leftovers(staging_parent, staging_prefix);
    fs::remove_all(staging);
    fs::create_directories(staging);
  } catch (const fs::filesystem_error& e) {
    throw std::runtime_error(
        "--out " + request.out.string() + ": cannot write " +
        (fill_existing ? "in it" : "beside it, in " + staging_parent.string()) + ": " +
        e.code().message());
  }
  std::vector<fs::path> moved;  // into an existing folder, taken back if a later move fails
  try {
    if (request.format == "aariz") {
      synth::write_aariz(staging, splits, request.seed, size);
    } else {
      synth::write_isbi2015(staging, splits, request.seed);
    }
    if (fill_existing) {
      // Each top-level entry in one rename; a tree has a handful. No stop is polled in between.
      for (const auto& entry : fs::directory_iterator(staging)) {
        const fs::path target = out / entry.path().filename();
        fs::rename(entry.path(), target);
        moved.push_back(target);
      }
      fs::remove(staging);
    } else {
      fs::rename(staging, out);
    }
  } catch (...) {
    for (const auto& target : moved) fs::remove_all(target, ec);
    fs::remove_all(staging, ec);
    throw;
  }
  return counts;
}

}  // namespace exprun

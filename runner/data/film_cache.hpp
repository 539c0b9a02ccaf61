// The decoded-film cache: each film of a dataset that reads image files, decoded and resized
// to the stage's input size once, then read back as a raw float array by later epochs, stages
// and runs. Decoding a 2-5 megapixel PNG or JPEG costs tens of milliseconds; reading its
// input-size array back costs well under one. What is read back is the exact float array the
// pipeline would have made, so results do not depend on the cache (docs/experiment-file.md,
// data.cache).
#pragma once

#include <opencv2/core.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace exprun {

// A film at the pipeline's input size: grey, float32 in [0, 1].
struct InputFilm {
  cv::Mat image;  // input_height x input_width, CV_32F
  std::int64_t original_width = 0;
  std::int64_t original_height = 0;
};

struct FilmCacheSettings {
  std::filesystem::path dir;   // films are kept in dir/films/
  std::int64_t max_bytes = 0;  // the oldest films are removed beyond this
};

// EXPRUN_CACHE_DIR (default $XDG_CACHE_HOME/exprun, else ~/.cache/exprun) and
// EXPRUN_CACHE_SIZE (default 20GiB; sizes as memory.budget takes them). Throws ConfigError
// naming the variable when one is malformed, or when there is no home to default to.
FilmCacheSettings film_cache_settings_from_environment();

class FilmCache {
 public:
  explicit FilmCache(FilmCacheSettings settings);

  // The key of `file`'s film at width x height as `reader` decodes it: the file's content
  // hash (hashed once per process, and again only when its size or modification time
  // changes), the size, and what decides the pixels besides the file (the reader, OpenCV's
  // version, the cache format).
  std::string key(const std::filesystem::path& file, const std::string& reader, std::int64_t width,
                  std::int64_t height);

  // The film stored under `key`, if there is one, whole and of width x height (the key's size).
  // Anything else there (damaged, cut short, not a regular file) is removed.
  std::optional<InputFilm> find(const std::string& key, std::int64_t width, std::int64_t height);
  // Written beside its place and renamed there, so readers in other threads and processes see
  // a whole film or none. Failures (a full disk, no permission) are reported once on stderr
  // and training goes on without the film cached.
  void store(const std::string& key, const InputFilm& film);

  const FilmCacheSettings& settings() const { return settings_; }
  std::filesystem::path films_dir() const;
  // Films removed to stay within max_bytes, by this process.
  std::int64_t evicted() const { return evicted_.load(); }

 private:
  std::filesystem::path path_of(const std::string& key) const;
  void keep_within_bound(bool stored);
  void trim();
  void warn_once(const std::string& message);

  struct KnownFile {
    std::uintmax_t size = 0;
    std::int64_t modified_ns = 0;
    std::uint64_t inode = 0;
    std::string hash;
  };

  FilmCacheSettings settings_;
  std::mutex mutex_;
  std::unordered_map<std::string, KnownFile> hashes_;
  std::int64_t bytes_estimate_ = -1;  // -1: not counted yet
  std::chrono::steady_clock::time_point counted_at_;
  std::atomic<std::int64_t> evicted_{0};
  std::atomic<bool> warned_{false};
};

// One cache per process, made on first use from the environment.
FilmCache& process_film_cache();

}  // namespace exprun

// The decoded-film cache: films read back to the bit, keys that follow the file's content and
// the input size, damaged entries (header or pixels) made again, the size bound, the environment's
// settings, and a pipeline whose batches are the same with the cache off, cold and warm, decoding
// nothing warm.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "config/config_error.hpp"
#include "data/batch_loader.hpp"
#include "data/film_cache.hpp"
#include "fake_dataset.hpp"
#include "fake_pipeline_spec.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;

InputFilm random_film(int width, int height, int seed) {
  InputFilm film;
  film.image.create(height, width, CV_32F);
  cv::RNG rng(static_cast<std::uint64_t>(seed));
  rng.fill(film.image, cv::RNG::UNIFORM, 0.0, 1.0);
  film.original_width = width * 7;
  film.original_height = height * 7;
  return film;
}

std::size_t entries_in(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) ++n;
  return n;
}

// FakeDataset's films as PNG files, decoded by get() the way a reader of files does.
class PngDataset : public sdk::Dataset {
 public:
  PngDataset(const fs::path& dir, std::size_t count) : fake_(count, 120, 150) {
    for (std::size_t i = 0; i < count; ++i) {
      const sdk::Sample s = fake_.get(i);
      const cv::Mat grey(static_cast<int>(s.image.size(0)), static_cast<int>(s.image.size(1)),
                         CV_8U, s.image.data_ptr());
      files_.push_back(dir / (s.id + ".png"));
      cv::imwrite(files_.back().string(), grey);
    }
  }
  std::size_t size() const override { return files_.size(); }
  std::vector<sdk::LandmarkInfo> landmarks() const override { return fake_.landmarks(); }
  sdk::Sample get(std::size_t index) const override {
    ++decoded;
    sdk::Sample s = without_image(index);
    cv::Mat grey = cv::imread(files_.at(index).string(), cv::IMREAD_UNCHANGED);
    s.image = torch::from_blob(grey.data, {grey.rows, grey.cols}, torch::kUInt8).clone();
    return s;
  }
  std::optional<sdk::SampleFile> get_without_image(std::size_t index) const override {
    return sdk::SampleFile{without_image(index), files_.at(index)};
  }
  mutable std::atomic<int> decoded{0};

 private:
  sdk::Sample without_image(std::size_t index) const {
    sdk::Sample s = fake_.get(index);
    s.image = torch::Tensor();
    return s;
  }
  test::FakeDataset fake_;
  std::vector<fs::path> files_;
};

class FilmCacheTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-film-cache"};
  FilmCache cache_{FilmCacheSettings{dir_ / "cache", 1LL << 30}};
};

TEST_F(FilmCacheTest, AStoredFilmComesBackToTheBit) {
  const InputFilm film = random_film(64, 80, 1);
  EXPECT_FALSE(cache_.find("0123abcd-64x80-x", 64, 80).has_value());
  cache_.store("0123abcd-64x80-x", film);
  const auto back = cache_.find("0123abcd-64x80-x", 64, 80);
  ASSERT_TRUE(back.has_value());
  ASSERT_EQ(back->image.type(), CV_32F);
  ASSERT_EQ(back->image.size(), film.image.size());
  EXPECT_EQ(std::memcmp(back->image.data, film.image.data, 64 * 80 * sizeof(float)), 0);
  EXPECT_EQ(back->original_width, 64 * 7);
  EXPECT_EQ(back->original_height, 80 * 7);
  // One file, no temporary left beside it.
  EXPECT_EQ(entries_in(cache_.films_dir()), 1u);
}

TEST_F(FilmCacheTest, KeysFollowTheContentTheSizeAndTheReader) {
  const fs::path a = dir_ / "a.png", b = dir_ / "b.png";
  test::write_text(a, "the same bytes");
  test::write_text(b, "the same bytes");
  const std::string key = cache_.key(a, "aariz", 64, 80);
  EXPECT_EQ(cache_.key(b, "aariz", 64, 80), key);  // content, not path
  EXPECT_NE(cache_.key(a, "aariz", 80, 64), key);
  EXPECT_NE(cache_.key(a, "isbi2015", 64, 80), key);
  test::write_text(a, "other bytes, same length? no");
  EXPECT_NE(cache_.key(a, "aariz", 64, 80), key);
  test::write_text(a, "the same bytes");  // rewritten with the old content: found again
  EXPECT_EQ(cache_.key(a, "aariz", 64, 80), key);
  EXPECT_THROW(cache_.key(dir_ / "missing.png", "aariz", 64, 80), std::runtime_error);
}

TEST_F(FilmCacheTest, ADamagedFilmIsAMissAndIsRemoved) {
  cache_.store("aa11-64x80-x", random_film(64, 80, 2));
  cache_.store("bb22-64x80-x", random_film(64, 80, 3));
  fs::path truncated, flipped;
  for (const auto& e : fs::recursive_directory_iterator(cache_.films_dir())) {
    if (e.path().filename().string().rfind("aa11", 0) == 0) truncated = e.path();
    if (e.path().filename().string().rfind("bb22", 0) == 0) flipped = e.path();
  }
  ASSERT_FALSE(truncated.empty());
  fs::resize_file(truncated, fs::file_size(truncated) - 10);
  {
    std::fstream f(flipped, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x7f');
  }
  EXPECT_FALSE(cache_.find("aa11-64x80-x", 64, 80).has_value());
  EXPECT_FALSE(cache_.find("bb22-64x80-x", 64, 80).has_value());
  EXPECT_FALSE(fs::exists(truncated));
  EXPECT_FALSE(fs::exists(flipped));
}

// The one file under `dir` whose name starts with `prefix`.
fs::path film_file(const fs::path& dir, const std::string& prefix) {
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) return e.path();
  return {};
}

// Overwrites 8 bytes of `file` at `offset` with `value` (the header's fields are 64-bit).
void put_int64(const fs::path& file, std::streamoff offset, std::int64_t value) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  f.write(reinterpret_cast<const char*>(&value), sizeof value);
}

// The header is checksummed with the pixels: a changed original size, which maps landmarks to
// millimetres, is a miss like a changed pixel; so are sizes that are not the key's, checked
// (with the file's length) before anything is allocated from them.
TEST_F(FilmCacheTest, AChangedHeaderIsAMissAndIsRemoved) {
  // Header: magic 8, version 4, channels 4, width 8 @16, height 8 @24, original width 8 @32.
  cache_.store("cc33-64x80-x", random_film(64, 80, 4));
  cache_.store("dd44-64x80-x", random_film(64, 80, 5));
  cache_.store("ee55-64x80-x", random_film(64, 80, 6));
  const fs::path original = film_file(cache_.films_dir(), "cc33");
  const fs::path swapped = film_file(cache_.films_dir(), "dd44");
  const fs::path huge = film_file(cache_.films_dir(), "ee55");
  put_int64(original, 32, 64 * 7 + 1);
  put_int64(swapped, 16, 80);  // 80 x 64: the same number of pixels
  put_int64(swapped, 24, 64);
  put_int64(huge, 16, 65536);
  put_int64(huge, 24, 65536);
  EXPECT_FALSE(cache_.find("cc33-64x80-x", 64, 80).has_value());
  EXPECT_FALSE(cache_.find("dd44-64x80-x", 64, 80).has_value());
  EXPECT_FALSE(cache_.find("ee55-64x80-x", 64, 80).has_value());
  EXPECT_FALSE(fs::exists(original));
  EXPECT_FALSE(fs::exists(swapped));
  EXPECT_FALSE(fs::exists(huge));
  // A whole film asked for at another size is not that film either.
  cache_.store("ff66-64x80-x", random_film(64, 80, 7));
  EXPECT_FALSE(cache_.find("ff66-64x80-x", 80, 64).has_value());
}

// Opening a FIFO for reading would wait for a writer forever.
TEST_F(FilmCacheTest, WhatIsNotARegularFileUnderAFilmsNameIsRemoved) {
  cache_.store("ab12-64x80-x", random_film(64, 80, 8));
  const fs::path path = film_file(cache_.films_dir(), "ab12");
  fs::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  EXPECT_FALSE(cache_.find("ab12-64x80-x", 64, 80).has_value());
  EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
  fs::create_directories(path / "inside");
  EXPECT_FALSE(cache_.find("ab12-64x80-x", 64, 80).has_value());
  EXPECT_FALSE(fs::exists(path));
  cache_.store("ab12-64x80-x", random_film(64, 80, 8));  // and the place takes a film again
  EXPECT_TRUE(cache_.find("ab12-64x80-x", 64, 80).has_value());
}

// A bound lowered under a full cache applies at the next process's first read; a crashed
// writer's temporary film goes then, a running process's stays (it is still being written).
TEST_F(FilmCacheTest, TheBoundAppliesAtFirstUseAndAbandonedTemporariesGo) {
  const std::int64_t film_bytes = 64 * 80 * 4 + 56;
  const fs::path dir = dir_ / "shared";
  {
    FilmCache large(FilmCacheSettings{dir, 1LL << 30});
    for (int i = 0; i < 6; ++i)
      large.store("g" + std::to_string(i) + "-64x80-x", random_film(64, 80, i));
  }
  const fs::path shard = film_file(dir / "films", "g0").parent_path();
  const pid_t ended = [] {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    int status = 0;
    ::waitpid(child, &status, 0);
    return child;
  }();
  const fs::path abandoned = shard / ("g9-64x80-x.film.tmp-" + std::to_string(ended) + "-1");
  const fs::path writing = shard / ("g8-64x80-x.film.tmp-" + std::to_string(::getpid()) + "-1");
  test::write_text(abandoned, "half a film");
  test::write_text(writing, "half a film");
  FilmCache small(FilmCacheSettings{dir, film_bytes * 3});
  small.find("g5-64x80-x", 64, 80);
  std::int64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir / "films"))
    if (e.is_regular_file()) total += static_cast<std::int64_t>(e.file_size());
  EXPECT_LE(total, film_bytes * 3);
  EXPECT_GE(small.evicted(), 3);
  EXPECT_FALSE(fs::exists(abandoned));
  EXPECT_TRUE(fs::exists(writing));
}

TEST_F(FilmCacheTest, TheOldestFilmsGoBeyondTheBound) {
  const std::int64_t film_bytes = 64 * 80 * 4 + 56;
  FilmCache small(FilmCacheSettings{dir_ / "small", film_bytes * 3 + film_bytes / 2});
  for (int i = 0; i < 5; ++i) {
    small.store("f" + std::to_string(i) + "-64x80-x", random_film(64, 80, i));
    // Distinct use times in the past, increasing, so the order of eviction is known: a film
    // just written is the newest.
    fs::path newest;
    for (const auto& e : fs::recursive_directory_iterator(small.films_dir()))
      if (e.path().filename().string().rfind("f" + std::to_string(i), 0) == 0) newest = e.path();
    fs::last_write_time(newest,
                        fs::file_time_type::clock::now() - std::chrono::seconds(1000 - 100 * i));
  }
  std::int64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(small.films_dir()))
    if (e.is_regular_file()) total += static_cast<std::int64_t>(e.file_size());
  EXPECT_LE(total, small.settings().max_bytes);
  EXPECT_GE(small.evicted(), 2);
  EXPECT_FALSE(small.find("f0-64x80-x", 64, 80).has_value());
  EXPECT_TRUE(small.find("f4-64x80-x", 64, 80).has_value());
}

// Restores one environment variable when it goes.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~ScopedEnv() { old_ ? ::setenv(name_, old_->c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(FilmCacheSettings, ComeFromTheEnvironment) {
  {
    ScopedEnv dir("EXPRUN_CACHE_DIR", "/tmp/films-here");
    ScopedEnv size("EXPRUN_CACHE_SIZE", "512MiB");
    const auto s = film_cache_settings_from_environment();
    EXPECT_EQ(s.dir, fs::path("/tmp/films-here"));
    EXPECT_EQ(s.max_bytes, 512LL << 20);
  }
  {
    ScopedEnv dir("EXPRUN_CACHE_DIR", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", "/tmp/xdg");
    ScopedEnv size("EXPRUN_CACHE_SIZE", nullptr);
    const auto s = film_cache_settings_from_environment();
    EXPECT_EQ(s.dir, fs::path("/tmp/xdg/exprun"));
    EXPECT_EQ(s.max_bytes, 20LL << 30);
  }
  {
    ScopedEnv dir("EXPRUN_CACHE_DIR", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
    ScopedEnv home("HOME", "/home/someone");
    EXPECT_EQ(film_cache_settings_from_environment().dir, fs::path("/home/someone/.cache/exprun"));
  }
  ScopedEnv size("EXPRUN_CACHE_SIZE", "lots");
  try {
    film_cache_settings_from_environment();
    ADD_FAILURE() << "a malformed size was accepted";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), "EXPRUN_CACHE_SIZE=lots: expected a size such as 20GiB");
  }
}

PipelineSpec spec() {
  PipelineSpec s = test::fake_pipeline_spec();
  s.augment.clahe = 0.5;
  return s;
}

std::vector<Batch> epoch(const std::shared_ptr<PngDataset>& data, const SamplePipeline& pipeline,
                         std::int64_t workers) {
  std::vector<std::size_t> order = shuffled_order(data->size(), 9);
  BatchLoader loader(data, pipeline, order, 3, workers, true, 4);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

TEST_F(FilmCacheTest, BatchesAreTheSameOffColdAndWarmAndWarmDecodesNothing) {
  fs::create_directories(dir_ / "films");
  const auto data = std::make_shared<PngDataset>(dir_ / "films", 7);
  SamplePipeline plain(spec());
  SamplePipeline cached(spec());
  cached.use_cache(&cache_, "png");
  const auto off = epoch(data, plain, 2);
  data->decoded = 0;
  const auto cold = epoch(data, cached, 2);
  EXPECT_EQ(data->decoded.load(), 7);
  data->decoded = 0;
  const auto warm = epoch(data, cached, 0);
  EXPECT_EQ(data->decoded.load(), 0);
  ASSERT_EQ(off.size(), 3u);
  for (const auto* other : {&cold, &warm}) {
    ASSERT_EQ(other->size(), off.size());
    for (std::size_t b = 0; b < off.size(); ++b) {
      EXPECT_TRUE(torch::equal((*other)[b].images, off[b].images)) << b;
      EXPECT_TRUE(torch::equal((*other)[b].heatmaps, off[b].heatmaps)) << b;
      for (std::size_t i = 0; i < off[b].meta.size(); ++i) {
        EXPECT_EQ((*other)[b].meta[i].original_width, 120);
        EXPECT_EQ((*other)[b].meta[i].input_to_original.m, off[b].meta[i].input_to_original.m);
      }
    }
  }
}

}  // namespace
}  // namespace exprun

// The decoded-film cache through real runs on a synthetic Aariz tree: a run with data.cache =
// false, one that fills the cache and one that reads it end with the same losses and metrics
// to the bit, and the cache holds one film per image read (docs/experiment-file.md, data.cache);
// so do runs on generated images with and without the film memo.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The test's experiment with `data`, the lines of its [defaults.data] table.
std::string experiment_with(const std::string& data) {
  return R"(# exprun test: the film cache
[experiment]
name = "cached"
seed = 11
threads = 1

[defaults]
device = "cpu"

[defaults.data]
)" + data +
         R"(image_size = [64, 80]
sigma = 1.5
workers = 2
augment = { clahe = 0.5, gamma = 0.2 }

[defaults.model]
plugin = "hrnet"
width = 4
num_modules = [1, 1, 1]
num_blocks = 1
stem_blocks = 1

[defaults.loss]
plugin = "mse"

[defaults.memory]
effective_batch = 3
micro_batch = 3

[defaults.optimizer]
name = "adam"
lr = 2e-3

[[stage]]
name = "train"
epochs = 2
)";
}

std::string experiment(const fs::path& tree) {
  return experiment_with("plugin = \"aariz\"\nroot = " + test::toml_quote(tree.string()) + "\n");
}

std::size_t films_in(const fs::path& dir) {
  std::size_t n = 0;
  if (!fs::exists(dir)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".film") ++n;
  return n;
}

class FilmCacheRun : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto r = test::run_exprun(
        {"synth", "--format", "aariz", "--out", tree_.string(), "--count", "10", "--seed", "4"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    test::write_text(file_, experiment(tree_));
  }

  // The stage's report after a run into results/<name>.
  json run(const std::string& name, std::vector<std::string> extra) {
    test::ProcessOptions options;
    options.env["EXPRUN_CACHE_DIR"] = cache_.string();
    options.timeout_s = 300;
    std::vector<std::string> args = {"run", file_.string(), "--output",
                                     (dir_ / "results" / name).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = test::run_exprun(args, options);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    test::expect_no_crash(r);
    fs::path run_dir;
    for (const auto& e : fs::directory_iterator(dir_ / "results" / name / "cached"))
      run_dir = e.path();
    return json::parse(test::read_text(run_dir / "report.json"))["stages"][0];
  }

  test::TempDir dir_{"exprun-film-cache-run"};
  fs::path tree_ = dir_ / "aariz";
  fs::path cache_ = dir_ / "cache";
  fs::path file_ = dir_ / "cached.toml";
};

TEST_F(FilmCacheRun, MetricsAreTheSameToTheBitWithoutTheCacheColdAndWarm) {
  const json off = run("off", {"--set", "data.cache=false"});
  EXPECT_EQ(films_in(cache_), 0u);
  const json cold = run("cold", {});
  // train 6 + valid 2 films, at the one input size.
  EXPECT_EQ(films_in(cache_ / "films"), 8u);
  const json warm = run("warm", {});
  EXPECT_EQ(films_in(cache_ / "films"), 8u);
  for (const auto* key : {"best", "final", "mean_shape_baseline", "best_epoch"}) {
    EXPECT_EQ(cold[key], off[key]) << key;
    EXPECT_EQ(warm[key], off[key]) << key;
  }
  ASSERT_EQ(off["history"].size(), 2u);
  for (std::size_t e = 0; e < 2; ++e) {
    for (const auto* key : {"train_loss", "val_mre_mm", "val_sd_mm", "val_sdr"}) {
      EXPECT_EQ(cold["history"][e][key], off["history"][e][key]) << key;
      EXPECT_EQ(warm["history"][e][key], off["history"][e][key]) << key;
    }
  }
  // Another input size is another film.
  run("wider", {"--set", "data.image_size=[80,96]"});
  EXPECT_EQ(films_in(cache_ / "films"), 16u);
}

// A dataset that makes its images (synthetic_ceph) has no files: its films are kept in memory
// instead (the film memo), and again the metrics are those of a run without it, to the bit.
TEST_F(FilmCacheRun, FilmMemoOfMadeImagesChangesNoBit) {
  test::write_text(file_, experiment_with("plugin = \"synthetic_ceph\"\ntrain_count = 6\n"
                                          "valid_count = 2\n"));
  const json off = run("made-off", {"--set", "data.cache=false"});
  const json on = run("made-on", {});
  EXPECT_EQ(films_in(cache_), 0u);  // nothing on disk: the memo is in memory
  for (const auto* key : {"best", "final", "mean_shape_baseline", "best_epoch"})
    EXPECT_EQ(on[key], off[key]) << key;
  ASSERT_EQ(off["history"].size(), 2u);
  for (std::size_t e = 0; e < 2; ++e) {
    for (const auto* key : {"train_loss", "val_mre_mm", "val_sd_mm", "val_sdr"})
      EXPECT_EQ(on["history"][e][key], off["history"][e][key]) << key << ", epoch " << e + 1;
  }
}

// A malformed EXPRUN_CACHE_SIZE is a configuration error before anything trains, even when only
// a later stage uses the cache (stages are built one after the other).
TEST_F(FilmCacheRun, AMalformedCacheSizeStopsTheRunBeforeItStarts) {
  test::write_text(file_, experiment(tree_) +
                              "data.cache = false\n\n[[stage]]\nname = \"later\"\n"
                              "epochs = 1\ndata.cache = true\n");
  test::ProcessOptions options;
  options.env["EXPRUN_CACHE_DIR"] = cache_.string();
  options.env["EXPRUN_CACHE_SIZE"] = "20GiBs";
  const auto r = test::run_exprun(
      {"run", file_.string(), "--output", (dir_ / "results" / "bad-size").string()}, options);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "EXPRUN_CACHE_SIZE=20GiBs: expected a size such as 20GiB");
  EXPECT_FALSE(fs::exists(dir_ / "results" / "bad-size"));
}

// `exprun bench --data` with a cache that cannot store the films (its folder a file): the pass
// after the filling one still decodes, so the cache is reported as not measured, not as warm.
TEST_F(FilmCacheRun, BenchDataSaysWhenTheCacheHeldNoFilms) {
  test::write_text(dir_ / "not-a-folder", "x");
  test::ProcessOptions options;
  options.env["EXPRUN_CACHE_DIR"] = (dir_ / "not-a-folder").string();
  options.timeout_s = 300;
  const fs::path out = dir_ / "bench.json";
  const auto r = test::run_exprun({"bench", file_.string(), "--data", "--no-model", "--workers",
                                   "0", "--images", "4", "--rounds", "1", "--json", out.string()},
                                  options);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_CONTAINS(r.err, "exprun: warning: cannot write to the decoded-film cache");
  EXPECT_CONTAINS(r.out,
                  "film cache: not measured: 4 of 4 images found no film in the "
                  "decoded-film cache");
  const json data = json::parse(test::read_text(out));
  EXPECT_EQ(data["cache_measured"], false);
  EXPECT_TRUE(data["cache_kind"].is_null());
  EXPECT_CONTAINS(data["cache_note"].get<std::string>(), "4 of 4 images found no film");
  EXPECT_TRUE(data["workers"][0]["cached_images_per_second"].is_null());
}

}  // namespace
}  // namespace exprun

// The film memo: films of images a dataset makes, kept in memory by the image's content. A
// film found there is the one the pipeline would make, and an image changed in place is
// another film (docs/experiment-file.md, data.cache).
#include <gtest/gtest.h>

#include "data/film_memo.hpp"
#include "data/sample_pipeline.hpp"
#include "fake_dataset.hpp"
#include "fake_pipeline_spec.hpp"

namespace exprun {
namespace {

InputFilm film_of_size(int rows, int cols) {
  InputFilm film;
  film.image = cv::Mat(rows, cols, CV_32F, cv::Scalar(0.5));
  film.original_width = cols * 2;
  film.original_height = rows * 2;
  return film;
}

TEST(FilmMemo, KeyFollowsContentTypeAndShape) {
  const auto image = torch::arange(12, torch::kUInt8).view({3, 4});
  const auto same = image.clone();
  ASSERT_TRUE(FilmMemo::key_of(image).has_value());
  EXPECT_EQ(*FilmMemo::key_of(image), *FilmMemo::key_of(same));
  // The same bytes in another shape or type are another image.
  EXPECT_FALSE(*FilmMemo::key_of(image) == *FilmMemo::key_of(image.view({4, 3})));
  EXPECT_FALSE(*FilmMemo::key_of(image) == *FilmMemo::key_of(image.view({3, 4, 1})));
  EXPECT_FALSE(*FilmMemo::key_of(image) == *FilmMemo::key_of(image.view(torch::kInt8)));
  // One buffer refilled in place is another image.
  const auto before = *FilmMemo::key_of(image);
  image[1][2] = 200;
  EXPECT_FALSE(before == *FilmMemo::key_of(image));
  // What the memo does not keep: a view that is not contiguous, a 1-D or missing tensor.
  EXPECT_FALSE(FilmMemo::key_of(image.t()).has_value());
  EXPECT_FALSE(FilmMemo::key_of(torch::zeros({5})).has_value());
  EXPECT_FALSE(FilmMemo::key_of(torch::Tensor()).has_value());
}

TEST(FilmMemo, KeepsFilmsUntilTheyFillItsSize) {
  const auto one = film_of_size(4, 8);  // 128 bytes
  FilmMemo memo(300);
  const auto a = *FilmMemo::key_of(torch::zeros({2, 2}));
  const auto b = *FilmMemo::key_of(torch::ones({2, 2}));
  const auto c = *FilmMemo::key_of(torch::full({2, 2}, 2.0));
  EXPECT_FALSE(memo.find(a).has_value());
  memo.store(a, one);
  memo.store(a, film_of_size(4, 8));  // already kept: not counted twice
  EXPECT_EQ(memo.bytes(), 128);
  memo.store(b, one);
  EXPECT_EQ(memo.bytes(), 256);
  memo.store(c, one);  // would pass 300 bytes
  EXPECT_EQ(memo.bytes(), 256);
  EXPECT_FALSE(memo.find(c).has_value());
  const auto found = memo.find(a);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->original_width, 16);
  EXPECT_EQ(found->image.data, one.image.data);
  EXPECT_GT(default_film_memo_bytes(), 0);
  EXPECT_LE(default_film_memo_bytes(), 2LL << 30);
}

PipelineSpec spec() { return test::fake_pipeline_spec(); }

void expect_same(const PreparedSample& a, const PreparedSample& b) {
  EXPECT_TRUE(torch::equal(a.image, b.image));
  EXPECT_TRUE(torch::equal(a.heatmaps, b.heatmaps));
  EXPECT_EQ(a.meta.original_width, b.meta.original_width);
  EXPECT_EQ(a.meta.original_height, b.meta.original_height);
}

TEST(FilmMemo, PipelineGivesTheSameSamplesWithAndWithoutIt) {
  const test::FakeDataset data(4, 300, 360);
  const SamplePipeline plain(spec());
  FilmCache unused({std::filesystem::temp_directory_path() / "exprun-film-memo-unused", 0});
  SamplePipeline memoised(spec());
  memoised.use_cache(&unused, "fake");
  ASSERT_NE(memoised.memo(), nullptr);
  PrepareTimes times;
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t i = 0; i < data.size(); ++i) {
      expect_same(memoised.prepare(data, i, true, 7 + i, &times),
                  plain.prepare(data, i, true, 7 + i));
    }
  }
  // The fake dataset names no files: its films went to the memo once and were found there.
  EXPECT_EQ(times.cache_misses, 4);
  EXPECT_EQ(times.cache_hits, 4);
  EXPECT_EQ(memoised.memo()->bytes(), 4 * 64 * 80 * 4);

  // A sample whose image was refilled in place gets its own film, not the one kept before.
  sdk::Sample sample = data.get(0);
  memoised.prepare(sample, false, 0);
  sample.image.fill_(17);
  expect_same(memoised.prepare(sample, false, 0), plain.prepare(sample, false, 0));

  // Turning the cache off turns the memo off.
  memoised.use_cache(nullptr, "");
  EXPECT_EQ(memoised.memo(), nullptr);
}

}  // namespace
}  // namespace exprun

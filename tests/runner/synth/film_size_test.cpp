// The sizes `exprun synth --size` writes films at: parsing, and where a film's pixels and
// landmarks go when it is resampled.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <cmath>

#include "config/config_error.hpp"
#include "synth/film_size.hpp"
#include "test_support.hpp"

namespace exprun::synth {
namespace {

// A grey film with one bright pixel at (x, y), the way a landmark marks its spot.
cv::Mat film_with_spot(int width, int height, int x, int y) {
  cv::Mat film(height, width, CV_8U, cv::Scalar(40));
  film.at<std::uint8_t>(y, x) = 255;
  return film;
}

cv::Point brightest(const cv::Mat& image) {
  cv::Point at;
  cv::minMaxLoc(image, nullptr, nullptr, nullptr, &at);
  return at;
}

TEST(FilmSize, ParsesNativeReleaseAndFixedSizes) {
  EXPECT_EQ(parse_film_size("native").kind, FilmSize::Kind::Native);
  EXPECT_EQ(parse_film_size("release").kind, FilmSize::Kind::Release);
  const FilmSize fixed = parse_film_size("1935x2400");
  EXPECT_EQ(fixed.kind, FilmSize::Kind::Fixed);
  EXPECT_EQ(fixed.width, 1935);
  EXPECT_EQ(fixed.height, 2400);
  EXPECT_EQ(describe(fixed), "1935x2400");
  for (const std::string bad :
       {"", "big", "1935", "1935x", "x2400", "1935X2400", "19.5x24", "-1x20", "15x2400",
        "1935x16385", "1935x2400x3", "8193x8193", "16384x16384"}) {
    try {
      parse_film_size(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_CONTAINS(e.what(), "--size " + bad + ": ");
    }
  }
  // The readers' bound: 2^26 pixels in all.
  EXPECT_EQ(parse_film_size("8192x8192").width, 8192);
  try {
    parse_film_size("8193x8193");
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), "67125249 pixels in all; exprun reads images of at most 67108864");
  }
}

TEST(FilmSize, NativeKeepsTheFilmAsItIs) {
  const cv::Mat grey = film_with_spot(44, 54, 10, 20);
  const Film film = resample_film(grey, 0.44, "synth_b", parse_film_size("native"), "a");
  EXPECT_EQ(film.image.data, grey.data);
  EXPECT_EQ(film.mm_per_pixel, 0.44);
  EXPECT_EQ(film.scale_x, 1);
  EXPECT_EQ(film.offset_y, 0);
}

TEST(FilmSize, ReleaseResamplesToEachMachinesSpacing) {
  const Film a = resample_film(film_with_spot(480, 600, 100, 300), 0.4, "synth_a",
                               parse_film_size("release"), "train_0000");
  EXPECT_EQ(a.image.cols, 1920);
  EXPECT_EQ(a.image.rows, 2400);
  EXPECT_EQ(a.mm_per_pixel, 0.1);
  const Film b = resample_film(film_with_spot(440, 540, 100, 300), 0.44, "synth_b",
                               parse_film_size("release"), "train_0001");
  EXPECT_EQ(b.image.cols, 1549);
  EXPECT_EQ(b.image.rows, 1901);
  EXPECT_EQ(b.mm_per_pixel, 0.125);
  // The spot is where the map sends it, within the grain and the cubic kernel's reach.
  const cv::Point spot = brightest(b.image);
  EXPECT_NEAR(spot.x, (100 + 0.5) * b.scale_x - 0.5, 2.0);
  EXPECT_NEAR(spot.y, (300 + 0.5) * b.scale_y - 0.5, 2.0);
  EXPECT_THROW(
      resample_film(film_with_spot(40, 50, 1, 1), 0.4, "other", parse_film_size("release"), "x"),
      std::runtime_error);
}

TEST(FilmSize, FixedSizeFitsTheFilmWithSquarePixelsOnABlackBorder) {
  const Film film = resample_film(film_with_spot(480, 600, 240, 100), 0.4, "synth_a",
                                  parse_film_size("1000x1000"), "valid_0002");
  ASSERT_EQ(film.image.cols, 1000);
  ASSERT_EQ(film.image.rows, 1000);
  EXPECT_DOUBLE_EQ(film.scale_x, 800.0 / 480);
  EXPECT_DOUBLE_EQ(film.scale_y, 1000.0 / 600);
  EXPECT_EQ(film.offset_x, 100);
  EXPECT_EQ(film.offset_y, 0);
  EXPECT_DOUBLE_EQ(film.mm_per_pixel, 0.4 / film.scale_x);
  EXPECT_EQ(cv::countNonZero(film.image.colRange(0, 100)), 0);
  EXPECT_EQ(cv::countNonZero(film.image.colRange(900, 1000)), 0);
  const cv::Point spot = brightest(film.image);
  EXPECT_NEAR(spot.x, (240 + 0.5) * film.scale_x - 0.5 + film.offset_x, 2.0);
  EXPECT_NEAR(spot.y, (100 + 0.5) * film.scale_y - 0.5 + film.offset_y, 2.0);
}

TEST(FilmSize, GrainIsTheSameForTheSameFilmAndDiffersBetweenFilms) {
  const cv::Mat grey = film_with_spot(48, 60, 5, 5);
  const FilmSize size = parse_film_size("release");
  const Film one = resample_film(grey, 0.4, "synth_a", size, "train_0000");
  const Film again = resample_film(grey, 0.4, "synth_a", size, "train_0000");
  const Film other = resample_film(grey, 0.4, "synth_a", size, "train_0001");
  EXPECT_EQ(cv::norm(one.image, again.image, cv::NORM_INF), 0);
  EXPECT_GT(cv::norm(one.image, other.image, cv::NORM_INF), 0);
  // Grain of a couple of grey levels, not a different picture.
  cv::Mat smooth;
  cv::resize(grey, smooth, one.image.size(), 0, 0, cv::INTER_CUBIC);
  EXPECT_LT(std::abs(cv::mean(one.image)[0] - cv::mean(smooth)[0]), 0.5);
}

}  // namespace
}  // namespace exprun::synth

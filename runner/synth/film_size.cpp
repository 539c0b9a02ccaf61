#include "synth/film_size.hpp"

#include <exprun/sdk/image_bytes.hpp>
#include <opencv2/imgproc.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "config/config_error.hpp"

namespace exprun::synth {
namespace {

// Large enough for any cephalostat detector (ISBI's films are 1935 x 2400), small enough that
// one 8-bit film stays far below the memory of a small machine.
constexpr int kMinSide = 16;
constexpr int kMaxSide = 16384;

bool parse_side(std::string_view text, int& out) {
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Film grain: N(0, 2) grey levels, so a resampled film's PNG and JPEG have a real film's
// entropy (a smooth upscale compresses several times better and decodes faster than a real one).
void add_grain(cv::Mat& image, const std::string& id) {
  cv::Mat noise(image.size(), CV_16S);
  cv::RNG rng(fnv1a(id));
  rng.fill(noise, cv::RNG::NORMAL, 0.0, 2.0);
  cv::Mat wide;
  image.convertTo(wide, CV_16S);
  wide += noise;
  wide.convertTo(image, CV_8U);  // saturates to 0..255
}

}  // namespace

FilmSize parse_film_size(const std::string& text) {
  if (text == "native") return {FilmSize::Kind::Native};
  if (text == "release") return {FilmSize::Kind::Release};
  const auto x = text.find('x');
  FilmSize size{FilmSize::Kind::Fixed};
  if (x == std::string::npos || !parse_side(std::string_view(text).substr(0, x), size.width) ||
      !parse_side(std::string_view(text).substr(x + 1), size.height)) {
    throw ConfigError("--size " + text +
                      ": expected native, release or WIDTHxHEIGHT in pixels (e.g. 1935x2400)");
  }
  for (int side : {size.width, size.height}) {
    if (side < kMinSide || side > kMaxSide) {
      throw ConfigError("--size " + text + ": each side must be " + std::to_string(kMinSide) +
                        " to " + std::to_string(kMaxSide) + " pixels");
    }
  }
  // What the readers take: a larger tree would be written only to be refused by them.
  if (std::int64_t{size.width} * size.height > sdk::kMaxImagePixels) {
    throw ConfigError("--size " + text + ": " +
                      std::to_string(std::int64_t{size.width} * size.height) +
                      " pixels in all; exprun reads images of at most " +
                      std::to_string(sdk::kMaxImagePixels) + " pixels in all");
  }
  return size;
}

std::string describe(const FilmSize& size) {
  switch (size.kind) {
    case FilmSize::Kind::Native:
      return "native";
    case FilmSize::Kind::Release:
      return "release";
    case FilmSize::Kind::Fixed:
      break;
  }
  return std::to_string(size.width) + "x" + std::to_string(size.height);
}

double release_mm_per_pixel(const std::string& machine) {
  if (machine == "synth_a") return 0.1;
  if (machine == "synth_b") return 0.125;
  throw std::runtime_error("synth: no release pixel spacing for the synthetic machine '" + machine +
                           "'");
}

Film resample_film(const cv::Mat& grey, double mm_per_pixel, const std::string& machine,
                   const FilmSize& size, const std::string& id) {
  Film film;
  if (size.kind == FilmSize::Kind::Native) {
    film.image = grey;
    film.mm_per_pixel = mm_per_pixel;
    return film;
  }
  int inner_w = 0, inner_h = 0;
  if (size.kind == FilmSize::Kind::Release) {
    const double factor = mm_per_pixel / release_mm_per_pixel(machine);
    inner_w = static_cast<int>(std::lround(grey.cols * factor));
    inner_h = static_cast<int>(std::lround(grey.rows * factor));
  } else {
    const double factor = std::min(static_cast<double>(size.width) / grey.cols,
                                   static_cast<double>(size.height) / grey.rows);
    inner_w = std::clamp(static_cast<int>(std::lround(grey.cols * factor)), 1, size.width);
    inner_h = std::clamp(static_cast<int>(std::lround(grey.rows * factor)), 1, size.height);
  }
  cv::Mat inner;
  const bool enlarging = inner_w > grey.cols;
  cv::resize(grey, inner, cv::Size(inner_w, inner_h), 0, 0,
             enlarging ? cv::INTER_CUBIC : cv::INTER_AREA);
  if (enlarging) add_grain(inner, id);
  film.scale_x = static_cast<double>(inner_w) / grey.cols;
  film.scale_y = static_cast<double>(inner_h) / grey.rows;
  if (size.kind == FilmSize::Kind::Release) {
    film.image = inner;
    film.mm_per_pixel = release_mm_per_pixel(machine);
    return film;
  }
  // The spacing along x: the two axes differ by the rounding of one pixel at most.
  film.mm_per_pixel = mm_per_pixel / film.scale_x;
  const int left = (size.width - inner_w) / 2, top = (size.height - inner_h) / 2;
  cv::copyMakeBorder(inner, film.image, top, size.height - inner_h - top, left,
                     size.width - inner_w - left, cv::BORDER_CONSTANT, cv::Scalar(0));
  film.offset_x = left;
  film.offset_y = top;
  return film;
}

}  // namespace exprun::synth

// The pixel size `synth` writes a film at: the generator's own (a few hundred pixels, fast for
// tests), the sizes of the real releases (2-5 megapixels, what a data pipeline really meets), or
// one fixed size. The landmarks and the pixel spacing follow the film.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>

namespace exprun::synth {

struct FilmSize {
  enum class Kind { Native, Release, Fixed };
  Kind kind = Kind::Native;
  int width = 0;  // Fixed only
  int height = 0;
};

// "native", "release" or "WxH" (e.g. 1935x2400). Throws ConfigError naming --size.
FilmSize parse_film_size(const std::string& text);
std::string describe(const FilmSize& size);

// A film after resampling: original pixel (x, y) is at ((x + 0.5) * scale_x - 0.5 + offset_x,
// (y + 0.5) * scale_y - 0.5 + offset_y) in `image`.
struct Film {
  cv::Mat image;
  double mm_per_pixel = 0;
  double scale_x = 1, scale_y = 1;
  double offset_x = 0, offset_y = 0;
};

// The release's pixel spacing for a synthetic machine at Kind::Release (Aariz's machines differ
// in size; these two give 1920 x 2400 and 1549 x 1901 films).
double release_mm_per_pixel(const std::string& machine);

// Resamples an 8-bit grey film generated at `mm_per_pixel` as `size` asks:
// - Native: unchanged;
// - Release: to the machine's release_mm_per_pixel;
// - Fixed: scaled uniformly (square pixels) to fit inside width x height and centred on a black
//   border, as a detector sees a smaller field of view.
// Enlarged films get a little deterministic grain (seeded by `id`), so that they compress and
// decode like a real film rather than like a smooth upscale.
Film resample_film(const cv::Mat& grey, double mm_per_pixel, const std::string& machine,
                   const FilmSize& size, const std::string& id);

}  // namespace exprun::synth

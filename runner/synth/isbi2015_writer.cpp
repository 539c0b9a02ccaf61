// A synthetic ISBI 2015 release: 8-bit BMP images resampled to the release's 0.1 mm per pixel
// (about 1935 x 2400, like the real films), and each doctor's 19 points as "x,y" lines.
#include <exprun/sdk/landmarks.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdio>

#include "synth/synth_formats.hpp"
#include "util/interrupt_flag.hpp"

namespace exprun::synth {
namespace fs = std::filesystem;

namespace {

constexpr double kMmPerPixel = 0.1;

std::string points_text(const std::vector<std::array<long, 2>>& points) {
  std::string text;
  for (const auto& p : points) text += std::to_string(p[0]) + "," + std::to_string(p[1]) + "\n";
  return text;
}

}  // namespace

void write_isbi2015(const fs::path& root, const std::vector<SplitSamples>& splits,
                    std::uint64_t seed) {
  const fs::path senior = root / "AnnotationsByMD" / "400_senior";
  const fs::path junior = root / "AnnotationsByMD" / "400_junior";
  fs::create_directories(senior);
  fs::create_directories(junior);
  std::size_t number = 0;
  for (const auto& split : splits) {
    const fs::path images = root / "RawImage" / split.folder;
    fs::create_directories(images);
    const auto available = split.samples->landmarks();
    for (std::size_t i = 0; i < split.samples->size(); ++i) {
      throw_if_stop_requested();  // between films, which take a while at the release size
      const sdk::Sample sample = split.samples->get(i);
      char id[16];
      std::snprintf(id, sizeof id, "%03zu", ++number);
      const cv::Mat grey = grey_image(sample);
      const double factor = sample.mm_per_pixel / kMmPerPixel;
      Film film;
      cv::resize(grey, film.image,
                 cv::Size(static_cast<int>(std::lround(grey.cols * factor)),
                          static_cast<int>(std::lround(grey.rows * factor))),
                 0, 0, cv::INTER_LINEAR);
      film.scale_x = static_cast<double>(film.image.cols) / grey.cols;
      film.scale_y = static_cast<double>(film.image.rows) / grey.rows;
      write_image(images / (std::string(id) + ".bmp"), film.image);
      const auto points = landmarks_by_symbol(sample, available, sdk::isbi2015_landmarks(), film);
      auto junior_points = points;
      for (std::size_t k = 0; k < points.size(); ++k) {
        junior_points[k][0] += draw(seed, id, 2 * k, -5, 5);
        junior_points[k][1] += draw(seed, id, 2 * k + 1, -5, 5);
      }
      write_text_file(senior / (std::string(id) + ".txt"), points_text(points));
      write_text_file(junior / (std::string(id) + ".txt"), points_text(junior_points));
    }
  }
}

}  // namespace exprun::synth

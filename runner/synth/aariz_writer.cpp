// A synthetic Aariz release: the layout, file formats and quirks of the real one (mixed image
// formats and bit depths, two annotators, CVM stages, a machine table with a byte-order mark),
// so that the reader meets all of them.
#include <exprun/sdk/landmarks.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>

#include "synth/synth_formats.hpp"
#include "util/interrupt_flag.hpp"

namespace exprun::synth {
namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

namespace {

// How image number g is stored; every fifth image of each kind, so a small tree has them all.
struct ImageKind {
  const char* extension;
  const char* mode;  // the table's `mode` column, in PIL's names
};
constexpr ImageKind kKinds[] = {
    {"png", "L"}, {"jpg", "L"}, {"bmp", "RGB"}, {"png", "I;16"}, {"jpeg", "L"}};

void write_cephalogram(const fs::path& file, const cv::Mat& grey, const ImageKind& kind) {
  const std::string mode = kind.mode;
  if (mode == "RGB") {
    cv::Mat colour;
    cv::cvtColor(grey, colour, cv::COLOR_GRAY2BGR);
    write_image(file, colour);
  } else if (mode == "I;16") {
    cv::Mat wide;
    grey.convertTo(wide, CV_16U, 257.0);  // 0..255 -> 0..65535
    write_image(file, wide);
  } else if (kind.extension[0] == 'j') {
    write_image(file, grey, {cv::IMWRITE_JPEG_QUALITY, 95});
  } else {
    write_image(file, grey);
  }
}

std::string landmark_json(const std::string& id, const std::vector<std::array<long, 2>>& points,
                          bool reversed) {
  const auto& names = sdk::aariz_landmarks();
  ordered_json landmarks = ordered_json::array();
  for (std::size_t n = 0; n < names.size(); ++n) {
    // Every other file lists the landmarks backwards: readers must match by symbol.
    const std::size_t i = reversed ? names.size() - 1 - n : n;
    landmarks.push_back({{"landmark_id", i + 1},
                         {"symbol", names[i].symbol},
                         {"title", names[i].title},
                         {"value", {{"x", points[i][0]}, {"y", points[i][1]}}}});
  }
  return ordered_json{{"ceph_id", id}, {"landmarks", landmarks}}.dump(2) + "\n";
}

}  // namespace

void write_aariz(const fs::path& root, const std::vector<SplitSamples>& splits, std::uint64_t seed,
                 const FilmSize& size) {
  std::string table =
      "\xEF\xBB\xBF"
      "cephalogram_id,machine,pixel_size,image_format,mode\n";
  std::size_t g = 0;
  for (const auto& split : splits) {
    const fs::path dir = root / split.folder;
    const fs::path images = dir / "Cephalograms";
    const fs::path landmarks = dir / "Annotations" / "Cephalometric Landmarks";
    const fs::path senior = landmarks / "Senior Orthodontists";
    const fs::path junior = landmarks / "Junior Orthodontists";
    const fs::path cvm = dir / "Annotations" / "CVM Stages";
    for (const auto& d : {images, senior, junior, cvm}) fs::create_directories(d);
    const auto available = split.samples->landmarks();
    for (std::size_t i = 0; i < split.samples->size(); ++i, ++g) {
      throw_if_stop_requested();  // between films, which take a while at the release size
      const sdk::Sample sample = split.samples->get(i);
      const Film film =
          resample_film(grey_image(sample), sample.mm_per_pixel, sample.group, size, sample.id);
      const cv::Mat& grey = film.image;
      const ImageKind& kind = kKinds[g % std::size(kKinds)];
      write_cephalogram(images / (sample.id + "." + kind.extension), grey, kind);

      const auto points = landmarks_by_symbol(sample, available, sdk::aariz_landmarks(), film);
      // The junior orthodontist: the senior's points moved by up to 3 pixels per axis.
      auto junior_points = points;
      for (std::size_t k = 0; k < points.size(); ++k) {
        junior_points[k][0] =
            std::clamp<long>(points[k][0] + draw(seed, sample.id, 2 * k, -3, 3), 0, grey.cols - 1);
        junior_points[k][1] = std::clamp<long>(
            points[k][1] + draw(seed, sample.id, 2 * k + 1, -3, 3), 0, grey.rows - 1);
      }
      write_text_file(senior / (sample.id + ".json"), landmark_json(sample.id, points, g % 2));
      write_text_file(junior / (sample.id + ".json"),
                      landmark_json(sample.id, junior_points, g % 2 == 0));
      const auto stage = draw(seed, sample.id, 1000, 1, 6);
      write_text_file(
          cvm / (sample.id + ".json"),
          ordered_json{{"ceph_id", sample.id},
                       {"cvm_stage", {{"value", stage}, {"title", "CS" + std::to_string(stage)}}}}
                  .dump(2) +
              "\n");
      char row[256];
      std::snprintf(row, sizeof row, "%s,%s,%.10g,%s,%s\n", sample.id.c_str(), sample.group.c_str(),
                    film.mm_per_pixel, kind.extension, kind.mode);
      table += row;
    }
  }
  write_text_file(root / "cephalogram_machine_mappings.csv", table);
}

}  // namespace exprun::synth

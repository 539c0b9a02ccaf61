#include "predict/prediction_output.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "util/atomic_file.hpp"

namespace exprun {

nlohmann::json aariz_annotation(const std::string& ceph_id,
                                const std::vector<sdk::LandmarkInfo>& landmarks,
                                const torch::Tensor& points) {
  auto p = points.to(torch::kFloat64).contiguous();
  auto a = p.accessor<double, 2>();
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t j = 0; j < landmarks.size(); ++j) {
    const auto i = static_cast<std::int64_t>(j);
    list.push_back({{"landmark_id", j + 1},
                    {"symbol", landmarks[j].symbol},
                    {"title", landmarks[j].title},
                    {"value", {{"x", a[i][0]}, {"y", a[i][1]}}}});
  }
  return {{"ceph_id", ceph_id}, {"landmarks", list}};
}

cv::Scalar landmark_colour(std::size_t index, std::size_t count) {
  // Hues spread evenly, full brightness, saturation 2/3 so that blues stay light enough to
  // read on a dark background: distinct on a grey film.
  cv::Mat hsv(
      1, 1, CV_8UC3,
      cv::Scalar(static_cast<double>(180 * index / std::max<std::size_t>(count, 1)), 170, 255));
  cv::Mat bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const auto c = bgr.at<cv::Vec3b>(0, 0);
  return cv::Scalar(c[0], c[1], c[2]);
}

void draw_landmarks(cv::Mat& bgr, const std::vector<sdk::LandmarkInfo>& landmarks,
                    const torch::Tensor& points) {
  if (bgr.type() != CV_8UC3) throw std::invalid_argument("draw_landmarks needs an 8-bit BGR image");
  auto p = points.to(torch::kFloat64).contiguous();
  auto a = p.accessor<double, 2>();
  // Scaled to the shorter side: about 0.6 % of it for the ring, text about 1.6 %.
  const double side = std::min(bgr.cols, bgr.rows);
  const int radius = std::max(3, static_cast<int>(std::lround(side * 0.006)));
  const int thickness = std::max(1, radius / 3);
  const double font_scale = std::max(0.35, side / 1400.0);
  const int font_thickness = std::max(1, static_cast<int>(std::lround(font_scale * 1.5)));
  const int outline = font_thickness + std::max(1, font_thickness / 2) * 2;
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const cv::Scalar black(0, 0, 0);
  // cv drawing works in integer pixels; a shift of 4 keeps 1/16-pixel precision.
  constexpr int kShift = 4;
  constexpr double kOne = 1 << kShift;
  for (std::size_t j = 0; j < landmarks.size(); ++j) {
    const auto i = static_cast<std::int64_t>(j);
    if (!std::isfinite(a[i][0]) || !std::isfinite(a[i][1])) continue;
    const cv::Point centre(static_cast<int>(std::lround(a[i][0] * kOne)),
                           static_cast<int>(std::lround(a[i][1] * kOne)));
    const cv::Scalar colour = landmark_colour(j, landmarks.size());
    const int r = static_cast<int>(radius * kOne);
    cv::circle(bgr, centre, r, black, thickness + 2, cv::LINE_AA, kShift);
    cv::circle(bgr, centre, r, colour, thickness, cv::LINE_AA, kShift);
    cv::circle(bgr, centre, static_cast<int>(std::max(1, thickness) * kOne), colour, cv::FILLED,
               cv::LINE_AA, kShift);
    const cv::Point label(static_cast<int>(std::lround(a[i][0])) + radius + thickness + 2,
                          static_cast<int>(std::lround(a[i][1])) - radius);
    cv::putText(bgr, landmarks[j].symbol, label, font, font_scale, black, outline, cv::LINE_AA);
    cv::putText(bgr, landmarks[j].symbol, label, font, font_scale, colour, font_thickness,
                cv::LINE_AA);
  }
}

void write_png_atomically(const std::filesystem::path& path, const cv::Mat& image) {
  std::vector<unsigned char> bytes;
  bool encoded = false;
  try {
    encoded = cv::imencode(".png", image, bytes);
  } catch (const cv::Exception& e) {  // its message alone would not name the file
    throw std::runtime_error(path.string() + ": cannot encode the PNG: " + e.err);
  }
  if (!encoded) throw std::runtime_error(path.string() + ": cannot encode the PNG");
  write_file_atomically(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace exprun

#include "predict/image_file.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <stdexcept>

#include "exprun/sdk/image_decode.hpp"

#include "data/image_convert.hpp"
#include "util/file_kind.hpp"

namespace exprun {

torch::Tensor read_image_file(const std::filesystem::path& path) {
  if (const std::string kind = irregular_file_kind(path); !kind.empty()) {
    throw std::runtime_error(path.string() + ": not a regular file (" + kind +
                             "); expected an image file");
  }
  if (!std::filesystem::exists(path))
    throw std::runtime_error(path.string() + ": no such image file");
  // The dataset readers' decoder: truncated or damaged files and absurd sizes are errors
  // naming the file, and OpenCV's own exceptions never escape without it.
  cv::Mat mat = sdk::decode_image_file(path, cv::IMREAD_UNCHANGED);
  if (mat.depth() != CV_8U && mat.depth() != CV_16U) {
    throw std::runtime_error(path.string() + ": expected an 8- or 16-bit image");
  }
  // OpenCV orders colour channels BGR; samples hold RGB.
  if (mat.channels() == 3) cv::cvtColor(mat, mat, cv::COLOR_BGR2RGB);
  if (mat.channels() == 4) cv::cvtColor(mat, mat, cv::COLOR_BGRA2RGBA);
  if (mat.channels() != 1 && mat.channels() != 3 && mat.channels() != 4) {
    throw std::runtime_error(path.string() + ": expected 1, 3 or 4 channels, found " +
                             std::to_string(mat.channels()));
  }
  std::vector<std::int64_t> shape = {mat.rows, mat.cols};
  if (mat.channels() > 1) shape.push_back(mat.channels());
  if (mat.depth() == CV_8U) {
    return torch::from_blob(mat.data, shape, torch::kUInt8).clone();
  }
  cv::Mat wide;
  mat.convertTo(wide, CV_32S);  // torch has no uint16: 16-bit data travels as int32
  return torch::from_blob(wide.data, shape, torch::kInt32).clone();
}

cv::Mat drawable_image(const torch::Tensor& image) {
  cv::Mat grey8, bgr;
  to_grey_float(image).convertTo(grey8, CV_8U, 255.0);
  cv::cvtColor(grey8, bgr, cv::COLOR_GRAY2BGR);
  return bgr;
}

}  // namespace exprun

#include "data/image_convert.hpp"

#include <opencv2/imgproc.hpp>

#include <stdexcept>

namespace exprun {

cv::Mat to_grey_float(const torch::Tensor& image) {
  if (!image.defined() || (image.dim() != 2 && image.dim() != 3)) {
    throw std::runtime_error("dataset sample image must be H x W or H x W x C");
  }
  torch::Tensor t = image.contiguous().cpu();
  const int h = static_cast<int>(t.size(0)), w = static_cast<int>(t.size(1));
  const int c = t.dim() == 3 ? static_cast<int>(t.size(2)) : 1;
  if (c != 1 && c != 3 && c != 4) {
    throw std::runtime_error("dataset sample image has " + std::to_string(c) +
                             " channels; expected 1, 3 or 4");
  }
  double scale = 1.0;
  switch (t.scalar_type()) {
    case torch::kUInt8:
      scale = 1.0 / 255.0;
      break;
    case torch::kInt16:  // torch has no uint16: 16-bit images arrive with the bits as int16
    case torch::kInt32:
      scale = 1.0 / 65535.0;
      break;
    case torch::kFloat32:
      break;
    default:
      throw std::runtime_error(std::string("dataset sample image has unsupported type ") +
                               c10::toString(t.scalar_type()));
  }
  if (t.scalar_type() == torch::kInt16) {
    // Reinterpret the bits as unsigned: values above 32767 are stored negative.
    t = t.to(torch::kInt32).bitwise_and(0xFFFF);
  }
  t = t.to(torch::kFloat32).mul(scale).contiguous();
  cv::Mat wrapped(h, w, CV_32FC(c), t.data_ptr<float>());
  cv::Mat grey;
  if (c == 1) {
    grey = wrapped.clone();
  } else {
    cv::cvtColor(wrapped, grey, c == 3 ? cv::COLOR_RGB2GRAY : cv::COLOR_RGBA2GRAY);
  }
  return grey;
}

}  // namespace exprun

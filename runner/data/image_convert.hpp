// Turns whatever a dataset reader hands over into the float grey image the pipeline works on.
#pragma once

#include <torch/torch.h>
#include <opencv2/core.hpp>

namespace exprun {

// image: H x W or H x W x C; uint8, int16 (16-bit data), int32 (16-bit data) or float32 in
// [0, 1]. Returns CV_32F, one channel, values in [0, 1]. Throws std::runtime_error otherwise.
cv::Mat to_grey_float(const torch::Tensor& image);

}  // namespace exprun

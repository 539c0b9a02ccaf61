// Image files read the way a dataset reader hands images to the pipeline, for `exprun
// predict`: 8- or 16-bit, grey or colour, any format OpenCV decodes.
#pragma once

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include <filesystem>

namespace exprun {

// H x W (grey) or H x W x C (RGB / RGBA) as sdk::Sample::image holds it: uint8, or 16-bit data
// as int32. Throws std::runtime_error naming the file when it is missing, not an image,
// truncated or damaged, or larger than sdk::kMaxImageSide / kMaxImagePixels.
torch::Tensor read_image_file(const std::filesystem::path& path);

// The image as the model sees it (grey), as 8-bit BGR to draw on.
cv::Mat drawable_image(const torch::Tensor& image);

}  // namespace exprun

// Decoding an image file with OpenCV after read_image_bytes has checked it: every failure is
// one std::runtime_error naming the file. Header-only, so the SDK library itself needs no
// OpenCV: include it only from code that links OpenCV (imgcodecs).
#pragma once

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "exprun/sdk/image_bytes.hpp"

namespace exprun::sdk {

// cv::imdecode of the checked bytes with `flags`, always in the pixel grid the file stores: a
// JPEG's EXIF orientation is ignored, as IMREAD_UNCHANGED ignores it, because landmark files
// give coordinates in the stored grid and a rotated film would not match them. Throws "cannot
// read image FILE: why".
inline cv::Mat decode_image_file(const std::filesystem::path& file, int flags) {
  if (flags != cv::IMREAD_UNCHANGED) flags |= cv::IMREAD_IGNORE_ORIENTATION;
  std::string bytes = read_image_bytes(file);
  const auto fail = [&file](const std::string& why) {
    return std::runtime_error("cannot read image " + file.string() + ": " + why);
  };
  cv::Mat image;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, bytes.data());
    image = cv::imdecode(buffer, flags);
  } catch (const cv::Exception& e) {
    throw fail("OpenCV cannot decode it: " + e.err);
  }
  if (image.empty())
    throw fail("OpenCV cannot decode it (damaged, or not an image in the format its name says)");
  check_decoded_image_size(file, image.cols, image.rows);
  return image;
}

}  // namespace exprun::sdk

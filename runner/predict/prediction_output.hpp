// What `exprun predict` writes per image: the landmarks in the Aariz annotation format and an
// overlay picture with every landmark marked and labelled.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/dataset.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace exprun {

// {"ceph_id": id, "landmarks": [{"landmark_id": 1.., "symbol", "title", "value": {"x", "y"}}]}
// points: K x 2 original pixels with pixel centres at integers, as sdk::Sample::landmarks and
// the Aariz files both count them, so a reader loading the file gets these positions back.
nlohmann::json aariz_annotation(const std::string& ceph_id,
                                const std::vector<sdk::LandmarkInfo>& landmarks,
                                const torch::Tensor& points);

// Draws on `bgr` (8-bit, 3 channels): per landmark a ring with a centre dot in its own colour
// and its symbol beside it, sized to the image (readable on a 2000-pixel cephalogram as on a
// 500-pixel one), each outlined in black so it shows on bright bone and dark background alike.
void draw_landmarks(cv::Mat& bgr, const std::vector<sdk::LandmarkInfo>& landmarks,
                    const torch::Tensor& points);

// The distinct colour (BGR) landmark `index` of `count` is drawn in.
cv::Scalar landmark_colour(std::size_t index, std::size_t count);

// Encodes PNG and replaces `path` atomically; throws std::runtime_error naming it on failure.
void write_png_atomically(const std::filesystem::path& path, const cv::Mat& image);

}  // namespace exprun

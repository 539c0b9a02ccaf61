// A small in-memory dataset for pipeline and loader tests: grey films with a bright blob on
// landmark 0, landmarks at positions that depend on the index only.
#pragma once

#include <exprun/sdk/dataset.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace exprun::test {

class FakeDataset : public sdk::Dataset {
 public:
  FakeDataset(std::size_t count, std::int64_t width, std::int64_t height,
              std::optional<std::size_t> failing_index = std::nullopt)
      : count_(count), width_(width), height_(height), failing_(failing_index) {}

  std::size_t size() const override { return count_; }

  // Landmark 0 at (0.35 + 0.04 (i mod 7)) * width + 0.25, (0.3 + 0.04 (i mod 5)) * height +
  // 0.6; landmark 1 at the mirrored position.
  static std::vector<std::array<double, 2>> landmarks_of(std::size_t i, std::int64_t width,
                                                         std::int64_t height) {
    const double x = (0.35 + 0.04 * static_cast<double>(i % 7)) * static_cast<double>(width) + 0.25;
    const double y = (0.3 + 0.04 * static_cast<double>(i % 5)) * static_cast<double>(height) + 0.6;
    return {{x, y}, {static_cast<double>(width) - 1 - x, static_cast<double>(height) - 1 - y}};
  }

  sdk::Sample get(std::size_t index) const override {
    if (failing_ && index == *failing_) throw std::runtime_error("cannot read film");
    const auto points = landmarks_of(index, width_, height_);
    sdk::Sample s;
    // A Gaussian blob (sigma 6 px) on landmark 0 over a black film.
    auto xs = torch::arange(width_, torch::kFloat64).view({1, width_});
    auto ys = torch::arange(height_, torch::kFloat64).view({height_, 1});
    auto blob = torch::exp(-((xs - points[0][0]).pow(2) + (ys - points[0][1]).pow(2)) / (2 * 36.0));
    s.image = (blob * 255).round().to(torch::kUInt8);
    s.landmarks =
        torch::tensor({points[0][0], points[0][1], points[1][0], points[1][1]}, torch::kFloat64)
            .view({2, 2});
    s.mm_per_pixel = 0.1;
    s.id = "s" + std::to_string(index);
    s.group = index % 2 ? "odd" : "even";
    return s;
  }

  std::vector<sdk::LandmarkInfo> landmarks() const override {
    return {{"A", "first"}, {"B", "second"}};
  }

 private:
  std::size_t count_;
  std::int64_t width_, height_;
  std::optional<std::size_t> failing_;
};

}  // namespace exprun::test

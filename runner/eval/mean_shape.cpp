#include "eval/mean_shape.hpp"

namespace exprun {
namespace {

torch::Tensor image_size(const SampleMeta& meta) {
  return torch::tensor(
      {static_cast<double>(meta.original_width), static_cast<double>(meta.original_height)},
      torch::kFloat64);
}

}  // namespace

void MeanShapeBaseline::add(const SampleMeta& meta) {
  auto relative = meta.landmarks.to(torch::kFloat64) / image_size(meta);
  auto valid = torch::isfinite(relative).all(1, true);
  relative = torch::where(valid, relative, torch::zeros_like(relative));
  if (!sum_.defined()) {
    sum_ = torch::zeros_like(relative);
    counts_ = torch::zeros({relative.size(0), 1}, torch::kFloat64);
  }
  sum_ += relative;
  counts_ += valid.to(torch::kFloat64);
  ++count_;
}

torch::Tensor MeanShapeBaseline::predict(const std::vector<SampleMeta>& meta) const {
  auto mean = sum_ / counts_.clamp_min(1);
  std::vector<torch::Tensor> rows;
  for (const auto& m : meta) rows.push_back(mean * image_size(m));
  return torch::stack(rows);
}

}  // namespace exprun

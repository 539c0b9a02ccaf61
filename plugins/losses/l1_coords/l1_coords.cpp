// A coordinate loss for those who want regression: the predicted heatmaps are decoded by a
// soft-argmax (spatial softmax of beta x the map, then the expected x and y in heatmap cells)
// and compared with the target coordinates by L1 distance, |dx| + |dy|, in heatmap cells.
//
// The loss receives target heatmaps, not coordinates, so the coordinates are read back from
// them: the log of a Gaussian is a parabola, and a parabola through the log of the peak cell
// and its two neighbours along each axis has its vertex exactly at the Gaussian's centre,
// whatever sigma, and also at the border (the three cells are then taken one step inside).
// The runner's targets are such Gaussians (sampled, untruncated), so this is exact for them;
// a weighted centroid would be pulled inwards near the border. A map without a positive
// cell (a landmark missing from the annotation) has no coordinate and counts for nothing.
#include <exprun/sdk/sdk.hpp>

namespace {

using namespace exprun::sdk;

// The tiniest positive float32, so that the log of an underflowed cell stays finite.
constexpr double kPositive = 1e-38;

// maps: N x K x H x W. Returns N x K x 2 (x, y) in cells, and N x K: whether the map has a peak.
std::pair<torch::Tensor, torch::Tensor> target_coordinates(const torch::Tensor& maps) {
  const auto h = maps.size(2), w = maps.size(3);
  auto flat = maps.to(torch::kFloat64).flatten(2);  // N x K x HW
  auto [peak, index] = flat.max(2);
  auto y0 = index.div(w, "floor"), x0 = index.remainder(w);
  auto logs = flat.clamp_min(kPositive).log();
  // Vertex of the parabola through ln m at c-1, c, c+1 along one axis (c kept inside).
  auto vertex = [&](const torch::Tensor& along, const torch::Tensor& across, std::int64_t size,
                    std::int64_t step_along, std::int64_t step_across) {
    auto c = along.clamp(1, size - 2);
    auto at = [&](std::int64_t offset) {
      return logs.gather(2, ((c + offset) * step_along + across * step_across).unsqueeze(2))
          .squeeze(2);
    };
    const auto before = at(-1), centre = at(0), after = at(1);
    return c.to(torch::kFloat64) + (before - after) / (2 * (before - 2 * centre + after));
  };
  auto x = vertex(x0, y0, w, 1, w);
  auto y = vertex(y0, x0, h, w, 1);
  return {torch::stack({x, y}, 2), peak > 0};
}

class L1CoordsLoss : public Loss {
 public:
  static constexpr const char* kName = "l1_coords";
  static constexpr const char* kSummary =
      "L1 distance in heatmap cells between soft-argmax coordinates and the targets' centres";

  static ParamSchema schema() {
    return ParamSchema()
        .add_float("beta", 1.0,
                   "inverse temperature of the spatial softmax: softmax(beta x map) over each "
                   "map's cells; larger is closer to a hard arg-max")
        .min(1e-6)
        .add_float("scale", 1.0, "factor the loss is multiplied by")
        .min(0.0);
  }

  L1CoordsLoss(const Params& params, const LossContext&)
      : beta_(params.get_float("beta")), scale_(params.get_float("scale")) {}

  torch::Tensor compute(const torch::Tensor& predicted, const torch::Tensor& target,
                        const torch::Tensor& landmark_weights) override {
    TORCH_CHECK(predicted.dim() == 4 && predicted.sizes() == target.sizes(),
                "l1_coords expects predicted and target heatmaps of the same N x K x H x W shape");
    TORCH_CHECK(target.size(2) >= 3 && target.size(3) >= 3,
                "l1_coords needs heatmaps of at least 3 x 3 cells");
    const auto n = predicted.size(0), k = predicted.size(1);
    const auto h = predicted.size(2), w = predicted.size(3);
    auto probability =
        torch::softmax(predicted.to(torch::kFloat).flatten(2) * beta_, 2).view({n, k, h, w});
    auto xs = torch::arange(w, predicted.options().dtype(torch::kFloat));
    auto ys = torch::arange(h, predicted.options().dtype(torch::kFloat));
    auto x = (probability.sum(2) * xs).sum(2);  // N x K
    auto y = (probability.sum(3) * ys).sum(2);

    torch::Tensor wanted, present;
    {
      torch::NoGradGuard no_grad;
      std::tie(wanted, present) = target_coordinates(target.detach());
      // A flat (all-zero) map's parabola is 0 / 0: give it any finite place, it weighs 0.
      wanted =
          torch::where(present.unsqueeze(2), wanted, torch::zeros_like(wanted)).to(torch::kFloat);
    }
    auto distance = (x - wanted.select(2, 0)).abs() + (y - wanted.select(2, 1)).abs();  // N x K
    // Per image: weighted mean over the landmarks it has; then the mean over the batch.
    auto weight = landmark_weights.to(torch::kFloat).view({1, -1}) * present.to(torch::kFloat);
    auto per_image = (distance * weight).sum(1) / weight.sum(1).clamp_min(1e-12);
    return scale_ * per_image.mean();
  }

 private:
  double beta_, scale_;
};

}  // namespace

EXPRUN_PLUGIN(L1CoordsLoss)

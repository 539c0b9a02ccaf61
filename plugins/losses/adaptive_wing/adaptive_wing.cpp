// Adaptive wing loss (Wang, Bo and Fuxin, ICCV 2019): behaves like wing loss near foreground
// pixels (target close to 1), where small errors matter, and like a gentle L1/L2 hybrid on the
// background, so that the many zero pixels do not drown the few that locate a landmark.
#include <exprun/sdk/sdk.hpp>

#include "fused_pixel_loss.hpp"

namespace {

using namespace exprun::sdk;

class AdaptiveWingLoss : public Loss {
 public:
  static constexpr const char* kName = "adaptive_wing";
  static constexpr const char* kSummary = "adaptive wing loss for heatmaps (Wang et al. 2019)";

  static ParamSchema schema() {
    return ParamSchema()
        .add_float("alpha", 2.1, "exponent offset, > 1; the loss exponent is alpha - target")
        .min(1.0)
        .add_float("omega", 14.0, "scale of the non-linear part")
        .min(0.0)
        .add_float("epsilon", 1.0, "curvature of the non-linear part")
        .min(1e-12)
        .add_float("theta", 0.5, "error at which the loss switches from log to linear")
        .min(1e-12)
        .add_bool("use_loss_map", false,
                  "weight pixels near the target foreground by loss_map_weight + 1")
        .add_float("loss_map_weight", 10.0, "W: extra weight on the dilated foreground")
        .min(0.0)
        .add_float("loss_map_threshold", 0.2,
                   "target value above which (strictly) a pixel is foreground, before dilation")
        .min(0.0)
        .max(1.0)
        .add_bool("fused", true,
                  "on a CPU, each pixel's loss and gradient in one pass instead of LibTorch's "
                  "tensor operations (equal to float rounding)");
  }

  AdaptiveWingLoss(const Params& p, const LossContext&)
      : alpha_(p.get_float("alpha")),
        omega_(p.get_float("omega")),
        epsilon_(p.get_float("epsilon")),
        theta_(p.get_float("theta")),
        use_loss_map_(p.get_bool("use_loss_map")),
        loss_map_weight_(p.get_float("loss_map_weight")),
        loss_map_threshold_(p.get_float("loss_map_threshold")),
        fused_(p.get_bool("fused")) {
    if (alpha_ <= 1.0) {
      // alpha - y must stay above 1 for y in [0, 1] or A below loses its meaning.
      throw ParamError("alpha must be greater than 1 (alpha - target is the exponent)");
    }
  }

  torch::Tensor compute(const torch::Tensor& predicted, const torch::Tensor& target,
                        const torch::Tensor& landmark_weights) override {
    // float32 even under autocast: pow/log of half precision loses the small errors.
    auto pred = predicted.to(torch::kFloat);
    auto y = target.to(torch::kFloat);
    auto pixel_loss =
        fused_ && exprun::adaptive_wing::can_fuse(pred, y)
            ? exprun::adaptive_wing::fused_pixel_loss(pred, y, {alpha_, omega_, epsilon_, theta_})
            : pixel_loss_by_tensor_operations(pred, y);
    if (use_loss_map_) pixel_loss = pixel_loss * loss_map(y);

    auto per_map = pixel_loss.mean({2, 3});  // N x K
    auto weighted = per_map * landmark_weights.to(torch::kFloat).view({1, -1});
    return weighted.sum(1).div(landmark_weights.sum()).mean();
  }

 private:
  // The formula as LibTorch's tensor operations: on a GPU, and with fused = false.
  torch::Tensor pixel_loss_by_tensor_operations(const torch::Tensor& pred,
                                                const torch::Tensor& y) const {
    auto delta = (y - pred).abs();
    auto exponent = alpha_ - y;
    const double ratio = theta_ / epsilon_;
    auto ratio_pow = torch::pow(torch::full_like(y, ratio), exponent);
    auto a = omega_ * (1.0 / (1.0 + ratio_pow)) * exponent *
             torch::pow(torch::full_like(y, ratio), exponent - 1.0) / epsilon_;
    auto c = theta_ * a - omega_ * torch::log1p(ratio_pow);
    auto near = omega_ * torch::log1p(torch::pow(delta / epsilon_, exponent));
    auto far = a * delta - c;
    return torch::where(delta < theta_, near, far);
  }

  // 1 + W on a 3x3 dilation of the foreground, 1 elsewhere (the paper's weighted loss map).
  // Foreground is strictly above the threshold, as in the authors' code (grey dilation of the
  // target, then `> 0.2`; thresholding first and dilating the mask is the same map).
  torch::Tensor loss_map(const torch::Tensor& y) const {
    auto foreground = y.gt(loss_map_threshold_).to(torch::kFloat);
    const auto n = y.size(0), k = y.size(1), h = y.size(2), w = y.size(3);
    namespace F = torch::nn::functional;
    // Grey dilation with a 3x3 square equals 3x3 max pooling with stride 1 and padding 1.
    auto dilated = F::max_pool2d(foreground.view({n * k, 1, h, w}),
                                 F::MaxPool2dFuncOptions(3).stride(1).padding(1))
                       .view({n, k, h, w});
    return 1.0 + loss_map_weight_ * dilated;
  }

  double alpha_, omega_, epsilon_, theta_;
  bool use_loss_map_;
  double loss_map_weight_, loss_map_threshold_;
  bool fused_;
};

}  // namespace

EXPRUN_PLUGIN(AdaptiveWingLoss)

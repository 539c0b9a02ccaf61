// Mean squared error between heatmaps, weighted per landmark: the plain baseline loss.
#include <exprun/sdk/sdk.hpp>

namespace {

using namespace exprun::sdk;

class MseLoss : public Loss {
 public:
  static constexpr const char* kName = "mse";
  static constexpr const char* kSummary = "mean squared error between heatmaps";

  static ParamSchema schema() {
    return ParamSchema().add_float("scale", 1.0, "factor the loss is multiplied by").min(0.0);
  }

  MseLoss(const Params& params, const LossContext&) : scale_(params.get_float("scale")) {}

  torch::Tensor compute(const torch::Tensor& predicted, const torch::Tensor& target,
                        const torch::Tensor& landmark_weights) override {
    // Per landmark: mean over pixels; then weighted over landmarks, mean over the batch.
    auto per_map = (predicted.to(torch::kFloat) - target).pow(2).mean({2, 3});  // N x K
    auto weighted = per_map * landmark_weights.view({1, -1});
    return scale_ * weighted.sum(1).div(landmark_weights.sum()).mean();
  }

 private:
  double scale_;
};

}  // namespace

EXPRUN_PLUGIN(MseLoss)

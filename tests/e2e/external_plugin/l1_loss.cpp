// Mean absolute error between heatmaps, weighted per landmark: the smallest useful loss
// plugin, built out of tree by the external_plugin test.
#include <exprun/sdk/sdk.hpp>

namespace {

class ExternalL1 : public exprun::sdk::Loss {
 public:
  static constexpr const char* kName = "external_l1";
  static constexpr const char* kSummary = "L1 between heatmaps (out-of-tree example)";

  static exprun::sdk::ParamSchema schema() {
    return exprun::sdk::ParamSchema()
        .add_float("scale", 10.0, "factor the loss is multiplied by")
        .min(0.0);
  }

  ExternalL1(const exprun::sdk::Params& params, const exprun::sdk::LossContext&)
      : scale_(params.get_float("scale")) {}

  torch::Tensor compute(const torch::Tensor& predicted, const torch::Tensor& target,
                        const torch::Tensor& landmark_weights) override {
    auto per_map = (predicted - target).abs().mean({2, 3});
    auto weighted = (per_map * landmark_weights.view({1, -1})).sum(1) / landmark_weights.sum();
    return scale_ * weighted.mean();
  }

 private:
  double scale_;
};

}  // namespace

EXPRUN_PLUGIN(ExternalL1)

// Mixed precision: the forward pass runs under autocast (bf16 on CPU, fp16 on CUDA) and, for
// fp16, a dynamic loss scaler keeps small gradients from flushing to zero. The scaler follows
// PyTorch's GradScaler: multiply the loss by the scale, unscale the gradients before the step,
// skip the step and back the scale off when any gradient is inf/NaN, grow it after
// growth_interval clean steps. LibTorch has no C++ GradScaler, hence this one.
#include <exprun/sdk/sdk.hpp>
#include <exprun/sdk/torch_compat.hpp>

#include <cmath>

namespace {

using namespace exprun::sdk;

// Restores whatever autocast state was active before, so scopes nest and never leak.
class AutocastScope : public ForwardScope {
 public:
  AutocastScope(torch::DeviceType device, at::ScalarType dtype)
      : device_(device), previous_(compat::autocast_state(device)) {
    compat::set_autocast_state(device_, {true, dtype});
    at::autocast::increment_nesting();
  }

  ~AutocastScope() override {
    // The cast-weight cache is only valid inside the outermost scope.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    compat::set_autocast_state(device_, previous_);
  }

 private:
  torch::DeviceType device_;
  compat::AutocastState previous_;
};

class MixedPrecision : public MemoryStrategy {
 public:
  static constexpr const char* kName = "mixed_precision";
  static constexpr const char* kSummary =
      "autocast forward passes (bf16 on CPU, fp16 with dynamic loss scaling on CUDA)";

  static ParamSchema schema() {
    return ParamSchema()
        .add_string("dtype", "auto", "autocast type: auto (fp16 on CUDA, bf16 on CPU), bf16, fp16")
        .choices({"auto", "bf16", "fp16"})
        .add_string("loss_scaling", "auto",
                    "dynamic loss scaling: auto (on for fp16), always, never")
        .choices({"auto", "always", "never"})
        .add_float("init_scale", 65536.0, "loss scale at the first step")
        .min(1e-30)
        .add_float("growth_factor", 2.0, "scale multiplier after growth_interval clean steps")
        .min(1.0)
        .add_float("backoff_factor", 0.5, "scale multiplier after a step with inf/NaN gradients")
        .min(1e-6)
        .max(1.0)
        .add_int("growth_interval", 2000, "clean steps before the scale grows")
        .min(1);
  }

  MixedPrecision(const Params& p, const MemoryContext& context)
      : device_(context.device.type()),
        scale_(p.get_float("init_scale")),
        growth_factor_(p.get_float("growth_factor")),
        backoff_factor_(p.get_float("backoff_factor")),
        growth_interval_(p.get_int("growth_interval")) {
    const std::string& dtype = p.get_string("dtype");
    const bool cuda = device_ == torch::kCUDA;
    if (dtype == "fp16" || (dtype == "auto" && cuda)) {
      dtype_ = at::kHalf;
    } else {
      dtype_ = at::kBFloat16;
    }
    if (dtype_ == at::kHalf && !cuda) {
      throw ParamError("dtype \"fp16\" needs a CUDA device: CPU autocast supports bf16 only");
    }
    const std::string& scaling = p.get_string("loss_scaling");
    scaling_ = scaling == "always" || (scaling == "auto" && dtype_ == at::kHalf);
  }

  std::unique_ptr<ForwardScope> enter_forward() override {
    return std::make_unique<AutocastScope>(device_, dtype_);
  }

  torch::Tensor scale_loss(const torch::Tensor& loss) override {
    if (!scaling_) return loss;
#if EXPRUN_WITH_CUDA
    if (loss.is_cuda()) return loss * device_scale(loss.device()).reshape({});
#endif
    return loss * scale_;
  }

  bool before_step(torch::optim::Optimizer& optimizer) override {
    if (!scaling_) return true;
    found_inf_ = unscale_and_check(optimizer);
    return !found_inf_;
  }

  void after_step() override {
    if (!scaling_) return;
#if EXPRUN_WITH_CUDA
    if (device_scale_.defined()) {
      // GradScaler's own update, on the device: no host synchronisation for the scale.
      at::_amp_update_scale_(device_scale_, device_clean_steps_, device_found_inf_, growth_factor_,
                             backoff_factor_, growth_interval_);
      return;
    }
#endif
    if (found_inf_) {
      scale_ *= backoff_factor_;
      clean_steps_ = 0;
    } else if (++clean_steps_ >= growth_interval_) {
      const double grown = scale_ * growth_factor_;
      if (std::isfinite(grown)) scale_ = grown;  // as GradScaler: never grow into inf
      clean_steps_ = 0;
    }
  }

  void save(torch::serialize::OutputArchive& archive) const override {
    sync_host_scale();
    archive.write("mixed_precision.scale", torch::tensor(scale_, torch::kFloat64));
    archive.write("mixed_precision.clean_steps", torch::tensor(clean_steps_, torch::kInt64));
  }

  void load(torch::serialize::InputArchive& archive) override {
    torch::Tensor scale, clean;
    if (!archive.try_read("mixed_precision.scale", scale) ||
        !archive.try_read("mixed_precision.clean_steps", clean)) {
      return;  // a checkpoint written without loss scaling: keep the configured start
    }
    scale_ = scale.item<double>();
    clean_steps_ = clean.item<std::int64_t>();
#if EXPRUN_WITH_CUDA
    if (device_scale_.defined()) {
      device_scale_.fill_(scale_);
      device_clean_steps_.fill_(clean_steps_);
    }
#endif
  }

 private:
#if EXPRUN_WITH_CUDA
  // The scale and its clean-step count live on the GPU once training runs there, as
  // GradScaler keeps them, started from the host values (the configured or loaded ones).
  const torch::Tensor& device_scale(const torch::Device& device) {
    if (!device_scale_.defined()) {
      device_scale_ = torch::full({1}, scale_, torch::dtype(torch::kFloat).device(device));
      device_clean_steps_ =
          torch::full({1}, clean_steps_, torch::dtype(torch::kInt).device(device));
      device_found_inf_ = torch::zeros({1}, torch::dtype(torch::kFloat).device(device));
    }
    return device_scale_;
  }
#endif

  // The host copies are what a checkpoint records.
  void sync_host_scale() const {
#if EXPRUN_WITH_CUDA
    if (device_scale_.defined()) {
      scale_ = device_scale_.item<double>();
      clean_steps_ = device_clean_steps_.item<std::int64_t>();
    }
#endif
  }

  // Divides every gradient by the scale; true when any is inf or NaN.
  bool unscale_and_check(torch::optim::Optimizer& optimizer) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    for (auto& group : optimizer.param_groups()) {
      for (auto& param : group.params()) {
        if (param.grad().defined()) grads.push_back(param.grad());
      }
    }
    if (grads.empty()) return false;
#if EXPRUN_WITH_CUDA
    if (grads.front().is_cuda()) {
      // The fused kernel checks and unscales every gradient; the one host synchronisation is
      // the answer, which decides whether the optimiser steps. The reciprocal is taken in
      // double, as GradScaler does.
      const auto& scale = device_scale(grads.front().device());
      device_found_inf_.zero_();
      const auto inv_scale = scale.to(torch::kDouble).reciprocal().to(torch::kFloat);
      at::_amp_foreach_non_finite_check_and_unscale_(grads, device_found_inf_, inv_scale);
      return device_found_inf_.item<float>() != 0.0f;
    }
#endif
    auto any_bad = torch::zeros({}, torch::kBool).to(grads.front().device());
    for (auto& g : grads) {
      g.mul_(1.0 / scale_);
      any_bad = any_bad.logical_or(g.isfinite().logical_not().any());
    }
    return any_bad.item<bool>();
  }

  torch::DeviceType device_;
  at::ScalarType dtype_ = at::kBFloat16;
  bool scaling_ = false;
  mutable double scale_;
  double growth_factor_, backoff_factor_;
  std::int64_t growth_interval_;
  mutable std::int64_t clean_steps_ = 0;
  bool found_inf_ = false;
#if EXPRUN_WITH_CUDA
  torch::Tensor device_scale_, device_clean_steps_, device_found_inf_;
#endif
};

}  // namespace

EXPRUN_PLUGIN(MixedPrecision)

#include "fused_pixel_loss.hpp"

#include <ATen/TensorIterator.h>

#include <cmath>
#include <cstdint>

namespace exprun::adaptive_wing {
namespace {

using Index = std::int64_t;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The shape as the floats LibTorch's float kernels compute with: a double scalar meets a float
// tensor as a float.
struct FloatShape {
  float alpha, omega, epsilon, theta, ratio;
};

FloatShape as_floats(const Shape& s) {
  return {static_cast<float>(s.alpha), static_cast<float>(s.omega), static_cast<float>(s.epsilon),
          static_cast<float>(s.theta), static_cast<float>(s.theta / s.epsilon)};
}

// One pixel, in the order and rounding of the tensor operations in adaptive_wing.cpp:
//   |d| <  theta: omega * log1p((|d| / epsilon)^e)                     with e = alpha - y
//   |d| >= theta: A |d| - C, A = omega / (1 + r^e) * e * r^(e-1) / epsilon, r = theta/epsilon
//                            C = theta A - omega * log1p(r^e)
// and, with kGradient, d loss / d predicted: the derivative in |d| times the sign of
// predicted - y (0 where they are equal).
template <bool kGradient>
inline float pixel(float predicted, float y, const FloatShape& s, float* gradient) {
  const float difference = y - predicted;
  const float delta = std::fabs(difference);
  const float exponent = s.alpha - y;
  float loss, slope;
  if (delta < s.theta) {
    const float u = delta / s.epsilon;
    const float powered = std::pow(u, exponent);
    loss = s.omega * std::log1p(powered);
    if constexpr (kGradient) {
      // u^(e-1) as powered / u: one power per pixel instead of two, equal to float rounding.
      const float derivative = u > 0.0f ? exponent * (powered / u) : 0.0f;
      slope = s.omega * (1.0f / (1.0f + powered)) * derivative / s.epsilon;
    }
  } else {
    const float ratio_pow = std::pow(s.ratio, exponent);
    const float a = s.omega * (1.0f / (1.0f + ratio_pow)) * exponent *
                    std::pow(s.ratio, exponent - 1.0f) / s.epsilon;
    const float c = s.theta * a - s.omega * std::log1p(ratio_pow);
    loss = a * delta - c;
    if constexpr (kGradient) slope = a;
  }
  if constexpr (kGradient) {
    *gradient = difference < 0.0f ? slope : (difference > 0.0f ? -slope : 0.0f);
  }
  return loss;
}

// Every pixel on LibTorch's intra-op threads, through a TensorIterator: its for_each is
// LibTorch's own parallel loop (at::parallel_for in a plugin not compiled with OpenMP would run
// serially). The iterator lines the operands up whatever their layouts (a channels-last
// prediction, an NCHW target) and hands over runs with a stride per operand.
template <bool kGradient>
void fill(torch::Tensor& loss, torch::Tensor* gradient, const torch::Tensor& predicted,
          const torch::Tensor& target, const FloatShape& s) {
  auto config = at::TensorIteratorConfig();
  config.add_output(loss);
  if constexpr (kGradient) config.add_output(*gradient);
  config.add_input(predicted).add_input(target).resize_outputs(false);
  auto iterator = config.build();
  constexpr int kPredicted = kGradient ? 2 : 1, kTarget = kPredicted + 1;
  iterator.for_each([&](char** data, const Index* strides, Index size) {
    for (Index i = 0; i < size; ++i) {
      const float p = *reinterpret_cast<const float*>(data[kPredicted] + i * strides[kPredicted]);
      const float y = *reinterpret_cast<const float*>(data[kTarget] + i * strides[kTarget]);
      float* g = kGradient ? reinterpret_cast<float*>(data[1] + i * strides[1]) : nullptr;
      *reinterpret_cast<float*>(data[0] + i * strides[0]) = pixel<kGradient>(p, y, s, g);
    }
  });
}

class PixelLossFunction : public torch::autograd::Function<PixelLossFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor predicted, torch::Tensor target,
                               double alpha, double omega, double epsilon, double theta) {
    auto loss = torch::empty_like(predicted);
    auto gradient = torch::empty_like(predicted);
    fill<true>(loss, &gradient, predicted, target, as_floats({alpha, omega, epsilon, theta}));
    ctx->save_for_backward({gradient});
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // The saved derivative is a constant to autograd: a graph of the backward pass would
    // silently miss the second derivative's terms.
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "adaptive_wing: the fused loss has no second derivative (create_graph); set the "
                "loss's fused = false");
    variable_list out(6);  // one per forward argument; only `predicted` has a gradient
    if (grads[0].defined()) out[0] = grads[0] * ctx->get_saved_variables()[0];
    return out;
  }
};

bool is_float_cpu(const torch::Tensor& t) {
  return t.defined() && t.layout() == torch::kStrided && t.device().is_cpu() &&
         t.scalar_type() == torch::kFloat;
}

}  // namespace

bool can_fuse(const torch::Tensor& predicted, const torch::Tensor& target) {
  return is_float_cpu(predicted) && is_float_cpu(target) && predicted.sizes() == target.sizes() &&
         !target.requires_grad();
}

torch::Tensor fused_pixel_loss(const torch::Tensor& predicted, const torch::Tensor& target,
                               const Shape& shape) {
  TORCH_CHECK(can_fuse(predicted, target), "fused adaptive wing: unsupported tensors");
  if (torch::GradMode::is_enabled() && predicted.requires_grad()) {
    return PixelLossFunction::apply(predicted, target, shape.alpha, shape.omega, shape.epsilon,
                                    shape.theta);
  }
  auto loss = torch::empty_like(predicted);
  fill<false>(loss, nullptr, predicted, target, as_floats(shape));
  return loss;
}

}  // namespace exprun::adaptive_wing

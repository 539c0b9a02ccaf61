#include "train/fused_adam.hpp"

#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <torch/csrc/autograd/variable.h>
#include <exprun/sdk/torch_compat.hpp>

#include <cmath>
#include <cstdint>
#include <memory>

namespace exprun {
namespace {

using Index = std::int64_t;

// One step's coefficients, as the floats LibTorch's float kernels compute with.
struct AdamCoefficients {
  float beta1 = 0, one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0;
  float sqrt_bias_correction2 = 1, eps = 0, negative_step_size = 0;
  float l2 = 0;    // Adam's weight decay, added to the gradient
  float keep = 1;  // AdamW's: the share of itself a parameter keeps before the update
};

// LibTorch's sequence per element: [p *= keep,] [g += l2 * p,] m = m * b1 + (1 - b1) * g,
// v = v * b2 + (1 - b2) * g * g, p += -step_size * m / (sqrt(v) / sqrt(bc2) + eps).
// The file is compiled with -ffp-contract=off, so the vectorised loop and its scalar tail
// round alike, and -fno-math-errno, so that sqrt vectorises.
template <bool kL2, bool kDecoupled>
void update_elements(float* __restrict parameter, const float* __restrict gradient,
                     float* __restrict average, float* __restrict average_square, Index count,
                     const AdamCoefficients& c) {
  for (Index i = 0; i < count; ++i) {
    float p = parameter[i];
    if constexpr (kDecoupled) p = p * c.keep;
    float g = gradient[i];
    if constexpr (kL2) g = g + c.l2 * p;
    const float m = average[i] * c.beta1 + c.one_minus_beta1 * g;
    const float v = average_square[i] * c.beta2 + c.one_minus_beta2 * g * g;
    average[i] = m;
    average_square[i] = v;
    parameter[i] = p + c.negative_step_size * m / (std::sqrt(v) / c.sqrt_bias_correction2 + c.eps);
  }
}

// A parameter of many elements on LibTorch's intra-op threads, through a TensorIterator: its
// for_each is LibTorch's own parallel loop, compiled with LibTorch's OpenMP. (at::parallel_for
// is a header template, serial unless the caller is compiled with OpenMP, and an executable
// compiled so would need an OpenMP runtime of its own next to LibTorch's.) The operands are laid
// out alike, so the iterator hands over contiguous runs.
template <bool kL2, bool kDecoupled>
void update_parameter(torch::Tensor& parameter, const torch::Tensor& gradient,
                      torch::Tensor& average, torch::Tensor& average_square,
                      const AdamCoefficients& c) {
  const Index count = parameter.numel();
  if (count < at::internal::GRAIN_SIZE) {  // one task's worth: no iterator to build
    update_elements<kL2, kDecoupled>(parameter.data_ptr<float>(), gradient.data_ptr<float>(),
                                     average.data_ptr<float>(), average_square.data_ptr<float>(),
                                     count, c);
    return;
  }
  auto iterator = at::TensorIteratorConfig()
                      .add_output(parameter)
                      .add_output(average)
                      .add_output(average_square)
                      .add_input(gradient)
                      .resize_outputs(false)
                      .build();
  iterator.for_each([&](char** data, const Index* strides, Index size) {
    constexpr Index kFloat = sizeof(float);
    const bool contiguous = strides[0] == kFloat && strides[1] == kFloat && strides[2] == kFloat &&
                            strides[3] == kFloat;
    const Index runs = contiguous ? 1 : size, run_length = contiguous ? size : 1;
    for (Index r = 0; r < runs; ++r) {
      update_elements<kL2, kDecoupled>(reinterpret_cast<float*>(data[0] + r * strides[0]),
                                       reinterpret_cast<const float*>(data[3] + r * strides[3]),
                                       reinterpret_cast<float*>(data[1] + r * strides[1]),
                                       reinterpret_cast<float*>(data[2] + r * strides[2]),
                                       run_length, c);
    }
  });
}

bool is_dense_float_cpu(const torch::Tensor& t) {
  return t.layout() == torch::kStrided && t.device().is_cpu() && t.scalar_type() == torch::kFloat &&
         t.is_non_overlapping_and_dense();
}

// `t` laid out as `parameter` is (type, device, strides), so that element i of the one is
// element i of the other in memory. A gradient bucket's view of a channels-last weight, or a
// state read from a checkpoint, may be laid out otherwise: copied then.
torch::Tensor laid_out_like(const torch::Tensor& parameter, const torch::Tensor& t) {
  if (t.layout() == torch::kStrided && t.scalar_type() == parameter.scalar_type() &&
      t.device() == parameter.device() && t.sizes() == parameter.sizes() &&
      t.strides() == parameter.strides()) {
    return t;
  }
  return torch::empty_like(parameter).copy_(t);
}

template <class Options>
bool can_fuse(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    if (static_cast<const Options&>(group.options()).amsgrad()) return false;
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!is_dense_float_cpu(p) || p.grad().layout() != torch::kStrided) return false;
    }
  }
  return true;
}

// The state LibTorch's step would find or make for `p`, its moments laid out like `p`.
template <class State>
State& state_of(torch::optim::Optimizer& optimizer, const torch::Tensor& p) {
  auto* found = static_cast<State*>(sdk::compat::optimizer_state(optimizer, p));
  if (!found) {
    auto fresh = std::make_unique<State>();
    fresh->step(0);
    fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    found = fresh.get();
    sdk::compat::set_optimizer_state(optimizer, p, std::move(fresh));
  }
  found->exp_avg(laid_out_like(p, found->exp_avg()));
  found->exp_avg_sq(laid_out_like(p, found->exp_avg_sq()));
  return *found;
}

template <class Options, class State>
void step_every_parameter(torch::optim::Optimizer& optimizer, bool decoupled_decay) {
  for (auto& group : optimizer.param_groups()) {
    const auto& options = static_cast<const Options&>(group.options());
    const double beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
    const double decay = options.weight_decay();
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const torch::Tensor gradient = laid_out_like(p, p.grad());
      State& state = state_of<State>(optimizer, p);
      state.step(state.step() + 1);
      const auto step = static_cast<double>(state.step());
      AdamCoefficients c;
      c.beta1 = static_cast<float>(beta1);
      c.one_minus_beta1 = static_cast<float>(1 - beta1);
      c.beta2 = static_cast<float>(beta2);
      c.one_minus_beta2 = static_cast<float>(1 - beta2);
      c.sqrt_bias_correction2 = static_cast<float>(std::sqrt(1 - std::pow(beta2, step)));
      c.eps = static_cast<float>(options.eps());
      c.negative_step_size = static_cast<float>(-options.lr() / (1 - std::pow(beta1, step)));
      torch::Tensor& m = state.exp_avg();
      torch::Tensor& v = state.exp_avg_sq();
      if (decay != 0 && decoupled_decay) {
        c.keep = static_cast<float>(1 - options.lr() * decay);
        update_parameter<false, true>(p, gradient, m, v, c);
      } else if (decay != 0) {
        c.l2 = static_cast<float>(decay);
        update_parameter<true, false>(p, gradient, m, v, c);
      } else {
        update_parameter<false, false>(p, gradient, m, v, c);
      }
      // As an in-place operation would: autograd checks these counts on tensors it saved.
      torch::autograd::impl::bump_version(p);
      torch::autograd::impl::bump_version(state.exp_avg());
      torch::autograd::impl::bump_version(state.exp_avg_sq());
    }
  }
}

torch::Tensor evaluate(const torch::optim::Optimizer::LossClosure& closure) {
  if (!closure) return {};
  at::AutoGradMode enable_grad(true);
  return closure();
}

}  // namespace

torch::Tensor FusedAdam::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = evaluate(closure);
  if (!can_fuse<torch::optim::AdamOptions>(*this)) {
    torch::optim::Adam::step();
    return loss;
  }
  step_every_parameter<torch::optim::AdamOptions, torch::optim::AdamParamState>(*this, false);
  return loss;
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = evaluate(closure);
  if (!can_fuse<torch::optim::AdamWOptions>(*this)) {
    torch::optim::AdamW::step();
    return loss;
  }
  step_every_parameter<torch::optim::AdamWOptions, torch::optim::AdamWParamState>(*this, true);
  return loss;
}

}  // namespace exprun

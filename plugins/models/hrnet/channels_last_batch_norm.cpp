#include "channels_last_batch_norm.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <numeric>
#include <ostream>
#include <utility>
#include <vector>

namespace exprun::hrnet {
namespace {

using Index = std::int64_t;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The project builds for baseline x86-64; these loops are most of the kernel's time, so they
// also get an AVX2 version that the loader picks on CPUs that have it.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define EXPRUN_HOT_LOOP __attribute__((target_clones("avx2", "default")))
// What a hot loop calls must be inlined into each of its versions, or it runs as the default.
#define EXPRUN_INLINED __attribute__((always_inline))
#else
#define EXPRUN_HOT_LOOP
#define EXPRUN_INLINED
#endif

// An NHWC tensor is a [rows, channels] matrix stored row after row: flat element i belongs to
// channel i % channels. The loops below walk the flat elements in chunks of `period`, a
// multiple of the channel count and of 16, against per-channel vectors repeated to `period`
// values. So every loop is long and vectorises whatever the channel count: looping over one
// row's channels would leave HRNet's 8 or 18 channels with a loop of 1 to 3 vectors per row.

// Lanes of a period summed together in registers: 16 floats, four AVX2 vectors of doubles per
// sum.
constexpr Index kLanes = 16;

Index period_for(Index channels) {
  const Index period = std::lcm(channels, kLanes);
  return period <= 4096 ? period : channels;  // A long period would leave the L1 cache.
}

// Four floats widened to doubles. GCC's vector types, since its auto-vectoriser turns sums
// kept in arrays into spilled scalars; the default version gets SSE2 pairs of them.
using Floats4 = float __attribute__((vector_size(16)));
using Doubles4 = double __attribute__((vector_size(32)));
constexpr Index kVectors = kLanes / 4;

EXPRUN_INLINED inline Doubles4 widened(const float* p) {
  Floats4 f;
  std::memcpy(&f, p, sizeof f);
  return __builtin_convertvector(f, Doubles4);
}

// For each position j of a period, adds term(i) for elements i = j, j + period, ... of the
// first `count` (whole periods, then the partial one at the end) into first[j] and second[j]:
// term(v, w, i) adds element i..i+3's pair of terms into vectors v and w. Sums run strip of
// kLanes by strip, so a strip's sums stay in registers while the loop strides through the
// periods.
template <class Term, class ScalarTerm>
EXPRUN_INLINED inline void add_period_sums(Index count, Index period, const Term& term,
                                           const ScalarTerm& scalar_term, double* first,
                                           double* second) {
  const Index whole = count / period;
  Index j = 0;
  for (; j + kLanes <= period; j += kLanes) {
    Doubles4 a[kVectors] = {}, b[kVectors] = {};
    for (Index p = 0; p < whole; ++p) {
      for (Index k = 0; k < kVectors; ++k) term(a[k], b[k], p * period + j + 4 * k);
    }
    for (Index k = 0; k < kVectors; ++k) {
      for (Index l = 0; l < 4; ++l) {
        first[j + 4 * k + l] += a[k][l];
        second[j + 4 * k + l] += b[k][l];
      }
    }
  }
  for (; j < period; ++j) {  // Lanes left over when the period is no multiple of kLanes.
    for (Index p = 0; p < whole; ++p) scalar_term(first[j], second[j], p * period + j);
  }
  for (Index i = whole * period; i < count; ++i) {
    scalar_term(first[i - whole * period], second[i - whole * period], i);
  }
}

// sum[j] += x, sum_sq[j] += x^2 over elements j, j + period, ... of x[0, count).
EXPRUN_HOT_LOOP void add_moments(const float* x, Index count, Index period, double* sum,
                                 double* sum_sq) {
  add_period_sums(
      count, period,
      [x](Doubles4& s, Doubles4& q, Index i) EXPRUN_INLINED {
        const Doubles4 v = widened(x + i);
        s += v;
        q += v * v;
      },
      [x](double& s, double& q, Index i) EXPRUN_INLINED {
        const double v = x[i];
        s += v;
        q += v * v;
      },
      sum, sum_sq);
}

// sum_dy[j] += dy, sum_dy_x[j] += dy * x, the same way.
EXPRUN_HOT_LOOP void add_gradient_sums(const float* dy, const float* x, Index count, Index period,
                                       double* sum_dy, double* sum_dy_x) {
  add_period_sums(
      count, period,
      [dy, x](Doubles4& g, Doubles4& gx, Index i) EXPRUN_INLINED {
        const Doubles4 d = widened(dy + i);
        g += d;
        gx += d * widened(x + i);
      },
      [dy, x](double& g, double& gx, Index i) EXPRUN_INLINED {
        const double d = dy[i];
        g += d;
        gx += d * x[i];
      },
      sum_dy, sum_dy_x);
}

// y = x * scale + shift.
EXPRUN_HOT_LOOP void scale_shift(const float* x, Index count, Index period, const float* scale,
                                 const float* shift, float* y) {
  for (Index start = 0; start < count; start += period) {
    const Index n = std::min(period, count - start);
    for (Index j = 0; j < n; ++j) y[start + j] = x[start + j] * scale[j] + shift[j];
  }
}

// As LibTorch's relu (clamp_min(0)): NaN and -0 pass through unchanged, so that a diverging
// run still shows NaN and the bits equal batch norm followed by torch::relu.
EXPRUN_INLINED inline float relu(float v) { return v < 0.f ? 0.f : v; }

// y = relu(x * scale + shift), rounded after each operation as the unfused ops round.
EXPRUN_HOT_LOOP void scale_shift_relu(const float* x, Index count, Index period, const float* scale,
                                      const float* shift, float* y) {
  for (Index start = 0; start < count; start += period) {
    const Index n = std::min(period, count - start);
    for (Index j = 0; j < n; ++j) y[start + j] = relu(x[start + j] * scale[j] + shift[j]);
  }
}

// y = relu((x * scale + shift) + residual): a residual block's batch norm, sum and ReLU.
EXPRUN_HOT_LOOP void scale_shift_add_relu(const float* x, const float* residual, Index count,
                                          Index period, const float* scale, const float* shift,
                                          float* y) {
  for (Index start = 0; start < count; start += period) {
    const Index n = std::min(period, count - start);
    for (Index j = 0; j < n; ++j) {
      const float normalised = x[start + j] * scale[j] + shift[j];
      y[start + j] = relu(normalised + residual[start + j]);
    }
  }
}

// The ReLU's backward as ATen's threshold_backward(dy, y, 0): d = y <= 0 ? 0 : dy.
EXPRUN_HOT_LOOP void relu_gradient(const float* dy, const float* y, Index count, float* d) {
  for (Index i = 0; i < count; ++i) d[i] = y[i] <= 0.f ? 0.f : dy[i];
}

// dx = dy * a + (x - mean) * k + b.
EXPRUN_HOT_LOOP void input_gradient(const float* dy, const float* x, Index count, Index period,
                                    const float* mean, const float* a, const float* k,
                                    const float* b, float* dx) {
  for (Index start = 0; start < count; start += period) {
    const Index n = std::min(period, count - start);
    for (Index j = 0; j < n; ++j) {
      const Index i = start + j;
      dx[i] = dy[i] * a[j] + (x[i] - mean[j]) * k[j] + b[j];
    }
  }
}

// Rows per block of the sums. Each block is summed alone and the blocks' sums are added in
// order, so the statistics are the same bits whatever the number of threads. A block's
// elements are a whole number of periods (the period divides 16 x channels).
constexpr Index kRowsPerBlock = 256;
// About this many floats per task of the element-wise passes.
constexpr Index kElementsPerTask = 32768;

// Two per-channel sums of the whole tensor: add_block(offset, count, first, second) adds
// elements [offset, offset + count) into two period-long vectors; blocks are added in order.
template <class AddBlock>
std::pair<std::vector<double>, std::vector<double>> sum_per_channel(Index rows, Index channels,
                                                                    const AddBlock& add_block) {
  const Index period = period_for(channels);
  const Index elements = rows * channels;
  const Index block = kRowsPerBlock * channels;
  const Index blocks = (elements + block - 1) / block;
  std::vector<double> partial(static_cast<std::size_t>(blocks * 2 * period), 0.0);
  at::parallel_for(0, blocks, 1, [&](Index first, Index last) {
    for (Index b = first; b < last; ++b) {
      double* sums = partial.data() + b * 2 * period;
      add_block(b * block, std::min(block, elements - b * block), sums, sums + period);
    }
  });
  std::vector<double> first(static_cast<std::size_t>(channels), 0.0), second(first);
  for (Index b = 0; b < blocks; ++b) {
    const double* sums = partial.data() + b * 2 * period;
    for (Index j = 0; j < period; ++j) {
      first[j % channels] += sums[j];
      second[j % channels] += sums[period + j];
    }
  }
  return {first, second};
}

// body(offset, count) over the flat elements, in tasks that start on a period.
template <class Body>
void for_each_span(Index rows, Index channels, const Body& body) {
  const Index period = period_for(channels);
  const Index elements = rows * channels;
  const Index chunks = (elements + period - 1) / period;
  at::parallel_for(0, chunks, std::max<Index>(1, kElementsPerTask / period),
                   [&](Index first, Index last) {
                     const Index offset = first * period;
                     body(offset, std::min(last * period, elements) - offset);
                   });
}

// A per-channel vector as `period` floats: value c at c, c + channels, ...
torch::Tensor repeated_to_period(const std::vector<double>& per_channel) {
  const auto channels = static_cast<Index>(per_channel.size());
  const Index period = period_for(channels);
  auto out = torch::empty({period}, torch::kFloat);
  float* p = out.data_ptr<float>();
  for (Index j = 0; j < period; ++j) p[j] = static_cast<float>(per_channel[j % channels]);
  return out;
}

torch::Tensor float_tensor(const std::vector<double>& values) {
  auto out = torch::empty({static_cast<Index>(values.size())}, torch::kFloat);
  std::transform(values.begin(), values.end(), out.data_ptr<float>(),
                 [](double v) { return static_cast<float>(v); });
  return out;
}

torch::Tensor double_tensor(const std::vector<double>& values) {
  auto out = torch::empty({static_cast<Index>(values.size())}, torch::kDouble);
  std::copy(values.begin(), values.end(), out.data_ptr<double>());
  return out;
}

std::vector<double> as_doubles(const torch::Tensor& t) {
  auto d = t.to(torch::kDouble).contiguous();
  return {d.data_ptr<double>(), d.data_ptr<double>() + d.numel()};
}

class BatchNormFunction : public torch::autograd::Function<BatchNormFunction> {
 public:
  // `then` is a BatchNormThen; residual is used with kAddAndRelu alone, and is an empty
  // tensor otherwise (LibTorch 1.13's custom functions take no undefined tensor inputs).
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor input, torch::Tensor weight,
                               torch::Tensor bias, torch::Tensor running_mean,
                               torch::Tensor running_var, torch::Tensor residual, double momentum,
                               double eps, std::int64_t then) {
    const bool add_residual = then == static_cast<std::int64_t>(BatchNormThen::kAddAndRelu);
    const bool relu = then != static_cast<std::int64_t>(BatchNormThen::kNothing);
    const Index channels = input.size(1);
    const Index rows = input.numel() / channels;
    TORCH_CHECK(rows > 1, "Expected more than 1 value per channel when training, got input size ",
                input.sizes());
    const float* x = input.data_ptr<float>();
    const Index period = period_for(channels);

    // One pass for both moments: in double, sum of squares less the squared mean loses
    // nothing that matters for float activations.
    const auto [sum, sum_sq] =
        sum_per_channel(rows, channels, [&](Index offset, Index count, double* s, double* q) {
          add_moments(x + offset, count, period, s, q);
        });
    const auto w = as_doubles(weight);
    const auto beta = as_doubles(bias);
    const auto n = static_cast<double>(rows);
    std::vector<double> mean(sum.size()), var(sum.size()), invstd(sum.size()), scale(sum.size()),
        shift(sum.size());
    for (Index c = 0; c < channels; ++c) {
      mean[c] = sum[c] / n;
      var[c] = std::max(0.0, sum_sq[c] / n - mean[c] * mean[c]);
      invstd[c] = 1.0 / std::sqrt(var[c] + eps);
      scale[c] = w[c] * invstd[c];
      shift[c] = beta[c] - mean[c] * scale[c];
    }
    const auto scale_p = repeated_to_period(scale);
    const auto shift_p = repeated_to_period(shift);
    auto output = torch::empty_like(input, torch::MemoryFormat::ChannelsLast);
    float* y = output.data_ptr<float>();
    const float* r = add_residual ? residual.data_ptr<float>() : nullptr;
    for_each_span(rows, channels, [&](Index offset, Index count) {
      const float* sc = scale_p.data_ptr<float>();
      const float* sh = shift_p.data_ptr<float>();
      if (r) {
        scale_shift_add_relu(x + offset, r + offset, count, period, sc, sh, y + offset);
      } else if (relu) {
        scale_shift_relu(x + offset, count, period, sc, sh, y + offset);
      } else {
        scale_shift(x + offset, count, period, sc, sh, y + offset);
      }
    });

    // As ATen: the running variance is the unbiased batch variance.
    const auto unbiased = static_cast<double>(rows) / static_cast<double>(rows - 1);
    float* rm = running_mean.data_ptr<float>();
    float* rv = running_var.data_ptr<float>();
    for (Index c = 0; c < channels; ++c) {
      rm[c] = static_cast<float>((1.0 - momentum) * rm[c] + momentum * mean[c]);
      rv[c] = static_cast<float>((1.0 - momentum) * rv[c] + momentum * var[c] * unbiased);
    }

    // The ReLU's backward needs its output, as torch::relu's does; saved as an output, so an
    // in-place change of it before backward is an error rather than a wrong gradient.
    ctx->save_for_backward({input, weight, double_tensor(mean), double_tensor(invstd),
                            relu ? output : torch::Tensor()});
    ctx->saved_data["residual"] = add_residual;
    return output;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& input = saved[0];
    const auto w = as_doubles(saved[1]);
    const auto mean = as_doubles(saved[2]);
    const auto invstd = as_doubles(saved[3]);
    const auto& relu_output = saved[4];
    variable_list out(9);
    if (!grads[0].defined()) return out;
    auto grad = grads[0].to(torch::kFloat).contiguous(torch::MemoryFormat::ChannelsLast);

    const Index channels = input.size(1);
    const Index rows = input.numel() / channels;
    const float* x = input.data_ptr<float>();
    const Index period = period_for(channels);
    if (relu_output.defined()) {
      // From here on, grad is the gradient behind the ReLU: that of the residual too.
      auto behind_relu = torch::empty_like(input, torch::MemoryFormat::ChannelsLast);
      const float* upstream = grad.data_ptr<float>();
      const float* y = relu_output.data_ptr<float>();
      float* d = behind_relu.data_ptr<float>();
      for_each_span(rows, channels, [&](Index offset, Index count) {
        relu_gradient(upstream + offset, y + offset, count, d + offset);
      });
      grad = behind_relu;
    }
    const float* dy = grad.data_ptr<float>();
    const auto [sum_dy, sum_dy_x] =
        sum_per_channel(rows, channels, [&](Index offset, Index count, double* g, double* gx) {
          add_gradient_sums(dy + offset, x + offset, count, period, g, gx);
        });

    // dx = w invstd (dy - mean(dy) - (x - mean) invstd^2 mean(dy (x - mean))).
    const auto n = static_cast<double>(rows);
    std::vector<double> a(mean.size()), k(mean.size()), b(mean.size()), dw(mean.size());
    for (Index c = 0; c < channels; ++c) {
      const double sum_dy_centred = sum_dy_x[c] - mean[c] * sum_dy[c];
      a[c] = w[c] * invstd[c];
      k[c] = -a[c] * invstd[c] * invstd[c] * sum_dy_centred / n;
      b[c] = -a[c] * sum_dy[c] / n;
      dw[c] = sum_dy_centred * invstd[c];
    }
    const auto mean_p = repeated_to_period(mean);
    const auto a_p = repeated_to_period(a);
    const auto k_p = repeated_to_period(k);
    const auto b_p = repeated_to_period(b);
    auto grad_input = torch::empty_like(input, torch::MemoryFormat::ChannelsLast);
    float* dx = grad_input.data_ptr<float>();
    for_each_span(rows, channels, [&](Index offset, Index count) {
      input_gradient(dy + offset, x + offset, count, period, mean_p.data_ptr<float>(),
                     a_p.data_ptr<float>(), k_p.data_ptr<float>(), b_p.data_ptr<float>(),
                     dx + offset);
    });
    out[0] = grad_input;
    out[1] = float_tensor(dw);
    out[2] = float_tensor(sum_dy);
    if (ctx->saved_data["residual"].toBool()) out[5] = grad;
    return out;
  }
};

bool is_float_cpu_vector(const torch::Tensor& t, Index size) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.dim() == 1 &&
         t.size(0) == size && t.is_contiguous();
}

}  // namespace

bool uses_channels_last_kernel(const torch::Tensor& input) {
  // A tensor contiguous both ways (one channel, or one pixel) keeps LibTorch's batch norm.
  return input.defined() && input.layout() == torch::kStrided && input.device().is_cpu() &&
         input.scalar_type() == torch::kFloat && input.dim() == 4 &&
         input.is_contiguous(torch::MemoryFormat::ChannelsLast) && !input.is_contiguous();
}

torch::Tensor channels_last_batch_norm_train(const torch::Tensor& input,
                                             const torch::Tensor& weight, const torch::Tensor& bias,
                                             torch::Tensor running_mean, torch::Tensor running_var,
                                             double momentum, double eps, BatchNormThen then,
                                             const torch::Tensor& residual) {
  TORCH_CHECK(uses_channels_last_kernel(input),
              "channels_last_batch_norm_train: expected a 4-D float CPU tensor in channels-last "
              "layout, got sizes ",
              input.sizes(), " strides ", input.strides());
  const Index channels = input.size(1);
  const std::initializer_list<const torch::Tensor*> vectors{&weight, &bias, &running_mean,
                                                            &running_var};
  for (const torch::Tensor* t : vectors) {
    TORCH_CHECK(is_float_cpu_vector(*t, channels),
                "channels_last_batch_norm_train: expected contiguous float CPU vectors of ",
                channels, " values for weight, bias and running statistics");
  }
  const bool add_residual = then == BatchNormThen::kAddAndRelu;
  TORCH_CHECK(add_residual == residual.defined(),
              "channels_last_batch_norm_train: a residual goes with BatchNormThen::kAddAndRelu, "
              "and only with it");
  if (add_residual) {
    TORCH_CHECK(uses_channels_last_kernel(residual) && residual.sizes() == input.sizes(),
                "channels_last_batch_norm_train: expected a residual of the input's sizes ",
                input.sizes(), " in channels-last float CPU layout, got sizes ", residual.sizes(),
                " strides ", residual.strides());
  }
  return BatchNormFunction::apply(input, weight, bias, running_mean, running_var,
                                  add_residual ? residual : torch::empty({0}), momentum, eps,
                                  static_cast<std::int64_t>(then));
}

ChannelsLastBatchNorm2dImpl::ChannelsLastBatchNorm2dImpl(const torch::nn::BatchNormOptions& o)
    : options(o) {
  reset();
}

// As torch::nn::BatchNorm2d: weight 1, bias 0, running mean 0, running variance 1, no batch.
void ChannelsLastBatchNorm2dImpl::reset() {
  const Index features = options.num_features();
  weight = bias = running_mean = running_var = num_batches_tracked = torch::Tensor();
  if (options.affine()) {
    weight = register_parameter("weight", torch::ones({features}));
    bias = register_parameter("bias", torch::zeros({features}));
  } else {
    register_parameter("weight", torch::Tensor(), /*requires_grad=*/false);
    register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({features}));
    running_var = register_buffer("running_var", torch::ones({features}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
  } else {
    register_buffer("running_mean", torch::Tensor());
    register_buffer("running_var", torch::Tensor());
    register_buffer("num_batches_tracked", torch::Tensor());
  }
}

void ChannelsLastBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha << "torch::nn::BatchNorm2d(" << options.num_features()
         << ", eps=" << options.eps() << ", momentum=";
  if (options.momentum().has_value()) {
    stream << *options.momentum();
  } else {
    stream << "None";
  }
  stream << ", affine=" << options.affine()
         << ", track_running_stats=" << options.track_running_stats() << ")";
}

torch::Tensor ChannelsLastBatchNorm2dImpl::forward(const torch::Tensor& input) {
  return forward_then(input, BatchNormThen::kNothing, {});
}

torch::Tensor ChannelsLastBatchNorm2dImpl::forward_relu(const torch::Tensor& input) {
  return forward_then(input, BatchNormThen::kRelu, {});
}

torch::Tensor ChannelsLastBatchNorm2dImpl::forward_add_relu(const torch::Tensor& input,
                                                            const torch::Tensor& residual) {
  return forward_then(input, BatchNormThen::kAddAndRelu, residual);
}

torch::Tensor ChannelsLastBatchNorm2dImpl::forward_then(const torch::Tensor& input,
                                                        BatchNormThen then,
                                                        const torch::Tensor& residual) {
  TORCH_CHECK(input.dim() == 4, "BatchNorm2d: expected 4D input (got ", input.dim(), "D input)");
  // As BatchNormImplBase::forward: a training batch is counted, and without a momentum the
  // running statistics are the cumulative average.
  double factor = options.momentum().value_or(0.0);
  if (is_training() && options.track_running_stats()) {
    num_batches_tracked += 1;
    if (!options.momentum().has_value()) {
      factor = 1.0 / num_batches_tracked.item<double>();
    }
  }
  if (is_training() && options.affine() && options.track_running_stats() &&
      uses_channels_last_kernel(input) && is_float_cpu_vector(weight, input.size(1)) &&
      (then != BatchNormThen::kAddAndRelu ||
       (uses_channels_last_kernel(residual) && residual.sizes() == input.sizes()))) {
    return channels_last_batch_norm_train(input, weight, bias, running_mean, running_var, factor,
                                          options.eps(), then, residual);
  }
  auto out = torch::nn::functional::detail::batch_norm(
      input, running_mean, running_var, weight, bias,
      is_training() || !options.track_running_stats(), factor, options.eps());
  switch (then) {
    case BatchNormThen::kNothing:
      return out;
    case BatchNormThen::kRelu:
      return torch::relu(out);
    case BatchNormThen::kAddAndRelu:
      return torch::relu(out + residual);
  }
  return out;
}

}  // namespace exprun::hrnet

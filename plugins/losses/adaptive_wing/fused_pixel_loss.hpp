// Adaptive wing's per-pixel loss on the CPU in one pass over the pixels, with its gradient
// computed in the same pass.
//
// Written as tensor operations the loss is about fifteen passes forward and twenty backward
// over N x K x H x W floats, four of them pow with a tensor exponent (alpha - target), the
// slowest elementwise operation LibTorch has: about 5% of the quickstart's training step on a
// CPU (docs/benchmarks.md#fused-adaptive-wing). LibTorch has no kernel for this loss, and no
// composition of its kernels avoids the passes, hence a loop of our own.
#pragma once

#include <torch/torch.h>

namespace exprun::adaptive_wing {

struct Shape {
  double alpha, omega, epsilon, theta;
};

// Whether fused_pixel_loss computes the loss of `predicted` (float) against `target` (float):
// CPU tensors of equal sizes, the target not itself being trained.
bool can_fuse(const torch::Tensor& predicted, const torch::Tensor& target);

// The per-pixel adaptive wing loss, laid out as `predicted`, differentiable with respect to
// `predicted` (once: the gradient is computed in the forward pass and saved). Equal to the
// tensor operations' to float rounding, not to the bit (C's powf and log1pf against LibTorch's
// vectorised ones), and independent of the thread count. At |predicted - target| = 0 its
// gradient is 0, as abs's is in LibTorch.
torch::Tensor fused_pixel_loss(const torch::Tensor& predicted, const torch::Tensor& target,
                               const Shape& shape);

}  // namespace exprun::adaptive_wing

// Batch norm for channels-last (NHWC) float tensors on the CPU, in training mode.
//
// With `channels_last = true`, oneDNN runs HRNet's convolutions on NHWC tensors directly, a
// third faster on CPU than on NCHW tensors it has to reorder to its blocked layout and back
// around every convolution. LibTorch 1.13's own channels-last batch norm, however, is several
// times slower than its NCHW one at HRNet's channel counts (18, 36, 72, 144: not a multiple of
// its vector width), and took back what the convolutions gained. This one sums each channel
// over the rows of the [N*H*W, C] matrix an NHWC tensor is, with the per-row loop over the
// channels contiguous, as neither LibTorch's kernel nor a composition of its reductions does.
//
// NCHW tensors, other dtypes, devices and evaluation mode keep LibTorch's batch norm, so the
// default NCHW model stays bitwise that of the PyTorch reference.
#pragma once

#include <torch/torch.h>

namespace exprun::hrnet {

// What follows the batch norm in the same pass over memory. HRNet follows most of its batch
// norms with a ReLU, and a residual block's last one with the sum and a ReLU; done as separate
// ops, each reads and writes the whole activation again, in forward and in backward.
enum class BatchNormThen { kNothing, kRelu, kAddAndRelu };

// Training-mode batch norm of `input` (4-D, float, CPU, channels-last contiguous) with
// autograd: batch statistics normalise it, and running_mean/running_var move `momentum` of the
// way towards them (the variance unbiased), as torch::nn::functional::batch_norm does.
// Statistics are summed in fixed blocks of rows, in order, so results do not depend on the
// number of threads. `then`: the output is relu(bn(input)), or relu(bn(input) + residual)
// (residual: the input's sizes and layout), with the same bits, forward and backward, as those
// ops done one by one.
torch::Tensor channels_last_batch_norm_train(const torch::Tensor& input,
                                             const torch::Tensor& weight, const torch::Tensor& bias,
                                             torch::Tensor running_mean, torch::Tensor running_var,
                                             double momentum, double eps,
                                             BatchNormThen then = BatchNormThen::kNothing,
                                             const torch::Tensor& residual = {});

// Whether the module below uses channels_last_batch_norm_train for `input` in training mode.
bool uses_channels_last_kernel(const torch::Tensor& input);

// torch::nn::BatchNorm2d's module, with the same options, parameters, buffers, state-dict names
// and printout, whose training-mode forward takes the kernel above for the tensors
// uses_channels_last_kernel accepts. It does not derive from torch::nn::BatchNorm2dImpl: Debian's
// LibTorch 1.13 exports no BatchNormImplBase<2>::pretty_print, which a class derived from it
// needs, so a plugin with one would not load.
class ChannelsLastBatchNorm2dImpl : public torch::nn::Cloneable<ChannelsLastBatchNorm2dImpl> {
 public:
  explicit ChannelsLastBatchNorm2dImpl(const torch::nn::BatchNormOptions& options);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  // torch::relu(forward(input)) and torch::relu(forward(input) + residual), in one pass where
  // forward takes the kernel above.
  torch::Tensor forward_relu(const torch::Tensor& input);
  torch::Tensor forward_add_relu(const torch::Tensor& input, const torch::Tensor& residual);

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  torch::Tensor forward_then(const torch::Tensor& input, BatchNormThen then,
                             const torch::Tensor& residual);
};
TORCH_MODULE(ChannelsLastBatchNorm2d);

}  // namespace exprun::hrnet

// Activation checkpointing for model plugins: a segment runs its forward pass without keeping
// its intermediate activations and runs it again during backward to get them back. Memory
// falls by those activations; compute rises by one more forward pass of the segment.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace exprun::sdk {

using SegmentFunction =
    std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)>;

// Runs `run(inputs)` as one checkpointed segment whose parameters and buffers belong to
// `segment`. Without gradient recording (evaluation, torch::NoGradGuard) it is a plain call.
//
// The recomputation sees what the first pass saw: the same autocast state and the same random
// stream (the generator of the inputs' device), so dropout draws the same mask. Batch norm
// running statistics are updated once, as without checkpointing: the second pass's update is
// undone. `run` must compute its outputs from `inputs` and the segment's own parameters only,
// and return tensors that are not `inputs` themselves.
std::vector<torch::Tensor> checkpoint_segment(torch::nn::Module& segment, SegmentFunction run,
                                              const std::vector<torch::Tensor>& inputs);

// One input, one output.
torch::Tensor checkpoint_segment(torch::nn::Module& segment,
                                 const std::function<torch::Tensor(const torch::Tensor&)>& run,
                                 const torch::Tensor& input);

}  // namespace exprun::sdk

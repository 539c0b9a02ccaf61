// Full fp32 precision for inference on CUDA.
#pragma once

namespace exprun {

// Turns TF32 off for cuDNN convolutions and cuBLAS matmuls. LibTorch allows TF32 in cuDNN
// convolutions by default on Ampere and later GPUs, which moves predicted landmarks by up to a
// few tenths of a pixel against the CPU; `predict` and `eval` are cheap enough to run in full
// fp32, so they give the CPU's answer. Training keeps LibTorch's default. No effect without
// CUDA.
void use_full_fp32_on_cuda();

}  // namespace exprun

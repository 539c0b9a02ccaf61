// What the tests in tests/cuda/ share: the skip when LibTorch sees no CUDA device, and a tiny
// experiment whose stage trains on "cuda". Every *_test.cpp here is compiled in every build;
// its tests skip with a reason where there is no device (always with a CPU LibTorch), and run
// for real under scripts/gpu-check.sh. Code that needs CUDA-only APIs sits inside
// #if EXPRUN_WITH_CUDA.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>

// Skips the current test when no CUDA device is visible. A macro, not a function: GTEST_SKIP
// returns from the function it is written in.
#if EXPRUN_WITH_CUDA
#define EXPRUN_SKIP_WITHOUT_CUDA()                                                       \
  do {                                                                                   \
    if (!torch::cuda::is_available())                                                    \
      GTEST_SKIP() << "no CUDA device visible to LibTorch (torch::cuda::is_available() " \
                      "is false); scripts/gpu-check.sh runs this on a GPU";              \
  } while (0)
#else
#define EXPRUN_SKIP_WITHOUT_CUDA()                                                  \
  do {                                                                              \
    if (!torch::cuda::is_available())                                               \
      GTEST_SKIP() << "built against a CPU LibTorch (EXPRUN_WITH_CUDA=0): no CUDA " \
                      "device can be used";                                         \
  } while (0)
#endif

namespace exprun::test {

constexpr std::int64_t kMiB = std::int64_t{1} << 20;

// An experiment file for in-process stage tests on the GPU: synthetic_ceph, a U-Net of width 8
// and depth 3 (about 110k parameters, heatmaps at input / 4), MSE, Adam, micro_batch = "auto",
// batches prepared on the calling thread (workers = 0), cuDNN autotuning off (its timing runs
// would allocate workspaces of their own on the first step of each shape). The activations
// grow linearly with the micro-batch and dominate its peak memory.
inline std::string cuda_tuner_experiment(std::int64_t width, std::int64_t height,
                                         std::int64_t effective_batch) {
  return "[experiment]\n"
         "name = \"cuda_tuner\"\n"
         "seed = 5\n"
         "\n"
         "[defaults]\n"
         "device = \"cuda\"\n"
         "cudnn_benchmark = false\n"
         "\n"
         "[defaults.data]\n"
         "plugin = \"synthetic_ceph\"\n"
         "image_size = [" +
         std::to_string(width) + ", " + std::to_string(height) +
         "]\n"
         "sigma = 2.0\n"
         "workers = 0\n"
         "train_count = 16\n"
         "valid_count = 2\n"
         "\n"
         "[defaults.model]\n"
         "plugin = \"unet\"\n"
         "width = 8\n"
         "depth = 3\n"
         "\n"
         "[defaults.loss]\n"
         "plugin = \"mse\"\n"
         "\n"
         "[defaults.memory]\n"
         "effective_batch = " +
         std::to_string(effective_batch) +
         "\n"
         "micro_batch = \"auto\"\n"
         "\n"
         "[defaults.optimizer]\n"
         "name = \"adam\"\n"
         "lr = 1e-3\n"
         "\n"
         "[[stage]]\n"
         "name = \"train\"\n"
         "epochs = 1\n";
}

}  // namespace exprun::test

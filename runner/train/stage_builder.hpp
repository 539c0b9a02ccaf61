// Builds everything a stage needs from its config through the registry: datasets, model,
// loss, memory strategies, the sample pipeline. `exprun plan` stops here; training goes on.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/sdk.hpp>

#include <memory>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "data/sample_pipeline.hpp"
#include "plugins/registry.hpp"

namespace exprun {

struct BuiltStage {
  torch::Device device = torch::kCPU;
  std::shared_ptr<sdk::Dataset> train;
  std::shared_ptr<sdk::Dataset> valid;
  std::vector<sdk::LandmarkInfo> landmarks;
  std::shared_ptr<sdk::Model> model;
  std::shared_ptr<sdk::Loss> loss;
  std::vector<std::shared_ptr<sdk::MemoryStrategy>> strategies;
  std::unique_ptr<SamplePipeline> pipeline;
  torch::Tensor landmark_weights;  // K, on the device
  std::int64_t parameter_count = 0;
  double multiply_adds = 0;  // per image at the input size; 0 when the model cannot say

  std::vector<std::string> symbols() const;
  // Micro-batch sizes of one optimiser step of `batch_size` images: the first strategy that
  // partitions decides; without one, a single pass.
  std::vector<std::int64_t> partition(std::int64_t batch_size) const;
};

torch::Device resolve_device(const std::string& device);
// stage_index seeds the model's initialisation, so each stage of a run is reproducible.
BuiltStage build_stage(const Experiment& experiment, const StageConfig& stage,
                       std::size_t stage_index, const Registry& registry);

}  // namespace exprun

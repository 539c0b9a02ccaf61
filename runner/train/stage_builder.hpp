// Builds everything a stage needs from its config through the registry: datasets, model,
// loss, memory strategies, the sample pipeline. `exprun plan` stops here; training goes on.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/sdk.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "data/heatmap.hpp"
#include "data/sample_pipeline.hpp"
#include "eval/evaluator.hpp"
#include "plugins/registry.hpp"

namespace exprun {

struct BuiltStage {
  torch::Device device = torch::kCPU;
  // channels_last: the model's 4-d weights are NHWC, and batches are made so to match.
  torch::MemoryFormat input_format = torch::MemoryFormat::Contiguous;
  std::shared_ptr<sdk::Dataset> train;
  std::shared_ptr<sdk::Dataset> valid;
  std::vector<sdk::LandmarkInfo> landmarks;
  std::shared_ptr<sdk::Model> model;
  std::shared_ptr<sdk::Loss> loss;
  std::vector<std::shared_ptr<sdk::MemoryStrategy>> strategies;
  // Images per forward/backward pass: memory.micro_batch, or the tuner's choice for "auto"
  // (effective_batch until tune_stage has run).
  std::int64_t micro_batch = 1;
  // The batch tuner's measurements (TuneResult::to_json); null when micro_batch was given.
  nlohmann::json tuning;
  // Builds (and prepares) the stage's strategies afresh for another micro-batch; the batch
  // tuner tries each candidate with its own.
  std::function<std::vector<std::shared_ptr<sdk::MemoryStrategy>>(std::int64_t micro_batch)>
      make_strategies;
  std::unique_ptr<SamplePipeline> pipeline;
  // Batch-preparation threads: data.workers, or what "auto" resolved to for this machine and
  // device (data/worker_count.hpp).
  std::int64_t data_workers = 0;
  DecodeMethod decode = DecodeMethod::Argmax;  // eval.decode: how the evaluator reads heatmaps
  torch::Tensor landmark_weights;              // K, on the device
  std::int64_t parameter_count = 0;
  double multiply_adds = 0;  // per image at the input size; 0 when the model cannot say

  std::vector<std::string> symbols() const;
  // The model, strategies and pipeline as the evaluator runs them.
  EvaluatedModel evaluated();
};

// Puts the model's 4-d parameters and buffers in channels-last memory format, in place.
void use_channels_last(torch::nn::Module& model);

// K weights in the dataset's landmark order: loss.weights by symbol, 1 for the others. Throws
// ConfigError for a symbol the dataset does not have, or when every weight is 0.
torch::Tensor landmark_weight_tensor(const LandmarkWeights& weights,
                                     const std::vector<std::string>& symbols);

// local_rank: this process is that rank on its machine of a data-parallel launch; "cuda" (and
// "auto" on a CUDA machine) then means its own GPU, local_rank modulo the GPUs it sees, as
// torchrun and srun users expect. An explicit "cuda:N" is kept.
torch::Device resolve_device(const std::string& device,
                             std::optional<int> local_rank = std::nullopt);
// stage_index seeds the model's initialisation, so each stage of a run is reproducible.
// ranks_on_machine: the launch's processes sharing this machine's cores, which data.workers =
// "auto" divides among them.
BuiltStage build_stage(const Experiment& experiment, const StageConfig& stage,
                       std::size_t stage_index, const Registry& registry,
                       std::optional<int> local_rank = std::nullopt, int ranks_on_machine = 1);

}  // namespace exprun

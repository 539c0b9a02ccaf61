// Runs a model over a dataset split and measures radial errors in original-image millimetres.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/dataset.hpp>
#include <exprun/sdk/memory_strategy.hpp>
#include <exprun/sdk/model.hpp>

#include <memory>
#include <string>
#include <vector>

#include "data/heatmap.hpp"
#include "data/sample_pipeline.hpp"
#include "eval/metrics.hpp"

namespace exprun {

struct Evaluation {
  torch::Tensor predicted;                     // N x K x 2, original pixels (float64)
  std::vector<std::vector<double>> errors_mm;  // image x landmark
  std::vector<std::string> groups;
  std::vector<SampleMeta> meta;
  Metrics metrics;
  // Landmarks with a ground truth whose prediction was not a finite point (infinite errors).
  std::size_t failed_predictions = 0;
};

// "" when every prediction was a finite point; else one line naming how many were not and the
// first image and landmark among them, for a warning.
std::string failed_predictions_note(const Evaluation& evaluation,
                                    const std::vector<std::string>& symbols);

// What evaluation needs of a built stage: the model as training runs it (strategies' forward
// scopes included, but autocast off: scores are of the fp32 model), the pipeline that sizes
// its input, and how heatmaps are read.
struct EvaluatedModel {
  sdk::Model& model;
  const std::vector<std::shared_ptr<sdk::MemoryStrategy>>& strategies;
  SamplePipeline& pipeline;
  torch::Device device;
  DecodeMethod decode;  // eval.decode
};

// Maps predictions back through each sample's input->original map. Leaves the model in
// training mode.
Evaluation evaluate(const EvaluatedModel& evaluated, const std::shared_ptr<sdk::Dataset>& dataset,
                    std::int64_t batch_size, std::int64_t workers);

// Scores predictions already in original pixels (N x K x 2) against `meta`.
Evaluation score(const torch::Tensor& predicted_original, std::vector<SampleMeta> meta);

}  // namespace exprun

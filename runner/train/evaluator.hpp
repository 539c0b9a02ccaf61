// Runs a model over a dataset split and measures radial errors in original-image millimetres.
#pragma once

#include <string>
#include <vector>

#include "data/sample_pipeline.hpp"
#include "eval/metrics.hpp"
#include "train/stage_builder.hpp"

namespace exprun {

struct Evaluation {
  torch::Tensor predicted;                     // N x K x 2, original pixels (float64)
  std::vector<std::vector<double>> errors_mm;  // image x landmark
  std::vector<std::string> groups;
  std::vector<SampleMeta> meta;
  Metrics metrics;
};

// Decodes with stage.decode (eval.decode), maps back through each sample's input->original map.
Evaluation evaluate(BuiltStage& stage, const std::shared_ptr<sdk::Dataset>& dataset,
                    std::int64_t batch_size, std::int64_t workers);

// Scores predictions already in original pixels (N x K x 2) against `meta`.
Evaluation score(const torch::Tensor& predicted_original, std::vector<SampleMeta> meta);

}  // namespace exprun

// A trained model rebuilt from its checkpoint alone, without the experiment file: the
// checkpoint carries the stage's resolved config (model plugin and parameters, input size,
// channels, sigma, decode) and the landmark names, so `exprun predict` needs nothing else.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/sdk.hpp>

#include <array>
#include <filesystem>
#include <memory>
#include <vector>

#include "data/heatmap.hpp"
#include "data/sample_pipeline.hpp"
#include "plugins/registry.hpp"
#include "train/checkpoint.hpp"

namespace exprun {

struct CheckpointModel {
  CheckpointInfo info;
  std::vector<sdk::LandmarkInfo> landmarks;
  std::shared_ptr<sdk::Model> model;  // weights loaded, in eval mode, on `device`
  std::unique_ptr<SamplePipeline> pipeline;
  torch::Device device = torch::kCPU;
  DecodeMethod decode = DecodeMethod::Argmax;  // the stage's eval.decode

  // `image` as sdk::Sample::image holds it. Preprocessed exactly as validation images are
  // (SamplePipeline::prepare without augmentation), decoded, and mapped back through the
  // same input->original map the evaluator uses: K x 2 (x, y) float64 original pixels,
  // pixel centres at integers.
  torch::Tensor predict(const torch::Tensor& image, DecodeMethod decode) const;
};

// Throws std::runtime_error naming the file when it is unreadable, lacks the config or names a
// model plugin that is not loaded.
CheckpointModel load_checkpoint_model(const std::filesystem::path& path, const Registry& registry,
                                      torch::Device device);

// A plugin's parameters from their JSON form in a resolved config (to_json(PluginChoice)),
// checked against the plugin's schema. Throws std::runtime_error for a parameter the schema
// does not know or a value of the wrong type; `what` names where they came from.
sdk::Params params_from_json(const nlohmann::json& values, const sdk::ParamSchema& schema,
                             const std::string& what);

}  // namespace exprun

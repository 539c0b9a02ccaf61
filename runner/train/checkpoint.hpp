// Stage checkpoints: model, optimiser and memory-strategy state plus what is needed to check a
// checkpoint belongs to the stage it is loaded into. Always written atomically.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/memory_strategy.hpp>
#include <exprun/sdk/model.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace exprun {

struct CheckpointInfo {
  static constexpr std::int64_t kFormatVersion = 1;
  std::string experiment;
  std::string stage;
  std::int64_t epoch = 0;  // epochs completed
  double best_metric = 0;
  std::int64_t best_epoch = 0;
  std::int64_t effective_batch = 0;
  std::int64_t micro_batch = 0;
  std::string config_json;  // the stage's resolved config
};

void save_checkpoint(const std::filesystem::path& path, sdk::Model& model,
                     const torch::optim::Optimizer& optimizer,
                     const std::vector<std::shared_ptr<sdk::MemoryStrategy>>& strategies,
                     const CheckpointInfo& info);

// Reads only the metadata; throws std::runtime_error naming the file when it is unreadable.
CheckpointInfo read_checkpoint_info(const std::filesystem::path& path);
// Loads the model weights only (for evaluation and for starting a stage from them).
CheckpointInfo load_model_weights(const std::filesystem::path& path, sdk::Model& model);

}  // namespace exprun

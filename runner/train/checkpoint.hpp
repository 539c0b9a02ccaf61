// Stage checkpoints: everything needed to continue training exactly (model, optimiser, memory
// strategies, random generators, position, the trainer's history) plus what is needed to check
// that a file is whole and belongs to the stage it is loaded into. Always written atomically.
//
// File layout (docs/report.md, "Checkpoints"): the 8 bytes "EXPRUNCK", a little-endian u32
// container version, u64 payload length and u32 CRC-32C of the payload, then the payload: a
// LibTorch archive. The length and checksum let a truncated or damaged file be told apart from
// a good one before LibTorch parses it.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/memory_strategy.hpp>
#include <exprun/sdk/model.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace exprun {

struct CheckpointInfo {
  static constexpr std::int64_t kFormatVersion = 2;
  std::string experiment;
  std::string stage;
  std::int64_t epoch = 0;          // epochs completed
  std::int64_t step_in_epoch = 0;  // optimiser steps done in the next epoch (an interrupt)
  std::int64_t global_step = 0;    // optimiser steps since the stage began
  std::string monitor;             // what best_metric measures ("val_mre_mm")
  double best_metric = 0;
  std::int64_t best_epoch = 0;
  std::int64_t effective_batch = 0;
  std::int64_t micro_batch = 0;
  // The stage's resolved config (to_json(StageConfig)), parsed once when the file is read.
  nlohmann::json config = nlohmann::json::object();
  // The dataset's landmarks in model-output order, so `exprun predict` can name each heatmap
  // without opening the dataset.
  std::vector<std::string> landmark_symbols;
  std::vector<std::string> landmark_titles;
  // The trainer's own record (history, best metrics, sums of an unfinished epoch), kept as
  // JSON so that a resumed run reports exactly what an uninterrupted one would.
  nlohmann::json trainer_state = nlohmann::json::object();
  // The LibTorch that wrote the file (TORCH_VERSION); empty for files from before exprun
  // recorded it, which were all written by 1.13.
  std::string libtorch_version;
  // Ranks that trained together (data parallelism); 1 for files from before exprun had ranks.
  std::int64_t world_size = 1;
  // experiment.seed of the run that wrote the file: it decides every later epoch's order and
  // augmentation, so a resume under another seed would match neither run. Empty for files
  // from before exprun recorded it.
  std::optional<std::uint64_t> seed;
};

// What a checkpoint restores besides its metadata.
struct TrainingState {
  sdk::Model& model;
  torch::optim::Optimizer& optimizer;
  const std::vector<std::shared_ptr<sdk::MemoryStrategy>>& strategies;
  torch::Device device;  // whose random generator is saved with the CPU's
};

// fault_name names the write for EXPRUN_FAULT's checkpoint:... points (util/fault_injection).
void save_checkpoint(const std::filesystem::path& path, const TrainingState& state,
                     const CheckpointInfo& info, const std::string& fault_name = "");

// Whether `path` starts with an exprun checkpoint's magic (a file that is not one, or cannot be
// read, does not): a file that no output should replace.
bool is_checkpoint_file(const std::filesystem::path& path);

// Each throws std::runtime_error naming the file when it is missing, truncated, damaged or of
// another format version.
CheckpointInfo read_checkpoint_info(const std::filesystem::path& path);
// The model weights only (for evaluation and for starting a stage from them).
CheckpointInfo load_model_weights(const std::filesystem::path& path, sdk::Model& model);
// Everything, for resuming: model, optimiser, each strategy's state, the random generators.
CheckpointInfo load_training_state(const std::filesystem::path& path, const TrainingState& state);

}  // namespace exprun

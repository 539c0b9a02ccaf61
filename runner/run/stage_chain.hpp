// Stage chains: a stage that starts from another stage's checkpoint (init), and a loss focused
// on the landmarks that stage found hardest (loss.focus).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>

#include "config/experiment.hpp"
#include "train/stage_builder.hpp"

namespace exprun {

// The checkpoint file `init` names: <run_dir>/<stage>/checkpoints/<best|latest>.pt, or the
// path as given.
std::filesystem::path init_checkpoint_path(const StageInit& init,
                                           const std::filesystem::path& run_dir);

// Applies the stage's init and focus to a freshly built stage: loads the init weights (unless
// load_weights is false: a resumed stage gets them from its own checkpoint) and multiplies the
// focus weight into the chosen landmarks' loss weights. Returns the report sections "init" and
// "focus" (an empty object without init). Throws when the init checkpoint is missing, damaged
// or has other landmarks.
nlohmann::json apply_stage_chain(const StageConfig& stage, BuiltStage& built,
                                 const std::filesystem::path& run_dir, bool load_weights);

}  // namespace exprun

// Finding where to continue: the run to resume, and in a stage the newest checkpoint that
// reads back whole.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>

#include "config/experiment.hpp"

namespace exprun {

// The newest run directory of the experiment (under <output>/<name>/) whose report.json does
// not say "completed". Throws naming the folder when there is none.
std::filesystem::path find_run_to_resume(const Experiment& experiment);

// report.json of a run to resume. Throws naming the file when it is missing or unreadable, and
// when the run was made with another configuration (listing the keys that differ).
nlohmann::json read_run_to_resume(const std::filesystem::path& run_dir,
                                  const Experiment& experiment);

// Of <stage_dir>/checkpoints/*.pt, the one furthest into training that passes
// read_checkpoint_info; damaged ones are reported on stderr and passed over, and temporary
// files of interrupted writes are removed. Empty when the stage has no usable checkpoint.
std::optional<std::filesystem::path> newest_valid_checkpoint(
    const std::filesystem::path& stage_dir);

}  // namespace exprun

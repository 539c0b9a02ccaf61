// Looking up the checkpoint file a stage's `init` names, once when the experiment is read and
// again when the stage starts. std::filesystem's throwing form would end in a bare
// filesystem_error naming neither the key nor the file, so both places share this one.
#pragma once

#include <filesystem>
#include <string>

namespace exprun {

struct CheckpointPathStatus {
  std::filesystem::file_status status;  // file_type::not_found when nothing is there
  // Empty when the path could be looked up, found or not; otherwise "cannot use the
  // checkpoint path "...": <reason>" (too long for the system, a loop of symbolic links, ...),
  // for the caller to put its file, line and key in front of.
  std::string problem;
};

CheckpointPathStatus look_up_checkpoint_path(const std::filesystem::path& path);

}  // namespace exprun

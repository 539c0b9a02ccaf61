#include "config/checkpoint_path.hpp"

#include <system_error>

#include "config/names.hpp"

namespace exprun {

CheckpointPathStatus look_up_checkpoint_path(const std::filesystem::path& path) {
  CheckpointPathStatus out;
  std::error_code error;
  out.status = std::filesystem::status(path, error);
  // A missing file is an answer (the callers say which file they expected), not a failure.
  if (error && out.status.type() != std::filesystem::file_type::not_found) {
    out.problem = "cannot use the checkpoint path " + quote_for_message(path.string(), 120) + ": " +
                  error.message();
  }
  return out;
}

}  // namespace exprun

// Results and checkpoints are replaced atomically: written to a temporary file beside the
// target, flushed to disk, then renamed over it, so a crash leaves the old file or the new
// one, never half of one.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace exprun {

// `write` fills the temporary path it is given.
void replace_atomically(const std::filesystem::path& target,
                        const std::function<void(const std::filesystem::path&)>& write);
void write_file_atomically(const std::filesystem::path& target, const std::string& content);

}  // namespace exprun

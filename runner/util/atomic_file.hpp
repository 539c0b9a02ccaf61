// Results and checkpoints are replaced atomically: written to a temporary file beside the
// target, flushed to disk, then renamed over it, so a crash leaves the old file or the new
// one, never half of one.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace exprun {

// `write` fills the temporary path it is given.
void replace_atomically(const std::filesystem::path& target,
                        const std::function<void(const std::filesystem::path&)>& write);
void write_file_atomically(const std::filesystem::path& target, const std::string& content);
// The same for a file that must not replace another: false, and nothing written, when `target`
// exists already (also when another process publishes it first).
bool write_new_file_atomically(const std::filesystem::path& target, const std::string& content);

// Removes, in `dir` and every folder below it, the temporary files (TARGET.tmp-PID) that writes
// left behind when they died between writing and renaming, of the targets for which
// `written_atomically(TARGET relative to dir)` holds: other files may have such names too.
// Any pid, ours included: only safe while nothing writes there (run/run_lock.hpp), this process
// included. Returns the files removed.
std::vector<std::filesystem::path> remove_stale_temporaries(
    const std::filesystem::path& dir,
    const std::function<bool(const std::filesystem::path&)>& written_atomically);

}  // namespace exprun

// Folders and files that a process names after its pid, left behind when a signal ended it
// before its clean-up ran (exprun synth's staging tree, exprun bench's scratch runs).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace exprun {

// Whether `pid_text` is a pid (decimal digits) of a process that no longer runs; one of another
// user's counts as running.
bool names_an_ended_process(std::string_view pid_text);

// Removes the entries of `dir` named `prefix` followed by the pid of a process that no longer
// runs; entries of running processes, ours included, and other names are left alone. Returns
// what was removed. Errors (an unreadable folder) remove nothing and are not reported: what is
// left is only disk space.
std::vector<std::filesystem::path> remove_dead_process_leftovers(const std::filesystem::path& dir,
                                                                 const std::string& prefix);

}  // namespace exprun

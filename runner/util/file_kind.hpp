// The kind of a path that is there but is not a regular file, for the readers that must look
// before they open: a folder reads as empty, and a pipe or a device never ends.
#pragma once

#include <filesystem>
#include <string>

namespace exprun {

// "a folder" or "a pipe, socket or device" when `path` is one of them (after following
// symbolic links); empty when it is a regular file or is not there at all.
std::string irregular_file_kind(const std::filesystem::path& path);

}  // namespace exprun

// A plugin's ABI tag read from the library file itself, before the dynamic loader runs it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace exprun {

// The distinct ABI tags (`exprun-sdk-M.m;torch-V;COMPILER;cxx11abi-X`, as <exprun/sdk/abi.hpp>
// writes them) that occur as C strings in `file`, in the order first found. A plugin built with
// EXPRUN_PLUGIN holds exactly one. Throws std::runtime_error when the file cannot be read.
std::vector<std::string> abi_tags_in_file(const std::filesystem::path& file);

}  // namespace exprun

// Whether a plugin library file holds everything its ELF headers promise, checked before the
// dynamic loader maps it: a truncated library (a half-finished copy, a build on a full disk) is
// mapped past its end, and the loader's first touch of the missing pages kills the process with
// SIGBUS instead of failing with an error.
#pragma once

#include <filesystem>
#include <string>

namespace exprun {

// Empty when `file` is a 64-bit ELF file whose program headers, loadable segments and section
// headers all lie within it; otherwise what is wrong, as a phrase ("is truncated: ..."). A file
// that is not ELF at all is left to the loader, whose message names it.
std::string elf_extent_problem(const std::filesystem::path& file);

}  // namespace exprun

#include "plugins/elf_extent.hpp"

// glibc's ELF structures; the project has no ELF library, and the check needs only the file
// header and the program headers.
#include <elf.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

namespace exprun {
namespace {

std::string truncated(std::uintmax_t size, const std::string& what, std::uint64_t end) {
  return "is truncated: " + std::to_string(size) + " bytes, but its " + what + " end at byte " +
         std::to_string(end);
}

// `offset + count * entry` without wrapping; UINT64_MAX when it would wrap.
std::uint64_t extent(std::uint64_t offset, std::uint64_t count, std::uint64_t entry) {
  if (entry != 0 && count > (UINT64_MAX - offset) / entry) return UINT64_MAX;
  return offset + count * entry;
}

}  // namespace

std::string elf_extent_problem(const std::filesystem::path& file) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(file, ec);
  if (ec) return "cannot be read: " + ec.message();
  std::ifstream in(file, std::ios::binary);
  Elf64_Ehdr header{};
  in.read(reinterpret_cast<char*>(&header), sizeof header);
  const auto got = static_cast<std::size_t>(in.gcount());
  // Not ELF at all: left to the loader, whose message names it.
  if (got < SELFMAG || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) return "";
  if (got < sizeof header) {
    return "is truncated: " + std::to_string(size) + " bytes, shorter than an ELF header";
  }
  if (header.e_ident[EI_CLASS] != ELFCLASS64) return "is not a 64-bit ELF library";
  if (header.e_phnum > 0 && header.e_phentsize != sizeof(Elf64_Phdr)) {
    return "has program headers of " + std::to_string(header.e_phentsize) + " bytes, expected " +
           std::to_string(sizeof(Elf64_Phdr));
  }
  const std::uint64_t headers_end = extent(header.e_phoff, header.e_phnum, header.e_phentsize);
  if (headers_end > size) return truncated(size, "program headers", headers_end);
  const std::uint64_t sections_end = extent(header.e_shoff, header.e_shnum, header.e_shentsize);
  if (sections_end > size) return truncated(size, "section headers", sections_end);
  std::vector<Elf64_Phdr> segments(header.e_phnum);
  in.seekg(static_cast<std::streamoff>(header.e_phoff));
  if (!in.read(reinterpret_cast<char*>(segments.data()),
               static_cast<std::streamsize>(segments.size() * sizeof(Elf64_Phdr)))) {
    return "cannot be read: its program headers";
  }
  for (const auto& segment : segments) {
    if (segment.p_type != PT_LOAD) continue;
    const std::uint64_t end = extent(segment.p_offset, 1, segment.p_filesz);
    if (end > size) return truncated(size, "loadable segments", end);
  }
  return "";
}

}  // namespace exprun

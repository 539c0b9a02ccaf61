#include "fuzz_support.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace exprun::fuzz {
namespace fs = std::filesystem;

void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void report_expected_error(const std::string& message) {
  static const bool verbose = std::getenv("EXPRUN_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "expected error: %s\n", message.c_str());
}

namespace {

struct ScratchDir {
  fs::path path;
  ScratchDir() {
    path = fs::temp_directory_path() / ("exprun-fuzz-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

const fs::path& scratch_dir() {
  static const ScratchDir dir;
  return dir.path;
}

fs::path write_scratch(const std::string& relative, const std::uint8_t* data, std::size_t size) {
  const fs::path path = scratch_dir() / relative;
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  // A scratch file that cannot be written would make every input look like a missing file.
  if (!out) finding("cannot write the scratch file " + path.string());
  return path;
}

fs::path write_scratch(const std::string& relative, const std::string& text) {
  return write_scratch(relative, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

}  // namespace exprun::fuzz

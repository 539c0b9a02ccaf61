#include "util/file_kind.hpp"

namespace exprun {

std::string irregular_file_kind(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status) || std::filesystem::is_regular_file(status)) return "";
  return std::filesystem::is_directory(status) ? "a folder" : "a pipe, socket or device";
}

}  // namespace exprun

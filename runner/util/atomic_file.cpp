#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace exprun {
namespace fs = std::filesystem;
namespace {

// std::ofstream cannot fsync; without it a power loss after rename can leave an empty file.
void sync_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot reopen " + path.string() + " to flush it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("cannot flush " + path.string() + " to disk");
}

constexpr std::string_view kTempMarker = ".tmp-";

fs::path temporary_for(const fs::path& target) {
  return target.string() + std::string(kTempMarker) + std::to_string(::getpid());
}

// The target a temporary file's name (TARGET.tmp-PID) was written for, or nullopt when the name
// does not have that form.
std::optional<std::string> temporary_target(const std::string& name) {
  const auto at = name.rfind(kTempMarker);
  if (at == std::string::npos || at == 0) return std::nullopt;
  const std::string pid = name.substr(at + kTempMarker.size());
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return name.substr(0, at);
}

// POSIX calls rather than a stream, whose failure says nothing of why (a full disk, a quota).
void write_content(const fs::path& path, const std::string& content) {
  const auto fail = [&path](int error) {
    throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(error));
  };
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      fail(error);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) fail(errno);
}

}  // namespace

std::vector<fs::path> remove_stale_temporaries(
    const fs::path& dir, const std::function<bool(const fs::path&)>& written_atomically) {
  std::vector<fs::path> removed;
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    if (!it->is_regular_file(error)) continue;
    const auto target = temporary_target(it->path().filename().string());
    if (!target) continue;
    const fs::path relative = it->path().lexically_relative(dir).parent_path() / *target;
    if (!written_atomically(relative)) continue;
    if (fs::remove(it->path(), error)) removed.push_back(it->path());
    error.clear();
  }
  if (error) {
    throw std::runtime_error("cannot list " + dir.string() +
                             " for temporary files: " + error.message());
  }
  return removed;
}

void replace_atomically(const fs::path& target, const std::function<void(const fs::path&)>& write) {
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const fs::path temp = temporary_for(target);
  try {
    write(temp);
    sync_file(temp);
    fs::rename(temp, target);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
}

void write_file_atomically(const fs::path& target, const std::string& content) {
  replace_atomically(target, [&](const fs::path& temp) { write_content(temp, content); });
}

bool write_new_file_atomically(const fs::path& target, const std::string& content) {
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const fs::path temp = temporary_for(target);
  bool published = false;
  try {
    write_content(temp, content);
    sync_file(temp);
    // link() publishes the whole file under the new name, or fails where one exists: rename()
    // would replace it.
    if (::link(temp.c_str(), target.c_str()) == 0) {
      published = true;
    } else if (errno != EEXIST) {
      throw std::runtime_error("cannot create " + target.string() + ": " + std::strerror(errno));
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
  std::error_code ignored;
  fs::remove(temp, ignored);
  return published;
}

}  // namespace exprun

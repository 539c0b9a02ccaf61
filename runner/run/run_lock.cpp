#include "run/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>

#include "train/progress.hpp"
#include "util/host_name.hpp"
#include "util/text.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

// The holder retries this often when the file it locked was unlinked under it by a releasing
// holder; more than a few in a row would mean something else keeps deleting the file.
constexpr int kLockAttempts = 100;

std::string system_error(const std::string& what, int error) {
  return what + ": " + std::strerror(error);
}

// "pid 4242\nhost box\nsince 2026-12-01T05:00:00Z\n" as {pid: 4242, ...}.
std::map<std::string, std::string> read_holder(int fd) {
  std::string text(4096, '\0');
  const ssize_t n = ::pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  std::map<std::string, std::string> fields;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto space = line.find(' ');
    if (space != std::string::npos) fields[line.substr(0, space)] = line.substr(space + 1);
  }
  return fields;
}

std::string describe_holder(const std::map<std::string, std::string>& holder) {
  const auto field = [&](const char* key) {
    const auto it = holder.find(key);
    return it == holder.end() ? std::string("?") : it->second;
  };
  if (holder.empty()) return "another process (it has not written its pid yet)";
  return "pid " + field("pid") + " on host " + field("host") + " since " + field("since");
}

bool same_file(int fd, const fs::path& path) {
  struct stat opened {};
  struct stat named {};
  return ::fstat(fd, &opened) == 0 && ::stat(path.c_str(), &named) == 0 &&
         opened.st_dev == named.st_dev && opened.st_ino == named.st_ino;
}

}  // namespace

fs::path run_lock_file(const fs::path& run_dir) { return run_dir / ".exprun.lock"; }

bool flock_unsupported(int error) {
  return error == ENOLCK || error == EOPNOTSUPP || error == ENOSYS;
}

RunLock::RunLock(const fs::path& run_dir) : file_(run_lock_file(run_dir)) {
  for (int attempt = 1; fd_ < 0; ++attempt) {
    // O_CLOEXEC: a program this process starts must not inherit, and so keep, the lock.
    const int fd = ::open(file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(system_error("cannot create " + file_.string(), errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      if (flock_unsupported(error)) {
        // Every run here would get this; say it once, not once per sweep trial.
        static std::atomic<bool> warned{false};
        if (!warned.exchange(true)) {
          Progress::message("exprun: warning: cannot lock run directory " + run_dir.string() +
                            " (" + std::strerror(error) +
                            "): this file system offers no locks; running without one, so "
                            "nothing stops a second process from writing the same run");
        }
        ::close(fd);
        ::unlink(file_.c_str());  // created just above; an unheld lock file would mislead
        return;
      }
      const auto holder = read_holder(fd);
      ::close(fd);
      if (error != EWOULDBLOCK) {
        throw std::runtime_error(system_error("cannot lock " + file_.string(), error));
      }
      throw std::runtime_error(
          "run directory " + run_dir.string() + " is in use by " + describe_holder(holder) +
          " (its lock " + file_.string() +
          " is held); only one process may write a run: wait for that one to end or stop it");
    }
    // A holder that ends unlinks the file after we opened it; that lock guards nothing.
    if (same_file(fd, file_)) {
      fd_ = fd;
    } else {
      ::close(fd);
      if (attempt == kLockAttempts) {
        throw std::runtime_error("cannot lock " + file_.string() +
                                 ": the file keeps being removed while it is taken");
      }
    }
  }
  // Left behind by a process that died holding it: the kernel has released its lock.
  const auto stale = read_holder(fd_);
  if (!stale.empty()) {
    Progress::message("exprun: note: " + file_.string() + " was left by " + describe_holder(stale) +
                      ", which has ended; taking it over");
  }
  const std::string me = "pid " + std::to_string(::getpid()) + "\nhost " + host_name() +
                         "\nsince " + format_utc_now(kIsoUtc) + "\n";
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    const int error = errno;
    ::close(fd_);
    throw std::runtime_error(system_error("cannot write " + file_.string(), error));
  }
}

RunLock::~RunLock() {
  if (fd_ < 0) return;  // the file system could not lock: there is no file of ours
  // Unlinked while still held, so no one can lock this file between the two calls.
  ::unlink(file_.c_str());
  ::close(fd_);
}

}  // namespace exprun

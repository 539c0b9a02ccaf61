// One writer per run directory: RUN_DIR/.exprun.lock, held with flock(2) for as long as a process
// writes the run, so that `--resume` cannot take over a run that is still training.
//
// flock rather than fcntl (or Boost.Interprocess file_lock, which is fcntl underneath): an
// fcntl lock is dropped when the process closes *any* descriptor of the file, so merely reading
// the holder's details would release it; a flock belongs to the one open file description.
// The kernel releases either when the holder dies, so a lock file left by a crash is stale by
// construction: its flock is free and the next process simply takes it.
#pragma once

#include <filesystem>
#include <string>

namespace exprun {

class RunLock {
 public:
  // Takes the lock of run_dir (which must exist) and writes our pid, host and the UTC time
  // into it. Throws std::runtime_error naming the directory and the holder (pid, host, since)
  // when another process, or another RunLock in this one, holds it. Where the file system
  // cannot lock at all (flock_unsupported), warns once per process and holds nothing.
  explicit RunLock(const std::filesystem::path& run_dir);
  // Removes the lock file and releases the lock.
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::filesystem::path& file() const { return file_; }
  // False where the file system cannot lock and the run goes on unguarded.
  bool held() const { return fd_ >= 0; }

 private:
  std::filesystem::path file_;
  int fd_ = -1;
};

// RUN_DIR/.exprun.lock: a name of its own, as a user's `.lock` may sit in any folder.
std::filesystem::path run_lock_file(const std::filesystem::path& run_dir);

// Whether flock(2) failing with `error` means the file system offers no locks (some FUSE, SMB
// and NFS mounts: ENOLCK, EOPNOTSUPP, ENOSYS) rather than that the lock is taken or the file
// unusable. Failing every run there would make exprun unusable on such mounts.
bool flock_unsupported(int error);

}  // namespace exprun

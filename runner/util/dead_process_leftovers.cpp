#include "util/dead_process_leftovers.hpp"

#include <signal.h>

#include <cerrno>
#include <string>
#include <string_view>

namespace exprun {
namespace fs = std::filesystem;

// kill(pid, 0) sends nothing; it fails with ESRCH only when no such process exists (EPERM: one
// runs, as another user). Nine digits at most: every pid Linux gives, and no overflow.
bool names_an_ended_process(std::string_view pid_text) {
  if (pid_text.empty() || pid_text.size() > 9 ||
      pid_text.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  const auto pid = static_cast<pid_t>(std::stol(std::string(pid_text)));
  return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH;
}

std::vector<fs::path> remove_dead_process_leftovers(const fs::path& dir,
                                                    const std::string& prefix) {
  std::vector<fs::path> removed;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    if (!names_an_ended_process(std::string_view(name).substr(prefix.size()))) continue;
    std::error_code remove_error;
    if (fs::remove_all(it->path(), remove_error) > 0 && !remove_error)
      removed.push_back(it->path());
  }
  return removed;
}

}  // namespace exprun

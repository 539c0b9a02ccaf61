#include "util/fault_injection.hpp"

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>

namespace exprun {
namespace {

struct Fault {
  int signal = 0;
  std::string point;
};

Fault read_fault() {
  const char* value = std::getenv("EXPRUN_FAULT");
  if (!value || !*value) return {};
  const std::string text = value;
  const auto at = text.find('@');
  static const std::map<std::string, int> signals = {
      {"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT}};
  const auto found = at == std::string::npos ? signals.end() : signals.find(text.substr(0, at));
  if (found == signals.end()) {
    // A misspelt fault must not let a recovery test pass by never firing.
    std::cerr << "exprun: error: EXPRUN_FAULT=" << text
              << ": expected KILL@POINT, TERM@POINT or INT@POINT\n";
    std::exit(2);
  }
  return {found->second, text.substr(at + 1)};
}

}  // namespace

void fault_point(const std::string& point) {
  static const Fault fault = read_fault();
  if (fault.signal != 0 && fault.point == point) std::raise(fault.signal);
}

}  // namespace exprun

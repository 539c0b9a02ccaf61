#include "util/fault_injection.hpp"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string_view>

#include "util/signal_thread.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

struct Fault {
  int signal = 0;
  std::string point;
};

// Every kind of point that a fault_point call site builds, with the fields after its name.
struct PointKind {
  std::string_view name;
  std::vector<std::string_view> fields;
};
const std::vector<PointKind>& point_kinds() {
  static const std::vector<PointKind> kinds = {
      {"step", {"STAGE", "EPOCH", "STEP"}},
      {"checkpoint", {"STAGE", "EPOCH", "NAME"}},
      {"stage-end", {"STAGE"}},
  };
  return kinds;
}

std::string kind_pattern(const PointKind& kind) {
  std::string out(kind.name);
  for (const auto field : kind.fields) out += ":" + std::string(field);
  return out;
}

std::string known_points() {
  std::vector<std::string> patterns;
  for (const auto& kind : point_kinds()) patterns.push_back(kind_pattern(kind));
  return join(patterns, ", ");
}

// Points are compared as text, so a number must be written as the call site writes it: "01"
// would never match epoch 1.
bool is_number(const std::string& text, bool zero_allowed) {
  if (text.empty() || text.size() > 9) return false;
  if (text.find_first_not_of("0123456789") != std::string::npos) return false;
  if (text == "0") return zero_allowed;
  return text[0] != '0';
}

// "" when `value` is a valid FIELD, else what FIELD expects.
std::string field_error(std::string_view kind, std::string_view field, const std::string& value,
                        const std::vector<std::string>& stages) {
  if (field == "STAGE") {
    if (stages.empty() || std::find(stages.begin(), stages.end(), value) != stages.end()) return "";
    std::vector<std::string> quoted;
    for (const auto& s : stages) quoted.push_back("'" + s + "'");
    return "STAGE '" + value + "' is not a stage of this experiment (" + join(quoted, ", ") + ")" +
           did_you_mean(value, stages);
  }
  if (field == "EPOCH" || field == "STEP") {
    // A checkpoint's EPOCH counts the epochs done: 0 for one written when interrupted in the
    // first epoch. A step's epoch and step count from 1.
    const bool zero_allowed = kind == "checkpoint";
    if (is_number(value, zero_allowed)) return "";
    return std::string(field) + " '" + value + "' is not a whole number from " +
           (zero_allowed ? "0" : "1") + " written without leading zeros";
  }
  // NAME
  if (value == "latest" || value == "best") return "";
  if (value.rfind("epoch_", 0) == 0 && is_number(value.substr(6), false)) return "";
  return "NAME '" + value + "' is not latest, best or epoch_N";
}

// The error in EXPRUN_FAULT's value, or "" when it is valid (or unset).
std::string setting_error(const std::string& text, const std::vector<std::string>& stages,
                          Fault* parsed) {
  const auto at = text.find('@');
  static const std::map<std::string, int> signals = {
      {"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT}, {"USR1", SIGUSR1}};
  const auto found = at == std::string::npos ? signals.end() : signals.find(text.substr(0, at));
  if (found == signals.end()) return "expected KILL@POINT, TERM@POINT, INT@POINT or USR1@POINT";
  const std::string point = text.substr(at + 1);
  const std::vector<std::string> parts = split(point, ':');
  for (const auto& kind : point_kinds()) {
    if (parts[0] != kind.name) continue;
    if (parts.size() != kind.fields.size() + 1) {
      return "point '" + point + "' does not have the form " + kind_pattern(kind);
    }
    for (std::size_t i = 0; i < kind.fields.size(); ++i) {
      const std::string error = field_error(kind.name, kind.fields[i], parts[i + 1], stages);
      if (!error.empty()) return "point '" + point + "': " + error;
    }
    if (parsed) *parsed = {found->second, point};
    return "";
  }
  return "unknown point '" + point + "'; the points are " + known_points();
}

std::string environment_value() {
  const char* value = std::getenv("EXPRUN_FAULT");
  return value ? value : "";
}

Fault read_fault() {
  const std::string text = environment_value();
  if (text.empty()) return {};
  Fault fault;
  const std::string error = setting_error(text, {}, &fault);
  if (!error.empty()) {
    // Reached only when check_fault_setting was not called first (a tool or test linking the
    // trainer directly); a fault that never fires must still not pass unnoticed.
    std::cerr << "exprun: error: EXPRUN_FAULT=" << text << ": " << error << "\n";
    std::exit(2);
  }
  return fault;
}

}  // namespace

void check_fault_setting(const std::vector<std::string>& stage_names) {
  const std::string text = environment_value();
  if (text.empty()) return;
  const std::string error = setting_error(text, stage_names, nullptr);
  if (!error.empty()) throw std::invalid_argument("EXPRUN_FAULT=" + text + ": " + error);
}

void fault_point(const std::string& point) {
  static const Fault fault = read_fault();
  if (fault.signal != 0 && fault.point == point) raise_in_process(fault.signal);
}

}  // namespace exprun

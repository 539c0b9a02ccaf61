#include "slurm/slurm_time.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <vector>

#include "util/text.hpp"

namespace exprun::slurm {
namespace {

// More digits than any real limit needs; keeps every sum far from overflowing.
constexpr std::size_t kMaxFieldDigits = 9;

std::invalid_argument bad_time(const std::string& text, const std::string& why) {
  return std::invalid_argument("--time " + (text.empty() ? std::string("''") : text) + ": " + why +
                               "; expected " + kSlurmTimeForms);
}

std::int64_t field(const std::string& text, const std::string& part) {
  if (part.empty()) throw bad_time(text, "a field is empty");
  if (part.find_first_not_of("0123456789") != std::string::npos)
    throw bad_time(text, "'" + part + "' is not a whole number of digits");
  if (part.size() > kMaxFieldDigits) throw bad_time(text, "'" + part + "' is too large");
  return std::stoll(part);
}

bool equals_ignoring_case(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<std::int64_t> parse_slurm_time(const std::string& text) {
  if (equals_ignoring_case(text, "UNLIMITED") || equals_ignoring_case(text, "INFINITE"))
    return std::nullopt;
  if (text.empty()) throw bad_time(text, "empty");
  std::int64_t days = 0;
  std::string clock = text;
  const std::size_t dash = text.find('-');
  if (dash != std::string::npos) {
    days = field(text, text.substr(0, dash));
    clock = text.substr(dash + 1);
    if (clock.find('-') != std::string::npos) throw bad_time(text, "more than one '-'");
  }
  const std::vector<std::string> parts = split(clock, ':');
  if (parts.size() > 3) throw bad_time(text, "more than two ':'");
  std::vector<std::int64_t> numbers;
  for (const auto& part : parts) numbers.push_back(field(text, part));
  std::int64_t seconds = 0;
  if (dash != std::string::npos) {
    // D-HH, D-HH:MM, D-HH:MM:SS: after a day count, the first field is hours.
    const std::int64_t units[] = {3600, 60, 1};
    for (std::size_t i = 0; i < numbers.size(); ++i) seconds += numbers[i] * units[i];
    seconds += days * 86400;
  } else if (numbers.size() == 3) {
    seconds = numbers[0] * 3600 + numbers[1] * 60 + numbers[2];  // HH:MM:SS
  } else {
    seconds = numbers[0] * 60 + (numbers.size() == 2 ? numbers[1] : 0);  // MM, MM:SS
  }
  // sbatch reads a limit of zero as "no limit".
  if (slurm_limit_seconds(seconds) == 0) return std::nullopt;
  return seconds;
}

std::int64_t slurm_limit_seconds(std::int64_t requested_seconds) {
  return (requested_seconds + 59) / 60 * 60;
}

std::string format_slurm_time(std::int64_t seconds) {
  const std::int64_t minutes = (seconds + 59) / 60;
  auto two = [](std::int64_t n) {
    std::string digits = n < 10 ? "0" : "";
    digits += std::to_string(n);
    return digits;
  };
  if (minutes < 60) return std::to_string(minutes);
  const std::int64_t hours = minutes / 60;
  if (hours < 24) return std::to_string(hours) + ":" + two(minutes % 60) + ":00";
  return std::to_string(hours / 24) + "-" + two(hours % 24) + ":" + two(minutes % 60) + ":00";
}

}  // namespace exprun::slurm

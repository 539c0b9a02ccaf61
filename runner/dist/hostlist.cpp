// Written by hand: no C++ library parses Slurm hostlists (Slurm's own hostlist.c is part of
// libslurm, which exprun must not need, and `scontrol show hostnames` needs a running
// controller). The grammar is small: items split by top-level commas, each item text with
// bracket groups of comma-separated numbers and FIRST-LAST ranges.
#include "dist/hostlist.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <stdexcept>

#include "dist/quoted.hpp"

namespace exprun::dist {
namespace {

// Up to 18 digits always fit in std::uint64_t, so no bound needs overflow checks.
constexpr std::size_t kMaxBoundDigits = 18;

class HostlistParser {
 public:
  explicit HostlistParser(std::string_view text) : text_(text) {}

  std::vector<std::string> expand() {
    if (text_.empty()) fail("expected at least one host name");
    std::vector<std::string> hosts;
    for (const auto& [begin, end] : top_level_items()) {
      std::vector<std::string> item = expand_item(begin, end);
      if (hosts.size() + item.size() > kMaxHostlistHosts) fail_too_many();
      hosts.insert(hosts.end(), item.begin(), item.end());
    }
    return hosts;
  }

 private:
  std::string_view text_;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument("hostlist " + quoted_value(text_) + ": " + what);
  }
  [[noreturn]] void fail_too_many() const {
    fail("expands to more than " + std::to_string(kMaxHostlistHosts) +
         " hosts: expected a node list as Slurm writes it");
  }

  // [begin, end) of each comma-separated item; commas inside brackets separate ranges instead.
  std::vector<std::pair<std::size_t, std::size_t>> top_level_items() const {
    std::vector<std::pair<std::size_t, std::size_t>> items;
    std::size_t open_at = std::string_view::npos;
    std::size_t item_begin = 0;
    for (std::size_t i = 0; i < text_.size(); ++i) {
      const char c = text_[i];
      if (std::isspace(static_cast<unsigned char>(c)) ||
          std::iscntrl(static_cast<unsigned char>(c)))
        fail("unexpected whitespace or control character at position " + std::to_string(i) +
             ": expected host names separated by commas only");
      if (c == '[') {
        if (open_at != std::string_view::npos)
          fail("'[' at position " + std::to_string(i) + " inside the group opened at position " +
               std::to_string(open_at) + ": expected ']' first (groups do not nest)");
        open_at = i;
      } else if (c == ']') {
        if (open_at == std::string_view::npos)
          fail("']' at position " + std::to_string(i) +
               " closes no group: expected a '[' before it");
        open_at = std::string_view::npos;
      } else if (c == ',' && open_at == std::string_view::npos) {
        items.emplace_back(item_begin, i);
        item_begin = i + 1;
      }
    }
    if (open_at != std::string_view::npos)
      fail("the '[' at position " + std::to_string(open_at) + " is never closed: expected ']'");
    items.emplace_back(item_begin, text_.size());
    for (const auto& [begin, end] : items) {
      if (begin == end)
        fail("empty host name at position " + std::to_string(begin) +
             ": expected a name between commas");
    }
    return items;
  }

  // Literal text and bracket groups in turn; the result is their cartesian product.
  std::vector<std::string> expand_item(std::size_t begin, std::size_t end) const {
    std::vector<std::string> hosts = {""};
    std::size_t i = begin;
    while (i < end) {
      if (text_[i] != '[') {
        const std::size_t literal_end = std::min(end, text_.find('[', i));
        for (auto& host : hosts) host.append(text_.substr(i, literal_end - i));
        i = literal_end;
        continue;
      }
      const std::size_t close = text_.find(']', i);  // balanced: checked by top_level_items
      const std::vector<std::string> group = expand_group(text_.substr(i + 1, close - i - 1));
      if (hosts.size() * group.size() > kMaxHostlistHosts) fail_too_many();
      std::vector<std::string> combined;
      combined.reserve(hosts.size() * group.size());
      for (const auto& host : hosts)
        for (const auto& value : group) combined.push_back(host + value);
      hosts = std::move(combined);
      i = close + 1;
    }
    return hosts;
  }

  // The inside of one bracket group: "01-04,07".
  std::vector<std::string> expand_group(std::string_view group) const {
    std::vector<std::string> values;
    std::size_t begin = 0;
    while (true) {
      const std::size_t comma = std::min(group.size(), group.find(',', begin));
      append_range(group, group.substr(begin, comma - begin), values);
      if (comma == group.size()) break;
      begin = comma + 1;
    }
    return values;
  }

  void append_range(std::string_view group, std::string_view range,
                    std::vector<std::string>& values) const {
    const std::string where = "in " + quoted_value("[" + std::string(group) + "]");
    const std::size_t dash = range.find('-');
    const std::string_view first = range.substr(0, dash);
    const std::string_view last = dash == std::string_view::npos ? first : range.substr(dash + 1);
    const std::uint64_t low = bound(first, range, where);
    const std::uint64_t high = bound(last, range, where);
    if (high < low)
      fail("range " + std::string(range) + " " + where +
           " descends: expected FIRST-LAST with FIRST <= LAST");
    if (high - low >= kMaxHostlistHosts || values.size() + (high - low + 1) > kMaxHostlistHosts)
      fail_too_many();
    // Slurm pads every number of a range to the width of its lower bound as written.
    const std::size_t width = first.size();
    for (std::uint64_t n = low; n <= high; ++n) {
      std::string digits = std::to_string(n);
      if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
      values.push_back(std::move(digits));
    }
  }

  std::uint64_t bound(std::string_view digits, std::string_view range,
                      const std::string& where) const {
    const bool all_digits =
        !digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos;
    if (!all_digits || digits.size() > kMaxBoundDigits)
      fail("range " + quoted_value(range) + " " + where +
           ": expected a number or FIRST-LAST of numbers (up to " +
           std::to_string(kMaxBoundDigits) + " digits)");
    std::uint64_t value = 0;
    for (char c : digits) value = value * 10 + static_cast<std::uint64_t>(c - '0');
    return value;
  }
};

}  // namespace

std::vector<std::string> expand_hostlist(std::string_view hostlist) {
  return HostlistParser(hostlist).expand();
}

}  // namespace exprun::dist

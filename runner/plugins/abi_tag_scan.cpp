#include "plugins/abi_tag_scan.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string_view>

namespace exprun {
namespace {

constexpr std::string_view kTagStart = "exprun-sdk-";
constexpr std::size_t kLongestTag = 256;

// The tag's shape: four ';'-separated fields, the second and fourth with their prefixes.
bool looks_like_a_tag(std::string_view text) {
  if (std::count(text.begin(), text.end(), ';') != 3) return false;
  const std::size_t torch = text.find(';') + 1;
  const std::size_t abi = text.rfind(';') + 1;
  return text.substr(torch).starts_with("torch-") && text.substr(abi).starts_with("cxx11abi-") &&
         abi < text.size() - std::string_view("cxx11abi-").size();
}

}  // namespace

// A byte search by hand: Boost.DLL's library_info reads a library's sections and symbol names
// without loading it, but not what a function returns, and the tag is a string literal somewhere
// in the read-only data.
std::vector<std::string> abi_tags_in_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw std::runtime_error("cannot read " + file.string());
  std::vector<std::string> tags;
  for (std::size_t at = bytes.find(kTagStart); at != std::string::npos;
       at = bytes.find(kTagStart, at + 1)) {
    std::size_t end = at;
    while (end < bytes.size() && end - at <= kLongestTag && bytes[end] >= 0x20 && bytes[end] < 0x7f)
      ++end;
    // A C string: printable characters up to its terminating NUL.
    if (end >= bytes.size() || bytes[end] != '\0') continue;
    const std::string_view tag(bytes.data() + at, end - at);
    if (looks_like_a_tag(tag) && std::find(tags.begin(), tags.end(), tag) == tags.end())
      tags.emplace_back(tag);
  }
  return tags;
}

}  // namespace exprun

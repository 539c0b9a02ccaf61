#include "exprun/sdk/abi.hpp"

#include <vector>

namespace exprun::sdk {
namespace {

std::vector<std::string> split_fields(const std::string& tag) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = tag.find(';', start);
    fields.push_back(tag.substr(start, end - start));
    if (end == std::string::npos) return fields;
    start = end + 1;
  }
}

std::string without_prefix(const std::string& field, const std::string& prefix) {
  return field.rfind(prefix, 0) == 0 ? field.substr(prefix.size()) : field;
}

struct TagField {
  const char* what;
  const char* prefix;  // stripped from both values in the message
  const char* advice;
};

// In the order of the tag's fields. The advice is what fixes that field alone: rebuilding
// against the SDK does not help when a compiler flag is the cause.
const TagField kFields[] = {
    {"SDK version", "exprun-sdk-",
     "rebuild the plugin against this exprun's SDK package (-Dexprun_sdk_DIR=<this exprun's "
     "build or install tree>)"},
    {"LibTorch version", "torch-",
     "build the plugin with the LibTorch exprun uses (-DCMAKE_PREFIX_PATH or -DTorch_DIR "
     "pointing at it); `exprun version` names it"},
    {"compiler", "",
     "configure the plugin with the compiler exprun was built with (-DCMAKE_CXX_COMPILER=...); "
     "`exprun version` names it"},
    {"libstdc++ string ABI", "cxx11abi-",
     "compile with exprun's -D_GLIBCXX_USE_CXX11_ABI value, which linking exprun::sdk through "
     "CMake adds; remove any hand-written -D_GLIBCXX_USE_CXX11_ABI or toolchain flag that "
     "changes it"},
};

}  // namespace

const char* sdk_abi_tag() { return EXPRUN_SDK_ABI_TAG; }

std::string explain_abi_mismatch(const std::string& plugin_tag, const std::string& runner_tag) {
  if (plugin_tag == runner_tag) return "";
  const std::string both =
      " (plugin tag \"" + plugin_tag + "\", exprun tag \"" + runner_tag + "\")";
  const auto plugin = split_fields(plugin_tag);
  const auto runner = split_fields(runner_tag);
  constexpr std::size_t kCount = std::size(kFields);
  if (plugin.size() != kCount || runner.size() != kCount ||
      plugin[0].rfind(kFields[0].prefix, 0) != 0) {
    return "the plugin's ABI tag is not in this exprun's format (an SDK much older or newer); " +
           std::string(kFields[0].advice) + both;
  }
  std::string out;
  for (std::size_t i = 0; i < kCount; ++i) {
    if (plugin[i] == runner[i]) continue;
    if (!out.empty()) out += "; ";
    out += std::string(kFields[i].what) + " differs: plugin " +
           without_prefix(plugin[i], kFields[i].prefix) + ", exprun " +
           without_prefix(runner[i], kFields[i].prefix) + ": " + kFields[i].advice;
  }
  return out + both;
}

}  // namespace exprun::sdk

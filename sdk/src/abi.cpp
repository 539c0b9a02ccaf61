#include "exprun/sdk/abi.hpp"

#include "exprun/sdk/plugin.hpp"

namespace exprun::sdk {

const char* sdk_abi_tag() { return EXPRUN_SDK_ABI_TAG; }

const char* kind_folder(PluginKind kind) {
  switch (kind) {
    case PluginKind::Dataset:
      return "datasets";
    case PluginKind::Model:
      return "models";
    case PluginKind::Loss:
      return "losses";
    case PluginKind::Memory:
      return "memory";
  }
  return "unknown";
}

}  // namespace exprun::sdk

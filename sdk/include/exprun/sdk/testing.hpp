// For a plugin author's own unit tests: load the built plugin library as exprun does (ABI tag
// first) and make its object from given parameters, checked against its schema, without the
// runner. docs/writing-a-plugin.md shows a GoogleTest test built on it.
//
//   const auto& info = exprun::sdk::plugin_test::load_plugin("build/exprun-losses-l1.so");
//   auto loss = exprun::sdk::plugin_test::make<exprun::sdk::Loss>(info, {{"scale", 2.0}});
#pragma once

#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "exprun/sdk/abi.hpp"
#include "exprun/sdk/params.hpp"
#include "exprun/sdk/plugin.hpp"

// Not `testing`: a test that writes `using namespace exprun::sdk;` would make GoogleTest's
// ::testing ambiguous.
namespace exprun::sdk::plugin_test {

// The library's PluginInfo. Throws std::runtime_error naming the file when it cannot be
// loaded, exports no plugin, or was built with another ABI tag than the SDK this test links.
// The library stays loaded until the process ends, as in exprun.
inline const PluginInfo& load_plugin(const std::filesystem::path& library) {
  const std::string file = library.string();
  void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    throw std::runtime_error("cannot load plugin library " + file + ": " +
                             (why ? why : "unknown error"));
  }
  auto* tag = reinterpret_cast<const char* (*)()>(::dlsym(handle, kAbiTagSymbol));
  auto* info = reinterpret_cast<const PluginInfo* (*)()>(::dlsym(handle, kInfoSymbol));
  if (!tag || !info) {
    throw std::runtime_error(file + " is not an exprun plugin: it does not export " +
                             std::string(kAbiTagSymbol) + " and " + kInfoSymbol);
  }
  // The tag this test is compiled with, which is what the plugin must match.
  if (const std::string why = explain_abi_mismatch(tag(), EXPRUN_SDK_ABI_TAG); !why.empty())
    throw std::runtime_error(file + " was built for a different ABI: " + why);
  return *info();
}

// The plugin built as exprun builds it: `given` resolved against its schema (defaults filled,
// values checked; sdk::ParamError names a bad one) and the kind's context.
template <class Interface>
std::shared_ptr<Interface> make(const PluginInfo& info,
                                std::map<std::string, ParamValue> given = {},
                                const typename PluginKindTraits<Interface>::Context& context = {}) {
  return make_plugin<Interface>(info, Params::resolve(info.schema(), std::move(given)), context);
}

}  // namespace exprun::sdk::plugin_test

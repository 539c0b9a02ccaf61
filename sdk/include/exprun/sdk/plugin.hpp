// What a plugin library exports, and the one macro that exports it.
//
//   class MyLoss : public exprun::sdk::Loss {
//    public:
//     static constexpr const char* kName = "my_loss";
//     static constexpr const char* kSummary = "one line for `exprun plugins`";
//     static exprun::sdk::ParamSchema schema();
//     MyLoss(const exprun::sdk::Params&, const exprun::sdk::LossContext&);
//     torch::Tensor compute(...) override;
//   };
//   EXPRUN_PLUGIN(MyLoss)
//
// The kind follows from the interface the class derives from (its `PluginInterface`), whose
// PluginKindTraits give the kind's folder name and context (plugin_kinds.hpp).
#pragma once

#include <boost/config.hpp>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "exprun/sdk/abi.hpp"
#include "exprun/sdk/params.hpp"
#include "exprun/sdk/plugin_kind.hpp"
#include "exprun/sdk/plugin_kinds.hpp"

namespace exprun::sdk {

// The same for every kind: what a kind's plugins differ in is behind `make`.
struct PluginInfo {
  const char* kind_folder = "";    // "losses"
  const char* kind_singular = "";  // "loss"
  // typeid(Interface).name() of the interface the plugin implements, checked before `make`'s
  // result is cast to it.
  const char* interface_type = "";
  const char* name = "";
  const char* summary = "";
  ParamSchema (*schema)() = nullptr;
  // Builds the plugin from resolved parameters and a pointer to its kind's context; the result
  // points to the object as its interface. Use make_plugin<Interface>() rather than this.
  std::shared_ptr<void> (*make)(const Params& params, const void* context) = nullptr;

  PluginKind kind() const { return PluginKind(kind_folder, kind_singular); }
};

// The exported C symbols the runner looks up. The ABI tag is a plain C string so that it
// can be checked before anything C++-typed crosses the library boundary.
inline constexpr const char* kAbiTagSymbol = "exprun_plugin_abi_tag";
inline constexpr const char* kInfoSymbol = "exprun_plugin_info";

class PluginKindError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds the plugin `info` describes as an Interface. Throws PluginKindError when the plugin
// is of another kind or implements another interface of the same folder name.
template <class Interface>
std::shared_ptr<Interface> make_plugin(
    const PluginInfo& info, const Params& params,
    const typename PluginKindTraits<Interface>::Context& context) {
  constexpr PluginKind wanted = PluginKindTraits<Interface>::kind;
  const std::string full_name = std::string(info.kind_folder) + "/" + info.name;
  if (info.kind() != wanted) {
    throw PluginKindError(full_name + " is a " + info.kind_singular + " plugin, not a " +
                          wanted.singular() + " plugin");
  }
  if (std::strcmp(info.interface_type, typeid(Interface).name()) != 0) {
    throw PluginKindError(full_name + " implements interface " + info.interface_type +
                          ", which is not this exprun's " + typeid(Interface).name() +
                          " (two declarations of the " + wanted.folder() + " kind)");
  }
  // `make` returned the object converted to Interface* and then to void*, so this static cast
  // is the exact inverse.
  return std::static_pointer_cast<Interface>(info.make(params, &context));
}

namespace detail {

template <class P>
std::shared_ptr<void> make_erased(const Params& params, const void* context) {
  using Interface = typename P::PluginInterface;
  using Context = typename PluginKindTraits<Interface>::Context;
  std::shared_ptr<Interface> object =
      std::make_shared<P>(params, *static_cast<const Context*>(context));
  return object;
}

template <class P>
PluginInfo make_plugin_info() {
  using Interface = typename P::PluginInterface;
  static_assert(std::is_base_of_v<Interface, P>,
                "EXPRUN_PLUGIN needs a class derived from a plugin interface (Dataset, Model, "
                "Loss, MemoryStrategy or a kind with PluginKindTraits)");
  constexpr PluginKind kind = PluginKindTraits<Interface>::kind;
  PluginInfo info;
  info.kind_folder = kind.folder();
  info.kind_singular = kind.singular();
  info.interface_type = typeid(Interface).name();
  info.name = P::kName;
  info.summary = P::kSummary;
  info.schema = &P::schema;
  info.make = &make_erased<P>;
  return info;
}

}  // namespace detail
}  // namespace exprun::sdk

// Exactly one per plugin library.
#define EXPRUN_PLUGIN(CLASS)                                                             \
  extern "C" BOOST_SYMBOL_EXPORT const char* exprun_plugin_abi_tag() {                   \
    return EXPRUN_SDK_ABI_TAG;                                                           \
  }                                                                                      \
  extern "C" BOOST_SYMBOL_EXPORT const ::exprun::sdk::PluginInfo* exprun_plugin_info() { \
    static const ::exprun::sdk::PluginInfo info =                                        \
        ::exprun::sdk::detail::make_plugin_info<CLASS>();                                \
    return &info;                                                                        \
  }

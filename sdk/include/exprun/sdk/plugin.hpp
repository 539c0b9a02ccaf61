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
#pragma once

#include <boost/config.hpp>

#include <memory>
#include <string>
#include <type_traits>

#include "exprun/sdk/abi.hpp"
#include "exprun/sdk/dataset.hpp"
#include "exprun/sdk/loss.hpp"
#include "exprun/sdk/memory_strategy.hpp"
#include "exprun/sdk/model.hpp"
#include "exprun/sdk/params.hpp"

namespace exprun::sdk {

enum class PluginKind { Dataset, Model, Loss, Memory };

// "datasets", "models", "losses", "memory": the prefix of a plugin's full name.
const char* kind_folder(PluginKind kind);

struct PluginInfo {
  PluginKind kind = PluginKind::Dataset;
  const char* name = "";
  const char* summary = "";
  ParamSchema (*schema)() = nullptr;
  std::unique_ptr<Dataset> (*make_dataset)(const Params&, const DatasetContext&) = nullptr;
  std::shared_ptr<Model> (*make_model)(const Params&, const ModelContext&) = nullptr;
  std::unique_ptr<Loss> (*make_loss)(const Params&, const LossContext&) = nullptr;
  std::unique_ptr<MemoryStrategy> (*make_memory)(const Params&, const MemoryContext&) = nullptr;
};

// The exported C symbols the runner looks up. The ABI tag is a plain C string so that it
// can be checked before anything C++-typed crosses the library boundary.
inline constexpr const char* kAbiTagSymbol = "exprun_plugin_abi_tag";
inline constexpr const char* kInfoSymbol = "exprun_plugin_info";

namespace detail {

template <class>
inline constexpr bool kAlwaysFalse = false;

template <class P>
PluginInfo make_plugin_info() {
  PluginInfo info;
  info.name = P::kName;
  info.summary = P::kSummary;
  info.schema = &P::schema;
  if constexpr (std::is_base_of_v<Dataset, P>) {
    info.kind = PluginKind::Dataset;
    info.make_dataset = [](const Params& p, const DatasetContext& c) -> std::unique_ptr<Dataset> {
      return std::make_unique<P>(p, c);
    };
  } else if constexpr (std::is_base_of_v<Model, P>) {
    info.kind = PluginKind::Model;
    info.make_model = [](const Params& p, const ModelContext& c) -> std::shared_ptr<Model> {
      return std::make_shared<P>(p, c);
    };
  } else if constexpr (std::is_base_of_v<Loss, P>) {
    info.kind = PluginKind::Loss;
    info.make_loss = [](const Params& p, const LossContext& c) -> std::unique_ptr<Loss> {
      return std::make_unique<P>(p, c);
    };
  } else if constexpr (std::is_base_of_v<MemoryStrategy, P>) {
    info.kind = PluginKind::Memory;
    info.make_memory = [](const Params& p,
                          const MemoryContext& c) -> std::unique_ptr<MemoryStrategy> {
      return std::make_unique<P>(p, c);
    };
  } else {
    static_assert(
        kAlwaysFalse<P>,
        "EXPRUN_PLUGIN needs a class derived from Dataset, Model, Loss or MemoryStrategy");
  }
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

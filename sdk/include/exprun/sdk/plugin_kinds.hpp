// The one place a plugin kind is declared: a PluginKindTraits specialisation for the kind's
// interface, giving its folder name and the context its plugins are constructed with. The
// interface names itself as `PluginInterface`, which tells EXPRUN_PLUGIN which kind a class
// is. A new kind needs nothing else in exprun or its registry:
//
//   struct MetricContext { int landmarks = 0; };
//   class Metric {
//    public:
//     using PluginInterface = Metric;
//     virtual ~Metric() = default;
//     virtual double score(...) = 0;
//   };
//   template <>
//   struct exprun::sdk::PluginKindTraits<Metric> {
//     static constexpr PluginKind kind{"metrics", "metric"};
//     using Context = MetricContext;
//   };
//
// and a runner (or test) that knows Metric calls Registry::make<Metric>(name, params, context).
#pragma once

#include "exprun/sdk/dataset.hpp"
#include "exprun/sdk/loss.hpp"
#include "exprun/sdk/memory_strategy.hpp"
#include "exprun/sdk/model.hpp"
#include "exprun/sdk/plugin_kind.hpp"

namespace exprun::sdk {

// Specialised once per kind; there is no general definition, so a class whose interface has
// no traits fails to compile at EXPRUN_PLUGIN.
template <class Interface>
struct PluginKindTraits;

template <>
struct PluginKindTraits<Dataset> {
  static constexpr PluginKind kind = PluginKind::Dataset;
  using Context = DatasetContext;
};

template <>
struct PluginKindTraits<Model> {
  static constexpr PluginKind kind = PluginKind::Model;
  using Context = ModelContext;
};

template <>
struct PluginKindTraits<Loss> {
  static constexpr PluginKind kind = PluginKind::Loss;
  using Context = LossContext;
};

template <>
struct PluginKindTraits<MemoryStrategy> {
  static constexpr PluginKind kind = PluginKind::Memory;
  using Context = MemoryContext;
};

}  // namespace exprun::sdk

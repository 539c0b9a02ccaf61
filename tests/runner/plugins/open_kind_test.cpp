// A fifth plugin kind, declared only in a test fixture (tests/fixtures/plugins/metric_kind.hpp):
// the registry loads, lists, finds and makes it without knowing it, and keeps kinds apart.
#include <gtest/gtest.h>

#include <exprun/sdk/plugin.hpp>

#include <algorithm>
#include <filesystem>
#include <string>

#include "../../fixtures/plugins/metric_kind.hpp"
#include "plugins/registry.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;

const fs::path kPluginDir = EXPRUN_PLUGIN_DIR;
const fs::path kMetricDir = fs::path(EXPRUN_TEST_PLUGIN_DIR) / "metrics";
const sdk::PluginKind kMetrics = sdk::PluginKindTraits<test::Metric>::kind;

TEST(OpenKind, RegistryMakesAPluginOfAKindItDoesNotKnow) {
  Registry registry;
  registry.load_directories({kMetricDir}, 1);
  EXPECT_TRUE(registry.unloadable().empty());
  const LoadedPlugin& plugin = registry.find("metrics/max_error");
  EXPECT_EQ(plugin.kind(), kMetrics);
  EXPECT_EQ(plugin.full_name(), "metrics/max_error");
  EXPECT_EQ(&registry.find("metric/max_error"), &plugin) << "the singular names the kind too";
  EXPECT_EQ(&registry.find("max_error"), &plugin);

  const sdk::Params params = sdk::Params::resolve(plugin.schema, {{"scale", 2.0}});
  std::shared_ptr<test::Metric> metric =
      registry.make<test::Metric>("max_error", params, test::MetricContext{2});
  ASSERT_NE(metric, nullptr);
  EXPECT_EQ(metric->landmarks(), 2);
  const auto truth = torch::zeros({2, 2}, torch::kFloat64);
  const auto predicted = torch::tensor({{3.0, 4.0}, {0.0, 1.0}}, torch::kFloat64);
  EXPECT_DOUBLE_EQ(metric->score(predicted, truth), 10.0);  // 2 x the 3-4-5 triangle's 5
}

TEST(OpenKind, NewKindIsListedAfterTheBuiltInOnes) {
  Registry registry;
  registry.load_directories({kMetricDir, kPluginDir}, 2);
  const auto kinds = registry.kinds();
  ASSERT_EQ(kinds.size(), 5u);
  EXPECT_EQ(kinds.back(), kMetrics);
  const auto plugins = registry.list();
  ASSERT_FALSE(plugins.empty());
  EXPECT_EQ(plugins.back()->full_name(), "metrics/max_error");
  EXPECT_EQ(registry.parse_kind("metrics"), kMetrics);
  EXPECT_FALSE(parse_kind("metrics").has_value()) << "not a built-in kind";
  const std::string message = [&] {
    try {
      registry.find("optimizers/adam");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("nothing thrown");
  }();
  EXPECT_CONTAINS(message, "(expected datasets, models, losses, memory or metrics)");
}

TEST(OpenKind, APluginIsMadeOnlyAsItsOwnKind) {
  Registry registry;
  registry.load_directories({kMetricDir, kPluginDir}, 2);
  const LoadedPlugin& metric = registry.find("metrics/max_error");
  const sdk::Params params = sdk::Params::resolve(metric.schema, {});
  // Looked up under the loss kind, it is not there.
  EXPECT_THROW(registry.make<sdk::Loss>("max_error", params, sdk::LossContext{}),
               std::runtime_error);
  // Given directly, the kind check refuses the cast.
  try {
    sdk::make_plugin<sdk::Loss>(*metric.info, params, sdk::LossContext{});
    ADD_FAILURE() << "a metric was made as a loss";
  } catch (const sdk::PluginKindError& e) {
    EXPECT_CONTAINS(std::string(e.what()),
                    "metrics/max_error is a metric plugin, not a loss plugin");
  }
}

TEST(OpenKind, SameFolderWithAnotherInterfaceIsRefused) {
  // A second declaration of "metrics" with a different interface type, as a runner built
  // against another header would have.
  Registry registry;
  registry.load_directories({kMetricDir}, 1);
  sdk::PluginInfo impostor = *registry.find("metrics/max_error").info;
  impostor.interface_type = "SomeOtherMetric";
  try {
    sdk::make_plugin<test::Metric>(impostor, sdk::Params::resolve(impostor.schema(), {}),
                                   test::MetricContext{1});
    ADD_FAILURE() << "an object of another interface was cast";
  } catch (const sdk::PluginKindError& e) {
    EXPECT_CONTAINS(std::string(e.what()), "implements interface SomeOtherMetric");
  }
}

}  // namespace
}  // namespace exprun

// exprun/sdk/testing.hpp, the helper plugin authors test with: it loads a library by path as
// exprun does (ABI tag first) and makes its object from parameters checked against the schema.
#include <gtest/gtest.h>

#include <exprun/sdk/testing.hpp>

#include <filesystem>
#include <string>

#include "test_support.hpp"

namespace exprun::sdk {
namespace {

namespace fs = std::filesystem;

const fs::path kPluginDir = EXPRUN_PLUGIN_DIR;
const fs::path kFixtureDir = EXPRUN_TEST_PLUGIN_DIR;

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "nothing thrown";
}

TEST(PluginTestHelper, LoadsByPathAndMakesWithGivenParameters) {
  const PluginInfo& info = plugin_test::load_plugin(kPluginDir / "exprun-losses-mse.so");
  EXPECT_STREQ(info.name, "mse");
  auto loss = plugin_test::make<Loss>(info);
  ASSERT_NE(loss, nullptr);
  const auto maps = torch::rand({2, 3, 4, 4});
  EXPECT_EQ(loss->compute(maps, maps, torch::ones({3})).item<double>(), 0.0);
  const auto unit = loss->compute(maps + 1, maps, torch::ones({3})).item<double>();
  auto scaled = plugin_test::make<Loss>(info, {{"scale", 3.0}});
  EXPECT_NEAR(scaled->compute(maps + 1, maps, torch::ones({3})).item<double>(), 3 * unit, 1e-5);
}

TEST(PluginTestHelper, ParametersAreCheckedAgainstTheSchema) {
  const PluginInfo& info = plugin_test::load_plugin(kPluginDir / "exprun-losses-mse.so");
  EXPECT_THROW(plugin_test::make<Loss>(info, {{"scael", 3.0}}), ParamError);
  EXPECT_THROW(plugin_test::make<Loss>(info, {{"scale", std::string("big")}}), ParamError);
}

TEST(PluginTestHelper, WrongKindIsRefused) {
  const PluginInfo& info = plugin_test::load_plugin(kPluginDir / "exprun-losses-mse.so");
  EXPECT_THROW(plugin_test::make<Model>(info), PluginKindError);
}

TEST(PluginTestHelper, AbiMismatchIsRefusedBeforeTheInfoIsRead) {
  const fs::path file = kFixtureDir / "abi_mismatch" / "exprun-losses-abi_mismatch.so";
  const std::string message = error_of([&] { plugin_test::load_plugin(file); });
  EXPECT_CONTAINS(message, file.string() + " was built for a different ABI: ");
  EXPECT_CONTAINS(message, "SDK version differs: plugin 0.9");
}

TEST(PluginTestHelper, LibraryWithoutExportsAndMissingFileAreNamed) {
  const fs::path no_export = kFixtureDir / "no_export" / "exprun-losses-no_export.so";
  EXPECT_CONTAINS(error_of([&] { plugin_test::load_plugin(no_export); }),
                  no_export.string() + " is not an exprun plugin");
  EXPECT_CONTAINS(error_of([&] { plugin_test::load_plugin("/nonexistent/exprun-losses-x.so"); }),
                  "cannot load plugin library /nonexistent/exprun-losses-x.so: ");
}

}  // namespace
}  // namespace exprun::sdk

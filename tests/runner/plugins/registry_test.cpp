// The plugin registry against real libraries: the built-in plugins in EXPRUN_PLUGIN_DIR and the
// broken fixtures in EXPRUN_TEST_PLUGIN_DIR (abi_mismatch/, no_export/, duplicate_mse/, each
// holding one exprun-losses-<case>.so). Messages are checked against docs/cli.md, "Registry
// errors".
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <exprun/sdk/abi.hpp>
#include <exprun/sdk/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "plugins/registry.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using sdk::PluginKind;

const fs::path kPluginDir = EXPRUN_PLUGIN_DIR;
const fs::path kFixtureDir = EXPRUN_TEST_PLUGIN_DIR;

// Sets (or unsets) an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value)
      ::setenv(name_.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// The one .so in a fixture folder, as the registry names it (it lists the canonical folder).
fs::path fixture_library(const std::string& fixture) {
  return fs::canonical(kFixtureDir / fixture) / ("exprun-losses-" + fixture + ".so");
}

// Runs `body`, expecting a PluginLoadError; returns its message ("" and a failure otherwise).
template <class F>
std::string load_error(F&& body) {
  try {
    body();
  } catch (const PluginLoadError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected PluginLoadError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected PluginLoadError, nothing was thrown";
  return "";
}

// Runs `body`, expecting a std::runtime_error (the lookup errors); returns its message.
template <class F>
std::string lookup_error(F&& body) {
  try {
    body();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected std::runtime_error, nothing was thrown";
  return "";
}

class RegistryTest : public ::testing::Test {
 protected:
  // The tests name their directories explicitly; the variable must not add others.
  ScopedEnv no_env_path_{"EXPRUN_PLUGIN_PATH", std::nullopt};
};

TEST_F(RegistryTest, BuiltInPluginsDirectoryExists) {
  ASSERT_TRUE(fs::is_directory(kPluginDir)) << kPluginDir;
  ASSERT_TRUE(fs::is_directory(kFixtureDir)) << kFixtureDir;
}

TEST_F(RegistryTest, LoadsEveryBuiltInPlugin) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  std::set<std::string> names;
  std::set<PluginKind> kinds;
  for (const LoadedPlugin* p : registry.list()) {
    names.insert(p->full_name());
    kinds.insert(p->kind());
  }
  for (const char* expected :
       {"datasets/synthetic_ceph", "models/hrnet", "losses/adaptive_wing", "losses/mse",
        "memory/gradient_accumulation", "memory/mixed_precision"}) {
    EXPECT_TRUE(names.count(expected)) << expected << " was not loaded";
  }
  EXPECT_EQ(kinds.size(), 4u) << "at least one plugin of each kind";
  ASSERT_EQ(registry.searched().size(), 1u);
  EXPECT_EQ(registry.searched()[0], kPluginDir);
}

TEST_F(RegistryTest, ListIsGroupedByKindInDocumentedOrder) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  const auto plugins = registry.list();
  ASSERT_FALSE(plugins.empty());
  auto rank = [](PluginKind k) {
    const std::vector<PluginKind> order = {PluginKind::Dataset, PluginKind::Model, PluginKind::Loss,
                                           PluginKind::Memory};
    return std::find(order.begin(), order.end(), k) - order.begin();
  };
  for (std::size_t i = 1; i < plugins.size(); ++i)
    EXPECT_LE(rank(plugins[i - 1]->kind()), rank(plugins[i]->kind()))
        << plugins[i - 1]->full_name() << " listed before " << plugins[i]->full_name();
}

TEST_F(RegistryTest, LoadedPluginKnowsItsFileAndSummary) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  const LoadedPlugin& p = registry.find(PluginKind::Loss, "adaptive_wing");
  EXPECT_EQ(p.full_name(), "losses/adaptive_wing");
  EXPECT_EQ(p.name(), "adaptive_wing");
  EXPECT_EQ(p.kind(), PluginKind::Loss);
  EXPECT_TRUE(fs::exists(p.file)) << p.file;
  EXPECT_EQ(p.file.filename(), "exprun-losses-adaptive_wing.so");
  ASSERT_NE(p.info, nullptr);
  EXPECT_FALSE(std::string(p.info->summary).empty());
}

TEST_F(RegistryTest, AdaptiveWingSchemaHasAlphaDefault) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  const LoadedPlugin& p = registry.find("losses/adaptive_wing");
  const sdk::ParamSpec* alpha = p.schema.find("alpha");
  ASSERT_NE(alpha, nullptr);
  EXPECT_EQ(alpha->type, sdk::ParamType::Float);
  ASSERT_TRUE(alpha->default_value.has_value());
  ASSERT_TRUE(std::holds_alternative<double>(*alpha->default_value));
  EXPECT_DOUBLE_EQ(std::get<double>(*alpha->default_value), 2.1);
  EXPECT_FALSE(alpha->doc.empty());
  for (const char* name : {"omega", "epsilon", "theta"})
    EXPECT_NE(p.schema.find(name), nullptr) << name;
  // SchemaSource, as the experiment loader sees it.
  const sdk::ParamSchema via_source = registry.schema(PluginKind::Loss, "adaptive_wing");
  EXPECT_NE(via_source.find("alpha"), nullptr);
}

TEST_F(RegistryTest, FindAcceptsQualifiedSingularAndBareNames) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  EXPECT_EQ(registry.find("losses/mse").full_name(), "losses/mse");
  EXPECT_EQ(registry.find("loss/mse").full_name(), "losses/mse");
  EXPECT_EQ(registry.find("mse").full_name(), "losses/mse");
  EXPECT_EQ(registry.find("models/hrnet").full_name(), "models/hrnet");
  EXPECT_EQ(registry.find("model/hrnet").full_name(), "models/hrnet");
  EXPECT_EQ(registry.find("dataset/synthetic_ceph").full_name(), "datasets/synthetic_ceph");
  EXPECT_EQ(registry.find("memory/mixed_precision").full_name(), "memory/mixed_precision");
}

TEST_F(RegistryTest, ParseKindAcceptsPluralAndSingular) {
  EXPECT_EQ(parse_kind("datasets"), PluginKind::Dataset);
  EXPECT_EQ(parse_kind("dataset"), PluginKind::Dataset);
  EXPECT_EQ(parse_kind("models"), PluginKind::Model);
  EXPECT_EQ(parse_kind("model"), PluginKind::Model);
  EXPECT_EQ(parse_kind("losses"), PluginKind::Loss);
  EXPECT_EQ(parse_kind("loss"), PluginKind::Loss);
  EXPECT_EQ(parse_kind("memory"), PluginKind::Memory);
  EXPECT_FALSE(parse_kind("lossess").has_value());
  EXPECT_FALSE(parse_kind("").has_value());
}

// ---------------------------------------------------------------- search path

TEST_F(RegistryTest, SearchPathWithoutEnvironment) {
  const fs::path exe = "/opt/exprun/bin/exprun";
  const auto dirs = Registry::search_path({"/a", "/b"}, exe);
  ASSERT_EQ(dirs.size(), 4u);
  EXPECT_EQ(dirs[0], fs::path("/a"));
  EXPECT_EQ(dirs[1], fs::path("/b"));
  EXPECT_EQ(dirs[2], fs::path("/opt/exprun/bin/plugins"));
  EXPECT_EQ(dirs[3].lexically_normal(), fs::path("/opt/exprun/lib/exprun/plugins"));
}

TEST_F(RegistryTest, SearchPathReadsEnvironmentBetweenCliAndExecutableDirs) {
  ScopedEnv env("EXPRUN_PLUGIN_PATH", "/e1::/e2:");
  const auto dirs = Registry::search_path({"/cli"}, "/x/exprun");
  ASSERT_EQ(dirs.size(), 5u);  // empty items are skipped
  EXPECT_EQ(dirs[0], fs::path("/cli"));
  EXPECT_EQ(dirs[1], fs::path("/e1"));
  EXPECT_EQ(dirs[2], fs::path("/e2"));
  EXPECT_EQ(dirs[3], fs::path("/x/plugins"));
  EXPECT_EQ(dirs[4].lexically_normal(), fs::path("/lib/exprun/plugins"));
}

TEST_F(RegistryTest, EnvironmentDirectoriesThatDoNotExistAreSkipped) {
  ScopedEnv env("EXPRUN_PLUGIN_PATH", "/nonexistent/exprun-plugins:" + kPluginDir.string());
  Registry registry;
  // No --plugins directories: nothing is required to exist.
  EXPECT_NO_THROW(
      registry.load_directories(Registry::search_path({}, "/nonexistent/bin/exprun"), 0));
  EXPECT_NO_THROW(registry.find("losses/mse"));
  ASSERT_EQ(registry.searched().size(), 1u);
  EXPECT_EQ(registry.searched()[0], kPluginDir);
}

TEST_F(RegistryTest, SameDirectoryReachedTwiceIsLoadedOnce) {
  test::TempDir tmp("exprun-registry");
  const fs::path link = tmp / "plugins-link";
  fs::create_directory_symlink(kPluginDir, link);
  Registry registry;
  // Loading the same libraries twice would be a duplicate-name error.
  EXPECT_NO_THROW(registry.load_directories({kPluginDir, link, kPluginDir}, 3));
  EXPECT_EQ(registry.searched().size(), 1u);
}

TEST_F(RegistryTest, EmptyDirectoryLoadsNothing) {
  test::TempDir tmp("exprun-registry");
  test::write_text(tmp / "exprun-not-a-library.txt", "x");     // not .so
  test::write_text(tmp / "libsomething.so", "not a library");  // not exprun-*
  Registry registry;
  EXPECT_NO_THROW(registry.load_directories({tmp.path()}, 1));
  EXPECT_TRUE(registry.list().empty());
  const std::string message = lookup_error([&] { registry.find(PluginKind::Loss, "mse"); });
  EXPECT_CONTAINS(message, "no losses plugin named \"mse\"");
  EXPECT_CONTAINS(message, "none of this kind is loaded");
  EXPECT_CONTAINS(message, tmp.path().string());
}

TEST_F(RegistryTest, LookupWithNoExistingDirectorySaysSo) {
  Registry registry;
  registry.load_directories({"/nonexistent/exprun-a", "/nonexistent/exprun-b"}, 0);
  const std::string message = lookup_error([&] { registry.find(PluginKind::Model, "hrnet"); });
  EXPECT_CONTAINS(message, "no models plugin named \"hrnet\"");
  EXPECT_CONTAINS(message, "searched no existing directory");
}

// ---------------------------------------------------------------- load errors

TEST_F(RegistryTest, MissingCliDirectoryIsNamed) {
  Registry registry;
  const std::string missing = "/nonexistent/exprun-plugins-dir";
  const std::string message = load_error([&] {
    registry.load_directories({missing, kPluginDir}, 1);
  });
  EXPECT_CONTAINS(message, "plugin directory " + missing + " does not exist or is not a directory");
}

TEST_F(RegistryTest, CliPathThatIsAFileIsRejected) {
  test::TempDir tmp("exprun-registry");
  test::write_text(tmp / "file", "x");
  Registry registry;
  const std::string message = load_error([&] { registry.load_directories({tmp / "file"}, 1); });
  EXPECT_CONTAINS(message, (tmp / "file").string());
  EXPECT_CONTAINS(message, "does not exist or is not a directory");
}

TEST_F(RegistryTest, MissingLibraryFileIsNamed) {
  Registry registry;
  const fs::path missing = "/nonexistent/exprun-losses-gone.so";
  const std::string message = load_error([&] { registry.load_file(missing); });
  EXPECT_CONTAINS(message, "plugin library " + missing.string() + " not found");
}

// The one library a directory could not load, as recorded (the load itself does not throw).
const UnloadableLibrary& only_unloadable(const Registry& registry) {
  static const UnloadableLibrary none;
  EXPECT_EQ(registry.unloadable().size(), 1u);
  return registry.unloadable().empty() ? none : registry.unloadable().front();
}

TEST_F(RegistryTest, UnloadableFileIsReportedWithTheLoadersMessage) {
  test::TempDir tmp("exprun-registry");
  const fs::path bogus = tmp / "exprun-losses-garbage.so";
  test::write_text(bogus, "this is not an ELF file");
  Registry registry;
  EXPECT_NO_THROW(registry.load_directories({tmp.path()}, 1));
  const UnloadableLibrary& failed = only_unloadable(registry);
  EXPECT_CONTAINS(failed.reason, "cannot load plugin library");
  EXPECT_CONTAINS(failed.reason, "exprun-losses-garbage.so: ");
  EXPECT_NOT_CONTAINS(failed.reason, "truncated") << "not ELF: the loader's own message";
  EXPECT_EQ(failed.would_provide, "losses/garbage");
  // Loading that one file by name is still an error.
  EXPECT_CONTAINS(load_error([&] { registry.load_file(bogus); }), "cannot load plugin library");
}

// A cut copy used to be mapped past its end by the loader, which died of SIGBUS.
TEST_F(RegistryTest, TruncatedLibraryIsRefusedBeforeTheLoaderMapsIt) {
  const fs::path whole = kPluginDir / "exprun-losses-mse.so";
  const auto size = static_cast<std::size_t>(fs::file_size(whole));
  std::ifstream in(whole, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const std::size_t cut : {std::size_t{100}, std::size_t{1000}, std::size_t{5000},
                                std::size_t{20000}, size / 2, size - 100}) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(size) + " bytes");
    test::TempDir tmp("exprun-registry");
    test::write_text(tmp / "exprun-losses-cut.so", bytes.substr(0, cut));
    Registry registry;
    EXPECT_NO_THROW(registry.load_directories({tmp.path()}, 1));
    const UnloadableLibrary& failed = only_unloadable(registry);
    EXPECT_CONTAINS(failed.reason, "exprun-losses-cut.so: it is truncated: " + std::to_string(cut) +
                                       " bytes, but its ");
    EXPECT_EQ(failed.would_provide, "losses/cut");
  }
}

TEST_F(RegistryTest, ALibraryReachedThroughALinkIsLoadedOnce) {
  test::TempDir tmp("exprun-registry");
  fs::create_symlink(kPluginDir / "exprun-losses-adaptive_wing.so",
                     tmp / "exprun-losses-adaptive_wing.so");
  Registry registry;
  EXPECT_NO_THROW(registry.load_directories({tmp.path(), kPluginDir}, 2));
  EXPECT_TRUE(registry.unloadable().empty());
  EXPECT_NO_THROW(registry.find(PluginKind::Loss, "adaptive_wing"));
}

TEST_F(RegistryTest, LibraryWithoutExportsIsNotAPlugin) {
  Registry registry;
  const std::string message = load_error([&] { registry.load_file(fixture_library("no_export")); });
  EXPECT_CONTAINS(message, fixture_library("no_export").string() + " is not an exprun plugin");
  EXPECT_CONTAINS(message, "exprun_plugin_abi_tag");
  EXPECT_CONTAINS(message, "exprun_plugin_info");
  EXPECT_CONTAINS(message, "EXPRUN_PLUGIN(");
}

TEST_F(RegistryTest, AbiMismatchNamesBothTags) {
  Registry registry;
  const std::string message =
      load_error([&] { registry.load_file(fixture_library("abi_mismatch")); });
  const std::string ours = sdk::sdk_abi_tag();
  ASSERT_NE(ours, "exprun-sdk-0.9;torch-0.0.0;gcc-1.0;cxx11abi-1");
  EXPECT_CONTAINS(message,
                  fixture_library("abi_mismatch").string() + " was built for a different ABI");
  EXPECT_CONTAINS(message, "plugin tag \"exprun-sdk-0.9;torch-0.0.0;gcc-1.0;cxx11abi-1\"");
  EXPECT_CONTAINS(message, "exprun tag \"" + ours + "\"");
  EXPECT_CONTAINS(message, "rebuild the plugin");
  // Each differing field is named with its own advice.
  EXPECT_CONTAINS(message, "SDK version differs: plugin 0.9, exprun 1.5");
  EXPECT_CONTAINS(message, "LibTorch version differs: plugin 0.0.0, exprun " TORCH_VERSION);
  EXPECT_CONTAINS(message, "compiler differs: plugin gcc-1.0, exprun " EXPRUN_COMPILER_TAG);
  EXPECT_EQ(message.find("libstdc++ string ABI differs"), std::string::npos) << message;
}

// A library built against another LibTorch is refused from its file: loading it would load that
// LibTorch too. Here a copy of a built-in whose tag names another LibTorch version (the library
// itself would load fine, so only the file's tag can have refused it).
TEST_F(RegistryTest, ALibraryForAnotherLibTorchIsRefusedWithoutBeingLoaded) {
  test::TempDir dir;
  const fs::path copy = dir / "exprun-losses-mse.so";
  std::string bytes = test::read_text(kPluginDir / "exprun-losses-mse.so");
  const std::string ours = sdk::sdk_abi_tag();
  const std::string torch_field = ";torch-" TORCH_VERSION ";";
  std::string theirs = ours;
  const std::size_t version_at = theirs.find(torch_field) + std::string(";torch-").size();
  ASSERT_NE(theirs.find(torch_field), std::string::npos) << ours;
  theirs[version_at] = theirs[version_at] == '9' ? '8' : '9';  // same length: offsets unchanged
  const std::size_t tag_at = bytes.find(ours + '\0');
  ASSERT_NE(tag_at, std::string::npos);
  bytes.replace(tag_at, ours.size(), theirs);
  test::write_text(copy, bytes);

  Registry registry;
  const std::string message = load_error([&] { registry.load_file(copy); });
  EXPECT_CONTAINS(message, copy.string() + " was built for a different ABI");
  EXPECT_CONTAINS(message, "LibTorch version differs: plugin " +
                               theirs.substr(version_at, std::string(TORCH_VERSION).size()));
  EXPECT_CONTAINS(message, "the library was not loaded");
  EXPECT_EQ(::dlopen(copy.c_str(), RTLD_LAZY | RTLD_NOLOAD), nullptr) << "it was loaded";
}

TEST_F(RegistryTest, RunnerAbiTagDescribesThisBuild) {
  const std::string ours = sdk::sdk_abi_tag();
  EXPECT_EQ(ours, EXPRUN_SDK_ABI_TAG) << "the runner and the test were compiled alike";
  EXPECT_EQ(ours.rfind("exprun-sdk-1.5;torch-", 0), 0u) << ours;
  EXPECT_CONTAINS(ours, ";cxx11abi-");
}

// A clash is found when the second library loads; it is recorded there and is an error for
// whatever then names the plugin.
std::string duplicate_error(const std::vector<fs::path>& dirs) {
  Registry registry;
  EXPECT_NO_THROW(registry.load_directories(dirs, dirs.size()));
  EXPECT_NO_THROW(registry.find("losses/adaptive_wing")) << "other plugins stay usable";
  EXPECT_EQ(only_unloadable(registry).would_provide, "losses/mse");
  const std::string message = load_error([&] { registry.find("losses/mse"); });
  EXPECT_CONTAINS(message, "losses/mse comes from a library that could not be loaded: ");
  return message;
}

TEST_F(RegistryTest, DuplicateNameNamesBothFiles) {
  const std::string message = duplicate_error({kPluginDir, kFixtureDir / "duplicate_mse"});
  EXPECT_CONTAINS(message, "two plugins are named losses/mse: ");
  EXPECT_CONTAINS(message, "exprun-losses-mse.so");
  EXPECT_CONTAINS(message, fixture_library("duplicate_mse").string());
  EXPECT_CONTAINS(message, "remove one or rename it");
  // The built-in comes first in the message: it was loaded first.
  EXPECT_LT(message.find("exprun-losses-mse.so"), message.find("exprun-losses-duplicate_mse.so"));
}

TEST_F(RegistryTest, DuplicateIsAnErrorWhicheverLoadsFirst) {
  // Order is not a priority: the out-of-tree plugin first is still a clash.
  const std::string message = duplicate_error({kFixtureDir / "duplicate_mse", kPluginDir});
  EXPECT_CONTAINS(message, "two plugins are named losses/mse");
  EXPECT_CONTAINS(message, "exprun-losses-duplicate_mse.so");
  EXPECT_CONTAINS(message, "exprun-losses-mse.so");
}

TEST_F(RegistryTest, BadLibraryOnEnvironmentPathFailsOnlyWhatNamesIt) {
  ScopedEnv env("EXPRUN_PLUGIN_PATH", (kFixtureDir / "abi_mismatch").string());
  Registry registry;
  EXPECT_NO_THROW(registry.load_directories({kPluginDir}, 1));
  EXPECT_NO_THROW(
      registry.load_directories(Registry::search_path({}, "/nonexistent/bin/exprun"), 0));
  const UnloadableLibrary& failed = only_unloadable(registry);
  EXPECT_EQ(failed.file, fixture_library("abi_mismatch"));
  EXPECT_CONTAINS(failed.reason, "was built for a different ABI");
  EXPECT_EQ(failed.would_provide, "losses/abi_mismatch");
  EXPECT_NO_THROW(registry.find("losses/mse"));
  const std::string named = load_error([&] { registry.find(PluginKind::Loss, "abi_mismatch"); });
  EXPECT_CONTAINS(named, "losses/abi_mismatch comes from a library that could not be loaded: ");
  EXPECT_CONTAINS(named, fixture_library("abi_mismatch").string());
  EXPECT_CONTAINS(named, "was built for a different ABI");
  EXPECT_CONTAINS(load_error([&] { registry.find("abi_mismatch"); }), "could not be loaded: ");
  // Lookups that miss mention the failure, since it may be the library meant.
  const std::string missing = lookup_error([&] { registry.find("losses/wing"); });
  EXPECT_CONTAINS(missing, "1 library could not be loaded (`exprun plugins` says why): " +
                               fixture_library("abi_mismatch").string());
}

// ---------------------------------------------------------------- lookups

TEST_F(RegistryTest, UnknownNameSuggestsTheClosest) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  const std::string message =
      lookup_error([&] { registry.find(PluginKind::Loss, "adaptive_wig"); });
  EXPECT_CONTAINS(message, "no losses plugin named \"adaptive_wig\"");
  EXPECT_CONTAINS(message, "did you mean 'adaptive_wing'?");
  EXPECT_CONTAINS(message, "available: ");
  EXPECT_CONTAINS(message, "adaptive_wing, l1_coords, mse");
  EXPECT_CONTAINS(message, "searched " + kPluginDir.string());

  const std::string qualified = lookup_error([&] { registry.find("losses/adaptive_wig"); });
  EXPECT_CONTAINS(qualified, "did you mean 'adaptive_wing'?");

  const std::string bare = lookup_error([&] { registry.find("adaptive_wig"); });
  EXPECT_CONTAINS(bare, "no plugin named \"adaptive_wig\"");
  EXPECT_CONTAINS(bare, "did you mean 'losses/adaptive_wing'?");
  EXPECT_EQ(message.find("directory you did not pass"), std::string::npos) << message;
}

TEST_F(RegistryTest, CloseNameAmongSeveralIsSuggested) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  EXPECT_CONTAINS(lookup_error([&] { registry.find("losses/mes"); }), "did you mean 'mse'?");
  EXPECT_CONTAINS(lookup_error([&] { registry.find("models/unte"); }), "did you mean 'unet'?");
}

TEST_F(RegistryTest, NameWithNothingCloseAsksAboutUnsearchedDirectories) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  const std::string message = lookup_error([&] { registry.find("losses/wing"); });
  EXPECT_CONTAINS(message, "no losses plugin named \"wing\"");
  EXPECT_CONTAINS(message,
                  "is it in a directory you did not pass? (--plugins DIR or EXPRUN_PLUGIN_PATH)");
  EXPECT_EQ(message.find("did you mean"), std::string::npos) << message;
  EXPECT_EQ(message.find("could not be loaded"), std::string::npos) << message;
}

TEST_F(RegistryTest, UnknownKindIsReported) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  const std::string message = lookup_error([&] { registry.find("optimizers/adam"); });
  EXPECT_CONTAINS(message,
                  "unknown plugin kind \"optimizers\" (expected datasets, models, "
                  "losses or memory)");
}

TEST_F(RegistryTest, SchemaOfUnknownPluginThrows) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  EXPECT_THROW(registry.schema(PluginKind::Model, "hrnett"), std::runtime_error);
}

// ---------------------------------------------------------------- making plugin objects

TEST_F(RegistryTest, MakesALossThatComputes) {
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  const auto& schema = registry.find(PluginKind::Loss, "mse").schema;
  const sdk::Params params = sdk::Params::resolve(schema, {});
  std::shared_ptr<sdk::Loss> loss = registry.make<sdk::Loss>("mse", params, sdk::LossContext{});
  ASSERT_NE(loss, nullptr);
  auto predicted = torch::zeros({2, 3, 4, 4});
  auto target = torch::zeros({2, 3, 4, 4});
  auto weights = torch::ones({3});
  EXPECT_NEAR(loss->compute(predicted, target, weights).item<double>(), 0.0, 1e-12);
  auto value = loss->compute(predicted + 1, target, weights).item<double>();
  EXPECT_TRUE(std::isfinite(value));
  EXPECT_GT(value, 0.0);
}

}  // namespace
}  // namespace exprun

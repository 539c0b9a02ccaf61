// The exprun command line, run as a subprocess: help, version, plugins, describe, plan, and the
// exit codes and messages of docs/cli.md and docs/experiment-file.md ("Error messages").
// EXPRUN_PLUGIN_PATH is unset for every child, so it loads exactly the built-in plugins beside
// the executable.
#include <gtest/gtest.h>

#include <torch/version.h>
#include <exprun/sdk/abi.hpp>
#include <exprun/sdk/params.hpp>
#include <exprun/sdk/plugin.hpp>
#if EXPRUN_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "data/worker_count.hpp"
#include "plugins/registry.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using test::expect_no_crash;
using test::ProcessResult;

const fs::path kExe = EXPRUN_EXE;
const fs::path kPluginDir = EXPRUN_PLUGIN_DIR;
const fs::path kFixtureDir = EXPRUN_TEST_PLUGIN_DIR;

ProcessResult exprun(std::vector<std::string> args, test::ProcessOptions options = {}) {
  options.timeout_s = 120;
  return test::run_exprun(std::move(args), std::move(options));
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  return text;
}

// An error exit: the given code, stderr exactly one line "exprun: error: ...", returned
// without the prefix.
std::string expect_error(const ProcessResult& r, int code) {
  EXPECT_EQ(r.exit_code, code) << r.describe();
  expect_no_crash(r);
  const auto lines = test::split_lines(trimmed(r.err));
  EXPECT_EQ(lines.size(), 1u) << "an error is one line on stderr\n" << r.describe();
  if (lines.empty()) return "";
  const std::string prefix = "exprun: error: ";
  EXPECT_EQ(lines[0].rfind(prefix, 0), 0u) << r.describe();
  return lines[0].rfind(prefix, 0) == 0 ? lines[0].substr(prefix.size()) : lines[0];
}

// A successful exit with nothing on stderr.
void expect_ok(const ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  expect_no_crash(r);
}

// ---------------------------------------------------------------- help and version

TEST(CliTest, HelpPrintsTheOverview) {
  for (const std::string flag : {"--help", "-h", "help"}) {
    SCOPED_TRACE(flag);
    const auto r = exprun({flag});
    expect_ok(r);
    EXPECT_CONTAINS(r.out, "usage: exprun COMMAND");
    for (const char* command :
         {"run FILE.toml", "plan FILE.toml", "plugins [KIND]", "describe KIND/NAME", "version"})
      EXPECT_CONTAINS(r.out, command);
    EXPECT_EQ(r.err, "");
  }
}

TEST(CliTest, NoArgumentsPrintsTheOverviewAndExits2) {
  const auto r = exprun({});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  expect_no_crash(r);
  EXPECT_CONTAINS(r.out + r.err, "usage: exprun COMMAND");
}

TEST(CliTest, EveryCommandHasHelp) {
  for (const std::string command : {"run", "plan", "plugins", "describe"}) {
    SCOPED_TRACE(command);
    for (const std::string flag : {"--help", "-h"}) {
      const auto r = exprun({command, flag});
      expect_ok(r);
      EXPECT_CONTAINS(r.out, "exprun " + command);
      EXPECT_CONTAINS(r.out, "--plugins");
    }
  }
  EXPECT_CONTAINS(exprun({"run", "--help"}).out, "--set");
  EXPECT_CONTAINS(exprun({"run", "--help"}).out, "--output");
  EXPECT_CONTAINS(exprun({"plan", "--help"}).out, "--set");
}

// `--run-dir ""` started a new run under results/, `--time ""` wrote no time limit: an unset
// shell variable is a mistake, not a request for the default.
TEST(CliTest, AnEmptyOptionValueIsAnErrorInEveryCommand) {
  const std::vector<std::vector<std::string>> cases = {
      {"run", "x.toml", "--run-dir", ""},
      {"run", "x.toml", "-o", ""},
      {"run", "x.toml", "--set", ""},
      {"plan", ""},
      {"compare", "a.json", "--stage", ""},
      {"eval", "x.toml", "--checkpoint", ""},
      {"slurm", "submit", "x.toml", "--time", ""},
      {"synth", "--format", "aariz", "--out", "", "--count", "3"}};
  for (const auto& args : cases) {
    const ProcessResult r = test::run_exprun(args);
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, ": empty; give a value or leave the option out");
    expect_no_crash(r);
  }
}

// 99999999999 landmarks asked LibTorch for 100 TB and printed its backtrace, with exit 0.
TEST(CliTest, DescribeBoundsTheModelItBuilds) {
  const ProcessResult r =
      test::run_exprun({"describe", "models/hrnet", "--landmarks", "99999999999"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--landmarks: expected 1 to 10000, found 99999999999");
  EXPECT_NOT_CONTAINS(r.out, "Exception raised from");
  // Checked before anything is printed, for every kind: a loss took --landmarks 0 with exit 0.
  for (const std::string plugin : {"models/hrnet", "losses/adaptive_wing"}) {
    const ProcessResult zero = test::run_exprun({"describe", plugin, "--landmarks", "0"});
    EXPECT_EQ(zero.exit_code, 2) << zero.describe();
    EXPECT_EQ(zero.out, "") << plugin;
    const ProcessResult channels = test::run_exprun({"describe", plugin, "--channels", "999"});
    EXPECT_EQ(channels.exit_code, 2) << channels.describe();
    EXPECT_CONTAINS(channels.err, "--channels: expected 1 to 64, found 999");
  }
}

TEST(CliTest, AnUnknownDeviceIsOneLineWithoutLibTorchsBacktrace) {
  const ProcessResult r = test::run_exprun(
      {"predict", "--checkpoint", "c.pt", "--device", "gpu", "x.png", "--out", "o"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_EQ(r.err,
            "exprun: error: --device: expected auto, cpu, cuda or cuda:N, found \"gpu\" "
            "(see --help)\n");
}

TEST(CliTest, VersionPrintsExprunAndLibTorchVersions) {
  const std::string expected = std::string("exprun ") + EXPRUN_VERSION + " (LibTorch " +
                               TORCH_VERSION + ", CUDA code " +
                               (EXPRUN_WITH_CUDA ? "compiled" : "not compiled") + ")";
  for (const std::string command : {"version", "--version"}) {
    SCOPED_TRACE(command);
    const auto r = exprun({command});
    expect_ok(r);
    const auto lines = test::split_lines(trimmed(r.out));
    ASSERT_EQ(lines.size(), 10u) << r.out;
    EXPECT_EQ(lines[0], expected);  // the first line stays as scripts know it
    EXPECT_EQ(lines[1], "sdk:                    " + std::to_string(EXPRUN_SDK_VERSION_MAJOR) +
                            "." + std::to_string(EXPRUN_SDK_VERSION_MINOR));
    // The compiler this test was built with is the one exprun was built with.
#if defined(__clang__)
    EXPECT_EQ(lines[2], std::string("compiler:               clang ") + __VERSION__);
#else
    EXPECT_EQ(lines[2], std::string("compiler:               gcc ") + __VERSION__);
#endif
    EXPECT_EQ(lines[3], "C++ standard:           __cplusplus " + std::to_string(__cplusplus) + "L");
    EXPECT_EQ(lines[4], "_GLIBCXX_USE_CXX11_ABI: " + std::to_string(_GLIBCXX_USE_CXX11_ABI));
    EXPECT_EQ(lines[5], std::string("abi tag:                ") + sdk::sdk_abi_tag());
#if EXPRUN_WITH_CUDA
    // The toolkit's runtime header this test compiled with is the CUDA LibTorch was built for
    // (scripts/fetch-torch-wheel.sh and LibTorch's CMake config refuse a mismatch).
    const std::string cuda =
        std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
    EXPECT_EQ(lines[6].rfind("cuda:                   " + cuda + " (", 0), 0u) << lines[6];
    EXPECT_TRUE(std::regex_match(lines[6], std::regex(R"(.* \([0-9]+ devices? visible\))")))
        << lines[6];
    EXPECT_TRUE(std::regex_match(lines[7], std::regex(R"(cudnn: +[0-9]+\.[0-9]+\.[0-9]+)")))
        << lines[7];
#else
    EXPECT_EQ(lines[6], "cuda:                   not compiled");
    EXPECT_EQ(lines[7], "cudnn:                  not compiled");
#endif
    // exprun inherits this test's environment, which may carry the user's malloc settings.
    bool tuned = false;
    for (char** entry = environ; *entry; ++entry) {
      const std::string variable = *entry;
      tuned =
          tuned || variable.rfind("MALLOC_", 0) == 0 || variable.rfind("GLIBC_TUNABLES=", 0) == 0;
    }
    EXPECT_EQ(lines[8], std::string("malloc:                 ") +
                            (std::getenv("EXPRUN_KEEP_MALLOC_DEFAULTS")
                                 ? "glibc defaults (EXPRUN_KEEP_MALLOC_DEFAULTS)"
                             : tuned ? "glibc, as tuned by the environment"
                                     : "glibc, freed memory kept for reuse"));
    EXPECT_EQ(lines[9].rfind("blas:                   ", 0), 0u) << lines[9];
#if TORCH_VERSION_MAJOR < 2
    // Debian's LibTorch calls the system's BLAS through the alternatives' libblas.so.3.
    EXPECT_CONTAINS(lines[9], "libblas.so.3");
#endif
  }
}

// The allocator lever (util/allocator_reuse.hpp) steps aside for a user's own malloc settings.
TEST(CliTest, VersionSaysWhetherMallocKeepsFreedMemory) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"MALLOC_TRIM_THRESHOLD_", "glibc, as tuned by the environment"},
      {"GLIBC_TUNABLES", "glibc, as tuned by the environment"},
      {"EXPRUN_KEEP_MALLOC_DEFAULTS", "glibc defaults (EXPRUN_KEEP_MALLOC_DEFAULTS)"}};
  for (const auto& [variable, expected] : cases) {
    test::ProcessOptions options;
    options.env[variable] =
        variable == "GLIBC_TUNABLES" ? "glibc.malloc.trim_threshold=1048576" : "1048576";
    const auto r = exprun({"version"}, options);
    expect_ok(r);
    EXPECT_NE(r.out.find("malloc:                 " + expected + "\n"), std::string::npos)
        << variable << ":\n"
        << r.out;
  }
}

TEST(CliTest, VersionLoadsNoPlugins) {
  test::ProcessOptions options;
  options.env["EXPRUN_PLUGIN_PATH"] = (kFixtureDir / "abi_mismatch").string();
  const auto r = exprun({"version"}, options);
  expect_ok(r);
  EXPECT_CONTAINS(r.out, "exprun ");
  // --plugins is shared by every command, before it or after it; version has none to load.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--plugins", "/tmp", "version"}, {"version", "--plugins", "/tmp"}}) {
    const auto with_plugins = exprun(args);
    expect_ok(with_plugins);
    EXPECT_EQ(with_plugins.out, r.out);
  }
}

TEST(CliTest, UnknownCommandIsAUsageError) {
  const auto r = exprun({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  expect_no_crash(r);
  const auto lines = test::split_lines(r.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "exprun: error: unknown command 'frobnicate'");
}

TEST(CliTest, UnknownOptionIsAUsageError) {
  const std::string message = expect_error(exprun({"plugins", "--frobnicate"}), 2);
  EXPECT_CONTAINS(message, "frobnicate");
  EXPECT_CONTAINS(message, "(see --help)");
}

// ---------------------------------------------------------------- plugins

TEST(CliTest, PluginsListsEveryKind) {
  const auto r = exprun({"plugins"});
  expect_ok(r);
  for (const char* header : {"datasets:", "models:", "losses:", "memory:"}) {
    EXPECT_NE(test::line_of(r.out, header), 0u) << header << "\n" << r.out;
  }
  for (const char* name :
       {"datasets/synthetic_ceph", "models/hrnet", "models/unet", "losses/adaptive_wing",
        "losses/mse", "losses/l1_coords", "memory/gradient_accumulation", "memory/mixed_precision"})
    EXPECT_CONTAINS(r.out, name);
  // Kinds in the documented order.
  EXPECT_LT(r.out.find("datasets:"), r.out.find("models:"));
  EXPECT_LT(r.out.find("models:"), r.out.find("losses:"));
  EXPECT_LT(r.out.find("losses:"), r.out.find("memory:"));
  // The summary follows the name on the same line.
  const auto lines = test::split_lines(r.out);
  const std::size_t awing = test::line_of(r.out, "losses/adaptive_wing");
  ASSERT_GT(awing, 0u);
  EXPECT_CONTAINS(lines[awing - 1], "adaptive wing loss");
  // Then the directories that were searched: the built-ins beside the executable.
  const std::size_t searched = test::line_of(r.out, "searched:");
  ASSERT_GT(searched, 0u) << r.out;
  EXPECT_CONTAINS(lines[searched - 1], "plugins");
  EXPECT_TRUE(fs::equivalent(kExe.parent_path() / "plugins", kPluginDir));
}

TEST(CliTest, PluginsOfOneKind) {
  for (const std::string kind : {"losses", "loss"}) {
    SCOPED_TRACE(kind);
    const auto r = exprun({"plugins", kind});
    expect_ok(r);
    EXPECT_CONTAINS(r.out, "losses:");
    EXPECT_CONTAINS(r.out, "losses/adaptive_wing");
    EXPECT_CONTAINS(r.out, "losses/mse");
    EXPECT_NOT_CONTAINS(r.out, "datasets");
    EXPECT_NOT_CONTAINS(r.out, "models/hrnet");
    EXPECT_NOT_CONTAINS(r.out, "memory/");
  }
  const auto models = exprun({"plugins", "model"});
  expect_ok(models);
  EXPECT_CONTAINS(models.out, "models/hrnet");
  EXPECT_NOT_CONTAINS(models.out, "losses/");
}

TEST(CliTest, PluginsOfAnUnknownKindIsAUsageError) {
  const std::string message = expect_error(exprun({"plugins", "optimizers"}), 2);
  EXPECT_CONTAINS(message, "optimizers");
  EXPECT_CONTAINS(message, "(see --help)");
}

TEST(CliTest, PluginsWithAnExtraDirectory) {
  // A --plugins directory with no libraries adds nothing but is searched.
  test::TempDir empty("exprun-cli");
  const auto r = exprun({"plugins", "--plugins", empty.path().string()});
  expect_ok(r);
  EXPECT_CONTAINS(r.out, "losses/mse");
  EXPECT_CONTAINS(r.out, empty.path().string());
}

TEST(CliTest, PluginsOptionBeforeTheCommand) {
  test::TempDir empty("exprun-cli");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--plugins", empty.path().string(), "plugins"},
           {"--plugins=" + empty.path().string(), "plugins", "losses"}}) {
    SCOPED_TRACE(args[0]);
    const auto r = exprun(args);
    expect_ok(r);
    EXPECT_CONTAINS(r.out, "losses/mse");
    EXPECT_CONTAINS(r.out, empty.path().string());
  }
  const auto described = exprun({"--plugins", empty.path().string(), "describe", "losses/mse"});
  expect_ok(described);
  EXPECT_CONTAINS(described.out, "losses/mse - ");
  // Before the command as after it: a missing directory is the same error.
  const std::string missing = "/nonexistent/exprun-cli-plugins";
  EXPECT_EQ(expect_error(exprun({"--plugins", missing, "plugins"}), 2),
            "plugin directory " + missing + " does not exist or is not a directory");
}

TEST(CliTest, PluginsOptionWithoutACommandIsAUsageError) {
  EXPECT_CONTAINS(expect_error(exprun({"--plugins", "/tmp"}), 2),
                  "--plugins DIR needs a command after it");
  EXPECT_CONTAINS(expect_error(exprun({"--plugins"}), 2), "--plugins needs a directory");
}

TEST(CliTest, MissingPluginsDirectoryIsAnError) {
  const std::string missing = "/nonexistent/exprun-cli-plugins";
  const std::string message = expect_error(exprun({"plugins", "--plugins", missing}), 2);
  EXPECT_EQ(message, "plugin directory " + missing + " does not exist or is not a directory");
}

TEST(CliTest, MissingDirectoryOnEnvironmentPathIsSkipped) {
  test::ProcessOptions options;
  options.env["EXPRUN_PLUGIN_PATH"] = "/nonexistent/exprun-cli-env-plugins";
  const auto r = exprun({"plugins"}, options);
  expect_ok(r);
  EXPECT_CONTAINS(r.out, "losses/mse");
}

// A library that cannot be loaded fails only what names it (issue 17.2): `plugins` lists it
// in a "could not load" section, describe and a plan that do not use it work, and an
// experiment that names it fails naming the library and the field of the ABI tag that differs.
TEST(CliTest, BrokenLibraryFailsOnlyWhatNamesIt) {
  test::ProcessOptions options;
  options.env["EXPRUN_PLUGIN_PATH"] = (kFixtureDir / "abi_mismatch").string();
  const auto listed = exprun({"plugins"}, options);
  expect_ok(listed);
  EXPECT_CONTAINS(listed.out, "losses/mse");
  const auto section = listed.out.find("could not load:\n");
  ASSERT_NE(section, std::string::npos) << listed.out;
  const std::string after = listed.out.substr(section);
  EXPECT_CONTAINS(after, "exprun-losses-abi_mismatch.so (losses/abi_mismatch)");
  EXPECT_CONTAINS(after, "SDK version differs: plugin 0.9, exprun " +
                             std::to_string(EXPRUN_SDK_VERSION_MAJOR) + "." +
                             std::to_string(EXPRUN_SDK_VERSION_MINOR));
  EXPECT_CONTAINS(after, "LibTorch version differs: plugin 0.0.0, exprun " TORCH_VERSION);
  EXPECT_CONTAINS(after, "compiler differs: plugin gcc-1.0");
  EXPECT_CONTAINS(after, std::string("exprun tag \"") + sdk::sdk_abi_tag() + "\"");

  expect_ok(exprun({"describe", "losses/mse"}, options));

  test::TempDir dir("exprun-cli-broken");
  test::TinyExperiment e;
  test::write_text(dir / "uses_mse.toml", e.toml());
  expect_ok(exprun({"plan", (dir / "uses_mse.toml").string()}, options));
  e.loss = "abi_mismatch";
  test::write_text(dir / "uses_broken.toml", e.toml());
  const std::string message =
      expect_error(exprun({"plan", (dir / "uses_broken.toml").string()}, options), 2);
  EXPECT_CONTAINS(message, "losses/abi_mismatch comes from a library that could not be loaded: ");
  EXPECT_CONTAINS(message, "exprun-losses-abi_mismatch.so was built for a different ABI");
  EXPECT_CONTAINS(message, "SDK version differs");
}

TEST(CliTest, LibraryWithoutExportsIsListedAsNotLoaded) {
  const auto r = exprun({"plugins", "--plugins", (kFixtureDir / "no_export").string()});
  expect_ok(r);
  const auto section = r.out.find("could not load:\n");
  ASSERT_NE(section, std::string::npos) << r.out;
  EXPECT_CONTAINS(r.out.substr(section), "exprun-losses-no_export.so is not an exprun plugin");
  EXPECT_CONTAINS(r.out.substr(section), "exprun_plugin_abi_tag");
}

TEST(CliTest, DuplicatePluginNameFailsWhatNamesIt) {
  const std::vector<std::string> dirs = {"--plugins", (kFixtureDir / "duplicate_mse").string()};
  const auto r = exprun({"plugins", dirs[0], dirs[1]});
  expect_ok(r);
  EXPECT_CONTAINS(r.out, "two plugins are named losses/mse: ");
  EXPECT_CONTAINS(r.out, "NOT USABLE: a library below would provide it too");
  // Which of the two was meant is not for exprun to guess.
  const std::string message = expect_error(exprun({"describe", "losses/mse", dirs[0], dirs[1]}), 2);
  EXPECT_CONTAINS(message, "two plugins are named losses/mse: ");
  EXPECT_CONTAINS(message, "exprun-losses-duplicate_mse.so");
  EXPECT_CONTAINS(message, "exprun-losses-mse.so");
}

// ---------------------------------------------------------------- describe

TEST(CliTest, DescribeAdaptiveWing) {
  const auto r = exprun({"describe", "losses/adaptive_wing"});
  expect_ok(r);
  const auto lines = test::split_lines(r.out);
  ASSERT_GE(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0].rfind("losses/adaptive_wing - adaptive wing loss", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("library: ", 0), 0u) << lines[1];
  EXPECT_CONTAINS(lines[1], "exprun-losses-adaptive_wing.so");
  EXPECT_NE(test::line_of(r.out, "parameters:"), 0u);

  // Each parameter: a line "name type = default", then its doc (and constraints).
  auto param_line = [&](const std::string& name) -> std::string {
    for (const auto& line : lines)
      if (line.rfind("  " + name + " ", 0) == 0) return line;
    ADD_FAILURE() << "no line for parameter " << name << "\n" << r.out;
    return "";
  };
  EXPECT_CONTAINS(param_line("alpha"), "number");
  EXPECT_CONTAINS(param_line("alpha"), "= 2.1");
  EXPECT_CONTAINS(param_line("omega"), "= 14");
  EXPECT_CONTAINS(param_line("epsilon"), "= 1");
  EXPECT_CONTAINS(param_line("theta"), "= 0.5");
  EXPECT_CONTAINS(r.out, "exponent offset");

  // Every parameter of the schema, with its type, default and doc, as the plugin declares it.
  Registry registry;
  registry.load_directories({kPluginDir}, 1);
  const auto& schema = registry.find("losses/adaptive_wing").schema;
  for (const char* name : {"alpha", "omega", "epsilon", "theta"})
    ASSERT_NE(schema.find(name), nullptr) << name;
  for (const auto& spec : schema.specs()) {
    SCOPED_TRACE(spec.name);
    const std::string line = param_line(spec.name);
    EXPECT_CONTAINS(line, sdk::type_name(spec.type));
    EXPECT_CONTAINS(line, spec.default_value ? "= " + sdk::to_string(*spec.default_value)
                                             : std::string("(required)"));
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
      if (lines[i] == line) {
        EXPECT_CONTAINS(lines[i + 1], spec.doc);
      }
    }
  }
}

TEST(CliTest, DescribeShowsConstraints) {
  const auto r = exprun({"describe", "memory/mixed_precision"});
  expect_ok(r);
  EXPECT_CONTAINS(r.out, "dtype");
  EXPECT_CONTAINS(r.out, "[one of \"auto\" \"bf16\" \"fp16\"]");
}

TEST(CliTest, DescribeSeparatesSeveralConstraintsWithCommas) {
  const auto r = exprun({"describe", "losses/adaptive_wing"});
  expect_ok(r);
  const std::size_t line = test::line_of(r.out, "  loss_map_threshold ");
  ASSERT_GT(line, 0u) << r.out;
  EXPECT_CONTAINS(test::split_lines(r.out)[line - 1], ", max ");
}

TEST(CliTest, DescribeKeepsRangesOutOfTheDocumentation) {
  const auto r = exprun({"describe", "losses/adaptive_wing"});
  expect_ok(r);
  const auto lines = test::split_lines(r.out);
  // The range in brackets on the parameter's line; its doc line ends with the doc itself.
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    if (lines[i].rfind("  theta ", 0) != 0) continue;
    EXPECT_CONTAINS(lines[i], "= 0.5");
    EXPECT_CONTAINS(lines[i], "[min 1e-12]");
    EXPECT_EQ(lines[i + 1].substr(lines[i + 1].find_first_not_of(' ')),
              "error at which the loss switches from log to linear");
    return;
  }
  ADD_FAILURE() << "no line for theta\n" << r.out;
}

TEST(CliTest, DescribeModelShowsParameterCountAndMultiplyAdds) {
  // HRNetV2-W18 as published: 98 heatmaps, colour input.
  const auto hrnet = exprun({"describe", "models/hrnet", "--landmarks", "98", "--channels", "3"});
  expect_ok(hrnet);
  EXPECT_CONTAINS(hrnet.out, "size with the defaults, 98 landmarks, 3 input channel(s), 256x256");
  // 4.29 G without the head (as the paper counts), 0.407 G in the head at 64x64.
  EXPECT_CONTAINS(hrnet.out,
                  "  9662528 parameters, 4.694 G multiply-adds per image, heatmaps at 1/4");
  const auto unet = exprun({"describe", "models/unet", "--input", "128x64"});
  expect_ok(unet);
  EXPECT_CONTAINS(unet.out, "19 landmarks, 1 input channel(s), 128x64 input");
  EXPECT_CONTAINS(unet.out, " parameters, ");
  EXPECT_CONTAINS(exprun({"describe", "models/unet", "--input", "big"}).err,
                  "expected WIDTHxHEIGHT");
}

TEST(CliTest, DescribeAcceptsSingularAndBareNames) {
  for (const std::string name : {"loss/adaptive_wing", "adaptive_wing"}) {
    SCOPED_TRACE(name);
    const auto r = exprun({"describe", name});
    expect_ok(r);
    EXPECT_EQ(r.out.rfind("losses/adaptive_wing - ", 0), 0u) << r.out;
  }
}

TEST(CliTest, DescribeUnknownPluginSuggests) {
  {
    const std::string message = expect_error(exprun({"describe", "models/hrnett"}), 1);
    EXPECT_CONTAINS(message, "no models plugin named \"hrnett\"; did you mean 'hrnet'?");
    EXPECT_CONTAINS(message, "available: hrnet");
  }
  {
    const std::string message = expect_error(exprun({"describe", "models/nope"}), 1);
    EXPECT_CONTAINS(message, "no models plugin named \"nope\"");
    EXPECT_CONTAINS(message, "(available: hrnet, unet; searched ");
  }
  {
    const std::string message = expect_error(exprun({"describe", "adaptive_wig"}), 1);
    EXPECT_EQ(message, "no plugin named \"adaptive_wig\"; did you mean 'losses/adaptive_wing'?");
  }
}

TEST(CliTest, DescribeUnknownKind) {
  const auto r = exprun({"describe", "optimizers/adam"});
  EXPECT_NE(r.exit_code, 0);
  const std::string message = expect_error(r, r.exit_code);
  EXPECT_EQ(message,
            "unknown plugin kind \"optimizers\" (expected datasets, models, losses or memory)");
}

TEST(CliTest, DescribeWithoutNameIsAUsageError) {
  const std::string message = expect_error(exprun({"describe"}), 2);
  EXPECT_CONTAINS(message, "(see --help)");
}

// ---------------------------------------------------------------- experiment files

class CliExperimentTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-cli"};
  fs::path file_ = dir_ / "tiny.toml";
  fs::path results_ = dir_ / "results";

  std::string write(const std::string& text) {
    test::write_text(file_, text);
    return text;
  }
  std::string write(const test::TinyExperiment& e) { return write(e.toml()); }
  test::TinyExperiment tiny() const {
    test::TinyExperiment e;
    e.output = results_;
    return e;
  }
  // "<file>:<line>:"
  std::string at_line(std::size_t line) const {
    return file_.string() + ":" + std::to_string(line) + ":";
  }
  // A config error: exit 2, one clean line, and nothing written.
  std::string config_error(const std::vector<std::string>& args) {
    const std::string message = expect_error(exprun(args), 2);
    EXPECT_FALSE(fs::exists(results_)) << "a config error must write nothing";
    return message;
  }
  // The same error from `plan` and from `run`: both must stop before anything is written.
  std::string config_error_both(std::vector<std::string> extra = {}) {
    std::vector<std::string> plan = {"plan", file_.string()};
    std::vector<std::string> run = {"run", file_.string()};
    plan.insert(plan.end(), extra.begin(), extra.end());
    run.insert(run.end(), extra.begin(), extra.end());
    const std::string from_plan = config_error(plan);
    const std::string from_run = config_error(run);
    EXPECT_EQ(from_plan, from_run);
    return from_plan;
  }
};

TEST_F(CliExperimentTest, PlanPrintsTheStage) {
  const std::string text = write(tiny());
  const auto r = exprun({"plan", file_.string()});
  expect_ok(r);
  const std::string& out = r.out;
  EXPECT_CONTAINS(
      out, "experiment tiny  (seed 3, 2 threads, results in " + results_.string() + "/tiny/)");
  EXPECT_CONTAINS(out, "stage train  (" + at_line(test::line_of(text, "[[stage]]")));
  EXPECT_CONTAINS(out, "device      cpu (asked: cpu)");
  EXPECT_CONTAINS(out, "epochs      2, 4 optimiser steps per epoch");
  EXPECT_CONTAINS(out, "data        synthetic_ceph { ");
  EXPECT_CONTAINS(out, "train_count = 16");
  EXPECT_CONTAINS(out, "splits train: 16 images, valid: 8 images; 29 landmarks");
  EXPECT_CONTAINS(out, "input 64x80, 1 channel(s), heatmaps 16x20, sigma 1.50, 1 workers");
  EXPECT_CONTAINS(out, "model       hrnet { ");
  EXPECT_CONTAINS(out, "width = 4");
  EXPECT_CONTAINS(out, " parameters, ");
  EXPECT_CONTAINS(out, "loss        mse { scale = 1");
  EXPECT_CONTAINS(out,
                  "memory      effective batch 4 = micro-batch 2 x 2 accumulation; "
                  "strategies: gradient_accumulation");
  EXPECT_CONTAINS(out, "optimizer   adam lr 0.002");
  EXPECT_CONTAINS(out, "plan OK: 1 stage(s)");
  EXPECT_FALSE(fs::exists(results_)) << "plan trains and writes nothing";
}

// "auto" on a CPU: the cores the step's 2 threads leave free on this machine, said by plan.
TEST_F(CliExperimentTest, PlanSaysWhatAutoWorkersResolveTo) {
  write(tiny());
  const auto r = exprun({"plan", file_.string(), "--set", "data.workers=auto"});
  expect_ok(r);
  const std::int64_t expected =
      auto_worker_count({/*on_accelerator=*/false, usable_cores(), /*compute_threads=*/2, 1});
  EXPECT_CONTAINS(r.out, "sigma 1.50, " + std::to_string(expected) + " workers (auto), ");
}

TEST_F(CliExperimentTest, SetOverridesShowInThePlan) {
  write(tiny());
  const auto r =
      exprun({"plan", file_.string(), "--set", "epochs=3", "--set", "data.train_count=12", "--set",
              "stages.train.optimizer.lr=0.005", "--set", "experiment.seed=11"});
  expect_ok(r);
  EXPECT_CONTAINS(r.out, "(seed 11, ");
  EXPECT_CONTAINS(r.out, "epochs      3, 3 optimiser steps per epoch");
  EXPECT_CONTAINS(r.out, "splits train: 12 images");
  EXPECT_CONTAINS(r.out, "optimizer   adam lr 0.005");
}

TEST_F(CliExperimentTest, StageOverrideBeatsBareOverride) {
  write(tiny());
  const auto r =
      exprun({"plan", file_.string(), "--set", "stages.train.epochs=5", "--set", "epochs=3"});
  expect_ok(r);
  EXPECT_CONTAINS(r.out, "epochs      5,");
}

TEST_F(CliExperimentTest, PlanHasNoOutputOption) {
  write(tiny());
  const std::string message = config_error({"plan", file_.string(), "--output", results_.string()});
  EXPECT_CONTAINS(message, "(see --help)");
}

TEST_F(CliExperimentTest, MissingFile) {
  const std::string missing = (dir_ / "nope.toml").string();
  const std::string message = config_error({"plan", missing});
  EXPECT_EQ(message, missing + ": cannot open the experiment file");
  EXPECT_EQ(config_error({"run", missing}), message);
  EXPECT_EQ(config_error({missing}), message) << "FILE.toml alone means run";
}

TEST_F(CliExperimentTest, MissingFileArgument) {
  EXPECT_CONTAINS(config_error({"plan"}), "(see --help)");
  EXPECT_CONTAINS(config_error({"run"}), "(see --help)");
}

TEST_F(CliExperimentTest, SyntaxError) {
  auto e = tiny();
  e.stage_extra = "sigma = = 2";
  const std::string text = write(e);
  const std::string message = config_error_both();
  EXPECT_EQ(message.rfind(at_line(test::line_of(text, "sigma = = 2")), 0), 0u) << message;
  EXPECT_CONTAINS(message, "TOML syntax error");
}

TEST_F(CliExperimentTest, WrongType) {
  auto e = tiny();
  e.epochs = 0;  // replaced below
  std::string text = e.toml();
  text.replace(text.find("epochs = 0"), 10, "epochs = \"ten\"");
  write(text);
  const std::string message = config_error_both();
  EXPECT_EQ(message, at_line(test::line_of(text, "epochs = \"ten\"")) +
                         "10: stages.train.epochs: expected an integer in [1, 1e+06], found "
                         "string \"ten\"");
}

TEST_F(CliExperimentTest, PluginParameterOfWrongType) {
  std::string text = tiny().toml();
  text.replace(text.find("width = 4"), 9, "width = 4.5");
  write(text);
  const std::string message = config_error_both();
  EXPECT_EQ(message.rfind(at_line(test::line_of(text, "width = 4.5")), 0), 0u) << message;
  EXPECT_CONTAINS(message, "stages.train.model.width: ");
  EXPECT_CONTAINS(message, "expected integer");
  EXPECT_CONTAINS(message, "4.5");
}

TEST_F(CliExperimentTest, NumberOutOfRange) {
  std::string text = tiny().toml();
  text.replace(text.find("sigma = 1.5"), 11, "sigma = 100");
  write(text);
  const std::string message = config_error_both();
  EXPECT_EQ(message, at_line(test::line_of(text, "sigma = 100")) +
                         "9: stages.train.data.sigma: expected a number in [0.1, 64], found "
                         "integer 100");
}

TEST_F(CliExperimentTest, UnknownStageKeySuggests) {
  auto e = tiny();
  e.stage_extra = "devcie = \"cpu\"";
  const std::string text = write(e);
  const std::string message = config_error_both();
  EXPECT_EQ(message.rfind(file_.string() + ":", 0), 0u) << message;
  EXPECT_CONTAINS(message,
                  "stages.train.devcie: unknown key 'devcie' in 'stages.train'; did you "
                  "mean 'device'?");
  (void)text;
}

TEST_F(CliExperimentTest, UnknownPluginParameterSuggests) {
  auto e = tiny();
  e.loss = "adaptive_wing";
  e.stage_extra = "loss.omgea = 3.0";
  const std::string text = write(e);
  const std::string message = config_error_both();
  EXPECT_EQ(message.rfind(file_.string() + ":", 0), 0u) << message;
  EXPECT_CONTAINS(message,
                  "stages.train.loss.omgea: unknown key 'omgea': losses/adaptive_wing "
                  "has no such parameter; did you mean 'omega'?");
  (void)text;
}

TEST_F(CliExperimentTest, UnknownTopLevelKey) {
  const std::string text = write(tiny().toml() + "\n[sweeps.grid]\nlr = [1e-3, 1e-4]\n");
  const std::string message = config_error_both();
  EXPECT_EQ(message.rfind(file_.string() + ":", 0), 0u) << message;
  EXPECT_CONTAINS(message, "unknown key 'sweeps'");
  EXPECT_CONTAINS(message, "did you mean 'sweep'?");
  (void)text;
}

TEST_F(CliExperimentTest, UnknownPluginSuggests) {
  auto e = tiny();
  e.loss = "adaptive_wingg";
  const std::string text = write(e);
  const std::string message = config_error_both();
  EXPECT_EQ(message.rfind(at_line(test::line_of(text, "plugin = \"adaptive_wingg\"")), 0), 0u)
      << message;
  EXPECT_CONTAINS(message,
                  "stages.train.loss.plugin: no losses plugin named \"adaptive_wingg\"; "
                  "did you mean 'adaptive_wing'? (available: adaptive_wing, l1_coords, mse; "
                  "searched ");
}

TEST_F(CliExperimentTest, UnknownMemoryStrategy) {
  auto e = tiny();
  e.strategies = {"gradient_acumulation"};
  const std::string text = write(e);
  const std::string message = config_error_both();
  EXPECT_EQ(message.rfind(at_line(test::line_of(text, "strategies = [")), 0), 0u) << message;
  EXPECT_CONTAINS(message, "memory.strategies");
  EXPECT_CONTAINS(message, "did you mean 'gradient_accumulation'?");
}

TEST_F(CliExperimentTest, MissingRequiredKey) {
  std::string text = tiny().toml();
  text.erase(text.find("epochs = 2\n"), 11);
  write(text);
  const std::string message = config_error_both();
  EXPECT_EQ(message, at_line(test::line_of(text, "[[stage]]")) +
                         "1: stages.train.epochs: missing required key (an integer in [1, 1e+06])");
}

TEST_F(CliExperimentTest, MissingRequiredLearningRate) {
  std::string text = tiny().toml();
  text.erase(text.find("lr = 2e-3\n"), 10);
  write(text);
  const std::string message = config_error_both();
  EXPECT_EQ(message.rfind(file_.string() + ":", 0), 0u) << message;
  EXPECT_CONTAINS(message, "stages.train.optimizer.lr: missing required key");
}

TEST_F(CliExperimentTest, BadSetValue) {
  write(tiny());
  const std::string message = config_error_both({"--set", "epochs=ten"});
  EXPECT_EQ(message,
            "--set epochs=ten: stages.train.epochs: expected an integer in [1, 1e+06], "
            "found string \"ten\"");
}

TEST_F(CliExperimentTest, SetWithoutValue) {
  write(tiny());
  const std::string message = config_error_both({"--set", "epochs"});
  EXPECT_EQ(message, "--set epochs: expected key.path=value, e.g. --set epochs=2");
}

TEST_F(CliExperimentTest, SetForUnknownStageSuggests) {
  write(tiny());
  const std::string message = config_error_both({"--set", "stages.trian.epochs=2"});
  EXPECT_EQ(message,
            "--set stages.trian.epochs=2: no stage is named \"trian\"; did you mean "
            "'train'?");
}

TEST_F(CliExperimentTest, SetWithBadKeyPath) {
  write(tiny());
  const std::string message = config_error_both({"--set", "a..b=1"});
  EXPECT_EQ(message.rfind("--set a..b=1: cannot read 'a..b' as a key path", 0), 0u) << message;
}

TEST_F(CliExperimentTest, SetOfUnknownKeySuggests) {
  write(tiny());
  const std::string message = config_error_both({"--set", "epohcs=2"});
  EXPECT_EQ(message.rfind("--set epohcs=2: ", 0), 0u) << message;
  EXPECT_CONTAINS(message, "did you mean 'epochs'?");
}

TEST_F(CliExperimentTest, BuildErrorInPlanExits2) {
  // A loss weight for a landmark the dataset lacks: found when the stage is built.
  auto e = tiny();
  e.stage_extra = "loss = { weights = { Zz = 2.0 } }\n";
  const std::string text = write(e);
  const std::string message = config_error({"plan", file_.string()});
  EXPECT_EQ(message.rfind(at_line(test::line_of(text, "weights = { Zz")), 0), 0u) << message;
  EXPECT_CONTAINS(message, "the dataset has no landmark 'Zz'");
}

TEST_F(CliExperimentTest, ImageSizeNotDivisibleByStrideInPlanExits2) {
  std::string text = tiny().toml();
  text.replace(text.find("image_size = [64, 80]"), 21, "image_size = [66, 80]");
  write(text);
  const std::string message = config_error({"plan", file_.string()});
  EXPECT_EQ(message.rfind(file_.string() + ":", 0), 0u) << message;
  EXPECT_CONTAINS(message, "stages.train.data.image_size");
}

TEST_F(CliExperimentTest, PluginConstructorErrorInPlanExits2) {
  auto e = tiny();
  e.loss = "adaptive_wing";
  // 1.0 passes the schema's min, but the constructor wants alpha > 1.
  e.stage_extra = "loss.alpha = 1.0";
  write(e);
  const std::string message = config_error({"plan", file_.string()});
  EXPECT_EQ(message.rfind(file_.string() + ":", 0), 0u) << message;
  EXPECT_CONTAINS(message, "stages.train.loss: losses/adaptive_wing: alpha must be greater than 1");
}

// The run folder cannot be made: the error names the option that chose the place, not only
// what std::filesystem says, and the file in the way is left as it was.
TEST_F(CliExperimentTest, ARunFolderThatCannotBeMadeNamesTheOption) {
  write(tiny());
  const fs::path in_the_way = dir_ / "a-file";
  test::write_text(in_the_way, "keep me\n");
  const auto output = exprun({"run", file_.string(), "--output", in_the_way.string()});
  expect_no_crash(output);
  EXPECT_EQ(output.exit_code, 1) << output.describe();
  EXPECT_CONTAINS(output.err, "experiment.output = \"" + in_the_way.string() +
                                  "\" (--output sets it): cannot create the run folder " +
                                  in_the_way.string());
  EXPECT_CONTAINS(output.err, "Not a directory");
  EXPECT_EQ(output.err.find("filesystem error"), std::string::npos);
  const auto run_dir = exprun({"run", file_.string(), "--run-dir", (in_the_way / "r").string()});
  expect_no_crash(run_dir);
  EXPECT_EQ(run_dir.exit_code, 1) << run_dir.describe();
  EXPECT_CONTAINS(run_dir.err,
                  "--run-dir " + (in_the_way / "r").string() + ": cannot create the run folder");
  EXPECT_EQ(test::read_text(in_the_way), "keep me\n");
}

// bench --json and tune --json replaced whatever they were given: a checkpoint, a run's
// report.json or the experiment file itself became measurements. Each is refused before
// anything is measured, and left as it was.
TEST_F(CliExperimentTest, MeasurementsNeverReplaceACheckpointARunsFileOrTheExperiment) {
  write(tiny());
  const fs::path run = dir_ / "run";
  test::write_text(run / "experiment.toml", "[experiment]\n");
  test::write_text(run / "report.json", "{}\n");
  const fs::path checkpoint = dir_ / "best.pt";
  test::write_text(checkpoint, std::string("EXPRUNCK") + std::string(40, '\0'));
  const std::vector<std::pair<fs::path, std::string>> victims = {
      {checkpoint, "is an exprun checkpoint"},
      {run / "report.json", "is a file of the run directory " + run.string()},
      {file_, "exists and is not a .json file"}};
  const std::vector<std::vector<std::string>> commands = {
      {"bench", file_.string(), "--plans", "4x1", "--variants", "none", "--steps", "1"},
      {"tune", file_.string(), "--budget", "1GiB"}};
  for (const auto& command : commands) {
    for (const auto& [victim, why] : victims) {
      const std::string before = test::read_text(victim);
      std::vector<std::string> args = command;
      args.insert(args.end(), {"--json", victim.string()});
      EXPECT_CONTAINS(expect_error(exprun(args), 2), "--json " + victim.string() + ": " + why);
      EXPECT_EQ(test::read_text(victim), before) << command[0] << " touched " << victim;
    }
  }
  fs::remove_all(run);  // not a report the suite's schema check should read
  // A folder is refused before measuring, as bench already did.
  EXPECT_CONTAINS(
      expect_error(
          exprun({"tune", file_.string(), "--budget", "1GiB", "--json", dir_.path().string()}), 2),
      "is a folder");
  // -1 was tune's mark for "not given": --margin -1 ran with the default margin.
  EXPECT_CONTAINS(
      expect_error(exprun({"tune", file_.string(), "--budget", "1GiB", "--margin=-1"}), 2),
      "--margin: expected a number between 0 and 0.9, found -1");
}

// `plan DIR` used to read the folder as an empty file: "missing required table [experiment]".
TEST_F(CliExperimentTest, AFolderIsNotAnExperimentFile) {
  const std::string message = config_error({"plan", dir_.path().string()});
  EXPECT_EQ(message, dir_.path().string() + ": is a folder; expected an experiment file (.toml)");
}

TEST_F(CliExperimentTest, BadOutputOptionValueIsAString) {
  // --output is an override; a path that reads as a TOML number still names a folder
  // (run_command quotes it), or fails with "expected a string" as docs/cli.md says. Either
  // way, never a crash.
  write(tiny());
  const auto r = exprun({"plan", file_.string(), "--set", "experiment.output=2024"});
  expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "experiment.output");
}

}  // namespace
}  // namespace exprun

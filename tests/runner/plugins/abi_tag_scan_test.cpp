// Reading a plugin's ABI tag from its file without loading it: the built-ins and the fixtures,
// and the byte patterns the scan must not take for a tag.
#include "plugins/abi_tag_scan.hpp"

#include <gtest/gtest.h>

#include <exprun/sdk/abi.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using Tags = std::vector<std::string>;

const fs::path kPluginDir = EXPRUN_PLUGIN_DIR;
const fs::path kFixtureDir = EXPRUN_TEST_PLUGIN_DIR;

TEST(AbiTagsInFile, EachBuiltInPluginHoldsExactlyTheRunnersTag) {
  std::size_t plugins = 0;
  for (const auto& entry : fs::directory_iterator(kPluginDir)) {
    if (entry.path().extension() != ".so") continue;
    ++plugins;
    EXPECT_EQ(abi_tags_in_file(entry.path()), Tags{sdk::sdk_abi_tag()}) << entry.path();
  }
  EXPECT_GE(plugins, 10u);
}

TEST(AbiTagsInFile, TheMismatchedFixtureHoldsItsOwnTagAndTheExportlessOneNone) {
  EXPECT_EQ(abi_tags_in_file(kFixtureDir / "abi_mismatch" / "exprun-losses-abi_mismatch.so"),
            Tags{"exprun-sdk-0.9;torch-0.0.0;gcc-1.0;cxx11abi-1"});
  EXPECT_EQ(abi_tags_in_file(kFixtureDir / "no_export" / "exprun-losses-no_export.so"), Tags{});
}

TEST(AbiTagsInFile, OnlyWholeNulTerminatedTagsInOrderAndOnce) {
  test::TempDir dir;
  const std::string a = "exprun-sdk-1.5;torch-2.5.1;gcc-12.2;cxx11abi-1";
  const std::string b = "exprun-sdk-1.5;torch-1.13.0;gcc-12.2;cxx11abi-0";
  std::string bytes = std::string(
                          "\x7f"
                          "ELF\0\0",
                          6) +
                      a + '\0' + "junk" + '\0' + b + '\0' + a + '\0' +
                      // Not tags: a prefix alone, too few fields, a field without its prefix,
                      // an empty last field, text that runs on into a non-printable byte.
                      "exprun-sdk-" + '\0' + "exprun-sdk-1.5;torch-1;gcc" + '\0' +
                      "exprun-sdk-1.5;pytorch-1;gcc-12.2;cxx11abi-1" + '\0' +
                      "exprun-sdk-1.5;torch-1;gcc-12.2;cxx11abi-" + '\0' + a + '\x01' + '\0';
  // A tag cut off by the end of the file has no terminating NUL.
  bytes += "exprun-sdk-1.5;torch-3.0.0;gcc-12.2;cxx11abi-1";
  test::write_text(dir / "lib.so", bytes);
  EXPECT_EQ(abi_tags_in_file(dir / "lib.so"), (Tags{a, b}));
}

TEST(AbiTagsInFile, AnUnreadableFileIsAnError) {
  test::TempDir dir;
  EXPECT_THROW(abi_tags_in_file(dir / "missing.so"), std::runtime_error);
}

}  // namespace
}  // namespace exprun

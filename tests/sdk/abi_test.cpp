// The ABI tag's format and the mismatch explanation: each differing field named, with the
// advice for that field (docs/writing-a-plugin.md, "The ABI tag").
#include <gtest/gtest.h>

#include <exprun/sdk/abi.hpp>

#include <string>

#include "test_support.hpp"

namespace exprun::sdk {
namespace {

const std::string kOurs = "exprun-sdk-1.5;torch-1.13.0;gcc-12.2;cxx11abi-1";

TEST(AbiTag, HasTheFourDocumentedFields) {
  const std::string tag = sdk_abi_tag();
  EXPECT_EQ(tag, EXPRUN_SDK_ABI_TAG);
  EXPECT_EQ(tag, std::string("exprun-sdk-") + std::to_string(EXPRUN_SDK_VERSION_MAJOR) + "." +
                     std::to_string(EXPRUN_SDK_VERSION_MINOR) + ";torch-" + TORCH_VERSION + ";" +
                     EXPRUN_COMPILER_TAG + ";" + EXPRUN_CXX11_ABI_TAG);
  // Any standard header defines the flag, so even a compile without LibTorch's flags gets a
  // value (libstdc++'s default), never "na".
  EXPECT_EQ(std::string(EXPRUN_CXX11_ABI_TAG).rfind("cxx11abi-na"), std::string::npos);
}

TEST(AbiMismatch, EqualTagsExplainNothing) { EXPECT_EQ(explain_abi_mismatch(kOurs, kOurs), ""); }

TEST(AbiMismatch, SdkVersion) {
  const std::string why =
      explain_abi_mismatch("exprun-sdk-1.3;torch-1.13.0;gcc-12.2;cxx11abi-1", kOurs);
  EXPECT_CONTAINS(why, "SDK version differs: plugin 1.3, exprun 1.5: rebuild the plugin against");
  EXPECT_EQ(why.find("compiler differs"), std::string::npos) << why;
  EXPECT_CONTAINS(why, "(plugin tag \"exprun-sdk-1.3;");
}

TEST(AbiMismatch, LibTorchVersion) {
  const std::string why =
      explain_abi_mismatch("exprun-sdk-1.5;torch-2.1.0;gcc-12.2;cxx11abi-1", kOurs);
  EXPECT_CONTAINS(why,
                  "LibTorch version differs: plugin 2.1.0, exprun 1.13.0: build the plugin "
                  "with the LibTorch exprun uses");
  EXPECT_EQ(why.find("SDK version differs"), std::string::npos) << why;
}

TEST(AbiMismatch, Compiler) {
  const std::string why =
      explain_abi_mismatch("exprun-sdk-1.5;torch-1.13.0;clang-14.0;cxx11abi-1", kOurs);
  EXPECT_CONTAINS(why,
                  "compiler differs: plugin clang-14.0, exprun gcc-12.2: configure the "
                  "plugin with the compiler exprun was built with");
  EXPECT_EQ(why.find("rebuild the plugin against"), std::string::npos)
      << "rebuilding against the SDK does not fix a compiler: " << why;
}

TEST(AbiMismatch, StringAbi) {
  const std::string why =
      explain_abi_mismatch("exprun-sdk-1.5;torch-1.13.0;gcc-12.2;cxx11abi-0", kOurs);
  EXPECT_CONTAINS(why,
                  "libstdc++ string ABI differs: plugin 0, exprun 1: compile with exprun's "
                  "-D_GLIBCXX_USE_CXX11_ABI value");
  EXPECT_EQ(why.find("rebuild the plugin against"), std::string::npos) << why;
}

TEST(AbiMismatch, SeveralFieldsAreAllNamed) {
  const std::string why =
      explain_abi_mismatch("exprun-sdk-1.5;torch-2.1.0;clang-14.0;cxx11abi-1", kOurs);
  EXPECT_CONTAINS(why, "LibTorch version differs");
  EXPECT_CONTAINS(why, "; compiler differs");
}

TEST(AbiMismatch, TagOfAnotherFormat) {
  const std::string why = explain_abi_mismatch("something-else", kOurs);
  EXPECT_CONTAINS(why, "not in this exprun's format");
  EXPECT_CONTAINS(why, "(plugin tag \"something-else\", exprun tag \"" + kOurs + "\")");
}

}  // namespace
}  // namespace exprun::sdk

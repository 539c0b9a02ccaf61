// The ABI tag a plugin is compiled with and the runner compares against its own.
// Plugins exchange C++ objects (torch tensors, std::string, vtables) with the runner, so the
// SDK version, the LibTorch version and the compiler must all agree, not just the SDK version.
#pragma once

// The version and the tag are this header's alone: a -D on the command line would otherwise
// be overridden here without a word, or would label a plugin with a version it is not.
#if defined(EXPRUN_SDK_VERSION_MAJOR) || defined(EXPRUN_SDK_VERSION_MINOR)
#error "EXPRUN_SDK_VERSION_MAJOR/MINOR are set by <exprun/sdk/abi.hpp>; do not define them"
#endif
#if defined(EXPRUN_SDK_ABI_TAG)
#error "EXPRUN_SDK_ABI_TAG is set by <exprun/sdk/abi.hpp>; do not define it"
#endif

#include <torch/version.h>

// Any standard header defines _GLIBCXX_USE_CXX11_ABI (libstdc++'s c++config.h), which the tag
// below records; without one it would read as undefined.
#include <cstddef>
#include <string>

#define EXPRUN_SDK_VERSION_MAJOR 1
#define EXPRUN_SDK_VERSION_MINOR 5

#define EXPRUN_STRINGIFY_IMPL(x) #x
#define EXPRUN_STRINGIFY(x) EXPRUN_STRINGIFY_IMPL(x)

#if defined(__clang__)
#define EXPRUN_COMPILER_TAG \
  "clang-" EXPRUN_STRINGIFY(__clang_major__) "." EXPRUN_STRINGIFY(__clang_minor__)
#elif defined(__GNUC__)
#define EXPRUN_COMPILER_TAG "gcc-" EXPRUN_STRINGIFY(__GNUC__) "." EXPRUN_STRINGIFY(__GNUC_MINOR__)
#else
#define EXPRUN_COMPILER_TAG "unknown-compiler"
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define EXPRUN_CXX11_ABI_TAG "cxx11abi-" EXPRUN_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#else
#define EXPRUN_CXX11_ABI_TAG "cxx11abi-na"
#endif

#define EXPRUN_SDK_ABI_TAG                                                       \
  "exprun-sdk-" EXPRUN_STRINGIFY(EXPRUN_SDK_VERSION_MAJOR) "." EXPRUN_STRINGIFY( \
      EXPRUN_SDK_VERSION_MINOR) ";torch-" TORCH_VERSION ";" EXPRUN_COMPILER_TAG  \
                                ";" EXPRUN_CXX11_ABI_TAG

namespace exprun::sdk {

// The tag the SDK library itself was compiled with (the runner's tag).
const char* sdk_abi_tag();

// Why a plugin's tag differs from the runner's, field by field (SDK version, LibTorch,
// compiler, libstdc++ string ABI), each with the fix that fits that field. "" when the tags
// are equal.
std::string explain_abi_mismatch(const std::string& plugin_tag, const std::string& runner_tag);

}  // namespace exprun::sdk

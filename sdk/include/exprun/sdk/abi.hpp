// The ABI tag a plugin is compiled with and the runner compares against its own.
// Plugins exchange C++ objects (torch tensors, std::string, vtables) with the runner, so the
// SDK version, the LibTorch version and the compiler must all agree, not just the SDK version.
#pragma once

#include <torch/version.h>

// Any standard header defines _GLIBCXX_USE_CXX11_ABI (libstdc++'s c++config.h), which the tag
// below records; without one it would read as undefined.
#include <cstddef>

#define EXPRUN_SDK_VERSION_MAJOR 1
#define EXPRUN_SDK_VERSION_MINOR 3

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

// A test builds one plugin with a different tag to exercise the mismatch error; nothing else
// should define this.
#ifndef EXPRUN_SDK_ABI_TAG
#define EXPRUN_SDK_ABI_TAG                                                       \
  "exprun-sdk-" EXPRUN_STRINGIFY(EXPRUN_SDK_VERSION_MAJOR) "." EXPRUN_STRINGIFY( \
      EXPRUN_SDK_VERSION_MINOR) ";torch-" TORCH_VERSION ";" EXPRUN_COMPILER_TAG  \
                                ";" EXPRUN_CXX11_ABI_TAG
#endif

namespace exprun::sdk {

// The tag the SDK library itself was compiled with (the runner's tag).
const char* sdk_abi_tag();

}  // namespace exprun::sdk

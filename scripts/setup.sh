#!/usr/bin/env bash
# Installs the Debian packages exprun needs when they are missing, then configures and builds
# it in build/ (or $EXPRUN_BUILD_DIR). Safe to run again: it only installs what is missing and
# the build is incremental.
#
#   scripts/setup.sh                        # CPU LibTorch from Debian
#   EXPRUN_CCACHE=0 scripts/setup.sh        # without ccache (used when installed)
#   EXPRUN_CMAKE_ARGS="-DCMAKE_PREFIX_PATH=/path/to/libtorch" scripts/setup.sh   # CUDA LibTorch
set -euo pipefail

cd "$(dirname "$0")/.."
build_dir="${EXPRUN_BUILD_DIR:-build}"

packages=(
  cmake ninja-build g++ pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU)
  libtomlplusplus-dev     # experiment files
  libboost-dev            # Boost.DLL (header-only) for plugin loading
  libboost-program-options-dev
  libopencv-dev           # images and augmentation
  nlohmann-json3-dev      # reports
  libgtest-dev            # tests
  python3-jsonschema      # tests: reports checked against docs/report.schema.json
  clang                   # tests: the fuzz targets (docs/fuzzing.md)
  libclang-rt-14-dev      # tests: clang's libFuzzer, ASan and UBSan runtimes
  llvm                    # tests: llvm-symbolizer, for file:line in sanitizer stacks
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install packages" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi

# ccache, when it is installed, makes a build after `rm -rf build`, a switch of branch or of
# LibTorch flavour cheap. The precompiled torch header needs its pch sloppiness, or every torch
# file would miss the cache. EXPRUN_CCACHE=0 turns it off.
launcher=()
if [[ ${EXPRUN_CCACHE:-1} != 0 ]] && command -v ccache >/dev/null; then
  launcher=("-DCMAKE_CXX_COMPILER_LAUNCHER=env;CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime;ccache")
fi

# shellcheck disable=SC2086  # EXPRUN_CMAKE_ARGS is a list of arguments on purpose
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" ${EXPRUN_CMAKE_ARGS:-}
cmake --build "$build_dir" -j "$(nproc)"
echo "setup: built $build_dir/exprun"

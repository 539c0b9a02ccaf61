#!/usr/bin/env bash
# Installs the Debian packages exprun needs when they are missing, then configures and builds
# it. Safe to run again: it only installs and fetches what is missing and the build is
# incremental. Two LibTorch flavours (docs/libtorch.md):
#
#   scripts/setup.sh                        # Debian's LibTorch 1.13 (CPU), in build/
#   EXPRUN_TORCH=wheel scripts/setup.sh     # LibTorch 2.x with CUDA from the torch wheel,
#                                           # in build-wheel/ (needs the CUDA toolkit)
#   EXPRUN_TORCH=wheel EXPRUN_TORCH_VERSION=2.12.0 scripts/setup.sh   # another wheel
#   EXPRUN_TORCH=/path/to/libtorch scripts/setup.sh   # any unpacked LibTorch, in build-custom/
#   EXPRUN_BUILD_DIR=dir                    # another build folder
#   EXPRUN_CCACHE=0 scripts/setup.sh        # without ccache (used when installed)
#   EXPRUN_CMAKE_ARGS="..."                 # more CMake arguments
set -euo pipefail

cd "$(dirname "$0")/.."
flavour="${EXPRUN_TORCH:-debian}"
case "$flavour" in
  debian) default_build=build ;;
  wheel) default_build=build-wheel ;;
  /*) default_build=build-custom ;;
  *)
    echo "setup: EXPRUN_TORCH=$flavour: expected debian, wheel or an absolute path to a LibTorch" >&2
    exit 2
    ;;
esac
build_dir="${EXPRUN_BUILD_DIR:-$default_build}"

packages=(
  cmake ninja-build g++ pkg-config
  libtomlplusplus-dev     # experiment files
  libboost-dev            # Boost.DLL (header-only) for plugin loading
  libboost-program-options-dev
  libopencv-dev           # images and augmentation
  nlohmann-json3-dev      # reports
  libxxhash-dev           # the decoded-film cache's hashes (header-only)
  libgloo-dev             # data-parallel training: LibTorch's Gloo header includes Gloo's
  slurm-wlm munge         # tests: a single-node Slurm cluster (docs/distributed.md)
  libgtest-dev            # tests
  python3-jsonschema      # tests: reports checked against docs/report.schema.json
  python3-torch           # bench --training: the PyTorch reference (benchmarks/python)
  clang                   # tests: the fuzz targets (docs/fuzzing.md)
  libclang-rt-14-dev      # tests: clang's libFuzzer, ASan and UBSan runtimes
  llvm                    # tests: llvm-symbolizer, for file:line in sanitizer stacks
)

# Debian's LibTorch only for its own flavour: the wheel brings its own.
if [[ $flavour == debian ]]; then
  packages+=(libtorch-dev)  # LibTorch 1.13 (CPU)
  # Its BLAS: without one, libblas.so.3 is the reference implementation, on which LibTorch runs
  # small 1 x 1 convolutions at threads = 1 3-4x slower (docs/benchmarks.md#the-blas). The
  # OpenMP build follows LibTorch's thread count; the pthread build that Debian recommends
  # keeps a pool of its own, which exprun sets to the same count when it is the one chosen.
  packages+=(libopenblas0-openmp)
else
  packages+=(python3-pip unzip)  # the wheel flavour fetches and unpacks wheels
fi

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

torch_args=()
case "$flavour" in
  wheel)
    torch_root="$(scripts/fetch-torch-wheel.sh)"
    extra_libs="$(find "$torch_root/nvidia" -type d -name lib 2>/dev/null | sort | paste -sd ';')"
    # The fuzz campaign runs in the Debian flavour (cmake/fuzz.cmake says why); the replay
    # tests run here too. EXPRUN_CMAKE_ARGS=-DEXPRUN_FUZZ_CAMPAIGN=ON brings it back.
    torch_args=("-DCMAKE_PREFIX_PATH=$torch_root/torch/share/cmake"
      "-DEXPRUN_TORCH_EXTRA_LIB_DIR=$extra_libs" "-DEXPRUN_FUZZ_CAMPAIGN=OFF")
    ;;
  /*)
    torch_args=("-DCMAKE_PREFIX_PATH=$flavour/share/cmake")
    ;;
esac

# shellcheck disable=SC2086  # EXPRUN_CMAKE_ARGS is a list of arguments on purpose
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  "${torch_args[@]}" ${EXPRUN_CMAKE_ARGS:-}
cmake --build "$build_dir" -j "$(nproc)"
echo "setup: built $build_dir/exprun"

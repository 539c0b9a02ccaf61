#!/usr/bin/env bash
# Fetches the LibTorch inside PyTorch's `torch` wheel (headers, shared libraries, CMake config)
# and the few CUDA runtime libraries it needs that the CUDA toolkit does not carry, unpacked
# into .deps/torch-<version>/ (ignored by git, reused when complete). Prints that folder.
# The extra libraries go where a pip install puts them, nvidia/<package>/lib/ beside torch/:
# libtorch_cuda.so's own run path ($ORIGIN/../../nvidia/...) finds them there.
#
#   EXPRUN_TORCH_VERSION   the torch wheel's version (default below; see docs/libtorch.md)
#   CUDA_HOME              the CUDA toolkit (default: nvcc's, else /usr/local/cuda)
#
# The wheel is the only LibTorch 2.x with CUDA a package registry serves; its libtorch_cuda.so
# links against CUDA libraries that normally come as further wheels. The toolkit has most of
# them; the rest are found with ldd after unpacking and fetched by name, so a new torch version
# needs no change here unless it needs a library this script has no source for.
set -euo pipefail

cd "$(dirname "$0")/.."
version="${EXPRUN_TORCH_VERSION:-2.11.0}"
deps="$PWD/.deps"
root="$deps/torch-$version"
wheels="$deps/wheels"

say() { echo "fetch-torch-wheel: $*" >&2; }
die() { say "$*"; exit 1; }

if [[ -z ${CUDA_HOME:-} ]]; then
  if command -v nvcc >/dev/null; then
    CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
  else
    CUDA_HOME=/usr/local/cuda
  fi
fi
[[ -x $CUDA_HOME/bin/nvcc ]] ||
  die "the wheel flavour needs the CUDA toolkit (nvcc, cuDNN, NCCL); none at $CUDA_HOME (set CUDA_HOME)"
cuda_libs="$CUDA_HOME/lib64"

if [[ -f $root/.complete ]]; then
  echo "$root"
  exit 0
fi

# One wheel by exact name, whatever Python runs this script: LibTorch is the same in every
# Python build of a release.
pip_download() {
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux1_x86_64 "$@" >&2 ||
    die "pip download $* failed"
}
wheel_file() { compgen -G "$wheels/$1-*.whl" | head -1 || true; }
wheel_metadata() { unzip -p "$1" '*.dist-info/METADATA'; }

mkdir -p "$wheels"
rm -rf "$root.partial"
mkdir -p "$root.partial"

torch_wheel="$(compgen -G "$wheels/torch-$version-*.whl" | head -1 || true)"
if [[ -z $torch_wheel ]]; then
  say "downloading torch==$version (about 0.5 GB)"
  pip_download "torch==$version"
  torch_wheel="$(compgen -G "$wheels/torch-$version-*.whl" | head -1 || true)"
  [[ -n $torch_wheel ]] || die "pip saved no torch-$version wheel in $wheels"
fi
say "unpacking $(basename "$torch_wheel")"
unzip -q -o "$torch_wheel" 'torch/lib/*' 'torch/include/*' 'torch/share/*' 'torch/version.py' \
  -d "$root.partial"

wheel_cuda="$(sed -n "s/^cuda: .* = '\(.*\)'$/\1/p" "$root.partial/torch/version.py")"
[[ -n $wheel_cuda ]] || die "torch==$version is a CPU-only wheel; the wheel flavour is for CUDA"
toolkit_cuda="$("$CUDA_HOME/bin/nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
if [[ ${wheel_cuda%%.*} != "${toolkit_cuda%%.*}" ]]; then
  die "torch==$version is built for CUDA $wheel_cuda but the toolkit at $CUDA_HOME is CUDA $toolkit_cuda; use a wheel for CUDA ${toolkit_cuda%%.*} (EXPRUN_TORCH_VERSION) or that toolkit"
fi

# The libraries torch's own need that neither torch/lib nor the toolkit provides. libcuda.so.1
# is the driver's, on GPU machines only; libcaffe2_nvrtc.so, the one library that needs it,
# is opened by torch when a GPU is used, never linked.
unresolved() {
  LD_LIBRARY_PATH="$cuda_libs" \
    ldd "$root.partial"/torch/lib/*.so* 2>/dev/null | sed -n 's/^\s*\(\S*\) => not found$/\1/p' |
    grep -v '^libcuda\.so\.1$' | sort -u || true
}

# Where each library comes from, and how its version is pinned: torch's own requirements name
# most; libcufile belongs to the cuda-toolkit meta-package torch requires.
package_for() {
  case "$1" in
    libcusparseLt.so.*) echo "nvidia-cusparselt-cu${wheel_cuda%%.*}" ;;
    libnvshmem_host.so.*) echo "nvidia-nvshmem-cu${wheel_cuda%%.*}" ;;
    libcufile.so.*) echo "nvidia-cufile" ;;
    libcudnn*.so.*) echo "nvidia-cudnn-cu${wheel_cuda%%.*}" ;;
    libnccl.so.*) echo "nvidia-nccl-cu${wheel_cuda%%.*}" ;;
    *) return 1 ;;
  esac
}
requirement_for() {
  local package="$1" pin
  pin="$(wheel_metadata "$torch_wheel" | sed -n "s/^Requires-Dist: $package\(==[^;]*\).*/\1/p" | head -1)"
  if [[ -z $pin ]]; then
    local toolkit_version toolkit_wheel
    toolkit_version="$(wheel_metadata "$torch_wheel" |
      sed -n 's/^Requires-Dist: cuda-toolkit\[[^]]*\]==\([^;]*\).*/\1/p' | head -1)"
    toolkit_version="${toolkit_version// /}"
    if [[ -n $toolkit_version ]]; then
      toolkit_wheel="$(wheel_file "cuda_toolkit-$toolkit_version")"
      if [[ -z $toolkit_wheel ]]; then
        pip_download "cuda-toolkit==$toolkit_version"
        toolkit_wheel="$(wheel_file "cuda_toolkit-$toolkit_version")"
      fi
      pin="$(wheel_metadata "$toolkit_wheel" |
        sed -n "s/^Requires-Dist: $package\(==[^;]*\).*/\1/p" | head -1)"
    fi
  fi
  [[ -n $pin ]] || die "torch==$version names no version of $package"
  echo "$package${pin// /}"
}

for lib in $(unresolved); do
  package="$(package_for "$lib")" ||
    die "libtorch needs $lib, which neither the toolkit at $CUDA_HOME nor this script provides"
  requirement="$(requirement_for "$package")"
  file_prefix="${package//-/_}-${requirement#*==}"
  file_prefix="${file_prefix%.\*}"
  if ! compgen -G "$wheels/$file_prefix*.whl" >/dev/null; then
    say "$lib is not in the toolkit: downloading $requirement"
    pip_download "$requirement"
  fi
  wheel="$(compgen -G "$wheels/$file_prefix*.whl" | head -1)"
  member="$(unzip -Z1 "$wheel" | grep -E "^nvidia/.*/lib/$lib\$" | head -1)" ||
    die "$(basename "$wheel") has no nvidia/*/lib/$lib"
  unzip -q -o "$wheel" "$member" -d "$root.partial"
done

left="$(unresolved)"
[[ -z $left ]] || die "still unresolved after fetching: $left"

touch "$root.partial/.complete"
rm -rf "$root"
mv "$root.partial" "$root"
say "LibTorch $version (CUDA $wheel_cuda) in $root"
echo "$root"

#!/usr/bin/env bash
# Builds the fuzz targets with clang and libFuzzer (tests/fuzz/CMakeLists.txt) and fuzzes each
# for a bounded time: the `fuzz` CTest test. Exits 77 (reported as skipped) when clang or its
# libFuzzer runtime is missing, 1 when the build fails or a target finds something.
#
#   tests/fuzz/run_fuzzers.sh [--build-dir DIR] [--seconds N] [--seeds DIR] [--cmake-args 'A;B']
#                             [TARGET...]
#
# Each target starts from its corpus, its kept crash inputs and --seeds DIR/<target> (default
# build/fuzz_seeds, where the main build writes a real checkpoint), all copied to
# DIR/run/<target>/corpus, so that the repository's corpus is never changed. What a target finds
# is written to DIR/run/<target>/ (crash-*, timeout-*, oom-*); docs/fuzzing.md says how to keep it.
set -euo pipefail

fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$fuzz_dir/../.." && pwd)"
build_dir="$root/build-fuzz"
seconds=12
seeds="$root/build/fuzz_seeds"  # the main build writes a real checkpoint there
cmake_args=""
targets=()
while (($#)); do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --cmake-args) cmake_args="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "run_fuzzers: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

cxx="${FUZZ_CXX:-clang++}"
skip() {
  echo "fuzz: SKIPPED: $1 (scripts/setup.sh installs clang and libclang-rt-14-dev)"
  exit 77
}
command -v "$cxx" >/dev/null || skip "$cxx not found"
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
  'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$probe/p.cpp"
"$cxx" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>"$probe/err" ||
  skip "$cxx cannot link a libFuzzer target: $(head -c 300 "$probe/err")"

configure=(cmake -S "$fuzz_dir" -B "$build_dir" -DCMAKE_CXX_COMPILER="$cxx")
if command -v ninja >/dev/null && [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  configure+=(-G Ninja)
fi
IFS=';' read -r -a extra <<<"$cmake_args"
for arg in "${extra[@]}"; do
  # An empty -DX= from the main build (no CMAKE_PREFIX_PATH set) would clear the search path.
  if [[ -n "$arg" && "$arg" != *= ]]; then configure+=("$arg"); fi
done
start=$SECONDS
mkdir -p "$build_dir"
"${configure[@]}" >"$build_dir/configure.log" 2>&1 || {
  cat "$build_dir/configure.log"
  echo "fuzz: FAILED to configure the clang build"
  exit 1
}
cmake --build "$build_dir" || { echo "fuzz: FAILED to build the fuzz targets"; exit 1; }
echo "fuzz: clang build ready in $((SECONDS - start)) s"

if ((${#targets[@]} == 0)); then
  for src in "$fuzz_dir"/*_fuzz.cpp; do
    name="$(basename "$src" _fuzz.cpp)"
    targets+=("$name")
  done
fi

# LibTorch and OpenCV keep global objects (operator registries, thread pools) alive to the end
# of the process on purpose; LeakSanitizer would report them after every input.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for name in "${targets[@]}"; do
  work="$build_dir/run/$name"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  for dir in "$fuzz_dir/corpus/$name" "$fuzz_dir/regressions/$name" "${seeds:+$seeds/$name}"; do
    if [[ -n "$dir" && -d "$dir" ]]; then cp -r "$dir/." "$work/corpus/"; fi
  done
  # -max_len: the kept deep-nesting inputs would otherwise make every mutation 100 KB long.
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -detect_leaks=0 -max_len=32768
    -artifact_prefix="$work/" -print_final_stats=1)
  if [[ -f "$fuzz_dir/dict/$name.dict" ]]; then options+=(-dict="$fuzz_dir/dict/$name.dict"); fi
  echo "fuzz: $name for $seconds s"
  if ! "$build_dir/${name}_fuzz" "${options[@]}" "$work/corpus" >"$work/log" 2>&1; then
    tail -n 60 "$work/log"
    echo "fuzz: $name FOUND something: $(ls "$work" | grep -E '^(crash|timeout|oom|leak)-' | sed "s|^|$work/|" | tr '\n' ' ')"
    failed+=("$name")
  else
    grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$work/log" | tail -n 2 || true
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (keep an input as a regression: docs/fuzzing.md)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no finding"

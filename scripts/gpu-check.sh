#!/usr/bin/env bash
# The GPU check (docs/gpu-check.md): on a machine with an NVIDIA GPU and a PyTorch with CUDA,
# builds exprun against that PyTorch's LibTorch, runs the test suite with the CUDA tests, and
# benchmarks the seed workload (HRNet-W32, 768x768, batch 6, fp16) next to the same model in
# PyTorch. Writes gpu-check.json and gpu-check.md into RESULT_DIR.
#
#   scripts/gpu-check.sh [RESULT_DIR]    # default: $OUT when set, else results/gpu-check
#   --smoke                              # a rehearsal without a GPU: builds exprun, the plugins
#                                        # and the CUDA tests only, runs those tests (they skip)
#                                        # but not the rest (CI runs it in the Debian flavour), and
#                                        # benchmarks tiny sizes on CPU
#
# What it needs besides PyTorch comes from .deps/gpu-carry/ (scripts/pack-gpu-deps.sh), so the
# machine needs no package registry. Environment:
#   EXPRUN_PYTHON      the Python whose torch to build against (default python3)
#   EXPRUN_GPU_JOBS    build and test parallelism (default: every core)
#   EXPRUN_GPU_ROUNDS  benchmark rounds, exprun and PyTorch interleaved (default 2)
set -uo pipefail

cd "$(dirname "$0")/.."
repo="$PWD"
smoke=0
positional=()
for a in "$@"; do
  case "$a" in
    --smoke) smoke=1 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) positional+=("$a") ;;
  esac
done
out="${positional[0]:-${OUT:-results/gpu-check}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
python="${EXPRUN_PYTHON:-python3}"
jobs="${EXPRUN_GPU_JOBS:-$(nproc)}"
rounds="${EXPRUN_GPU_ROUNDS:-2}"
build="$repo/build-gpu"
carry_root="${TMPDIR:-/tmp}/exprun-gpu-carry"
log="$out/gpu-check.log"
: >"$log"
started=$(date +%s)

say() { echo "gpu-check: $*" | tee -a "$log" >&2; }
step() { say "[$(($(date +%s) - started)) s] $*"; }
# Runs a command with its output in the log and the terminal; returns its status.
logged() { "$@" 2>&1 | tee -a "$log"; return "${PIPESTATUS[0]}"; }

# ------------------------------------------------------------------ PyTorch and the GPU
step "PyTorch"
read -r torch_cmake torch_version torch_cuda torch_site gpu_name <<<"$("$python" - <<'EOF'
import os, torch
name = torch.cuda.get_device_name(0).replace(' ', '_') if torch.cuda.is_available() else 'none'
print(torch.utils.cmake_prefix_path, torch.__version__, torch.version.cuda or 'none',
      os.path.dirname(os.path.dirname(torch.__file__)), name)
EOF
)" || { say "cannot import torch with $python"; exit 1; }
say "torch $torch_version (CUDA $torch_cuda) in $torch_site; GPU: $gpu_name"
if [[ $gpu_name == none && $smoke == 0 ]]; then
  say "no GPU visible to PyTorch: run with --smoke to rehearse the rest"
  exit 1
fi

# ------------------------------------------------------------------ carried dependencies
step "unpacking .deps/gpu-carry into $carry_root"
[[ -f .deps/gpu-carry/MANIFEST.txt ]] ||
  { say ".deps/gpu-carry is missing: run scripts/pack-gpu-deps.sh where a registry is reachable"; exit 1; }
rm -rf "$carry_root" && mkdir -p "$carry_root/opencv"
for deb in .deps/gpu-carry/debs/*.deb; do
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$deb" "$carry_root"
  else  # a .deb is an ar archive holding data.tar.*
    (cd "$carry_root" && ar p "$repo/$deb" "$(ar t "$repo/$deb" | grep '^data\.tar')" | tar -x -J -f - 2>/dev/null ||
      ar p "$repo/$deb" "$(ar t "$repo/$deb" | grep '^data\.tar')" | tar -x -f -)
  fi
done
tar -xJf .deps/gpu-carry/opencv-*.tar.xz -C "$carry_root/opencv"
multiarch="$carry_root/usr/lib/x86_64-linux-gnu"
opencv_lib="$(dirname "$(find "$carry_root/opencv" -name 'libopencv_core.so*' | head -1)")"
export LD_LIBRARY_PATH="$multiarch:$opencv_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# The CUDA libraries PyTorch's wheels bring (cuDNN, cuSPARSELt, NCCL, ...) live in
# site-packages/nvidia/*/lib; the linker needs to see them next to libtorch_cuda.so.
extra_libs="$(find "$torch_site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | paste -sd ';')"
arch_list="9.0"
if command -v nvidia-smi >/dev/null; then
  cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)"
  [[ -n $cap ]] && arch_list="$cap"
fi

# ------------------------------------------------------------------ build
step "configuring and building exprun in $build ($jobs jobs)"
logged cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_PREFIX_PATH=$torch_cmake;$carry_root/usr;$carry_root/opencv" \
  "-DEXPRUN_TORCH_EXTRA_LIB_DIR=$extra_libs" "-DTORCH_CUDA_ARCH_LIST=$arch_list" \
  -DCMAKE_BUILD_RPATH="$multiarch;$opencv_lib" >/dev/null || { say "configure failed"; exit 1; }
build_start=$(date +%s)
targets=()
if ((smoke)); then  # 2 cores build the whole suite in half an hour; the rehearsal needs this
  targets=(--target exprun)
  for f in tests/cuda/*_test.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
if ! logged cmake --build "$build" -j "$jobs" ${targets[@]+"${targets[@]}"} >/dev/null; then
  grep -A20 'FAILED' "$log" | head -60 >&2
  say "build failed"
  exit 1
fi
build_s=$(($(date +%s) - build_start))
logged "$build/exprun" version
cuda_line="$("$build/exprun" version | sed -n 's/^cuda: *//p')"
linked="$(ldd "$build/exprun" | grep -Eo 'lib(torch_cuda|c10_cuda|cudart|cudnn)[^ ]*' | sort -u | paste -sd ' ')"
say "linked: $linked"

# ------------------------------------------------------------------ tests
step "CUDA tests"
ctest --test-dir "$build" -L cuda --output-on-failure --timeout 300 \
  --output-junit "$out/ctest-cuda.xml" 2>&1 | tee -a "$log" >"$out/ctest-cuda.txt"
cuda_rc=${PIPESTATUS[0]}
# The fuzz campaign is a CPU property test that CI runs in the Debian flavour; here it would take
# minutes of the ten this check has.
if ((smoke)); then
  step "the rest of the suite: not built in a rehearsal"
  echo "not run: a --smoke rehearsal builds only the CUDA tests" >"$out/ctest-rest.txt"
  rest_rc=0
else
  step "the rest of the suite (ctest -LE 'cuda|fuzz')"
  ctest --test-dir "$build" -LE 'cuda|fuzz' -j "$jobs" --timeout 600 \
    --output-junit "$out/ctest-rest.xml" 2>&1 | tee -a "$log" >"$out/ctest-rest.txt"
  rest_rc=${PIPESTATUS[0]}
fi
summary_of() { grep -E 'tests passed|tests failed|^not run' "$1" | tail -1; }
# ctest lists each skipped test once more at the end, as "  N - Name (Skipped)".
skipped_of() { grep -cE '^[[:space:]]+[0-9]+ - .*\(Skipped\)$' "$1" || true; }
say "cuda: $(summary_of "$out/ctest-cuda.txt") ($(skipped_of "$out/ctest-cuda.txt") skipped)"
say "rest: $(summary_of "$out/ctest-rest.txt")"

# ------------------------------------------------------------------ benchmark
step "benchmark: exprun and PyTorch, $rounds rounds interleaved"
bench_toml=benchmarks/gpu/hrnet_w32_768.toml
width=32 size=768 batch=6 steps=10 warmup=3 precision=fp16 device=cuda
bench_sets=()
if ((smoke)); then
  width=8 size=64 batch=2 steps=2 warmup=1 device=cpu precision=bf16
  bench_sets=(--set model.width=8 --set 'model.num_modules=[1,1,1]' --set model.num_blocks=1
    --set model.stem_blocks=1 --set 'data.image_size=[64,64]' --set memory.effective_batch=2
    --set data.workers=2 --set device=cpu)
fi
for round in $(seq 1 "$rounds"); do
  logged "$build/exprun" bench "$bench_toml" --plans "${batch}x1" --variants mixed_precision \
    --warmup "$warmup" --steps "$steps" --json "$out/exprun-bench-$round.json" \
    ${bench_sets[@]+"${bench_sets[@]}"} || say "exprun bench round $round failed"
  logged "$python" benchmarks/python/train_reference.py --width "$width" --size "$size" \
    --batch "$batch" --steps "$steps" --warmup "$warmup" --device "$device" \
    --precision "$precision" --json "$out/pytorch-bench-$round.json" ||
    say "PyTorch reference round $round failed"
done
step "benchmark: the runner's epochs against the bare loop and PyTorch (bench --training)"
logged "$build/exprun" bench "$bench_toml" --training --rounds "$rounds" --python "$python" \
  --json "$out/exprun-bench-training.json" ${bench_sets[@]+"${bench_sets[@]}"} ||
  say "exprun bench --training failed"

# ------------------------------------------------------------------ results
step "writing $out/gpu-check.json and gpu-check.md"
"$python" - "$out" "$rounds" <<EOF
import glob, json, os, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(pattern):
    rows = []
    for f in sorted(glob.glob(os.path.join(out, pattern))):
        try:
            rows.append(json.load(open(f)))
        except Exception as e:
            print(f"gpu-check: {f}: {e}", file=sys.stderr)
    return rows
ex = [c for r in load('exprun-bench-*.json') for c in r.get('cases', []) if c.get('ok')]
py = load('pytorch-bench-*.json')
def summary(name):
    # ctest's "N% tests passed, ..." line and the tests it skipped or that failed.
    lines = open(os.path.join(out, name)).read().splitlines()
    said = [l.strip() for l in lines if 'tests passed' in l or 'tests failed' in l or l.startswith('not run')]
    listed = [l.strip() for l in lines if re.match(r'\s+\d+ - .*\((Skipped|Failed|Not Run|Timeout)\)$', l)]
    return said[-1:] + listed
def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
e_ips, p_ips = median([c['images_per_second'] for c in ex]), median([r.get('images_per_s') for r in py])
e_peak, p_peak = median([c['peak_bytes'] for c in ex]), median([r.get('peak_memory_bytes') for r in py])
result = {
    'torch_version': "$torch_version", 'torch_cuda': "$torch_cuda", 'gpu': "$gpu_name",
    'smoke': bool($smoke), 'exprun_cuda': "$cuda_line", 'linked': "$linked",
    'build_seconds': $build_s, 'ctest_cuda_exit': $cuda_rc, 'ctest_rest_exit': $rest_rc,
    'ctest_cuda': summary('ctest-cuda.txt'),
    'ctest_rest': summary('ctest-rest.txt'),
    'benchmark': {
        'workload': {'model': 'hrnet', 'width': $width, 'input': $size, 'batch': $batch,
                     'precision': "$precision", 'device': "$device",
                     'timed_steps': $steps, 'warmup_steps': $warmup, 'rounds': rounds},
        'exprun_images_per_s': e_ips, 'pytorch_images_per_s': p_ips,
        'exprun_over_pytorch': (e_ips / p_ips) if e_ips and p_ips else None,
        'exprun_peak_bytes': e_peak, 'pytorch_peak_bytes': p_peak,
        'exprun_rounds': [c['images_per_second'] for c in ex],
        'pytorch_rounds': [r.get('images_per_s') for r in py],
    },
    # exprun bench --training: runner, bare loop and PyTorch medians and ratios (null: failed).
    'training': (load('exprun-bench-training.json') or [None])[0],
}
json.dump(result, open(os.path.join(out, 'gpu-check.json'), 'w'), indent=2)
b = result['benchmark']
fmt = lambda v, f: ('n/a' if v is None else f.format(v))
mib = lambda v: fmt(v and v / 2**20, '{:.0f} MiB')
md = [f"# GPU check: {result['gpu']}, torch {result['torch_version']} (CUDA {result['torch_cuda']})", '',
      f"- exprun built in {result['build_seconds']} s; cuda: {result['exprun_cuda']}; linked: {result['linked']}",
      f"- CUDA tests (exit {result['ctest_cuda_exit']}): {'; '.join(result['ctest_cuda'])}",
      f"- rest of the suite (exit {result['ctest_rest_exit']}): {'; '.join(result['ctest_rest'])}", '',
      f"| HRNet-W{$width}, {$size}x{$size}, batch {$batch}, {b['workload']['precision']} | images/s (median of {rounds}) | peak memory |",
      '|---|---|---|',
      f"| exprun | {fmt(b['exprun_images_per_s'], '{:.2f}')} | {mib(b['exprun_peak_bytes'])} |",
      f"| PyTorch (benchmarks/python/train_reference.py) | {fmt(b['pytorch_images_per_s'], '{:.2f}')} | {mib(b['pytorch_peak_bytes'])} |",
      '', f"exprun / PyTorch: {fmt(b['exprun_over_pytorch'], '{:.2f}x')}"]
open(os.path.join(out, 'gpu-check.md'), 'w').write('\n'.join(md) + '\n')
print('\n'.join(md))
EOF
# ------------------------------------------------------------------ data pipeline
# Last, so that the figures above are written even when the machine's time runs out here: the
# data pipeline at 768x768 from release-size films, decoding and from the warm film cache, for
# several worker counts, next to what the GPU's model step consumes (docs/benchmarks.md).
if ((smoke)); then
  step "data pipeline: not measured in a rehearsal"
else
  step "data pipeline at 768x768 from release-size films"
  films="${TMPDIR:-/tmp}/exprun-gpu-films"
  rm -rf "$films"
  logged "$build/exprun" synth --format aariz --out "$films/aariz" --count 48 --size release &&
    EXPRUN_CACHE_DIR="$films/cache" logged "$build/exprun" bench experiments/aariz_hrnet.toml \
      --data --workers 0,2,4,8 --images 48 --rounds 2 --warmup 2 --steps 5 \
      --set "data.root=$films/aariz" --set device=cuda --json "$out/data-bench.json" |
      tee "$out/data-bench.txt" || say "the data pipeline benchmark failed"
  if [[ -s "$out/data-bench.txt" ]]; then
    { echo; echo '## Data pipeline (exprun bench --data)'; echo; echo '```';
      cat "$out/data-bench.txt"; echo '```'; } >>"$out/gpu-check.md"
  fi
  rm -rf "$films"
fi

step "done"
[[ $cuda_rc == 0 && $rest_rc == 0 ]]

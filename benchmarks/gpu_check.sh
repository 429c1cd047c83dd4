#!/usr/bin/env bash
# gpugrad on one NVIDIA GPU in one dependable shot: every problem reported in
# one run, the whole script under 6 minutes on an H200 (no network, no pip
# install: the repository runs in place with PYTHONPATH).
#
#   bash benchmarks/gpu_check.sh                   # results in benchmarks/out/gpu_check/
#   OUT=/results bash benchmarks/gpu_check.sh
#   GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh   # CPU only: proves this script's machinery
#                                                      # (chunks, limits, verdicts, files); nothing about a GPU
#
# Steps, each under a time limit clipped to what is left of the total budget:
#   kernels    every CUDA kernel against its NumPy twin (tests/test_kernels.py -k cuda;
#              a CUDA test that skips on a GPU machine counts as a failure)
#   suite-N    the whole suite on CUDA, in chunks of test files; each chunk's limit
#              ends it with SIGINT first (pytest then prints its summary), KILL later
#   bandwidth  benchmarks/kernel_bandwidth.py: each kernel against a device-to-device
#              copy, gelu backward against its composition of plain CuPy ops
#   train      benchmarks/gpu_train_step.py: one MLP step against PyTorch (time, peak memory)
#   graph      benchmarks/gpu_graph_step.py: small-MLP and MNIST-1D MLP steps, eager vs captured
#              (gg.cuda.graph) vs PyTorch eager vs PyTorch with CUDA graphs
#   mnist1d    benchmarks/gpu_train_step.py --job mnist1d: the main job's MLP against
#              PyTorch on the same card (time, test accuracy, peak memory)
# Verdicts: PASS, FAIL (tests failed), MISS (a target missed), CRASH (a process
# died: signal, segfault, a crashed xdist worker), TIMEOUT, ERROR (a script
# raised), SKIPPED.  No -x: every failure is reported.
#
# Results, at most 8 files in $OUT: summary.json, summary.md and one log per step
# kind (kernels.log, suite.log, bandwidth.log, train.log, graph.log, mnist1d.log).
set -u -o pipefail

# ---------------------------------------------------------------------------
# How the suite runs on CUDA: the one place to change it.  (No -q: pyproject's
# addopts already has one, and -qq would drop pytest's final counts line.)
# ---------------------------------------------------------------------------
# GPUGRAD_TEST_DEVICES selects the CUDA half of the device-parametrised tests
# (tests/README.md); GPUGRAD_DEVICE=cuda as well proves that tests without a
# device stay pinned to the CPU.
SUITE_ENV=(GPUGRAD_TEST_DEVICES=cuda GPUGRAD_DEVICE=cuda)
SUITE_PYTEST=(-m pytest -p no:cacheprovider -rfE -n 8)

cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python3}
OUT=${OUT:-benchmarks/out/gpu_check}
DRY_RUN=${GPU_CHECK_DRY_RUN:-0}
BUDGET=${GPU_CHECK_BUDGET:-345}          # seconds for everything, summary included
CHUNKS=${GPU_CHECK_CHUNKS:-4}
LIMIT_KERNELS=${LIMIT_KERNELS:-60}
LIMIT_CHUNK=${LIMIT_CHUNK:-45}
LIMIT_BANDWIDTH=${LIMIT_BANDWIDTH:-45}
LIMIT_TRAIN=${LIMIT_TRAIN:-30}
LIMIT_GRAPH=${LIMIT_GRAPH:-30}
LIMIT_MNIST1D=${LIMIT_MNIST1D:-45}
GRACE=${GPU_CHECK_GRACE:-10}             # seconds between SIGINT and KILL
STEPS=${GPU_CHECK_STEPS:-kernels suite bandwidth train graph mnist1d}
# The suite's test files (default: every tests/test_*.py and gpugrad's doctests).
SUITE_FILES=${GPU_CHECK_SUITE_FILES:-}

KERNEL_ENV=(GPUGRAD_TEST_DEVICES=cuda GPUGRAD_DEVICE=cuda)
BANDWIDTH_ARGS=()
TRAIN_ARGS=()
GRAPH_ARGS=()
MNIST1D_ARGS=(--job mnist1d)
if [ "$DRY_RUN" = 1 ]; then
    SUITE_ENV=(GPUGRAD_TEST_DEVICES=cpu)
    KERNEL_ENV=(GPUGRAD_TEST_DEVICES=cpu)
    SUITE_PYTEST=(-m pytest -p no:cacheprovider -rfE)   # no workers on a shared CI machine
    BANDWIDTH_ARGS=(--device cpu --log2n 12 --rounds 1 --repeat 1 --no-torch)
    TRAIN_ARGS=(--device cpu --smoke)
    GRAPH_ARGS=(--device cpu --smoke)
    MNIST1D_ARGS=(--job mnist1d --device cpu --smoke)
    SUITE_FILES=${SUITE_FILES:-tests/test_install.py}
fi

STARTED=$(date +%s)
mkdir -p "$OUT" || exit 2
# Only this script's files go in $OUT; stale ones from an earlier run go first.
rm -f "$OUT"/summary.json "$OUT"/summary.md "$OUT"/kernels.log "$OUT"/suite.log "$OUT"/bandwidth.log \
    "$OUT"/train.log "$OUT"/graph.log "$OUT"/mnist1d.log
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || exit 2
trap 'rm -rf "$SCRATCH"' EXIT
STEPS_TSV="$SCRATCH/steps.tsv"
: > "$STEPS_TSV"

wants() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# Seconds a step may take: its own limit, clipped so the budget (less 15 s
# for the summary and the grace period) is never exceeded.
limit_for() {
    local wanted=$1 left
    left=$((BUDGET - ($(date +%s) - STARTED) - 15 - GRACE))
    if [ "$left" -lt "$wanted" ]; then wanted=$left; fi
    echo "$wanted"
}

# run_step NAME KIND LIMIT LOG COMMAND...: under `timeout -s INT` (KILL after
# GRACE), output appended to LOG; records name, kind, exit, seconds, limit, log.
run_step() {
    local name=$1 kind=$2 limit=$3 log=$4
    shift 4
    local start status
    if [ "$limit" -lt 5 ]; then
        printf '%s\t%s\tbudget\t0\t%s\t%s\n' "$name" "$kind" "$limit" "$log" >> "$STEPS_TSV"
        echo "=== gpu_check $name: no time left in the ${BUDGET}s budget" | tee -a "$log"
        return 0
    fi
    echo
    echo "=== gpu_check $name (limit ${limit}s): $*" | tee -a "$log"
    start=$(date +%s)
    timeout -s INT -k "$GRACE" "$limit" "$@" >> "$log" 2>&1 < /dev/null
    status=$?
    tail -n 25 "$log"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$status" "$(($(date +%s) - start))" "$limit" "$log" \
        >> "$STEPS_TSV"
    return 0
}

# ---------------------------------------------------------------------------
# Preflight: without a usable GPU every later step would only skip.
# ---------------------------------------------------------------------------
if [ "$DRY_RUN" != 1 ]; then
    if ! timeout -s INT -k 5 60 "$PYTHON" - > "$SCRATCH/preflight.txt" 2>&1 <<'EOF'
import sys
from gpugrad import backend
if not backend.cuda_is_available():
    sys.exit("gpu_check: CUDA is not available to gpugrad (CuPy missing, no driver or no GPU)")
cp = backend.cupy_module()
props = cp.cuda.runtime.getDeviceProperties(0)
name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
print(f"device: {name}, sm_{props['major']}{props['minor']}, {props['multiProcessorCount']} SMs, "
      f"driver {cp.cuda.runtime.driverGetVersion()}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, "
      f"CuPy {cp.__version__}, Python {sys.version.split()[0]}")
try:
    import torch
    print(f"torch: {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
except ImportError:
    print("torch: not installed (its comparisons are skipped)")
EOF
    then
        cat "$SCRATCH/preflight.txt"
        printf 'preflight\tpreflight\t2\t0\t60\t-\n' >> "$STEPS_TSV"
        STEPS=""
    fi
else
    echo "dry run on the CPU: proves the machinery, nothing about a GPU" > "$SCRATCH/preflight.txt"
fi
cat "$SCRATCH/preflight.txt"

# ---------------------------------------------------------------------------
# The steps.
# ---------------------------------------------------------------------------
# Kernels first: they compile the RawModule once (cached on disk by CuPy) for the suite.
if wants kernels; then
    run_step kernels kernels "$(limit_for "$LIMIT_KERNELS")" "$OUT/kernels.log" \
        env "${KERNEL_ENV[@]}" "$PYTHON" -m pytest -p no:cacheprovider -rfEs tests/test_kernels.py \
        -k "cuda_matches_twin or cuda_dropout or cuda_subnormal"
fi

if wants suite; then
    if [ -z "$SUITE_FILES" ]; then
        # Not tests/test_gpu_check.py: it runs this script (on the CPU) and would recurse.
        SUITE_FILES="$(ls tests/test_*.py | grep -v '/test_gpu_check\.py$') gpugrad"
    fi
    # Chunks of about equal size (largest files first, each to the lightest chunk).
    # shellcheck disable=SC2086
    mapfile -t CHUNK_LINES < <("$PYTHON" - "$CHUNKS" $SUITE_FILES <<'EOF'
import os, sys
chunks = max(1, int(sys.argv[1]))
files = sys.argv[2:]
def size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs if f.endswith(".py"))
    return os.path.getsize(path) if os.path.exists(path) else 0
groups = [[0, []] for _ in range(min(chunks, len(files)))]
for path in sorted(files, key=size, reverse=True):
    lightest = min(groups, key=lambda g: g[0])
    lightest[0] += size(path)
    lightest[1].append(path)
for _, paths in groups:
    print(" ".join(sorted(paths)))
EOF
)
    index=0
    for line in "${CHUNK_LINES[@]}"; do
        index=$((index + 1))
        # shellcheck disable=SC2086
        run_step "suite-$index" suite "$(limit_for "$LIMIT_CHUNK")" "$OUT/suite.log" \
            env "${SUITE_ENV[@]}" "$PYTHON" "${SUITE_PYTEST[@]}" $line
    done
fi

if wants bandwidth; then
    run_step bandwidth bench "$(limit_for "$LIMIT_BANDWIDTH")" "$OUT/bandwidth.log" \
        "$PYTHON" benchmarks/kernel_bandwidth.py --out "$SCRATCH" "${BANDWIDTH_ARGS[@]}"
fi

TORCH_OK=1
if [ "$DRY_RUN" != 1 ] && ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
        >/dev/null 2>&1; then
    TORCH_OK=0
fi
for step in train graph mnist1d; do
    wants "$step" || continue
    if [ "$TORCH_OK" = 0 ]; then
        printf '%s\tbench\tskipped\t0\t0\t-\n' "$step" >> "$STEPS_TSV"
        continue
    fi
    if [ "$step" = train ]; then
        run_step train bench "$(limit_for "$LIMIT_TRAIN")" "$OUT/train.log" \
            "$PYTHON" benchmarks/gpu_train_step.py --out "$SCRATCH" "${TRAIN_ARGS[@]}"
    elif [ "$step" = graph ]; then
        run_step graph bench "$(limit_for "$LIMIT_GRAPH")" "$OUT/graph.log" \
            "$PYTHON" benchmarks/gpu_graph_step.py --out "$SCRATCH" "${GRAPH_ARGS[@]}"
    else
        run_step mnist1d bench "$(limit_for "$LIMIT_MNIST1D")" "$OUT/mnist1d.log" \
            "$PYTHON" benchmarks/gpu_train_step.py --out "$SCRATCH" "${MNIST1D_ARGS[@]}"
    fi
done

# ---------------------------------------------------------------------------
# One table (printed and summary.md), summary.json, targets against results.
# ---------------------------------------------------------------------------
"$PYTHON" benchmarks/gpu_check_summary.py "$STEPS_TSV" "$SCRATCH" "$OUT" "$DRY_RUN" "$BUDGET" \
    "$(($(date +%s) - STARTED))"

#!/usr/bin/env bash
# GPU verification of gpugrad in one script, under 6 minutes on one NVIDIA GPU
# with CuPy installed (PyTorch optional: its columns and the training step are
# skipped without it).
#
#   bash benchmarks/gpu_check.sh            # from anywhere; results in benchmarks/out/gpu_check/
#   OUT=/results bash benchmarks/gpu_check.sh
#   SUITE_WORKERS=4 bash benchmarks/gpu_check.sh   # the suite over 4 processes (pytest-xdist)
#   GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh   # CPU only: exercises this script's
#                                       # machinery (kernel tests, CPU dry runs); proves nothing about a GPU
#
# Steps, each under its own time limit so one hang cannot eat the others' time:
#   kernels    every CUDA kernel against its NumPy twin (tests/test_kernels.py;
#              a CUDA test that skips here counts as a failure)
#   suite      the whole test suite on the CUDA device (GPUGRAD_DEVICE=cuda, -x)
#   bandwidth  benchmarks/kernel_bandwidth.py: 2**26 float32, fraction of copy bandwidth
#   train      benchmarks/gpu_train_step.py: one MLP step against PyTorch
# It ends with one table (also written as gpu_check.json) and exits non-zero
# when any step failed or missed a target.
set -u -o pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/gpu_check}
PYTHON=${PYTHON:-python}
LIMIT_KERNELS=${LIMIT_KERNELS:-75}
LIMIT_SUITE=${LIMIT_SUITE:-165}
LIMIT_BANDWIDTH=${LIMIT_BANDWIDTH:-60}
LIMIT_TRAIN=${LIMIT_TRAIN:-45}
DRY_RUN=${GPU_CHECK_DRY_RUN:-0}
if [ "$DRY_RUN" = 1 ]; then
    DEVICE_ENV=GPUGRAD_DEVICE=cpu
    SUITE=tests/test_kernels.py
    BANDWIDTH_ARGS=(--device cpu --log2n 12 --rounds 1 --repeat 1)
    TRAIN_ARGS=(--device cpu --smoke)
else
    DEVICE_ENV=GPUGRAD_DEVICE=cuda
    SUITE=tests
    BANDWIDTH_ARGS=()
    TRAIN_ARGS=()
fi
mkdir -p "$OUT"
SUMMARY="$OUT/steps.tsv"
: > "$SUMMARY"

# Preflight: without a usable GPU every later step would only skip.
if [ "$DRY_RUN" != 1 ] && ! "$PYTHON" - <<'EOF'
import sys
from gpugrad import backend
if not backend.cuda_is_available():
    sys.exit("gpu_check: CUDA is not available to gpugrad (CuPy missing, no driver or no GPU)")
cp = backend.cupy_module()
props = cp.cuda.runtime.getDeviceProperties(0)
name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
print(f"gpu_check: {name}, sm_{props['major']}{props['minor']}, {props['multiProcessorCount']} SMs, "
      f"CuPy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}")
try:
    import torch
    print(f"gpu_check: PyTorch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
except ImportError:
    print("gpu_check: PyTorch not installed (its comparisons are skipped)")
EOF
then
    exit 2
fi

# run_step NAME LIMIT LOG COMMAND...: runs under `timeout`, records status and seconds.
run_step() {
    local name=$1 limit=$2 log=$3
    shift 3
    local start end status
    echo
    echo "=== $name (limit ${limit}s): $*"
    start=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    end=$(date +%s)
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((end - start))" "$log" >> "$SUMMARY"
    return 0
}

# Kernels first: they compile the RawModule once (cached on disk by CuPy) for the suite.
run_step kernels "$LIMIT_KERNELS" "$OUT/kernels.log" \
    env "$DEVICE_ENV" "$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/test_kernels.py \
    -k "cuda_matches_twin or cuda_dropout or cuda_source_compiles or nvrtc"
if [ "$DRY_RUN" != 1 ] && grep -q 'CUDA not available' "$OUT/kernels.log"; then
    # A CUDA kernel test that skips on a GPU machine has verified nothing.
    printf 'kernels-not-skipped\t1\t0\t%s\n' "$OUT/kernels.log" >> "$SUMMARY"
fi

# SUITE_WORKERS=N (needs pytest-xdist) splits the suite over N processes sharing
# the GPU, if the first CuPy compilations of every op make it too slow for its limit.
WORKERS=()
if [ -n "${SUITE_WORKERS:-}" ]; then WORKERS=(-n "$SUITE_WORKERS"); fi
run_step suite "$LIMIT_SUITE" "$OUT/suite.log" \
    env "$DEVICE_ENV" "$PYTHON" -m pytest -x -q -p no:cacheprovider "${WORKERS[@]}" "$SUITE"

run_step bandwidth "$LIMIT_BANDWIDTH" "$OUT/bandwidth.log" \
    "$PYTHON" benchmarks/kernel_bandwidth.py --out "$OUT" "${BANDWIDTH_ARGS[@]}"

if "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() or '$DRY_RUN' == '1' else 1)" \
        2>/dev/null; then
    run_step train "$LIMIT_TRAIN" "$OUT/train.log" \
        "$PYTHON" benchmarks/gpu_train_step.py --out "$OUT" "${TRAIN_ARGS[@]}"
else
    printf 'train\tskipped\t0\t-\n' >> "$SUMMARY"
fi

# One table, and the same as JSON.
"$PYTHON" - "$SUMMARY" "$OUT" <<'EOF'
import json, os, sys
summary, out = sys.argv[1], sys.argv[2]
meaning = {"0": "PASS", "1": "FAIL", "124": "TIMEOUT", "137": "TIMEOUT", "skipped": "SKIPPED",
           "2": "FAIL (setup)", "5": "FAIL (no tests collected)"}
rows = []
for line in open(summary, encoding="utf-8"):
    name, status, seconds, log = line.rstrip("\n").split("\t")
    verdict = meaning.get(status, f"FAIL (exit {status})")
    if name == "bandwidth" and status == "1":
        verdict = "MISS (targets)"
    if name == "kernels-not-skipped":
        verdict = "FAIL (CUDA tests skipped)"
    rows.append({"step": name, "exit": status, "seconds": int(seconds), "verdict": verdict, "log": log})
details = {}
for name in ("kernel_bandwidth", "gpu_train_step"):
    path = os.path.join(out, f"{name}.json")
    if os.path.exists(path):
        details[name] = json.load(open(path, encoding="utf-8"))
bandwidth = details.get("kernel_bandwidth")
if bandwidth:
    missed = [f"{r['kernel']} {r['pass']}" for r in bandwidth["rows"] if r["status"] == "MISS"]
    for row in rows:
        if row["step"] == "bandwidth":
            row["note"] = f"copy {bandwidth['copy_bandwidth_GBps']:.0f} GB/s; missed: {', '.join(missed) or 'none'}"
train = details.get("gpu_train_step")
if train:
    for row in rows:
        if row["step"] == "train":
            gg_row = train["rows"][1]
            row["note"] = f"gpugrad {gg_row['ms_per_step']:.2f} ms/step, {gg_row['ratio']:.2f}x PyTorch, {gg_row['status']}"
print()
print(f"{'step':<22}{'verdict':<28}{'seconds':>8}  note")
for row in rows:
    print(f"{row['step']:<22}{row['verdict']:<28}{row['seconds']:>8}  {row.get('note', row['log'])}")
total = sum(r["seconds"] for r in rows)
print(f"{'total':<22}{'':<28}{total:>8}")
ok = all(r["verdict"] in ("PASS", "SKIPPED") for r in rows)
json.dump({"ok": ok, "total_seconds": total, "steps": rows, "details": details},
          open(os.path.join(out, "gpu_check.json"), "w", encoding="utf-8"), indent=2)
print(f"\nwrote {os.path.join(out, 'gpu_check.json')}")
sys.exit(0 if ok else 1)
EOF

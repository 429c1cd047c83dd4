"""The benchmark suite's entry point: ``python -m benchmarks``.

For every benchmark the suite builds the participants (the hand-written
NumPy/CuPy baseline, gpugrad, and whichever peers are installed), runs each
once from the same initial state and checks they agree, then times them in
alternating blocks (:mod:`benchmarks.timing`) and reports ratios of medians
measured in that same run, each against its target with PASS or MISS.

Outputs, in ``--out`` (default ``benchmarks/out/``):

* ``results-<device>.json``: everything, including per-participant times,
  agreement checks, the reasons a participant was skipped, and the machine.
* ``results-<device>.md``: the same as markdown tables (also printed).
* ``ratios-<device>.png``: the ratios against their targets (when matplotlib
  is installed).

Examples
--------
``python -m benchmarks --device cpu --quick``
    Every benchmark, fewer repetitions; under two minutes on two cores.
``python -m benchmarks --device cuda --out /results``
    The full run on a GPU, as the CUDA container does.
``python -m benchmarks --smoke --only mlp_small``
    A seconds-long check that the machinery works.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _datetime
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import amp, baselines, cases, networks, peers
from .threads import DEFAULT_THREADS, apply_to_loaded_libraries, limit_threads
from .timing import Participant, TimingPlan, ratio, time_alternating, warm_up

DEFAULT_OUT = Path(__file__).resolve().parent / "out"

# Repetition profiles.  "full" is what RESULTS.md quotes; "quick" keeps every
# benchmark but spends ~10 s on each; "smoke" only proves the machinery works.
PLANS = {
    "full": TimingPlan(warmup=5, rounds=15, block_seconds=0.25, budget_seconds=60.0, min_rounds=3),
    "quick": TimingPlan(warmup=2, rounds=6, block_seconds=0.06, budget_seconds=8.0, min_rounds=2),
    "smoke": TimingPlan(warmup=1, rounds=2, block_seconds=0.01, budget_seconds=1.0, min_rounds=1),
}

# A participant whose first unit of work differs from the baseline's by more
# than this is not doing the same work, and its ratios are reported INVALID
# rather than PASS or MISS.  What is compared is the *change* one step makes
# to the parameters (or, for the chain, the gradient itself), relative to the
# baseline's largest change: parameters barely move in one SGD step, so
# comparing the parameters themselves would miss a gradient that was never
# applied.  Float32 reassociation differences are ~1e-5 of the change; a
# missing or wrong gradient is ~1.
AGREEMENT_TOLERANCE = 1e-2

PEER_NAMES = ("torch", "jax", "autograd")


# --------------------------------------------------------------------------
# Benchmark definitions
# --------------------------------------------------------------------------

@dataclass
class Target:
    """``candidate / reference`` must be at most ``limit``."""

    candidate: str
    reference: str
    limit: float


@dataclass
class Benchmark:
    """One benchmark: how to build its participants and what it must achieve.

    ``factories`` maps a participant name to a zero-argument callable that
    builds it (raising ``PeerUnavailable`` / ``GpugradUnavailable`` when it
    cannot run here).
    """

    key: str
    title: str
    factories: dict
    targets: list = field(default_factory=list)
    unit: str = "step"


def build_benchmarks(device: str, xp) -> list[Benchmark]:
    """All benchmarks for ``device``; ``xp`` is NumPy or CuPy for the baseline."""
    baseline_name = "cupy" if device == "cuda" else "numpy"

    # Per-op overhead.
    chain_input = baselines.make_chain_input(8)
    schedule = baselines.chain_schedule(baselines.CHAIN_LENGTH)
    chain_input_on_device = xp.asarray(chain_input)

    def numpy_chain():
        chain_state = {}  # per instance: the A/A twin must not share the baseline's gradient

        def step():
            chain_state["grad"] = baselines.chain_forward_backward(chain_input_on_device, schedule)[1]
            return chain_state["grad"]
        return Participant(baseline_name, step, _xp_sync(xp),
                           lambda: {"grad": baselines.to_numpy(chain_state["grad"])})

    chain = Benchmark(
        "per_op_chain",
        f"Per-op overhead: {baselines.CHAIN_LENGTH} elementwise ops (mul, add, every 10th tanh) "
        "on shape (8,) float32, forward + backward to the input",
        {baseline_name: numpy_chain,
         "gpugrad": lambda: cases.gpugrad_chain(chain_input, schedule, device),
         "torch": lambda: peers.torch_chain(chain_input, schedule, device),
         "jax": lambda: peers.jax_chain(chain_input, schedule, device),
         "autograd": lambda: peers.autograd_chain(chain_input, schedule, device)},
        [Target("gpugrad", baseline_name, 2.5)], unit="chain")

    # The cost of per-thread grad mode: the same chain with every thread in the
    # default modes (no thread-local read) and with another thread off them
    # (every op reads its own thread's mode); see cases.gpugrad_chain_mode_read.
    mode_read = Benchmark(
        "grad_mode_read",
        "Per-op cost of the per-thread grad-mode read: the per-op chain while another thread is inside "
        "no_grad (each op reads its thread-local mode) against the same chain with every thread in the "
        "default modes",
        {"gpugrad": lambda: cases.gpugrad_chain(chain_input, schedule, device),
         "gpugrad-mode-read": lambda: cases.gpugrad_chain_mode_read(chain_input, schedule, device)},
        [Target("gpugrad-mode-read", "gpugrad", 1.03)], unit="chain")

    def mlp_benchmark(key, title, sizes, batch, limit, samples=None, epoch_batch=None, reference=None,
                      tensors_limit=None):
        problem = baselines.make_mlp_problem(sizes, batch, seed=0, samples=samples)

        def numpy_mlp():
            network = baselines.NumpyMLP(problem.weights, problem.biases, problem.inputs,
                                         problem.labels, xp=xp)
            step = network.step if epoch_batch is None else (lambda: network.epoch(epoch_batch))
            return Participant(baseline_name, step, _xp_sync(xp), network.snapshot)

        targets = [Target("gpugrad", reference or baseline_name, limit)] if limit else []
        if tensors_limit:
            targets.append(Target("gpugrad-tensors", reference or baseline_name, tensors_limit))
        return Benchmark(key, title, {
            baseline_name: numpy_mlp,
            "gpugrad": lambda: cases.gpugrad_mlp(problem, device, epoch_batch),
            # The same step written with tensors (x @ W + b, F.relu, p.add_ under no_grad): issue 14
            # asks every way of writing a model to be equally fast.
            "gpugrad-tensors": lambda: cases.gpugrad_mlp_tensors(problem, device, epoch_batch),
            "torch": lambda: peers.torch_mlp(problem, device, epoch_batch),
            "jax": lambda: peers.jax_mlp(problem, device, epoch_batch),
            "autograd": lambda: peers.autograd_mlp(problem, device, epoch_batch),
        }, targets, unit="epoch" if epoch_batch else "step")

    mlp_small = mlp_benchmark(
        "mlp_small", "MLP training step, batch 32, 64-128-128-10 ReLU, softmax CE, SGD, float32",
        (64, 128, 128, 10), 32, 1.3, tensors_limit=1.5)
    mlp_large = mlp_benchmark(
        "mlp_large", "MLP training step, batch 256, 1024-2048-2048-10 ReLU, softmax CE, SGD, float32",
        (1024, 2048, 2048, 10), 256, 1.05, tensors_limit=1.10)

    cnn_problem = baselines.make_cnn_problem(batch=32)

    def numpy_cnn():
        network = baselines.NumpyCNN(cnn_problem, xp=xp)
        return Participant(baseline_name, network.step, _xp_sync(xp), network.snapshot)

    cnn = Benchmark(
        "cnn_small",
        "Small CNN training step, batch 32, 1x28x28, conv3x3(8, pad 1), ReLU, max-pool 2, linear 10, SGD",
        {baseline_name: numpy_cnn,
         "gpugrad": lambda: cases.gpugrad_cnn(cnn_problem, device),
         "torch": lambda: peers.torch_cnn(cnn_problem, device),
         "jax": lambda: peers.jax_cnn(cnn_problem, device)},
        [Target("gpugrad", "torch", 1.0)])

    mnist1d = mlp_benchmark(
        "mnist1d_epoch", "MNIST-1D-sized epoch: MLP 40-100-100-10 on 4000 random (40,) vectors, batch 100",
        (40, 100, 100, 10), 100, None, samples=4000, epoch_batch=100)

    benchmarks = [chain, mode_read, mlp_small, mlp_large, cnn, mnist1d]
    # Real networks (benchmarks/networks.py): PyTorch is the reference, same weights and batch.
    for key, (name, title) in networks.NETWORKS.items():
        benchmarks.append(Benchmark(
            key, title,
            {"torch": lambda name=name: networks.torch_network(name, device),
             "gpugrad": lambda name=name: networks.gpugrad_network(name, device)},
            [Target("gpugrad", "torch", 1.0)]))
    benchmarks.append(_amp_benchmark(device))
    if device != "cpu":
        # HIPS autograd is NumPy-only; leave it out rather than time it on another device.
        for benchmark in benchmarks:
            benchmark.factories.pop("autograd", None)
    return benchmarks


def _amp_benchmark(device: str) -> Benchmark:
    """Mixed precision (benchmarks/amp.py): the MLP step in float32 and under autocast in bfloat16
    and float16 (with a GradScaler), gpugrad and PyTorch in the same run.

    The baseline is gpugrad's own float32 step, so ``gpugrad-bf16 / gpugrad`` is
    the AMP speed-up; the issue's targets (bf16 at least 2x faster than float32,
    and no slower than PyTorch's autocast step) are for the large MLP on a GPU.
    On the CPU the rows are context (NumPy has no bfloat16 BLAS).
    """
    sizes, batch = amp.SUITE_PROBLEMS["cuda" if device == "cuda" else "cpu"]
    factories = {}
    for library in ("gpugrad", "torch"):
        for precision in amp.PRECISIONS:
            name = library if precision == "fp32" else f"{library}-{precision}"
            factories[name] = (lambda library=library, precision=precision:
                               amp.suite_participant(library, precision, device))
    targets = [Target("gpugrad-bf16", "torch-bf16", 1.0 if device == "cuda" else None),
               Target("gpugrad-fp16", "torch-fp16", None)]
    if device == "cuda":
        targets.insert(0, Target("gpugrad-bf16", "gpugrad", 0.5))
    return Benchmark("amp_mlp", f"AMP: MLP {'-'.join(map(str, sizes))} step, batch {batch}, SGD, "
                     "float32 / bfloat16 / float16 autocast (float16 with GradScaler)", factories, targets)


def _xp_sync(xp) -> Callable[[], None]:
    if xp is np:
        return lambda: None
    return xp.cuda.Device().synchronize


# --------------------------------------------------------------------------
# Running one benchmark
# --------------------------------------------------------------------------

def _safe_snapshot(participant: Participant):
    """The participant's state, or ``None`` when it has none yet (a gradient before the first step)."""
    if participant.snapshot is None:
        return None
    try:
        return {name: np.array(value, dtype=np.float64) for name, value in participant.snapshot().items()}
    except Exception:  # noqa: BLE001 - e.g. ``leaf.grad`` is still None
        return None


def _change(before: dict | None, after: dict | None) -> dict | None:
    """What one step did: ``after - before`` per array, or ``after`` when there is no ``before``."""
    if after is None or before is None:
        return after
    return {name: value - before[name] if name in before and before[name].shape == value.shape else value
            for name, value in after.items()}


def _agreement(snapshot: dict, reference: dict) -> float:
    """Largest absolute difference per array, relative to that array's largest reference value."""
    worst = 0.0
    for name, expected in reference.items():
        if name not in snapshot:
            return float("inf")
        actual = np.asarray(snapshot[name], dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        if actual.shape != expected.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(expected))), 1e-12)
        worst = max(worst, float(np.max(np.abs(actual - expected))) / scale)
    return worst


def run_benchmark(benchmark: Benchmark, plan: TimingPlan, allowed: set, log, aa_check: bool = False) -> dict:
    """Build, check and time one benchmark.  Never raises: failures are recorded.

    With ``aa_check``, a second, independent copy of the baseline takes part
    too; its ratio to the baseline should be 1.00x, and how far it strays is
    the noise floor of every other ratio in the same benchmark.
    """
    record = {"key": benchmark.key, "title": benchmark.title, "unit": benchmark.unit,
              "participants": {}, "unavailable": {}, "comparisons": []}
    participants = []
    for name, factory in benchmark.factories.items():
        if name not in allowed:
            record["unavailable"][name] = "not selected (--peers)"
            continue
        try:
            participants.append(factory())
        except (peers.PeerUnavailable, cases.GpugradUnavailable) as reason:
            record["unavailable"][name] = str(reason)
        except Exception as error:  # noqa: BLE001 - a broken participant must not stop the suite
            record["unavailable"][name] = f"setup failed: {type(error).__name__}: {error}"
            log(traceback.format_exc(limit=3))

    # First call from the shared initial state: also the check that everyone
    # computes the same thing, then the rest of the warm-up.
    baseline_name = next(iter(benchmark.factories))
    if aa_check and participants and participants[0].name == baseline_name:
        twin = benchmark.factories[baseline_name]()
        twin.name = f"{baseline_name}-again"
        participants.append(twin)

    snapshots = {}
    working = []
    for participant in participants:
        try:
            before = _safe_snapshot(participant)
            participant.step()
            participant.sync()
            snapshots[participant.name] = _change(before, _safe_snapshot(participant))
            working.append(participant)
        except Exception as error:  # noqa: BLE001
            record["unavailable"][participant.name] = f"first step failed: {type(error).__name__}: {error}"
            log(traceback.format_exc(limit=3))
    participants = working
    if not participants or participants[0].name != baseline_name:
        record["error"] = f"baseline {baseline_name!r} did not run"
        return record

    reference = snapshots[baseline_name]
    agreement = {name: (_agreement(snapshot, reference) if snapshot is not None and reference is not None
                        else None) for name, snapshot in snapshots.items()}
    try:
        # At least two more calls, so block sizing sees a call without first-call costs.
        warmed = warm_up(participants, max(2, plan.warmup - 1))
        timings = time_alternating(participants, plan, warmed_up=warmed)
    except Exception as error:  # noqa: BLE001
        record["error"] = f"timing failed: {type(error).__name__}: {error}"
        log(traceback.format_exc(limit=5))
        return record

    for name, timing in timings.items():
        record["participants"][name] = {**timing.summary(), "agreement": agreement.get(name)}

    # Ratios: the targeted ones first, then every participant against the
    # baseline, then gpugrad against each peer, for context.
    pairs = [(t.candidate, t.reference, t.limit) for t in benchmark.targets]
    pairs += [(name, baseline_name, None) for name in timings if name != baseline_name]
    pairs += [("gpugrad", name, None) for name in timings if name in PEER_NAMES]
    seen = set()
    for candidate, reference_name, limit in pairs:
        if (candidate, reference_name) in seen:
            continue
        seen.add((candidate, reference_name))
        if candidate not in timings or reference_name not in timings:
            if limit is not None:
                missing = candidate if candidate not in timings else reference_name
                record["comparisons"].append({
                    "candidate": candidate, "reference": reference_name, "target": limit,
                    "ratio": None, "status": "PENDING",
                    "note": record["unavailable"].get(missing, f"{missing} not run")})
            continue
        figures = ratio(timings[candidate], timings[reference_name])
        disagreement = max(agreement.get(candidate) or 0.0, agreement.get(reference_name) or 0.0)
        if disagreement > AGREEMENT_TOLERANCE:
            status = "INVALID"
        elif limit is None:
            status = "INFO"
        else:
            status = "PASS" if figures["ratio"] <= limit else "MISS"
        record["comparisons"].append({"candidate": candidate, "reference": reference_name,
                                      "target": limit, **figures, "status": status,
                                      "note": (f"results differ by {disagreement:.1e} (relative)"
                                               if status == "INVALID" else "")})
    return record


# --------------------------------------------------------------------------
# CUDA-only measurements
# --------------------------------------------------------------------------

def kernel_bandwidth(out: Path, mode: str, log, device: str = "cuda") -> dict:
    """Activation kernels' bandwidth against a device-to-device copy.

    Runs ``benchmarks/kernel_bandwidth.py`` (written alongside the kernels;
    skipped when it is absent) through its ``main(argv)``, which writes
    ``kernel_bandwidth.json`` into ``out``, and returns that file's content
    with the script's exit status.  Its figures are fractions of copy
    bandwidth (higher is better; target in each row), not ratios of times.
    ``device="cpu"`` is the script's dry run, only for testing this hookup.
    """
    try:
        from . import kernel_bandwidth as script
    except Exception as error:  # noqa: BLE001 - absent, or its own imports failed
        return {"status": "skipped", "reason": f"benchmarks.kernel_bandwidth not importable ({error})"}
    if not callable(getattr(script, "main", None)):
        return {"status": "skipped", "reason": "benchmarks.kernel_bandwidth has no main(argv)"}
    argv = ["--device", device, "--out", str(out)]
    if mode != "full":
        # 2**22 float32 elements (16 MiB) still saturates a GPU's memory system.
        argv += ["--log2n", "22" if mode == "quick" else "16", "--rounds", "3"]
    if device == "cpu":
        argv = ["--device", "cpu", "--out", str(out), "--log2n", "12", "--rounds", "1", "--repeat", "1"]
    try:
        exit_code = script.main(argv)
    except SystemExit as stop:  # argparse or an explicit exit inside the script
        exit_code = stop.code
    except Exception as error:  # noqa: BLE001
        log(traceback.format_exc(limit=3))
        return {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    result_path = out / "kernel_bandwidth.json"
    if not result_path.exists():
        return {"status": "failed", "reason": f"exit code {exit_code}, no {result_path.name} written"}
    result = json.loads(result_path.read_text(encoding="utf-8"))
    status = "ok" if exit_code == 0 else "targets missed" if exit_code == 1 else f"exit code {exit_code}"
    return {"status": status, "argv": argv, "result": result}


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        if hasattr(value, "__dict__"):
            return _jsonable(vars(value))
        return repr(value)


def _peak_step_memory(benchmarks: list[Benchmark], log) -> list[dict]:
    """Peak device memory of one training step, gpugrad against PyTorch.

    gpugrad (through CuPy's default memory pool): free the pool's cached
    blocks, note ``used_bytes()`` (parameters, data, kept gradients), run one
    step, and take the pool's growth ``total_bytes() - used_before``: the pool
    keeps every block the step freed, so its size afterwards is the step's
    high-water mark (including any fragmentation).  PyTorch:
    ``max_memory_allocated() - memory_allocated()`` around one step after
    ``reset_peak_memory_stats()``.  Both after warm-up.
    """
    rows = []
    try:
        import cupy
        import torch
    except ImportError as error:
        return [{"status": "skipped", "reason": str(error)}]
    if not torch.cuda.is_available():
        return [{"status": "skipped", "reason": "torch has no CUDA device"}]
    pool = cupy.get_default_memory_pool()
    for benchmark in benchmarks:
        if benchmark.unit != "step" or benchmark.key == "per_op_chain":
            continue
        try:
            gpugrad_step = benchmark.factories["gpugrad"]()
            torch_step = benchmark.factories["torch"]()
            for _ in range(2):
                gpugrad_step.step()
                gpugrad_step.sync()
                torch_step.step()
                torch_step.sync()
            pool.free_all_blocks()
            used_before = pool.used_bytes()
            gpugrad_step.step()
            gpugrad_step.sync()
            gpugrad_peak = pool.total_bytes() - used_before
            torch.cuda.synchronize()
            torch_before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            torch_step.step()
            torch_step.sync()
            torch_peak = torch.cuda.max_memory_allocated() - torch_before
            rows.append({"key": benchmark.key, "gpugrad_bytes": int(gpugrad_peak),
                         "torch_bytes": int(torch_peak),
                         "ratio": gpugrad_peak / torch_peak if torch_peak else None})
        except Exception as error:  # noqa: BLE001
            log(traceback.format_exc(limit=3))
            rows.append({"key": benchmark.key, "status": "failed", "reason": f"{type(error).__name__}: {error}"})
    return rows


# --------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _numpy_blas() -> str | None:
    """NumPy's BLAS (name, version, build flavour): it does most of the baselines' work."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # noqa: BLE001 - older NumPy or a build without the record
        return None
    configuration = blas.get("openblas configuration", "")
    return " ".join(part for part in (blas.get("name"), blas.get("version"), configuration) if part)


def machine_description(device: str, xp, argv=None) -> dict:
    """Versions, CPU, GPU, thread settings: what a reader needs to trust a figure."""
    description = {
        "date_utc": _datetime.datetime.now(_datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "device": device,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numpy_blas": _numpy_blas(),
        "gpugrad": cases.gpugrad_version(),
        "torch": peers.torch_version(),
        "jax": peers.jax_version(),
        "autograd": peers.autograd_version(),
        "threads_env": {name: os.environ[name] for name in
                        ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
                        if name in os.environ},
    }
    try:
        import torch

        description["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    if xp is not np:
        description["cupy"] = xp.__version__
        properties = xp.cuda.runtime.getDeviceProperties(0)
        name = properties["name"]
        description["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        description["cuda_runtime"] = xp.cuda.runtime.runtimeGetVersion()
    return description


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

def _format_ratio(comparison: dict) -> str:
    if comparison.get("ratio") is None:
        return "—"
    low, high = comparison.get("ratio_low"), comparison.get("ratio_high")
    spread = f" ({low:.2f}–{high:.2f})" if low is not None and high is not None else ""
    return f"{comparison['ratio']:.2f}x{spread}"


def _threads_text(threads: dict) -> str:
    requested = threads.get("requested")
    if not requested:
        return "library default threads"
    return f"{requested} thread{'s' if requested != 1 else ''} per library"


def format_markdown(results: dict) -> str:
    """Markdown tables: ratios against targets, then absolute times."""
    meta = results["meta"]
    lines = [f"## gpugrad benchmarks, {meta['device']}, {meta['mode']} run",
             "",
             f"`{meta['command']}` on {meta['date_utc']}; {meta['cpu']} ({meta['cpu_count']} cores, "
             f"{_threads_text(meta.get('threads', {}))})"
             + (f", {meta['gpu']}" if meta.get("gpu") else "")
             + f"; Python {meta['python']}, NumPy {meta['numpy']}"
             + (f" ({' '.join(meta['numpy_blas'].split()[:2])})" if meta.get("numpy_blas") else "")
             + f", gpugrad {meta['gpugrad'] or 'not importable'}"
             + "".join(f", {peer} {meta[peer]}" for peer in PEER_NAMES if meta.get(peer)) + ".",
             "",
             "Ratios are median(candidate) / median(reference) from the same run, timed in alternating "
             "blocks after warm-up (lower is better for the candidate); the range in brackets is the "
             "smallest and largest per-round ratio. Clock: "
             + ("process CPU time." if meta.get("plan", {}).get("clock") == "cpu" else "wall time."),
             "",
             "| benchmark | candidate / reference | ratio (per-round range) | target | status |",
             "| --- | --- | --- | --- | --- |"]
    for record in results["benchmarks"]:
        for comparison in record["comparisons"]:
            target = f"≤ {comparison['target']:.2f}x" if comparison.get("target") else "—"
            status = comparison["status"] + (f": {comparison['note']}" if comparison.get("note") else "")
            lines.append(f"| {record['key']} | {comparison['candidate']} / {comparison['reference']} | "
                         f"{_format_ratio(comparison)} | {target} | {status} |")
        if record.get("error"):
            lines.append(f"| {record['key']} | — | — | — | ERROR: {record['error']} |")
    lines += ["", "| benchmark | participant | median ms per unit | IQR ms | timed calls | agreement after 1 unit |",
              "| --- | --- | --- | --- | --- | --- |"]
    for record in results["benchmarks"]:
        for name, figures in record["participants"].items():
            agreement = figures.get("agreement")
            agreement_text = "—" if agreement is None else f"{agreement:.1e}"
            lines.append(f"| {record['key']} ({record['unit']}) | {name} | {figures['median_ms']:.3f} | "
                         f"{figures['q1_ms']:.3f}–{figures['q3_ms']:.3f} | {figures['calls']} | {agreement_text} |")
    skipped = [(record["key"], name, reason) for record in results["benchmarks"]
               for name, reason in record["unavailable"].items()]
    if skipped:
        lines += ["", "Not run:", ""]
        lines += [f"- {key} / {name}: {reason}" for key, name, reason in skipped]
    memory_rows = [record for record in results["benchmarks"] if "memory" in record]
    if memory_rows:
        lines += ["", "Peak memory per training step, above what was alive before it (benchmarks/networks.py):",
                  "", "| network | gpugrad peak KiB | torch peak KiB | ratio | method |",
                  "| --- | --- | --- | --- | --- |"]
        for record in memory_rows:
            memory = record["memory"]
            if "gpugrad_bytes" in memory:
                ratio_text = f"{memory['ratio']:.2f}x" if memory.get("ratio") is not None else "—"
                lines.append(f"| {record['key']} | {memory['gpugrad_bytes'] / 1024:.0f} | "
                             f"{memory['torch_bytes'] / 1024:.0f} | {ratio_text} | {memory['method']} |")
            else:
                lines.append(f"| {record['key']} | — | — | — | {memory.get('status')}: {memory.get('reason')} |")
    for record in results["benchmarks"]:
        peaks = record.get("amp_memory")
        if not peaks:
            continue
        lines += ["", "Peak memory of one AMP step (benchmarks/amp.py: tracemalloc on NumPy, which does not see "
                  "PyTorch's CPU allocator; the CuPy pool and torch.cuda.max_memory_allocated on a GPU):", "",
                  "| participant | peak MiB |", "| --- | --- |"]
        if "status" in peaks:
            lines.append(f"| — | {peaks['status']}: {peaks.get('reason')} |")
            continue
        lines += [f"| {name} | {'—' if peak is None else f'{peak / 2**20:.2f}'} |" for name, peak in peaks.items()]
    cuda = results.get("cuda")
    if cuda:
        lines += ["", "### CUDA", "", "| training step | gpugrad peak MiB | torch peak MiB | ratio |",
                  "| --- | --- | --- | --- |"]
        for row in cuda.get("peak_memory", []):
            if "gpugrad_bytes" in row:
                ratio_text = f"{row['ratio']:.2f}x" if row.get("ratio") is not None else "—"
                lines.append(f"| {row['key']} | {row['gpugrad_bytes'] / 2**20:.2f} | "
                             f"{row['torch_bytes'] / 2**20:.2f} | {ratio_text} |")
            else:
                lines.append(f"| {row.get('key', '—')} | — | — | {row.get('status')}: {row.get('reason')} |")
        lines += _bandwidth_markdown(cuda.get("kernel_bandwidth", {}))
    return "\n".join(lines) + "\n"


def _bandwidth_markdown(bandwidth: dict) -> list[str]:
    lines = ["", f"Activation kernels' bandwidth (benchmarks/kernel_bandwidth.py): {bandwidth.get('status')}"
             + (f" ({bandwidth['reason']})" if bandwidth.get("reason") else "")]
    result = bandwidth.get("result") or {}
    rows = result.get("rows") or []
    if not rows:
        return lines + [""]
    copy = result.get("copy_bandwidth_GBps")
    lines += ["", f"{result.get('elements')} {result.get('dtype')} elements on {result.get('device')}; "
              + (f"device-to-device copy {copy:.0f} GB/s." if copy else ""), "",
              "| kernel | pass | GB/s | fraction of copy | target | vs plain CuPy | status |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        target = row.get("target_fraction")
        speedup = row.get("speedup_vs_plain")
        lines.append(f"| {row.get('kernel')} | {row.get('pass')} | {row.get('bandwidth_GBps', 0):.0f} | "
                     f"{row.get('fraction_of_copy', 0):.2f} | {f'≥ {target:.2f}' if target else '—'} | "
                     f"{f'{speedup:.2f}x' if speedup else '—'} | {row.get('status')} |")
    return lines + [""]


def plot_ratios(results: dict, path: Path) -> str | None:
    """Horizontal bars of the ratios, targets drawn as red ticks; log scale.

    Returns the path written, or ``None`` when matplotlib is missing or there
    is nothing to plot.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    # Pending targets (candidate not importable yet) keep their row: a red
    # tick with no bar shows what is still owed.
    rows = [(f"{record['key']}: {c['candidate']} / {c['reference']}"
             + ("" if c.get("ratio") else " (pending)"), c.get("ratio") or 0.0, c.get("target"), c["status"])
            for record in results["benchmarks"] for c in record["comparisons"]
            if c.get("ratio") or c.get("target")]
    if not any(row[1] for row in rows):
        return None
    colours = {"PASS": "tab:green", "MISS": "tab:red", "INVALID": "black", "INFO": "tab:gray"}
    figure, axes = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.5))
    positions = range(len(rows))
    axes.barh(list(positions), [row[1] for row in rows], color=[colours.get(row[3], "tab:gray") for row in rows])
    for position, (_, _, target, _) in zip(positions, rows):
        if target:
            axes.plot([target, target], [position - 0.4, position + 0.4], color="red", linewidth=2)
    axes.axvline(1.0, color="black", linewidth=0.8, linestyle=":")
    axes.set_yticks(list(positions))
    axes.set_yticklabels([row[0] for row in rows], fontsize=8)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("ratio of medians (lower is better for the candidate); red tick = target")
    axes.set_title(f"gpugrad benchmarks ({results['meta']['device']}, {results['meta']['mode']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time gpugrad against hand-written NumPy baselines and peer libraries (PyTorch, JAX, "
                    "HIPS autograd), in alternating blocks, and report ratios of medians against targets.",
        epilog="benchmarks: per_op_chain, grad_mode_read, mlp_small, mlp_large, cnn_small, mnist1d_epoch, "
               + ", ".join(networks.NETWORKS) + ", amp_mlp. Writes "
               "results-<device>.json, results-<device>.md and ratios-<device>.png to --out. "
               "How figures are produced: benchmarks/RESULTS.md.")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where every participant runs (default: cpu)")
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="fewer repetitions; < 2 minutes on 2 CPU cores")
    speed.add_argument("--smoke", action="store_true",
                       help="minimal repetitions and peers, only proves the suite runs (used by the tests)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--only", default="", help="comma-separated benchmark keys to run (default: all)")
    parser.add_argument("--peers", default=None,
                        help="comma-separated peers to include, from torch,jax,autograd "
                             "(default: all installed; 'none' for none; --smoke defaults to torch)")
    parser.add_argument("--aa-check", action=argparse.BooleanOptionalAction, default=None,
                        help="also time a second copy of each baseline against itself, to show the noise "
                             "floor (default: on for full runs, off for --quick and --smoke)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="threads per math library (NumPy's BLAS, PyTorch, JAX); 0 keeps their defaults "
                             f"(default: {DEFAULT_THREADS}, see benchmarks/threads.py for why)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time (default); cpu: process CPU time, robust to other programs "
                             "on a busy machine (CPU device only; see benchmarks/timing.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed or invalid")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    # Reaches the libraries still to be imported (the peers load lazily);
    # ``python -m benchmarks`` has already done this before NumPy loaded.
    limit_threads(arguments.threads, pin=arguments.device == "cpu")
    mode = "smoke" if arguments.smoke else "quick" if arguments.quick else "full"
    plan = dataclasses.replace(PLANS[mode], clock=arguments.clock)

    def log(message):
        print(message, file=sys.stderr, flush=True)

    if arguments.device == "cuda" and arguments.clock == "cpu":
        log("--clock cpu measures host CPU time, not GPU work; use --clock wall with --device cuda")
        return 2
    if arguments.device == "cuda":
        try:
            import cupy as xp

            xp.cuda.runtime.getDeviceCount()
            xp.zeros(1)
        except Exception as error:  # noqa: BLE001 - no CuPy, no driver, no GPU
            log(f"--device cuda needs CuPy and a working GPU: {type(error).__name__}: {error}")
            return 2
    else:
        xp = np

    peer_text = arguments.peers if arguments.peers is not None else ("torch" if mode == "smoke" else "all")
    selected_peers = set(PEER_NAMES) if peer_text == "all" else (
        set() if peer_text == "none" else {name.strip() for name in peer_text.split(",") if name.strip()})
    unknown = selected_peers - set(PEER_NAMES)
    if unknown:
        log(f"--peers: unknown peer(s) {sorted(unknown)}; choose from {', '.join(PEER_NAMES)}")
        return 2
    allowed = selected_peers | {"numpy", "cupy", "gpugrad", "gpugrad-mode-read", "gpugrad-tensors"}
    allowed |= {f"{name}-{precision}" for name in allowed for precision in amp.PRECISIONS}

    benchmarks = build_benchmarks(arguments.device, xp)
    if arguments.only:
        wanted = {key.strip() for key in arguments.only.split(",") if key.strip()}
        unknown = wanted - {benchmark.key for benchmark in benchmarks}
        if unknown:
            log(f"--only: unknown benchmark(s) {sorted(unknown)}; choose from "
                + ", ".join(benchmark.key for benchmark in benchmarks))
            return 2
        benchmarks = [benchmark for benchmark in benchmarks if benchmark.key in wanted]

    started = time.perf_counter()
    threads = apply_to_loaded_libraries(arguments.threads)
    results = {"meta": {**machine_description(arguments.device, xp, argv), "mode": mode,
                        "threads": threads, "plan": vars(plan)}, "benchmarks": []}
    for benchmark in benchmarks:
        log(f"[{time.perf_counter() - started:6.1f}s] {benchmark.key}: {benchmark.title}")
        aa_check = arguments.aa_check if arguments.aa_check is not None else mode == "full"
        record = run_benchmark(benchmark, plan, allowed, log, aa_check=aa_check)
        if benchmark.key in networks.NETWORKS and not record.get("error") and "gpugrad" in record["participants"]:
            try:
                record["memory"] = networks.peak_step_memory(networks.NETWORKS[benchmark.key][0],
                                                             arguments.device)
                memory = record["memory"]
                print(f"  {benchmark.key:14s} peak memory per step: gpugrad {memory['gpugrad_bytes'] / 1024:.0f} KiB, "
                      f"torch {memory['torch_bytes'] / 1024:.0f} KiB ({memory['method']})", flush=True)
            except Exception as error:  # noqa: BLE001 - a failed measurement must not stop the suite
                record["memory"] = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
                log(traceback.format_exc(limit=3))
        if benchmark.key == "amp_mlp" and not record.get("error"):
            try:
                peaks = amp.suite_peak_memory(arguments.device)
                record["amp_memory"] = {name: peaks[name] for name in record["participants"] if name in peaks}
            except Exception as error:  # noqa: BLE001 - a failed measurement must not stop the suite
                record["amp_memory"] = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
                log(traceback.format_exc(limit=3))
        results["benchmarks"].append(record)
        for name, reason in record["unavailable"].items():
            log(f"    skipped {name}: {reason}")
        if record.get("error"):
            log(f"    ERROR: {record['error']}")
        for comparison in record["comparisons"]:
            target = f"target ≤ {comparison['target']:.2f}x" if comparison.get("target") else "no target"
            print(f"  {benchmark.key:14s} {comparison['candidate'] + ' / ' + comparison['reference']:22s} "
                  f"{_format_ratio(comparison):24s} {target:18s} {comparison['status']}"
                  + (f" ({comparison['note']})" if comparison.get("note") else ""), flush=True)

    if arguments.device == "cuda":
        arguments.out.mkdir(parents=True, exist_ok=True)
        results["cuda"] = {"kernel_bandwidth": kernel_bandwidth(arguments.out, mode, log),
                           "peak_memory": _peak_step_memory(benchmarks, log)}
    results["meta"]["wall_seconds"] = round(time.perf_counter() - started, 1)

    arguments.out.mkdir(parents=True, exist_ok=True)
    stem = arguments.device
    json_path = arguments.out / f"results-{stem}.json"
    markdown_path = arguments.out / f"results-{stem}.md"
    markdown = format_markdown(results)
    plot_path = plot_ratios(results, arguments.out / f"ratios-{stem}.png")
    results["meta"]["plot"] = plot_path
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    markdown_path.write_text(markdown, encoding="utf-8")
    print()
    print(markdown)
    log(f"wrote {json_path}, {markdown_path}" + (f", {plot_path}" if plot_path else "")
        + f" in {results['meta']['wall_seconds']} s")

    statuses = [c["status"] for record in results["benchmarks"] for c in record["comparisons"]]
    if arguments.strict and any(status in ("MISS", "INVALID", "PENDING") for status in statuses):
        return 1
    return 0

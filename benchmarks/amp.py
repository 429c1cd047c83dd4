"""AMP rows: an MLP training step in float32, bfloat16 and float16, gpugrad against PyTorch.

``python -m benchmarks.amp [--device cpu|cuda] [--sizes 1024 4096 4096 10] [--batch 256] [--clock cpu]``

Six participants run the same step (forward, cross-entropy, backward, SGD
update) on the same weights, timed in alternating blocks (benchmarks/timing.py):
gpugrad in float32, under ``gg.autocast`` in bfloat16 and in float16 (with a
``GradScaler``), and PyTorch the same three ways (``torch.autocast``,
``torch.amp.GradScaler``).  Reported: the median step time, its ratio to the
same library's float32 step (the AMP speed-up), gpugrad's ratio to PyTorch in
the same precision, and the peak memory one step allocates (CPU: tracemalloc,
which NumPy reports to and PyTorch does not, so PyTorch's CPU column is empty;
CUDA: CuPy's pool high-water mark and ``torch.cuda.max_memory_allocated``).

On a CPU, bfloat16 is slower than float32 in both libraries: NumPy has no
bfloat16 BLAS (gpugrad's products widen to float32 and round) and its
elementwise bfloat16 loops convert every element; the rows exist to keep the
cost visible.  The speed-up target (the large MLP step in bf16 >= 2x float32,
and no slower than PyTorch's autocast step) is for an H200: run it there with
``--device cuda`` and record the table in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tracemalloc

import numpy as np

from .timing import Participant, TimingPlan, ratio, time_alternating

PRECISIONS = ("fp32", "bf16", "fp16")


def _gpugrad_step(gg, sizes, device, precision, weights, batch, seed):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(gg.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(gg.nn.ReLU())
    model = gg.nn.Sequential(*layers)
    model.load_state_dict({k: gg.tensor(v) for k, v in weights.items()})
    model.to(device)
    optimizer = gg.optim.SGD(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    x = gg.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32), device=device)
    y = gg.tensor(rng.integers(0, sizes[-1], batch), device=device)
    low = {"bf16": gg.bfloat16, "fp16": gg.float16}.get(precision)
    scaler = gg.amp.GradScaler(device.split(":")[0]) if precision == "fp16" else None
    device_type = device.split(":")[0]

    def step():
        optimizer.zero_grad()
        if low is None:
            loss = gg.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            return loss
        with gg.autocast(device_type, dtype=low):
            loss = gg.nn.functional.cross_entropy(model(x), y)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return loss
    return step


def _torch_step(torch, sizes, device, precision, batch, seed, weights=None):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    if weights is not None:
        model.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32), device=device)
    y = torch.tensor(rng.integers(0, sizes[-1], batch), device=device)
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    device_type = device.split(":")[0]
    scaler = torch.amp.GradScaler(device_type) if precision == "fp16" else None

    def step():
        optimizer.zero_grad()
        with torch.autocast(device_type, dtype=low or torch.bfloat16, enabled=low is not None):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return loss
    return step


def _peak_bytes(step, device, library):
    """Peak bytes allocated during one step (None where it cannot be measured)."""
    if device.startswith("cuda"):
        if library == "torch":
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            step()
            torch.cuda.synchronize()
            return int(torch.cuda.max_memory_allocated())
        import cupy
        pool = cupy.get_default_memory_pool()
        pool.free_all_blocks()
        before = pool.total_bytes()
        step()
        cupy.cuda.Device().synchronize()
        return int(pool.total_bytes() - before)
    if library == "torch":
        return None
    tracemalloc.start()
    step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return int(peak)


def make_weights(sizes, seed=0):
    """The MLP's state dict (``0.weight``, ``0.bias``, ``2.weight``, ...) as float32 NumPy arrays."""
    rng = np.random.default_rng(seed)
    weights = {}
    for i in range(len(sizes) - 1):
        bound = 1 / np.sqrt(sizes[i])
        weights[f"{2 * i}.weight"] = rng.uniform(-bound, bound, (sizes[i + 1], sizes[i])).astype(np.float32)
        weights[f"{2 * i}.bias"] = rng.uniform(-bound, bound, sizes[i + 1]).astype(np.float32)
    return weights


#: The suite's AMP row (``python -m benchmarks``): the large MLP on a GPU, where the
#: issue's target lives; a smaller one on the CPU, where bfloat16 has no BLAS to gain from.
SUITE_PROBLEMS = {"cuda": ((1024, 4096, 4096, 10), 256), "cpu": ((256, 512, 512, 10), 128)}


def suite_participant(library, precision, device, seed=0):
    """One participant of the suite's ``amp_mlp`` benchmark: ``library`` ("gpugrad" or "torch")
    running the MLP step in ``precision`` (one of PRECISIONS) on ``device``.

    Named ``library`` for float32 and ``library-precision`` otherwise.  The
    float32 participants snapshot their loss after a step, so the suite checks
    that both libraries compute the same step from the same weights; the
    low-precision ones differ from it by their rounding by design and are
    checked in tests/test_benchmark_amp.py instead.
    """
    from .peers import PeerUnavailable
    sizes, batch = SUITE_PROBLEMS["cuda" if device.startswith("cuda") else "cpu"]
    weights = make_weights(sizes, seed)
    if library == "torch":
        try:
            import torch
        except ImportError as error:
            raise PeerUnavailable(f"torch not installed ({error})") from None
        step = _torch_step(torch, sizes, device, precision, batch, seed, weights)
        sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    else:
        import gpugrad as gg
        step = _gpugrad_step(gg, sizes, device, precision, weights, batch, seed)
        sync = gg.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    last = {}

    def recorded_step():
        last["loss"] = step()
        return last["loss"]
    snapshot = (lambda: {"loss": float(last["loss"])}) if precision == "fp32" else None
    name = library if precision == "fp32" else f"{library}-{precision}"
    return Participant(name, recorded_step, sync, snapshot)


def suite_peak_memory(device, seed=0):
    """Peak bytes one step allocates, per suite participant name (None where not measurable)."""
    peaks = {}
    for library in ("gpugrad", "torch"):
        for precision in PRECISIONS:
            try:
                participant = suite_participant(library, precision, device, seed)
            except RuntimeError:       # PeerUnavailable: torch not installed
                continue
            participant.step()         # warm-up: first-call allocations are not the step's
            peaks[participant.name] = _peak_bytes(participant.step, device, library)
    return peaks


def run(sizes, batch, device, clock, budget, seed=0, include_torch=True):
    import gpugrad as gg
    torch = None
    if include_torch:
        try:
            import torch
        except ImportError:
            torch = None
    weights = make_weights(sizes, seed)
    sync = gg.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    participants = [Participant(f"gpugrad {p}", _gpugrad_step(gg, sizes, device, p, weights, batch, seed), sync)
                    for p in PRECISIONS]
    if torch is not None:
        torch_sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        participants += [Participant(f"torch {p}", _torch_step(torch, sizes, device, p, batch, seed, weights),
                                     torch_sync) for p in PRECISIONS]
    plan = TimingPlan(warmup=3, rounds=10, block_seconds=0.2, budget_seconds=budget, clock=clock)
    timings = time_alternating(participants, plan)
    rows = []
    for participant in participants:
        library, precision = participant.name.split()
        timing = timings[participant.name]
        row = {"library": library, "precision": precision, "median_ms": timing.median * 1e3,
               "vs_fp32": ratio(timing, timings[f"{library} fp32"]),
               "peak_bytes": _peak_bytes(participant.step, device, library)}
        if library == "gpugrad" and f"torch {precision}" in timings:
            row["vs_torch"] = ratio(timing, timings[f"torch {precision}"])
        rows.append(row)
    return {"device": device, "sizes": list(sizes), "batch": batch, "clock": clock, "rows": rows}


def format_markdown(result):
    title = (f"AMP: MLP {'-'.join(map(str, result['sizes']))}, batch {result['batch']}, SGD step, on "
             f"{result['device']} ({result['clock']} clock; ratios are same-run medians, lower is faster)")
    lines = [title, "",
             "| library | precision | step (ms) | / own fp32 | / torch same precision | peak memory (MiB) |",
             "|---------|-----------|-----------|------------|------------------------|-------------------|"]
    for row in result["rows"]:
        torch_ratio = f"{row['vs_torch']['ratio']:.2f}" if "vs_torch" in row else ""
        peak = "" if row["peak_bytes"] is None else f"{row['peak_bytes'] / 2 ** 20:.1f}"
        lines.append(f"| {row['library']} | {row['precision']} | {row['median_ms']:.2f} | "
                     f"{row['vs_fp32']['ratio']:.2f} | {torch_ratio} | {peak} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 512, 10])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds for the whole comparison")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args(argv)
    result = run(args.sizes, args.batch, args.device, args.clock, args.budget, include_torch=not args.no_torch)
    print(format_markdown(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

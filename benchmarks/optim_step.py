"""Optimizer step time for a 100-parameter model: fused vs foreach vs default vs PyTorch.

Run ``python benchmarks/optim_step.py`` (CPU) or ``python benchmarks/optim_step.py --device cuda``
(on a GPU; PyTorch then runs on its CUDA device too, when it has one).  Each row is the
best of ``--repeats`` blocks of ``--steps`` steps (seconds per step, min-of-N: the machine
is shared), and the ratio to gpugrad's default step of the same optimizer.

The model: 50 weight matrices (``--width`` x ``--width``) and 50 bias vectors, gradients
fixed (the step reads them, never changes them), so only the update is timed.

Examples
--------
``python benchmarks/optim_step.py --clock cpu --optimizers Adam SGD``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

OPTIONS = {
    "SGD": dict(lr=0.01, momentum=0.9),
    "Adam": dict(lr=1e-3),
    "AdamW": dict(lr=1e-3, weight_decay=0.01),
    "RMSprop": dict(lr=1e-3),
    "Adagrad": dict(lr=1e-2),
}
TORCH_HAS_FUSED = {"SGD", "Adam", "AdamW", "Adagrad"}


def _shapes(width):
    return [(width, width) if index % 2 == 0 else (width,) for index in range(100)]


def _time(step, synchronize, steps, repeats, clock):
    step()                      # state allocation happens here, not in the timed blocks
    synchronize()
    best = float("inf")
    for _ in range(repeats):
        started = clock()
        for _ in range(steps):
            step()
        synchronize()
        best = min(best, (clock() - started) / steps)
    return best


def _gpugrad_rows(name, device, shapes, steps, repeats, clock):
    import gpugrad as gg
    rng = np.random.default_rng(0)
    synchronize = gg.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = {}
    for mode, flags in (("default", {}), ("foreach", dict(foreach=True)), ("fused", dict(fused=True))):
        params = [gg.tensor(rng.standard_normal(s).astype(np.float32), device=device, requires_grad=True)
                  for s in shapes]
        for param in params:
            param.grad = gg.tensor(rng.standard_normal(param.shape).astype(np.float32) * 1e-3, device=device)
        optimizer = getattr(gg.optim, name)(params, **OPTIONS[name], **flags)
        rows[f"gpugrad {mode}"] = _time(optimizer.step, synchronize, steps, repeats, clock)
    return rows


def _torch_rows(name, device, shapes, steps, repeats, clock):
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(1)
    torch_device = "cuda" if device == "cuda" and torch.cuda.is_available() else "cpu"
    if torch_device != device:
        return {}
    synchronize = torch.cuda.synchronize if torch_device == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    rows = {}
    modes = [("single-tensor", dict(foreach=False)), ("foreach", dict(foreach=True))]
    if name in TORCH_HAS_FUSED:
        modes.append(("fused", dict(fused=True)))
    for mode, flags in modes:
        params = [torch.tensor(rng.standard_normal(s).astype(np.float32), device=torch_device, requires_grad=True)
                  for s in shapes]
        for param in params:
            param.grad = torch.tensor(rng.standard_normal(tuple(param.shape)).astype(np.float32) * 1e-3,
                                      device=torch_device)
        optimizer = getattr(torch.optim, name)(params, **OPTIONS[name], **flags)
        rows[f"torch {mode}"] = _time(optimizer.step, synchronize, steps, repeats, clock)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--optimizers", nargs="*", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument("--width", type=int, default=64, help="side of the 50 weight matrices (default 64)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="cpu: process CPU time (steadier on a shared machine; not for --device cuda)")
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    shapes = _shapes(args.width)
    print(f"optimizer step, 100 parameters ({sum(int(np.prod(s)) for s in shapes)} values, float32), "
          f"device {args.device}, {args.clock} clock, best of {args.repeats} x {args.steps} steps")
    print(f"{'optimizer':<9} {'variant':<22} {'us/step':>9} {'vs default':>10}")
    for name in args.optimizers:
        rows = _gpugrad_rows(name, args.device, shapes, args.steps, args.repeats, clock)
        rows.update(_torch_rows(name, args.device, shapes, args.steps, args.repeats, clock))
        base = rows["gpugrad default"]
        for variant, seconds in rows.items():
            print(f"{name:<9} {variant:<22} {seconds * 1e6:>9.1f} {seconds / base:>9.2f}x")


if __name__ == "__main__":
    main()

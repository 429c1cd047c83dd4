"""Replaying a captured training step: gpugrad eager vs captured vs PyTorch eager vs PyTorch with CUDA graphs.

Two MLPs (the small one of ``python -m benchmarks``, 64-128-128-10 at batch
32, and the main job's MNIST-1D MLP, 40-100-100-10 at batch 100), each one
step of forward, mean softmax cross-entropy, backward and plain SGD (lr 0.01)
from the same float32 weights (PyTorch's initialisation copied into gpugrad)
on one fixed batch held in static input buffers, as a captured step needs.

Before any timing the script checks what it times:

* ``gg.cuda.capture_check`` on the gpugrad step finds nothing that would
  break capture (on the CPU too: this is what a dry run proves);
* gpugrad's and PyTorch's first eager losses agree (relative 1e-3);
* on CUDA, three replays of gpugrad's captured step give the same losses and
  weights as three eager steps from the same start (relative 1e-5), and
  likewise for PyTorch's graph.

SGD without momentum, because gpugrad's Adam family reads its step count on
the host and refuses to be captured (``gg.DeviceError``; PyTorch needs
``capturable=True`` for the same reason), so the main job's AdamW is not the
optimizer here.  The figure is the median of synchronised steps; the issue's
target (``benchmarks/gpu_check_summary.py``) is the captured small-MLP step at
most 0.5x PyTorch eager's time on the same card.

Usage::

    python benchmarks/gpu_graph_step.py                      # on cuda
    python benchmarks/gpu_graph_step.py --out DIR            # JSON to DIR/gpu_graph_step.json
    python benchmarks/gpu_graph_step.py --device cpu --smoke  # dry run: the checks and eager rows only

Without CUDA the captured rows say ``n/a (needs CUDA)``: CUDA graphs do not
exist on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gpu_train_step import build_gpugrad, build_torch, median_step_seconds  # noqa: E402

LEARNING_RATE = 0.01
AGREEMENT = 1e-3            # gpugrad against PyTorch (two libraries, float32)
REPLAY_AGREEMENT = 1e-5     # a replay against the eager step of the same library
CHECK_STEPS = 3
MODELS = (("small MLP", [64, 128, 128, 10], 32), ("MNIST-1D MLP", [40, 100, 100, 10], 100))


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12))


def gpugrad_rows(gg, torch, sizes, batch, inputs, labels, device, warmup, steps):
    """capture_check, eager rows and (on CUDA) the captured rows of gpugrad."""
    F = gg.nn.functional

    def fresh():
        model = build_gpugrad(gg, sizes, device, build_torch(torch, sizes, "cpu", 0))
        optimizer = gg.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        static_x, static_y = gg.tensor(inputs, device=device), gg.tensor(labels, device=device)

        def step():
            optimizer.zero_grad(set_to_none=False)     # gradients keep their memory: a replay writes into it
            loss = F.cross_entropy(model(static_x), static_y)
            loss.backward()
            optimizer.step()
            return loss.detach()
        return model, step

    model, step = fresh()
    report = gg.cuda.capture_check(step)
    model, step = fresh()
    first_loss = float(step().item())
    model, step = fresh()
    eager_losses = [float(step().item()) for _ in range(CHECK_STEPS)]
    eager_weights = [p.numpy().copy() for p in model.parameters()]
    eager_seconds, _ = median_step_seconds(step, gg.cuda.synchronize, warmup, steps)
    result = {"capture_check": str(report), "capture_ok": report.ok, "first_loss": first_loss,
              "eager_ms": eager_seconds * 1e3, "captured_ms": None, "replay_rel_diff": None}
    if device != "cuda":
        return result
    model, step = fresh()
    warmed = [float(step().item())]                     # the recipe's eager warm-up step (state, kernels compiled)
    graph = gg.cuda.CUDAGraph()
    with gg.cuda.graph(graph):
        static_loss = step()
    replayed = []
    for _ in range(CHECK_STEPS - 1):
        graph.replay()
        replayed.append(float(static_loss.item()))
    weights = [p.numpy().copy() for p in model.parameters()]
    result["replay_rel_diff"] = max([_relative(np.array(warmed + replayed), np.array(eager_losses))]
                                    + [_relative(a, b) for a, b in zip(weights, eager_weights)])
    captured_seconds, _ = median_step_seconds(graph.replay, gg.cuda.synchronize, warmup, steps)
    result["captured_ms"] = captured_seconds * 1e3
    return result


def torch_rows(torch, sizes, inputs, labels, device, warmup, steps):
    """PyTorch eager and (on CUDA) captured with ``torch.cuda.graph``, its recipe (side-stream warm-up)."""

    def fresh():
        model = build_torch(torch, sizes, device, 0)
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        static_x, static_y = torch.as_tensor(inputs, device=device), torch.as_tensor(labels, device=device)

        def step():
            optimizer.zero_grad(set_to_none=False)
            loss = torch.nn.functional.cross_entropy(model(static_x), static_y)
            loss.backward()
            optimizer.step()
            return loss.detach()
        return model, step

    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    model, step = fresh()
    first_loss = float(step().item())
    model, step = fresh()
    eager_losses = [float(step().item()) for _ in range(CHECK_STEPS)]
    eager_weights = [p.detach().cpu().numpy().copy() for p in model.parameters()]
    eager_seconds, _ = median_step_seconds(step, synchronize, warmup, steps)
    result = {"first_loss": first_loss, "eager_ms": eager_seconds * 1e3, "captured_ms": None,
              "replay_rel_diff": None}
    if device != "cuda":
        return result
    model, step = fresh()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        warmed = [float(step().item())]
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = step()
    replayed = []
    for _ in range(CHECK_STEPS - 1):
        graph.replay()
        replayed.append(float(static_loss.item()))
    weights = [p.detach().cpu().numpy().copy() for p in model.parameters()]
    result["replay_rel_diff"] = max([_relative(np.array(warmed + replayed), np.array(eager_losses))]
                                    + [_relative(a, b) for a, b in zip(weights, eager_weights)])
    captured_seconds, _ = median_step_seconds(graph.replay, synchronize, warmup, steps)
    result["captured_ms"] = captured_seconds * 1e3
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="few steps: proves the script runs")
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    args = parser.parse_args(argv)
    if args.smoke:
        args.warmup, args.steps = 1, 3

    import torch  # noqa: PLC0415 - the reference; required by this script

    import gpugrad as gg  # noqa: PLC0415 - after sys.path is set

    if args.device == "cuda" and not (gg.cuda.is_available() and torch.cuda.is_available()):
        print("gpu_graph_step: needs CUDA for both gpugrad (CuPy) and PyTorch", file=sys.stderr)
        return 2
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    models, agree = [], True
    for name, sizes, batch in MODELS:
        rng = np.random.default_rng(args.seed)
        inputs = rng.standard_normal((batch, sizes[0])).astype(np.float32)
        labels = rng.integers(0, sizes[-1], batch).astype(np.int64)
        ours = gpugrad_rows(gg, torch, sizes, batch, inputs, labels, args.device, args.warmup, args.steps)
        theirs = torch_rows(torch, sizes, inputs, labels, args.device, args.warmup, args.steps)
        losses_agree = abs(ours["first_loss"] - theirs["first_loss"]) <= AGREEMENT * abs(theirs["first_loss"])
        replays_agree = all(r["replay_rel_diff"] is None or r["replay_rel_diff"] <= REPLAY_AGREEMENT
                            for r in (ours, theirs))
        model_agrees = ours["capture_ok"] and losses_agree and replays_agree
        agree = agree and model_agrees
        eager_torch = theirs["eager_ms"]
        rows = []
        for participant, ms in (("gpugrad eager", ours["eager_ms"]), ("gpugrad captured", ours["captured_ms"]),
                                ("pytorch eager", theirs["eager_ms"]), ("pytorch graph", theirs["captured_ms"])):
            rows.append({"participant": participant, "ms_per_step": ms,
                         "vs_torch_eager": None if ms is None else ms / eager_torch,
                         "status": ("n/a (needs CUDA)" if ms is None else
                                    "reference" if participant == "pytorch eager" else
                                    "INFO" if model_agrees else "INVALID")})
        models.append({"model": name, "sizes": sizes, "batch": batch, "agree": model_agrees,
                       "capture_check": ours["capture_check"], "first_loss": {"gpugrad": ours["first_loss"],
                                                                              "pytorch": theirs["first_loss"]},
                       "replay_rel_diff": {"gpugrad": ours["replay_rel_diff"], "pytorch": theirs["replay_rel_diff"]},
                       "rows": rows})
        print(f"{name} {'-'.join(map(str, sizes))}, batch {batch}, SGD lr {LEARNING_RATE}, on {device_name}; "
              f"median of {args.steps} synchronised steps")
        print(f"  {ours['capture_check']}")
        print(f"  first loss gpugrad {ours['first_loss']:.6f}, PyTorch {theirs['first_loss']:.6f}; replay vs eager: "
              f"gpugrad {ours['replay_rel_diff']}, PyTorch {theirs['replay_rel_diff']}")
        print(f"  {'participant':<18}{'ms/step':>10}{'vs torch eager':>16}  status")
        for row in rows:
            ms = "-" if row["ms_per_step"] is None else f"{row['ms_per_step']:.4f}"
            ratio = "-" if row["vs_torch_eager"] is None else f"{row['vs_torch_eager']:.2f}x"
            print(f"  {row['participant']:<18}{ms:>10}{ratio:>16}  {row['status']}")
    result = {"command": "python benchmarks/gpu_graph_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "device": device_name, "steps": args.steps, "torch": torch.__version__, "agree": agree,
              "models": models}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "gpu_graph_step.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"\nwrote {path}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())

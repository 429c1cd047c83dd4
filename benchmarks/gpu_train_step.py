"""One MLP training step, gpugrad against PyTorch on the same GPU.

Both start from the same float32 parameters (PyTorch's default initialisation,
copied into gpugrad), take the same batch, compute mean softmax cross-entropy
and apply plain SGD (lr 0.01).  One untimed step checks they agree (loss and
updated parameters, relative 1e-3; otherwise the row says INVALID); then each
runs warm-up steps and timed steps, every step synchronised, and the figure
is the median step time.  Peak memory is PyTorch's max_memory_allocated
against the growth of CuPy's pool during gpugrad's steps.

``--job mnist1d`` instead trains the main job's MLP (MNIST-1D, 40-100-100-10,
AdamW lr 1e-2 with weight decay 0.05 and cosine decay over 2000 steps, batches
of 100) in both, from the same initial weights and the same batches (no random
shifts, so the batches are identical), and reports the time per step, the
final test accuracy and the peak memory of each (``gpu_train_mnist1d.json``).

Usage::

    python benchmarks/gpu_train_step.py                    # 512 x 1024-4096-4096-10 on cuda
    python benchmarks/gpu_train_step.py --job mnist1d      # the MNIST-1D MLP job on cuda
    python benchmarks/gpu_train_step.py --out DIR          # JSON to DIR/gpu_train_step.json
    python benchmarks/gpu_train_step.py --device cpu --smoke   # dry run of the script

Prints one table and writes ``gpu_train_step.json`` next to it (``--out``,
default ``benchmarks/out``).  No target: the ratio is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LEARNING_RATE = 0.01
AGREEMENT = 1e-3


def build_torch(torch, sizes, device, seed):
    torch.manual_seed(seed)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(device)


def build_gpugrad(gg, sizes, device, torch_model):
    """The same architecture, with the PyTorch model's parameters copied in."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(gg.nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(gg.nn.ReLU())
    model = gg.nn.Sequential(*layers).to(device)
    state = {name: gg.tensor(value.detach().cpu().numpy(), device=device)
             for name, value in torch_model.state_dict().items()}
    try:
        model.load_state_dict(state)
    except Exception:  # noqa: BLE001 - other naming: fall back to parameter order
        with gg.no_grad():
            for param, value in zip(model.parameters(), state.values()):
                param.copy_(value)
    return model


def median_step_seconds(step, synchronize, warmup, steps):
    for _ in range(warmup):
        step()
    synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--sizes", default="1024,4096,4096,10", help="layer widths, input to classes")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, few steps: proves the script runs")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    parser.add_argument("--job", default="step", choices=("step", "mnist1d"))
    args = parser.parse_args(argv)
    if args.job == "mnist1d":
        return mnist1d_job(args, argv)
    if args.smoke:
        args.batch, args.sizes, args.warmup, args.steps = 8, "16,32,32,4", 1, 3
    sizes = [int(s) for s in args.sizes.split(",")]

    import torch  # noqa: PLC0415 - the reference; required by this script

    import gpugrad as gg  # noqa: PLC0415 - after sys.path is set

    if args.device == "cuda" and not (gg.cuda.is_available() and torch.cuda.is_available()):
        print("gpu_train_step: needs CUDA for both gpugrad (CuPy) and PyTorch", file=sys.stderr)
        return 2
    F = gg.nn.functional
    rng = np.random.default_rng(args.seed)
    inputs = rng.standard_normal((args.batch, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], args.batch).astype(np.int64)

    torch_model = build_torch(torch, sizes, args.device, args.seed)
    model = build_gpugrad(gg, sizes, args.device, torch_model)
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=LEARNING_RATE)
    opt = gg.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    tx = torch.as_tensor(inputs, device=args.device)
    ty = torch.as_tensor(labels, device=args.device)
    x = gg.tensor(inputs, device=args.device)
    y = gg.tensor(labels, device=args.device)

    def torch_step():
        torch_opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(torch_model(tx), ty)
        loss.backward()
        torch_opt.step()
        return loss

    def gpugrad_step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    # Agreement: one step each from the same state.
    torch_loss = float(torch_step().item())
    gg_loss = float(gpugrad_step().item())
    torch_params = [p.detach().cpu().numpy() for p in torch_model.parameters()]
    gg_params = [np.asarray(p.detach().cpu().numpy()) for p in model.parameters()]
    worst = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12)) for a, b in zip(torch_params, gg_params))
    agree = abs(gg_loss - torch_loss) <= AGREEMENT * abs(torch_loss) and worst <= AGREEMENT

    torch_sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    torch_seconds, _ = median_step_seconds(torch_step, torch_sync, args.warmup, args.steps)
    torch_peak = (torch.cuda.max_memory_allocated() - base) if args.device == "cuda" else None

    pool_before = gg.cuda.memory_stats()["total_bytes"]
    gg_seconds, _ = median_step_seconds(gpugrad_step, gg.cuda.synchronize, args.warmup, args.steps)
    gg_peak = (gg.cuda.memory_stats()["total_bytes"] - pool_before) if args.device == "cuda" else None

    ratio = gg_seconds / torch_seconds
    rows = [
        {"participant": "pytorch", "ms_per_step": torch_seconds * 1e3, "ratio": 1.0, "loss_first_step": torch_loss,
         "peak_bytes_beyond_start": torch_peak, "status": "reference"},
        {"participant": "gpugrad", "ms_per_step": gg_seconds * 1e3, "ratio": ratio, "loss_first_step": gg_loss,
         "peak_bytes_beyond_start": gg_peak, "max_param_rel_diff": worst,
         "status": "INFO" if agree else "INVALID"},
    ]
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"MLP training step {'-'.join(map(str, sizes))}, batch {args.batch}, float32, SGD lr {LEARNING_RATE}, "
          f"on {device_name}; median of {args.steps} synchronised steps")
    print(f"{'participant':<12}{'ms/step':>10}{'vs torch':>10}{'first loss':>14}{'pool/peak MiB':>15}  status")
    for row in rows:
        peak = row["peak_bytes_beyond_start"]
        print(f"{row['participant']:<12}{row['ms_per_step']:>10.3f}{row['ratio']:>9.2f}x{row['loss_first_step']:>14.6f}"
              f"{'-' if peak is None else f'{peak / 2**20:.1f}':>15}  {row['status']}")
    result = {"command": "python benchmarks/gpu_train_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "device": device_name, "sizes": sizes, "batch": args.batch, "steps": args.steps,
              "torch": torch.__version__, "agree": agree, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "gpu_train_step.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"\nwrote {path}")
    return 0 if agree else 1


MNIST1D_SIZES = [40, 100, 100, 10]
MNIST1D_STEPS = 2000
MNIST1D_BATCH = 100
MNIST1D_ACCURACY_AGREEMENT = 0.05


def _mnist1d_data(seed=42):
    import matplotlib  # noqa: PLC0415 - mnist1d imports pyplot
    matplotlib.use("Agg")
    from mnist1d.data import get_dataset_args, make_dataset  # noqa: PLC0415
    dataset_args = get_dataset_args()
    dataset_args.seed = seed
    state = np.random.get_state()
    try:
        data = make_dataset(dataset_args)
    finally:
        np.random.set_state(state)
    return (data["x"].astype(np.float32), data["y"].astype(np.int64),
            data["x_test"].astype(np.float32), data["y_test"].astype(np.int64))


def mnist1d_job(args, argv):
    """The main job's MLP in gpugrad and PyTorch: same weights, batches and recipe."""
    import torch  # noqa: PLC0415

    import gpugrad as gg  # noqa: PLC0415

    if args.device == "cuda" and not (gg.cuda.is_available() and torch.cuda.is_available()):
        print("gpu_train_step: needs CUDA for both gpugrad (CuPy) and PyTorch", file=sys.stderr)
        return 2
    steps = 20 if args.smoke else MNIST1D_STEPS
    x_train, y_train, x_test, y_test = _mnist1d_data()
    rng = np.random.default_rng(args.seed)
    per_epoch = len(x_train) // MNIST1D_BATCH
    order = np.concatenate([rng.permutation(len(x_train)) for _ in range(-(-steps // per_epoch))])
    batches = order[: steps * MNIST1D_BATCH].reshape(steps, MNIST1D_BATCH)
    torch_model = build_torch(torch, MNIST1D_SIZES, args.device, args.seed)
    model = build_gpugrad(gg, MNIST1D_SIZES, args.device, torch_model)
    F = gg.nn.functional
    sync_torch = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    def run_torch():
        optimizer = torch.optim.AdamW(torch_model.parameters(), lr=1e-2, weight_decay=0.05)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=0.0)
        tx, ty = torch.as_tensor(x_train, device=args.device), torch.as_tensor(y_train, device=args.device)
        tb = torch.as_tensor(batches, device=args.device)
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() if args.device == "cuda" else 0
        sync_torch()
        start = time.perf_counter()
        for step in range(steps):
            index = tb[step]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(torch_model(tx[index]), ty[index])
            loss.backward()
            optimizer.step()
            scheduler.step()
        sync_torch()
        seconds = time.perf_counter() - start
        peak = (torch.cuda.max_memory_allocated() - base) if args.device == "cuda" else None
        with torch.no_grad():
            logits = torch_model(torch.as_tensor(x_test, device=args.device))
            accuracy = float((logits.argmax(1).cpu().numpy() == y_test).mean())
        return seconds, peak, accuracy

    def run_gpugrad():
        optimizer = gg.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)
        scheduler = gg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=0.0)
        gx, gy = gg.tensor(x_train, device=args.device), gg.tensor(y_train, device=args.device)
        gb = gg.tensor(batches, device=args.device)
        pool_before = gg.cuda.memory_stats()["total_bytes"]
        gg.cuda.synchronize()
        start = time.perf_counter()
        for step in range(steps):
            index = gb[step]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(gx[index]), gy[index])
            loss.backward()
            optimizer.step()
            scheduler.step()
        gg.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = (gg.cuda.memory_stats()["total_bytes"] - pool_before) if args.device == "cuda" else None
        with gg.no_grad():
            logits = model(gg.tensor(x_test, device=args.device))
            accuracy = float((logits.argmax(1).cpu().numpy() == y_test).mean())
        return seconds, peak, accuracy

    torch_seconds, torch_peak, torch_accuracy = run_torch()
    gg_seconds, gg_peak, gg_accuracy = run_gpugrad()
    agree = abs(gg_accuracy - torch_accuracy) <= MNIST1D_ACCURACY_AGREEMENT
    rows = [
        {"participant": "pytorch", "seconds": torch_seconds, "ms_per_step": torch_seconds / steps * 1e3,
         "ratio": 1.0, "test_accuracy": torch_accuracy, "peak_bytes_beyond_start": torch_peak,
         "status": "reference"},
        {"participant": "gpugrad", "seconds": gg_seconds, "ms_per_step": gg_seconds / steps * 1e3,
         "ratio": gg_seconds / torch_seconds, "test_accuracy": gg_accuracy, "peak_bytes_beyond_start": gg_peak,
         "status": "INFO" if agree else "INVALID"},
    ]
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"MNIST-1D MLP {'-'.join(map(str, MNIST1D_SIZES))}, {steps} steps of {MNIST1D_BATCH}, AdamW + cosine, "
          f"on {device_name}")
    print(f"{'participant':<12}{'seconds':>9}{'ms/step':>9}{'vs torch':>10}{'accuracy':>10}{'peak MiB':>10}  status")
    for row in rows:
        peak = row["peak_bytes_beyond_start"]
        print(f"{row['participant']:<12}{row['seconds']:>9.2f}{row['ms_per_step']:>9.3f}{row['ratio']:>9.2f}x"
              f"{row['test_accuracy']:>10.3f}{'-' if peak is None else f'{peak / 2**20:.1f}':>10}  {row['status']}")
    result = {"command": "python benchmarks/gpu_train_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "job": "mnist1d", "device": device_name, "sizes": MNIST1D_SIZES, "steps": steps,
              "torch": torch.__version__, "agree": agree, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "gpu_train_mnist1d.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"\nwrote {path}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())

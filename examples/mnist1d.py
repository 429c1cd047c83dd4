"""Train the four MNIST-1D baselines with gpugrad and compare with the paper and PyTorch.

MNIST-1D (Greydanus, "Scaling down deep learning", 2020) is a 1-D analogue of
MNIST: 4000 training and 1000 test signals of length 40, ten classes, small
enough that a CPU trains all four of the paper's model families in about a
minute, yet hard enough to separate them (a linear model reaches about 32%,
a convolutional one about 95%).  The data is generated here, offline, by the
``mnist1d`` package (``make_dataset(get_dataset_args())``: default arguments,
seed 42); nothing is downloaded.

Recipe (shared/notes/mnist1d.md, measured in PyTorch): AdamW with weight decay
0.05 on every parameter (1e-2 for logistic regression), peak learning rate
1e-2 with cosine decay to 0 over all steps, batches of 100 reshuffled every
epoch, cross-entropy, and (except for logistic regression) every training
example circularly shifted by a random integer in [-3, 3].

Run::

    python examples/mnist1d.py                  # all four models, GPU if there is one
    python examples/mnist1d.py --models cnn gru --device cpu
    python examples/mnist1d.py --quick          # a few steps each (smoke test)
    python examples/mnist1d.py --amp bf16       # mixed precision (gg.autocast; fp16 adds a GradScaler)

Writes ``<out>/mnist1d_curves.png`` (loss and accuracy per epoch),
``<out>/mnist1d_<model>.safetensors`` (trained weights, ``gg.load`` +
``model.load_state_dict``) and ``<out>/mnist1d_results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# These networks multiply matrices of at most 100 x 1280: one BLAS thread does it
# as fast as two, and on a busy 2-core machine a second thread that has to be
# woken for every tiny product made the MLP 20x slower (1 ms per 100x100 matmul).
# Set before NumPy loads; a value already in the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# This file is called mnist1d.py: drop its folder from the path, or `import mnist1d`
# would import this script instead of the package; and find gpugrad from a checkout.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, os.path.join(HERE, os.pardir))

import gpugrad as gg
from gpugrad import nn

# name: (training steps, weight decay, random shifts?, paper accuracy, PyTorch mean / min of 6 runs)
RECIPES = {
    "logistic": {"steps": 2000, "weight_decay": 1e-2, "shift": 0, "paper": 0.32, "torch": (0.324, 0.317)},
    "mlp": {"steps": 2000, "weight_decay": 0.05, "shift": 3, "paper": 0.68, "torch": (0.756, 0.744)},
    "cnn": {"steps": 500, "weight_decay": 0.05, "shift": 3, "paper": 0.94, "torch": (0.975, 0.971)},
    "gru": {"steps": 700, "weight_decay": 0.05, "shift": 3, "paper": 0.91, "torch": (0.947, 0.935)},
}
PEAK_LR = 1e-2
BATCH_SIZE = 100


# ---------------------------------------------------------------------------
# Models (state-dict names match the same layers in PyTorch).
# ---------------------------------------------------------------------------
class ConvNet(nn.Module):
    """Three conv-BN-GELU blocks (two max-pooled), mean over length, a linear head."""

    def __init__(self, channels=(16, 32, 64), classes=10):
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv1d(1, c1, kernel_size=5, padding=2), nn.BatchNorm1d(c1), nn.GELU(), nn.MaxPool1d(2),
            nn.Conv1d(c1, c2, kernel_size=3, padding=1), nn.BatchNorm1d(c2), nn.GELU(), nn.MaxPool1d(2),
            nn.Conv1d(c2, c3, kernel_size=3, padding=1), nn.BatchNorm1d(c3), nn.GELU(),
        )
        self.head = nn.Linear(c3, classes)

    def forward(self, x):                      # x: (N, 40)
        features = self.features(x.unsqueeze(1))   # (N, 64, 10)
        return self.head(features.mean(dim=2))


class GRUNet(nn.Module):
    """A GRU over the 40 time steps; all hidden states, flattened, feed a linear head."""

    def __init__(self, hidden=32, length=40, classes=10):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden * length, classes)

    def forward(self, x):                      # x: (N, 40)
        outputs, _ = self.gru(x.unsqueeze(2))  # (N, 40, hidden)
        return self.head(outputs.flatten(1))


def build(name):
    if name == "logistic":
        return nn.Linear(40, 10)
    if name == "mlp":
        return nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "cnn":
        return ConvNet()
    if name == "gru":
        return GRUNet()
    raise ValueError(f"unknown model {name!r}; choose from {sorted(RECIPES)}")


# ---------------------------------------------------------------------------
# Data.
# ---------------------------------------------------------------------------
def make_data(seed=42):
    """MNIST-1D from the ``mnist1d`` package's generator (offline; never its download path)."""
    try:
        import matplotlib
        matplotlib.use("Agg")           # mnist1d imports pyplot; no display needed
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        sys.exit("examples/mnist1d.py needs the mnist1d package: pip install 'gpugrad[examples]' "
                 "(or pip install mnist1d tqdm matplotlib)")
    args = get_dataset_args()
    args.seed = seed
    state = np.random.get_state()       # make_dataset reseeds NumPy's global generator; put it back
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    return (data["x"].astype(np.float32), data["y"].astype(np.int64),
            data["x_test"].astype(np.float32), data["y_test"].astype(np.int64))


class RandomShifts:
    """Wraps a DataLoader: each example of each batch is rolled by a random integer in [-max_shift, max_shift].

    The shifts come from gpugrad's generator (``gg.randint``), so
    ``gg.manual_seed`` makes them reproducible and ``fit``'s checkpoints
    resume them exactly.  Indexing is done on the raw arrays of the batch
    (data, not part of any graph), on whatever device the batch is.
    """

    def __init__(self, loader, max_shift):
        self.loader = loader
        self.max_shift = max_shift

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            if self.max_shift:
                n, length = x.shape
                shifts = gg.randint(-self.max_shift, self.max_shift + 1, (n, 1), device=x.device).array
                xp = gg.backend.xp_of(shifts)   # NumPy or CuPy, wherever the batch lives
                positions = (xp.arange(length)[None, :] - shifts) % length   # rolled[i, j] = x[i, j - s_i]
                x = gg.as_tensor(xp.take_along_axis(x.array, positions, axis=1))
            yield x, y

    def state_dict(self):
        return self.loader.state_dict()

    def load_state_dict(self, state):
        self.loader.load_state_dict(state)


# ---------------------------------------------------------------------------
# Training.
# ---------------------------------------------------------------------------
def train_one(name, data, device, steps, out, seed, progress, amp=None):
    x_train, y_train, x_test, y_test = data
    recipe = RECIPES[name]
    gg.manual_seed(seed)
    model = build(name).to(device)
    train_set = gg.data.TensorDataset(gg.tensor(x_train, device=device), gg.tensor(y_train, device=device))
    test_set = gg.data.TensorDataset(gg.tensor(x_test, device=device), gg.tensor(y_test, device=device))
    train_loader = RandomShifts(gg.data.DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True, seed=seed),
                                recipe["shift"])
    test_loader = gg.data.DataLoader(test_set, batch_size=500)
    optimizer = gg.optim.AdamW(model.parameters(), lr=PEAK_LR, weight_decay=recipe["weight_decay"])
    scheduler = gg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=0.0)
    epochs = -(-steps // len(train_loader))
    started = time.perf_counter()
    history = gg.train.fit(model, optimizer, nn.CrossEntropyLoss(), train_loader, val_loader=test_loader,
                           epochs=epochs, max_steps=steps, scheduler=scheduler, scheduler_step="batch",
                           progress=progress, description=f"{name:>8}", amp=amp)
    gg.cuda.synchronize()
    seconds = time.perf_counter() - started
    final = gg.train.evaluate(model, test_loader, nn.CrossEntropyLoss())
    gg.save(model.state_dict(), os.path.join(out, f"mnist1d_{name}.safetensors"))
    # The test accuracy is measured in float32 (the float32 master weights) whatever --amp trained with.
    return {"model": name, "steps": steps, "amp": amp, "test_accuracy": final["accuracy"], "test_loss": final["loss"],
            "seconds": seconds, "paper": recipe["paper"], "torch_mean": recipe["torch"][0],
            "torch_min": recipe["torch"][1]}, history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--out", default=os.path.join(HERE, "out"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="training seed (initialisation, shuffles, shifts)")
    parser.add_argument("--data-seed", type=int, default=42, help="mnist1d's dataset seed (paper: 42)")
    parser.add_argument("--quick", action="store_true", help="a few steps per model (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--amp", choices=("bf16", "fp16"), default=None,
                        help="train in mixed precision: gg.autocast in bfloat16 or float16 (+ GradScaler)")
    args = parser.parse_args(argv)

    device = args.device or ("cuda" if gg.cuda.is_available() else "cpu")
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    data = make_data(args.data_seed)
    print(f"MNIST-1D: {len(data[0])} train / {len(data[2])} test signals of length {data[0].shape[1]} "
          f"(generated in {time.perf_counter() - started:.1f} s); training on {device}"
          + (f" in mixed precision ({args.amp})" if args.amp else ""), flush=True)

    results, histories = [], {}
    for name in args.models:
        steps = 10 if args.quick else RECIPES[name]["steps"]
        result, history = train_one(name, data, device, steps, args.out, args.seed,
                                    progress=not args.no_progress, amp=args.amp)
        results.append(result)
        histories[name] = history
        print(f"{name:>8}: test accuracy {result['test_accuracy']:.3f} after {steps} steps "
              f"({result['seconds']:.1f} s)", flush=True)

    print()
    print("| model    | gpugrad | paper | PyTorch 2.13 (mean / min) | steps | seconds |")
    print("|----------|---------|-------|---------------------------|-------|---------|")
    for r in results:
        print(f"| {r['model']:<8} | {r['test_accuracy']:7.3f} | {r['paper']:5.2f} | "
              f"{r['torch_mean']:.3f} / {r['torch_min']:.3f}             | {r['steps']:5d} | {r['seconds']:7.1f} |")
    total = time.perf_counter() - started
    print(f"\ntotal {total:.1f} s on {device}")

    curves = os.path.join(args.out, "mnist1d_curves.png")
    gg.train.plot_histories(histories, curves, title=f"MNIST-1D, gpugrad on {device} (val = the 1000 test signals)")
    with open(os.path.join(args.out, "mnist1d_results.json"), "w") as handle:
        json.dump({"device": str(device), "quick": args.quick, "amp": args.amp, "total_seconds": total,
                   "results": results,
                   "histories": {k: h.to_dict() for k, h in histories.items()}}, handle, indent=1)
    print(f"wrote {curves}, {os.path.join(args.out, 'mnist1d_results.json')} and the weights "
          f"({', '.join(f'mnist1d_{n}.safetensors' for n in args.models)})")
    return results


if __name__ == "__main__":
    main()

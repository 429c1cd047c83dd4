"""A small Conv2d network on scikit-learn's bundled 8x8 handwritten digits.

``sklearn.datasets.load_digits`` ships with scikit-learn (1797 images of
8x8 pixels, ten classes), so nothing is downloaded.  Two conv-ReLU-pool
blocks and a linear head reach more than 95% test accuracy in a few seconds
on a CPU, trained with ``gg.train.fit``.

Run::

    python examples/digits_conv2d.py [--epochs 15] [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Small matrices: one BLAS thread is as fast as two, and much faster on a busy
# machine (see mnist1d.py).  Set before NumPy loads; the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import gpugrad as gg
from gpugrad import nn

HERE = os.path.dirname(os.path.abspath(__file__))


def build():
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 16 x 4 x 4
        nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 2 x 2
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    )


def load(test_fraction=0.25, seed=0):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("examples/digits_conv2d.py needs scikit-learn: pip install 'gpugrad[examples]'")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]       # (N, 1, 8, 8), pixels in [0, 1]
    images = (images - images.mean()) / images.std()
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    split = int(len(labels) * (1 - test_fraction))
    train, test = order[:split], order[split:]
    return images[train], labels[train], images[test], labels[test]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Conv2d network on the 8x8 digits")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    parser.add_argument("--quick", action="store_true", help="one epoch (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if gg.cuda.is_available() else "cpu")
    epochs = 1 if args.quick else args.epochs

    gg.manual_seed(0)
    x_train, y_train, x_test, y_test = load()
    train = gg.data.TensorDataset(gg.tensor(x_train, device=device), gg.tensor(y_train, device=device))
    test = gg.data.TensorDataset(gg.tensor(x_test, device=device), gg.tensor(y_test, device=device))
    train_loader = gg.data.DataLoader(train, batch_size=32, shuffle=True, seed=0)
    test_loader = gg.data.DataLoader(test, batch_size=500)
    print(f"digits: {len(train)} train / {len(test)} test images of 8x8, on {device}")

    model = build().to(device)
    optimizer = gg.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = gg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train_loader))
    started = time.perf_counter()
    history = gg.train.fit(model, optimizer, nn.CrossEntropyLoss(), train_loader, val_loader=test_loader,
                           epochs=epochs, scheduler=scheduler, scheduler_step="batch", description="digits",
                           progress=not args.no_progress)
    seconds = time.perf_counter() - started
    result = gg.train.evaluate(model, test_loader, nn.CrossEntropyLoss())
    print(f"test accuracy {result['accuracy']:.3f} (loss {result['loss']:.3f}) after {epochs} epochs "
          f"in {seconds:.1f} s")

    os.makedirs(args.out, exist_ok=True)
    history.plot(os.path.join(args.out, "digits_conv2d_curves.png"), title="8x8 digits, Conv2d")
    gg.save(model.state_dict(), os.path.join(args.out, "digits_conv2d.safetensors"))
    print(f"wrote {os.path.join(args.out, 'digits_conv2d_curves.png')} and digits_conv2d.safetensors")
    return result


if __name__ == "__main__":
    main()

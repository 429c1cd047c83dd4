"""DataLoader throughput with 0, 2 and 4 worker processes (CPU).

Two datasets, both 4096 samples of 3x32x32 float32 in batches of 64:

* ``transform``: every ``__getitem__`` does per-sample work in Python and
  NumPy (normalise, random crop from a padded copy, flip: about what an image
  augmentation costs), then ``default_collate`` stacks the batch.  This is
  what workers are for: the work moves off the main process.
* ``tensor``: a :class:`gpugrad.data.TensorDataset`, batched by one gather
  per batch.  Workers add transport (a shared-memory block per batch) to
  work that is already tiny: the honest cost of ``num_workers`` when it is
  not needed.

The figure is samples per second of wall-clock time over one epoch, the
best of ``--repeat`` epochs (worker start-up included: each epoch starts its
workers, as without ``persistent_workers``; ``--persistent`` leaves it out).
Workers can only help as far as free cores allow: on a shared 2-core machine
2 workers are the most that can run at once.

    python benchmarks/loader.py                 # 0, 2 and 4 workers, both datasets
    python benchmarks/loader.py --workers 0 2 --repeat 2 --samples 1024
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gpugrad as gg  # noqa: E402 - after the path fix, so the checkout's gpugrad is measured


class Augmented(gg.data.Dataset):
    """Images made from their index, normalised, randomly cropped and flipped per sample."""

    def __init__(self, samples):
        self.samples = samples
        self.mean = np.array([0.5, 0.4, 0.3], dtype=np.float32).reshape(3, 1, 1)

    def __len__(self):
        return self.samples

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        image = rng.random((3, 32, 32), dtype=np.float32)
        image = (image - self.mean) / 0.25
        padded = np.pad(image, ((0, 0), (4, 4), (4, 4)), mode="reflect")
        top, left = rng.integers(0, 9, size=2)
        crop = padded[:, top:top + 32, left:left + 32]
        if rng.random() < 0.5:
            crop = crop[:, :, ::-1]
        return np.ascontiguousarray(crop), int(index % 10)


def _datasets(samples):
    rng = np.random.default_rng(0)
    images = gg.from_numpy(rng.random((samples, 3, 32, 32), dtype=np.float32))
    labels = gg.from_numpy(rng.integers(0, 10, samples).astype(np.int64))
    return {"transform": Augmented(samples), "tensor": gg.data.TensorDataset(images, labels)}


def measure(dataset, workers, batch_size, repeat, persistent):
    options = {"num_workers": workers}
    if workers:
        options["persistent_workers"] = persistent
    loader = gg.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, seed=0, **options)
    if persistent and workers:
        for _ in loader:            # start the workers outside the timing
            pass
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        count = 0
        for images, _labels in loader:
            count += images.shape[0]
        best = min(best, time.perf_counter() - started)
    if workers:
        loader.shutdown_workers()
    return count / best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--persistent", action="store_true", help="leave worker start-up out of the timing")
    args = parser.parse_args(argv)
    print(f"DataLoader throughput, {args.samples} samples of 3x32x32 float32, batch {args.batch_size}, "
          f"best of {args.repeat} epochs, {os.cpu_count()} CPUs visible, "
          f"{'persistent' if args.persistent else 'per-epoch'} workers")
    print(f"{'dataset':<10} {'workers':>7} {'samples/s':>11} {'vs 0':>6}")
    for name, dataset in _datasets(args.samples).items():
        baseline = None
        for workers in args.workers:
            rate = measure(dataset, workers, args.batch_size, args.repeat, args.persistent)
            baseline = rate if baseline is None else baseline
            print(f"{name:<10} {workers:>7} {rate:>11.0f} {rate / baseline:>5.2f}x")


if __name__ == "__main__":
    main()

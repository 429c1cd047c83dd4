"""The README main job (examples/mnist1d.py) timed in gpugrad and in PyTorch on the same machine.

The README table quotes how long ``python examples/mnist1d.py`` takes to train
its four models; issue 15 asks for the same four recipes in PyTorch next to
it, measured on the same machine on the same day.  This script runs both:

* gpugrad: the example's own ``train_one`` (``gg.train.fit`` with the
  example's ``RandomShifts`` loader, AdamW, cosine decay per batch, a
  validation pass over the 1000 test signals every epoch), exactly what
  ``python examples/mnist1d.py`` runs, writing its weights to a temporary
  folder;
* PyTorch: the same models (``benchmarks/networks.py`` builds them with the
  same layers), the same generated data (``mnist1d``, seed 42), batches of
  100 reshuffled every epoch, the same random shifts in [-3, 3] (except
  logistic regression), AdamW with the example's weight decay, peak learning
  rate 1e-2 with ``CosineAnnealingLR`` stepped per batch over the example's
  number of steps, cross-entropy, and what ``fit`` records per epoch (mean
  training loss and accuracy, then loss and accuracy on the test set in eval
  mode without gradients).

Both libraries get the same thread count (``--threads``, default 1: the
example sets one BLAS thread, since these matrices are at most 100 x 1280),
set before NumPy and PyTorch start their pools.  Per model the two
libraries alternate (gpugrad, then PyTorch, ``--repeats`` times, the order
swapped every repeat); each time is the median over the repeats, in wall
time and in process CPU time (the latter is steadier on a busy machine).
Data generation is timed once and reported apart: it is the same for both.

Run, on a quiet machine, from the repository root::

    python benchmarks/main_job_vs_torch.py                 # all four models, 1 thread, 1 repeat
    python benchmarks/main_job_vs_torch.py --repeats 3     # medians of 3 alternating runs
    python benchmarks/main_job_vs_torch.py --models cnn gru --threads 2
    python benchmarks/main_job_vs_torch.py --quick         # 10 steps each (smoke test)

It prints one row per model and the totals, and ``--json PATH`` writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _limit_threads(argv):
    """Thread limits into the environment before NumPy/PyTorch load (they read them on import)."""
    threads = "1"
    for index, argument in enumerate(argv):
        if argument == "--threads" and index + 1 < len(argv):
            threads = argv[index + 1]
        elif argument.startswith("--threads="):
            threads = argument.split("=", 1)[1]
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = threads
    return int(threads)


def _load_example():
    """examples/mnist1d.py as a module (its file name would shadow the ``mnist1d`` package)."""
    import importlib.util

    path = os.path.join(ROOT, "examples", "mnist1d.py")
    spec = importlib.util.spec_from_file_location("mnist1d_main_job", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(function):
    """(result, wall seconds, process CPU seconds) of ``function()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def gpugrad_run(example, name, data, steps, seed):
    """The example's own training of ``name`` on the CPU: (test accuracy, wall s, CPU s)."""
    with tempfile.TemporaryDirectory() as out:
        (result, _), wall, cpu = _timed(
            lambda: example.train_one(name, data, "cpu", steps, out, seed, progress=False))
    return result["test_accuracy"], wall, cpu


def torch_run(example, name, data, steps, seed):
    """The same recipe in PyTorch on the CPU: (test accuracy, wall s, CPU s)."""
    import numpy as np
    import torch

    from benchmarks.networks import _mnist1d_models

    recipe = example.RECIPES[name]
    x_train, y_train, x_test, y_test = (torch.from_numpy(np.ascontiguousarray(a)) for a in data)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = _mnist1d_models(torch.nn, "torch")(name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=example.PEAK_LR, weight_decay=recipe["weight_decay"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=0.0)
    loss_function = torch.nn.CrossEntropyLoss()
    batch = example.BATCH_SIZE
    count, length = x_train.shape
    batches_per_epoch = -(-count // batch)
    epochs = -(-steps // batches_per_epoch)
    max_shift = recipe["shift"]
    columns = torch.arange(length)[None, :]

    def evaluate():
        model.eval()
        total_loss, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(x_test), 500):
                inputs, target = x_test[start:start + 500], y_test[start:start + 500]
                output = model(inputs)
                total_loss += float(loss_function(output, target)) * len(target)
                correct += int((output.argmax(1) == target).sum())
        model.train()
        return total_loss / len(x_test), correct / len(x_test)

    def train():
        done = 0
        accuracy = None
        history = []
        for _ in range(epochs):
            order = torch.randperm(count, generator=generator)
            epoch_loss = torch.zeros(())
            epoch_correct = torch.zeros((), dtype=torch.int64)
            seen = 0
            for start in range(0, count, batch):
                if done == steps:
                    break
                rows = order[start:start + batch]
                inputs, target = x_train[rows], y_train[rows]
                if max_shift:
                    shifts = torch.randint(-max_shift, max_shift + 1, (len(rows), 1), generator=generator)
                    inputs = torch.gather(inputs, 1, (columns - shifts) % length)
                optimizer.zero_grad()
                output = model(inputs)
                loss = loss_function(output, target)
                loss.backward()
                optimizer.step()
                scheduler.step()
                with torch.no_grad():       # what fit records per batch: loss and accuracy
                    epoch_loss += loss.detach() * len(rows)
                    epoch_correct += (output.argmax(1) == target).sum()
                seen += len(rows)
                done += 1
            val_loss, accuracy = evaluate()
            history.append((float(epoch_loss / max(seen, 1)), int(epoch_correct) / max(seen, 1), val_loss, accuracy))
        return accuracy

    accuracy, wall, cpu = _timed(train)
    return accuracy, wall, cpu


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    threads = _limit_threads(argv)
    sys.path.insert(0, ROOT)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["logistic", "mlp", "cnn", "gru"],
                        choices=["logistic", "mlp", "cnn", "gru"])
    parser.add_argument("--threads", type=int, default=1, help="threads for both libraries (default 1)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs per model and library; medians")
    parser.add_argument("--seed", type=int, default=0, help="training seed (as the example's --seed)")
    parser.add_argument("--quick", action="store_true", help="10 steps per model (smoke test)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    import numpy as np
    import torch

    torch.set_num_threads(threads)
    example = _load_example()
    import gpugrad as gg

    data, data_wall, _ = _timed(lambda: example.make_data(42))
    print(f"MNIST-1D generated in {data_wall:.1f} s (not counted below); {threads} thread(s) per library; "
          f"gpugrad {gg.__version__}, torch {torch.__version__}, NumPy {np.__version__}; "
          f"{args.repeats} repeat(s), alternating", flush=True)

    rows = []
    for name in args.models:
        steps = 10 if args.quick else example.RECIPES[name]["steps"]
        runs = {"gpugrad": [], "torch": []}
        for repeat in range(args.repeats):
            order = ("gpugrad", "torch") if repeat % 2 == 0 else ("torch", "gpugrad")
            for library in order:
                run = gpugrad_run if library == "gpugrad" else torch_run
                runs[library].append(run(example, name, data, steps, args.seed + repeat))
        row = {"model": name, "steps": steps}
        for library, results in runs.items():
            row[library] = {"accuracy": statistics.median(r[0] for r in results),
                            "wall_s": statistics.median(r[1] for r in results),
                            "cpu_s": statistics.median(r[2] for r in results)}
        rows.append(row)
        print(f"{name:>8}: gpugrad {row['gpugrad']['wall_s']:6.2f} s wall ({row['gpugrad']['cpu_s']:6.2f} s CPU), "
              f"torch {row['torch']['wall_s']:6.2f} s wall ({row['torch']['cpu_s']:6.2f} s CPU); "
              f"test accuracy {row['gpugrad']['accuracy']:.3f} / {row['torch']['accuracy']:.3f}", flush=True)

    totals = {library: {clock: sum(row[library][clock] for row in rows) for clock in ("wall_s", "cpu_s")}
              for library in ("gpugrad", "torch")}
    print()
    print("| model    | steps | gpugrad s (CPU s) | PyTorch s (CPU s) | ratio (wall) | accuracy gpugrad / torch |")
    print("|----------|-------|-------------------|-------------------|--------------|--------------------------|")
    for row in rows:
        ours, theirs = row["gpugrad"], row["torch"]
        print(f"| {row['model']:<8} | {row['steps']:5d} | {ours['wall_s']:7.2f} ({ours['cpu_s']:6.2f})  | "
              f"{theirs['wall_s']:7.2f} ({theirs['cpu_s']:6.2f})  | {ours['wall_s'] / theirs['wall_s']:11.2f}x | "
              f"{ours['accuracy']:.3f} / {theirs['accuracy']:.3f}            |")
    ours, theirs = totals["gpugrad"], totals["torch"]
    print(f"| total    |       | {ours['wall_s']:7.2f} ({ours['cpu_s']:6.2f})  | {theirs['wall_s']:7.2f} "
          f"({theirs['cpu_s']:6.2f})  | {ours['wall_s'] / theirs['wall_s']:11.2f}x |                          |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"threads": threads, "repeats": args.repeats, "quick": args.quick,
                       "data_seconds": data_wall, "models": rows, "totals": totals,
                       "versions": {"gpugrad": gg.__version__, "torch": torch.__version__,
                                    "numpy": np.__version__}}, handle, indent=1)
        print(f"wrote {args.json}")
    return rows, totals


if __name__ == "__main__":
    main()

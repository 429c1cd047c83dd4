"""How the cost of a full gradient grows with the number of parameters W.

The article's point, measured: the gradient of a scalar loss with respect to W
parameters costs

* numerical differences: 2 forward passes per parameter -> O(W) passes of O(W) each = O(W^2);
* forward mode: one ``gg.jvp`` pass per parameter (one tangent direction each)  = O(W^2);
* reverse mode: one forward and one backward pass, whatever W                     = O(W).

The model is a two-layer tanh MLP ``loss = mean((tanh(X W1^T) W2^T - y)^2)`` with
a fixed batch, where W1 is ``h x d`` and W2 is ``1 x h``: W = (d + 1) h, and one
forward pass costs O(batch * W), so the per-pass cost grows linearly in W once
the arrays are large enough for arithmetic (not Python overhead) to dominate.
All three methods are timed on the same network at each size; numerical and
forward mode stop at the size that keeps the run short (nothing is extrapolated).
Reverse mode's peak memory (tracemalloc, CPU) is recorded too: it must keep the
activations, so it grows with W as well.

Run::

    python -m benchmarks.complexity            # about a minute on 2 CPU cores
    python -m benchmarks.complexity --quick    # a few seconds, smaller sizes

Writes ``benchmarks/out/complexity.json`` and ``benchmarks/out/complexity.png``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time
import tracemalloc

from benchmarks.threads import limit_threads, threads_from_argv

limit_threads(threads_from_argv(__import__("sys").argv))   # before NumPy loads: one BLAS thread by default

import numpy as np

import gpugrad as gg

HERE = os.path.dirname(os.path.abspath(__file__))


def keep_freed_memory_in_the_heap():
    """glibc only: serve every array from the heap instead of a fresh ``mmap``.

    By default glibc maps each allocation above 128 KiB anew and the kernel
    faults its pages in on first touch; every op's output pays that, which
    puts a ~5x step into the time per pass between 256 KiB and 512 KiB arrays
    (measured here: 0.056 ms -> 0.48 ms per forward when the hidden width goes
    128 -> 256).  That step is the allocator, not the derivative method, and
    it would bend every slope; with a high mmap threshold the cost per pass
    grows smoothly with the array size.  Returns whether the setting took.
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 31))
    except (OSError, AttributeError):
        return False


def make_problem(hidden, in_dim, batch, seed=0):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((hidden, in_dim)) / np.sqrt(in_dim)
    w2 = rng.standard_normal((1, hidden)) / np.sqrt(hidden)
    x = gg.tensor(rng.standard_normal((batch, in_dim)))
    y = gg.tensor(rng.standard_normal((batch, 1)))

    def loss(a, b):
        return (((x @ a.T).tanh() @ b.T - y) ** 2).mean()

    return loss, w1, w2


def timed(function, min_total=0.2, max_repeats=50):
    """Median CPU seconds of ``function()``, repeated until ``min_total`` seconds have passed.

    CPU time of this process (``time.process_time``), not wall time: on a shared
    machine other processes stretch wall time but not the work done here, and
    with one BLAS thread the two agree on an idle machine.
    """
    times, result = [], None
    while True:
        start = time.process_time()
        result = function()
        times.append(time.process_time() - start)
        if sum(times) >= min_total or len(times) >= max_repeats:
            return statistics.median(times), result


def gradient_reverse(loss, w1, w2):
    a, b = gg.tensor(w1, requires_grad=True), gg.tensor(w2, requires_grad=True)
    loss(a, b).backward()
    return np.concatenate([a.grad.numpy().ravel(), b.grad.numpy().ravel()])


def gradient_numerical(loss, w1, w2):
    ga, gb = gg.numerical_grad(loss, [gg.tensor(w1), gg.tensor(w2)], eps=1e-6)
    return np.concatenate([ga.numpy().ravel(), gb.numpy().ravel()])


def gradient_forward(loss, w1, w2):
    """One gg.jvp pass per parameter, each along one unit direction."""
    a, b = gg.tensor(w1), gg.tensor(w2)
    zero_a, zero_b = gg.zeros_like(a), gg.zeros_like(b)
    grads = []
    for primal, zeros_other, first in ((a, zero_b, True), (b, zero_a, False)):
        flat = np.zeros(primal.numel())
        for i in range(primal.numel()):
            flat[i] = 1.0
            direction = gg.tensor(flat.reshape(primal.shape))
            flat[i] = 0.0
            tangents = (direction, zeros_other) if first else (zeros_other, direction)
            _, tangent = gg.jvp(loss, (a, b), tangents)
            grads.append(float(tangent))
    return np.array(grads)


def reverse_peak_bytes(loss, w1, w2):
    a, b = gg.tensor(w1, requires_grad=True), gg.tensor(w2, requires_grad=True)
    tracemalloc.start()
    try:
        loss(a, b).backward()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def slope(sizes, values):
    """Least-squares slope of log(value) against log(size)."""
    if len(sizes) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def run(hiddens, exact_max_hidden, in_dim, batch, fit_min_params):
    rows = []
    for hidden in hiddens:
        loss, w1, w2 = make_problem(hidden, in_dim, batch)
        n_params = w1.size + w2.size
        row = {"hidden": hidden, "params": n_params}
        row["reverse_s"], reverse = timed(functools.partial(gradient_reverse, loss, w1, w2))
        row["reverse_peak_bytes"] = reverse_peak_bytes(loss, w1, w2)
        if hidden <= exact_max_hidden:
            row["numerical_s"], numerical = timed(functools.partial(gradient_numerical, loss, w1, w2), min_total=0.05)
            row["forward_s"], forward = timed(functools.partial(gradient_forward, loss, w1, w2), min_total=0.05)
            scale = max(1.0, float(np.abs(reverse).max()))
            row["max_diff_numerical"] = float(np.abs(numerical - reverse).max() / scale)
            row["max_diff_forward"] = float(np.abs(forward - reverse).max() / scale)
        rows.append(row)
        print(f"W={n_params:6d}  reverse {row['reverse_s'] * 1e3:9.3f} ms"
              + (f"  forward {row['forward_s'] * 1e3:10.1f} ms  numerical {row['numerical_s'] * 1e3:10.1f} ms"
                 f"  |fwd-rev| {row['max_diff_forward']:.1e} |num-rev| {row['max_diff_numerical']:.1e}"
                 if "forward_s" in row else "")
              + f"  reverse peak {row['reverse_peak_bytes'] / 2**20:8.3f} MiB", flush=True)
    fits = {}
    for key in ("numerical_s", "forward_s", "reverse_s", "reverse_peak_bytes"):
        points = [(r["params"], r[key]) for r in rows if key in r]
        fitted = [(p, v) for p, v in points if p >= fit_min_params]
        fits[key] = {
            "all_sizes": slope(*zip(*points)) if len(points) > 1 else float("nan"),
            f"params>={fit_min_params}": slope(*zip(*fitted)) if len(fitted) > 1 else float("nan"),
        }
    return rows, fits


def plot(rows, fits, path, fit_min_params):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(11, 4.5))
    styles = {"numerical_s": ("numerical differences", "o-"), "forward_s": ("forward mode (jvp per parameter)", "s-"),
              "reverse_s": ("reverse mode (backward)", "^-")}
    for key, (label, style) in styles.items():
        points = [(r["params"], r[key]) for r in rows if key in r]
        sizes, seconds = zip(*points)
        fitted = fits[key][f"params>={fit_min_params}"]
        ax_time.loglog(sizes, seconds, style, label=f"{label}: slope {fitted:.2f}")
    exact = [r for r in rows if "numerical_s" in r]
    anchor = next((r for r in exact if r["params"] >= fit_min_params), exact[-1])
    span = np.array([anchor["params"], exact[-1]["params"]], dtype=float)
    ax_time.loglog(span, anchor["numerical_s"] * (span / anchor["params"]) ** 2, "k:", lw=1, label="O(W^2) guide")
    span = np.array([anchor["params"], rows[-1]["params"]], dtype=float)
    ax_time.loglog(span, anchor["reverse_s"] * (span / anchor["params"]), "k--", lw=1, label="O(W) guide")
    ax_time.set_xlabel("number of parameters W")
    ax_time.set_ylabel("seconds for the full gradient")
    ax_time.set_title(f"Gradient cost (slopes fitted for W >= {fit_min_params})")
    ax_time.legend(fontsize=8)
    ax_time.grid(True, which="both", alpha=0.3)
    sizes = [r["params"] for r in rows]
    peaks = [r["reverse_peak_bytes"] / 2**20 for r in rows]
    ax_mem.loglog(sizes, peaks, "^-", color="C2",
                  label=f"reverse mode peak: slope {fits['reverse_peak_bytes'][f'params>={fit_min_params}']:.2f}")
    ax_mem.set_xlabel("number of parameters W")
    ax_mem.set_ylabel("peak traced memory (MiB)")
    ax_mem.set_title("Reverse mode keeps the activations")
    ax_mem.legend(fontsize=8)
    ax_mem.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only (a few seconds)")
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1, help="math-library threads (0: library default)")
    parser.add_argument("--system-malloc", action="store_true",
                        help="keep glibc's default mmap threshold (see keep_freed_memory_in_the_heap)")
    parser.add_argument("--in-dim", type=int, default=4)
    args = parser.parse_args(argv)
    heap_only = False if args.system_malloc else keep_freed_memory_in_the_heap()
    if args.quick:
        hiddens, exact_max = [2, 4, 8, 16, 32, 64], 32
    else:
        hiddens, exact_max = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096], 512
    # From h = 32 on (batch 1024: 32768-element activations) arithmetic, not per-op
    # Python overhead, dominates one pass; below that a pass costs about the same at every size.
    fit_min_params = 32 * (args.in_dim + 1)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    rows, fits = run(hiddens, exact_max, args.in_dim, args.batch, fit_min_params)
    elapsed = time.perf_counter() - start
    result = {
        "command": "python -m benchmarks.complexity" + (" --quick" if args.quick else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "allocator": "glibc mmap threshold raised (arrays from the heap)" if heap_only else "system default",
        "clock": "time.process_time (CPU seconds of this process), median of repeats",
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "model": {"layers": "tanh MLP, loss = mean((tanh(X W1^T) W2^T - y)^2)", "in_dim": args.in_dim,
                  "batch": args.batch, "dtype": "float64", "params": "(in_dim + 1) * hidden"},
        "fit_min_params": fit_min_params,
        "rows": rows,
        "slopes": fits,
        "elapsed_s": elapsed,
    }
    with open(os.path.join(args.out, "complexity.json"), "w") as handle:
        json.dump(result, handle, indent=2)
    plot(rows, fits, os.path.join(args.out, "complexity.png"), fit_min_params)
    print(f"\nlog-log slopes (time or memory ~ W^slope), fitted for W >= {fit_min_params} and over all sizes:")
    for key, values in fits.items():
        print(f"  {key:20s} " + "  ".join(f"{name}: {value:.2f}" for name, value in values.items()))
    print(f"total {elapsed:.1f} s; wrote {args.out}/complexity.json and complexity.png")


if __name__ == "__main__":
    main()

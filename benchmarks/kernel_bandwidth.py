"""Bandwidth of the activation kernels against a device-to-device copy.

An activation is memory-bound: the best it can do is read its input and write
its output at the speed of a plain copy of the same bytes.  For each kernel
(forward, forward keeping what backward needs, backward) this measures the
bytes it must move divided by its time, as a fraction of the bandwidth of a
cupy memcpy measured in the same run, and compares with the same activation
composed from plain CuPy ops and with PyTorch (when installed).

Targets: every activation kernel >= 0.85 of copy bandwidth; gelu backward at
least 2x faster than its plain-CuPy composition.  Reported without a target:
the bias + activation kernels, a whole Linear + activation layer step fused
(``ops.linear(..., activation=...)``, what ``nn.Sequential`` runs) against
the unfused layer, and dropout.

Usage::

    python benchmarks/kernel_bandwidth.py                 # 2**26 float32 elements on cuda:0
    python benchmarks/kernel_bandwidth.py --out DIR       # JSON written to DIR/kernel_bandwidth.json
    python benchmarks/kernel_bandwidth.py --device cpu --log2n 12   # dry run of the script on NumPy

The CPU dry run only proves the script works (every composition, every
participant, the table and the JSON); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpugrad import backend  # noqa: E402
from gpugrad import kernels as K  # noqa: E402

TARGET_FRACTION = 0.85
TARGET_GELU_BACKWARD_SPEEDUP = 2.0
PARAMS = {"leaky_relu": {"negative_slope": 0.01}, "elu": {"alpha": 1.0},
          "softplus": {"beta": 1.0, "threshold": 20.0}}


# --------------------------------------------------------------------------
# Plain compositions: what a user would write without the kernels.  Each line
# is one or more separate elementwise kernels with temporaries in between.
# --------------------------------------------------------------------------
def compositions(xp, erf):
    c = 0.7071067811865476
    k = 0.3989422804014327
    k0, k1 = 0.7978845608028654, 0.044715

    def sigmoid(x):
        return 1 / (1 + xp.exp(-x))

    def gelu_tanh_backward(g, x):
        t = xp.tanh(k0 * (x + k1 * x ** 3))
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k0 * (1 + 3 * k1 * x * x))

    def mish_backward(g, x):
        t = xp.tanh(xp.log1p(xp.exp(x)))
        return g * (t + x * sigmoid(x) * (1 - t * t))

    forward = {
        "relu": lambda x: xp.maximum(x, 0),
        "leaky_relu": lambda x: xp.where(x > 0, x, x * 0.01),
        "elu": lambda x: xp.where(x > 0, x, xp.expm1(x)),
        "gelu": lambda x: 0.5 * x * (1 + erf(x * c)),
        "gelu_tanh": lambda x: 0.5 * x * (1 + xp.tanh(k0 * (x + k1 * x ** 3))),
        "silu": lambda x: x * sigmoid(x),
        "sigmoid": sigmoid,
        "tanh": xp.tanh,
        "softplus": lambda x: xp.where(x > 20, x, xp.log1p(xp.exp(x))),
        "mish": lambda x: x * xp.tanh(xp.log1p(xp.exp(x))),
    }
    # backward(g, saved): saved is x, except y for sigmoid and tanh.
    backward = {
        "relu": lambda g, x: g * (x > 0),
        "leaky_relu": lambda g, x: xp.where(x > 0, g, g * 0.01),
        "elu": lambda g, x: xp.where(x > 0, g, g * xp.exp(x)),
        "gelu": lambda g, x: g * (0.5 * (1 + erf(x * c)) + x * xp.exp(-0.5 * x * x) * k),
        "gelu_tanh": gelu_tanh_backward,
        "silu": lambda g, x: g * sigmoid(x) * (1 + x * (1 - sigmoid(x))),
        "sigmoid": lambda g, y: g * y * (1 - y),
        "tanh": lambda g, y: g * (1 - y * y),
        "softplus": lambda g, x: g * xp.where(x > 20, 1, sigmoid(x)),
        "mish": mish_backward,
    }
    return forward, backward


def torch_functions(torch):
    F = torch.nn.functional
    return {
        "relu": F.relu, "leaky_relu": F.leaky_relu, "elu": F.elu,
        "gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "silu": F.silu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
        "softplus": F.softplus, "mish": F.mish,
    }


# --------------------------------------------------------------------------
# Timing: calls queued back to back between two synchronisations, so launch
# overhead hides behind the GPU work; the median over rounds.
# --------------------------------------------------------------------------
def measure(fn, synchronize, repeat, rounds):
    fn()
    synchronize()
    per_call = []
    for _ in range(rounds):
        synchronize()
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        synchronize()
        per_call.append((time.perf_counter() - start) / repeat)
    return statistics.median(per_call)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--log2n", type=int, default=26, help="elements = 2**log2n (default 26)")
    parser.add_argument("--repeat", type=int, default=10, help="calls per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
    args = parser.parse_args(argv)

    if args.device == "cuda":
        if not backend.cuda_is_available():
            print("kernel_bandwidth: CUDA is not available (no CuPy or no GPU); "
                  "use --device cpu for a dry run", file=sys.stderr)
            return 2
        xp = backend.cupy_module()
        import cupyx.scipy.special as special  # noqa: PLC0415 - CUDA only
        synchronize = backend.cuda_synchronize
        generator = xp.random.default_rng(0)
        device_name = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)["name"]
        device_name = device_name.decode() if isinstance(device_name, bytes) else device_name
    else:
        xp = np
        import scipy.special as special  # noqa: PLC0415
        synchronize = lambda: None  # noqa: E731
        generator = np.random.default_rng(0)
        device_name = platform.processor() or "cpu"

    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: PLC0415 - optional peer
            if args.device == "cuda" and not torch.cuda.is_available():
                torch = None
        except ImportError:
            torch = None

    n = 2 ** args.log2n
    dtype = np.float32
    itemsize = np.dtype(dtype).itemsize
    x = generator.standard_normal(n, dtype=dtype) * 3
    grad = generator.standard_normal(n, dtype=dtype)
    run = lambda fn: measure(fn, synchronize, args.repeat, args.rounds)  # noqa: E731

    # Reference: a device-to-device copy reads and writes n * itemsize bytes.
    copy_out = xp.empty_like(x)
    if xp is np:
        copy_seconds = run(lambda: np.copyto(copy_out, x))
    else:
        nbytes = x.nbytes
        copy_seconds = run(lambda: xp.cuda.runtime.memcpyAsync(
            copy_out.data.ptr, x.data.ptr, nbytes, xp.cuda.runtime.memcpyDeviceToDevice,
            xp.cuda.get_current_stream().ptr))
    copy_bandwidth = 2 * n * itemsize / copy_seconds

    forward_plain, backward_plain = compositions(xp, special.erf)
    if torch is not None:
        torch_device = "cuda" if args.device == "cuda" else "cpu"
        tx = torch.as_tensor(np.asarray(backend.to_numpy(x)), device=torch_device).requires_grad_()
        tg = torch.as_tensor(np.asarray(backend.to_numpy(grad)), device=torch_device)
        torch_sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
        torch_run = lambda fn: measure(fn, torch_sync, args.repeat, args.rounds)  # noqa: E731
        torch_fns = torch_functions(torch)

    rows = []

    def row(name, kind, seconds, nbytes, plain_seconds=None, torch_seconds=None, target=True):
        fraction = nbytes / seconds / copy_bandwidth
        entry = {
            "kernel": name, "pass": kind, "seconds": seconds, "bytes": nbytes,
            "bandwidth_GBps": nbytes / seconds / 1e9, "fraction_of_copy": fraction,
            "plain_cupy_seconds": plain_seconds,
            "speedup_vs_plain": None if plain_seconds is None else plain_seconds / seconds,
            "torch_seconds": torch_seconds,
            "torch_fraction_of_copy": None if torch_seconds is None else nbytes / torch_seconds / copy_bandwidth,
            "target_fraction": TARGET_FRACTION if target else None,
        }
        status = "INFO"
        if target:
            status = "PASS" if fraction >= TARGET_FRACTION else "MISS"
        if name == "gelu" and kind == "backward":
            entry["target_speedup_vs_plain"] = TARGET_GELU_BACKWARD_SPEEDUP
            if entry["speedup_vs_plain"] < TARGET_GELU_BACKWARD_SPEEDUP:
                status = "MISS"
        entry["status"] = status
        rows.append(entry)

    mask_bytes = math.ceil(n / 8)
    for name in K.ACTIVATIONS:
        params = PARAMS.get(name, {})
        y, saved = K.activation_forward_saving(name, x, **params)
        saved_plain = y if name in K.SAVES_OUTPUT else x

        torch_forward = torch_backward = None
        if torch is not None:
            fn = torch_fns[name]
            with torch.no_grad():
                torch_forward = torch_run(lambda: fn(tx))
            ty = fn(tx)
            torch_backward = torch_run(lambda: torch.autograd.grad(ty, tx, tg, retain_graph=True))
            del ty

        row(name, "forward", run(lambda: K.activation_forward(name, x, **params)), 2 * n * itemsize,
            plain_seconds=run(lambda: forward_plain[name](x)), torch_seconds=torch_forward)
        if name in K.SAVES_MASK:
            row(name, "forward+mask", run(lambda: K.activation_forward_saving(name, x, **params)),
                2 * n * itemsize + mask_bytes)
            backward_bytes = 2 * n * itemsize + mask_bytes
        else:
            backward_bytes = 3 * n * itemsize
        row(name, "backward", run(lambda: K.activation_backward(name, grad, saved, **params)), backward_bytes,
            plain_seconds=run(lambda: backward_plain[name](grad, saved_plain)), torch_seconds=torch_backward)
        y = saved = saved_plain = None     # release this activation's arrays before the next one

    # Fused bias + activation for a Linear layer's output, and dropout: reported, no target.
    columns = 1024
    x2 = x.reshape(-1, columns)
    g2 = grad.reshape(-1, columns)
    bias = generator.standard_normal(columns, dtype=dtype)
    for name in ("relu", "gelu"):
        _, saved = K.bias_activation_forward(name, x2, bias)
        extra = mask_bytes if name in K.SAVES_MASK else 0
        row(f"{name}+bias", "forward", run(lambda: K.bias_activation_forward(name, x2, bias)),
            2 * n * itemsize + extra, plain_seconds=run(lambda: forward_plain[name](x2 + bias)), target=False)
        backward_bytes = (2 * n * itemsize + mask_bytes) if name in K.SAVES_MASK else 3 * n * itemsize
        row(f"{name}+bias", "backward", run(lambda: K.bias_activation_backward(name, g2, saved)),
            backward_bytes, target=False)
    # Linear + activation as nn.Sequential runs it: ops.linear(..., activation=name), one
    # linear_<name> node whose forward adds the bias inside gg_<name>_bias_forward(_mask),
    # against F.linear then the activation (a bias-add pass and a second node).  A whole
    # training layer (forward and backward, matmuls included) per call; "plain" is the
    # unfused layer, and the bytes are the activation's own minimum traffic (forward
    # 2n, backward 3n), so "of copy" says how much of the layer the activation costs.
    import gpugrad as gg  # noqa: PLC0415 - the op layer, above the kernels measured so far
    from gpugrad.nn import functional as F  # noqa: PLC0415
    from gpugrad.ops import activation as ops_activation  # noqa: PLC0415
    device = gg.Device("cuda:0" if args.device == "cuda" else "cpu")
    features = 64
    layer_input = gg.tensor(backend.to_numpy(generator.standard_normal((x2.shape[0], features), dtype=dtype)),
                            device=device)
    weight = gg.tensor(backend.to_numpy(generator.standard_normal((columns, features), dtype=dtype)),
                       device=device, requires_grad=True)
    layer_bias = gg.tensor(backend.to_numpy(bias), device=device, requires_grad=True)
    layer_grad = gg.tensor(backend.to_numpy(g2), device=device)

    def layer_step(fused, name):
        if fused:
            out = ops_activation.linear(layer_input, weight, layer_bias, activation=name)
        else:
            out = getattr(F, name)(F.linear(layer_input, weight, layer_bias))
        out.backward(layer_grad)
        weight.grad = layer_bias.grad = None

    for name in ("relu", "gelu"):
        row(f"linear+{name}", "fwd+bwd", run(lambda name=name: layer_step(True, name)), 5 * n * itemsize,
            plain_seconds=run(lambda name=name: layer_step(False, name)), target=False)

    dropout_generator = backend.generator(backend.Device("cuda:0") if args.device == "cuda" else backend.CPU)
    _, words = K.dropout_forward(x, 0.1, dropout_generator)
    # The forward also draws n float32 uniforms (written then read back).
    row("dropout", "forward", run(lambda: K.dropout_forward(x, 0.1, dropout_generator)),
        4 * n * itemsize + mask_bytes, target=False)
    row("dropout", "backward", run(lambda: K.dropout_backward(grad, words, 0.1)),
        2 * n * itemsize + mask_bytes, target=False)

    print_table(rows, device_name, n, copy_bandwidth, args.device)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "kernel_bandwidth.json")
    result = {
        "command": "python benchmarks/kernel_bandwidth.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": device_name, "elements": n, "dtype": np.dtype(dtype).name,
        "copy_bandwidth_GBps": copy_bandwidth / 1e9, "rows": rows,
        "all_pass": all(r["status"] != "MISS" for r in rows),
        "torch": None if torch is None else torch.__version__,
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"\nwrote {path}")
    if args.device == "cpu":
        print("(CPU dry run: figures are meaningless, only the script was exercised)")
    return 0 if result["all_pass"] or args.device == "cpu" else 1


def print_table(rows, device_name, n, copy_bandwidth, device):
    def fmt(value, pattern):
        return "-" if value is None else pattern.format(value)

    print(f"Activation kernels on {device_name} ({device}), {n} float32 elements; "
          f"copy {copy_bandwidth / 1e9:.0f} GB/s")
    header = ("kernel", "pass", "us", "GB/s", "of copy", "plain CuPy us", "speedup", "torch of copy", "status")
    widths = (14, 13, 9, 8, 8, 14, 8, 14, 7)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        cells = (r["kernel"], r["pass"], fmt(r["seconds"] * 1e6, "{:.1f}"), fmt(r["bandwidth_GBps"], "{:.0f}"),
                 fmt(r["fraction_of_copy"], "{:.2f}"), fmt(r["plain_cupy_seconds"] and r["plain_cupy_seconds"] * 1e6,
                                                            "{:.1f}"),
                 fmt(r["speedup_vs_plain"], "{:.2f}x"), fmt(r["torch_fraction_of_copy"], "{:.2f}"), r["status"])
        print("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)))


if __name__ == "__main__":
    sys.exit(main())

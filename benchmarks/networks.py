"""Training steps of real networks, gpugrad against PyTorch with the same weights and data.

The networks are the ones users run: the README main job's four MNIST-1D
models (``examples/mnist1d.py``: logistic regression, the MLP, the batch-norm
1-D CNN and the GRU; batch 100, AdamW, cross-entropy), the Conv2d network of
``examples/digits_conv2d.py`` (batch 32, Adam) and one small transformer block
written as users write it (token embedding plus learned positions,
``nn.MultiheadAttention`` with a causal mask, two ``nn.LayerNorm``, a GELU MLP,
a linear head; next-token cross-entropy, AdamW).

How each benchmark is made the same on both sides: the PyTorch model is built
under ``torch.manual_seed(0)`` and its state dict is loaded into the gpugrad
model (the layers' names match PyTorch's), and the batch is one fixed NumPy
array.  A step is ``zero_grad``, forward, loss, ``backward``, optimizer step,
on the same batch every time.  The participants' snapshots are the gradients
the step leaves, all parameters' in one vector, so the suite's agreement
check compares gradients relative to the largest one (Adam's first update,
``lr * g / (|g| + eps)``, would turn float32 rounding of a near-zero
gradient into a full-size difference, and a convolution's bias before a batch
norm has a gradient that is zero up to rounding).

Peak memory per step (:func:`peak_step_memory`): gpugrad on NumPy is measured
with :mod:`tracemalloc`, which sees every NumPy data buffer (NumPy reports
them to it); gpugrad on CuPy with the default memory pool (as the suite's CUDA
table does); PyTorch on the CPU with its own profiler's memory events
(``profile_memory=True``: every allocation and free of the CPU allocator, with
the running total, whose high-water mark above the level at the start of the
step is the figure).  Both are the growth above what was alive before the
step (parameters, optimizer state, the batch), after warm-up steps.
"""

from __future__ import annotations

import json
import os
import tempfile
import tracemalloc

import numpy as np

from .peers import PeerUnavailable
from .timing import Participant

BATCH = 100
LENGTH = 40
CLASSES = 10


# --------------------------------------------------------------------------
# The models, written once per library with the same layer names.
# --------------------------------------------------------------------------
def _mnist1d_models(nn, library):
    """``build(name)`` for the four MNIST-1D models of examples/mnist1d.py in ``library``'s nn."""

    class ConvNet(nn.Module):
        def __init__(self, channels=(16, 32, 64), classes=CLASSES):
            super().__init__()
            c1, c2, c3 = channels
            self.features = nn.Sequential(
                nn.Conv1d(1, c1, kernel_size=5, padding=2), nn.BatchNorm1d(c1), nn.GELU(), nn.MaxPool1d(2),
                nn.Conv1d(c1, c2, kernel_size=3, padding=1), nn.BatchNorm1d(c2), nn.GELU(), nn.MaxPool1d(2),
                nn.Conv1d(c2, c3, kernel_size=3, padding=1), nn.BatchNorm1d(c3), nn.GELU(),
            )
            self.head = nn.Linear(c3, classes)

        def forward(self, x):
            return self.head(self.features(x.unsqueeze(1)).mean(dim=2))

    class GRUNet(nn.Module):
        def __init__(self, hidden=32, length=LENGTH, classes=CLASSES):
            super().__init__()
            self.gru = nn.GRU(1, hidden, batch_first=True)
            self.head = nn.Linear(hidden * length, classes)

        def forward(self, x):
            outputs, _ = self.gru(x.unsqueeze(2))
            return self.head(outputs.flatten(1))

    def build(name):
        if name == "logistic":
            return nn.Linear(LENGTH, CLASSES)
        if name == "mlp":
            return nn.Sequential(nn.Linear(LENGTH, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
                                 nn.Linear(100, CLASSES))
        if name == "cnn":
            return ConvNet()
        if name == "gru":
            return GRUNet()
        if name == "digits":
            return nn.Sequential(
                nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(32 * 2 * 2, CLASSES))
        if name == "transformer":
            return TransformerBlock()
        raise ValueError(f"unknown network {name!r}")

    class TransformerBlock(nn.Module):
        """A pre-norm decoder block over tokens, as users write one."""

        def __init__(self, vocab=TOKENS, width=64, heads=4, context=CONTEXT):
            super().__init__()
            self.embed = nn.Embedding(vocab, width)
            self.position = nn.Embedding(context, width)
            self.norm1 = nn.LayerNorm(width)
            self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
            self.norm2 = nn.LayerNorm(width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
            self.head = nn.Linear(width, vocab)

        def forward(self, tokens, positions, causal):
            x = self.embed(tokens) + self.position(positions)
            h = self.norm1(x)
            attended, _ = self.attention(h, h, h, attn_mask=causal, need_weights=False)
            x = x + attended
            x = x + self.mlp(self.norm2(x))
            return self.head(x)

    return build


TOKENS = 64
CONTEXT = 32
TRANSFORMER_BATCH = 16

# key: (title, optimizer, learning rate, weight decay)
NETWORKS = {
    "net_logistic": ("logistic", "MNIST-1D logistic regression step: Linear(40, 10), batch 100, AdamW, CE"),
    "net_mlp": ("mlp", "MNIST-1D MLP step: 40-100-100-10 ReLU, batch 100, AdamW, CE"),
    "net_cnn": ("cnn", "MNIST-1D BN-CNN step: 3x (Conv1d, BatchNorm1d, GELU), 2 max-pools, mean, Linear; "
                       "batch 100, AdamW, CE"),
    "net_gru": ("gru", "MNIST-1D GRU step: GRU(1, 32) over 40 steps, Linear(1280, 10), batch 100, AdamW, CE"),
    "net_digits": ("digits", "8x8 digits Conv2d step: 2x (Conv2d 3x3, ReLU, MaxPool2d 2), Linear; batch 32, "
                             "Adam, CE"),
    "net_transformer": ("transformer", f"Transformer block step: embedding {TOKENS}x64 + positions, 4-head "
                                       f"causal MultiheadAttention, 2 LayerNorm, GELU MLP 256, head; "
                                       f"batch {TRANSFORMER_BATCH} x {CONTEXT} tokens, AdamW, next-token CE"),
}


def _data(name):
    """The fixed batch of ``name``: (inputs, labels) as NumPy arrays."""
    rng = np.random.default_rng(0)
    if name == "digits":
        return rng.standard_normal((32, 1, 8, 8)).astype(np.float32), rng.integers(0, CLASSES, 32)
    if name == "transformer":
        tokens = rng.integers(0, TOKENS, (TRANSFORMER_BATCH, CONTEXT + 1))
        return tokens[:, :-1], tokens[:, 1:]
    return rng.standard_normal((BATCH, LENGTH)).astype(np.float32), rng.integers(0, CLASSES, BATCH)


def _recipe(name):
    """(optimizer name, keyword arguments) of the example that trains ``name``."""
    if name == "digits":
        return "Adam", {"lr": 3e-3}
    return "AdamW", {"lr": 1e-2, "weight_decay": 1e-2 if name == "logistic" else 0.05}


def _torch_state(name):
    import torch

    torch.manual_seed(0)
    model = _mnist1d_models(torch.nn, "torch")(name)
    return model, {key: value.detach().numpy().copy() for key, value in model.state_dict().items()}


class NetworkUnavailable(PeerUnavailable):
    """The library (or a layer the network needs) is missing here."""


def torch_network(name, device="cpu"):
    """The PyTorch participant of network ``name`` (the reference weights are built here)."""
    try:
        import torch
    except ImportError as error:
        raise NetworkUnavailable(f"torch not installed ({error})") from None
    model, _ = _torch_state(name)
    model = model.to(device)
    optimizer_name, options = _recipe(name)
    optimizer = getattr(torch.optim, optimizer_name)(model.parameters(), **options)
    inputs, labels = _data(name)
    x = torch.from_numpy(inputs).to(device)
    y = torch.from_numpy(labels).to(device)
    loss_function = torch.nn.CrossEntropyLoss()
    if name == "transformer":
        positions = torch.arange(CONTEXT, device=device)
        causal = torch.triu(torch.ones(CONTEXT, CONTEXT, dtype=torch.bool, device=device), diagonal=1)

        def loss_of():
            return loss_function(model(x, positions, causal).reshape(-1, TOKENS), y.reshape(-1))
    else:
        def loss_of():
            return loss_function(model(x), y)

    def step():
        optimizer.zero_grad()
        loss = loss_of()
        loss.backward()
        optimizer.step()

    def snapshot():
        return {"gradients": np.concatenate([value.grad.detach().cpu().numpy().ravel()
                                             for _, value in model.named_parameters()])}

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return Participant("torch", step, sync, snapshot)


def gpugrad_network(name, device="cpu"):
    """The gpugrad participant of network ``name``, with PyTorch's initial weights."""
    import gpugrad as gg
    from gpugrad import nn

    try:
        _, state = _torch_state(name)
    except ImportError as error:
        raise NetworkUnavailable(f"the reference weights come from torch, which is not installed ({error})") \
            from None
    model = _mnist1d_models(nn, "gpugrad")(name)
    model.load_state_dict(state)
    model = model.to(device)
    optimizer_name, options = _recipe(name)
    optimizer = getattr(gg.optim, optimizer_name)(model.parameters(), **options)
    inputs, labels = _data(name)
    x = gg.tensor(inputs, device=device)
    y = gg.tensor(labels, device=device)
    loss_function = nn.CrossEntropyLoss()
    if name == "transformer":
        positions = gg.arange(CONTEXT, device=device)
        causal = gg.tensor(np.triu(np.ones((CONTEXT, CONTEXT), dtype=bool), k=1), device=device)

        def loss_of():
            return loss_function(model(x, positions, causal).reshape(-1, TOKENS), y.reshape(-1))
    else:
        def loss_of():
            return loss_function(model(x), y)

    def step():
        optimizer.zero_grad()
        loss = loss_of()
        loss.backward()
        optimizer.step()

    def snapshot():
        return {"gradients": np.concatenate([np.asarray(gg.backend.to_numpy(value.grad.array)).ravel()
                                             for _, value in model.named_parameters()])}

    sync = gg.cuda.synchronize if device == "cuda" else (lambda: None)
    return Participant("gpugrad", step, sync, snapshot)


# --------------------------------------------------------------------------
# Peak memory of one step.
# --------------------------------------------------------------------------
def _numpy_peak(step):
    """Bytes the step allocated above what was alive before it, at its high-water mark (tracemalloc)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if started:
            tracemalloc.stop()
    return peak - before


def _cupy_peak(step, sync):
    import cupy

    pool = cupy.get_default_memory_pool()
    sync()
    pool.free_all_blocks()
    before = pool.used_bytes()
    step()
    sync()
    return pool.total_bytes() - before


def _torch_cpu_peak(step):
    """High-water mark of PyTorch's CPU allocator during ``step``, from its profiler's memory events."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as recorded:
        step()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        recorded.export_chrome_trace(path)
        with open(path, encoding="utf-8") as handle:
            events = json.load(handle)["traceEvents"]
    del torch
    level = peak = 0
    for event in sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"]):
        level += int(event["args"]["Bytes"])
        peak = max(peak, level)
    return peak


def peak_step_memory(name, device="cpu"):
    """Peak bytes of one training step of ``name``: ``{"gpugrad_bytes", "torch_bytes", "ratio", "method"}``."""
    ours = gpugrad_network(name, device)
    theirs = torch_network(name, device)
    for _ in range(2):
        ours.step()
        theirs.step()
    if device == "cuda":
        import torch

        gpugrad_bytes = _cupy_peak(ours.step, ours.sync)
        torch.cuda.synchronize()
        level = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        theirs.step()
        torch.cuda.synchronize()
        torch_bytes = torch.cuda.max_memory_allocated() - level
        method = "CuPy pool growth / torch.cuda.max_memory_allocated"
    else:
        gpugrad_bytes = _numpy_peak(ours.step)
        torch_bytes = _torch_cpu_peak(theirs.step)
        method = "tracemalloc peak / torch profiler memory events (running total's peak)"
    return {"gpugrad_bytes": int(gpugrad_bytes), "torch_bytes": int(torch_bytes),
            "ratio": gpugrad_bytes / torch_bytes if torch_bytes else None, "method": method}

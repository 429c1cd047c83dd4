"""Move a trained gpugrad model's weights to PyTorch and back, by state-dict name.

gpugrad's layers use PyTorch's parameter and buffer names and layouts
(``0.weight`` of a Linear is ``(out_features, in_features)``, BatchNorm keeps
``running_mean``, ``running_var`` and ``num_batches_tracked``), so a state
dict crosses over with one array conversion per entry, and the two models
then compute the same outputs.  For zero-copy exchange of single tensors,
DLPack works in both directions.

Run::

    python examples/torch_interop.py [--quick]

Without PyTorch installed the example says so and exits cleanly.
"""

from __future__ import annotations

import argparse
import os
import sys

# Small matrices: one BLAS thread is as fast as two, and much faster on a busy
# machine (see mnist1d.py).  Set before NumPy loads; the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import gpugrad as gg
from gpugrad import nn


def gpugrad_model():
    return nn.Sequential(
        nn.Conv1d(1, 8, kernel_size=3, padding=1), nn.BatchNorm1d(8), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 16, 32), nn.GELU(), nn.Linear(32, 3),
    )


def torch_model(torch):
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv1d(1, 8, kernel_size=3, padding=1), tnn.BatchNorm1d(8), tnn.ReLU(), tnn.Flatten(),
        tnn.Linear(8 * 16, 32), tnn.GELU(), tnn.Linear(32, 3),
    )


def to_torch_state(state, torch):
    """gpugrad state dict -> PyTorch state dict (host copies; names unchanged)."""
    return {name: torch.from_numpy(np.array(tensor.numpy())) for name, tensor in state.items()}


def from_torch_state(state):
    """PyTorch state dict -> gpugrad state dict."""
    return {name: gg.tensor(tensor.detach().cpu().numpy()) for name, tensor in state.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description="gpugrad <-> PyTorch weights by state-dict name")
    parser.add_argument("--quick", action="store_true", help="fewer training steps")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: skipping the interop demo (pip install torch to run it).")
        return 0

    gg.manual_seed(0)
    # A toy task: which third of the signal holds the bump?
    n, length = 600, 16
    positions = gg.randint(0, 3, (n,))
    grid = gg.arange(length).float()
    centres = positions.float() * (length / 3) + length / 6
    signals = (-((grid[None, :] - centres[:, None]) ** 2) / 4).exp() + 0.8 * gg.randn(n, length)
    loader = gg.data.DataLoader(gg.data.TensorDataset(signals.unsqueeze(1), positions), batch_size=50,
                                shuffle=True, seed=0)

    model = gpugrad_model()
    optimizer = gg.optim.Adam(model.parameters(), lr=1e-2)
    history = gg.train.fit(model, optimizer, nn.CrossEntropyLoss(), loader, epochs=1 if args.quick else 8,
                           progress=False)
    print(f"gpugrad model trained: loss {history['loss'][-1]:.3f}, accuracy {history['accuracy'][-1]:.3f}")

    # gpugrad -> PyTorch, by name.
    state = model.state_dict()
    twin = torch_model(torch)
    twin.load_state_dict(to_torch_state(state, torch), strict=True)
    print(f"copied {len(state)} entries to PyTorch: {', '.join(state)}")
    model.eval()
    twin.eval()
    probe = signals[:100].unsqueeze(1)
    ours = model(probe).detach().numpy()
    theirs = twin(torch.from_numpy(probe.numpy())).detach().numpy()
    gap = float(np.abs(ours - theirs).max())
    print(f"eval-mode outputs, gpugrad vs PyTorch: max |difference| = {gap:.2e}")
    assert gap < 1e-4, gap

    # PyTorch -> gpugrad: a few PyTorch training steps, then bring the weights back.
    twin.train()
    torch_optimizer = torch.optim.SGD(twin.parameters(), lr=0.05)
    for x, y in loader:
        torch_optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x.numpy())), torch.from_numpy(y.numpy()))
        loss.backward()
        torch_optimizer.step()
    model.load_state_dict(from_torch_state(twin.state_dict()))
    model.eval()
    twin.eval()
    gap = float(np.abs(model(probe).detach().numpy() - twin(torch.from_numpy(probe.numpy())).detach().numpy()).max())
    print(f"after training in PyTorch and copying back: max |difference| = {gap:.2e}")
    assert gap < 1e-4, gap

    # Single tensors without a copy, through DLPack (CPU here; GPU tensors work alike).
    shared = torch.from_dlpack(signals)
    back = gg.from_dlpack(torch.arange(4.0))
    print(f"DLPack: torch sees a {tuple(shared.shape)} tensor sharing gpugrad's memory; "
          f"gpugrad sees {back.numpy().tolist()} from torch")
    return 0


if __name__ == "__main__":
    main()

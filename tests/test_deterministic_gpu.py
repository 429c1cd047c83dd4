"""On a real card: deterministic mode gives the same bits run after run (benchmarks/gpu_check.sh runs this).

Skips on the CPU and on the CuPy stand-in (which is sequential NumPy, so any
two runs agree there and the check would prove nothing).
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn


@pytest.fixture
def card(device, real_gpu):
    if device != "cuda":
        pytest.skip("a bitwise run-to-run check of GPU atomics needs CUDA")
    yield device
    gg.use_deterministic_algorithms(False)


def _backward(device, seed):
    """Gradients of scatter-heavy ops, sized so that atomics really race (many repeats of few rows)."""
    rng = np.random.default_rng(seed)
    idx = gg.tensor(rng.integers(0, 64, size=200_000), device=device)
    weight = gg.tensor(rng.standard_normal((64, 128)).astype(np.float32), device=device, requires_grad=True)
    upstream = gg.tensor(rng.standard_normal((200_000, 128)).astype(np.float32), device=device)
    (nn.functional.embedding(idx, weight) * upstream).sum().backward()
    x = gg.tensor(rng.standard_normal((64, 256)).astype(np.float32), device=device, requires_grad=True)
    (x[idx[:50_000]] * upstream[:50_000].repeat(1, 2)).sum().backward()
    added = gg.zeros(64, 128, device=device).index_add(0, idx, upstream)
    gg.cuda.synchronize()
    return [weight.grad.numpy(), x.grad.numpy(), added.numpy()]


def test_deterministic_mode_gives_identical_bits_on_the_card(card):
    gg.use_deterministic_algorithms(True)
    first = _backward(card, 0)
    for _ in range(2):
        again = _backward(card, 0)
        for a, b in zip(first, again):
            assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    reference = _backward("cpu", 0)
    for ours, cpu in zip(first, reference):
        np.testing.assert_allclose(ours, cpu, rtol=1e-3, atol=1e-2)

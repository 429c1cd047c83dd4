"""Numerical safety: large inputs stay finite and float16 reductions accumulate in float32."""

import numpy as np
import pytest

import gpugrad as gg

BIG = np.array([[1e4, -1e4, 3.0, 0.0], [-1e4, -1e4 + 1.0, 2e3, 5.0]])


def _float64_reference(function):
    return function(gg.tensor(BIG, dtype=gg.float64)).numpy()


@pytest.mark.parametrize("name, function", [
    ("logsumexp", lambda x: x.logsumexp(dim=1)),
    ("log_softmax", lambda x: x.log_softmax(dim=1)),
    ("softmax", lambda x: x.softmax(dim=1)),
    ("sigmoid", lambda x: x.sigmoid()),
    ("norm", lambda x: x.norm(dim=1)),
    ("tanh", lambda x: x.tanh()),
])
def test_large_float32_inputs_stay_finite_and_match_float64(name, function, device):
    x = gg.tensor(BIG, dtype=gg.float32, device=device, requires_grad=True)
    out = function(x)
    assert np.isfinite(out.numpy()).all(), name
    np.testing.assert_allclose(out.numpy(), _float64_reference(function), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert np.isfinite(x.grad.numpy()).all(), name


def test_float16_sums_accumulate_in_float32(device):
    x = gg.full((4096,), 0.1, dtype=gg.float16, device=device)
    total = x.sum()
    assert total.dtype == gg.float16
    # A float16 running sum would stall near 256; float32 accumulation gets ~409.6.
    assert abs(float(total) - 409.6) < 1.0
    assert abs(float(x.mean()) - 0.1) < 1e-3
    assert abs(float(gg.full((2048,), 0.5, dtype=gg.float16, device=device).norm()) - np.sqrt(2048 * 0.25)) < 0.1

"""The op battery: every registered op, on every device, checked the same way.

For each op in ``gpugrad.ops.OPS`` and each sample it declares:

* its forward agrees with an independent NumPy reference;
* reverse mode (VJP) and forward mode (JVP) agree with central differences
  in float64 (``gg.gradcheck``);
* second derivatives agree too (``gg.gradgradcheck``), which exercises the
  VJP rules as recorded, differentiable graphs.

A new op joins the battery by being registered with samples.
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import backend
from gpugrad.ops import OPS
from gpugrad.ops.samples import is_array_spec, make_array

CASES = [pytest.param(name, k, id=f"{name}-{k}") for name, op in sorted(OPS.items()) for k in range(len(op.samples))]
DIFFERENTIABLE = [pytest.param(name, k, id=f"{name}-{k}") for name, op in sorted(OPS.items())
                  if op.differentiable for k in range(len(op.samples))]
SECOND_ORDER = [pytest.param(name, k, id=f"{name}-{k}") for name, op in sorted(OPS.items())
                if op.differentiable and op.second_order for k in range(len(op.samples))]


def _on_device(value, device):
    if isinstance(value, np.ndarray):
        return backend.to_device(value, backend.Device(device))
    if isinstance(value, tuple):
        return tuple(_on_device(v, device) for v in value)
    return value


def build(name, k, device, seed=0):
    """The op, its positional inputs (tensors on ``device``) and its parameters."""
    op = OPS[name]
    sample = op.samples[k]
    rng = np.random.default_rng(seed + 31 * k)
    arrays = [make_array(spec, rng) for spec in sample.args]
    inputs = [gg.tensor(a, device=device) if is_array_spec(spec) else a for spec, a in zip(sample.args, arrays)]
    params = {key: _on_device(value, device) for key, value in sample.params.items()}
    return op, inputs, arrays, params


def test_every_op_declares_samples_and_reference():
    missing = [name for name, op in OPS.items() if not op.samples or op.reference is None]
    assert not missing, f"ops without samples or a NumPy reference: {missing}"


@pytest.mark.parametrize("name,k", CASES)
def test_forward_matches_numpy(name, k, device):
    op, inputs, arrays, params = build(name, k, device)
    numpy_params = {key: value for key, value in op.samples[k].params.items()}
    expected = op.reference(*arrays, **numpy_params)
    got = op.function(*inputs, **params)
    assert isinstance(got, gg.Tensor)
    np.testing.assert_allclose(got.numpy(), np.asarray(expected), rtol=1e-6, atol=1e-9)
    # On the input's device, unless the op is told where to put it (to_device's sample: the CPU).
    assert got.device == gg.Device(params.get("device", device))


@pytest.mark.parametrize("name,k", DIFFERENTIABLE)
def test_first_order_reverse_and_forward(name, k, device):
    op, inputs, _, params = build(name, k, device)
    tolerance = op.tolerance or {}
    assert gg.gradcheck(lambda *xs: op.function(*xs, **params), inputs, **tolerance)


@pytest.mark.parametrize("name,k", SECOND_ORDER)
def test_second_order(name, k, device):
    op, inputs, _, params = build(name, k, device)
    tolerance = op.tolerance or {}
    assert gg.gradgradcheck(lambda *xs: op.function(*xs, **params), inputs, **tolerance)


@pytest.mark.parametrize("name,k", DIFFERENTIABLE)
def test_float32_backward_keeps_dtype(name, k, device):
    """Gradients come back in each input's dtype (float32 stays float32)."""
    op, inputs, _, params = build(name, k, device)
    inputs = [x.float().requires_grad_() if isinstance(x, gg.Tensor) and x.dtype.kind == "f" else x for x in inputs]
    out = op.function(*inputs, **params)
    if not out.requires_grad:
        pytest.skip("no differentiable input in this sample")
    out.sum().backward()
    for x in inputs:
        if isinstance(x, gg.Tensor) and x.requires_grad:
            assert x.grad is not None and x.grad.dtype == gg.float32 and x.grad.shape == x.shape

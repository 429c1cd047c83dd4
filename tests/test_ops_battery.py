"""The op battery: every registered op, on every device, checked the same way.

For each op in ``gpugrad.ops.OPS`` and each sample it declares:

* its forward agrees with an independent NumPy reference;
* reverse mode (VJP) and forward mode (JVP) agree with central differences
  in float64 (``gg.gradcheck``);
* second derivatives agree too (``gg.gradgradcheck``), which exercises the
  VJP rules as recorded, differentiable graphs;
* every way a user reaches the op (the ``gg.`` function, the Tensor method,
  the Python operator, ``gg.nn.functional``, the ``nn`` layer: the table in
  ``tests/op_entry_points.py``) gives the values and gradients of the general
  path, ``apply_op`` on the declaration.

A new op joins the battery by being registered with samples.
"""

import numpy as np
import pytest
from op_entry_points import EXPLICIT, NOT_ROUTES, entry_points, inexpressible, public_entry_points

import gpugrad as gg
from gpugrad import backend
from gpugrad.ops import OPS, apply_op
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
    inputs = [gg.tensor(a, device=device) if is_array_spec(spec) else a
              for spec, a in zip(sample.args, arrays, strict=True)]
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


# --------------------------------------------------------------------------
# Every entry point: gg., Tensor methods, operators, F., nn layers (tests/op_entry_points.py).
# --------------------------------------------------------------------------
ROUTES = entry_points()
ROUTE_CASES = [pytest.param(name, k, id=f"{name}-{k}")
               for name in sorted(ROUTES) for k in range(len(OPS[name].samples))]


def test_every_public_entry_point_has_a_route():
    """A public way to reach an op (by its name, or an object that is the op) without a route fails here."""
    public = public_entry_points()
    covered = {name: {route.label for route in routes} for name, routes in ROUTES.items()}
    missing = sorted(f"{label} ({name})" for name, labels in public.items() for label in labels
                     if label not in covered.get(name, set()) and (name, label) not in NOT_ROUTES)
    assert not missing, f"entry points the battery does not run (add them to tests/op_entry_points.py): {missing}"


def test_route_table_names_real_ops_and_entry_points():
    """The explicit table cannot rot: every op it names exists, and so does every attribute a label names."""
    assert set(EXPLICIT) <= set(OPS), sorted(set(EXPLICIT) - set(OPS))
    for routes in EXPLICIT.values():
        for route in routes:
            namespace, _, attribute = route.label.partition("(")[0].partition(".")
            if namespace in ("gg", "F", "Tensor", "nn"):
                owner = {"gg": gg, "F": gg.nn.functional, "Tensor": gg.Tensor, "nn": gg.nn}[namespace]
                assert hasattr(owner, attribute), route.label


def _leaves(arrays, sample, device, dtype_of=None):
    """Fresh inputs for one call: float array inputs are leaves that require grad."""
    inputs = []
    for spec, array in zip(sample.args, arrays, strict=True):
        if not is_array_spec(spec):
            inputs.append(array)
            continue
        tensor = gg.tensor(array, device=device)
        if tensor.dtype.kind == "f":
            tensor.requires_grad_()
        inputs.append(tensor)
    return inputs


# Ops whose user-facing route records a sibling op's node by design: F.max_pool2d records
# max_pool2d_gather (the output is the gather of the input at the winners), so the tape keeps
# the int8 winners instead of the pre-pool activation.  Values and gradients are still compared
# with the general path below.
RECORDED_AS = {"max_pool2d": ("max_pool2d_gather",)}


def _graph_contains(result, op):
    """Whether ``op`` (or the sibling it is recorded as) has a node in ``result``'s graph."""
    from gpugrad.ops.registry import OPS

    accepted = {op} | {OPS[name] for name in RECORDED_AS.get(op.name, ())}
    pending, seen = [result.grad_fn], set()
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if getattr(node, "op", None) in accepted:
            return True
        pending.extend(edge[0] for edge in (getattr(node, "next_edges", None) or ()) if edge is not None)
    return False


def _gradients(result, inputs, sources, cotangent):
    if not result.requires_grad:
        return None
    result.backward(cotangent)
    return [None if (tensor := sources.get(position, x)) is None or not isinstance(tensor, gg.Tensor)
            or tensor.grad is None else tensor.grad.numpy() for position, x in enumerate(inputs)]


@pytest.mark.parametrize("name,k", ROUTE_CASES)
def test_every_entry_point_matches_the_general_path(name, k, device):
    """Each route gives the values, dtype and gradients of ``apply_op`` on the declaration."""
    op = OPS[name]
    sample = op.samples[k]
    rng = np.random.default_rng(31 * k)
    arrays = [make_array(spec, rng) for spec in sample.args]
    params = {key: _on_device(value, device) for key, value in sample.params.items()}
    reference_inputs = _leaves(arrays, sample, device)
    expected = apply_op(op, tuple(reference_inputs), params)
    cotangent = gg.tensor(rng.standard_normal(tuple(expected.shape)), device=expected.device).to(expected.dtype) \
        if expected.dtype.kind == "f" else None
    expected_grads = None
    ran = []
    for route in ROUTES[name]:
        inputs = _leaves(arrays, sample, device)
        if route.applies is not None and not route.applies(inputs, dict(params), expected):
            continue
        result = route.call(inputs, dict(params))
        result, sources = result if isinstance(result, tuple) else (result, {})
        ran.append(route.label)
        where = f"{name} sample {k} through {route.label}"
        if route.own_params:
            # Random parameters (a dropout mask) the route drew itself: the general path runs with them.
            assert result.grad_fn is not None and result.grad_fn.op is op, where
            route_inputs = _leaves(arrays, sample, device)
            reference = apply_op(op, tuple(route_inputs), result.grad_fn.params)
            reference_grads = _gradients(reference, route_inputs, {}, cotangent)
        else:
            reference = expected
            if expected_grads is None and cotangent is not None and expected.requires_grad:
                expected_grads = _gradients(expected, reference_inputs, {}, cotangent)
            reference_grads = expected_grads
        assert isinstance(result, gg.Tensor), where
        assert result.device == reference.device and result.dtype == reference.dtype, \
            f"{where}: {result.device}/{result.dtype} != {reference.device}/{reference.dtype}"
        assert tuple(result.shape) == tuple(reference.shape), where
        np.testing.assert_allclose(result.numpy(), reference.numpy(), rtol=1e-12, atol=1e-12, err_msg=where)
        if cotangent is None or not op.differentiable:
            continue
        assert result.requires_grad == reference.requires_grad, where
        assert _graph_contains(result, op), f"{where}: the result's graph has no '{name}' node"
        got = _gradients(result, inputs, sources, cotangent)
        for position, (g, e) in enumerate(zip(got or [], reference_grads or [], strict=True)):
            assert (g is None) == (e is None), f"{where}: input {position} gradient {g is None} vs {e is None}"
            if g is not None:
                np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12, err_msg=f"{where}: input {position}")
    assert bool(ran) != inexpressible(name, k, device), \
        f"{name} sample {k}: routes run {ran}, listed as inexpressible: {inexpressible(name, k, device)}"

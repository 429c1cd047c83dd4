"""Hypothesis properties and fuzzing: random broadcastable shapes, random programs.

Every generated program's gradient must match central differences in float64,
and (where a GPU is present) its CPU and GPU results must agree.  CI runs a
bounded number of examples; set ``GPUGRAD_FUZZ_EXAMPLES=2000`` for a longer run.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gpugrad as gg

EXAMPLES = int(os.environ.get("GPUGRAD_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 0.5),
    "maximum": lambda a, b: gg.maximum(a, b + 0.123),
    "where": lambda a, b: gg.where(a > b, a * 2, b),
}
UNARY = {
    "tanh": lambda x: x.tanh(),
    "exp": lambda x: (x * 0.3).exp(),
    "sin": lambda x: x.sin(),
    "sigmoid": lambda x: x.sigmoid(),
    "square": lambda x: x * x,
    "log": lambda x: (x * x + 1).log(),
    "sum_last": lambda x: x.sum(dim=-1, keepdim=True) if x.ndim else x,
    "mean_first": lambda x: x.mean(dim=0, keepdim=True) if x.ndim else x,
    "logsumexp": lambda x: x.logsumexp(dim=-1, keepdim=True) if x.ndim else x,
    "softmax": lambda x: x.softmax(dim=-1) if x.ndim else x,
    "flip": lambda x: x.flip(-1) if x.ndim else x,
    "abs_shift": lambda x: (x + 0.0371).abs(),
}

shape_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)


@SETTINGS
@given(shapes=shape_pairs, op_name=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**16))
def test_binary_ops_broadcast_like_numpy_and_gradients_match(shapes, op_name, seed):
    rng = np.random.default_rng(seed)
    a_np = rng.standard_normal(shapes.input_shapes[0])
    b_np = rng.standard_normal(shapes.input_shapes[1])
    a, b = gg.tensor(a_np), gg.tensor(b_np)
    out = BINARY[op_name](a, b)
    assert out.shape == shapes.result_shape
    assert gg.gradcheck(BINARY[op_name], [a, b], check_forward=True)


program_steps = st.lists(
    st.tuples(st.sampled_from(sorted(UNARY) + sorted(BINARY)), st.integers(0, 10)), min_size=1, max_size=6)


def _assume_well_scaled(out):
    """Central differences are only a reference where the output is moderate:
    exp(x**4) at x = -2.8 is 1.5e25, and the cotangent-weighted sum that
    gradcheck differentiates then cancels away every other element's digits."""
    values = out.detach().numpy()
    assume(np.all(np.isfinite(values)) and np.all(np.abs(values) < 1e6))


def _central_difference_roundoff(out, step=1e-6):
    """The absolute error rounding alone puts in a float64 central difference of ``out.sum()``:
    each of f(x+h), f(x-h) is off by a few ulps of sum|out|, divided by 2h.  With outputs
    summing to 1.5e6 that is ~1.5e-4 (seen: reverse mode equal to PyTorch's to the bit, the
    difference 1.5e-4 away); 16 ulps cover the programs' up to six rounded steps."""
    total = float(np.abs(out.detach().numpy().astype(np.float64)).sum())
    return 16 * np.finfo(np.float64).eps * total / (2 * step)


def run_program(steps, inputs):
    """Apply a list of (op, operand choice) steps to a pool of tensors; return a scalar-able tensor."""
    pool = list(inputs)
    for name, choice in steps:
        current = pool[-1]
        if name in UNARY:
            pool.append(UNARY[name](current))
        else:
            other = pool[choice % len(pool)]
            pool.append(BINARY[name](current, other))
    return pool[-1]


@SETTINGS
@given(shapes=shape_pairs, steps=program_steps, seed=st.integers(0, 2**16))
def test_random_programs_match_numerical_gradients(shapes, steps, seed):
    rng = np.random.default_rng(seed)
    inputs = [gg.tensor(rng.standard_normal(s)) for s in shapes.input_shapes]
    _assume_well_scaled(run_program(steps, inputs))
    assert gg.gradcheck(lambda *xs: run_program(steps, xs), inputs, atol=1e-5, rtol=1e-3)


@SETTINGS
@given(shapes=shape_pairs, steps=program_steps, seed=st.integers(0, 2**16),
       dtype=st.sampled_from(["float32", "float64"]))
# Outputs summing to 1.5e6: the numerical reference is off by rounding, reverse mode is not.
@example(shapes=hnp.BroadcastableShapes(input_shapes=((3, 1, 1), (3,)), result_shape=(3, 1, 3)),
         steps=[("add", 1), ("div", 0), ("square", 0), ("exp", 0)], seed=1154, dtype="float64")
def test_random_programs_reverse_mode_against_numerical_grad(shapes, steps, seed, dtype):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes.input_shapes]
    inputs = [gg.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    out = run_program(steps, inputs)
    _assume_well_scaled(out)
    out.sum().backward()
    numeric = gg.numerical_grad(lambda *xs: run_program(steps, xs), [x.detach() for x in inputs])
    tolerance = 1e-3 if dtype == "float32" else 1e-6
    atol = tolerance + _central_difference_roundoff(out)
    for x, expected in zip(inputs, numeric, strict=True):
        got = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
        if x.grad is not None:
            assert x.grad.dtype == x.dtype
        np.testing.assert_allclose(got, expected.numpy(), rtol=tolerance * 10, atol=atol)


@pytest.mark.skipif(not gg.cuda.is_available(), reason="CPU/GPU agreement needs a GPU")
@SETTINGS
@given(shapes=shape_pairs, steps=program_steps, seed=st.integers(0, 2**16))
def test_random_programs_agree_between_cpu_and_gpu(shapes, steps, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes.input_shapes]
    results = []
    for device in ("cpu", "cuda"):
        inputs = [gg.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = run_program(steps, inputs)
        out.sum().backward()
        results.append([out.numpy()] + [np.zeros(x.shape) if x.grad is None else x.grad.numpy() for x in inputs])
    for cpu_value, gpu_value in zip(*results, strict=True):
        np.testing.assert_allclose(cpu_value, gpu_value, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), seed=st.integers(0, 2**16))
def test_reductions_keep_shapes_like_numpy(shape, seed):
    rng = np.random.default_rng(seed)
    array = rng.standard_normal(shape)
    x = gg.tensor(array)
    for dim in range(len(shape)):
        for keepdim in (False, True):
            assert x.sum(dim=dim, keepdim=keepdim).shape == array.sum(axis=dim, keepdims=keepdim).shape
            np.testing.assert_allclose(x.mean(axis=dim, keepdims=keepdim).numpy(),
                                       array.mean(axis=dim, keepdims=keepdim))

"""Hypothesis property: random programs mixing views, in-place ops and ordinary ops
differentiate correctly (issue 11, point 7).

A program is a list of steps over a pool of tensors that starts with ``x * 1``
(``x`` is the leaf): views (slices, an integer index, reshape, transpose,
unsqueeze, expand), in-place changes (``mul_``, ``add_``, ``copy_``, ``t[i] = v``,
``+=``) of any pool entry that can be written, and ordinary ops.  The loss
reads every pool entry, so a view that missed a change of its base, or a base
that missed a change through a view, shows up in the gradient.  Each program's
gradient must match central differences (``gg.numerical_grad``, float64) and,
where PyTorch is installed, PyTorch's on the same program; a program PyTorch
refuses (a saved tensor changed in place) must be refused by gpugrad too
unless gpugrad's gradient is still the numerical one.

CI runs a bounded number of examples (fast); set
``GPUGRAD_FUZZ_EXAMPLES=2000`` for a longer run, as in ``test_properties.py``.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import gpugrad as gg

EXAMPLES = int(os.environ.get("GPUGRAD_FUZZ_EXAMPLES", "50"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VIEWS = ["slice", "select", "reshape", "transpose", "unsqueeze", "expand"]
IN_PLACE = ["mul_", "add_", "copy_", "setitem", "iadd"]
ORDINARY = ["sin", "scale", "mul", "add"]
SHAPE = (3, 4)

steps_strategy = st.lists(
    st.tuples(st.sampled_from(VIEWS + IN_PLACE + ORDINARY), st.integers(0, 63), st.integers(0, 63),
              st.integers(0, 63)),
    min_size=1, max_size=10)


def _fits(source_shape, target_shape):
    """Whether ``source_shape`` broadcasts to exactly ``target_shape``."""
    try:
        return tuple(np.broadcast_shapes(tuple(source_shape), tuple(target_shape))) == tuple(target_shape)
    except ValueError:
        return False


def run_program(steps, x):
    """Run ``steps`` on ``x`` (a gpugrad or torch tensor: only methods both
    libraries share are used) and return the loss, which reads every pool entry."""
    return loss_of(run_pool(steps, x))


def run_pool(steps, x):
    """The pool of tensors (with whether each can be written) after ``steps``.

    The choices depend only on shapes and on which entries can be written,
    never on the library, so gpugrad and torch run the same program.
    """
    # (tensor, can be written in place, memory family: views share their base's)
    pool = [(x * 1, True, 0)]
    for kind, a, b, c in steps:
        target, writable, family = pool[a % len(pool)]
        shape = tuple(target.shape)
        ndim = len(shape)
        operand, _, operand_family = pool[b % len(pool)]
        if operand_family == family and kind in IN_PLACE:
            # An operand overlapping the memory being written: PyTorch then reads
            # half-written values (or refuses), NumPy-based gpugrad reads the old
            # ones; both are "the old value" only with a copy.
            operand = operand * 1
        new = len(pool) + 1
        if kind == "slice" and ndim:
            dim = b % ndim
            size = shape[dim]
            start = c % size
            stop = start + 1 + (c // 7) % (size - start)
            index = (slice(None),) * dim + (slice(start, stop),)
            pool.append((target[index], writable, family))
        elif kind == "select" and ndim:
            pool.append((target[c % shape[0]], writable, family))
        elif kind == "reshape":
            new_shape = (-1,) if b % 2 else (1,) + shape
            pool.append((target.reshape(new_shape), writable, family))
        elif kind == "transpose" and ndim >= 2:
            first, second = b % ndim, c % ndim
            if first != second:
                pool.append((target.transpose(first, second), writable, family))
        elif kind == "unsqueeze":
            pool.append((target.unsqueeze(b % (ndim + 1)), writable, family))
        elif kind == "expand" and 1 in shape:
            sizes = [2 if n == 1 else -1 for n in shape]
            pool.append((target.expand(*sizes), False, family))    # several elements, one memory location
        elif kind in IN_PLACE and writable:
            value = operand if _fits(operand.shape, shape) else 0.25 * (c % 5) - 0.5
            if kind == "mul_":
                target.mul_(value)
            elif kind == "add_":
                target.add_(value)
            elif kind == "iadd":
                target += value
            elif kind == "copy_":
                if isinstance(value, float):
                    target.copy_(operand.sum() * value)
                else:
                    target.copy_(value.sin())
            elif kind == "setitem" and ndim:
                row = c % shape[0]
                target[row] = operand if _fits(operand.shape, shape[1:]) else 0.5
        elif kind == "sin":
            pool.append((target.sin(), True, new))
        elif kind == "scale":
            pool.append((target * (1.5 - 0.25 * (c % 4)), True, new))
        elif kind in ("mul", "add") and _fits(operand.shape, shape):
            pool.append((target * operand if kind == "mul" else target + operand, True, new))
    return pool


def loss_of(pool):
    loss = 0
    for position, (tensor, _, _) in enumerate(pool):
        loss = loss + (tensor * (1.0 + 0.1 * position)).sin().sum()
    return loss


def _assume_well_scaled(steps, x_array):
    """Central differences are a reference only where values stay moderate
    (``y.mul_(y)`` four times is x**16, and sin of that has no useful digits)."""
    with gg.no_grad():
        pool = run_pool(steps, gg.tensor(x_array))
    assume(all(float(abs(tensor).amax()) < 50 for tensor, _, _ in pool if tensor.numel()))


def _torch_gradient(steps, x_array):
    """PyTorch's gradient of the program, or None where PyTorch refuses it."""
    torch = pytest.importorskip("torch")
    x = torch.tensor(x_array, dtype=torch.float64, requires_grad=True)
    try:
        run_program(steps, x).backward()
    except RuntimeError as error:
        if "inplace operation" in str(error) or "in-place" in str(error) or "single memory location" in str(error):
            return None
        raise
    return x.grad.numpy()


@SETTINGS
@given(steps=steps_strategy, seed=st.integers(0, 2**16))
def test_random_view_and_in_place_programs_match_numerical_and_pytorch_gradients(steps, seed):
    rng = np.random.default_rng(seed)
    x_array = rng.standard_normal(SHAPE)
    _assume_well_scaled(steps, x_array)
    x = gg.tensor(x_array, requires_grad=True)
    try:
        run_program(steps, x).backward()
    except gg.AutogradError as error:
        # Refused: must be a saved tensor changed in place, which PyTorch refuses too.
        assert "modified in place" in str(error), str(error)
        try:
            import torch  # noqa: F401
        except ImportError:
            return
        assert _torch_gradient(steps, x_array) is None, f"gpugrad refused a program PyTorch runs: {error}"
        return
    (numeric,) = gg.numerical_grad(lambda v: run_program(steps, v), [gg.tensor(x_array)])
    got = np.zeros(SHAPE) if x.grad is None else x.grad.numpy()
    np.testing.assert_allclose(got, numeric.numpy(), rtol=1e-5, atol=1e-6)
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    expected = _torch_gradient(steps, x_array)
    if expected is not None:     # PyTorch may refuse what gpugrad's snapshots allow (v.mul_(v))
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@SETTINGS
@given(steps=steps_strategy, seed=st.integers(0, 2**16))
def test_random_view_and_in_place_programs_forward_mode_matches_reverse(steps, seed):
    """The directional derivative from gg.jvp equals the reverse-mode gradient
    dotted with the direction, through the same in-place changes."""
    rng = np.random.default_rng(seed)
    x_array = rng.standard_normal(SHAPE)
    direction = rng.standard_normal(SHAPE)
    _assume_well_scaled(steps, x_array)
    x = gg.tensor(x_array, requires_grad=True)
    try:
        run_program(steps, x).backward()
    except gg.AutogradError:
        return               # refused in reverse mode (a saved tensor changed): nothing to compare
    _, tangent = gg.jvp(lambda v: run_program(steps, v), (gg.tensor(x_array),), (gg.tensor(direction),))
    reverse = np.zeros(SHAPE) if x.grad is None else x.grad.numpy()
    np.testing.assert_allclose(float(tangent), float((reverse * direction).sum()), rtol=1e-9, atol=1e-10)

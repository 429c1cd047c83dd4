"""Lean paths of dispatch give the general path's results, bit for bit.

Every lean path (a specialised route that skips the general machinery for
the common case) must compute exactly what the general route computes; these
tests run both on the same inputs and compare.
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd import tape


def _general_inplace(name, target, operand, **kwargs):
    """The general in-place path: grad mode on, nothing requiring grad (so no recording)."""
    assert tape.is_grad_enabled()
    getattr(target, name)(operand, **kwargs)
    return target


@pytest.mark.parametrize("name", ["add_", "sub_", "mul_", "div_"])
@pytest.mark.parametrize("alpha", [None, 1, -0.01, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inplace_binary_under_no_grad_matches_the_general_path(name, alpha, dtype):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((5, 7)).astype(dtype)
    other = (rng.standard_normal((5, 7)) + 3).astype(dtype)
    kwargs = {} if alpha is None else {"alpha": alpha}
    general = _general_inplace(name, gg.tensor(start.copy()), gg.tensor(other), **kwargs)
    lean = gg.tensor(start.copy())
    lean_view = lean[1:3]
    version = lean._version
    with gg.no_grad():
        assert getattr(lean, name)(gg.tensor(other), **kwargs) is lean
    np.testing.assert_array_equal(lean.numpy(), general.numpy())
    assert lean._version == version + 1
    np.testing.assert_array_equal(lean_view.numpy(), general.numpy()[1:3])    # written in place


def test_inplace_lean_path_is_what_an_sgd_update_takes_and_a_saved_tensor_notices():
    w = gg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w * w).sum()
    with gg.no_grad():
        w.add_(gg.tensor([1.0, 1.0, 1.0]), alpha=-0.5)
    np.testing.assert_array_equal(w.detach().numpy(), [0.5, 1.5, 2.5])
    with pytest.raises(gg.AutogradError, match="modified in place"):
        y.backward()


def test_inplace_lean_path_with_itself_and_with_an_overlapping_view():
    x = gg.tensor([1.0, 2.0, 3.0, 4.0])
    with gg.no_grad():
        x.add_(x, alpha=2)
    np.testing.assert_array_equal(x.numpy(), [3.0, 6.0, 9.0, 12.0])
    general = gg.tensor([1.0, 2.0, 3.0, 4.0])
    general[1:].add_(general[:-1])
    lean = gg.tensor([1.0, 2.0, 3.0, 4.0])
    with gg.no_grad():
        lean[1:].add_(lean[:-1])
    np.testing.assert_array_equal(lean.numpy(), general.numpy())


def test_inplace_lean_path_leaves_errors_to_the_general_path():
    x = gg.tensor([1.0, 2.0])
    with gg.no_grad():
        with pytest.raises(gg.ShapeError):
            x.add_(gg.tensor([1.0, 2.0, 3.0]))
        expanded = gg.tensor([1.0]).expand(3)
        with pytest.raises(gg.AutogradError, match="expanded"):
            expanded.add_(gg.tensor([1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])


def test_a_leaf_gradient_that_no_one_else_holds_is_kept_not_copied():
    """The bias gradient of ``x @ w + b`` is ``sum_to``'s reshape of a temporary:
    nothing else reaches that memory, so the engine keeps it as b.grad."""
    x = gg.randn(4, 3)
    w = gg.randn(3, 2, requires_grad=True)
    b = gg.randn(2, requires_grad=True)
    (x @ w + b).sum().backward()
    assert b.grad.array.base is not None             # the reshape view itself, not a copy
    np.testing.assert_allclose(b.grad.numpy(), [4.0, 4.0])
    b.grad.mul_(2.0)
    np.testing.assert_allclose(w.grad.numpy(), np.repeat(x.numpy().sum(0)[:, None], 2, axis=1), rtol=1e-6)


def test_a_leaf_gradient_that_views_a_held_array_is_copied():
    """A view of an array someone holds (here the root gradient) is copied first."""
    x = gg.ones(2, 3, requires_grad=True)
    given = gg.ones(6)
    x.reshape(6).backward(given)
    assert not np.shares_memory(x.grad.array, given.array)
    x.grad.mul_(5.0)
    np.testing.assert_array_equal(given.numpy(), np.ones(6))


_LEAN_CASES = [
    ("exp", lambda x: x.exp(), "exp", lambda x: (x,)),
    ("tanh", lambda x: x.tanh(), "tanh", lambda x: (x,)),
    ("mul constant", lambda x: x * 0.5, "mul", lambda x: (x, 0.5)),
    ("constant mul", lambda x: 0.5 * x, "mul", lambda x: (0.5, x)),
    ("add constant", lambda x: x + 2.0, "add", lambda x: (x, 2.0)),
    ("constant sub", lambda x: 2.0 - x, "sub", lambda x: (2.0, x)),
    ("div constant", lambda x: x / 3.0, "div", lambda x: (x, 3.0)),
    ("constant div", lambda x: 3.0 / x, "div", lambda x: (3.0, x)),
]


@pytest.mark.parametrize("label, lean, op_name, arguments", _LEAN_CASES, ids=[case[0] for case in _LEAN_CASES])
def test_lean_tensor_method_matches_the_general_dispatch(label, lean, op_name, arguments):
    """Tensor methods and operators (built per op by dispatch.tensor_method) give
    what the general route (dispatch.apply_op) gives: value, node, gradient."""
    from gpugrad.ops.declaration import OPS
    from gpugrad.ops.dispatch import apply_op

    data = np.random.default_rng(1).uniform(0.5, 2.0, (3, 4)).astype(np.float32)
    x_lean = gg.tensor(data, requires_grad=True)
    x_general = gg.tensor(data, requires_grad=True)
    y_lean = lean(x_lean)
    y_general = apply_op(OPS[op_name], arguments(x_general), {})
    np.testing.assert_array_equal(y_lean.numpy(), y_general.numpy())
    assert y_lean.dtype == y_general.dtype and y_lean.grad_fn.name == y_general.grad_fn.name == op_name
    (y_lean * y_lean).sum().backward()
    (y_general * y_general).sum().backward()
    np.testing.assert_array_equal(x_lean.grad.numpy(), x_general.grad.numpy())


def test_defop_doc_becomes_the_function_and_method_docstring():
    from gpugrad.ops.declaration import OPS, defop

    name = "test_doc_probe_op"
    try:
        probe = defop(name, lambda x: x * 1, vjp=(lambda g, out, x: g,), method=name,
                      doc="Multiply by one.\n\nExamples\n--------\n>>> 1\n1\n")
        assert probe.__doc__.startswith("Multiply by one.")
        assert getattr(gg.Tensor, name).__doc__ == probe.__doc__
        assert probe(gg.tensor([2.0])).tolist() == [2.0]
    finally:
        OPS.pop(name, None)
        if hasattr(gg.Tensor, name):
            delattr(gg.Tensor, name)


def test_autocast_slot_sees_every_op_of_its_thread_before_promotion():
    import threading

    seen = []

    def to_float64(op, args):
        if op.name == "cast":
            return args         # its own casts go through dispatch too
        seen.append(op.name)
        return tuple(arg.to(gg.float64) if isinstance(arg, gg.Tensor) and arg.dtype == gg.float32 else arg
                     for arg in args)

    assert tape.state.autocast is None      # off by default
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    tape.state.autocast = to_float64
    tape.state.refresh()
    try:
        y = (x * 2.0).exp()
        other_thread = []
        worker = threading.Thread(target=lambda: other_thread.append((x * 2.0).dtype))
        worker.start()
        worker.join()
    finally:
        tape.state.autocast = None
        tape.state.refresh()
    assert y.dtype == gg.float64 and "mul" in seen and "exp" in seen
    assert other_thread == [gg.float32]        # another thread is not under this one's autocast
    y.sum().backward()
    assert x.grad.dtype == gg.float32
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([2.0, 4.0]), rtol=1e-6)
    assert (x * 2.0).dtype == gg.float32     # off again

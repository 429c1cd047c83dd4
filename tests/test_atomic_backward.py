"""A failed backward changes nothing (issue 11 point 4, issue 13 point 4).

When a backward pass raises part-way (a tensor hook raises or returns a bad
gradient, a saved tensor was modified in place, a gg.Function's backward
fails, a post-accumulate hook raises), no leaf's ``.grad`` and no retained
gradient has changed: each keeps the very object it had.  A correct backward
afterwards accumulates on top of the old values as usual.

Every graph below is built so that, in the engine's order, some leaf and some
retained gradient receive their gradients *before* the failure: a pass that
stored gradients as they came would leave them changed.
"""

import numpy as np
import pytest

import gpugrad as gg


def t64(values, device, requires_grad=False):
    return gg.tensor(np.asarray(values, dtype=np.float64), device=device, requires_grad=requires_grad)


class Setup:
    """Leaves x and w that already hold gradients, and a graph over them.

    ``early`` depends on x only and is created first (its node runs last);
    ``late = w * 2`` is created after it, retains its gradient, and runs
    first: w and late receive their gradients before early's node runs.
    """

    def __init__(self, device):
        self.x = t64([1.0, 2.0, 3.0], device, requires_grad=True)
        self.w = t64([0.5, -1.0, 2.0], device, requires_grad=True)
        self.x.grad = t64([10.0, 10.0, 10.0], device)
        self.w.grad = t64([20.0, 20.0, 20.0], device)

    def graph(self):
        self.early = self.x * 3
        self.late = self.w * 2
        self.late.retain_grad()
        return self.early, self.late

    def snapshot(self):
        tensors = [self.x, self.w, self.late]
        return [(t, t.grad, None if t.grad is None else t.grad.numpy().copy()) for t in tensors]

    @staticmethod
    def assert_unchanged(snapshot):
        for tensor, grad, values in snapshot:
            assert tensor.grad is grad                     # the very same object ...
            if values is not None:
                np.testing.assert_array_equal(grad.numpy(), values)   # ... with the same values


def _expect_correct_backward_after(setup, device):
    """A fresh, correct backward accumulates onto the untouched gradients."""
    early, late = setup.graph()
    (early.sum() + (late * late).sum()).backward()
    np.testing.assert_allclose(setup.x.grad.numpy(), [13.0, 13.0, 13.0])
    np.testing.assert_allclose(setup.w.grad.numpy(), 20.0 + 8.0 * setup.w.numpy())
    np.testing.assert_allclose(setup.late.grad.numpy(), 2.0 * setup.late.numpy())


@pytest.mark.parametrize("create_graph", [False, True])
def test_a_raising_hook_changes_no_grad(device, create_graph):
    setup = Setup(device)
    early, late = setup.graph()

    def failing_hook(grad):
        raise RuntimeError("hook failed on purpose")

    early.register_hook(failing_hook)
    loss = early.sum() + (late * late).sum()
    before = setup.snapshot()
    with pytest.raises(RuntimeError, match="on purpose"):
        loss.backward(create_graph=create_graph)
    Setup.assert_unchanged(before)
    _expect_correct_backward_after(setup, device)


def test_a_saved_tensor_modified_in_place_changes_no_grad(device):
    setup = Setup(device)
    a = setup.x * 1.0
    b = t64([1.0, 1.0, 1.0], device, requires_grad=True)
    product = a * b                     # saves a: b's gradient needs it
    late = setup.w * 2
    late.retain_grad()
    setup.late = late
    a.add_(1.0)                         # ... and a changes afterwards
    loss = product.sum() + (late * late).sum()
    before = setup.snapshot()
    with pytest.raises(gg.AutogradError, match="modified in place"):
        loss.backward()
    Setup.assert_unchanged(before)
    assert b.grad is None
    _expect_correct_backward_after(setup, device)


class _FailingBackward(gg.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 3

    @staticmethod
    def backward(ctx, grad):
        raise ValueError("backward rule failed on purpose")


def test_a_failing_function_backward_changes_no_grad(device):
    setup = Setup(device)
    early = _FailingBackward.apply(setup.x)
    late = setup.w * 2
    late.retain_grad()
    setup.late = late
    loss = early.sum() + (late * late).sum()
    before = setup.snapshot()
    with pytest.raises(ValueError, match="on purpose"):
        loss.backward()
    Setup.assert_unchanged(before)
    _expect_correct_backward_after(setup, device)


def test_a_raising_post_accumulate_hook_puts_every_grad_back(device):
    setup = Setup(device)
    early, late = setup.graph()
    calls = []

    def failing_post_hook(tensor):
        calls.append(tensor.grad.numpy().copy())
        raise RuntimeError("post hook failed on purpose")

    handle = setup.x.register_post_accumulate_grad_hook(failing_post_hook)
    before = setup.snapshot()
    with pytest.raises(RuntimeError, match="on purpose"):
        (early.sum() + (late * late).sum()).backward()
    np.testing.assert_allclose(calls[0], [13.0, 13.0, 13.0])   # it saw the finished gradient
    Setup.assert_unchanged(before)
    handle.remove()
    _expect_correct_backward_after(setup, device)


def test_post_accumulate_hooks_run_once_every_gradient_is_in_and_not_after_a_failure(device):
    setup = Setup(device)
    early, late = setup.graph()
    seen = []
    setup.w.register_post_accumulate_grad_hook(
        lambda tensor: seen.append((tensor.grad.numpy().copy(), setup.x.grad.numpy().copy())))
    early.register_hook(lambda grad: (_ for _ in ()).throw(RuntimeError("on purpose")))
    with pytest.raises(RuntimeError):
        (early.sum() + (late * late).sum()).backward()
    assert seen == []                                    # a failed pass runs no post-accumulate hook
    setup2 = Setup(device)
    early, late = setup2.graph()
    seen2 = []
    setup2.w.register_post_accumulate_grad_hook(
        lambda tensor: seen2.append(setup2.x.grad.numpy().copy()))
    (early.sum() + (late * late).sum()).backward()
    np.testing.assert_allclose(seen2[0], [13.0, 13.0, 13.0])   # x's gradient, though stored after w's, is in


def test_backward_with_inputs_is_atomic_too(device):
    setup = Setup(device)
    early, late = setup.graph()

    def failing_post_hook(tensor):
        raise RuntimeError("on purpose")

    setup.w.register_post_accumulate_grad_hook(failing_post_hook)
    before = setup.snapshot()
    with pytest.raises(RuntimeError):
        (early.sum() + (late * late).sum()).backward(inputs=[setup.x, setup.w])
    Setup.assert_unchanged(before)


# ------------------------------------------------------- hook return values
def test_a_hook_returning_a_non_tensor_raises_a_type_error_naming_it(device):
    setup = Setup(device)
    early, late = setup.graph()

    def returns_an_array(grad):
        return grad.numpy() * 2

    early.register_hook(returns_an_array)
    before = setup.snapshot()
    with pytest.raises(TypeError) as caught:
        (early.sum() + (late * late).sum()).backward()
    message = str(caught.value)
    assert "returns_an_array" in message and "(3,)" in message and "ndarray" in message
    Setup.assert_unchanged(before)


def test_a_hook_returning_a_number_raises_a_type_error_naming_it(device):
    setup = Setup(device)
    early, late = setup.graph()

    class Scale:
        def __call__(self, grad):
            return 2.0

    early.register_hook(Scale())
    before = setup.snapshot()
    with pytest.raises(TypeError, match=r"Scale object.*\(3,\).*float"):
        (early.sum() + (late * late).sum()).backward()
    Setup.assert_unchanged(before)


def test_a_hook_returning_the_wrong_shape_raises_a_shape_error_naming_it_and_both_shapes(device):
    setup = Setup(device)
    early, late = setup.graph()

    def summed(grad):
        return grad.sum()

    early.register_hook(summed)
    before = setup.snapshot()
    with pytest.raises(gg.ShapeError) as caught:
        (early.sum() + (late * late).sum()).backward()
    message = str(caught.value)
    assert "summed" in message and "shape ()" in message and "(3,)" in message
    Setup.assert_unchanged(before)


def test_a_hook_returning_a_tensor_of_the_right_shape_replaces_the_gradient(device):
    setup = Setup(device)
    early, late = setup.graph()
    early.register_hook(lambda grad: grad * 10)
    (early.sum() + (late * late).sum()).backward()
    np.testing.assert_allclose(setup.x.grad.numpy(), [40.0, 40.0, 40.0])


def test_atomic_backward_matches_pytorch_when_nothing_fails(device):
    torch = pytest.importorskip("torch")
    setup = Setup(device)
    early, late = setup.graph()
    early.register_hook(lambda grad: grad * 2)
    (early.sum() + (late * late).sum()).backward()

    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    x.grad = torch.full((3,), 10.0, dtype=torch.float64)
    w.grad = torch.full((3,), 20.0, dtype=torch.float64)
    early_t, late_t = x * 3, w * 2
    late_t.retain_grad()
    early_t.register_hook(lambda grad: grad * 2)
    (early_t.sum() + (late_t * late_t).sum()).backward()
    np.testing.assert_allclose(setup.x.grad.numpy(), x.grad.numpy())
    np.testing.assert_allclose(setup.w.grad.numpy(), w.grad.numpy())
    np.testing.assert_allclose(setup.late.grad.numpy(), late_t.grad.numpy())

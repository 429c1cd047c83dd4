"""Behaviour of the reverse-mode engine, gg.Function and the numerical checks."""

import gc
import weakref

import numpy as np
import pytest

import gpugrad as gg


def leaf(values, device, dtype=gg.float64):
    return gg.tensor(values, dtype=dtype, device=device, requires_grad=True)


# --------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------
def test_long_chain_needs_no_recursion(device):
    x = leaf([1.5], device)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_gradients_accumulate_into_leaves(device):
    x = leaf([1.0, 2.0], device)
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 + 3, 4 + 3])


def test_shared_subexpression_gets_summed_gradient(device):
    x = leaf([2.0], device)
    y = x * x
    z = y + y * 3          # dz/dx = 4 * 2x
    z.sum().backward()
    assert x.grad.tolist() == [16.0]


def test_add_gradient_is_not_aliased_between_leaves(device):
    a, b = leaf([1.0], device), leaf([1.0], device)
    (a + b).sum().backward()
    (a * 5).sum().backward()   # accumulating into a.grad must not change b.grad
    assert a.grad.tolist() == [6.0] and b.grad.tolist() == [1.0]


def test_second_backward_through_freed_graph_names_op_and_fix(device):
    x = leaf([1.0, 2.0], device)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(gg.AutogradError, match=r"second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward(device):
    x = leaf([1.0, 2.0], device)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]))


def test_modifying_a_saved_tensor_raises_naming_the_op(device):
    a = leaf([1.0, 2.0], device)
    b = a * 2
    c = b * b          # mul saved b
    with gg.no_grad():
        b.add_(1)
    with pytest.raises(gg.AutogradError, match=r"op 'mul'.*modified in place"):
        c.sum().backward()


def test_modifying_an_unsaved_input_is_fine(device):
    a = leaf([1.0, 2.0], device)
    b = a * 2
    c = b + 1          # add saves nothing
    with gg.no_grad():
        b.mul_(10)
    c.sum().backward()
    assert a.grad.tolist() == [2.0, 2.0]


def test_modifying_a_saved_output_raises(device):
    x = leaf([0.5], device)
    y = x.exp()        # exp saves its output
    with gg.no_grad():
        y.add_(1)
    with pytest.raises(gg.AutogradError, match="output of op 'exp'"):
        y.sum().backward()


def test_in_place_on_a_graph_tensor_is_differentiated(device):
    x = leaf([1.0, 2.0], device)
    y = x * 3
    y.mul_(y)          # y = (3x)^2
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])


def test_in_place_on_a_leaf_that_requires_grad_raises(device):
    x = leaf([1.0], device)
    with pytest.raises(gg.AutogradError, match="leaf tensor that requires grad"):
        x.add_(1)
    assert x.tolist() == [1.0]   # untouched


def test_setitem_gradient(device):
    w = leaf([1.0, 1.0, 1.0], device)
    v = w * 2
    v[0] = 7.0
    v.sum().backward()
    assert w.grad.tolist() == [0.0, 2.0, 2.0]


def test_hooks_replace_gradient_and_can_be_removed(device):
    x = leaf([1.0, 2.0], device)
    y = x * 3
    handle = y.register_hook(lambda g: g * 10)
    y.sum().backward()
    assert x.grad.tolist() == [30.0, 30.0]
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_leaf_hook_runs_before_accumulation(device):
    x = leaf([1.0], device)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()) or g * 2)
    (x * 5).sum().backward()
    assert seen == [[5.0]] and x.grad.tolist() == [10.0]


def test_retain_grad_on_non_leaf(device):
    x = leaf([1.0, 2.0], device)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [6.0, 12.0])


# Programs mixing retain_grad with hooks and in-place ops; each leaves (x, y)
# where y retains its grad.  PyTorch (>= 2.0) runs the retain_grad hook after
# every other hook of the tensor, and after an in-place op .grad is the
# gradient of the tensor's current version (the old version keeps its hooks).
def _retain_then_hook(lib, x):
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 3)
    return y, y.sum()


def _hook_then_retain(lib, x):
    y = x * 2
    y.register_hook(lambda g: g * 3)
    y.retain_grad()
    return y, y.sum()


def _retain_then_inplace(lib, x):
    y = x.clone()
    y.retain_grad()
    y.mul_(2)
    return y, (y * y).sum()


def _hook_retain_inplace_hook(lib, x):
    y = x * 1
    y.register_hook(lambda g: g * 3)       # on the old version: it still sees the old version's gradient
    y.retain_grad()
    y.mul_(2)
    y.register_hook(lambda g: g * 5)       # on the new one: before the retained grad
    return y, y.sum()


def _retain_then_write_through_a_view(lib, x):
    y = x * 1
    y.retain_grad()
    y[:1].mul_(2)
    return y, (y * y).sum()


def _retain_a_view_then_change_its_base(lib, x):
    y = x * 1
    view = y[:1]
    view.retain_grad()
    y.mul_(2)
    return view, view.sum() * 5 + y.sum()


def _retain_then_setitem_and_use_the_old_version(lib, x):
    y = x * 1
    y.retain_grad()
    old = y * 3
    y[0] = 5.0
    return y, (old + y * y).sum()


def _retain_then_zero(lib, x):
    y = x * 1
    y.retain_grad()
    y.zero_()
    return y, (y + x).sum()


RETAIN_GRAD_PROGRAMS = [_retain_then_hook, _hook_then_retain, _retain_then_inplace, _hook_retain_inplace_hook,
                        _retain_then_write_through_a_view, _retain_a_view_then_change_its_base,
                        _retain_then_setitem_and_use_the_old_version, _retain_then_zero]


@pytest.mark.parametrize("program", RETAIN_GRAD_PROGRAMS, ids=lambda program: program.__name__)
def test_retain_grad_with_hooks_and_inplace_ops_matches_torch(device, program):
    torch = pytest.importorskip("torch")
    x = leaf([1.0, 2.0], device)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    y, loss = program(gg, x)
    ty, tloss = program(torch, tx)
    assert y.retains_grad and ty.retains_grad
    loss.backward(retain_graph=True)
    tloss.backward(retain_graph=True)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy())
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    loss.backward()          # a second pass accumulates into the retained grad
    tloss.backward()
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy())


def test_retains_grad_attribute(device):
    x = leaf([1.0], device)
    y = x * 2
    assert not x.retains_grad and not y.retains_grad
    y.retain_grad()
    x.retain_grad()                      # a leaf keeps its grad anyway: not "retains"
    assert y.retains_grad and not x.retains_grad
    with pytest.raises(AttributeError):
        y.retains_grad = False


def test_a_failed_backward_leaves_retained_grads_unchanged(device):
    x = leaf([1.0, 2.0], device)
    y = x.clone()
    y.retain_grad()
    y.mul_(2)
    y.register_hook(lambda g: g * 3)
    y.sum().backward(retain_graph=True)
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 3.0])

    def fail(grad):
        raise RuntimeError("hook failed")
    x.register_hook(fail)                # runs after y's retained grad is stored
    with pytest.raises(RuntimeError, match="hook failed"):
        y.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_no_grad_and_enable_grad_as_context_and_decorator(device):
    x = leaf([1.0], device)
    with gg.no_grad():
        assert not (x * 2).requires_grad
        with gg.enable_grad():
            assert (x * 2).requires_grad
    assert gg.is_grad_enabled()

    @gg.no_grad()
    def doubled(t):
        return t * 2

    assert not doubled(x).requires_grad and gg.is_grad_enabled()
    with gg.set_grad_enabled(False):
        assert not gg.is_grad_enabled()
    assert gg.is_grad_enabled()


def test_detach_shares_data_but_not_graph(device):
    x = leaf([1.0, 2.0], device)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None
    y = x * 2
    d2 = y.detach()
    d2.array[0] = 100.0
    assert y.tolist()[0] == 100.0


def test_grad_allow_unused_and_create_graph(device):
    x, unused = leaf([3.0], device), leaf([1.0], device)
    (dx, du) = gg.grad((x ** 3).sum(), [x, unused], create_graph=True, allow_unused=True)
    assert du is None and dx.tolist() == [27.0]
    (d2,) = gg.grad(dx.sum(), x)
    assert d2.tolist() == [18.0]
    with pytest.raises(gg.AutogradError, match="allow_unused=True"):
        gg.grad((x * 2).sum(), [x, unused])


def test_grad_does_not_touch_dot_grad(device):
    x = leaf([1.0], device)
    gg.grad((x * 2).sum(), x)
    assert x.grad is None


def test_grad_of_non_leaf_input(device):
    x = leaf([1.0, 2.0], device)
    h = x * 2
    y = (h * h).sum()
    (dh,) = gg.grad(y, h)
    np.testing.assert_allclose(dh.numpy(), [4.0, 8.0])


def test_backward_with_inputs_restricts_accumulation(device):
    a, b = leaf([1.0], device), leaf([2.0], device)
    (a * b).sum().backward(inputs=[a])
    assert a.grad.tolist() == [2.0] and b.grad is None


def test_nonscalar_backward_needs_gradient(device):
    x = leaf([1.0, 2.0], device)
    with pytest.raises(gg.AutogradError, match="one-element outputs"):
        (x * 2).backward()
    (x * 2).backward(gg.tensor([1.0, 10.0], dtype=gg.float64, device=device))
    assert x.grad.tolist() == [2.0, 20.0]


def test_backward_on_tensor_without_graph_explains(device):
    with pytest.raises(gg.AutogradError, match="does not require grad"):
        gg.ones(2, device=device).sum().backward()


def test_graph_is_freed_without_the_garbage_collector(device):
    gc.disable()
    try:
        x = leaf([1.0, 2.0], device)
        y = (x.exp() * x).sum()
        node = weakref.ref(y.grad_fn)
        del y
        assert node() is None
    finally:
        gc.enable()


def test_backward_frees_saved_tensors(device):
    x = leaf(np.ones(1000), device)
    h = x * 2
    y = (h * h).sum()
    saved = weakref.ref(h)
    del h
    assert saved() is not None        # the graph keeps it for backward
    y.backward()
    assert saved() is None            # and lets go afterwards


# --------------------------------------------------------------------------
# gg.Function
# --------------------------------------------------------------------------
class Cube(gg.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x

    @staticmethod
    def jvp(ctx, tangent):
        (x,) = ctx.saved_tensors
        return tangent * 3 * x * x


class ScaleBy(gg.Function):
    """Two inputs, one of them a Python number: needs_input_grad and None gradients."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        ctx.seen_needs = ctx.needs_input_grad
        return x * factor

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def test_function_backward_and_higher_order(device):
    x = leaf([2.0], device)
    y = Cube.apply(x)
    (dx,) = gg.grad(y.sum(), x, create_graph=True)
    (d2x,) = gg.grad(dx.sum(), x)
    assert dx.tolist() == [12.0] and d2x.tolist() == [12.0]
    assert y.grad_fn.name == "Cube"


def test_function_gradcheck_reverse_and_forward(device):
    x = gg.randn(4, dtype=gg.float64, device=device)
    assert gg.gradcheck(Cube.apply, [x])


def test_function_needs_input_grad(device):
    x = leaf([1.0, 2.0], device)
    y = ScaleBy.apply(x, 3.0)
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    assert y.grad_fn.ctx.seen_needs == (True, False)


def test_function_without_jvp_refuses_forward_mode(device):
    x = gg.ones(2, dtype=gg.float64, device=device)
    with pytest.raises(gg.AutogradError, match="defines no jvp"):
        gg.jvp(lambda t: ScaleBy.apply(t, 2.0), (x,), (gg.ones_like(x),))


def test_function_saved_tensor_modified_raises(device):
    x = leaf([1.0], device)
    h = x * 1
    y = Cube.apply(h)
    with gg.no_grad():
        h.add_(1)
    with pytest.raises(gg.AutogradError, match="Cube"):
        y.sum().backward()


def test_function_wrong_gradient_shape_is_explained(device):
    class Bad(gg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.sum()

    x = leaf([1.0, 2.0], device)
    with pytest.raises(gg.ShapeError, match="Bad.backward returned a gradient of shape"):
        Bad.apply(x).sum().backward()


# --------------------------------------------------------------------------
# numerical checking
# --------------------------------------------------------------------------
def test_numerical_grad_matches_closed_form(device):
    x = gg.tensor([0.3, -1.2], dtype=gg.float32, device=device)
    (g,) = gg.numerical_grad(lambda t: (t.sin() * t).sum(), [x])
    expected = np.sin([0.3, -1.2]) + np.array([0.3, -1.2]) * np.cos([0.3, -1.2])
    assert g.dtype == gg.float64   # computed in float64 whatever the input dtype
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-7)


def test_gradcheck_failure_names_input_index_and_values(device):
    class WrongGrad(gg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, grad):
            return grad * 3.0   # should be 2x

        @staticmethod
        def jvp(ctx, tangent):
            return tangent * 3.0

    x = gg.tensor([1.0, 2.0], dtype=gg.float64, device=device)
    with pytest.raises(gg.GradcheckError, match=r"input 0 .* at index \(0,\): analytic .* vs numeric"):
        gg.gradcheck(WrongGrad.apply, [x], check_forward=False)
    with pytest.raises(gg.GradcheckError, match="forward mode"):
        gg.gradcheck(WrongGrad.apply, [x], check_backward=False)


def test_gradgradcheck_catches_a_wrong_second_derivative(device):
    class FirstOrderOnly(gg.Function):
        """Right first derivative (3x^2), written so its own derivative is wrong."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * (x * x).detach()   # detached: second derivative lost

        @staticmethod
        def jvp(ctx, tangent):
            (x,) = ctx.saved_tensors
            return tangent * 3 * x * x

    x = gg.tensor([1.0, 2.0], dtype=gg.float64, device=device)
    assert gg.gradcheck(FirstOrderOnly.apply, [x])
    with pytest.raises(gg.GradcheckError):
        gg.gradgradcheck(FirstOrderOnly.apply, [x], check_forward=False)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
def test_error_types_subclass_the_python_ones():
    assert issubclass(gg.ShapeError, ValueError)
    assert issubclass(gg.DeviceError, RuntimeError)
    assert issubclass(gg.DTypeError, TypeError)
    assert issubclass(gg.GradcheckError, AssertionError)


@pytest.mark.parametrize("make_call, error, pattern", [
    (lambda d: gg.ones(2, 3, device=d) + gg.ones(4, device=d), gg.ShapeError, r"add: inputs \(2, 3\).*\(4,\)"),
    (lambda d: gg.ones(2, 3, device=d) @ gg.ones(4, 2, device=d), gg.ShapeError,
     r"matmul: shapes \(2, 3\) and \(4, 2\)"),
    (lambda d: gg.ones(6, device=d).reshape(4, 2), gg.ShapeError, r"reshape: .*\(6,\).*\(4, 2\)"),
    (lambda d: gg.ones(2, device=d).sum(dim=3), gg.ShapeError, "dim 3 is out of range"),
    (lambda d: gg.cat([gg.ones(2, 3, device=d), gg.ones(2, 4, device=d)]), gg.ShapeError,
     r"cat: tensor 1 has shape \(2, 4\)"),
    (lambda d: gg.tensor([1, 2], device=d, requires_grad=True), gg.DTypeError, "only floating tensors"),
    (lambda d: gg.zeros(-1, device=d), gg.ShapeError, "negative size"),
    (lambda d: gg.ones(2, device=d).to("cuda:7") if gg.cuda.is_available() else gg.ones(2).to("cuda"),
     gg.DeviceError, "cuda"),
    (lambda d: gg.ones(2, 2, device=d).amax(dim=0)[5], IndexError, "out of range"),
])
def test_bad_input_gets_typed_error_naming_op_and_shapes(make_call, error, pattern, device):
    with pytest.raises(error, match=pattern):
        make_call(device)


def test_failed_op_leaves_inputs_untouched(device):
    a = gg.ones(2, 3, device=device, requires_grad=True)
    b = gg.ones(4, device=device)
    with pytest.raises(gg.ShapeError):
        a + b
    assert a.tolist() == [[1.0] * 3] * 2 and a.grad is None and a._version == 0


# --------------------------------------------------------------------------
# the "loss kept with its graph" leak warning
# --------------------------------------------------------------------------
def _train_steps(device, keep):
    w = gg.tensor([0.5, -0.5], device=device, requires_grad=True)
    optimizer = gg.optim.SGD([w], lr=0.1)
    total = 0.0
    # Six steps: the detector needs three growing checks in a row, and graphs
    # that earlier tests left alive may die (and shrink the count) during the first.
    for _ in range(6):
        optimizer.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        optimizer.step()
        total = total + (loss if keep else loss.item())
    return total


def test_summing_losses_with_their_graphs_warns(device):
    with pytest.warns(gg.GraphRetainedWarning, match="loss.item()"):
        _train_steps(device, keep=True)


def test_summing_loss_items_does_not_warn(device):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", gg.GraphRetainedWarning)
        _train_steps(device, keep=False)


def test_post_accumulate_grad_hook_sees_the_finished_grad(device):
    x = leaf([1.0, 2.0], device)
    seen = []
    handle = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (x * 3).sum().backward()
    (x * 1).sum().backward()
    assert seen == [[3.0, 3.0], [4.0, 4.0]]
    gg.grad((x * 5).sum(), x)                 # gg.grad accumulates nothing: no call
    assert len(seen) == 2
    handle.remove()
    (x * 1).sum().backward()
    assert len(seen) == 2
    with pytest.raises(gg.AutogradError, match="only leaf tensors"):
        (x * 2).register_post_accumulate_grad_hook(print)


def test_forward_over_reverse_through_a_custom_function(device):
    x = gg.tensor([3.0], dtype=gg.float64, device=device)

    def gradient(t):
        t = t.requires_grad_() if t.is_leaf else t
        (g,) = gg.grad(Cube.apply(t).sum(), t, create_graph=True)
        return g

    _, second = gg.jvp(gradient, (x.detach().requires_grad_(),), (gg.ones_like(x),))
    assert second.tolist() == [18.0]          # d/dx 3x^2 = 6x
    assert gg.gradgradcheck(Cube.apply, [gg.randn(3, dtype=gg.float64, device=device)])


def test_each_leaf_grad_owns_its_memory(device):
    """add's VJP hands one array to both inputs, a sum's gradient is a broadcast
    view, a root gradient belongs to the caller: none of them may be shared by
    a .grad, or an in-place change to one gradient would show up elsewhere."""
    a = gg.ones(3, device=device, requires_grad=True)
    b = gg.ones(3, device=device, requires_grad=True)
    (a + b).sum().backward()
    assert a.grad.array is not b.grad.array and a.grad.array.flags.owndata and b.grad.array.flags.owndata
    a.grad.mul_(2.0)
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0, 1.0])
    x = gg.ones(2, device=device, requires_grad=True)
    given = gg.tensor([1.0, 2.0], device=device)
    x.backward(given)
    given.mul_(3.0)
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0])


def test_a_leaf_used_twice_gets_the_sum_and_its_hooks_run_once(device):
    """A hook-free leaf takes gradients as they arrive; one with a hook (or a
    post-accumulate hook) gets the sum of all its uses at once, so each hook
    runs once per backward."""
    for hooked in (False, True):
        x = leaf([1.0, 2.0], device)
        calls, finished = [], []
        if hooked:
            # Bound as defaults: each round's hooks write to that round's lists.
            x.register_hook(lambda g, calls=calls: calls.append(g.tolist()))
            x.register_post_accumulate_grad_hook(lambda t, finished=finished: finished.append(t.grad.tolist()))
        ((x * 3.0).sum() + (x.exp() * 0.0).sum() + (x * x).sum()).backward()
        np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])
        if hooked:
            assert len(calls) == 1 and np.allclose(calls[0], [5.0, 7.0])
            assert len(finished) == 1 and np.allclose(finished[0], [5.0, 7.0])

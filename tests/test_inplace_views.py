"""In-place changes through views give PyTorch's gradients (issue 11, points 1 and 5).

An in-place op on a view records on the view's base "the base with this region
replaced" (PyTorch's CopySlices), and every view remakes its ``grad_fn`` from
the base's current history.  Each program below runs on gpugrad in reverse
mode, under ``create_graph=True`` (a second derivative) and in forward mode
(``gg.jvp``); the expected numbers were computed by PyTorch 2 on the same
program, and the test also runs PyTorch live when it is installed.
"""

import numpy as np
import pytest

import gpugrad as gg


def slice_mul(x, lib):
    y = x * 1
    y[1:3].mul_(3)
    return (y * y).sum()


def reshape_row_mul(x, lib):
    y = x * 1
    v = y.reshape(2, 2)
    v[0].mul_(3)
    return (y * y).sum()


def view_transpose_row_mul(x, lib):
    y = x * 1
    v = y.view(2, 2).transpose(0, 1)
    v[0].mul_(3)
    return (y * y).sum()


def unsqueeze_add(x, lib):
    y = x * 1
    v = y.unsqueeze(0)
    v.add_(x.unsqueeze(0) * x.unsqueeze(0))
    return (y * y * y).sum()


def transpose_mul_by_tensor(x, lib):
    y = x * 2
    v = y.reshape(2, 2).transpose(0, 1)
    v.mul_(x.reshape(2, 2))
    return (y * x).sum() + (v * v).sum()


def view_of_view(x, lib):
    y = x * 1
    v = y[1:]
    w = v[:2]
    w.mul_(x[:2])
    return (y * v.sum()).sum()


def setitem_on_view(x, lib):
    y = x * 1
    v = y[1:3]
    v[0] = 10
    return (y * y).sum() + (v * x[:2]).sum()


def base_changed_after_view(x, lib):
    y = x * 1
    v = y[1:3]
    y.mul_(x)
    return (v * v).sum()


def iadd_slice_of_base(x, lib):
    y = x * 2
    v = y[1:3]
    y[0:2] += x[2:]
    return (v * v).sum() + (y * x).sum()


def zero_through_transposed_view(x, lib):
    y = x * 2
    v = y.reshape(2, 2).transpose(0, 1)
    v[1].zero_()
    return (y * y * x).sum()


def copy_into_view_of_constant(x, lib):
    y = x.detach() * 0
    v = y[1:3]
    v.copy_(x[:2] * 3)
    return (y * y).sum() + (v * x[2:]).sum()


def two_views_one_changed(x, lib):
    y = x * x
    first = y[:3]
    second = y[2:]
    first.mul_(2)
    return (second * second).sum() + (first * x[1:]).sum()


PROGRAMS = [slice_mul, reshape_row_mul, view_transpose_row_mul, unsqueeze_add, transpose_mul_by_tensor,
            view_of_view, setitem_on_view, base_changed_after_view, iadd_slice_of_base,
            zero_through_transposed_view, copy_into_view_of_constant, two_views_one_changed]


X = [1.0, 2.0, 3.0, 4.0]
TANGENT = [0.5, -1.0, 2.0, 0.25]
# name: (gradient of the program at X,
#        gradient of sum(g * g * x) where g is that gradient (create_graph=True),
#        directional derivative along TANGENT (forward mode)), all from PyTorch.
EXPECTED = {
    "slice_mul": ([2.0, 36.0, 54.0, 8.0], [12.0, 3888.0, 8748.0, 192.0], 75.0),
    "reshape_row_mul": ([18.0, 36.0, 6.0, 8.0], [972.0, 3888.0, 108.0, 192.0], -13.0),
    "view_transpose_row_mul": ([18.0, 4.0, 54.0, 8.0], [972.0, 48.0, 8748.0, 192.0], 115.0),
    "unsqueeze_add": ([36.0, 540.0, 3024.0, 10800.0], [10800.0, 2702160.0, 88833024.0, 1163808000.0], 8226.0),
    "transpose_mul_by_tensor": ([22.0, 330.0, 224.0, 1120.0], [3124.0, 599748.0, 426784.0, 8565760.0], 409.0),
    "view_of_view": ([62.0, 100.0, 50.0, 25.0], [27332.0, 42280.0, 23340.0, 6045.0], 37.25),
    "setitem_on_view": ([12.0, 3.0, 8.0, 8.0], [192.0, 57.0, 172.0, 192.0], 21.0),
    "base_changed_after_view": ([0.0, 32.0, 108.0, 0.0], [0.0, 7168.0, 81648.0, 0.0], 184.0),
    "iadd_slice_of_base": ([7.0, 44.0, 37.0, 34.0], [327.0, 5408.0, 4047.0, 3668.0], 42.0),
    "zero_through_transposed_view": ([12.0, 0.0, 108.0, 0.0], [720.0, 0.0, 58320.0, 0.0], 222.0),
    "copy_into_view_of_constant": ([27.0, 48.0, 3.0, 6.0], [1755.0, 5904.0, 171.0, 612.0], -27.0),
    "two_views_one_changed": ([8.0, 26.0, 488.0, 274.0], [608.0, 25412.0, 1577024.0, 531076.0], 1022.5),
}
BY_NAME = {program.__name__: program for program in PROGRAMS}


def test_every_program_has_pytorch_values():
    assert sorted(EXPECTED) == sorted(BY_NAME)


def _x(device, requires_grad=True):
    return gg.tensor(X, dtype=gg.float64, device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reverse_mode_gives_pytorchs_gradient(name, device):
    x = _x(device)
    BY_NAME[name](x, gg).backward()
    np.testing.assert_allclose(x.grad.numpy(), EXPECTED[name][0], rtol=1e-12)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_create_graph_gives_pytorchs_second_derivative(name, device):
    x = _x(device)
    (g,) = gg.grad(BY_NAME[name](x, gg), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), EXPECTED[name][0], rtol=1e-12)
    (h,) = gg.grad((g * g * x).sum(), x)
    np.testing.assert_allclose(h.numpy(), EXPECTED[name][1], rtol=1e-12)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_forward_mode_gives_pytorchs_tangent(name, device):
    primal = _x(device, requires_grad=False)
    tangent = gg.tensor(TANGENT, dtype=gg.float64, device=device)
    out, out_tangent = gg.jvp(lambda x: BY_NAME[name](x, gg), (primal,), (tangent,))
    np.testing.assert_allclose(float(out_tangent), EXPECTED[name][2], rtol=1e-12)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_values_and_gradients_equal_pytorch_live(name):
    torch = pytest.importorskip("torch")
    import torch.autograd.forward_ad as forward_ad
    program = BY_NAME[name]
    xt = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    out_t = program(xt, torch)
    (gt,) = torch.autograd.grad(out_t, xt, create_graph=True)
    (ht,) = torch.autograd.grad((gt * gt * xt).sum(), xt)
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(torch.tensor(X, dtype=torch.float64), torch.tensor(TANGENT, dtype=torch.float64))
        jt = forward_ad.unpack_dual(program(dual, torch)).tangent
    x = _x("cpu")
    out = program(x, gg)
    (g,) = gg.grad(out, x, create_graph=True)
    (h,) = gg.grad((g * g * x).sum(), x)
    _, jv = gg.jvp(lambda v: program(v, gg), (_x("cpu", False),), (gg.tensor(TANGENT, dtype=gg.float64),))
    np.testing.assert_allclose(float(out), out_t.item(), rtol=1e-12)
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=1e-12)
    np.testing.assert_allclose(float(jv), jt.item(), rtol=1e-12)


def test_the_issue_program_step_by_step(device):
    x = _x(device)
    y = x * 1
    view = y[1:3]
    view.mul_(3)
    np.testing.assert_array_equal(y.detach().numpy(), [1, 6, 9, 4])
    assert y.grad_fn.name == "copy_slices"
    assert view.grad_fn.name == "getitem"        # remade from the base's new history
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 36, 54, 8])


def test_views_see_a_change_of_the_base_and_of_each_other(device):
    x = _x(device)
    y = x * 1
    left, right = y[:3], y[1:]
    right.mul_(10)
    np.testing.assert_array_equal(left.detach().numpy(), [1, 20, 30])
    left.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 10, 10, 0])


def test_a_view_of_a_tensor_without_grad_starts_requiring_grad_when_a_gradient_is_copied_in(device):
    x = _x(device)
    buffer = gg.zeros(4, dtype=gg.float64, device=device)
    other_view = buffer[2:]
    buffer[:3].copy_(x[1:] * 2)
    assert buffer.requires_grad and other_view.requires_grad
    (other_view * other_view).sum().backward()       # other_view = [2 * x[3], 0]: gradient 8 * x[3]
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 32])


def test_retained_gradient_of_a_view_survives_its_remaking(device):
    x = _x(device)
    y = x * 1
    view = y[1:3]
    view.retain_grad()
    y.mul_(2)
    (view * 3).sum().backward()
    np.testing.assert_array_equal(view.grad.numpy(), [3, 3])


# ---------------------------------------------------------------------------
# What PyTorch refuses is refused, with the op and the view named.
# ---------------------------------------------------------------------------
def test_in_place_on_a_view_of_a_leaf_that_requires_grad_raises(device):
    x = _x(device)
    with pytest.raises(gg.AutogradError, match=r"mul_: .*view \(made by getitem.*leaf that requires grad"):
        x[1:3].mul_(3)
    with pytest.raises(gg.AutogradError, match="leaf"):
        x.reshape(2, 2)[0] = 1.0
    np.testing.assert_array_equal(x.detach().numpy(), X)     # nothing written
    with gg.no_grad():
        x[1:3].mul_(3)                                     # the optimizer's way: allowed
    np.testing.assert_array_equal(x.detach().numpy(), [1, 6, 9, 4])


def test_in_place_on_an_expanded_view_raises_before_writing(device):
    x = _x(device)
    y = x[:1] * 1
    wide = y.expand(3)
    with pytest.raises(gg.AutogradError, match=r"add_: .*expanded/broadcast view \(made by broadcast_to"):
        wide.add_(1)
    np.testing.assert_array_equal(y.detach().numpy(), [1])


def test_in_place_through_a_view_made_under_no_grad_raises_while_recording(device):
    x = _x(device)
    y = x * 1
    with gg.no_grad():
        view = y[1:3]
    with pytest.raises(gg.AutogradError, match=r"mul_: .*view \(made by getitem.*made under gg.no_grad"):
        view.mul_(2)
    np.testing.assert_array_equal(y.detach().numpy(), X)


def test_a_saved_output_changed_through_a_view_raises_at_backward(device):
    x = _x(device)
    y = x.exp()
    y[1:].mul_(2)          # exp's gradient needs its output, which changed (PyTorch raises too)
    with pytest.raises(gg.AutogradError, match="modified in place"):
        y.sum().backward()


def test_reshape_that_copies_is_not_a_view(device):
    x = _x(device)
    y = (x * 1).reshape(2, 2).transpose(0, 1)
    flat = y.reshape(4)                  # NumPy copies here, as PyTorch's reshape does
    flat.mul_(0)
    np.testing.assert_array_equal(y.detach().numpy(), [[1, 3], [2, 4]])
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 4, 6, 8])


# ---------------------------------------------------------------------------
# Point 5: save only what the gradient needs.
# ---------------------------------------------------------------------------
def test_changing_an_operand_that_the_gradient_does_not_read_is_fine(device):
    x = _x(device)
    y = x * 1
    z = y * 3
    y.add_(1)
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3, 3, 3])


def test_mul_by_a_tensor_without_grad_keeps_only_that_tensor(device):
    x = _x(device)
    constant = gg.tensor([2.0, 5.0, 1.0, 1.0], dtype=gg.float64, device=device)
    y = x * 1
    z = y * constant
    y.add_(1)                        # not read by z's gradient: fine
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 5, 1, 1])
    y = x * 1
    z = constant * y
    constant.add_(1)                 # read by z's gradient: refused
    with pytest.raises(gg.AutogradError, match=r"input 0 of op 'mul'.*modified in place"):
        z.sum().backward()


@pytest.mark.parametrize("make, gradient", [
    (lambda y: y / 2.0, lambda x: 0.5 + 0 * x),     # the gradient of y / 2 reads only the 2
    (lambda y: 2.0 ** y, lambda x: 2.0 ** x * np.log(2.0)),   # reads the output 2**y, not y
    (lambda y: 2.0 / y, None),                       # the gradient of 2 / y reads y
    (lambda y: y * y, None),
    (lambda y: y ** 2.0, None),
])
def test_division_and_power_keep_what_their_gradients_read(make, gradient, device):
    x = _x(device)
    y = x * 1
    z = make(y)
    y.add_(1)
    if gradient is not None:
        z.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), gradient(np.array(X)), rtol=1e-12)
    else:
        with pytest.raises(gg.AutogradError, match="modified in place"):
            z.sum().backward()


def test_a_zero_dimensional_view_is_a_view(device):
    x = _x(device)
    y = (x * 1).reshape(2, 2)
    corner = y[0][0]                 # NumPy alone would give a scalar copy here
    corner.mul_(5)
    np.testing.assert_array_equal(y.detach().numpy(), [[5, 2], [3, 4]])
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [50, 4, 6, 8])


@pytest.mark.parametrize("fill", ["zero_", "fill_"])
def test_filling_a_non_leaf_keeps_it_in_the_graph_with_a_zero_gradient(device, fill):
    # PyTorch: y.zero_() on a non-leaf keeps requires_grad, and y.sum().backward()
    # gives the old history a zero gradient instead of an error.
    x = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 1
    getattr(y, fill)(*(() if fill == "zero_" else (3.0,)))
    assert y.requires_grad and y.grad_fn is not None
    (y.sum() + (x * x).sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_view_refuses_to_copy_and_reshape_copies(device):
    # PyTorch's view never copies: a silent copy would let v.mul_(2) miss its base.
    t = gg.arange(12.0, device=device).reshape(3, 4)[:, 1:]
    with pytest.raises(gg.ShapeError, match=r"view: .*reshape"):
        t.view(-1)
    assert t.reshape(-1).shape == (9,) and t.contiguous().view(-1).shape == (9,)
    base = gg.arange(6.0, device=device)
    base.view(2, 3)[1].mul_(2)
    np.testing.assert_array_equal(base.numpy(), [0, 1, 2, 6, 8, 10])


def test_view_as_a_dtype_reinterprets_the_bits(device):
    bits = gg.tensor([1.0, -2.0], device=device).view(gg.int32)
    np.testing.assert_array_equal(bits.numpy(), np.array([1.0, -2.0], np.float32).view(np.int32))
    with pytest.raises(gg.DTypeError, match="to"):
        gg.ones(2, device=device).view(gg.float64)
    with pytest.raises(gg.AutogradError, match="detach"):
        gg.ones(2, device=device, requires_grad=True).view(gg.int32)

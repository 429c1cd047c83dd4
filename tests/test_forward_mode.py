"""Forward mode (gg.jvp): tangents carried through ops, control flow, nesting and gg.Function.

Every expected value is either a closed form derived by hand or central
differences (gg.numerical_grad); the reverse mode of the same function is an
independent cross-check.
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.ops import OPS


def t64(values, device):
    return gg.tensor(np.asarray(values, dtype=np.float64), device=device)


def test_every_differentiable_op_has_a_jvp_rule():
    missing = sorted(name for name, op in OPS.items() if op.differentiable and op.jvp is None)
    assert not missing, f"ops without a forward-mode rule: {missing}"


def test_jvp_of_a_closed_form(device):
    # f(x, y) = 1 + x + exp(sin(x y)); J [dx, dy] = f_x dx + f_y dy
    x, y = t64(0.7, device), t64(-1.3, device)
    dx, dy = t64(0.25, device), t64(2.0, device)
    out, tangent = gg.jvp(lambda a, b: 1 + a + (a * b).sin().exp(), (x, y), (dx, dy))
    xv, yv = 0.7, -1.3
    f_x = 1 + np.exp(np.sin(xv * yv)) * np.cos(xv * yv) * yv
    f_y = np.exp(np.sin(xv * yv)) * np.cos(xv * yv) * xv
    assert float(out) == pytest.approx(1 + xv + np.exp(np.sin(xv * yv)), rel=1e-12)
    assert float(tangent) == pytest.approx(f_x * 0.25 + f_y * 2.0, rel=1e-12)
    assert tangent.device == x.device


def _piecewise(x, steps):
    # Python control flow on values: branches and a data-dependent loop.
    if float(x.sum()) > 0:
        y = x.sin() * x
    else:
        y = x.exp()
    iterations = 0
    while float(y.abs().max()) < steps and iterations < 20:
        y = y * 2 + x
        iterations += 1
    return y


@pytest.mark.parametrize("start", [[0.3, 0.5], [-0.4, -0.2]])
def test_jvp_follows_python_control_flow(start, device):
    x = t64(start, device)
    v = t64([1.0, -0.5], device)
    out, tangent = gg.jvp(lambda a: _piecewise(a, 5.0), (x,), (v,))
    # The branch taken is fixed in a neighbourhood of x: central differences along v agree.
    eps = 1e-6
    plus = _piecewise(t64(np.asarray(start) + eps * np.asarray([1.0, -0.5]), device), 5.0)
    minus = _piecewise(t64(np.asarray(start) - eps * np.asarray([1.0, -0.5]), device), 5.0)
    numeric = (plus.numpy() - minus.numpy()) / (2 * eps)
    np.testing.assert_allclose(tangent.numpy(), numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(out.numpy(), _piecewise(x, 5.0).numpy())
    # And reverse mode agrees with forward mode: <grad of sum(w * f), v> == <w, J v>.
    w = np.array([0.3, -1.1])
    xr = t64(start, device).requires_grad_()
    (_piecewise(xr, 5.0) * t64(w, device)).sum().backward()
    assert float(np.dot(xr.grad.numpy(), [1.0, -0.5])) == pytest.approx(float(np.dot(w, tangent.numpy())),
                                                                       rel=1e-10)


def test_jvp_multiple_inputs_and_outputs(device):
    a = t64([[1.0, 2.0], [3.0, 4.0]], device)
    b = t64([0.5, -1.0], device)
    da = t64([[0.1, 0.0], [0.0, 0.2]], device)
    db = t64([1.0, 1.0], device)

    def f(a, b):
        return a @ b, (a * a).sum()

    (mv, sq), (dmv, dsq) = gg.jvp(f, (a, b), (da, db))
    np.testing.assert_allclose(dmv.numpy(), da.numpy() @ b.numpy() + a.numpy() @ db.numpy())
    assert float(dsq) == pytest.approx(float((2 * a.numpy() * da.numpy()).sum()))
    assert mv.shape == (2,) and sq.shape == ()


def test_jvp_matches_numerical_directional_derivative_of_an_mlp(device):
    rng = np.random.default_rng(1)
    w1, w2 = rng.standard_normal((5, 4)), rng.standard_normal((1, 5))
    x = rng.standard_normal((3, 4))
    v1, v2 = rng.standard_normal(w1.shape), rng.standard_normal(w2.shape)

    def loss(a, b):
        hidden = (t64(x, device) @ a.T).tanh()
        return ((hidden @ b.T) ** 2).mean()

    _, tangent = gg.jvp(loss, (t64(w1, device), t64(w2, device)), (t64(v1, device), t64(v2, device)))
    g1, g2 = gg.numerical_grad(loss, [t64(w1, device), t64(w2, device)])
    expected = float((g1.numpy() * v1).sum() + (g2.numpy() * v2).sum())
    assert float(tangent) == pytest.approx(expected, rel=1e-7)


def test_nested_jvp_gives_second_derivatives(device):
    # d2/dx2 [x^3 sin x] = 6x sin x + 6x^2 cos x - x^3 sin x
    x0 = 0.9
    x = t64(x0, device)
    one = t64(1.0, device)

    def f(x):
        return x ** 3 * x.sin()

    def first(x):
        return gg.jvp(f, (x,), (one,))[1]

    value, second = gg.jvp(first, (x,), (one,))
    assert float(value) == pytest.approx(3 * x0 ** 2 * np.sin(x0) + x0 ** 3 * np.cos(x0), rel=1e-12)
    expected = 6 * x0 * np.sin(x0) + 6 * x0 ** 2 * np.cos(x0) - x0 ** 3 * np.sin(x0)
    assert float(second) == pytest.approx(expected, rel=1e-12)


def test_nested_jvp_mixed_partials_of_two_variables(device):
    # f = x^2 y^3: d2f/dxdy = 6 x y^2 (inner level along x, outer level along y)
    x, y = t64(1.5, device), t64(-0.5, device)
    one, zero = t64(1.0, device), t64(0.0, device)

    def df_dx(x, y):
        return gg.jvp(lambda a: a ** 2 * y ** 3, (x,), (one,))[1]

    _, mixed = gg.jvp(df_dx, (x, y), (zero, one))
    assert float(mixed) == pytest.approx(6 * 1.5 * 0.25)


def test_tangents_do_not_leak_out_of_jvp(device):
    x = t64([1.0, 2.0], device)
    out, tangent = gg.jvp(lambda a: a * 3, (x,), (t64([1.0, 1.0], device),))
    assert not out._tangents and not x._tangents
    later = out * 2   # a plain op after the level is closed carries nothing
    assert not later._tangents
    np.testing.assert_allclose(tangent.numpy(), [3.0, 3.0])


def test_tangent_shape_must_match_primal(device):
    with pytest.raises(gg.ShapeError, match="tangent of shape"):
        gg.jvp(lambda a: a, (t64([1.0, 2.0], device),), (t64([1.0], device),))


class _CubeWithoutJvp(gg.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


class _Cube(_CubeWithoutJvp):
    @staticmethod
    def jvp(ctx, tangent):
        (x,) = ctx.saved_tensors
        return tangent * 3 * x * x


def test_jvp_through_a_function_with_a_jvp_rule(device):
    x = t64([1.0, -2.0], device)
    v = t64([0.5, 1.0], device)
    out, tangent = gg.jvp(lambda a: _Cube.apply(a).sin(), (x,), (v,))
    xs = np.array([1.0, -2.0])
    np.testing.assert_allclose(tangent.numpy(), np.cos(xs ** 3) * 3 * xs ** 2 * np.array([0.5, 1.0]))
    np.testing.assert_allclose(out.numpy(), np.sin(xs ** 3))


def test_function_without_jvp_raises_a_clear_error(device):
    x = t64([1.0, 2.0], device)
    with pytest.raises(gg.AutogradError, match="_CubeWithoutJvp defines no jvp"):
        gg.jvp(lambda a: _CubeWithoutJvp.apply(a), (x,), (t64([1.0, 1.0], device),))
    # Reverse mode through it still works, and the level was closed despite the error.
    from gpugrad.autograd.tape import state
    assert state.forward_levels == 0
    xr = t64([1.0, 2.0], device).requires_grad_()
    _CubeWithoutJvp.apply(xr).sum().backward()
    np.testing.assert_allclose(xr.grad.numpy(), [3.0, 12.0])


def test_float32_tangents_stay_float32(device):
    x = gg.tensor([1.0, 2.0], device=device)
    _, tangent = gg.jvp(lambda a: (a * a).exp(), (x,), (gg.ones(2, device=device),))
    assert tangent.dtype == gg.float32

"""gg.vjp, gg.jacrev, gg.jacfwd, gg.hessian, gg.hvp: against each other, closed forms and
central differences.

The Hessians here go through forward-over-reverse (a backward pass run inside a
forward-mode level, its VJP rules carrying tangents), reverse-over-reverse
(create_graph) and forward-over-forward; the three must agree.
"""

import numpy as np
import pytest

import gpugrad as gg


def t64(values, device):
    return gg.tensor(np.asarray(values, dtype=np.float64), device=device)


def numerical_jacobian(f, x, eps=1e-6):
    """Central-difference Jacobian of f at x (NumPy arrays in, out.shape + x.shape)."""
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = eps
        step = step.reshape(x.shape)
        columns.append((np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2 * eps))
    out_shape = np.asarray(f(x)).shape
    return np.stack(columns, axis=-1).reshape(out_shape + x.shape)


def numerical_hessian(f, x, eps=1e-4):
    """Hessian by central differences of the numerical gradient (second differences)."""
    def gradient(point):
        return numerical_jacobian(f, point, eps)
    return numerical_jacobian(gradient, x, eps)


# ---------------------------------------------------------------- vjp
def test_vjp_matches_backward_and_can_be_called_repeatedly(device):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    x = t64(a, device)
    out, vjp_fn = gg.vjp(lambda t: (t.sin() * t).sum(dim=1), x)
    np.testing.assert_allclose(out.numpy(), (np.sin(a) * a).sum(axis=1))
    for _ in range(2):
        (g,) = vjp_fn(t64([1.0, 2.0, -1.0], device))
        expected = (np.cos(a) * a + np.sin(a)) * np.array([1.0, 2.0, -1.0])[:, None]
        np.testing.assert_allclose(g.numpy(), expected, rtol=1e-12)
    assert not out.requires_grad and not g.requires_grad   # plain results for plain primals
    assert x.grad is None                                  # nothing accumulated into the caller's tensors


def test_vjp_several_primals_outputs_and_unused_primal(device):
    x, y, unused = t64([1.0, 2.0], device), t64([3.0, -1.0], device), t64([5.0], device)
    (_prod, _total), vjp_fn = gg.vjp(lambda a, b, c: (a * b, (a ** 2).sum()), x, y, unused)
    gx, gy, gu = vjp_fn(t64([1.0, 1.0], device), t64(2.0, device))
    np.testing.assert_allclose(gx.numpy(), [3.0 + 4 * 1.0, -1.0 + 4 * 2.0])
    np.testing.assert_allclose(gy.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(gu.numpy(), [0.0])


def test_vjp_rejects_a_cotangent_of_the_wrong_shape(device):
    _, vjp_fn = gg.vjp(lambda a: a * 2, t64([1.0, 2.0], device))
    with pytest.raises(gg.ShapeError, match="cotangent 0 has shape"):
        vjp_fn(t64([1.0, 2.0, 3.0], device))


# ---------------------------------------------------------------- Jacobians
def _vector_function(x):
    # R^3 -> R^2, with cross terms
    return gg.stack([x[0] * x[1].sin(), (x * x).sum() + x[2].exp()])


def _vector_function_numpy(x):
    return np.array([x[0] * np.sin(x[1]), (x * x).sum() + np.exp(x[2])])


def test_jacrev_and_jacfwd_agree_with_hand_derived_jacobian(device):
    p = np.array([0.4, -1.2, 0.3])
    expected = np.array([[np.sin(p[1]), p[0] * np.cos(p[1]), 0.0],
                         [2 * p[0], 2 * p[1], 2 * p[2] + np.exp(p[2])]])
    reverse = gg.jacrev(_vector_function)(t64(p, device))
    forward = gg.jacfwd(_vector_function)(t64(p, device))
    assert reverse.shape == forward.shape == (2, 3)
    np.testing.assert_allclose(reverse.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(forward.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(reverse.numpy(), numerical_jacobian(_vector_function_numpy, p), rtol=1e-6)


def test_jacobian_layout_is_output_shape_then_input_shape(device):
    rng = np.random.default_rng(2)
    a, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    weight = t64(w, device)

    def f(x):
        return (x @ weight).tanh()     # (2, 3) -> (2, 4)

    expected = numerical_jacobian(lambda x: np.tanh(x @ w), a)
    for transform in (gg.jacrev, gg.jacfwd):
        jacobian = transform(f)(t64(a, device))
        assert jacobian.shape == (2, 4, 2, 3)
        np.testing.assert_allclose(jacobian.numpy(), expected, rtol=1e-6, atol=1e-9)


def test_argnums_tuple_gives_one_jacobian_per_argument(device):
    x, y = t64([1.0, 2.0], device), t64([3.0, 4.0, 5.0], device)

    def f(a, b):
        return gg.outer(a, b).sum(dim=1)   # out_i = a_i * sum(b)

    for transform in (gg.jacrev, gg.jacfwd):
        jx, jy = transform(f, argnums=(0, 1))(x, y)
        np.testing.assert_allclose(jx.numpy(), np.diag([12.0, 12.0]))
        np.testing.assert_allclose(jy.numpy(), [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
        (jy_only,) = (transform(f, argnums=1)(x, y),)
        np.testing.assert_allclose(jy_only.numpy(), jy.numpy())


# ---------------------------------------------------------------- Hessians
def _all_hessians(f, x):
    """Forward-over-reverse (gg.hessian), reverse-over-reverse, forward-over-forward, reverse-over-forward."""
    return {
        "fwd-over-rev": gg.hessian(f)(x).numpy(),
        "rev-over-rev": gg.jacrev(gg.jacrev(f))(x).numpy(),
        "fwd-over-fwd": gg.jacfwd(gg.jacfwd(f))(x).numpy(),
        "rev-over-fwd": gg.jacrev(gg.jacfwd(f))(x).numpy(),
    }


def test_hessian_of_quadratic_form_is_a_plus_a_transpose(device):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4))
    matrix = t64(a, device)
    x = t64(rng.standard_normal(4), device)
    for name, h in _all_hessians(lambda v: v @ (matrix @ v), x).items():
        np.testing.assert_allclose(h, a + a.T, rtol=1e-12, atol=1e-12, err_msg=name)


def test_hessian_of_sum_tanh_of_matrix_vector_product(device):
    # f(x) = sum tanh(W x);  H = W^T diag(-2 tanh(u) (1 - tanh(u)^2)) W,  u = W x
    rng = np.random.default_rng(4)
    w, p = rng.standard_normal((5, 3)), rng.standard_normal(3)
    weight = t64(w, device)
    u = w @ p
    expected = w.T @ np.diag(-2 * np.tanh(u) * (1 - np.tanh(u) ** 2)) @ w
    hessians = _all_hessians(lambda v: (weight @ v).tanh().sum(), t64(p, device))
    for name, h in hessians.items():
        np.testing.assert_allclose(h, expected, rtol=1e-10, atol=1e-12, err_msg=name)
    numeric = numerical_hessian(lambda v: np.tanh(w @ v).sum(), p)
    np.testing.assert_allclose(hessians["fwd-over-rev"], numeric, rtol=1e-4, atol=1e-6)


def test_hessian_of_logsumexp_is_diag_softmax_minus_outer(device):
    p = np.array([0.5, -1.0, 2.0, 0.1])
    softmax = np.exp(p - p.max()) / np.exp(p - p.max()).sum()
    expected = np.diag(softmax) - np.outer(softmax, softmax)
    for name, h in _all_hessians(lambda v: v.logsumexp(dim=0), t64(p, device)).items():
        np.testing.assert_allclose(h, expected, rtol=1e-10, atol=1e-12, err_msg=name)


def test_hessian_of_small_mlp_loss_matches_other_modes_and_differences(device):
    rng = np.random.default_rng(5)
    inputs, targets = rng.standard_normal((6, 3)), rng.standard_normal((6, 1))
    n_hidden = 4
    theta0 = rng.standard_normal(3 * n_hidden + n_hidden) * 0.7   # W1 (4x3) and w2 (1x4), flattened

    def loss(theta):
        w1 = theta[:3 * n_hidden].reshape(n_hidden, 3)
        w2 = theta[3 * n_hidden:].reshape(1, n_hidden)
        hidden = (t64(inputs, device) @ w1.T).tanh()
        return ((hidden @ w2.T - t64(targets, device)) ** 2).mean()

    def loss_numpy(theta):
        w1 = theta[:3 * n_hidden].reshape(n_hidden, 3)
        w2 = theta[3 * n_hidden:].reshape(1, n_hidden)
        return ((np.tanh(inputs @ w1.T) @ w2.T - targets) ** 2).mean()

    hessians = _all_hessians(loss, t64(theta0, device))
    reference = hessians["rev-over-rev"]
    assert reference.shape == (16, 16)
    np.testing.assert_allclose(reference, reference.T, atol=1e-12)
    for name, h in hessians.items():
        np.testing.assert_allclose(h, reference, rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(reference, numerical_hessian(loss_numpy, theta0), rtol=1e-4, atol=1e-6)


def test_hessian_of_two_argument_function(device):
    # f(x, y) = x^2 y: d2f/dx2 = 2y, d2f/dxdy = 2x
    x, y = t64([1.5], device), t64([-2.0], device)
    hxx = gg.hessian(lambda a, b: (a ** 2 * b).sum(), argnums=0)(x, y)
    np.testing.assert_allclose(hxx.numpy(), [[-4.0]])
    (hxx2, hxy), (hyx, hyy) = gg.hessian(lambda a, b: (a ** 2 * b).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose([hxx2.item(), hxy.item(), hyx.item(), hyy.item()], [-4.0, 3.0, 3.0, 0.0])


# ---------------------------------------------------------------- hvp
def test_hvp_equals_hessian_times_vector_without_forming_it(device):
    rng = np.random.default_rng(6)
    w, p, v = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(3)
    weight = t64(w, device)

    def f(x):
        return (weight @ x).tanh().sum() + (x ** 4).sum()

    value, hv = gg.hvp(f, t64(p, device), t64(v, device))
    hessian = gg.jacrev(gg.jacrev(f))(t64(p, device)).numpy()
    np.testing.assert_allclose(hv.numpy(), hessian @ v, rtol=1e-10)
    assert float(value) == pytest.approx(np.tanh(w @ p).sum() + (p ** 4).sum())
    assert not hv.requires_grad


def test_hvp_with_several_primals(device):
    # f(x, y) = sum(x^2 * y): H = [[2 diag(y), 2 diag(x)], [2 diag(x), 0]]
    x, y = t64([1.0, 2.0], device), t64([3.0, -1.0], device)
    vx, vy = t64([1.0, 0.5], device), t64([-1.0, 2.0], device)
    _, (hx, hy) = gg.hvp(lambda a, b: (a * a * b).sum(), (x, y), (vx, vy))
    np.testing.assert_allclose(hx.numpy(),
                               2 * np.array([3.0, -1.0]) * [1.0, 0.5] + 2 * np.array([1.0, 2.0]) * [-1.0, 2.0])
    np.testing.assert_allclose(hy.numpy(), 2 * np.array([1.0, 2.0]) * [1.0, 0.5])


def test_hvp_requires_a_scalar_function(device):
    with pytest.raises(gg.ShapeError, match="one-element"):
        gg.hvp(lambda a: a * 2, t64([1.0, 2.0], device), t64([1.0, 1.0], device))


def test_transforms_leave_no_forward_levels_or_grad_mode_behind(device):
    from gpugrad.autograd.tape import state
    gg.hessian(lambda v: (v ** 3).sum())(t64([1.0, 2.0], device))
    with gg.no_grad():
        h = gg.hessian(lambda v: (v ** 3).sum())(t64([1.0, 2.0], device))   # transforms enable grad themselves
    np.testing.assert_allclose(h.numpy(), np.diag([6.0, 12.0]))
    assert state.forward_levels == 0 and gg.is_grad_enabled()


# ---------------------------------------------------------------- PyTorch as an oracle
@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch's own, raised while it imports
def test_against_torch_func(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    w, p, v = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(3)

    def ours(x):
        return (t64(w, device) @ x).tanh().logsumexp(dim=0) + (x * x.sin()).sum()

    def theirs(x):
        return torch.logsumexp(torch.tanh(torch.from_numpy(w) @ x), dim=0) + (x * torch.sin(x)).sum()

    xt = torch.from_numpy(p)
    np.testing.assert_allclose(gg.hessian(ours)(t64(p, device)).numpy(),
                               torch.func.hessian(theirs)(xt).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gg.jacrev(gg.jacrev(ours))(t64(p, device)).numpy(),
                               torch.func.jacrev(torch.func.jacrev(theirs))(xt).numpy(), rtol=1e-10, atol=1e-12)
    _, hv = gg.hvp(ours, t64(p, device), t64(v, device))
    _, hv_torch = torch.func.jvp(torch.func.grad(theirs), (xt,), (torch.from_numpy(v),))
    np.testing.assert_allclose(hv.numpy(), hv_torch.numpy(), rtol=1e-10, atol=1e-12)
    jac = gg.jacfwd(lambda x: (t64(w, device) @ x).sin())(t64(p, device))
    jac_torch = torch.func.jacfwd(lambda x: torch.sin(torch.from_numpy(w) @ x))(xt)
    np.testing.assert_allclose(jac.numpy(), jac_torch.numpy(), rtol=1e-12)

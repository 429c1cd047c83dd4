"""gg.nn.functional against torch.nn.functional: values and gradients, on every device.

The op battery (tests/test_ops_battery.py) checks the primitives behind F to
second order; here every public F function is checked against PyTorch for
several parameter combinations, plus numerical safety at |x| ~ 1e4 in float32,
dropout's statistics and seeding, and the errors bad input gets.
"""

import math

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _gg(array, device, grad):
    return gg.tensor(array, device=device, requires_grad=grad and array.dtype.kind == "f")


def _torch(array, grad):
    return torch.tensor(array, requires_grad=grad and array.dtype.kind == "f")


def check(gg_fn, torch_fn, *arrays, device="cpu", grad=True, rtol=1e-6, atol=1e-8, seed=0):
    """Run both on float64 copies of ``arrays``; compare outputs and input gradients."""
    gg_inputs = [_gg(a, device, grad) for a in arrays]
    torch_inputs = [_torch(a, grad) for a in arrays]
    got, expected = gg_fn(*gg_inputs), torch_fn(*torch_inputs)
    if isinstance(expected, tuple):
        got, expected = got[0], expected[0]
    np.testing.assert_allclose(got.numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
    if not grad:
        return
    weights = np.random.default_rng(seed).standard_normal(tuple(expected.shape))
    (got * gg.tensor(weights, device=device)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for index, (mine, theirs) in enumerate(zip(gg_inputs, torch_inputs, strict=True)):
        if theirs.grad is not None:
            assert mine.grad is not None, f"no gradient for input {index}"
            np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"gradient of input {index}")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------
ACTIVATIONS = [
    ("relu", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {}), ("elu", {"alpha": 0.5}),
    ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("sigmoid", {}), ("tanh", {}), ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}), ("mish", {}),
]


@pytest.mark.parametrize("name,params", ACTIVATIONS, ids=[f"{n}-{p}" for n, p in ACTIVATIONS])
def test_activation_matches_torch(name, params, device, rng):
    x = rng.standard_normal((4, 5, 6)) * 3
    check(lambda t: getattr(F, name)(t, **params), lambda t: getattr(TF, name)(t, **params), x, device=device)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "mish"])
def test_activation_second_order_through_F(name, device, rng):
    """F's path (the mask kept in the node for relu) differentiates twice."""
    x = gg.tensor(rng.uniform(0.3, 2.0, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4)), device=device)
    assert gg.gradcheck(getattr(F, name), [x])
    assert gg.gradgradcheck(getattr(F, name), [x])


def test_activation_methods_and_float32(device):
    x = gg.tensor([-1.0, 0.5, 2.0], device=device, requires_grad=True)
    assert np.allclose(x.relu().numpy(), [0.0, 0.5, 2.0])
    assert np.allclose(x.sigmoid().numpy(), 1 / (1 + np.exp(-np.array([-1.0, 0.5, 2.0]))))
    y = F.relu(x.float())
    y.sum().backward()
    assert y.dtype == gg.float32 and np.allclose(x.grad.numpy(), [0.0, 1.0, 1.0])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim, device, rng):
    x = rng.standard_normal((3, 4, 5))
    check(lambda t: F.softmax(t, dim=dim), lambda t: TF.softmax(t, dim=dim), x, device=device)
    check(lambda t: F.log_softmax(t, dim=dim), lambda t: TF.log_softmax(t, dim=dim), x, device=device)


# --------------------------------------------------------------------------
# linear and convolution
# --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(shape, bias, device, rng):
    arrays = [rng.standard_normal(shape), rng.standard_normal((3, 5))] + ([rng.standard_normal(3)] if bias else [])
    check(F.linear, TF.linear, *arrays, device=device)


def test_linear_skips_the_input_gradient_it_does_not_need(device, rng):
    x = gg.tensor(rng.standard_normal((4, 5)), device=device)
    w = gg.tensor(rng.standard_normal((3, 5)), device=device, requires_grad=True)
    F.linear(x, w, gg.zeros(3, device=device, dtype=gg.float64)).sum().backward()
    assert x.grad is None and w.grad.shape == (3, 5)


CONV2D = [
    dict(), dict(stride=2), dict(padding=1), dict(padding=(2, 0), stride=(1, 2)), dict(dilation=2, padding=2),
    dict(groups=2), dict(groups=4, padding=1), dict(padding="same"), dict(padding="same", dilation=(2, 1)),
    dict(padding="valid", stride=3), dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=2),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("params", CONV2D, ids=[str(p) for p in CONV2D])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(params, bias, device, rng):
    groups = params.get("groups", 1)
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6 if groups != 4 else 4, 4 // groups, 3, 2))
    arrays = [x, w] + ([rng.standard_normal(w.shape[0])] if bias else [])
    check(lambda *t: F.conv2d(*t, **params), lambda *t: TF.conv2d(*t, **params), *arrays, device=device)


def test_conv2d_unbatched_and_1x1(device, rng):
    check(lambda x, w: F.conv2d(x, w), lambda x, w: TF.conv2d(x, w),
          rng.standard_normal((3, 5, 5)), rng.standard_normal((2, 3, 1, 1)), device=device)


CONV1D = [dict(), dict(stride=2, padding=1), dict(dilation=2, padding="same"), dict(groups=2, stride=3, padding=2)]


@pytest.mark.parametrize("params", CONV1D, ids=[str(p) for p in CONV1D])
def test_conv1d(params, device, rng):
    x = rng.standard_normal((2, 4, 11))
    w = rng.standard_normal((6, 4 // params.get("groups", 1), 3))
    check(lambda *t: F.conv1d(*t, **params), lambda *t: TF.conv1d(*t, **params), x, w, rng.standard_normal(6),
          device=device)


def test_conv2d_second_order(device, rng):
    x = gg.tensor(rng.standard_normal((1, 2, 5, 5)), device=device)
    w = gg.tensor(rng.standard_normal((2, 1, 3, 3)), device=device)
    assert gg.gradgradcheck(lambda a, b: F.conv2d(a, b, stride=2, padding=1, groups=2), [x, w])


# --------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------
POOL = [
    dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)), dict(kernel_size=3, stride=1, padding=1, ceil_mode=True),
]


@pytest.mark.parametrize("params", POOL, ids=[str(p) for p in POOL])
def test_max_pool2d(params, device, rng):
    x = rng.standard_normal((2, 3, 9, 8))
    check(lambda t: F.max_pool2d(t, **params), lambda t: TF.max_pool2d(t, **params), x, device=device)
    check(lambda t: F.max_pool2d(t, dilation=2, **params), lambda t: TF.max_pool2d(t, dilation=2, **params), x,
          device=device)


@pytest.mark.parametrize("params", POOL[:3], ids=[str(p) for p in POOL[:3]])
def test_max_pool_ties_route_to_the_first_max(params, device, rng):
    """After a ReLU most windows are all zeros: PyTorch gives the first one the gradient."""
    x = np.maximum(rng.integers(-3, 2, (2, 3, 8, 8)).astype(np.float64), 0)
    check(lambda t: F.max_pool2d(t, **params), lambda t: TF.max_pool2d(t, **params), x, device=device)


def test_max_pool_return_indices(device, rng):
    x = rng.standard_normal((2, 3, 9, 8))
    out, indices = F.max_pool2d(gg.tensor(x, device=device), 3, 2, 1, return_indices=True)
    expected, expected_indices = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    assert indices.dtype == gg.int64
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    x1 = rng.standard_normal((2, 3, 10))
    _, indices = F.max_pool1d(gg.tensor(x1, device=device), 3, 2, return_indices=True)
    np.testing.assert_array_equal(indices.numpy(), TF.max_pool1d(torch.tensor(x1), 3, 2, return_indices=True)[1])


POOL1D = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, ceil_mode=True)]


@pytest.mark.parametrize("params", POOL1D, ids=[str(p) for p in POOL1D])
def test_pool1d(params, device, rng):
    x = rng.standard_normal((2, 3, 11))
    check(lambda t: F.max_pool1d(t, **params), lambda t: TF.max_pool1d(t, **params), x, device=device)
    check(lambda t: F.avg_pool1d(t, **params), lambda t: TF.avg_pool1d(t, **params), x, device=device)
    check(lambda t: F.avg_pool1d(t, count_include_pad=False, **params),
          lambda t: TF.avg_pool1d(t, count_include_pad=False, **params), x, device=device)


@pytest.mark.parametrize("params", POOL, ids=[str(p) for p in POOL])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d(params, count_include_pad, device, rng):
    x = rng.standard_normal((2, 3, 9, 8))
    check(lambda t: F.avg_pool2d(t, count_include_pad=count_include_pad, **params),
          lambda t: TF.avg_pool2d(t, count_include_pad=count_include_pad, **params), x, device=device)


def test_avg_pool2d_divisor_override(device, rng):
    x = rng.standard_normal((1, 2, 6, 6))
    check(lambda t: F.avg_pool2d(t, 3, 2, 1, divisor_override=5),
          lambda t: TF.avg_pool2d(t, 3, 2, 1, divisor_override=5), x, device=device)


@pytest.mark.parametrize("output_size", [1, 3, (4, 5), (None, 2), (7, 8)])
def test_adaptive_avg_pool2d(output_size, device, rng):
    x = rng.standard_normal((2, 3, 9, 8))
    check(lambda t: F.adaptive_avg_pool2d(t, output_size), lambda t: TF.adaptive_avg_pool2d(t, output_size), x,
          device=device)


# --------------------------------------------------------------------------
# normalisation, dropout, embedding, one_hot, pad
# --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (2, 4, 3, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_and_running_stats(shape, affine, device, rng):
    x = rng.standard_normal(shape) * 2 + 1
    affine_arrays = [rng.standard_normal(4), rng.standard_normal(4)] if affine else []
    check(lambda t, *wb: F.batch_norm(t, None, None, *wb, training=True),
          lambda t, *wb: TF.batch_norm(t, None, None, *wb, training=True), x, *affine_arrays, device=device)
    running = [rng.standard_normal(4), rng.uniform(0.5, 2, 4)]
    mine = [gg.tensor(a, device=device) for a in running]
    theirs = [torch.tensor(a) for a in running]
    F.batch_norm(gg.tensor(x, device=device), *mine, training=True, momentum=0.3)
    TF.batch_norm(torch.tensor(x), *theirs, training=True, momentum=0.3)
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


def test_batch_norm_eval(device, rng):
    x = rng.standard_normal((5, 3, 4))
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    check(lambda t, w, b: F.batch_norm(t, gg.tensor(mean, device=device), gg.tensor(var, device=device), w, b),
          lambda t, w, b: TF.batch_norm(t, torch.tensor(mean), torch.tensor(var), w, b), x,
          rng.standard_normal(3), rng.standard_normal(3), device=device)


@pytest.mark.parametrize("normalized_shape", [5, (4, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(normalized_shape, affine, device, rng):
    x = rng.standard_normal((3, 4, 5)) * 3
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    affine_arrays = [rng.standard_normal(shape), rng.standard_normal(shape)] if affine else []
    check(lambda t, *wb: F.layer_norm(t, normalized_shape, *wb, eps=1e-3),
          lambda t, *wb: TF.layer_norm(t, shape, *wb, eps=1e-3), x, *affine_arrays, device=device)


def test_dropout_statistics_seed_and_gradient(device):
    x = gg.ones(200, 100, device=device, requires_grad=True)
    gg.manual_seed(7)
    y = F.dropout(x, p=0.3)
    gg.manual_seed(7)
    again = F.dropout(x, p=0.3)
    values = y.detach().numpy()
    np.testing.assert_array_equal(values, again.detach().numpy())
    kept = values[values != 0]
    np.testing.assert_allclose(kept, 1 / 0.7, rtol=1e-6)
    assert abs((values == 0).mean() - 0.3) < 0.02
    (y * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * values)      # grad = mask / (1 - p), times 3
    assert F.dropout(x, 0.3, training=False) is x
    assert np.all(F.dropout(x, 1.0).numpy() == 0)


def test_dropout_gradcheck_and_eval(device):
    x = gg.tensor(np.random.default_rng(0).standard_normal((4, 5)), device=device)
    gg.manual_seed(3)
    base = F.dropout(x, 0.4).numpy()

    def fixed(t):
        gg.manual_seed(3)
        return F.dropout(t, 0.4)
    np.testing.assert_allclose(fixed(x).numpy(), base)
    assert gg.gradcheck(fixed, [x])
    with pytest.raises(ValueError, match="p=1.5"):
        F.dropout(x, 1.5)


def test_embedding_with_padding_idx(device, rng):
    weight = rng.standard_normal((7, 3))
    index = np.array([[1, 2, 0], [6, 1, 1]])
    check(lambda i, w: F.embedding(i, w, padding_idx=1), lambda i, w: TF.embedding(i, w, padding_idx=1), index, weight,
          device=device)
    check(lambda i, w: F.embedding(i, w), lambda i, w: TF.embedding(i, w), index, weight, device=device)


def test_embedding_max_norm(device, rng):
    weight = rng.standard_normal((5, 3)) * 3
    mine, theirs = gg.tensor(weight, device=device), torch.tensor(weight)
    index = np.array([0, 2, 2])
    out = F.embedding(gg.tensor(index, device=device), mine, max_norm=1.0)
    expected = TF.embedding(torch.tensor(index), theirs, max_norm=1.0)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6)


def test_one_hot_and_pad(device):
    labels = gg.tensor([0, 3, 1], device=device)
    np.testing.assert_array_equal(F.one_hot(labels).numpy(), TF.one_hot(torch.tensor([0, 3, 1])).numpy())
    assert F.one_hot(labels, 5).shape == (3, 5) and F.one_hot(labels).dtype == gg.int64
    with pytest.raises(ValueError, match="out of range"):
        F.one_hot(labels, 2)
    x = np.arange(6.0).reshape(2, 3)
    check(lambda t: F.pad(t, (1, 2)), lambda t: TF.pad(t, (1, 2)), x, device=device)
    check(lambda t: F.pad(t, (1, 0, 0, 2), value=-1.0), lambda t: TF.pad(t, (1, 0, 0, 2), value=-1.0), x,
          device=device)


# --------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["plain", "causal", "bool", "float", "scale"])
def test_scaled_dot_product_attention(mode, device, rng):
    q, k, v = rng.standard_normal((2, 3, 4, 8)), rng.standard_normal((2, 3, 5, 8)), rng.standard_normal((2, 3, 5, 6))
    mask = rng.random((4, 5)) > 0.3
    mask[:, 0] = True
    additive = rng.standard_normal((4, 5))
    options = {"plain": ({}, {}), "causal": ({"is_causal": True}, {"is_causal": True}),
               "bool": ({"attn_mask": gg.tensor(mask, device=device)}, {"attn_mask": torch.tensor(mask)}),
               "float": ({"attn_mask": gg.tensor(additive, device=device)}, {"attn_mask": torch.tensor(additive)}),
               "scale": ({"scale": 0.3}, {"scale": 0.3})}[mode]
    check(lambda *t: F.scaled_dot_product_attention(*t, **options[0]),
          lambda *t: TF.scaled_dot_product_attention(*t, **options[1]), q, k, v, device=device)


# --------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_class_indices(reduction, label_smoothing, weighted, ignore, device, rng):
    logits = rng.standard_normal((7, 5))
    target = rng.integers(0, 5, 7)
    if ignore:
        target[[1, 4]] = -100
    weight = rng.uniform(0.5, 2.0, 5)
    options = dict(reduction=reduction, label_smoothing=label_smoothing)
    check(lambda x, t: F.cross_entropy(x, t, gg.tensor(weight, device=device) if weighted else None, **options),
          lambda x, t: TF.cross_entropy(x, t, torch.tensor(weight) if weighted else None, **options),
          logits, target, device=device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_spatial_and_custom_ignore_index(reduction, device, rng):
    logits = rng.standard_normal((2, 4, 3, 5))
    target = rng.integers(0, 4, (2, 3, 5))
    target[0, 1, 2] = 2
    options = dict(reduction=reduction, ignore_index=2, label_smoothing=0.1)
    weight = rng.uniform(0.5, 2.0, 4)
    check(lambda x, t: F.cross_entropy(x, t, gg.tensor(weight, device=device), **options),
          lambda x, t: TF.cross_entropy(x, t, torch.tensor(weight), **options), logits, target, device=device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_probabilities(reduction, label_smoothing, device, rng):
    logits = rng.standard_normal((2, 4, 3))
    probabilities = rng.dirichlet(np.ones(4), (2, 3)).transpose(0, 2, 1).copy()
    weight = rng.uniform(0.5, 2.0, 4)
    options = dict(reduction=reduction, label_smoothing=label_smoothing)
    check(lambda x, t: F.cross_entropy(x, t, gg.tensor(weight, device=device), **options),
          lambda x, t: TF.cross_entropy(x, t, torch.tensor(weight), **options), logits, probabilities, device=device)
    check(lambda x, t: F.cross_entropy(x, t, **options), lambda x, t: TF.cross_entropy(x, t, **options),
          logits, probabilities, device=device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(reduction, device, rng):
    logp = np.log(rng.dirichlet(np.ones(5), 6))
    target = np.array([0, 4, 2, -100, 1, 3])
    weight = rng.uniform(0.5, 2.0, 5)
    check(lambda x, t: F.nll_loss(x, t, gg.tensor(weight, device=device), reduction=reduction),
          lambda x, t: TF.nll_loss(x, t, torch.tensor(weight), reduction=reduction), logp, target, device=device)
    check(lambda x, t: F.nll_loss(x, t, reduction=reduction), lambda x, t: TF.nll_loss(x, t, reduction=reduction),
          logp, target, device=device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_losses(reduction, device, rng):
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    check(lambda a, b: F.mse_loss(a, b, reduction=reduction), lambda a, b: TF.mse_loss(a, b, reduction=reduction),
          x, t, device=device)
    check(lambda a, b: F.l1_loss(a, b, reduction=reduction), lambda a, b: TF.l1_loss(a, b, reduction=reduction),
          x, t, device=device)
    p, y = rng.uniform(0.02, 0.98, (4, 3)), rng.uniform(0, 1, (4, 3))
    weight = rng.uniform(0.5, 2, 3)
    check(lambda a, b: F.binary_cross_entropy(a, b, gg.tensor(weight, device=device), reduction=reduction),
          lambda a, b: TF.binary_cross_entropy(a, b, torch.tensor(weight), reduction=reduction), p, y, device=device)
    pos_weight = rng.uniform(0.5, 3, 3)
    check(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=gg.tensor(pos_weight, device=device),
                                                          reduction=reduction),
          lambda a, b: TF.binary_cross_entropy_with_logits(a, b, pos_weight=torch.tensor(pos_weight),
                                                           reduction=reduction), x, y, device=device)
    check(lambda a, b: F.binary_cross_entropy_with_logits(a, b, gg.tensor(weight, device=device), reduction=reduction),
          lambda a, b: TF.binary_cross_entropy_with_logits(a, b, torch.tensor(weight), reduction=reduction), x, y,
          device=device)


def test_binary_cross_entropy_clamps_log_at_minus_100(device):
    """Loss and gradients as PyTorch's at the edges: logs clamped at -100, and the
    input's gradient (p - t) / max(p (1 - p), 1e-12), huge rather than 0 where
    the clamp bites.  The target's gradient is the difference of the clamped
    logs: PyTorch's inside (0, 1), finite (+-100) at 0 and 1 where PyTorch's is
    infinite."""
    p = np.array([0.0, 1.0, 0.5, 0.0, 1.0])
    t = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    mine_p = gg.tensor(p, device=device, requires_grad=True)
    mine_t = gg.tensor(t, device=device, requires_grad=True)
    got = F.binary_cross_entropy(mine_p, mine_t, reduction="none")
    theirs_p = torch.tensor(p, requires_grad=True)
    theirs_t = torch.tensor(t, requires_grad=True)
    want = TF.binary_cross_entropy(theirs_p, theirs_t, reduction="none")
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy())
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(mine_p.grad.numpy(), theirs_p.grad.numpy())
    np.testing.assert_allclose(mine_t.grad.numpy()[2], theirs_t.grad.numpy()[2])
    np.testing.assert_array_equal(mine_t.grad.numpy()[[0, 1, 3, 4]], [100.0, -100.0, 100.0, -100.0])
    assert mine_p.grad.numpy()[0] == -1e12


# --------------------------------------------------------------------------
# numerical safety: |x| ~ 1e4 in float32 stays finite and matches float64
# --------------------------------------------------------------------------
BIG = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4 + 1, 2e4, -5.0]])


def _safe_case(fn, device, *extra):
    x32 = gg.tensor(BIG.astype(np.float32), device=device, requires_grad=True)
    x64 = gg.tensor(BIG, device=device, requires_grad=True)
    out32, out64 = fn(x32, *extra), fn(x64, *extra)
    out32.sum().backward()
    out64.sum().backward()
    assert np.all(np.isfinite(out32.numpy())) and np.all(np.isfinite(x32.grad.numpy()))
    scale = np.maximum(np.abs(out64.numpy()), 1.0)
    assert np.all(np.abs(out32.numpy() - out64.numpy()) <= 1e-5 * scale)
    np.testing.assert_allclose(x32.grad.numpy(), x64.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["log_softmax", "softmax", "softplus", "sigmoid", "tanh", "silu", "mish", "gelu",
                                  "elu"])
def test_large_inputs_stay_finite(name, device):
    _safe_case(lambda x: getattr(F, name)(x, **({"dim": 1} if "softmax" in name else {})), device)


def test_large_inputs_losses_stay_finite(device):
    target = gg.tensor([1, 2], device=device)
    _safe_case(lambda x: F.cross_entropy(x, target, reduction="none"), device)
    _safe_case(lambda x: F.cross_entropy(x, target, label_smoothing=0.1), device)
    labels = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.5]])
    _safe_case(lambda x: F.binary_cross_entropy_with_logits(x, gg.tensor(labels.astype(x.dtype), device=device),
                                                            reduction="none"), device)


# --------------------------------------------------------------------------
# bad input gets a clear, typed error
# --------------------------------------------------------------------------
def test_conv_errors():
    x = gg.randn(1, 3, 8, 8)
    with pytest.raises(gg.ShapeError, match=r"3 channels.*weight\.shape\[1\] \* groups"):
        F.conv2d(x, gg.randn(4, 2, 3, 3))
    with pytest.raises(gg.ShapeError, match="groups=2 must divide"):
        F.conv2d(x, gg.randn(4, 1, 3, 3), groups=2)
    with pytest.raises(gg.ShapeError, match="larger than the padded input"):
        F.conv2d(x, gg.randn(4, 3, 9, 3))
    with pytest.raises(gg.ShapeError, match="4-D"):
        F.conv2d(gg.randn(8, 8), gg.randn(4, 3, 3, 3))
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        F.conv2d(x, gg.randn(4, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(gg.DTypeError, match="floating point"):
        F.conv2d(gg.ones(1, 3, 8, 8, dtype=gg.int64), gg.randn(4, 3, 3, 3))
    with pytest.raises(gg.ShapeError, match="conv1d"):
        F.conv1d(gg.randn(2, 3, 8), gg.randn(4, 3, 3, 3))


def test_pool_errors():
    with pytest.raises(gg.ShapeError, match="max_pool2d: kernel"):
        F.max_pool2d(gg.randn(1, 1, 2, 2), 3)
    with pytest.raises(gg.ShapeError, match="at most half the kernel"):
        F.max_pool2d(gg.randn(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(gg.ShapeError, match="max_pool1d"):
        F.max_pool1d(gg.randn(1, 1, 2), 3)
    with pytest.raises(gg.ShapeError, match="avg_pool2d"):
        F.avg_pool2d(gg.randn(4, 4), 2)


def test_loss_errors():
    logits = gg.randn(3, 4)
    with pytest.raises(ValueError, match="target class 7 is out of range for 4 classes"):
        F.cross_entropy(logits, gg.tensor([0, 7, 1]))
    with pytest.raises(ValueError, match="target class -1"):
        F.nll_loss(logits, gg.tensor([0, -1, 1]))
    with pytest.raises(gg.DTypeError, match="class indices"):
        F.cross_entropy(logits, gg.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(gg.ShapeError, match="target of shape"):
        F.cross_entropy(logits, gg.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction='avg'"):
        F.mse_loss(logits, logits, reduction="avg")
    with pytest.raises(gg.ShapeError, match="same shape"):
        F.mse_loss(logits, gg.randn(4, 3))
    with pytest.raises(ValueError, match="probabilities"):
        F.binary_cross_entropy(gg.tensor([1.5]), gg.tensor([1.0]))


def test_norm_and_misc_errors():
    with pytest.raises(gg.ShapeError, match="normalized_shape"):
        F.layer_norm(gg.randn(3, 4), (5,))
    with pytest.raises(gg.ShapeError, match="weight of shape"):
        F.batch_norm(gg.randn(4, 3), None, None, gg.ones(2), gg.zeros(3), training=True)
    with pytest.raises(gg.ShapeError, match="more than one value per channel"):
        F.batch_norm(gg.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(gg.randn(4, 3), None, None)
    with pytest.raises(gg.ShapeError, match="linear"):
        F.linear(gg.randn(2, 3), gg.randn(4, 5))
    with pytest.raises(IndexError, match="embedding"):
        F.embedding(gg.tensor([0, 9]), gg.randn(5, 2))
    with pytest.raises(gg.DTypeError, match="integer"):
        F.embedding(gg.tensor([0.0]), gg.randn(5, 2))
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(gg.randn(3), approximate="fast")


def test_every_documented_name_exists():
    names = ("relu leaky_relu elu gelu silu sigmoid tanh softplus mish softmax log_softmax linear conv1d conv2d "
             "max_pool1d max_pool2d avg_pool1d avg_pool2d adaptive_avg_pool2d batch_norm layer_norm dropout "
             "embedding one_hot pad scaled_dot_product_attention cross_entropy nll_loss mse_loss l1_loss "
             "binary_cross_entropy binary_cross_entropy_with_logits "
             # issue 16
             "hardswish prelu dropout2d normalize cosine_similarity unfold interpolate smooth_l1_loss huber_loss "
             "kl_div conv_transpose1d conv_transpose2d group_norm instance_norm rms_norm").split()
    assert [n for n in names if not callable(getattr(F, n, None))] == []
    assert set(names) == set(F.__all__)
    assert math.isclose(F.cross_entropy(gg.tensor([[0.0, 0.0]]), gg.tensor([1])).item(), math.log(2), rel_tol=1e-6)

"""The ops of issue 16 against PyTorch (the oracle; skipped when absent).

Each case runs the same function in both libraries on the same float64 inputs,
compares the outputs, then backpropagates one random cotangent through both and
compares every input gradient.  The registered primitives among them (tril,
triu, masked_fill, roll, scatter, scatter_value, nan_to_num, argsort) are also
in the op battery (tests/test_ops_battery.py: NumPy reference, gradcheck,
gradgradcheck).
"""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

pytestmark = pytest.mark.filterwarnings("ignore:reduction. .mean. divides the total loss:UserWarning")  # torch's advice


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _both(value, device):
    if isinstance(value, np.ndarray):
        floating = value.dtype.kind == "f"
        return (gg.tensor(value, device=device, requires_grad=floating), torch.tensor(value, requires_grad=floating))
    return value, value


def check(ours_fn, theirs_fn, inputs, device, rtol=1e-7, atol=1e-9, grad=True):
    """Outputs and input gradients of ``ours_fn`` and ``theirs_fn`` agree."""
    pairs = [_both(x, device) for x in inputs]
    ours_out = ours_fn(*[p[0] for p in pairs])
    theirs_out = theirs_fn(*[p[1] for p in pairs])
    ours_list = list(ours_out) if isinstance(ours_out, tuple) else [ours_out]
    theirs_list = list(theirs_out) if isinstance(theirs_out, tuple) else [theirs_out]
    assert len(ours_list) == len(theirs_list)
    rng = np.random.default_rng(3)
    ours_loss = theirs_loss = None
    for a, b in zip(ours_list, theirs_list, strict=True):
        assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
        assert a.device == gg.Device(device)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=rtol, atol=atol)
        if grad and b.requires_grad:
            cotangent = rng.standard_normal(tuple(b.shape))
            term_a = (a * gg.tensor(cotangent, device=device)).sum()
            term_b = (b * torch.tensor(cotangent)).sum()
            ours_loss = term_a if ours_loss is None else ours_loss + term_a
            theirs_loss = term_b if theirs_loss is None else theirs_loss + term_b
    if ours_loss is None:
        return ours_out
    ours_loss.backward()
    theirs_loss.backward()
    for i, (a, b) in enumerate(pairs):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            expected = b.grad if b.grad is not None else torch.zeros_like(b)
            got = a.grad.numpy() if a.grad is not None else np.zeros(a.shape)
            np.testing.assert_allclose(got, expected.numpy(), rtol=rtol, atol=atol, err_msg=f"input {i}")
    return ours_out


# --------------------------------------------------------------------------- triangles, masks
@pytest.mark.parametrize("diagonal", [0, 1, -2])
def test_tril_triu(diagonal, device):
    x = _randn(2, 4, 5)
    check(lambda t: t.tril(diagonal), lambda t: t.tril(diagonal), [x], device)
    check(lambda t: gg.triu(t, diagonal=diagonal), lambda t: torch.triu(t, diagonal=diagonal), [x], device)


def test_tril_needs_a_matrix(device):
    with pytest.raises(gg.ShapeError, match="tril"):
        gg.tril(gg.ones(3, device=device))


def test_masked_fill_causal_mask(device):
    x = _randn(2, 3, 4, 4)
    mask = np.triu(np.ones((4, 4), dtype=bool), 1)
    check(lambda t, m: t.masked_fill(m, float("-inf")).softmax(-1),
          lambda t, m: t.masked_fill(m, float("-inf")).softmax(-1), [x, mask], device)
    check(lambda t, m: gg.masked_fill(t, m, gg.tensor(2.5)), lambda t, m: torch.masked_fill(t, m, torch.tensor(2.5)),
          [x, mask], device)


def test_masked_fill_in_place(device):
    x = _randn(3, 4)
    mask = x > 0.3

    def ours(t, m):
        y = t * 1.0
        y.masked_fill_(m, 0.0)
        return y * 2

    check(ours, ours, [x, mask], device)


def test_masked_fill_rejects_bad_masks(device):
    x = gg.ones(3, 4, device=device)
    with pytest.raises(gg.DTypeError, match="bool"):
        x.masked_fill(gg.ones(3, 4, device=device), 0.0)
    with pytest.raises(gg.ShapeError, match="broadcast"):
        x.masked_fill(gg.ones(2, 4, device=device).bool(), 0.0)


# --------------------------------------------------------------------------- sort, topk
@pytest.mark.parametrize("dim,descending", [(-1, False), (0, True), (1, True)])
def test_sort_and_argsort(dim, descending, device):
    x = np.random.default_rng(1).permutation(24).reshape(2, 3, 4) * 0.5
    values = check(lambda t: t.sort(dim=dim, descending=descending), lambda t: t.sort(dim=dim, descending=descending),
                   [x], device)
    assert values.indices.dtype == gg.int64
    expected = torch.argsort(torch.tensor(x), dim=dim, descending=descending)
    assert gg.argsort(gg.tensor(x, device=device), dim=dim, descending=descending).tolist() == expected.tolist()


def test_sort_keeps_ties_in_order(device):
    x = gg.tensor([2.0, 1.0, 2.0, 1.0], device=device)
    assert x.sort().indices.tolist() == [1, 3, 0, 2]
    assert x.sort(descending=True).indices.tolist() == [0, 2, 1, 3]


@pytest.mark.parametrize("k,dim,largest", [(2, -1, True), (3, 0, False), (1, 1, True)])
def test_topk(k, dim, largest, device):
    x = np.random.default_rng(2).permutation(60).reshape(4, 5, 3) * 0.1
    out = check(lambda t: t.topk(k, dim=dim, largest=largest), lambda t: t.topk(k, dim=dim, largest=largest), [x],
                device)
    expected = torch.tensor(x).topk(k, dim=dim, largest=largest)
    assert out.indices.tolist() == expected.indices.tolist()
    assert out.values is out[0]


def test_topk_rejects_large_k(device):
    with pytest.raises(gg.ShapeError, match="topk"):
        gg.topk(gg.ones(3, device=device), 4)


# --------------------------------------------------------------------------- multinomial
def test_multinomial_without_replacement_draws_distinct_nonzero(device):
    gg.manual_seed(0)
    weights = gg.tensor([[0.0, 1.0, 2.0, 3.0, 0.0]] * 50, device=device)
    draws = gg.multinomial(weights, 3).numpy()
    assert draws.shape == (50, 3) and draws.dtype == np.int64
    for row in draws:
        assert len(set(row)) == 3 and set(row) == {1, 2, 3}


def test_multinomial_frequencies_follow_the_weights(device):
    gg.manual_seed(0)
    probabilities = np.array([0.1, 0.2, 0.7])
    draws = gg.tensor(probabilities, device=device).multinomial(20000, replacement=True).numpy()
    frequencies = np.bincount(draws, minlength=3) / draws.size
    np.testing.assert_allclose(frequencies, probabilities, atol=0.015)
    # Without replacement the first draw follows the weights too.
    first = np.array([gg.multinomial(gg.tensor(probabilities * 5, device=device), 2)[0].item() for _ in range(3000)])
    np.testing.assert_allclose(np.bincount(first, minlength=3) / first.size, probabilities, atol=0.03)


def test_multinomial_is_reproducible_under_manual_seed(device):
    weights = gg.tensor([0.2, 0.3, 0.5], device=device)
    gg.manual_seed(5)
    first = gg.multinomial(weights, 10, replacement=True).tolist()
    gg.manual_seed(5)
    assert gg.multinomial(weights, 10, replacement=True).tolist() == first


def test_multinomial_errors(device):
    with pytest.raises(ValueError, match="without replacement"):
        gg.multinomial(gg.tensor([1.0, 0.0, 1.0], device=device), 3)
    with pytest.raises(ValueError, match="non-negative"):
        gg.multinomial(gg.tensor([1.0, -1.0], device=device), 1)
    with pytest.raises(ValueError, match="positive sum"):
        gg.multinomial(gg.tensor([0.0, 0.0], device=device), 1, replacement=True)


# --------------------------------------------------------------------------- roll, repeat_interleave, tile, unfold
@pytest.mark.parametrize("shifts,dims", [(1, 1), (-3, None), ((1, -2), (0, 2)), (5, -1)])
def test_roll(shifts, dims, device):
    check(lambda t: t.roll(shifts, dims), lambda t: t.roll(shifts, dims), [_randn(2, 3, 4)], device)


@pytest.mark.parametrize("repeats,dim", [(2, None), (3, 1), ([1, 0, 2], 0)])
def test_repeat_interleave(repeats, dim, device):
    check(lambda t: t.repeat_interleave(gg.tensor(repeats) if isinstance(repeats, list) else repeats, dim=dim),
          lambda t: t.repeat_interleave(torch.tensor(repeats) if isinstance(repeats, list) else repeats, dim=dim),
          [_randn(3, 2)], device)


@pytest.mark.parametrize("dims", [(2,), (2, 1, 3), (1, 2)])
def test_tile(dims, device):
    check(lambda t: t.tile(dims), lambda t: t.tile(dims), [_randn(3, 2)], device)


@pytest.mark.parametrize("dim,size,step", [(0, 2, 1), (1, 3, 2), (-1, 4, 3)])
def test_tensor_unfold(dim, size, step, device):
    check(lambda t: t.unfold(dim, size, step), lambda t: t.unfold(dim, size, step), [_randn(5, 7, 4)], device)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=(2, 3), stride=2, padding=1),
                                    dict(kernel_size=3, dilation=2, padding=(1, 0))])
def test_functional_unfold(kwargs, device):
    check(lambda t: F.unfold(t, **kwargs), lambda t: TF.unfold(t, **kwargs), [_randn(2, 3, 6, 7)], device)


# --------------------------------------------------------------------------- scatter, index_put_
def test_scatter_tensor_and_value(device):
    x, src = _randn(3, 5), _randn(3, 2)
    index = np.array([[0, 2], [4, 1], [3, 0]])
    check(lambda t, s: t.scatter(1, gg.tensor(index, device=device), s),
          lambda t, s: t.scatter(1, torch.tensor(index), s), [x, src], device)
    check(lambda t: t.scatter(1, gg.tensor(index, device=device), 7.0),
          lambda t: t.scatter(1, torch.tensor(index), 7.0), [x], device)
    check(lambda t: gg.scatter(t, 0, gg.tensor([[2, 0, 1, 1, 0]], device=device), value=-1.0),
          lambda t: torch.scatter(t, 0, torch.tensor([[2, 0, 1, 1, 0]]), value=-1.0), [x], device)


def test_scatter_in_place_one_hot(device):
    labels = np.array([[1], [3], [0]])
    ours = gg.zeros(3, 4, device=device).scatter_(1, gg.tensor(labels, device=device), 1.0)
    theirs = torch.zeros(3, 4).scatter_(1, torch.tensor(labels), 1.0)
    assert ours.tolist() == theirs.tolist()

    def grad_through(t, s):
        y = t * 1.0
        index = gg.tensor([[1, 0, 2]], device=device) if isinstance(t, gg.Tensor) else torch.tensor([[1, 0, 2]])
        y.scatter_(0, index, s)
        return y

    check(grad_through, grad_through, [_randn(3, 3), _randn(1, 3)], device)


def test_scatter_errors(device):
    x = gg.zeros(2, 3, device=device)
    with pytest.raises(IndexError, match="scatter|out of range"):
        x.scatter(1, gg.tensor([[3]], device=device), 1.0)
    with pytest.raises(ValueError, match="reduce"):
        x.scatter(1, gg.tensor([[0]], device=device), 1.0, reduce="multiply")


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_(accumulate, device):
    rows, cols = np.array([0, 2, 0]), np.array([1, 1, 1])
    values = _randn(3)

    def run(lib, t, v):
        y = t * 1.0
        y.index_put_((lib.tensor(rows) if lib is torch else gg.tensor(rows, device=device),
                      lib.tensor(cols) if lib is torch else gg.tensor(cols, device=device)), v, accumulate=accumulate)
        return y

    if accumulate:
        check(lambda t, v: run(gg, t, v), lambda t, v: run(torch, t, v), [_randn(3, 4), values], device)
    else:                       # repeated indices: which write wins is unspecified, so use distinct ones
        rows, cols = np.array([0, 2]), np.array([1, 3])
        check(lambda t, v: run(gg, t, v), lambda t, v: run(torch, t, v), [_randn(3, 4), values[:2]], device)


# --------------------------------------------------------------------------- elementwise compositions
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the cotangent times float max
def test_nan_to_num(device):
    x = _randn(3, 4)
    x[0, 0], x[1, 2], x[2, 3] = np.nan, np.inf, -np.inf
    check(lambda t: t.nan_to_num(), lambda t: t.nan_to_num(), [x], device)
    check(lambda t: gg.nan_to_num(t, nan=1.0, posinf=5.0, neginf=-5.0),
          lambda t: torch.nan_to_num(t, nan=1.0, posinf=5.0, neginf=-5.0), [x], device)


def test_lerp_and_baddbmm(device):
    check(lambda a, b: a.lerp(b, 0.3), lambda a, b: a.lerp(b, 0.3), [_randn(3, 4), _randn(3, 4, seed=1)], device)
    check(lambda a, b, w: gg.lerp(a, b, w), lambda a, b, w: torch.lerp(a, b, w),
          [_randn(3, 4), _randn(3, 4, seed=1), _randn(3, 4, seed=2)], device)
    inputs = [_randn(2, 3, 4), _randn(2, 3, 5, seed=1), _randn(2, 5, 4, seed=2)]
    check(lambda i, a, b: gg.baddbmm(i, a, b, beta=0.5, alpha=2.0),
          lambda i, a, b: torch.baddbmm(i, a, b, beta=0.5, alpha=2.0), inputs, device)
    check(lambda i, a, b: i.baddbmm(a, b), lambda i, a, b: i.baddbmm(a, b), inputs, device)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
def test_cdist(p, device):
    x1, x2 = _randn(2, 4, 3), _randn(2, 5, 3, seed=1)
    check(lambda a, b: gg.cdist(a, b, p=p), lambda a, b: torch.cdist(a, b, p=p), [x1, x2], device, rtol=1e-6)


def test_cdist_gradient_at_zero_distance_is_zero(device):
    x = gg.tensor([[1.0, 2.0]], device=device, requires_grad=True)
    gg.cdist(x, gg.tensor([[1.0, 2.0]], device=device)).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0]]


# --------------------------------------------------------------------------- functional
@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1)])
def test_normalize(p, dim, device):
    check(lambda t: F.normalize(t, p=p, dim=dim), lambda t: TF.normalize(t, p=p, dim=dim), [_randn(3, 4, 5)], device)


def test_cosine_similarity(device):
    check(lambda a, b: F.cosine_similarity(a, b), lambda a, b: TF.cosine_similarity(a, b),
          [_randn(3, 4, 5), _randn(3, 4, 5, seed=1)], device)
    check(lambda a, b: F.cosine_similarity(a, b, dim=-1), lambda a, b: TF.cosine_similarity(a, b, dim=-1),
          [_randn(3, 4, 5), _randn(1, 4, 5, seed=1)], device)


INTERPOLATE = [
    dict(scale_factor=2, mode="nearest"),
    dict(size=(5, 3), mode="nearest"),
    dict(scale_factor=1.7, mode="nearest"),
    dict(size=(7, 5), mode="bilinear", align_corners=False),
    dict(size=(7, 5), mode="bilinear", align_corners=True),
    dict(scale_factor=2, mode="bilinear"),
    dict(scale_factor=0.6, mode="bilinear", align_corners=False),
]


@pytest.mark.parametrize("kwargs", INTERPOLATE)
def test_interpolate_2d(kwargs, device):
    check(lambda t: F.interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs), [_randn(2, 3, 4, 6)], device)


@pytest.mark.parametrize("kwargs", [dict(scale_factor=3, mode="nearest"), dict(size=9, mode="linear"),
                                    dict(size=4, mode="linear", align_corners=True),
                                    dict(scale_factor=2.5, mode="linear")])
def test_interpolate_1d(kwargs, device):
    check(lambda t: F.interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs), [_randn(2, 3, 6)], device)


def test_interpolate_errors(device):
    x = gg.ones(1, 1, 4, 4, device=device)
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(gg.ShapeError, match="linear"):
        F.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match="bicubic"):
        F.interpolate(x, scale_factor=2, mode="bicubic")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0])
def test_smooth_l1_loss(reduction, beta, device):
    check(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
          lambda a, b: TF.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
          [_randn(4, 5), _randn(4, 5, seed=1)], device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("delta", [1.0, 0.3, 2.0])
def test_huber_loss(reduction, delta, device):
    check(lambda a, b: F.huber_loss(a, b, reduction=reduction, delta=delta),
          lambda a, b: TF.huber_loss(a, b, reduction=reduction, delta=delta),
          [_randn(4, 5), _randn(4, 5, seed=1)], device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target, device):
    logits = _randn(4, 5)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    target = np.exp(_randn(4, 5, seed=1))
    target /= target.sum(1, keepdims=True)
    target[0, 0] = 0.0                      # 0 * log 0 counts as 0
    if log_target:
        target = np.log(target + 0.01)
    # The target is data here (torch's target gradient at a zero target is NaN, from log 0).
    check(lambda a: F.kl_div(a, gg.tensor(target, device=device), reduction=reduction, log_target=log_target),
          lambda a: TF.kl_div(a, torch.tensor(target), reduction=reduction, log_target=log_target), [log_p], device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_weight(reduction, device):
    p = 1 / (1 + np.exp(-_randn(4, 3)))
    target = (np.random.default_rng(1).random((4, 3)) > 0.5).astype(np.float64)
    weight = np.abs(_randn(3, seed=2))
    check(lambda a, t: F.binary_cross_entropy(a, t, weight=gg.tensor(weight, device=device), reduction=reduction),
          lambda a, t: TF.binary_cross_entropy(a, t, weight=torch.tensor(weight), reduction=reduction), [p, target],
          device)


def test_hardswish(device):
    x = np.array([-4.0, -3.5, -1.0, 0.0, 0.7, 2.9, 3.5, 5.0])
    check(F.hardswish, TF.hardswish, [x], device)


def test_fill_values_that_need_gradients_get_them(device):
    check(lambda t, m, v: t.masked_fill(m, v), lambda t, m, v: t.masked_fill(m, v),
          [_randn(3, 4), _randn(3, 4) > 0, np.array(1.5)], device)
    index = np.array([[0, 2], [1, 3]])
    check(lambda t, v: t.scatter(1, gg.tensor(index, device=device), v),
          lambda t, v: t.scatter(1, torch.tensor(index), v.expand(2, 2)), [_randn(2, 4), np.array(0.7)], device)


def test_hardswish_gradient_at_the_kinks(device):
    check(F.hardswish, TF.hardswish, [np.array([-3.0, 3.0, -3.0001, 3.0001])], device)


def test_dropout2d_on_3d_input_drops_per_sample_channel(device):
    gg.manual_seed(0)
    out = F.dropout2d(gg.ones(64, 4, 5, device=device), 0.5).numpy()
    assert (out.min(-1) == out.max(-1)).all()
    assert 0.1 < (out[..., 0] == 0).mean(0).min() and (out[..., 0] == 0).mean(0).max() < 0.9


def test_shape_errors_name_the_op(device):
    x = gg.ones(3, 4, device=device)
    with pytest.raises(gg.ShapeError, match="roll"):
        x.roll((1, 2), (0,))
    with pytest.raises(gg.ShapeError, match="unfold"):
        x.unfold(1, 5, 1)
    with pytest.raises(gg.ShapeError, match="repeat_interleave"):
        x.repeat_interleave(gg.tensor([1, 2]), dim=0)
    with pytest.raises(gg.ShapeError, match="baddbmm"):
        gg.baddbmm(x, x, x)
    with pytest.raises(gg.ShapeError, match="cdist"):
        gg.cdist(x, gg.ones(2, 3, device=device))
    with pytest.raises(gg.ShapeError, match="unfold"):
        F.unfold(gg.ones(1, 1, 2, 2, device=device), 3)
    with pytest.raises(gg.ShapeError, match="conv_transpose2d"):
        F.conv_transpose2d(gg.ones(1, 3, 2, 2, device=device), gg.ones(4, 2, 3, 3, device=device))


def test_index_put_with_a_bool_mask(device):
    check(lambda t, v: t.clone().index_put_((gg.tensor(np.array([True, False, True]), device=device),), v),
          lambda t, v: t.clone().index_put_((torch.tensor([True, False, True]),), v), [_randn(3, 2), _randn(2)],
          device)


def test_multinomial_draws_from_a_gg_generator(device):
    probs = gg.tensor([0.2, 0.3, 0.5], device=device)

    def draw():
        return gg.multinomial(probs, 6, replacement=True,
                              generator=gg.Generator(device=device).manual_seed(3)).tolist()
    first = draw()
    gg.manual_seed(9)                          # the global stream does not matter
    assert draw() == first
    with pytest.raises(TypeError, match="gg.Generator"):
        gg.multinomial(probs, 1, generator=object())

"""Programs where gpugrad once answered differently from PyTorch 2.13, found by a sweep against it.

Each test is the program as a PyTorch user writes it, run in both libraries
(PyTorch on the CPU as the oracle; skipped without it), on every device.
"""

import numpy as np
import pytest

import gpugrad as gg

torch = pytest.importorskip("torch")
F = gg.nn.functional
TF = torch.nn.functional


def _both(program, device):
    """``program(T, F, tensor)`` in gpugrad (on ``device``) and in PyTorch; a list of NumPy arrays each."""
    def gg_tensor(value, **options):
        return gg.tensor(value, device=device, **options)
    ours = program(gg, F, gg_tensor)
    theirs = program(torch, TF, torch.tensor)
    as_numpy = [[np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for v in side]
                for side in (ours, theirs)]
    return as_numpy


def _assert_same(ours, theirs):
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.shape == reference.shape
        np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-6)


# --- max/min with a dim: the whole gradient goes to the returned index at ties ------------------
def _max_dim_ties(T, F, tensor):
    x = tensor([[1.0, 3.0, 3.0, 2.0], [6.0, 1.0, 1.0, 1.0]], requires_grad=True)
    result = x.max(1)
    (result.values * tensor([1.0, 2.0])).sum().backward()
    return [result.values, result.indices, x.grad]


def _min_dim_keepdim_ties(T, F, tensor):
    x = tensor([[1.0, 3.0, 3.0, 2.0], [6.0, 1.0, 1.0, 1.0]], requires_grad=True)
    values, indices = T.min(x, dim=-1, keepdim=True)
    values.sum().backward()
    return [values, indices, x.grad]


def _max_dim0_ties(T, F, tensor):
    x = tensor([[2.0, 5.0], [2.0, 5.0], [1.0, 5.0]], requires_grad=True)
    x.max(dim=0).values.sum().backward()
    return [x.grad]


# --- cross_entropy / nll_loss --------------------------------------------------------------------
def _unbatched_cross_entropy_none(T, F, tensor):
    results = []
    for options in ({}, {"label_smoothing": 0.1}, {"weight": tensor([1.0, 2.0, 3.0])}):
        x = tensor([1.0, 2.0, 3.0], requires_grad=True)
        loss = F.cross_entropy(x, tensor(2), reduction="none", **options)
        loss.sum().backward()
        results += [loss, x.grad]
    results.append(F.nll_loss(tensor([-1.0, -2.0, -3.0]), tensor(2), reduction="none"))
    return results


def _all_targets_ignored(T, F, tensor):
    results = []
    for options in ({}, {"label_smoothing": 0.2}, {"weight": tensor([1.0, 2.0])}):
        logits = tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        loss = F.cross_entropy(logits, tensor([-100, -100]), **options)
        loss.backward()
        results += [loss, logits.grad]          # the loss is NaN in both, the gradient zeros
    return results


# --- attention: a row that masks every position ---------------------------------------------------
def _fully_masked_attention_rows(T, F, tensor):
    data = np.random.default_rng(0).standard_normal((1, 3, 4)).astype(np.float32)
    results = []
    for mask in (tensor([[True, False, True], [False, False, False], [True, True, True]]),
                 tensor([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [0.0, 0.0, 0.0]])):
        q = tensor(data, requires_grad=True)
        out = F.scaled_dot_product_attention(q, q * 0.5, q * 2, attn_mask=mask)
        out.sum().backward()
        results += [out, q.grad]
    return results


# --- weighted mse / l1: mean divides by the summed weights -----------------------------------------
def _weighted_regression_losses(T, F, tensor):
    data = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    weight = tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]])
    results = []
    for loss_function in (F.mse_loss, F.l1_loss):
        for reduction in ("mean", "sum", "none"):
            x = tensor(data, requires_grad=True)
            loss = loss_function(x, tensor(np.ones((2, 3), np.float32)), weight=weight, reduction=reduction)
            loss.sum().backward()
            results += [loss, x.grad]
    return results


PROGRAMS = [_max_dim_ties, _min_dim_keepdim_ties, _max_dim0_ties, _unbatched_cross_entropy_none,
            _all_targets_ignored, _fully_masked_attention_rows, _weighted_regression_losses]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__.strip("_"))
def test_same_as_pytorch(program, device):
    ours, theirs = _both(program, device)
    _assert_same(ours, theirs)


def test_weighted_mse_refuses_a_weight_of_another_shape(device):
    with pytest.raises(gg.ShapeError, match=r"mse_loss: weight of shape \(3,\) must have the input's shape"):
        F.mse_loss(gg.ones(2, 3, device=device), gg.zeros(2, 3, device=device), weight=gg.ones(3, device=device))
    with pytest.raises(ValueError):
        TF.mse_loss(torch.ones(2, 3), torch.zeros(2, 3), weight=torch.ones(3))


# --- integer and bool inputs to float-valued ops: the default float dtype, PyTorch's values ------
def _integer_inputs_to_float_ops(T, F, tensor):
    ints, flags, small = tensor([1, -2, 3]), tensor([True, False, True]), tensor([1, 2], dtype=T.uint8)
    results = [ints / 2, ints / ints, 2 / ints, flags / 2, ints / 2.5, T.exp(flags), ints.sigmoid(), T.erf(ints),
               small.exp(), ints.tanh(), T.log(small), ints.sin(), T.sqrt(tensor([4, 9])),
               tensor([1.0, 2.0], dtype=T.float16) / tensor([1, 2]), tensor([1, 5]).logsumexp(0)]
    return results + [str(r.dtype).replace("torch.", "") for r in results]


def _where_clamp_cumsum_dtypes(T, F, tensor):
    condition, ints = tensor([True, False]), tensor([1, -2, 3])
    results = [T.where(condition, 1.0, 0.0), T.where(condition, 1, 0), T.where(condition, tensor([1, 2]), 0.5),
               T.where(condition, tensor([1.0, 2.0], dtype=T.float16), 0.5), ints.clamp(min=0.5), ints.clamp(min=0),
               T.clamp(ints, min=tensor(0.5)), tensor([True, True, False]).cumsum(0),
               tensor([1, 2], dtype=T.int32).cumsum(0)]
    return results + [str(r.dtype).replace("torch.", "") for r in results]


# --- gradients at the edges: PyTorch's conventions -------------------------------------------------
def _gradient_edges(T, F, tensor):
    grads = []
    x = tensor([0.0, 0.5, 1.0, -1.0, 2.0], requires_grad=True)       # clamp with tensor bounds, at the bounds
    low, high = tensor(0.0, requires_grad=True), tensor([1.0] * 5, requires_grad=True)
    x.clamp(low, high).sum().backward()
    grads += [x.grad, low.grad, high.grad]
    nan_bounds = T.clamp(tensor([1.0, np.nan, 5.0]), min=tensor([2.0, 0.0, np.nan]))
    for exponent in (0, tensor([0.0, 1.0])):                           # d/dx x**0 at x == 0
        x = tensor([0.0, 2.0], requires_grad=True)
        (x ** exponent).sum().backward()
        grads.append(x.grad)
    for order in (0.5, 3):                                             # p-norm at a zero element
        x = tensor([0.0, 3.0, -4.0], requires_grad=True)
        x.norm(order).backward()
        grads.append(x.grad)
    x = tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]], requires_grad=True)  # std of a constant row
    deviation = x.std(1)
    deviation.sum().backward()
    return grads + [nan_bounds, deviation, x.grad]


DTYPE_PROGRAMS = [_integer_inputs_to_float_ops, _where_clamp_cumsum_dtypes, _gradient_edges]


@pytest.mark.parametrize("program", DTYPE_PROGRAMS, ids=lambda p: p.__name__.strip("_"))
def test_same_as_pytorch_with_dtypes(program, device):
    ours, theirs = _both(program, device)
    for mine, reference in zip(ours, theirs, strict=True):
        if mine.dtype.kind in "US":                                   # a dtype name
            assert mine == reference
        else:
            assert mine.shape == reference.shape and mine.dtype == reference.dtype
            np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-6)

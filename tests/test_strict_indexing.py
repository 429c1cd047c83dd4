"""Issue 11 points 3 and 6: indexing refuses what NumPy and PyTorch refuse, and
cross_entropy(ignore_index=k), einsum with repeated indices and repr(t) give
PyTorch's answers.

Expected values are PyTorch 2.13's, written out so the tests also run where
torch is missing; where torch is installed the same programs are compared
with it live as well.
"""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# --------------------------------------------------------------------------
# boolean masks
# --------------------------------------------------------------------------
MASK_CASES = [
    # (tensor shape, index builder, mask shape, dim the mask starts at)
    ((3, 4), lambda m: m, (2,), 0),
    ((3, 4), lambda m: m, (4,), 0),
    ((3, 4), lambda m: (slice(None), m), (3,), 1),
    ((3, 4), lambda m: (Ellipsis, m), (5,), 1),
    ((2, 3, 4), lambda m: m, (2, 4), 0),
    ((2, 3, 4), lambda m: (0, m), (3, 5), 1),
]


@pytest.mark.parametrize("shape, make_index, mask_shape, dim", MASK_CASES)
def test_mismatched_mask_is_refused_reading(device, shape, make_index, mask_shape, dim):
    x = gg.arange(float(np.prod(shape)), device=device).reshape(shape)
    mask = gg.tensor(np.ones(mask_shape, dtype=bool), device=device)
    with pytest.raises(IndexError, match=rf"mask \[{', '.join(map(str, mask_shape))}\].*at dim {dim}"):
        x[make_index(mask)]
    with pytest.raises(IndexError):               # NumPy refuses it too
        np.arange(np.prod(shape)).reshape(shape)[make_index(np.ones(mask_shape, dtype=bool))]


@pytest.mark.parametrize("shape, make_index, mask_shape, dim", MASK_CASES)
def test_mismatched_mask_is_refused_writing_and_nothing_changes(device, shape, make_index, mask_shape, dim):
    x = gg.arange(float(np.prod(shape)), device=device).reshape(shape)
    before, version = x.numpy().copy(), x._version
    mask = gg.tensor(np.ones(mask_shape, dtype=bool), device=device)
    with pytest.raises(IndexError, match=r"__setitem__: the shape of the mask"):
        x[make_index(mask)] = 0.0
    np.testing.assert_array_equal(x.numpy(), before)
    assert x._version == version


def test_mismatched_mask_inside_the_graph(device):
    x = gg.ones(3, 4, device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(IndexError):
        y[gg.tensor([True, False], device=device)] = 0.0
    with pytest.raises(IndexError):
        y[gg.tensor([True, False], device=device)].sum()


def test_matching_masks_still_work_with_gradients(device):
    data = np.arange(12.0).reshape(3, 4)
    mask = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
    x = gg.tensor(data, device=device, requires_grad=True)
    picked = x[gg.tensor(mask, device=device)]
    np.testing.assert_array_equal(picked.numpy(), data[mask])
    (picked * picked).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(mask, 2 * data, 0))
    rows = x[[True, False, True]]                      # a list of bools is a mask too
    np.testing.assert_array_equal(rows.numpy(), data[[0, 2]])
    cols = x[:, gg.tensor([False, True, True, False], device=device)]
    np.testing.assert_array_equal(cols.numpy(), data[:, 1:3])
    y = gg.tensor(data, device=device)
    y[gg.tensor(mask, device=device)] = -1.0
    np.testing.assert_array_equal(y.numpy(), np.where(mask, -1.0, data))


def test_mask_errors_match_torch(device):
    torch = _torch()
    if torch is None:
        pytest.skip("torch not installed")
    with pytest.raises(IndexError):
        torch.arange(12.0).reshape(3, 4)[torch.tensor([True, False])]
    with pytest.raises(IndexError):
        torch.arange(12.0).reshape(3, 4)[:, torch.tensor([True, False, True])]


# --------------------------------------------------------------------------
# index ops: negative and out-of-range indices
# --------------------------------------------------------------------------
def _x(device):
    return gg.arange(12.0, device=device).reshape(3, 4)


def _i(values, device):
    return gg.tensor(values, device=device)


BAD_INDEX_CASES = [
    # name, call(x, device), bad value, valid range shown
    ("gather", lambda x, d: x.gather(1, _i([[-1], [0], [0]], d)), -1, r"\[0, 3\]"),
    ("gather", lambda x, d: x.gather(1, _i([[4], [0], [0]], d)), 4, r"\[0, 3\]"),
    ("scatter_add", lambda x, d: x.scatter_add(1, _i([[-1], [0], [0]], d), gg.ones(3, 1, device=d)), -1, r"\[0, 3\]"),
    ("scatter_add", lambda x, d: x.scatter_add(0, _i([[3, 0, 0, 0]], d), gg.ones(1, 4, device=d)), 3, r"\[0, 2\]"),
    ("index_select", lambda x, d: x.index_select(0, _i([-1], d)), -1, r"\[0, 2\]"),
    ("index_select", lambda x, d: x.index_select(1, _i([0, 4], d)), 4, r"\[0, 3\]"),
    ("index_add", lambda x, d: x.index_add(0, _i([-1], d), gg.ones(1, 4, device=d)), -1, r"\[0, 2\]"),
    ("index_add", lambda x, d: x.index_add(1, _i([5], d), gg.ones(3, 1, device=d)), 5, r"\[0, 3\]"),
    ("take_along_dim", lambda x, d: x.take_along_dim(_i([[4], [0], [0]], d), 1), 4, r"\[-4, 3\]"),
    ("take_along_dim", lambda x, d: x.take_along_dim(_i([[-5], [0], [0]], d), 1), -5, r"\[-4, 3\]"),
    ("take_along_dim", lambda x, d: x.take_along_dim(_i([-1], d)), -1, r"\[0, 11\]"),
    ("embedding", lambda x, d: F.embedding(_i([0, -1], d), x), -1, r"\[0, 2\]"),
    ("embedding", lambda x, d: F.embedding(_i([[3]], d), x), 3, r"\[0, 2\]"),
]


@pytest.mark.parametrize("op, call, bad, valid", BAD_INDEX_CASES,
                         ids=lambda v: str(v) if isinstance(v, (str, int)) else "")
def test_bad_index_is_an_index_error_naming_op_value_and_range(device, op, call, bad, valid):
    x = _x(device).requires_grad_()
    with pytest.raises(IndexError, match=rf"^{op}: index {bad} is out of range.*valid indices are in {valid}"):
        call(x, device)
    assert x.grad is None and x._version == 0
    np.testing.assert_array_equal(x.numpy(), np.arange(12.0).reshape(3, 4))


TORCH_CALLS = {
    "gather": lambda t, x: x.gather(1, t.tensor([[-1], [0], [0]])),
    "scatter_add": lambda t, x: x.scatter_add(1, t.tensor([[-1], [0], [0]]), t.ones(3, 1)),
    "index_select": lambda t, x: x.index_select(0, t.tensor([-1])),
    "index_add": lambda t, x: x.index_add(0, t.tensor([-1]), t.ones(1, 4)),
    "embedding": lambda t, x: t.nn.functional.embedding(t.tensor([-1]), x),
    "take_along_dim(flat)": lambda t, x: t.take_along_dim(x, t.tensor([-1])),
}


@pytest.mark.parametrize("name", sorted(TORCH_CALLS))
def test_torch_refuses_the_same_negative_indices(name):
    torch = _torch()
    if torch is None:
        pytest.skip("torch not installed")
    with pytest.raises((IndexError, RuntimeError)):
        TORCH_CALLS[name](torch, torch.arange(12.0).reshape(3, 4))


def test_take_along_dim_wraps_negative_indices_like_torch(device):
    data = np.arange(12.0).reshape(3, 4)
    index = [[-1, 0], [-4, 3], [2, -2]]
    x = gg.tensor(data, device=device, requires_grad=True)
    out = x.take_along_dim(_i(index, device), 1)
    expected = [[3.0, 0.0], [4.0, 7.0], [10.0, 10.0]]          # torch.take_along_dim, PyTorch 2.13
    np.testing.assert_array_equal(out.numpy(), expected)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 0, 1], [1, 0, 0, 1], [0, 0, 2, 0]])
    torch = _torch()
    if torch is not None:
        xt = torch.tensor(data, requires_grad=True)
        torch.take_along_dim(xt, torch.tensor(index), 1).sum().backward()
        np.testing.assert_array_equal(torch.take_along_dim(xt, torch.tensor(index), 1).detach().numpy(), expected)
        np.testing.assert_array_equal(xt.grad.numpy(), x.grad.numpy())


def test_gather_with_a_smaller_index_reads_only_its_extent(device):
    """PyTorch's gather: out[i][j] = x[i][index[i][j]] over index's shape (no broadcasting)."""
    x = gg.tensor(np.arange(12.0).reshape(3, 4), device=device, requires_grad=True)
    out = x.gather(1, _i([[1, 2]], device))
    np.testing.assert_array_equal(out.numpy(), [[1.0, 2.0]])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    with pytest.raises(gg.ShapeError, match=r"gather: index of shape \(4, 1\) is larger than input"):
        x.gather(1, _i([[0], [0], [0], [0]], device))


def test_index_add_and_scatter_add_errors_name_their_own_op(device):
    x = _x(device)
    with pytest.raises(gg.ShapeError, match=r"^index_add: index must be a 1-D integer tensor"):
        x.index_add(0, _i([[0]], device), gg.ones(1, 4, device=device))
    with pytest.raises(gg.DTypeError, match=r"^scatter_add: index must be an integer tensor"):
        x.scatter_add(0, gg.zeros(1, 4, device=device), gg.ones(1, 4, device=device))
    with pytest.raises(gg.ShapeError, match=r"^scatter_add: index has 1 dimensions"):
        x.scatter_add(0, _i([0], device), gg.ones(1, 4, device=device))


# --------------------------------------------------------------------------
# flip
# --------------------------------------------------------------------------
def test_flip_returns_a_new_tensor_not_a_view(device):
    x = gg.arange(6.0, device=device).reshape(2, 3)
    y = x.flip(1)
    if device == "cpu":
        assert not np.shares_memory(x.array, y.array)
    assert y._base is None
    y.add_(100.0)
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))
    x.mul_(-1.0)
    np.testing.assert_array_equal(y.numpy(), [[102.0, 101.0, 100.0], [105.0, 104.0, 103.0]])


# --------------------------------------------------------------------------
# cross_entropy with ignore_index a real class
# --------------------------------------------------------------------------
LOGITS = np.array([[1.5, -0.3, 0.2, 2.1, -1.0],
                   [0.1, 0.9, -1.2, 0.4, 1.8],
                   [-0.7, 2.2, 0.3, -0.1, 0.0],
                   [1.1, 0.0, 1.9, -0.5, 0.6],
                   [0.3, -1.4, 0.8, 1.2, -0.2],
                   [2.0, 0.5, -0.3, 0.1, 0.9]])
TARGET = np.array([3, 1, 1, 0, 4, 2])
WEIGHT = np.array([0.5, 2.0, 1.0, 1.5, 0.8])
# PyTorch 2.13, float64, ignore_index=1 (a real class: rows 1 and 2 are left out).
EXPECTED_MEAN = {  # (weighted, label_smoothing) -> loss
    (False, 0.0): 1.8115434681564822,
    (True, 0.0): 1.6730360544861023,
    (False, 0.2): 1.8515434681564824,
    (True, 0.2): 1.8694584063386754,
}


def test_cross_entropy_ignore_index_the_issue_batch(device):
    """The issue's numbers: 5 classes, ignore_index=1 a real class; PyTorch gives
    1.870, the fused path (which did not look at ignore_index) gave 1.724."""
    a, b = -0.3163, 0.2272
    logits = gg.tensor([[a, 0, 0, 0, 0], [0, 0, a, 0, 0], [0, b, 0, 0, 0]], dtype=gg.float64, device=device,
                       requires_grad=True)
    target = gg.tensor([0, 2, 1], device=device)
    loss = F.cross_entropy(logits, target, ignore_index=1)
    assert loss.item() == pytest.approx(1.8699800911001043, rel=1e-12)   # PyTorch 2.13
    assert F.cross_entropy(logits, target).item() == pytest.approx(1.7239851911576654, rel=1e-12)
    loss.backward()
    np.testing.assert_array_equal(logits.grad.numpy()[2], 0.0)


def _gg_ce(logits, device, weighted, smoothing, reduction, ignore_index=1):
    return F.cross_entropy(logits, gg.tensor(TARGET, device=device), ignore_index=ignore_index,
                           weight=gg.tensor(WEIGHT, device=device) if weighted else None,
                           label_smoothing=smoothing, reduction=reduction)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_ignore_index_real_class_mean_value(device, weighted, smoothing):
    logits = gg.tensor(LOGITS, device=device)
    loss = _gg_ce(logits, device, weighted, smoothing, "mean")
    assert loss.item() == pytest.approx(EXPECTED_MEAN[(weighted, smoothing)], rel=1e-12)
    if (weighted, smoothing) == (False, 0.0):
        # What the fused path gave before: the mean over all six rows, ignored ones included.
        every_row = F.cross_entropy(logits, gg.tensor(TARGET, device=device)).item()
        assert abs(every_row - loss.item()) > 0.1


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("ignore_index", [1, 0, -100])
def test_cross_entropy_ignore_index_matches_torch(device, weighted, smoothing, reduction, ignore_index):
    torch = _torch()
    if torch is None:
        pytest.skip("torch not installed")
    x = gg.tensor(LOGITS, device=device, requires_grad=True)
    loss = _gg_ce(x, device, weighted, smoothing, reduction, ignore_index)
    xt = torch.tensor(LOGITS, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(
        xt, torch.tensor(TARGET), weight=torch.tensor(WEIGHT) if weighted else None, ignore_index=ignore_index,
        label_smoothing=smoothing, reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    upstream = np.linspace(0.5, 1.5, loss.numel()).reshape(loss.shape)
    (loss * gg.tensor(upstream, device=device)).sum().backward()
    (expected * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_cross_entropy_ignore_index_gradient_is_zero_on_ignored_rows(device):
    x = gg.tensor(LOGITS, device=device, requires_grad=True)
    _gg_ce(x, device, False, 0.0, "mean").backward()
    np.testing.assert_array_equal(x.grad.numpy()[1:3], 0.0)
    assert np.abs(x.grad.numpy()[[0, 3, 4, 5]]).sum() > 0
    np.testing.assert_allclose(x.grad.numpy().sum(axis=1), 0.0, atol=1e-12)


def test_cross_entropy_ignore_index_on_spatial_input(device):
    torch = _torch()
    if torch is None:
        pytest.skip("torch not installed")
    rng = np.random.default_rng(3)
    logits, target = rng.standard_normal((2, 5, 3)), rng.integers(0, 5, (2, 3))
    target[0, 0] = 2
    x = gg.tensor(logits, device=device, requires_grad=True)
    loss = F.cross_entropy(x, gg.tensor(target, device=device), ignore_index=2)
    xt = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(xt, torch.tensor(target), ignore_index=2)
    loss.backward()
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------
# einsum with repeated indices
# --------------------------------------------------------------------------
EINSUM_CASES = [("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("iij->j", [(3, 3, 2)]), ("bii->bi", [(2, 3, 3)]),
                ("ii,ij->j", [(3, 3), (3, 4)]), ("iji->j", [(3, 2, 3)]), ("iii->i", [(3, 3, 3)]),
                ("...ii->...i", [(2, 3, 3)])]


def _einsum_reference_grads(equation, arrays, upstream):
    """NumPy gradients: each operand's, by finite differences of the linear map (exact for einsum)."""
    grads = []
    for i, array in enumerate(arrays):
        grad = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            basis = np.zeros_like(array)
            basis[position] = 1.0
            operands = list(arrays)
            operands[i] = basis
            grad[position] = (np.einsum(equation, *operands) * upstream).sum()
        grads.append(grad)
    return grads


@pytest.mark.parametrize("equation, shapes", EINSUM_CASES)
def test_einsum_repeated_indices_value_and_gradient(device, equation, shapes):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(shape) for shape in shapes]
    inputs = [gg.tensor(a, device=device, requires_grad=True) for a in arrays]
    out = gg.einsum(equation, *inputs)
    expected = np.einsum(equation, *arrays)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    upstream = rng.standard_normal(expected.shape)
    (out * gg.tensor(upstream, device=device)).sum().backward()
    for tensor, reference in zip(inputs, _einsum_reference_grads(equation, arrays, upstream), strict=True):
        np.testing.assert_allclose(tensor.grad.numpy(), reference, rtol=1e-12, atol=1e-14)
    torch = _torch()
    if torch is not None:
        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        (torch.einsum(equation, *tensors) * torch.tensor(upstream)).sum().backward()
        for mine, theirs in zip(inputs, tensors, strict=True):
            np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_einsum_diagonal_exact_values(device):
    x = gg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True)
    trace = gg.einsum("ii", x)
    assert trace.item() == 5.0
    trace.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 0.0], [0.0, 1.0]])
    x.grad = None
    (gg.einsum("ii->i", x) * gg.tensor([10.0, 20.0], device=device)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[10.0, 0.0], [0.0, 20.0]])


def test_einsum_repeated_indices_second_order_and_forward_mode(device):
    rng = np.random.default_rng(2)
    data = rng.standard_normal((2, 3, 3))
    x = gg.tensor(data, device=device, requires_grad=True)
    assert gg.gradcheck(lambda a: gg.einsum("bii->bi", a), (x,))
    assert gg.gradgradcheck(lambda a: gg.einsum("bii->bi", a) ** 2, (x,))
    tangent = rng.standard_normal((2, 3, 3))
    _, jvp = gg.jvp(lambda a: gg.einsum("bii->bi", a), (gg.tensor(data, device=device),),
                    (gg.tensor(tangent, device=device),))
    np.testing.assert_allclose(jvp.numpy(), np.einsum("bii->bi", tangent), rtol=1e-12)


# --------------------------------------------------------------------------
# repr names the device
# --------------------------------------------------------------------------
def test_repr_names_the_device_for_every_tensor(device):
    expected_device = "cpu" if device == "cpu" else "cuda:0"
    assert repr(gg.tensor([1.0, 2.0], device=device)) == f"tensor([1., 2.], device='{expected_device}')"
    assert repr(gg.tensor(3, device=device)) == f"tensor(3, device='{expected_device}')"
    x = gg.tensor([1.0], dtype=gg.float64, device=device, requires_grad=True)
    assert repr(x) == f"tensor([1.], device='{expected_device}', dtype=float64, requires_grad=True)"
    assert repr(x * 2) == f"tensor([2.], device='{expected_device}', dtype=float64, grad_fn=<mul>)"
    assert str(gg.ones(2, 2, device=device)).endswith(f"device='{expected_device}')")


# --------------------------------------------------------------------------
# ints mixed with advanced indices: PyTorch applies the ints first
# --------------------------------------------------------------------------
class _Ints:
    """An integer index tensor in a key (``zero_d``: a 0-d one, which PyTorch reads as an int)."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.int64)

    def __repr__(self):
        return f"T{self.values.tolist()}"


class _Mask:
    """A bool (or, ``dtype=np.uint8``, legacy uint8) mask tensor in a key."""

    def __init__(self, values, dtype=np.bool_):
        self.values = np.asarray(values, dtype=dtype)

    def __repr__(self):
        return f"M{self.values.astype(int).tolist()}{'u8' if self.values.dtype == np.uint8 else ''}"


class _Array:
    """A NumPy integer array in a key (PyTorch turns it into a tensor)."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.int64)

    def __repr__(self):
        return f"A{self.values.tolist()}"


def _key_for(key, make_tensor):
    """``key`` with its markers made into index tensors by ``make_tensor`` (gg's or torch's)."""
    if isinstance(key, tuple):
        return tuple(_key_for(item, make_tensor) for item in key)
    if isinstance(key, list):
        return [_key_for(item, make_tensor) for item in key]
    if isinstance(key, (_Ints, _Mask)):
        return make_tensor(key.values)
    if isinstance(key, _Array):
        return key.values
    return key


_ALL = slice(None)
_IDX = _Ints([1, 0])

# Keys into a tensor of shape (2, 3, 4); each mixes ints with advanced indices,
# or is a case where NumPy's reading differs from PyTorch's (bools, 0-d tensors).
MIXED_KEYS = [
    (0, _ALL, _Ints([1, 3])),
    (1, None, _Ints([0, 2]), None),
    (0, Ellipsis, _IDX),
    (_IDX, Ellipsis, 0),
    (_IDX, 0, _IDX),
    (0, _IDX, None, 0),
    (1, slice(None, None, 2), _IDX),
    (slice(1, None), 2, _IDX),
    (0, None, _ALL, _IDX, None),
    (_IDX, 1, _ALL),
    (Ellipsis, 0, _IDX),
    (0, _ALL, _Ints([[1], [2]])),
    (_Ints([[0], [1]]), 1, _IDX),
    (0, _ALL, [1, 2]),
    (0, _ALL, _Array([3, 1])),
    (np.int64(1), _ALL, _IDX),
    (0, _ALL, _Mask([True, False, True, True])),
    (0, _ALL, [True, False, True, True]),
    (_Mask([[True, False, True], [False, True, True]]), 0),
    (1, _Mask([True, False, True]), _ALL),
    (0, _ALL, True),
    (0, True, _IDX),
    (0, True, _ALL, _IDX),
    (_IDX, _ALL, True),
    (_ALL, True, _IDX),
    (0, _ALL, False),
    (_Ints(1),),
    (_Ints(1), _ALL, _IDX),
    (_ALL, _Ints(2), _IDX),
    (_Mask(True), _ALL, _IDX),
    (_Mask(True),),
    (True,),
    (_IDX, True),
    (0, _ALL, _Mask([1, 0, 1, 1], dtype=np.uint8)),
]
# Repeated positions: read only (writing them keeps an unspecified one).
REPEATED_KEYS = [(0, _ALL, _Ints([2, 2, 0])), (_Ints([1, 1]), None, 2)]
# The legacy reading of a list as a tuple: x[[[0, 1]]] is x[[0, 1]].
LIST_KEYS = [[[0, 1]], [[0, 1], [1, 0]], [0, _ALL, [1, 2]], [None, 0], [_IDX, 0], [0, 1]]


def _pair(torch, device, key, shape=(2, 3, 4), seed=0):
    """(gg tensor, torch tensor, gg key, torch key) of random float64 values."""
    data = np.random.default_rng(seed).standard_normal(shape)
    mine = _key_for(key, lambda values: gg.tensor(values, device=device))
    theirs = _key_for(key, torch.from_numpy)
    return gg.tensor(data, device=device), torch.from_numpy(data.copy()), mine, theirs


# The keys use the deprecated uint8 and list-as-tuple forms: their warnings (gg's and torch's) are expected.
_DEPRECATIONS_EXPECTED = pytest.mark.filterwarnings("ignore::UserWarning")


@_DEPRECATIONS_EXPECTED
@pytest.mark.parametrize("key", MIXED_KEYS + REPEATED_KEYS + LIST_KEYS, ids=repr)
def test_mixed_index_reads_like_torch_with_gradients(device, key):
    torch = pytest.importorskip("torch")
    x, tx, mine, theirs = _pair(torch, device, key)
    expected = tx[theirs]
    got = x[mine]
    assert tuple(got.shape) == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    # reverse mode, and its own gradient (create_graph)
    weight = np.random.default_rng(1).standard_normal(tuple(expected.shape))
    x.requires_grad_()
    tx.requires_grad_()
    (dx,) = gg.grad((x[mine] ** 2 * gg.tensor(weight, device=device)).sum(), x, create_graph=True)
    (tdx,) = torch.autograd.grad((tx[theirs] ** 2 * torch.from_numpy(weight)).sum(), tx, create_graph=True)
    np.testing.assert_allclose(dx.numpy(), tdx.detach().numpy(), rtol=1e-12)
    (dx * x).sum().backward()
    (tdx * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    # forward mode: the tangent is indexed the same way
    tangent = np.random.default_rng(2).standard_normal((2, 3, 4))
    _, jvp = gg.jvp(lambda a: a[mine], (x.detach(),), (gg.tensor(tangent, device=device),))
    np.testing.assert_array_equal(jvp.numpy(), torch.from_numpy(tangent)[theirs].numpy())


def _setitem_values(region):
    """Values to write into a region: its own shape, one that broadcasts, a number."""
    rng = np.random.default_rng(3)
    values = [rng.standard_normal(region), 2.5]
    if region:
        values.append(rng.standard_normal(region[-1:]))
    return values


@_DEPRECATIONS_EXPECTED
@pytest.mark.parametrize("key", MIXED_KEYS + LIST_KEYS, ids=repr)
def test_mixed_index_writes_like_torch_with_gradients(device, key):
    torch = pytest.importorskip("torch")
    _, tx, _, theirs = _pair(torch, device, key)
    region = tuple(tx[theirs].shape)
    for value in _setitem_values(region):
        if np.isscalar(value) and any(isinstance(item, _Mask) and item.values.dtype == np.uint8 for item in key):
            continue        # torch refuses a number through a uint8 mask (masked_fill_ wants bool); gg takes it
        # outside the graph
        x, tx, mine, theirs = _pair(torch, device, key)
        x[mine] = value if np.isscalar(value) else gg.tensor(value, device=device)
        tx[theirs] = value if np.isscalar(value) else torch.from_numpy(value)
        np.testing.assert_array_equal(x.numpy(), tx.numpy())
        # inside it: gradients to the overwritten tensor and to the value
        x, tx, mine, theirs = _pair(torch, device, key)
        x.requires_grad_()
        tx.requires_grad_()
        weight = np.random.default_rng(4).standard_normal((2, 3, 4))
        y, ty = x * 1, tx * 1
        if np.isscalar(value):
            v = tv = value
        else:
            v = gg.tensor(value, device=device, requires_grad=True)
            tv = torch.from_numpy(value.copy()).requires_grad_()
        y[mine] = v
        ty[theirs] = tv
        np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
        (y ** 2 * gg.tensor(weight, device=device)).sum().backward()
        (ty ** 2 * torch.from_numpy(weight)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
        if np.isscalar(value):
            continue
        np.testing.assert_allclose(v.grad.numpy(), tv.grad.numpy(), rtol=1e-12)
        # forward mode: the output's tangent is the tangents written the same way
        x_tangent, v_tangent = np.ones((2, 3, 4)), np.full(value.shape, 3.0)

        def write(a, b, key=mine):
            out = a * 1
            out[key] = b
            return out
        _, jvp = gg.jvp(write, (x.detach(), v.detach()),
                        (gg.tensor(x_tangent, device=device), gg.tensor(v_tangent, device=device)))
        expected = torch.from_numpy(x_tangent.copy())
        expected[theirs] = torch.from_numpy(v_tangent)
        np.testing.assert_array_equal(jvp.numpy(), expected.numpy())


@_DEPRECATIONS_EXPECTED
@pytest.mark.parametrize("key", MIXED_KEYS, ids=repr)
def test_mixed_index_writes_through_a_view_like_torch(device, key):
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(5).standard_normal((3, 3, 4))
    mine, theirs = _key_for(key, lambda values: gg.tensor(values, device=device)), _key_for(key, torch.from_numpy)
    region = tuple(torch.from_numpy(data)[1:][theirs].shape)
    value = np.random.default_rng(6).standard_normal(region[-1:])     # broadcast along the region
    x = gg.tensor(data, device=device, requires_grad=True)
    tx = torch.from_numpy(data.copy()).requires_grad_()
    v = gg.tensor(value, device=device, requires_grad=True)
    tv = torch.from_numpy(value.copy()).requires_grad_()
    y, ty = x * 1, tx * 1
    view, tview = y[1:], ty[1:]
    view[mine] = v
    tview[theirs] = tv
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    weight = np.random.default_rng(7).standard_normal((3, 3, 4))
    ((y * gg.tensor(weight, device=device)).sum() + (view ** 2).sum()).backward()
    ((ty * torch.from_numpy(weight)).sum() + (tview ** 2).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(v.grad.numpy(), tv.grad.numpy(), rtol=1e-12)
    # and a plain tensor's view, outside the graph
    plain, tplain = gg.tensor(data, device=device), torch.from_numpy(data.copy())
    plain[1:][mine] = gg.tensor(value, device=device)
    tplain[1:][theirs] = torch.from_numpy(value)
    np.testing.assert_array_equal(plain.numpy(), tplain.numpy())


def test_examples_of_the_issue_have_torch_shapes(device):
    assert gg.arange(24.0, device=device).reshape(2, 3, 4)[0, :, gg.tensor([1, 3], device=device)].shape == (3, 2)
    x = gg.arange(60.0, device=device).reshape(3, 4, 5)
    assert x[1, None, gg.tensor([0, 3], device=device), None].shape == (1, 2, 1, 5)


def test_a_0d_integer_tensor_index_is_a_select_and_a_view(device):
    x = gg.arange(6.0, device=device).reshape(2, 3)
    row = x[gg.tensor(1, device=device)]
    row[0] = -1.0
    assert x[1, 0].item() == -1.0


def test_legacy_index_forms_warn_as_torch_does(device):
    x = gg.arange(6.0, device=device).reshape(2, 3)
    with pytest.warns(UserWarning, match="non-tuple sequence"):
        assert x[[[0, 1]]].shape == (2, 3)
    with pytest.warns(UserWarning, match="uint8"):
        picked = x[gg.tensor(np.array([0, 1], dtype=np.uint8), device=device)]
    np.testing.assert_array_equal(picked.numpy(), [[3.0, 4.0, 5.0]])
    with pytest.raises(IndexError, match="mask"):
        x[gg.tensor(np.array([0, 1, 1], dtype=np.uint8), device=device)]


@_DEPRECATIONS_EXPECTED
@pytest.mark.parametrize("key", MIXED_KEYS[:12], ids=repr)
def test_mixed_index_writes_in_deterministic_mode(device, key):
    torch = pytest.importorskip("torch")
    x, tx, mine, theirs = _pair(torch, device, key)
    value = np.random.default_rng(8).standard_normal(tuple(tx[theirs].shape))
    tx[theirs] = torch.from_numpy(value)
    y = x.clone().requires_grad_() * 1             # the write is recorded in the graph
    gg.use_deterministic_algorithms(True)
    try:
        x[mine] = gg.tensor(value, device=device)
        y[mine] = gg.tensor(value, device=device)
    finally:
        gg.use_deterministic_algorithms(False)
    np.testing.assert_array_equal(x.numpy(), tx.numpy())
    np.testing.assert_array_equal(y.detach().numpy(), tx.numpy())

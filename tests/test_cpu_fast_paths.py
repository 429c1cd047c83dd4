"""The CPU paths chosen for speed agree with the NumPy twins (the CUDA kernels' reference).

gelu on NumPy float32/float16 computes the CDF once in the forward and keeps
it for the plain backward (:mod:`gpugrad.ops.activation`); these tests bound
its distance from the twin (``GELU_CPU_ULPS``) over random and extreme inputs
for every float dtype, and check its gradients against PyTorch and by gradcheck in float64.
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.kernels import twins
from gpugrad.ops import activation as act

DTYPES = (np.float16, np.float32, np.float64)


def _inputs(dtype, seed=0):
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    extreme = [0.0, -0.0, np.inf, -np.inf, np.nan, info.tiny, -info.tiny, info.max, -info.max,
               -0.7517916, -5.0, -9.0, -13.0, -13.5, -20.0, 6.0, 12.0, 1e-4, -1e-4]
    values = np.concatenate([rng.standard_normal(20000) * 3, rng.uniform(-15, 15, 20000), extreme])
    with np.errstate(over="ignore"):
        return values.astype(dtype)


def _ulps(actual, expected, scale=None):
    """Distance in ulps of ``expected``'s dtype (of ``scale`` where given); NaN == NaN, inf == inf."""
    actual = actual.astype(np.float64)
    reference = expected.astype(np.float64)
    same = (actual == reference) | (np.isnan(actual) & np.isnan(reference))
    magnitude = np.abs(expected if scale is None else scale)
    # Subnormal results count in ulps of the smallest normal number (their own ulp is a fixed absolute step).
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.spacing(np.maximum(magnitude, np.finfo(expected.dtype).tiny)).astype(np.float64)
        distance = np.where(same, 0.0, np.abs(actual - reference) / size)
    return np.nan_to_num(distance, nan=np.inf)


def _cpu_path(x, g):
    """(forward, backward) of the path users take: F.gelu on a Tensor, then a plain backward."""
    tensor = gg.tensor(x, requires_grad=True)
    y = gg.nn.functional.gelu(tensor)
    y.backward(gg.tensor(g))
    return y.array, tensor.grad.array


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_cpu_path_within_bound_of_twin(dtype):
    x = _inputs(dtype)
    g = np.random.default_rng(1).standard_normal(x.size).astype(dtype)
    y, grad = _cpu_path(x, g)
    assert y.dtype == grad.dtype == dtype
    expected_y = twins.forward("gelu", x, 0.0, 0.0)
    expected_grad = twins.backward("gelu", g, x, 0.0, 0.0)
    # float64 is the twin itself.
    bound = 0 if dtype == np.float64 else act.GELU_CPU_ULPS
    assert _ulps(y, expected_y).max() <= bound
    # The derivative cdf + x pdf cancels near its zero (x = -0.75): ulps of the larger term there.
    with np.errstate(all="ignore"):
        wide = x.astype(np.float32 if dtype != np.float64 else np.float64)
        term = np.abs(g.astype(wide.dtype)) * (np.abs(wide * np.exp(-0.5 * wide * wide) * 0.3989422804014327)
                                                + 0.5 * twins._erfc(-wide * np.sqrt(0.5)))
    scale = np.maximum(np.abs(expected_grad.astype(wide.dtype)), np.nan_to_num(term)).astype(dtype)
    assert _ulps(grad, expected_grad, scale).max() <= bound


def test_float32_erfc_within_5_ulps_of_the_correctly_rounded_value():
    scipy_special = pytest.importorskip("scipy.special")
    x = np.concatenate([_inputs(np.float32), np.linspace(-11, 11, 200001, dtype=np.float32),
                        np.float32([1e-45, -1e-45, 10.5, -10.5, 9.3, 10.06])])
    with np.errstate(all="ignore"):
        got = act._erfc32(x)
    assert got.dtype == np.float32
    exact = scipy_special.erfc(x.astype(np.float64))
    assert _ulps(got, exact.astype(np.float32)).max() <= 5


def test_gelu_cpu_path_keeps_the_cdf_and_the_input_only():
    x = gg.tensor(np.linspace(-3, 3, 12, dtype=np.float32), requires_grad=True)
    y = gg.nn.functional.gelu(x)
    node = y.grad_fn
    assert set(node.params) == {"cdf"} and node.params["cdf"].shape == (12,)
    assert node.params["cdf"].dtype == np.float32


def test_gelu_cpu_path_matches_torch_and_sees_in_place_changes():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    data = rng.standard_normal((4, 5)).astype(np.float32)
    x = gg.tensor(data, requires_grad=True)
    y = gg.nn.functional.gelu(x * 1.0)
    (y * y).sum().backward()
    reference = torch.tensor(data, requires_grad=True)
    out = torch.nn.functional.gelu(reference * 1.0)
    (out * out).sum().backward()
    np.testing.assert_allclose(y.array, out.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(x.grad.array, reference.grad.numpy(), rtol=1e-5, atol=1e-6)
    # The saved input is version-checked like any saved input.
    inner = gg.tensor(data, requires_grad=True) * 1.0
    result = gg.nn.functional.gelu(inner)
    with gg.no_grad():
        inner.mul_(2.0)
    with pytest.raises(Exception, match="modified|version|in-place|inplace"):
        result.sum().backward()


def test_gelu_gradcheck_float64_and_create_graph():
    x = gg.tensor(np.random.default_rng(3).standard_normal((3, 4)), requires_grad=True)
    assert gg.gradcheck(gg.nn.functional.gelu, (x,))
    assert gg.gradgradcheck(gg.nn.functional.gelu, (x,))
    # float32 with create_graph: the rule runs with ops (the CDF is not used), second derivative exact.
    x32 = gg.tensor(np.array([-1.0, 0.3, 2.0], dtype=np.float32), requires_grad=True)
    (grad,) = gg.grad(gg.nn.functional.gelu(x32).sum(), x32, create_graph=True)
    (second,) = gg.grad(grad.sum(), x32)
    values = x32.array.astype(np.float64)
    expected = np.exp(-values * values / 2) / np.sqrt(2 * np.pi) * (2 - values * values)
    np.testing.assert_allclose(second.array, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(8, 3), (6, 4, 5), (4, 3, 2, 3)])
def test_batch_norm_plain_backward_matches_torch_with_a_large_mean(shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    data = (rng.standard_normal(shape) + 1000.0).astype(np.float32)     # mean >> spread
    g = rng.standard_normal(shape).astype(np.float32)
    weight = rng.uniform(0.5, 1.5, shape[1]).astype(np.float32)
    bias = rng.standard_normal(shape[1]).astype(np.float32)
    x, w, b = (gg.tensor(a, requires_grad=True) for a in (data, weight, bias))
    y = gg.nn.functional.batch_norm(x, None, None, w, b, training=True)
    y.backward(gg.tensor(g))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (data, weight, bias))
    ty = torch.nn.functional.batch_norm(tx, None, None, tw, tb, training=True)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y.array, ty.detach().numpy(), rtol=1e-3, atol=2e-3)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=2e-3, atol=2e-3)
        assert ours.grad.dtype == np.float32


def test_batch_norm_gradcheck_float64():
    rng = np.random.default_rng(5)
    x = gg.tensor(rng.standard_normal((5, 3, 4)), requires_grad=True)
    w = gg.tensor(rng.uniform(0.5, 1.5, 3), requires_grad=True)
    b = gg.tensor(rng.standard_normal(3), requires_grad=True)
    assert gg.gradcheck(lambda x, w, b: gg.nn.functional.batch_norm(x, None, None, w, b, training=True),
                        (x, w, b))


def test_gru_plain_backward_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = torch.nn.GRU(3, 5, batch_first=True)
    ours = gg.nn.GRU(3, 5, batch_first=True)
    ours.load_state_dict({key: value.detach().numpy() for key, value in reference.state_dict().items()})
    data = np.random.default_rng(6).standard_normal((4, 7, 3)).astype(np.float32) * 3
    x = gg.tensor(data, requires_grad=True)
    out, _ = ours(x)
    (out * out).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    tout, _ = reference(tx)
    (tout * tout).sum().backward()
    np.testing.assert_allclose(x.grad.array, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (name, parameter), (_, expected) in zip(ours.named_parameters(), reference.named_parameters(), strict=True):
        np.testing.assert_allclose(parameter.grad.array, expected.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_gru_cell_gradcheck_float64():
    from gpugrad.ops.recurrent import gru_cell
    rng = np.random.default_rng(7)
    args = [gg.tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((3, 6), (3, 2), (6, 2), (6,))]
    assert gg.gradcheck(lambda *a: gru_cell(*a), tuple(args))


# --------------------------------------------------------------------------
# Row scatter-add (an embedding's backward): the same bits as numpy.add.at.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, count, width, signed", [(64, 512, 64, False), (50, 1000, 16, True),
                                                       (5000, 200, 32, True), (3, 7, 8, True), (4, 300, 8, False)])
def test_row_scatter_add_gives_numpy_add_at_bits(dtype, rows, count, width, signed):
    from gpugrad.ops.index import _numpy_row_scatter_add
    rng = np.random.default_rng(rows + count)
    index = rng.integers(-rows if signed else 0, rows, count)
    values = rng.standard_normal((count, width)).astype(dtype)
    start = rng.standard_normal((rows, width)).astype(dtype)
    expected = start.copy()
    np.add.at(expected, (index,), values)
    actual = start.copy()
    # (4, 300): about 75 occurrences a row, past the level cap: declined, left to add.at.
    taken = _numpy_row_scatter_add(actual, (index,), values)
    assert taken == (count // rows <= 40)
    if taken:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_array_equal(actual, start)


def test_row_scatter_add_leaves_out_of_range_indices_to_add_at_which_refuses_them():
    from gpugrad.ops.index import _numpy_row_scatter_add, scatter_add_into
    target = np.zeros((3, 8), np.float32)
    assert not _numpy_row_scatter_add(target, (np.array([0, 3]),), np.ones((2, 8), np.float32))
    with pytest.raises(IndexError):
        scatter_add_into(target, (np.array([0, 3]),), np.ones((2, 8), np.float32))
    assert not target.any()


def test_embedding_backward_through_the_row_path_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((20, 16)).astype(np.float32)
    tokens = rng.integers(0, 20, (8, 12))
    upstream = rng.standard_normal((8, 12, 16)).astype(np.float32)
    ours = gg.tensor(weight, requires_grad=True)
    gg.nn.functional.embedding(gg.tensor(tokens), ours).backward(gg.tensor(upstream))
    theirs = torch.tensor(weight, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(tokens), theirs).backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-6)

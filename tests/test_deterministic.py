"""Deterministic mode: each atomic-add op takes the fixed-order path on CuPy, with NumPy's results.

On the CuPy stand-in (``GPUGRAD_TEST_CUPY=standin GPUGRAD_TEST_DEVICES=cuda``) the
atomic ``cupyx.scatter_add`` is replaced by one that counts its calls: in
deterministic mode no op may reach it, outside the mode every one of these ops
does.  The bitwise run-to-run check needs a card: tests/test_deterministic_gpu.py.
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn
from gpugrad.determinism import alert_not_deterministic


@pytest.fixture(autouse=True)
def _mode_off_afterwards():
    yield
    gg.use_deterministic_algorithms(False)


@pytest.fixture
def atomics(device, monkeypatch):
    """Counts calls of cupyx.scatter_add (the atomic path) on the stand-in; None on the CPU."""
    if device != "cuda":
        return None
    import cupyx
    calls = []
    original = cupyx.scatter_add

    def counting(*args):
        calls.append(1)
        return original(*args)
    monkeypatch.setattr(cupyx, "scatter_add", counting)
    return calls


def _index_add(x, idx, src):
    return gg.index_add(x, 0, idx, src)


def _ops():
    """(name, f(x, idx, src) -> scalar loss) for every op whose backward or forward scatters into repeats."""
    def index_add_backward(x, idx, src):         # index_select's backward is index_add
        return (gg.index_select(x, 0, idx) * src).sum()

    def scatter_add_forward(x, idx, src):
        index = gg.stack([idx, idx.flip(0)], 1)
        return (gg.scatter_add(x[:, :2] * 1.0, 0, index, src[:, :2]) ** 2).sum()

    def gather_backward(x, idx, src):
        index = gg.stack([idx, idx], 1)
        return (gg.gather(x[:, :2] * 1.0, 0, index) * src[:, :2]).sum()

    def embedding_backward(x, idx, src):
        return (nn.functional.embedding(idx.reshape(3, -1), x) * src.reshape(3, -1, src.shape[1])).sum()

    def getitem_backward(x, idx, src):
        return (x[idx] * src).sum()

    def index_put_accumulate(x, idx, src):
        return (x.index_put((idx,), src, accumulate=True) ** 2).sum()

    def index_add_forward(x, idx, src):
        return (_index_add(x * 1.0, idx, src) ** 2).sum()
    return [index_add_backward, scatter_add_forward, gather_backward, embedding_backward, getitem_backward,
            index_put_accumulate, index_add_forward]


def _data(device, dtype=np.float32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(dtype)
    idx = np.array([0, 3, 3, 1, 3, 0, 4, 3, 3, 2, 0, 3], dtype=np.int64)      # heavy repeats
    src = rng.standard_normal((12, 4)).astype(dtype)
    return (gg.tensor(x, device=device, requires_grad=True), gg.tensor(idx, device=device),
            gg.tensor(src, device=device, requires_grad=True))


def _run(op, device, deterministic):
    gg.use_deterministic_algorithms(deterministic)
    x, idx, src = _data(device)
    loss = op(x, idx, src)
    loss.backward()
    gg.use_deterministic_algorithms(False)
    return loss.item(), x.grad.numpy(), src.grad.numpy()


@pytest.mark.parametrize("op", _ops(), ids=lambda op: op.__name__)
def test_each_op_takes_the_fixed_order_path_and_matches_numpy(op, device, atomics):
    expected = _run(op, "cpu", False)
    if atomics is not None:
        _run(op, device, False)
        assert atomics, f"{op.__name__}: outside deterministic mode the atomic path should run"
        atomics.clear()
    got = _run(op, device, True)
    if atomics is not None:
        assert atomics == [], f"{op.__name__}: deterministic mode reached cupyx.scatter_add"
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
    for ours, reference in zip(got[1:], expected[1:]):
        np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-6)
    again = _run(op, device, True)
    assert again[0] == got[0] and all(np.array_equal(a, b) for a, b in zip(again[1:], got[1:]))


def test_assignments_with_repeated_indices_keep_the_last_as_numpy(device):
    gg.use_deterministic_algorithms(True)
    values = gg.arange(6.0, device=device)
    index = gg.tensor([2, 0, 2, 1, 0, 2], device=device)
    target = gg.zeros(3, device=device)
    target[index] = values
    assert target.numpy().tolist() == [4.0, 3.0, 5.0]             # the last write of each position wins
    target = gg.zeros(3, device=device).index_put_((index,), values)
    assert target.numpy().tolist() == [4.0, 3.0, 5.0]
    scattered = gg.zeros(3, 2, device=device).scatter(0, gg.stack([index, index], 1), gg.stack([values, -values], 1))
    assert scattered.numpy().tolist() == [[4.0, -4.0], [3.0, -3.0], [5.0, -5.0]]
    leaf = gg.zeros(3, device=device, requires_grad=True)
    recorded = leaf * 1.0
    recorded[index] = values                                       # the recorded (index_put) path
    assert recorded.numpy().tolist() == [4.0, 3.0, 5.0]


def test_float32_sums_of_many_repeats_stay_accurate(device):
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 7, size=20000)
    values = rng.standard_normal((20000, 3)).astype(np.float32)
    gg.use_deterministic_algorithms(True)
    weight = gg.zeros(7, 3, device=device, requires_grad=True)
    (nn.functional.embedding(gg.tensor(idx, device=device), weight) * gg.tensor(values, device=device)).sum().backward()
    reference = np.zeros((7, 3))
    np.add.at(reference, idx, values.astype(np.float64))
    np.testing.assert_allclose(weight.grad.numpy(), reference, rtol=2e-5, atol=2e-4)


def test_the_switch_and_ops_without_a_deterministic_implementation():
    assert not gg.are_deterministic_algorithms_enabled()
    alert_not_deterministic("histc")                  # mode off: nothing
    gg.use_deterministic_algorithms(True)
    assert gg.are_deterministic_algorithms_enabled() and not gg.is_deterministic_algorithms_warn_only_enabled()
    with pytest.raises(RuntimeError, match="histc does not have a deterministic implementation on cuda"):
        alert_not_deterministic("histc")
    gg.use_deterministic_algorithms(True, warn_only=True)
    with pytest.warns(UserWarning, match="histc does not have a deterministic implementation"):
        alert_not_deterministic("histc")
    with pytest.raises(TypeError, match="mode must be a bool"):
        gg.use_deterministic_algorithms(1)
    with pytest.raises(TypeError, match="warn_only must be a bool"):
        gg.use_deterministic_algorithms(True, warn_only="yes")
    assert gg.is_deterministic_algorithms_warn_only_enabled()     # a refused call changed nothing
    gg.use_deterministic_algorithms(False)
    assert not gg.are_deterministic_algorithms_enabled()


def test_cpu_results_do_not_change_in_the_mode():
    for op in _ops():
        assert all(np.array_equal(a, b) for a, b in zip(_run(op, "cpu", False)[1:], _run(op, "cpu", True)[1:]))

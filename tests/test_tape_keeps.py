"""What the main job's ops keep on the tape: only what their backward reads (issue 15 point 4).

Each node is inspected after a forward pass: inputs the VJP never reads are
held as shape-and-dtype stand-ins (``InputMeta``), not arrays, and the
statistics or gates a plain backward reuses are small residuals.
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.ops.nn_ops import fused_softmax
from gpugrad.ops.recurrent import gru_cell
from gpugrad.ops.registry import InputMeta

F = gg.nn.functional


def _rng():
    return np.random.default_rng(0)


def test_max_pool_keeps_the_winners_not_the_input():
    x = gg.tensor(_rng().standard_normal((2, 3, 4, 6)).astype(np.float32), requires_grad=True)
    y = F.max_pool2d(x * 1.0, 2)
    raw = y.grad_fn.saved_raw
    assert isinstance(raw[0], InputMeta) and tuple(raw[0].shape) == (2, 3, 4, 6)
    assert raw[1].dtype == np.int8 and raw[1].shape == (2, 3, 2, 3)
    y.sum().backward()
    assert x.grad.array.sum() == 2 * 3 * 2 * 3      # one winner per window


def test_max_pool_backward_ignores_later_changes_to_its_input():
    torch = pytest.importorskip("torch")
    data = _rng().standard_normal((1, 2, 4, 4)).astype(np.float32)
    x = gg.tensor(data, requires_grad=True)
    inner = x * 1.0
    y = F.max_pool2d(inner, 2)
    with gg.no_grad():
        inner.mul_(-1.0)                      # backward never reads the input: still right
    y.sum().backward()
    reference = torch.tensor(data, requires_grad=True)
    torch.nn.functional.max_pool2d(reference, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.array, reference.grad.numpy())


def test_fused_softmax_keeps_only_its_output():
    x = gg.tensor(_rng().standard_normal((2, 4, 5)).astype(np.float32), requires_grad=True)
    y = fused_softmax(x * 1.0, axis=-1)
    node = y.grad_fn
    assert isinstance(node.saved_raw[0], InputMeta)
    assert node.out_data is y.array


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_norms_keep_input_weight_and_small_statistics(norm):
    x = gg.tensor(_rng().standard_normal((8, 3, 5)).astype(np.float32), requires_grad=True)
    if norm == "batch":
        weight, bias = gg.ones(3, requires_grad=True), gg.zeros(3, requires_grad=True)
        y = F.batch_norm(x, None, None, weight, bias, training=True)
        statistics_shape = (1, 3, 1)
    else:
        weight, bias = gg.ones(5, requires_grad=True), gg.zeros(5, requires_grad=True)
        y = F.layer_norm(x, (5,), weight, bias)
        statistics_shape = (8, 3, 1)
    node = y.grad_fn
    assert isinstance(node.saved_raw[2], InputMeta)            # bias: its gradient is sum(g)
    # Channel-sized statistics only (batch norm adds the variance for the running update).
    assert all(statistic.shape == statistics_shape for statistic in node.residual)
    assert len(node.residual) == (3 if norm == "batch" else 2)


def test_gru_cell_keeps_its_gates_for_backward():
    rng = _rng()
    gx, h = (gg.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in ((3, 6), (3, 2)))
    w, b = (gg.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in ((6, 2), (6,)))
    out = gru_cell(gx, h, w, b)
    assert [gate.shape for gate in out.grad_fn.residual] == [(3, 2)] * 4


@pytest.mark.parametrize("requires_grad", [True, False])
def test_batch_norm_running_update_reuses_the_forward_statistics_and_matches_a_fresh_computation(requires_grad):
    # The running buffers are updated from the statistics the op's forward kept (no second
    # pass); with no graph recorded they are computed afresh.  Both give the reference numbers.
    data = _rng().standard_normal((8, 3, 5)).astype(np.float32) * 3 + 1
    x = gg.tensor(data, requires_grad=requires_grad)
    running_mean, running_var = gg.full((3,), 0.5), gg.full((3,), 2.0)
    version = running_mean._version
    F.batch_norm(x, running_mean, running_var, training=True, momentum=0.25)
    mean = data.mean(axis=(0, 2), dtype=np.float64)
    var = data.var(axis=(0, 2), ddof=1, dtype=np.float64)
    np.testing.assert_allclose(running_mean.numpy(), 0.75 * 0.5 + 0.25 * mean, rtol=1e-6)
    np.testing.assert_allclose(running_var.numpy(), 0.75 * 2.0 + 0.25 * var, rtol=1e-6)
    assert running_mean._version == version + 1

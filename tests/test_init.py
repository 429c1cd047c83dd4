"""gg.nn.init: torch's fans, gains and bounds; in place, outside the graph, reproducible under gg.manual_seed;
the default initialisation of every layer has torch's distribution (bounds, moments), shapes and keys."""
import math

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn
from gpugrad.nn import init


@pytest.mark.parametrize("nonlinearity,param,expected", [
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("sigmoid", None, 1.0), ("tanh", None, 5 / 3),
    ("relu", None, math.sqrt(2)), ("leaky_relu", None, math.sqrt(2 / (1 + 0.01 ** 2))),
    ("leaky_relu", math.sqrt(5), math.sqrt(2 / 6)), ("selu", None, 0.75)])
def test_calculate_gain_matches_torch(nonlinearity, param, expected):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected)
    torch = pytest.importorskip("torch")
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity,
                                                                                                  param))


def test_calculate_gain_rejects_unknown():
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swishy")


# shape, fan_in, fan_out
FANS = [((30, 20), 20, 30), ((16, 4, 5), 20, 80), ((8, 3, 3, 3), 27, 72)]


@pytest.mark.parametrize("shape,fan_in,fan_out", FANS)
def test_uniform_inits_bounds(shape, fan_in, fan_out, device):
    cases = [
        (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), 1 / math.sqrt(fan_in)),
        (lambda t: init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(6 / fan_in)),
        (lambda t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(6 / fan_out)),
        (lambda t: init.xavier_uniform_(t), math.sqrt(6 / (fan_in + fan_out))),
        (lambda t: init.xavier_uniform_(t, gain=2.0), 2 * math.sqrt(6 / (fan_in + fan_out))),
        (lambda t: init.uniform_(t, -0.3, 0.3), 0.3),
    ]
    for fill, bound in cases:
        t = gg.zeros(*shape, device=device)
        assert fill(t) is t
        values = t.numpy()
        assert np.abs(values).max() <= bound * (1 + 1e-6)
        assert np.abs(values).max() > 0.8 * bound          # fills the range, not a smaller one
        assert abs(values.mean()) < 0.2 * bound


def test_normal_inits_moments(device):
    shape, fan_in, fan_out = (200, 50, 3), 150, 600
    cases = [
        (lambda t: init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / fan_in)),
        (lambda t: init.kaiming_normal_(t, mode="fan_out"), math.sqrt(2 / (1 + 0.01 ** 2)) / math.sqrt(fan_out)),
        (lambda t: init.xavier_normal_(t), math.sqrt(2 / (fan_in + fan_out))),
        (lambda t: init.normal_(t, 0.5, 2.0), 2.0),
    ]
    for fill, std in cases:
        values = fill(gg.zeros(*shape, device=device)).numpy()
        assert values.std() == pytest.approx(std, rel=0.03)
    values = init.normal_(gg.zeros(*shape, device=device), 0.5, 2.0).numpy()
    assert values.mean() == pytest.approx(0.5, abs=0.06)          # 5 standard errors


def test_trunc_normal_constant_ones_zeros(device):
    values = init.trunc_normal_(gg.zeros(100, 100, device=device), mean=1.0, std=1.0, a=0.0, b=2.5).numpy()
    assert values.min() >= 0.0 and values.max() <= 2.5 and values.std() > 0.4
    t = gg.zeros(3, 2, device=device)
    np.testing.assert_array_equal(init.constant_(t, 0.25).numpy(), np.full((3, 2), 0.25))
    np.testing.assert_array_equal(init.ones_(t).numpy(), np.ones((3, 2)))
    np.testing.assert_array_equal(init.zeros_(t).numpy(), np.zeros((3, 2)))


def test_init_in_place_on_parameters_outside_graph_and_dtype_kept():
    p = nn.Parameter(gg.zeros(4, 3, dtype=gg.float64))
    data = p.array
    version = p._version
    init.kaiming_uniform_(p)                         # a leaf that requires grad: must not raise
    assert p.array is data and p.dtype == gg.float64 and p.grad_fn is None and p.requires_grad
    assert p._version > version
    assert np.abs(p.numpy()).max() > 0


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(gg.zeros(5))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(gg.zeros(2, 2), mode="fan_sideways")


def test_manual_seed_reproduces_inits_and_layers():
    gg.manual_seed(123)
    first = [init.xavier_normal_(gg.zeros(5, 4)).numpy(), nn.Linear(4, 3).weight.numpy().copy()]
    gg.manual_seed(123)
    second = [init.xavier_normal_(gg.zeros(5, 4)).numpy(), nn.Linear(4, 3).weight.numpy().copy()]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    gg.manual_seed(124)
    assert not np.array_equal(init.xavier_normal_(gg.zeros(5, 4)).numpy(), first[0])


# --------------------------------------------------------------------------- layer defaults vs torch
BUILDERS = {
    "Linear": lambda lib: lib.nn.Linear(64, 48),
    "Conv1d": lambda lib: lib.nn.Conv1d(6, 40, 5),
    "Conv2d": lambda lib: lib.nn.Conv2d(4, 32, 3, groups=2),
    "BatchNorm2d": lambda lib: lib.nn.BatchNorm2d(7),
    "LayerNorm": lambda lib: lib.nn.LayerNorm((3, 5)),
    "Embedding": lambda lib: lib.nn.Embedding(300, 40, padding_idx=2),
    "GRU": lambda lib: lib.nn.GRU(5, 30, num_layers=2, bidirectional=True),
    "MultiheadAttention": lambda lib: lib.nn.MultiheadAttention(32, 4),
    "MultiheadAttention-kdim": lambda lib: lib.nn.MultiheadAttention(32, 4, kdim=12, vdim=20, bias=False),
}


def _stats(array):
    array = np.asarray(array, dtype=np.float64)
    return array.min(), array.max(), array.mean(), array.std()


@pytest.mark.parametrize("layer", list(BUILDERS))
def test_default_init_matches_torch_distribution(layer):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    gg.manual_seed(0)
    build = BUILDERS[layer]
    theirs = build(torch).state_dict()
    ours = build(gg).state_dict()
    assert list(ours) == list(theirs)
    for key in theirs:
        a, b = ours[key].numpy(), theirs[key].numpy()
        assert a.shape == tuple(b.shape) and a.dtype == b.dtype, key
        if b.dtype.kind != "f" or b.size == 1 or np.all(b == b.flat[0]):
            np.testing.assert_array_equal(a, b, err_msg=key)    # constants: ones, zeros, counters
            continue
        lo_a, hi_a, mean_a, std_a = _stats(a)
        lo_b, hi_b, _, std_b = _stats(b)
        assert abs(mean_a) < 4.5 * std_b / math.sqrt(a.size), key           # centred, like every torch init
        if a.size >= 100:                                                   # too few draws to compare spreads
            assert std_a == pytest.approx(std_b, rel=0.25), key
        if layer != "Embedding" and a.size >= 100:              # uniform families: same bounds (small
            # arrays' extremes are too noisy; test_default_init_exact_bounds checks those against the formulas)
            bound = max(abs(lo_b), abs(hi_b))
            assert max(abs(lo_a), abs(hi_a)) <= bound * 1.1 + 1e-7, key
            assert max(abs(lo_a), abs(hi_a)) >= bound * 0.8, key
    if layer == "Embedding":
        np.testing.assert_array_equal(ours["weight"].numpy()[2], 0)


def test_default_init_exact_bounds():
    lin = nn.Linear(50, 7)
    assert 0.8 / math.sqrt(50) < np.abs(lin.weight.numpy()).max() <= 1 / math.sqrt(50)
    assert np.abs(lin.bias.numpy()).max() <= 1 / math.sqrt(50)
    conv = nn.Conv2d(3, 8, (3, 5))
    assert np.abs(conv.weight.numpy()).max() <= 1 / math.sqrt(45)
    assert np.abs(conv.bias.numpy()).max() <= 1 / math.sqrt(45)
    gru = nn.GRU(3, 16)
    assert all(np.abs(p.numpy()).max() <= 0.25 for p in gru.parameters())
    mha = nn.MultiheadAttention(16, 2)
    assert np.abs(mha.in_proj_weight.numpy()).max() <= math.sqrt(6 / (16 + 48))
    assert not mha.in_proj_bias.numpy().any() and not mha.out_proj.bias.numpy().any()
    assert np.abs(mha.out_proj.weight.numpy()).max() <= 1 / 4
    emb = nn.Embedding(1000, 20)
    assert emb.weight.numpy().std() == pytest.approx(1.0, rel=0.05)

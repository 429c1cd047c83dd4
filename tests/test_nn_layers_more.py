"""The layers of issue 16 against PyTorch (the oracle; skipped when absent).

Each case builds the same layer in both libraries, copies torch's weights into ours
through a strict ``load_state_dict`` (this alone proves the parameter names and
shapes match), runs both in float64 and compares outputs, input gradients and
parameter gradients.  Initialisation is checked by its bounds and statistics.
"""

import math

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn

torch = pytest.importorskip("torch")

pytestmark = [  # torch's own advice to its users, not findings about gpugrad
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning"),
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),
    pytest.mark.filterwarnings("ignore:Converting mask without torch.bool:UserWarning"),
]

RTOL, ATOL = 1e-7, 1e-9


def _pair(build, device, train=True):
    """(ours, theirs): the same layer in both libraries, float64, torch's weights copied into ours."""
    torch.manual_seed(0)
    theirs = build(torch).double()
    ours = build(gg).to(gg.float64)
    theirs_state = theirs.state_dict()
    assert sorted(ours.state_dict()) == sorted(theirs_state)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs_state.items()})
    ours.to(device)
    ours.train(train)
    theirs.train(train)
    return ours, theirs


def _flatten(result):
    if isinstance(result, (tuple, list)):
        return [item for part in result for item in _flatten(part)]
    return [] if result is None else [result]


def _compare(ours, theirs, inputs, device, call=None, rtol=RTOL, atol=ATOL):
    """Forward both, backward a random cotangent through every output, compare everything."""
    call = call or (lambda module, *args: module(*args))
    ours_in = [gg.tensor(x, device=device, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x
               for x in inputs]
    theirs_in = [torch.tensor(x, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x
                 for x in inputs]
    ours_out = _flatten(call(ours, *ours_in))
    theirs_out = _flatten(call(theirs, *theirs_in))
    assert len(ours_out) == len(theirs_out)
    rng = np.random.default_rng(7)
    ours_loss = theirs_loss = 0
    for a, b in zip(ours_out, theirs_out):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=rtol, atol=atol)
        cotangent = rng.standard_normal(tuple(b.shape))
        ours_loss = ours_loss + (a * gg.tensor(cotangent, device=device)).sum()
        theirs_loss = theirs_loss + (b * torch.tensor(cotangent)).sum()
    ours_loss.backward()
    theirs_loss.backward()
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"input {i}")
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        expected = theirs_params[name].grad
        if expected is None:
            assert param.grad is None or not param.grad.numpy().any(), name
            continue
        np.testing.assert_allclose(param.grad.numpy(), expected.numpy(), rtol=rtol, atol=atol, err_msg=name)
    return ours_out, theirs_out


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------- recurrent
LSTM_CASES = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False),
]


@pytest.mark.parametrize("kwargs", LSTM_CASES)
def test_lstm(kwargs, device):
    ours, theirs = _pair(lambda lib: lib.nn.LSTM(3, 4, **kwargs), device)
    shape = (2, 5, 3) if kwargs.get("batch_first") else (5, 2, 3)
    _compare(ours, theirs, [_randn(*shape)], device)


def test_lstm_with_initial_state_and_unbatched(device):
    ours, theirs = _pair(lambda lib: lib.nn.LSTM(3, 4, num_layers=2, bidirectional=True), device)
    h0, c0 = _randn(4, 2, 4, seed=1), _randn(4, 2, 4, seed=2)
    _compare(ours, theirs, [_randn(5, 2, 3), h0, c0], device, call=lambda m, x, h, c: m(x, (h, c)))
    ours, theirs = _pair(lambda lib: lib.nn.LSTM(3, 4), device)
    _compare(ours, theirs, [_randn(6, 3)], device)


def test_lstm_dropout_only_between_layers(device):
    ours = nn.LSTM(3, 4, num_layers=2, dropout=0.5).to(device)
    x = gg.randn(5, 2, 3, device=device)
    ours.eval()
    assert np.allclose(ours(x)[0].numpy(), ours(x)[0].numpy())
    ours.train()
    gg.manual_seed(0)
    first = ours(x)[0].numpy()
    gg.manual_seed(1)
    assert not np.allclose(first, ours(x)[0].numpy())
    single = nn.LSTM(3, 4, dropout=0.5).to(device).train()   # one layer: nothing to drop (PyTorch warns)
    assert np.allclose(single(x)[0].numpy(), single(x)[0].numpy())


@pytest.mark.parametrize("layer", ["LSTM", "RNN", "GRU"])
def test_recurrent_state_dict_keys_and_init_match_torch(layer):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, layer)(3, 16, num_layers=2, bidirectional=True)
    ours = getattr(nn, layer)(3, 16, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert tuple(a.shape) == tuple(b.shape), name
    bound = 1 / math.sqrt(16)
    values = np.concatenate([p.numpy().ravel() for p in ours.parameters()])
    assert values.min() >= -bound and values.max() <= bound and values.std() > 0.8 * bound / math.sqrt(3)


@pytest.mark.parametrize("kwargs", [dict(), dict(nonlinearity="relu", num_layers=2),
                                    dict(bidirectional=True, batch_first=True), dict(bias=False)])
def test_rnn(kwargs, device):
    ours, theirs = _pair(lambda lib: lib.nn.RNN(3, 4, **kwargs), device)
    shape = (2, 5, 3) if kwargs.get("batch_first") else (5, 2, 3)
    _compare(ours, theirs, [_randn(*shape)], device)
    _compare(ours, theirs, [_randn(*shape), _randn(len(ours.all_weights), 2, 4, seed=3)], device)


@pytest.mark.parametrize("cell", ["LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize("bias", [True, False])
def test_cells(cell, bias, device):
    ours, theirs = _pair(lambda lib: getattr(lib.nn, cell)(3, 4, bias=bias), device)
    _compare(ours, theirs, [_randn(2, 3)], device)
    if cell == "LSTMCell":
        _compare(ours, theirs, [_randn(2, 3), _randn(2, 4, seed=1), _randn(2, 4, seed=2)], device,
                 call=lambda m, x, h, c: m(x, (h, c)))
    else:
        _compare(ours, theirs, [_randn(2, 3), _randn(2, 4, seed=1)], device)
    _compare(ours, theirs, [_randn(3)], device)            # unbatched


def test_lstm_cell_unrolled_over_a_sequence(device):
    ours, theirs = _pair(lambda lib: lib.nn.LSTMCell(3, 4), device)

    def unroll(cell, x):
        h = c = None
        outputs = []
        for t in range(x.shape[0]):
            h, c = cell(x[t]) if h is None else cell(x[t], (h, c))
            outputs.append(h)
        return outputs

    _compare(ours, theirs, [_randn(6, 2, 3)], device, call=unroll)


def test_recurrent_shape_errors(device):
    lstm = nn.LSTM(3, 4).to(device)
    with pytest.raises(gg.ShapeError, match="input_size=3"):
        lstm(gg.randn(5, 2, 2, device=device))
    with pytest.raises(gg.ShapeError, match="hidden state"):
        lstm(gg.randn(5, 2, 3, device=device), (gg.zeros(1, 3, 4, device=device), gg.zeros(1, 2, 4, device=device)))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(gg.ShapeError, match="GRUCell"):
        nn.GRUCell(3, 4).to(device)(gg.randn(2, 3, device=device), gg.zeros(3, 4, device=device))

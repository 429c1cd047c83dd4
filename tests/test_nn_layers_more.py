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
    for a, b in zip(ours_out, theirs_out, strict=True):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=rtol, atol=atol)
        cotangent = rng.standard_normal(tuple(b.shape))
        ours_loss = ours_loss + (a * gg.tensor(cotangent, device=device)).sum()
        theirs_loss = theirs_loss + (b * torch.tensor(cotangent)).sum()
    ours_loss.backward()
    theirs_loss.backward()
    for i, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
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
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items(), strict=True):
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


# --------------------------------------------------------------------------- transformer
def _causal(lib, size):
    return lib.nn.Transformer.generate_square_subsequent_mask(size).double()


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_encoder_layer(norm_first, activation, batch_first, device):
    build = lambda lib: lib.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,  # noqa: E731
                                                       activation=activation, batch_first=batch_first,
                                                       norm_first=norm_first)
    ours, theirs = _pair(build, device)
    _compare(ours, theirs, [_randn(3, 5, 8)], device)


def test_transformer_encoder_layer_masks(device):
    ours, theirs = _pair(lambda lib: lib.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                         device)
    padding = np.array([[False] * 5, [False, False, False, True, True], [False] * 4 + [True]])
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)

    # _compare hands both libraries the same masks as their own tensors.
    _compare(ours, theirs, [_randn(3, 5, 8), causal, padding], device,
             call=lambda m, x, mask, pad: m(x, src_mask=mask, src_key_padding_mask=pad))
    _compare(ours, theirs, [_randn(3, 5, 8), padding], device, call=lambda m, x, pad: m(x, src_key_padding_mask=pad))
    # is_causal with the causal mask given (PyTorch's contract: the mask must be there, is_causal is a hint)
    _compare(ours, theirs, [_randn(3, 5, 8)], device,
             call=lambda m, x: m(x, src_mask=_causal(gg if m is ours else torch, 5).to(device) if m is ours
                                 else _causal(torch, 5), is_causal=True))


def test_transformer_encoder_stack(device):
    def build(lib):
        layer = lib.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
        return lib.nn.TransformerEncoder(layer, num_layers=2, norm=lib.nn.LayerNorm(8), enable_nested_tensor=False)

    ours, theirs = _pair(build, device)
    assert "layers.1.self_attn.in_proj_weight" in ours.state_dict()
    _compare(ours, theirs, [_randn(5, 3, 8)], device,
             call=lambda m, x: m(x, mask=_causal(gg, 5).to(device) if m is ours else _causal(torch, 5)))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_decoder_layer(norm_first, device):
    ours, theirs = _pair(lambda lib: lib.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first,
                                                                    activation="gelu"), device)
    memory_padding = np.array([[False] * 7, [False] * 5 + [True] * 2])

    def run(m, tgt, memory):
        lib = gg if m is ours else torch
        mask = _causal(lib, 4)
        pad = lib.tensor(memory_padding)
        if m is ours:
            mask, pad = mask.to(device), pad.to(device)
        return m(tgt, memory, tgt_mask=mask, memory_key_padding_mask=pad, tgt_is_causal=True)

    _compare(ours, theirs, [_randn(4, 2, 8), _randn(7, 2, 8, seed=1)], device, call=run)


def test_transformer_full_model(device):
    build = lambda lib: lib.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,  # noqa
                                           dim_feedforward=16, dropout=0.0, batch_first=True)
    ours, theirs = _pair(build, device)

    def run(m, src, tgt):
        lib = gg if m is ours else torch
        mask = _causal(lib, 4)
        return m(src, tgt, tgt_mask=mask.to(device) if m is ours else mask)

    _compare(ours, theirs, [_randn(2, 6, 8), _randn(2, 4, 8, seed=1)], device, call=run)


def test_transformer_init_and_mask():
    torch.manual_seed(0)
    ours = nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32)
    theirs = torch.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    weight = ours.encoder.layers[0].linear1.weight.numpy()
    bound = math.sqrt(6 / (16 + 32))                       # xavier_uniform_ over every matrix, as PyTorch
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.8 * bound
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    assert mask.tolist() == torch.nn.Transformer.generate_square_subsequent_mask(3).tolist()


def test_transformer_dropout_trains(device):
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5).to(device)
    x = gg.randn(5, 2, 8, device=device)
    layer.eval()
    assert np.allclose(layer(x).numpy(), layer(x).numpy())
    layer.train()
    assert not np.allclose(layer(x).numpy(), layer(x).numpy())


# --------------------------------------------------------------------------- transposed convolution
CONV_T2D = [
    dict(kernel_size=3),
    dict(kernel_size=4, stride=2, padding=1),                      # DCGAN's upsampling block
    dict(kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2), bias=False),
    dict(kernel_size=3, stride=2, groups=2, dilation=2, output_padding=1),
]


@pytest.mark.parametrize("kwargs", CONV_T2D)
def test_conv_transpose2d(kwargs, device):
    ours, theirs = _pair(lambda lib: lib.nn.ConvTranspose2d(4, 6, **kwargs), device)
    _compare(ours, theirs, [_randn(2, 4, 5, 4)], device)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3), dict(kernel_size=4, stride=2, padding=1),
                                    dict(kernel_size=3, stride=3, output_padding=2, groups=2, bias=False)])
def test_conv_transpose1d(kwargs, device):
    ours, theirs = _pair(lambda lib: lib.nn.ConvTranspose1d(4, 2, **kwargs), device)
    _compare(ours, theirs, [_randn(2, 4, 7)], device)
    _compare(ours, theirs, [_randn(4, 7)], device)              # unbatched


def test_conv_transpose_output_size_and_init(device):
    ours, theirs = _pair(lambda lib: lib.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1), device)
    _compare(ours, theirs, [_randn(1, 3, 4, 4)], device, call=lambda m, x: m(x, output_size=(8, 8)))
    with pytest.raises(gg.ShapeError, match="output size"):
        ours(gg.randn(1, 3, 4, 4, device=device, dtype=gg.float64), output_size=(10, 10))
    layer = nn.ConvTranspose2d(16, 8, 3)
    assert tuple(layer.weight.shape) == (16, 8, 3, 3)
    bound = 1 / math.sqrt(8 * 9)                              # kaiming_uniform(a=sqrt(5)) on fan_in = 8 * 3 * 3
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(3, 2, 3, stride=1, output_padding=1)


# --------------------------------------------------------------------------- norms and the rest
@pytest.mark.parametrize("groups,affine", [(2, True), (1, True), (4, False)])
def test_group_norm(groups, affine, device):
    ours, theirs = _pair(lambda lib: lib.nn.GroupNorm(groups, 4, affine=affine), device)
    if affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-0.5, 0.5)
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    _compare(ours, theirs, [_randn(3, 4, 5, 2)], device)
    _compare(ours, theirs, [_randn(3, 4)], device)


@pytest.mark.parametrize("kwargs", [dict(), dict(affine=True), dict(track_running_stats=True),
                                    dict(affine=True, track_running_stats=True)])
def test_instance_norm2d(kwargs, device):
    ours, theirs = _pair(lambda lib: lib.nn.InstanceNorm2d(3, **kwargs), device)
    for step in range(2):
        _compare(ours, theirs, [_randn(2, 3, 4, 5, seed=step)], device)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-7, atol=1e-12)
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, [_randn(2, 3, 4, 5, seed=9)], device)
    _compare(ours, theirs, [_randn(3, 4, 5, seed=9)], device)        # unbatched


def test_instance_norm1d(device):
    ours, theirs = _pair(lambda lib: lib.nn.InstanceNorm1d(3, affine=True), device)
    _compare(ours, theirs, [_randn(2, 3, 6)], device)


@pytest.mark.parametrize("kwargs", [dict(normalized_shape=8), dict(normalized_shape=(3, 8), eps=1e-3),
                                    dict(normalized_shape=8, elementwise_affine=False)])
def test_rms_norm(kwargs, device):
    ours, theirs = _pair(lambda lib: lib.nn.RMSNorm(**kwargs), device)
    if ours.weight is not None:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    _compare(ours, theirs, [_randn(2, 3, 8)], device)


@pytest.mark.parametrize("num_parameters", [1, 3])
def test_prelu(num_parameters, device):
    ours, theirs = _pair(lambda lib: lib.nn.PReLU(num_parameters, init=0.1), device)
    _compare(ours, theirs, [_randn(2, 3, 4)], device)


def test_hardswish_module(device):
    ours, theirs = _pair(lambda lib: lib.nn.Hardswish(), device)
    _compare(ours, theirs, [np.linspace(-5, 5, 37)], device)


@pytest.mark.parametrize("kwargs", [dict(scale_factor=2), dict(size=(5, 7), mode="bilinear"),
                                    dict(scale_factor=2, mode="bilinear", align_corners=True)])
def test_upsample(kwargs, device):
    ours, theirs = _pair(lambda lib: lib.nn.Upsample(**kwargs), device)
    _compare(ours, theirs, [_randn(2, 3, 4, 3)], device)


def test_dropout2d_zeroes_whole_channels(device):
    gg.manual_seed(0)
    layer = nn.Dropout2d(0.5).to(device)
    out = layer(gg.ones(8, 16, 3, 3, device=device)).numpy()
    per_channel = out.reshape(8, 16, 9)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(-1) == per_channel.max(-1)).all()          # a channel is dropped whole or kept
    assert 0.3 < (per_channel[..., 0] == 0).mean() < 0.7
    x = gg.randn(2, 3, 4, 4, device=device, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (y.numpy() != 0) * 2.0)
    layer.eval()
    assert layer(x) is x


# --------------------------------------------------------------------------- small models, several steps
def _lstm_language_model(lib):
    class Model(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = lib.nn.Embedding(11, 6)
            self.lstm = lib.nn.LSTM(6, 8, num_layers=2, batch_first=True)
            self.head = lib.nn.Linear(8, 11)

        def forward(self, tokens):
            output, _ = self.lstm(self.embed(tokens))
            return self.head(output)

    return Model()


def test_lstm_language_model_training_steps_match_torch(device):
    ours, theirs = _pair(_lstm_language_model, device)
    tokens = np.random.default_rng(0).integers(0, 11, (3, 9))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    ours_opt = gg.optim.SGD(ours.parameters(), lr=0.5)
    theirs_opt = torch.optim.SGD(theirs.parameters(), lr=0.5)
    for _ in range(3):
        ours_loss = gg.nn.functional.cross_entropy(ours(gg.tensor(inputs, device=device)).reshape(-1, 11),
                                                   gg.tensor(targets.reshape(-1), device=device))
        theirs_loss = torch.nn.functional.cross_entropy(theirs(torch.tensor(inputs)).reshape(-1, 11),
                                                        torch.tensor(targets.reshape(-1)))
        assert math.isclose(ours_loss.item(), theirs_loss.item(), rel_tol=1e-9)
        for _model, opt, loss in ((ours, ours_opt, ours_loss), (theirs, theirs_opt, theirs_loss)):
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_dcgan_generator_block_matches_torch(device):
    def build(lib):
        return lib.nn.Sequential(lib.nn.ConvTranspose2d(6, 4, 4, 1, 0, bias=False), lib.nn.BatchNorm2d(4),
                                 lib.nn.ReLU(), lib.nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False), lib.nn.Tanh())

    ours, theirs = _pair(build, device)
    _compare(ours, theirs, [_randn(2, 6, 1, 1)], device)


def test_gpt_block_sampling_with_causal_mask_topk_and_multinomial(device):
    """A causal self-attention block as nanoGPT writes it, then top-k sampling of the next token."""
    gg.manual_seed(0)
    block = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=True).to(device)
    head = nn.Linear(16, 10).to(device)
    x = gg.randn(2, 5, 16, device=device)
    mask = gg.tril(gg.ones(5, 5, device=device)) == 0              # True above the diagonal: not attended
    logits = head(block(x, src_mask=mask))[:, -1, :]
    values, _ = gg.topk(logits, 3)
    logits = logits.masked_fill(logits < values[:, [-1]], float("-inf"))
    probabilities = logits.softmax(-1)
    following = gg.multinomial(probabilities, num_samples=1)
    assert tuple(following.shape) == (2, 1)
    allowed = gg.topk(probabilities, 3).indices.numpy()
    assert all(following.numpy()[row, 0] in allowed[row] for row in range(2))
    # The causal mask: changing the last position does not change earlier outputs.
    changed = x.clone()
    changed[:, -1] = 5.0
    np.testing.assert_allclose(block(changed, src_mask=mask)[:, :-1].numpy(), block(x, src_mask=mask)[:, :-1].numpy(),
                               rtol=1e-5, atol=1e-6)

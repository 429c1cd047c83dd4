"""gg.nn layers against PyTorch (the oracle; skipped when absent).

Each case builds the same layer in both libraries, copies torch's weights into ours
through ``load_state_dict`` (strict: this alone proves the parameter names and shapes
match), runs both in float64, and compares outputs, input gradients and parameter
gradients. Train/eval behaviour (BatchNorm running statistics, Dropout) is checked
over several steps.
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn

torch = pytest.importorskip("torch")

pytestmark = [  # torch's own advice to its users, not findings about gpugrad
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
    pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmax:UserWarning"),
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),
]

RTOL, ATOL = 1e-7, 1e-9


def _pair(build, device, train=True):
    """(ours, theirs): the same layer in both libraries, float64, torch's weights copied into ours."""
    torch.manual_seed(0)
    theirs = build(torch).double()
    ours = build(gg).to(gg.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ours.to(device)
    ours.train(train)
    theirs.train(train)
    return ours, theirs


def _as_gg(value, device):
    if isinstance(value, np.ndarray):
        return gg.tensor(value, device=device, requires_grad=value.dtype.kind == "f")
    return value


def _as_torch(value):
    if isinstance(value, np.ndarray):
        return torch.tensor(value, requires_grad=value.dtype.kind == "f")
    return value


def _outputs(result):
    if isinstance(result, tuple):
        return [r for r in result if r is not None]
    return [result]


def _compare(ours, theirs, inputs, device, call=None, kwargs=None, rtol=RTOL, atol=ATOL):
    """Forward both, backward a random cotangent through every output, compare everything."""
    call = call or (lambda module, *args, **kw: module(*args, **kw))
    kwargs = kwargs or {}
    ours_in = [_as_gg(x, device) for x in inputs]
    theirs_in = [_as_torch(x) for x in inputs]
    ours_kw = {k: _as_gg(v, device) if not isinstance(v, np.ndarray) or v.dtype.kind != "f"
               else gg.tensor(v, device=device) for k, v in kwargs.items()}
    theirs_kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    ours_out = _outputs(call(ours, *ours_in, **ours_kw))
    theirs_out = _outputs(call(theirs, *theirs_in, **theirs_kw))
    assert len(ours_out) == len(theirs_out)
    rng = np.random.default_rng(7)
    ours_loss, theirs_loss = 0, 0
    for a, b in zip(ours_out, theirs_out, strict=True):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=rtol, atol=atol)
        if b.requires_grad:
            cotangent = rng.standard_normal(tuple(b.shape))
            ours_loss = ours_loss + (a * gg.tensor(cotangent, device=device)).sum()
            theirs_loss = theirs_loss + (b * torch.tensor(cotangent)).sum()
    if isinstance(theirs_loss, int):
        return ours_out, theirs_out
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


# --------------------------------------------------------------------------- Linear / Conv
@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias, device):
    ours, theirs = _pair(lambda lib: lib.nn.Linear(5, 3, bias=bias), device)
    _compare(ours, theirs, [_randn(2, 4, 5)], device)


CONV1D = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=5, stride=2, padding=2, bias=False),
    dict(kernel_size=4, padding="same", dilation=2),              # asymmetric 'same' padding
    dict(kernel_size=3, padding="valid", groups=2),
    dict(kernel_size=3, padding=2, padding_mode="circular"),
    dict(kernel_size=3, padding=2, padding_mode="reflect"),
    dict(kernel_size=3, padding=1, stride=2, padding_mode="replicate"),
]


@pytest.mark.parametrize("options", CONV1D, ids=[str(o) for o in CONV1D])
def test_conv1d(options, device):
    ours, theirs = _pair(lambda lib: lib.nn.Conv1d(4, 6, **options), device)
    _compare(ours, theirs, [_randn(2, 4, 11)], device)


CONV2D = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    dict(kernel_size=(2, 3), padding="same"),
    dict(kernel_size=3, groups=2, bias=False),
    dict(kernel_size=3, padding=(1, 2), padding_mode="reflect"),
    dict(kernel_size=3, padding=1, padding_mode="circular"),
]


@pytest.mark.parametrize("options", CONV2D, ids=[str(o) for o in CONV2D])
def test_conv2d(options, device):
    ours, theirs = _pair(lambda lib: lib.nn.Conv2d(2, 4, **options), device)
    _compare(ours, theirs, [_randn(2, 2, 7, 6)], device)


def test_conv_argument_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv1d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv1d(1, 1, 3, padding_mode="mirror")


# --------------------------------------------------------------------------- normalisation
BN = [
    ("BatchNorm1d", (6, 3), {}),
    ("BatchNorm1d", (4, 3, 5), dict(momentum=0.3)),
    ("BatchNorm1d", (4, 3, 5), dict(momentum=None)),                # cumulative average
    ("BatchNorm2d", (3, 3, 4, 2), {}),
    ("BatchNorm2d", (3, 3, 4, 2), dict(affine=False)),
    ("BatchNorm2d", (3, 3, 4, 2), dict(track_running_stats=False)),
]


@pytest.mark.parametrize("name,shape,options", BN, ids=[f"{n}-{s}-{o}" for n, s, o in BN])
def test_batchnorm_train_steps_then_eval(name, shape, options, device):
    ours, theirs = _pair(lambda lib: getattr(lib.nn, name)(3, **options), device)
    for step in range(3):
        ours.zero_grad()
        theirs.zero_grad()
        _compare(ours, theirs, [_randn(*shape, seed=step) * 2 + 1], device)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key in theirs_state:
        np.testing.assert_allclose(ours_state[key].numpy(), theirs_state[key].numpy(), rtol=1e-12, err_msg=key)
    if "num_batches_tracked" in ours_state:
        assert int(ours_state["num_batches_tracked"]) == 3
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, [_randn(*shape, seed=9)], device)
    for key in theirs_state:                                          # eval leaves the statistics alone
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), theirs.state_dict()[key].numpy(), rtol=1e-12)


def test_batchnorm_rejects_wrong_rank_and_channels():
    with pytest.raises(ValueError, match="2-d or 3-d"):
        nn.BatchNorm1d(3)(gg.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="expected 3 channels"):
        nn.BatchNorm2d(3)(gg.randn(2, 4, 2, 2))


@pytest.mark.parametrize("options", [dict(normalized_shape=6), dict(normalized_shape=(4, 6), eps=1e-3),
                                     dict(normalized_shape=6, elementwise_affine=False),
                                     dict(normalized_shape=6, bias=False)])
def test_layernorm(options, device):
    ours, theirs = _pair(lambda lib: lib.nn.LayerNorm(**options), device)
    _compare(ours, theirs, [_randn(3, 4, 6)], device)


# --------------------------------------------------------------------------- dropout
def test_dropout_train_and_eval(device):
    gg.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = gg.ones(200, 100, device=device, requires_grad=True)
    y = drop(x)
    values = y.numpy()
    kept = values != 0
    np.testing.assert_allclose(values[kept], 1 / 0.75, rtol=1e-6)      # survivors scaled by 1/(1-p)
    assert abs(1 - kept.mean() - 0.25) < 0.02
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.75, rtol=1e-6)  # gradient through the same mask
    drop.eval()
    assert np.array_equal(drop(x).numpy(), x.numpy())
    assert nn.Dropout(0.0)(x) is x
    assert not nn.Dropout(1.0)(x).numpy().any()
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


# --------------------------------------------------------------------------- pooling
POOLS = [
    ("MaxPool1d", dict(kernel_size=3), (2, 3, 10)),
    ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 10)),
    ("MaxPool2d", dict(kernel_size=2), (2, 3, 6, 5)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 7, 6)),
    ("AvgPool1d", dict(kernel_size=4, stride=2), (2, 3, 11)),
    ("AvgPool1d", dict(kernel_size=3, padding=1, count_include_pad=False), (2, 3, 10)),
    ("AvgPool2d", dict(kernel_size=2), (2, 3, 6, 6)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 7, 5)),
    ("AdaptiveAvgPool2d", dict(output_size=1), (2, 3, 5, 4)),
    ("AdaptiveAvgPool2d", dict(output_size=(3, 2)), (2, 3, 7, 5)),
]


@pytest.mark.parametrize("name,options,shape", POOLS, ids=[f"{n}-{o}" for n, o, _ in POOLS])
def test_pooling(name, options, shape, device):
    ours, theirs = _pair(lambda lib: getattr(lib.nn, name)(**options), device)
    _compare(ours, theirs, [_randn(*shape)], device)


# --------------------------------------------------------------------------- embedding
@pytest.mark.parametrize("padding_idx", [None, 1, -1])
def test_embedding(padding_idx, device):
    ours, theirs = _pair(lambda lib: lib.nn.Embedding(7, 4, padding_idx=padding_idx), device)
    index = np.array([[0, 1, 2, 1], [6, 5, 1, 0]])
    _compare(ours, theirs, [index], device)
    if padding_idx is not None:
        assert not ours.weight.grad.numpy()[padding_idx].any()


def test_embedding_max_norm_renormalises_rows_like_torch(device):
    ours, theirs = _pair(lambda lib: lib.nn.Embedding(7, 4, max_norm=1.0), device)
    index = np.array([[0, 3, 3], [5, 6, 0]])
    _compare(ours, theirs, [index], device)
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-12)  # rows renormed


def test_embedding_from_pretrained():
    weights = gg.randn(5, 3)
    emb = nn.Embedding.from_pretrained(weights)
    assert not emb.weight.requires_grad
    np.testing.assert_array_equal(emb(gg.tensor([4, 0])).numpy(), weights.numpy()[[4, 0]])


# --------------------------------------------------------------------------- activations
ACTIVATIONS = [("ReLU", {}), ("LeakyReLU", dict(negative_slope=0.2)), ("ELU", dict(alpha=0.7)), ("GELU", {}),
               ("GELU", dict(approximate="tanh")), ("SiLU", {}), ("Sigmoid", {}), ("Tanh", {}),
               ("Softplus", dict(beta=2.0, threshold=3.0)), ("Mish", {}), ("Softmax", dict(dim=1)),
               ("Softmax", {}), ("LogSoftmax", dict(dim=-1))]


@pytest.mark.parametrize("name,options", ACTIVATIONS, ids=[f"{n}-{o}" for n, o in ACTIVATIONS])
def test_activations(name, options, device):
    ours, theirs = _pair(lambda lib: getattr(lib.nn, name)(**options), device)
    _compare(ours, theirs, [_randn(3, 4, 5) * 3], device)


# --------------------------------------------------------------------------- losses
def _class_target(*shape, classes=4, seed=1):
    return np.random.default_rng(seed).integers(0, classes, shape)


LOSSES = [
    ("CrossEntropyLoss", {}, (6, 4), _class_target(6)),
    ("CrossEntropyLoss", dict(reduction="sum", label_smoothing=0.1), (6, 4), _class_target(6)),
    ("CrossEntropyLoss", dict(ignore_index=2, reduction="none"), (3, 4, 5), _class_target(3, 5)),
    ("CrossEntropyLoss", dict(weight=np.array([1.0, 2.0, 0.5, 1.5])), (6, 4), _class_target(6)),
    ("CrossEntropyLoss", {}, (6, 4), np.random.default_rng(3).dirichlet(np.ones(4), 6)),   # probabilities
    ("NLLLoss", {}, (6, 4), _class_target(6)),
    ("NLLLoss", dict(weight=np.array([1.0, 2.0, 0.5, 1.5]), ignore_index=0), (6, 4), _class_target(6)),
    ("MSELoss", {}, (3, 5), _randn(3, 5, seed=4)),
    ("MSELoss", dict(reduction="sum"), (3, 5), _randn(3, 5, seed=4)),
    ("L1Loss", {}, (3, 5), _randn(3, 5, seed=4)),
    ("BCEWithLogitsLoss", {}, (4, 3), np.random.default_rng(5).random((4, 3))),
    ("BCEWithLogitsLoss", dict(pos_weight=np.array([1.0, 3.0, 0.5])), (4, 3), np.random.default_rng(5).random((4, 3))),
    ("BCELoss", {}, (4, 3), np.random.default_rng(5).random((4, 3))),
]


@pytest.mark.parametrize("name,options,shape,target", LOSSES, ids=[f"{n}-{i}" for i, (n, *_) in enumerate(LOSSES)])
def test_losses(name, options, shape, target, device):
    def build(lib):
        kwargs = {k: (lib.tensor(v, dtype=lib.float64) if isinstance(v, np.ndarray) else v) for k, v in options.items()}
        return getattr(lib.nn, name)(**kwargs)
    ours, theirs = _pair(build, device)
    logits = _randn(*shape, seed=2)
    if name == "BCELoss":
        logits = 1 / (1 + np.exp(-logits))
    elif name == "NLLLoss":
        logits = logits - np.log(np.exp(logits).sum(1, keepdims=True))

    def call(module, x):
        is_ours = isinstance(x, gg.Tensor)
        return module(x, gg.tensor(target, device=device) if is_ours else torch.tensor(target))
    _compare(ours, theirs, [logits], device, call=call)


def test_loss_weights_are_buffers():
    loss = nn.CrossEntropyLoss(weight=gg.ones(3))
    assert list(loss.state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    assert list(nn.BCEWithLogitsLoss(pos_weight=gg.ones(2)).state_dict()) == ["pos_weight"]
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


# --------------------------------------------------------------------------- GRU
GRUS = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False, batch_first=True),
]


@pytest.mark.parametrize("options", GRUS, ids=[str(o) for o in GRUS])
@pytest.mark.parametrize("with_h0", [False, True])
def test_gru(options, with_h0, device):
    ours, theirs = _pair(lambda lib: lib.nn.GRU(3, 4, **options), device)
    layers = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
    shape = (2, 5, 3) if options.get("batch_first") else (5, 2, 3)
    inputs = [_randn(*shape)] + ([_randn(layers, 2, 4, seed=1)] if with_h0 else [])
    _compare(ours, theirs, inputs, device, rtol=1e-6, atol=1e-9)


def test_gru_unbatched_and_dropout_between_layers(device):
    ours, theirs = _pair(lambda lib: lib.nn.GRU(3, 4, num_layers=2, dropout=0.5), device, train=False)
    _compare(ours, theirs, [_randn(6, 3), _randn(2, 4, seed=1)], device, rtol=1e-6)
    ours.train()
    gg.manual_seed(0)
    first = ours(gg.tensor(_randn(6, 1, 3), device=device))[0].numpy()
    second = ours(gg.tensor(_randn(6, 1, 3), device=device))[0].numpy()
    assert not np.allclose(first, second)                    # dropout active in training
    with pytest.raises(ValueError, match="input_size=3"):
        ours(gg.randn(6, 1, 5, device=device))
    with pytest.raises(ValueError, match="hidden size"):
        ours(gg.randn(6, 1, 3, device=device), gg.zeros(1, 1, 4, device=device))


# --------------------------------------------------------------------------- MultiheadAttention
def _bool_mask(*shape, seed=3):
    mask = np.random.default_rng(seed).random(shape) < 0.3
    mask[..., 0] = False                                     # never mask a whole row
    return mask


MHA = [
    ("self", dict(), {}),
    ("self", dict(batch_first=True), dict(key_padding_mask=_bool_mask(2, 6))),
    ("self", dict(), dict(attn_mask=_bool_mask(5, 6))),
    ("self", dict(batch_first=True), dict(attn_mask=_randn(2 * 2, 5, 6, seed=4),
                                          key_padding_mask=_bool_mask(2, 6))),
    ("self", dict(), dict(average_attn_weights=False)),
    ("self", dict(), dict(need_weights=False)),
    ("kv", dict(kdim=3, vdim=5, batch_first=True), dict(key_padding_mask=_randn(2, 6, seed=5))),
    ("kv", dict(bias=False), {}),
    ("self", dict(add_bias_kv=True), dict(attn_mask=_bool_mask(5, 6), key_padding_mask=_bool_mask(2, 6, seed=4))),
    ("kv", dict(add_zero_attn=True, batch_first=True), dict(key_padding_mask=_bool_mask(2, 6))),
    ("kv", dict(add_bias_kv=True, add_zero_attn=True, kdim=3, vdim=5),
     dict(attn_mask=_randn(2 * 2, 5, 6, seed=6), average_attn_weights=False)),
]


@pytest.mark.parametrize("kind,options,call_options", MHA, ids=[f"{k}-{o}-{list(c)}" for k, o, c in MHA])
def test_multihead_attention(kind, options, call_options, device):
    ours, theirs = _pair(lambda lib: lib.nn.MultiheadAttention(8, 2, **options), device)
    batch_first = options.get("batch_first", False)
    q_shape = (2, 5, 8) if batch_first else (5, 2, 8)

    def kv_shape(features):
        return (2, 6, features) if batch_first else (6, 2, features)
    inputs = [_randn(*q_shape), _randn(*kv_shape(options.get("kdim", 8)), seed=1),
              _randn(*kv_shape(options.get("vdim", 8)), seed=2)]
    _compare(ours, theirs, inputs, device, kwargs=call_options, rtol=1e-6)


def test_multihead_attention_unbatched_and_dropout(device):
    ours, theirs = _pair(lambda lib: lib.nn.MultiheadAttention(4, 2, dropout=0.5), device, train=False)
    x = _randn(3, 4)
    _compare(ours, theirs, [x, x, x], device, kwargs=dict(key_padding_mask=np.array([False, True, False])),
             rtol=1e-6)
    ours.train()
    out, weights = ours(*[gg.tensor(x, device=device)] * 3)
    assert out.shape == (3, 4) and weights.shape == (3, 3)
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(ValueError, match="attn_mask"):
        ours(*[gg.tensor(x, device=device)] * 3, attn_mask=gg.zeros(2, 2, dtype=gg.bool, device=device))


# --------------------------------------------------------------------------- a whole model
def test_small_cnn_training_steps_match_torch(device):
    def build(lib):
        n = lib.nn
        return n.Sequential(n.Conv1d(1, 4, 5, padding=2), n.BatchNorm1d(4), n.GELU(), n.MaxPool1d(2),
                            n.Conv1d(4, 8, 3, padding=1), n.BatchNorm1d(8), n.GELU(), n.Flatten(),
                            n.Dropout(0.0), n.Linear(8 * 8, 3))
    ours, theirs = _pair(build, device)
    ours_opt = gg.optim.AdamW(ours.parameters(), lr=1e-2, weight_decay=0.05)
    theirs_opt = torch.optim.AdamW(theirs.parameters(), lr=1e-2, weight_decay=0.05)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.standard_normal((6, 1, 16)), rng.integers(0, 3, 6)
        ours_loss = nn.CrossEntropyLoss()(ours(gg.tensor(x, device=device)), gg.tensor(y, device=device))
        theirs_loss = torch.nn.CrossEntropyLoss()(theirs(torch.tensor(x)), torch.tensor(y))
        np.testing.assert_allclose(ours_loss.item(), theirs_loss.item(), rtol=1e-9)
        ours_opt.zero_grad()
        theirs_opt.zero_grad()
        ours_loss.backward()
        theirs_loss.backward()
        ours_opt.step()
        theirs_opt.step()
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=key)

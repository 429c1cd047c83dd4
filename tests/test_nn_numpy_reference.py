"""Layers against references written in NumPy, with no PyTorch needed.

Each layer's output is compared with the same formula written directly in
NumPy from the layer's own parameters; its gradients (input and parameters)
are checked against central differences in float64 with ``gg.gradcheck``.
The PyTorch comparisons in ``test_nn_layers.py`` add torch's exact semantics
where torch is installed; these run everywhere.
"""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F


def numpy_of(module):
    return {name: p.numpy().astype(np.float64) for name, p in module.state_dict().items()}


def check_gradients(module, *inputs):
    """gradcheck over the inputs and every parameter of ``module`` (float64): the
    parameters are swapped for gradcheck's own leaves while it runs."""
    slots = [(owner, name) for _, owner in module.named_modules() for name in list(owner._parameters)
             if owner._parameters[name] is not None]
    originals = [owner._parameters[name] for owner, name in slots]

    def run(*values):
        for (owner, name), value in zip(slots, values[len(inputs):], strict=True):
            owner._parameters[name] = value
        return _first(module(*values[:len(inputs)]))

    try:
        assert gg.gradcheck(run, [x.detach() for x in inputs] + [p.detach() for p in originals],
                            check_forward=False)
    finally:
        for (owner, name), original in zip(slots, originals, strict=True):
            owner._parameters[name] = original


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_linear(device):
    gg.manual_seed(0)
    layer = nn.Linear(4, 3).double().to(device)
    x = gg.randn(5, 4, dtype=gg.float64, device=device)
    p = numpy_of(layer)
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ p["weight"].T + p["bias"], rtol=1e-12)
    check_gradients(layer, x)


def _conv2d_reference(x, weight, bias, stride, padding):
    n, c, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h = (h + 2 * padding - kh) // stride + 1
    out_w = (w + 2 * padding - kw) // stride + 1
    out = np.zeros((n, out_channels, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, weight) + bias
    return out


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
def test_conv2d(stride, padding, device):
    gg.manual_seed(1)
    layer = nn.Conv2d(2, 3, 3, stride=stride, padding=padding).double().to(device)
    x = gg.randn(2, 2, 5, 5, dtype=gg.float64, device=device)
    p = numpy_of(layer)
    np.testing.assert_allclose(layer(x).numpy(), _conv2d_reference(x.numpy(), p["weight"], p["bias"], stride, padding),
                               rtol=1e-10, atol=1e-12)
    check_gradients(layer, x)


def test_batchnorm2d_training_and_running_stats(device):
    gg.manual_seed(2)
    layer = nn.BatchNorm2d(3).double().to(device)
    with gg.no_grad():
        layer.weight.copy_(gg.tensor([0.5, 1.5, -1.0], dtype=gg.float64))
        layer.bias.copy_(gg.tensor([0.1, 0.0, 0.3], dtype=gg.float64))
    x = gg.randn(4, 3, 2, 2, dtype=gg.float64, device=device)
    out = layer(x).numpy()
    data = x.numpy()
    mean = data.mean(axis=(0, 2, 3))
    var = data.var(axis=(0, 2, 3))
    expected = (data - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    scale, shift = np.array([0.5, 1.5, -1.0])[None, :, None, None], np.array([0.1, 0.0, 0.3])[None, :, None, None]
    expected = expected * scale + shift
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    count = data.size / 3
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var.numpy(), 0.9 + 0.1 * var * count / (count - 1), rtol=1e-12)
    layer.eval()
    running_mean, running_var = layer.running_mean.numpy(), layer.running_var.numpy()
    expected_eval = (data - running_mean[None, :, None, None]) / np.sqrt(running_var[None, :, None, None] + 1e-5)
    expected_eval = expected_eval * scale + shift
    np.testing.assert_allclose(layer(x).numpy(), expected_eval, rtol=1e-10, atol=1e-12)
    check_gradients(layer, x)


def test_layernorm(device):
    gg.manual_seed(3)
    layer = nn.LayerNorm(4).double().to(device)
    with gg.no_grad():
        layer.weight.copy_(gg.randn(4, dtype=gg.float64))
    x = gg.randn(3, 4, dtype=gg.float64, device=device)
    data, p = x.numpy(), numpy_of(layer)
    normalised = (data - data.mean(-1, keepdims=True)) / np.sqrt(data.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(layer(x).numpy(), normalised * p["weight"] + p["bias"], rtol=1e-10)
    check_gradients(layer, x)


def test_maxpool2d_and_avgpool2d(device):
    x = gg.tensor(np.random.default_rng(4).permutation(32).reshape(1, 2, 4, 4) * 0.1, dtype=gg.float64, device=device)
    data = x.numpy()
    blocks = data.reshape(1, 2, 2, 2, 2, 2)
    np.testing.assert_allclose(nn.MaxPool2d(2)(x).numpy(), blocks.max(axis=(3, 5)))
    np.testing.assert_allclose(nn.AvgPool2d(2)(x).numpy(), blocks.mean(axis=(3, 5)))
    assert gg.gradcheck(nn.MaxPool2d(2), [x.detach()])
    assert gg.gradcheck(nn.AvgPool2d(2), [x.detach()])


def test_embedding(device):
    gg.manual_seed(5)
    layer = nn.Embedding(6, 3).double().to(device)
    index = gg.tensor([[0, 5, 5], [2, 1, 0]], device=device)
    np.testing.assert_allclose(layer(index).numpy(), numpy_of(layer)["weight"][index.numpy()])
    layer(index).sum().backward()
    counts = np.bincount(index.numpy().ravel(), minlength=6)
    np.testing.assert_allclose(layer.weight.grad.numpy(), np.repeat(counts[:, None], 3, axis=1))


def test_gru(device):
    gg.manual_seed(6)
    layer = nn.GRU(2, 3, batch_first=True).double().to(device)
    x = gg.randn(2, 4, 2, dtype=gg.float64, device=device)
    p = numpy_of(layer)
    h = np.zeros((2, 3))
    outputs = []
    for t in range(4):
        gx = x.numpy()[:, t] @ p["weight_ih_l0"].T + p["bias_ih_l0"]
        gh = h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
        r = sigmoid(gx[:, :3] + gh[:, :3])
        z = sigmoid(gx[:, 3:6] + gh[:, 3:6])
        n = np.tanh(gx[:, 6:] + r * gh[:, 6:])
        h = (1 - z) * n + z * h
        outputs.append(h)
    output, h_n = layer(x)
    np.testing.assert_allclose(output.numpy(), np.stack(outputs, 1), rtol=1e-10)
    np.testing.assert_allclose(h_n.numpy()[0], h, rtol=1e-10)
    check_gradients(layer, x)


def test_multihead_attention(device):
    gg.manual_seed(7)
    layer = nn.MultiheadAttention(4, 2, batch_first=True).double().to(device)
    x = gg.randn(2, 3, 4, dtype=gg.float64, device=device)
    p = numpy_of(layer)
    data = x.numpy()
    q, k, v = np.split(data @ p["in_proj_weight"].T + p["in_proj_bias"], 3, axis=-1)

    def heads(t):
        return t.reshape(2, 3, 2, 2).transpose(0, 2, 1, 3)

    scores = heads(q) @ heads(k).transpose(0, 1, 3, 2) / np.sqrt(2)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attended = (weights @ heads(v)).transpose(0, 2, 1, 3).reshape(2, 3, 4)
    expected = attended @ p["out_proj.weight"].T + p["out_proj.bias"]
    output, averaged = layer(x, x, x)
    np.testing.assert_allclose(output.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(averaged.numpy(), weights.mean(axis=1), rtol=1e-10)
    assert gg.gradcheck(lambda t: layer(t, t, t)[0], [x.detach()], check_forward=False)


def test_cross_entropy_and_mse(device):
    logits = gg.randn(5, 4, dtype=gg.float64, device=device)
    target = gg.tensor([0, 3, 1, 1, 2], device=device)
    data = logits.numpy()
    log_probs = data - np.log(np.exp(data).sum(-1, keepdims=True))
    np.testing.assert_allclose(float(nn.CrossEntropyLoss()(logits, target)),
                               -log_probs[np.arange(5), target.numpy()].mean(), rtol=1e-12)
    smoothed = nn.CrossEntropyLoss(label_smoothing=0.2)(logits, target)
    expected = -(0.8 * log_probs[np.arange(5), target.numpy()] + 0.2 * log_probs.mean(-1)).mean()
    np.testing.assert_allclose(float(smoothed), expected, rtol=1e-12)
    assert gg.gradcheck(lambda t: F.cross_entropy(t, target, label_smoothing=0.2), [logits])
    other = gg.randn(5, 4, dtype=gg.float64, device=device)
    np.testing.assert_allclose(float(nn.MSELoss()(logits, other)), ((data - other.numpy()) ** 2).mean())

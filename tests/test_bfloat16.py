"""bfloat16 as a first-class dtype, with PyTorch's bfloat16 as the oracle.

Inputs are drawn, rounded to bfloat16 once, and given bit for bit to both
libraries; results are compared in float32 within a bfloat16 tolerance (PyTorch
computes elementwise bfloat16 ops in float32 and rounds once, as gpugrad does,
so most agree exactly; products and reductions may differ in the last bit).
"""

import io

import ml_dtypes
import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

BF16 = np.dtype(ml_dtypes.bfloat16)
# One bfloat16 step is 2**-8 relative (7 stored mantissa bits); allow two of them.
RTOL, ATOL = 2 ** -7, 1e-3


def _draw(shape, seed=0, positive=False):
    values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if positive:
        values = np.abs(values) + 0.1
    return values.astype(BF16)


def _gg(values, device, grad=True):
    return gg.tensor(values, device=device).requires_grad_(grad)


def _torch(values, grad=True):
    return torch.tensor(values.astype(np.float32)).to(torch.bfloat16).requires_grad_(grad)


def _as_float32(value):
    if isinstance(value, gg.Tensor):
        return value.float().numpy()
    return value.detach().float().numpy()


def _close(got, expected, rtol=RTOL, atol=ATOL):
    got, expected = _as_float32(got), _as_float32(expected)
    # Sums of products (convolutions, matmuls) may round differently where terms
    # cancel: allow an error relative to the largest magnitude, not only the element's.
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=max(atol, rtol * scale))


def check(gg_fn, torch_fn, *arrays, device="cpu", rtol=RTOL, atol=ATOL, grad_rtol=None):
    """Outputs are bfloat16 in both, equal within tolerance, and so are the input gradients."""
    gg_inputs = [_gg(a, device, a.dtype == BF16) for a in arrays]
    torch_inputs = [_torch(a, a.dtype == BF16) if a.dtype == BF16 else torch.tensor(a) for a in arrays]
    got, expected = gg_fn(*gg_inputs), torch_fn(*torch_inputs)
    assert str(got.dtype) == "bfloat16" and expected.dtype == torch.bfloat16
    _close(got, expected, rtol, atol)
    weights = _draw(tuple(expected.shape), seed=99)
    (got * gg.tensor(weights, device=device)).sum().backward()
    (expected * torch.tensor(weights.astype(np.float32)).to(torch.bfloat16)).sum().backward()
    for ours, theirs in zip(gg_inputs, torch_inputs):
        if ours.requires_grad:
            assert ours.grad.dtype == gg.bfloat16
            _close(ours.grad, theirs.grad, grad_rtol or rtol, atol)


# --------------------------------------------------------------------------
# The dtype itself.
# --------------------------------------------------------------------------
def test_bfloat16_is_a_floating_dtype_everywhere(device):
    assert gg.bfloat16 == BF16 and gg.backend.as_dtype("bfloat16") == BF16
    made = [gg.zeros(3, dtype=gg.bfloat16, device=device), gg.ones(2, 2, dtype="bfloat16", device=device),
            gg.randn(4, dtype=gg.bfloat16, device=device), gg.rand(4, dtype=gg.bfloat16, device=device),
            gg.full((2,), 0.1, dtype=gg.bfloat16, device=device), gg.arange(0, 3, dtype=gg.bfloat16, device=device),
            gg.tensor([1.0, 2.5], dtype=gg.bfloat16, device=device), gg.ones(3, device=device).bfloat16(),
            gg.zeros_like(gg.ones(2, dtype=gg.bfloat16, device=device))]
    for tensor in made:
        assert tensor.dtype == gg.bfloat16 and tensor.is_floating_point()
        assert str(tensor.device).startswith(device)
    assert repr(gg.tensor([2.5, -3.14159],
                          dtype=gg.bfloat16)) == "tensor([ 2.5   , -3.1406], device='cpu', dtype=bfloat16)"
    leaf = gg.ones(2, dtype=gg.bfloat16, device=device, requires_grad=True)
    assert leaf.requires_grad
    assert gg.full((1,), 0.1, dtype=gg.bfloat16).item() == float(np.float32(BF16.type(0.1)))


def test_casting_rounds_to_nearest_even_like_pytorch(device):
    values = np.array([1.0, 1.00390625, 1.01171875, 3.14159, -2.7e38, 1e-40, np.inf, np.nan], np.float32)
    ours = gg.tensor(values, device=device).bfloat16().float().numpy()
    theirs = torch.tensor(values).bfloat16().float().numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("other,expected", [
    (torch.float16, torch.float32), (torch.float32, torch.float32), (torch.float64, torch.float64),
    (torch.int64, torch.bfloat16), (torch.int32, torch.bfloat16), (torch.bool, torch.bfloat16)])
def test_promotion_follows_pytorch(other, expected):
    names = {torch.float16: gg.float16, torch.float32: gg.float32, torch.float64: gg.float64,
             torch.int64: gg.int64, torch.int32: gg.int32, torch.bool: gg.bool, torch.bfloat16: gg.bfloat16}
    assert torch.promote_types(torch.bfloat16, other) == expected
    ours = gg.ones(2, dtype=gg.bfloat16) + gg.ones(2, dtype=names[other])
    assert ours.dtype == names[expected]
    assert (gg.ones(2, dtype=names[other]) * gg.ones(2, dtype=gg.bfloat16)).dtype == names[expected]


def test_python_numbers_keep_bfloat16():
    x = gg.ones(3, dtype=gg.bfloat16)
    for result in (x + 1.5, 2 * x, x / 3, x ** 2, 1 - x, x + 1):
        assert result.dtype == gg.bfloat16


def test_module_bfloat16_casts_parameters_and_buffers():
    model = gg.nn.Sequential(gg.nn.Linear(4, 3), gg.nn.BatchNorm1d(3))
    assert model.bfloat16() is model
    assert all(p.dtype == gg.bfloat16 for p in model.parameters())
    assert model[1].running_mean.dtype == gg.bfloat16
    assert model[1].num_batches_tracked.dtype == gg.int64


# --------------------------------------------------------------------------
# Arithmetic, reductions, products: values and gradients against PyTorch.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["add", "mul", "sub", "div", "pow", "maximum", "where"])
def test_binary_arithmetic(name, device):
    a, b = _draw((4, 5), 1), _draw((4, 5), 2, positive=True)
    ours = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y, "sub": lambda x, y: x - y,
            "div": lambda x, y: x / y, "pow": lambda x, y: x * y ** 1.5, "maximum": gg.maximum,
            "where": lambda x, y: gg.where(x > 0, x, y)}[name]
    theirs = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y, "sub": lambda x, y: x - y,
              "div": lambda x, y: x / y, "pow": lambda x, y: x * y ** 1.5, "maximum": torch.maximum,
              "where": lambda x, y: torch.where(x > 0, x, y)}[name]
    check(ours, theirs, a, b, device=device)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "tanh", "sigmoid", "abs", "neg"])
def test_unary_math(name, device):
    x = _draw((3, 7), 3, positive=name in ("log", "sqrt"))
    check(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), x, device=device)


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "std", "amax", "logsumexp", "norm", "prod", "cumsum"])
def test_reductions(reduction, device):
    x = _draw((6, 5), 4, positive=reduction == "prod")
    calls = {"sum": (lambda t: t.sum(1), lambda t: t.sum(1)), "mean": (lambda t: t.mean(0), lambda t: t.mean(0)),
             "var": (lambda t: t.var(1), lambda t: t.var(1)), "std": (lambda t: t.std(0), lambda t: t.std(0)),
             "amax": (lambda t: t.amax(1), lambda t: t.amax(1)),
             "logsumexp": (lambda t: t.logsumexp(1), lambda t: t.logsumexp(1)),
             "norm": (lambda t: t.norm(), lambda t: t.norm()), "prod": (lambda t: t.prod(0), lambda t: t.prod(0)),
             "cumsum": (lambda t: t.cumsum(1), lambda t: t.cumsum(1))}
    ours, theirs = calls[reduction]
    check(ours, theirs, x, device=device, grad_rtol=2 ** -5)


def test_sums_accumulate_in_float32_as_pytorch_does(device):
    # 4096 terms of 0.01: a bfloat16 running sum stops growing near 2 (0.01 is then
    # below half a step); PyTorch and gpugrad accumulate in float32 and round once.
    x = np.full(4096, 0.01, np.float32).astype(BF16)
    expected = torch.tensor(x.astype(np.float32)).bfloat16()
    for ours, theirs in ((gg.tensor(x, device=device).sum(), expected.sum()),
                         (gg.tensor(x, device=device).mean(), expected.mean()),
                         (gg.tensor(x, device=device).cumsum(0)[-1], expected.cumsum(0)[-1])):
        assert ours.dtype == gg.bfloat16
        assert float(ours.float().item()) == pytest.approx(float(theirs.float()), rel=2 ** -7)
    assert float(gg.tensor(x, device=device).sum().item()) > 40


def test_matmul_linear_bmm_einsum(device):
    a, b, bias = _draw((5, 8), 5), _draw((8, 3), 6), _draw((3,), 7)
    check(lambda x, w: x @ w, lambda x, w: x @ w, a, b, device=device)
    check(lambda x, w, c: F.linear(x, w.T, c), lambda x, w, c: TF.linear(x, w.T, c), a, b, bias, device=device)
    check(lambda x, w: gg.bmm(x[None], w[None]), lambda x, w: torch.bmm(x[None], w[None]), a, b, device=device)
    check(lambda x, w: gg.einsum("ij,jk->ik", x, w), lambda x, w: torch.einsum("ij,jk->ik", x, w), a, b,
          device=device)


def test_linear_layer_and_linear_relu_in_bfloat16(device):
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU()).bfloat16()
    model = gg.nn.Sequential(gg.nn.Linear(6, 4), gg.nn.ReLU())
    model.load_state_dict({k: gg.tensor(v.float().numpy()) for k, v in reference.state_dict().items()})
    model.bfloat16().to(device)
    x = _draw((3, 6), 8)
    check(model, reference, x, device=device)


def test_conv2d_and_pooling(device):
    image, kernel = _draw((2, 3, 7, 7), 9), _draw((4, 3, 3, 3), 10)
    check(lambda x, k: F.conv2d(x, k, padding=1, stride=2), lambda x, k: TF.conv2d(x, k, padding=1, stride=2),
          image, kernel, device=device, grad_rtol=2 ** -5)
    check(lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2), image, device=device)
    check(lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2), image, device=device)


# --------------------------------------------------------------------------
# Every activation kernel path: computed in float32, stored in bfloat16.
# --------------------------------------------------------------------------
ACTIVATIONS = {
    "relu": (F.relu, TF.relu), "leaky_relu": (lambda t: F.leaky_relu(t, 0.1), lambda t: TF.leaky_relu(t, 0.1)),
    "elu": (F.elu, TF.elu), "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda t: TF.gelu(t, approximate="tanh")),
    "silu": (F.silu, TF.silu), "softplus": (F.softplus, TF.softplus), "mish": (F.mish, TF.mish),
    "sigmoid": (gg.sigmoid, torch.sigmoid), "tanh": (gg.tanh, torch.tanh),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name, device):
    ours, theirs = ACTIVATIONS[name]
    check(ours, theirs, _draw((6, 9), 11) * BF16.type(3), device=device)


@pytest.mark.parametrize("name", ["relu", "gelu", "silu"])
def test_linear_then_activation_through_the_fused_paths(name, device):
    ours, theirs = ACTIVATIONS[name]
    check(lambda x, w, b: ours(F.linear(x, w, b)), lambda x, w, b: theirs(TF.linear(x, w, b)),
          _draw((5, 4), 12), _draw((3, 4), 13), _draw((3,), 14), device=device)


def test_dropout_keeps_bfloat16_and_scales_kept_values(device):
    x = gg.ones(1000, dtype=gg.bfloat16, device=device, requires_grad=True)
    y = F.dropout(x, 0.5, training=True)
    assert y.dtype == gg.bfloat16
    kept = y.float().numpy() != 0
    np.testing.assert_array_equal(y.float().numpy()[kept], 2.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.float().numpy(), np.where(kept, 2.0, 0.0))


# --------------------------------------------------------------------------
# Softmax, losses and norms in bfloat16 (PyTorch computes them in float32 internally).
# --------------------------------------------------------------------------
def test_softmax_losses_and_norms(device):
    logits, target = _draw((4, 5), 15), np.array([0, 3, 1, 4])
    check(lambda t: F.softmax(t, -1), lambda t: TF.softmax(t, -1), logits, device=device)
    check(lambda t: F.log_softmax(t, -1), lambda t: TF.log_softmax(t, -1), logits, device=device)
    check(lambda t, y: F.cross_entropy(t, y), lambda t, y: TF.cross_entropy(t, y), logits, target, device=device,
          grad_rtol=2 ** -5)
    check(lambda t: F.layer_norm(t, (5,)), lambda t: TF.layer_norm(t, (5,)), logits, device=device,
          rtol=2 ** -6, grad_rtol=2 ** -4)
    check(lambda t: F.mse_loss(t, t.detach() * 0.5), lambda t: TF.mse_loss(t, t.detach() * 0.5), logits,
          device=device)


# --------------------------------------------------------------------------
# Files: safetensors BF16, read and written by the safetensors library and PyTorch.
# --------------------------------------------------------------------------
def test_save_load_round_trip_is_bit_exact(tmp_path, device):
    weights = gg.tensor(_draw((3, 4), 16), device=device)
    path = tmp_path / "w.safetensors"
    gg.save({"w": weights, "nested": [weights[0]]}, path)
    loaded = gg.load(path, device=device)
    assert loaded["w"].dtype == gg.bfloat16
    np.testing.assert_array_equal(loaded["w"].numpy().view(np.uint16), weights.numpy().view(np.uint16))
    np.testing.assert_array_equal(loaded["nested"][0].numpy().view(np.uint16), weights.numpy()[0].view(np.uint16))


def test_files_interoperate_with_safetensors_and_pytorch(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    values = _draw((5, 3), 17)
    ours_path = tmp_path / "ours.safetensors"
    gg.save({"w": gg.tensor(values)}, ours_path)
    by_torch = safetensors_torch.load_file(str(ours_path))["w"]
    assert by_torch.dtype == torch.bfloat16
    np.testing.assert_array_equal(by_torch.view(torch.int16).numpy(), values.view(np.int16))
    by_numpy = safetensors_numpy.load_file(str(ours_path))["w"]
    np.testing.assert_array_equal(by_numpy.view(np.uint16), values.view(np.uint16))

    theirs_path = tmp_path / "theirs.safetensors"
    safetensors_torch.save_file({"w": torch.tensor(values.astype(np.float32)).bfloat16()}, str(theirs_path))
    loaded = gg.load(theirs_path)["w"]
    assert loaded.dtype == gg.bfloat16
    np.testing.assert_array_equal(loaded.numpy().view(np.uint16), values.view(np.uint16))


def test_state_dict_of_a_bfloat16_model_round_trips(tmp_path):
    model = gg.nn.Linear(3, 2).bfloat16()
    buffer = io.BytesIO()
    gg.save(model.state_dict(), buffer)
    buffer.seek(0)
    copy = gg.nn.Linear(3, 2).bfloat16()
    copy.load_state_dict(gg.load(buffer))
    np.testing.assert_array_equal(copy.weight.float().numpy(), model.weight.float().numpy())


# --------------------------------------------------------------------------
# DLPack: NumPy has no bfloat16 DLPack code, so the CPU says so with a typed error.
# --------------------------------------------------------------------------
def test_dlpack_on_cpu_is_a_typed_error_naming_the_fix():
    with pytest.raises(gg.DTypeError, match="bfloat16.*t.float"):
        torch.from_dlpack(gg.ones(2, dtype=gg.bfloat16))
    with pytest.raises(gg.DTypeError, match="from_dlpack.*bfloat16"):
        gg.from_dlpack(torch.ones(2, dtype=torch.bfloat16))
    # float32 still shares memory both ways.
    shared = gg.from_dlpack(torch.ones(2))
    assert shared.dtype == gg.float32

"""What the activation table (gpugrad/kernels/table.py) generates, checked from the outside.

* every row has its public function, its fused ``linear_<name>`` op and battery
  samples; ``ops.linear(..., activation=...)`` and ``nn.Sequential`` give the
  numbers of linear then the activation (bit for bit on NumPy; on CuPy the
  bias + activation kernels, within rounding), with PyTorch as the oracle;
* sigmoid and tanh run their kernels on CuPy (the stand-in records the launches);
* dropout is an op that draws its own mask: the same numbers as the kernel with
  the same seed, the mask reused by backward, forward mode and double backward,
  PyTorch's statistics.
"""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import backend, kernels, nn
from gpugrad.kernels.table import TABLE
from gpugrad.ops import OPS
from gpugrad.ops import activation as act
from gpugrad.ops import dropout as ops_dropout

# Each fusable module, its activation and parameters, and PyTorch's module of the same name.
MODULES = [
    (nn.ReLU(), "ReLU", {}),
    (nn.LeakyReLU(0.2), "LeakyReLU", {"negative_slope": 0.2}),
    (nn.ELU(0.7), "ELU", {"alpha": 0.7}),
    (nn.GELU(), "GELU", {}),
    (nn.GELU(approximate="tanh"), "GELU", {"approximate": "tanh"}),
    (nn.SiLU(), "SiLU", {}),
    (nn.Sigmoid(), "Sigmoid", {}),
    (nn.Tanh(), "Tanh", {}),
    (nn.Softplus(2.0, 3.0), "Softplus", {"beta": 2.0, "threshold": 3.0}),
    (nn.Mish(), "Mish", {}),
]
MODULE_IDS = [f"{name}{''.join(f'-{v}' for v in params.values())}" for _, name, params in MODULES]


def _standin_launches():
    import cupy_standin  # only where the stand-in is installed
    return cupy_standin.launches


def test_every_row_has_its_function_fused_op_and_samples():
    for row in TABLE:
        fused = OPS[f"linear_{row.name}"]
        assert fused.samples and fused.reference is not None
        assert callable(getattr(F, row.public_name)) and callable(getattr(gg.Tensor, row.public_name))
        if row.public_name in OPS:
            assert len(OPS[row.public_name].samples) >= len(row.samples)
    names = [sample.params["name"] for sample in OPS["activation_grad"].samples]
    assert names == [row.name for row in TABLE]


@pytest.mark.parametrize("module,torch_name,params", MODULES, ids=MODULE_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_sequential_fuses_linear_and_activation_like_the_unfused_modules(module, torch_name, params, dtype, device):
    gg.manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 5), module, nn.Linear(5, 4)).to(device).to(getattr(gg, dtype))
    x = gg.randn(7, 6, device=device).to(getattr(gg, dtype)).requires_grad_()
    fused = net(x)
    inner = fused.grad_fn.next_edges[0][0]
    assert inner.name.startswith("linear_") and inner.name != "linear"
    grad = gg.randn(*fused.shape, device=device).to(fused.dtype)
    if device == "cuda":
        launched = len(_standin_launches())
    fused.backward(grad)
    if device == "cuda":
        kernel = inner.name[len("linear_"):]
        ran = {name for name, _, _ in _standin_launches()[launched:]}
        assert ran & {f"gg_{kernel}_backward", f"gg_{kernel}_bias_backward"}, ran
    fused_grads = [p.grad.numpy().copy() for p in net.parameters()] + [x.grad.numpy().copy()]
    net.zero_grad()
    x.grad = None
    plain = x
    for layer in net:
        plain = layer(plain)
    assert plain.grad_fn.next_edges[0][0].next_edges[0][0].name == "linear"
    plain.backward(grad)
    plain_grads = [p.grad.numpy() for p in net.parameters()] + [x.grad.numpy()]
    if device == "cpu":          # NumPy: the same functions in the same order
        np.testing.assert_array_equal(fused.detach().numpy(), plain.detach().numpy())
        for a, b in zip(fused_grads, plain_grads):
            np.testing.assert_array_equal(a, b)
    else:                        # CuPy: the bias-add happens inside the kernel, in the compute precision
        rtol = {"float16": 2e-2, "float32": 1e-5, "float64": 1e-12}[dtype]
        np.testing.assert_allclose(fused.detach().numpy().astype(float), plain.detach().numpy().astype(float),
                                   rtol=rtol, atol=rtol)
        for a, b in zip(fused_grads, plain_grads):
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=rtol, atol=rtol * 10)


def test_fused_linear_on_cuda_runs_the_bias_activation_kernel(device):
    if device != "cuda":
        pytest.skip("the kernels run on CuPy")
    x = gg.randn(4, 3, device=device, requires_grad=True)
    w, b = gg.randn(5, 3, device=device), gg.randn(5, device=device)
    launched = len(_standin_launches())
    act.linear(x, w, b, activation="gelu")
    act.linear(x, w, b, activation="relu")
    ran = [name for name, _, _ in _standin_launches()[launched:]]
    assert ran == ["gg_gelu_bias_forward", "gg_relu_bias_forward_mask"]


@pytest.mark.parametrize("module,torch_name,params", MODULES, ids=MODULE_IDS)
def test_fused_linear_matches_pytorch(module, torch_name, params, device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    g = rng.standard_normal((6, 3))
    layer = nn.Linear(4, 3).to(device).double()
    with gg.no_grad():
        layer.weight.copy_(gg.tensor(w, device=device))
        layer.bias.copy_(gg.tensor(b, device=device))
    net = nn.Sequential(layer, module)
    xs = gg.tensor(x, device=device, requires_grad=True)
    y = net(xs)
    assert y.grad_fn.name.startswith("linear_")
    y.backward(gg.tensor(g, device=device))
    torch_layer = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        torch_layer.weight.copy_(torch.tensor(w))
        torch_layer.bias.copy_(torch.tensor(b))
    torch_x = torch.tensor(x, requires_grad=True)
    expected = getattr(torch.nn, torch_name)(*params.values())(torch_layer(torch_x))
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(y.detach().numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for got, want in [(xs.grad, torch_x.grad), (layer.weight.grad, torch_layer.weight.grad),
                      (layer.bias.grad, torch_layer.bias.grad)]:
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)


def test_fused_linear_second_derivatives_match_the_unfused_composition():
    rng = np.random.default_rng(6)
    x = gg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w, b = gg.tensor(rng.standard_normal((2, 4)), requires_grad=True), gg.tensor(rng.standard_normal(2))
    for activation, params in [("gelu", {}), ("leaky_relu", {"negative_slope": 0.3}), ("sigmoid", {}), ("mish", {})]:
        fused = act.linear(x, w, b, activation=activation, **params)
        plain = getattr(F, activation)(F.linear(x, w, b), **params)
        first = gg.grad((fused * fused).sum(), (x, w), create_graph=True)
        expected_first = gg.grad((plain * plain).sum(), (x, w), create_graph=True)
        second = gg.grad(sum((g * g).sum() for g in first), (x, w))
        expected_second = gg.grad(sum((g * g).sum() for g in expected_first), (x, w))
        for got, want in zip(first + second, expected_first + expected_second):
            np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_linear_rejects_unknown_activations_and_parameters():
    x, w, b = gg.ones(2, 3), gg.ones(4, 3), gg.zeros(4)
    with pytest.raises(ValueError, match="activation='swish' is not supported"):
        act.linear(x, w, b, activation="swish")
    with pytest.raises(TypeError, match="unexpected parameter.*alpha.*'relu'"):
        act.linear(x, w, b, activation="relu", alpha=1.0)
    with pytest.raises(ValueError, match="approximate='fast' is not supported"):
        act.linear(x, w, b, activation="gelu", approximate="fast")
    with pytest.raises(gg.ShapeError, match="does not fit weight"):
        act.linear(gg.ones(2, 2), w, b, activation="relu")
    # Without a bias: linear, then the activation.
    np.testing.assert_array_equal(act.linear(x, w, activation="relu").numpy(), np.full((2, 4), 3.0, np.float32))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_sigmoid_and_tanh_run_their_kernels_on_cuda(name, device):
    if device != "cuda":
        pytest.skip("the kernels run on CuPy")
    x = gg.randn(5, 7, device=device, requires_grad=True)
    launched = len(_standin_launches())
    y = getattr(gg, name)(x)
    y.backward(gg.ones(5, 7, device=device))
    ran = [kernel for kernel, _, _ in _standin_launches()[launched:]]
    assert f"gg_{name}_forward" in ran and f"gg_{name}_backward" in ran
    data = x.detach().numpy()
    expected = kernels.activation_forward(name, data)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), kernels.activation_backward(name, np.ones_like(data), expected),
                               rtol=1e-6)
    # float16 computes in float32 and rounds once, as the twin does.
    half = gg.randn(64, device=device).half()
    np.testing.assert_array_equal(getattr(gg, name)(half).numpy(),
                                  kernels.activation_forward(name, half.numpy()))


# --------------------------------------------------------------------------
# dropout
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_dropout_draws_what_the_kernel_draws_with_the_same_seed(dtype, device):
    x = gg.randn(37, 11, device=device).to(getattr(gg, dtype)).requires_grad_()
    gg.manual_seed(12)
    y = F.dropout(x, 0.3)
    gg.manual_seed(12)
    expected, mask = kernels.dropout_forward(x.array, 0.3, backend.generator(x.device))
    np.testing.assert_array_equal(y.detach().numpy(), backend.to_device(expected, gg.Device("cpu")))
    node = y.grad_fn
    assert node.name == "dropout" and set(node.params) == {"p", "mask"}
    assert not any(hasattr(saved, "__array__") or isinstance(saved, gg.Tensor) for saved in node.saved_raw)
    gg.manual_seed(12)
    module_y = nn.Dropout(0.3)(x)
    np.testing.assert_array_equal(module_y.detach().numpy(), y.detach().numpy())
    g = gg.randn(37, 11, device=device).to(x.dtype)
    y.backward(g)
    kept = kernels.unpack_mask(backend.to_device(mask, gg.Device("cpu")), (37, 11))
    expected_grad = np.where(kept, g.numpy().astype(np.float64) / 0.7, 0.0)
    np.testing.assert_allclose(x.grad.numpy().astype(np.float64), expected_grad,
                               rtol=1e-3 if dtype == "float16" else 1e-6)


def test_dropout_mask_is_reused_by_forward_mode_and_double_backward(device):
    x = gg.randn(50, device=device, dtype=gg.float64, requires_grad=True)
    y = F.dropout(x, 0.5)
    kept = y.detach().numpy() != 0
    (grad,) = gg.grad((y * y).sum(), x, create_graph=True)
    np.testing.assert_allclose(grad.detach().numpy(), np.where(kept, 2 * x.detach().numpy() * 4, 0.0))
    (second,) = gg.grad(grad.sum(), x)
    np.testing.assert_allclose(second.numpy(), np.where(kept, 8.0, 0.0))
    # Forward mode: the tangent is masked like the input.
    primal, tangent = gg.jvp(lambda value: F.dropout(value, 0.5), (x.detach(),),
                             (gg.ones(50, device=device, dtype=gg.float64),))
    np.testing.assert_allclose(tangent.numpy(), np.where(primal.numpy() != 0, 2.0, 0.0))


def test_dropout_statistics_match_pytorch(device):
    torch = pytest.importorskip("torch")
    for p in (0.1, 0.5, 0.8):
        x = gg.ones(200_000, device=device)
        y = F.dropout(x, p).numpy()
        expected = torch.nn.functional.dropout(torch.ones(200_000), p).numpy()
        assert abs((y != 0).mean() - (expected != 0).mean()) < 0.01
        assert set(np.unique(y)) == set(np.unique(expected))     # 0 and 1 / (1 - p), in float32
    x = gg.randn(10, device=device)
    assert F.dropout(x, 0.5, training=False) is x and nn.Dropout(0.0)(x) is x
    assert not F.dropout(x, 1.0).numpy().any()
    with pytest.raises(ValueError, match=r"probability p=1.5 must be in \[0, 1\]"):
        F.dropout(x, 1.5)
    with pytest.raises(TypeError, match="dropout: input must be a gg.Tensor"):
        ops_dropout.dropout(np.ones(3), 0.5)

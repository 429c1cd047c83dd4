"""Tensors, dtypes, devices and the backend (creation, transfer, GPU detection)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import backend

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_python_data_gets_pytorch_default_dtypes(device):
    assert gg.tensor([1.0, 2.0], device=device).dtype == gg.float32
    assert gg.tensor([1, 2], device=device).dtype == gg.int64
    assert gg.tensor([True], device=device).dtype == gg.bool
    assert gg.tensor(np.zeros(2), device=device).dtype == gg.float64   # NumPy keeps its dtype


def test_python_scalars_never_upcast_float32(device):
    x = gg.ones(3, device=device)
    for result in (x * 2.5, 2.5 * x, x + 1, x / 3, x ** 2, 1 - x, x * np.float64(2)):
        assert result.dtype == gg.float32
    assert (gg.ones(2, dtype=gg.float16, device=device) + 1.5).dtype == gg.float16
    assert (gg.ones(2, dtype=gg.int64, device=device) * 2.5).dtype == gg.float32
    assert (gg.ones(2, dtype=gg.int32, device=device) + gg.ones(2, device=device)).dtype == gg.float32
    mixed = gg.ones(2, dtype=gg.float32, device=device) + gg.ones(2, dtype=gg.float64, device=device)
    assert mixed.dtype == gg.float64


@pytest.mark.parametrize("maker", [gg.zeros, gg.ones, gg.empty, gg.rand, gg.randn])
def test_shapes_as_integers_or_tuple(maker, device):
    assert maker(2, 3, device=device).shape == (2, 3)
    assert maker((2, 3), device=device).shape == (2, 3)
    assert maker(2, 3, dtype=gg.float64, device=device).dtype == gg.float64
    assert maker(2, device=device, requires_grad=True).requires_grad


def test_shape_methods_take_integers_or_tuple(device):
    x = gg.arange(24, device=device).reshape(2, 3, 4)
    assert x.reshape((6, 4)).shape == x.reshape(6, 4).shape == (6, 4)
    assert x.view(-1).shape == (24,)
    assert x.permute(2, 0, 1).shape == x.permute((2, 0, 1)).shape == (4, 2, 3)
    assert x[:, :1].expand(2, 5, 4).shape == x[:, :1].expand((2, 5, 4)).shape == (2, 5, 4)
    assert x.repeat(1, 2, 1).shape == x.repeat((1, 2, 1)).shape == (2, 6, 4)
    assert x.flatten(1).shape == (2, 12)
    assert x.T.shape == (4, 3, 2)


def test_ranges_and_fills(device):
    assert gg.arange(5, device=device).tolist() == [0, 1, 2, 3, 4]
    assert gg.arange(0, 1, 0.25, device=device).dtype == gg.float32
    np.testing.assert_allclose(gg.linspace(0, 1, 5, device=device).numpy(), np.linspace(0, 1, 5))
    assert gg.eye(3, device=device).sum().item() == 3
    assert gg.full((2, 2), 7, device=device).dtype == gg.int64
    assert gg.full((2,), 0.5, device=device).tolist() == [0.5, 0.5]
    x = gg.ones(2, 3, dtype=gg.float64, device=device)
    for like in (gg.zeros_like, gg.ones_like, gg.empty_like, gg.rand_like, gg.randn_like):
        out = like(x)
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device


def test_manual_seed_reproduces_every_random_op(device):
    def draw():
        return [gg.rand(3, device=device).tolist(), gg.randn(2, device=device).tolist(),
                gg.randint(0, 10, (4,), device=device).tolist(), gg.randperm(5, device=device).tolist()]
    gg.manual_seed(123)
    first = draw()
    gg.manual_seed(123)
    assert draw() == first
    gg.manual_seed(124)
    assert draw() != first


def test_tensor_copies_but_from_numpy_shares():
    array = np.ones(3)
    copied, shared = gg.tensor(array), gg.from_numpy(array)
    array[0] = 5
    assert copied.tolist()[0] == 1 and shared.tolist()[0] == 5


def test_numpy_interop_and_dlpack():
    x = gg.arange(6).reshape(2, 3).float()
    assert np.asarray(x).shape == (2, 3)
    assert isinstance(x.numpy(), np.ndarray)
    back = gg.from_dlpack(np.arange(4.0))
    assert back.tolist() == [0.0, 1.0, 2.0, 3.0]
    again = gg.from_dlpack(x)
    assert again.shape == (2, 3)


def test_item_tolist_len_repr(device):
    x = gg.tensor([[1.0, 2.0]], device=device, requires_grad=True)
    assert len(x) == 1 and x.numel() == 2 and x.ndim == 2
    assert gg.tensor(2.5, device=device).item() == 2.5
    text = repr(x * 2)
    assert "grad_fn=<mul>" in text and "2." in text
    assert "requires_grad=True" in repr(x)
    assert "float64" in repr(gg.ones(1, dtype=gg.float64, device=device))
    with pytest.raises(gg.ShapeError, match="only one-element tensors"):
        x.item()


def test_dtype_conversions(device):
    x = gg.tensor([1.7, -2.2], device=device)
    assert x.double().dtype == gg.float64 and x.half().dtype == gg.float16
    assert x.long().tolist() == [1, -2] and x.int().dtype == gg.int32
    assert x.to(gg.float64).dtype == gg.float64 and x.to("float64").dtype == gg.float64
    assert x.to(x) is x


def test_dtype_conversion_is_differentiable(device):
    x = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype == gg.float32 and x.grad.tolist() == [3.0, 3.0]


def test_device_objects():
    assert str(gg.Device("cpu")) == "cpu" and str(gg.Device("cuda:1")) == "cuda:1"
    assert gg.Device("cuda") == gg.Device("cuda:0") and gg.Device("cpu") == "cpu"
    assert gg.ones(1, device="cpu").device == gg.Device("cpu")
    with pytest.raises(gg.DeviceError, match="unknown device"):
        gg.Device("tpu")


def test_cuda_transfer_round_trip(device):
    if device != "cuda":
        pytest.skip("needs a GPU")
    x = gg.arange(4.0, requires_grad=True)
    y = x.cuda()
    assert str(y.device) == "cuda:0" and y.cpu().tolist() == x.tolist()
    (y * 2).sum().backward()
    assert x.grad.device == gg.Device("cpu") and x.grad.tolist() == [2.0] * 4


def test_mixed_devices_raise_device_error():
    if not gg.cuda.is_available():
        pytest.skip("needs a GPU")
    with pytest.raises(gg.DeviceError, match="one device"):
        gg.ones(2) + gg.ones(2, device="cuda")


def test_cuda_requested_without_gpu_is_a_clear_error():
    if gg.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(gg.DeviceError, match="CUDA is not available"):
        gg.ones(2, device="cuda")
    assert gg.cuda.device_count() == 0
    assert gg.cuda.memory_stats()["used_bytes"] == 0


def _run_isolated(code, env_extra=None, fake_cupy=None, tmp_path=None):
    env = dict(os.environ)
    env.pop("GPUGRAD_DEVICE", None)
    env.update(env_extra or {})
    path = [REPO]
    if fake_cupy is not None:
        package = tmp_path / "cupy"
        package.mkdir()
        (package / "__init__.py").write_text(textwrap.dedent(fake_cupy))
        path.insert(0, str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(path)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120)


_USE_CPU = """
    import gpugrad as gg
    x = gg.ones(3, requires_grad=True)
    (x * 2).sum().backward()
    print(gg.cuda.is_available(), gg.get_default_device(), x.grad.tolist())
"""


@pytest.mark.parametrize("fake_cupy", [
    # CuPy installed, no driver: it imports, then fails on first use.
    """
    class _Runtime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("CUDARuntimeError: cudaErrorNoDevice: no CUDA-capable device is detected")
    class cuda:
        runtime = _Runtime
    """,
    # CuPy whose import itself fails (e.g. missing libcuda).
    "raise ImportError('libcuda.so.1: cannot open shared object file')\n",
    # A driver that reports no GPU.
    """
    class _Runtime:
        @staticmethod
        def getDeviceCount():
            return 0
    class cuda:
        runtime = _Runtime
    """,
])
def test_broken_or_absent_cuda_means_cpu(fake_cupy, tmp_path):
    result = _run_isolated(_USE_CPU, {"GPUGRAD_DEVICE": "cuda"}, fake_cupy, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "cpu", "[2.0,", "2.0,", "2.0]"]


def test_environment_variable_picks_cpu(tmp_path):
    result = _run_isolated("import gpugrad as gg; print(gg.get_default_device(), gg.ones(1).device)",
                           {"GPUGRAD_DEVICE": "cpu"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cpu", "cpu"]


def test_set_default_device_and_dtype():
    previous = gg.get_default_device()
    try:
        gg.set_default_device("cpu")
        assert gg.zeros(1).device == gg.Device("cpu")
    finally:
        gg.set_default_device(previous)
    try:
        gg.set_default_dtype(gg.float64)
        assert gg.tensor([1.0]).dtype == gg.float64 and gg.zeros(1).dtype == gg.float64
    finally:
        gg.set_default_dtype(gg.float32)
    with pytest.raises(gg.DTypeError):
        gg.set_default_dtype(gg.int32)


def test_backend_helpers():
    array = np.zeros(2)
    assert backend.xp_of(array) is np and backend.device_of(array) == gg.Device("cpu")
    assert backend.to_device(array, gg.Device("cpu")) is array


def test_public_functions_take_array_likes_and_return_tensors():
    for result in (gg.exp([0.0, 1.0]), gg.exp(np.zeros(2)), gg.add([1.0], 2.0), gg.maximum([1.0], [2.0]),
                   gg.pow([2.0], 3), gg.abs([-1.0])):
        assert isinstance(result, gg.Tensor)
    assert gg.pow([2.0], 3).tolist() == [8.0]


def test_op_methods_take_parameters_by_keyword(device):
    x = gg.tensor([0.5, -0.5], device=device)
    with pytest.raises(TypeError, match="by keyword"):
        x.tanh(1)
    assert x.tanh().shape == (2,)


def test_data_shares_memory_outside_the_graph_without_version_checks(device):
    """``t.data`` as in PyTorch: same memory, no graph, in-place changes not version-checked."""
    w = gg.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = (w * w).sum()                      # saves w
    d = w.data
    assert d.requires_grad is False and d.grad_fn is None and d.is_leaf
    d.mul_(2)                              # through .data: the graph does not notice ...
    assert w.tolist() == [2.0, 4.0, 6.0]   # ... but the memory is shared
    y.backward()                           # PyTorch: no error, gradient from the changed values
    assert w.grad.tolist() == [4.0, 8.0, 12.0]
    assert w.data.norm().item() == pytest.approx(float(np.sqrt(4 + 16 + 36)))


def test_data_matches_pytorch():
    torch = pytest.importorskip("torch")
    w_t = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w_g = gg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for w in (w_t, w_g):
        y = (w * w).sum()
        w.data.add_(w.data, alpha=-0.5) if w is w_t else w.data.add_(w.data * -0.5)
        y.backward()
    np.testing.assert_allclose(w_g.grad.numpy(), w_t.grad.numpy())
    np.testing.assert_allclose(w_g.numpy(), w_t.detach().numpy())


def test_data_assignment_swaps_memory_and_refuses_raw_arrays():
    w = gg.zeros(2, requires_grad=True)
    w.data = gg.ones(3)
    assert w.tolist() == [1.0, 1.0, 1.0] and w.requires_grad and w.is_leaf
    with pytest.raises(TypeError, match="t.array"):
        w.data = np.ones(3)

"""TF32 switches: PyTorch's names and defaults, mapped to CuPy's float32 compute type."""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import backends

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _restore_switches():
    matmul, conv = backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32
    yield
    backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32 = matmul, conv
    backends._matmul_precision[0] = "highest"


def test_defaults_are_pytorchs():
    assert backends.cuda.matmul.allow_tf32 is torch.backends.cuda.matmul.allow_tf32 is False
    assert backends.cudnn.allow_tf32 is torch.backends.cudnn.allow_tf32 is True
    assert gg.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == "highest"


@pytest.mark.parametrize("calls", [
    [("allow_tf32", True)], [("allow_tf32", True), ("allow_tf32", False)], [("precision", "high")],
    [("precision", "high"), ("precision", "highest")], [("precision", "medium")]])
def test_switches_read_back_as_pytorchs(calls):
    saved = torch.backends.cuda.matmul.allow_tf32
    try:
        for kind, value in calls:
            if kind == "allow_tf32":
                torch.backends.cuda.matmul.allow_tf32 = gg.backends.cuda.matmul.allow_tf32 = value
            else:
                torch.set_float32_matmul_precision(value)
                gg.set_float32_matmul_precision(value)
        theirs = torch.backends.cuda.matmul
        ours = gg.backends.cuda.matmul
        assert (ours.allow_tf32, ours.fp32_precision) == (theirs.allow_tf32, theirs.fp32_precision)
        assert gg.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
    finally:
        torch.set_float32_matmul_precision("highest")
        torch.backends.cuda.matmul.allow_tf32 = saved


def test_bad_values_are_errors():
    with pytest.raises(ValueError, match="'fast'"):
        gg.set_float32_matmul_precision("fast")
    with pytest.raises(ValueError, match="fp32_precision"):
        gg.backends.cuda.matmul.fp32_precision = "bf16x3"


def test_numpy_results_do_not_change():
    a, b = gg.randn(16, 16), gg.randn(16, 16)
    image, kernel = gg.randn(1, 2, 6, 6), gg.randn(3, 2, 3, 3)
    gg.backends.cuda.matmul.allow_tf32 = False
    plain = (a @ b).numpy(), F.conv2d(image, kernel).numpy()
    gg.backends.cuda.matmul.allow_tf32 = True
    gg.backends.cudnn.allow_tf32 = False
    np.testing.assert_array_equal((a @ b).numpy(), plain[0])
    np.testing.assert_array_equal(F.conv2d(image, kernel).numpy(), plain[1])


def test_cupy_compute_type_follows_the_switches(device):
    if device != "cuda":
        pytest.skip("the compute type is CuPy's")
    linalg = gg.backend.cupy_module()._core._routines_linalg
    gg.backends.cuda.matmul.allow_tf32 = True
    assert linalg.get_compute_type(np.float32) == backends.COMPUTE_TYPE_TF32
    gg.backends.cuda.matmul.fp32_precision = "ieee"
    assert linalg.get_compute_type(np.float32) == backends.COMPUTE_TYPE_DEFAULT

    # Convolutions use cudnn.allow_tf32 (True by default) for their GEMMs, then restore matmul's.
    seen = []
    original = linalg.set_compute_type
    linalg.set_compute_type = lambda dtype, kind: (seen.append(kind), original(dtype, kind))
    try:
        image = gg.randn(1, 2, 6, 6, device="cuda", requires_grad=True)
        kernel = gg.randn(3, 2, 3, 3, device="cuda", requires_grad=True)
        F.conv2d(image, kernel).sum().backward()
        assert seen[:2] == [backends.COMPUTE_TYPE_TF32, backends.COMPUTE_TYPE_DEFAULT] and len(seen) == 6
        seen.clear()
        gg.backends.cudnn.allow_tf32 = False       # both off: nothing to switch
        F.conv2d(image, kernel)
        assert seen == []
    finally:
        linalg.set_compute_type = original
    assert linalg.get_compute_type(np.float32) == backends.COMPUTE_TYPE_DEFAULT

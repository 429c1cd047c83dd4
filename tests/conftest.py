"""Shared fixtures: every array test runs once per device.

``device`` is parametrised over ``cpu`` and ``cuda``; the CUDA run is skipped
cleanly where CuPy or a GPU is missing, so the same suite runs everywhere.

Environment (see tests/README.md):

* ``GPUGRAD_TEST_DEVICES=cuda`` (or ``cpu``, or ``cpu,cuda``, the default)
  selects which halves of the ``device``-parametrised tests run.
  ``GPUGRAD_DEVICE`` no longer selects tests: it is the library's default
  device, and tests pin the default device to the CPU (below).
* ``GPUGRAD_TEST_CUPY=standin`` installs the strict CuPy stand-in
  (``tests/cupy_standin.py``) as ``cupy`` before gpugrad is imported, so the
  CUDA half runs on the CPU.  ``GPUGRAD_TEST_CUPY=real`` (or unset) uses the
  real CuPy where there is one.

Every test starts with the default device set to the CPU, whatever the
machine has or ``GPUGRAD_DEVICE`` says: a test that wants CUDA asks for it
through the ``device`` fixture (or sets the default itself, and is put back
afterwards).
"""
import os

import numpy as np
import pytest

_CUPY_CHOICE = os.environ.get("GPUGRAD_TEST_CUPY", "").strip().lower()
if _CUPY_CHOICE == "standin":
    import cupy_standin  # noqa: E402 - must replace cupy before gpugrad looks for it

    cupy_standin.install()
elif _CUPY_CHOICE not in ("", "real"):
    raise pytest.UsageError(f"GPUGRAD_TEST_CUPY={_CUPY_CHOICE!r}: use 'standin' or 'real'")

from gpugrad import backend  # noqa: E402 - after the stand-in, on purpose

DEVICES = ["cpu", "cuda"]
_SELECTED = {part.strip() for part in os.environ.get("GPUGRAD_TEST_DEVICES", "cpu,cuda").lower().split(",")
             if part.strip()}
if not _SELECTED <= set(DEVICES):
    raise pytest.UsageError(f"GPUGRAD_TEST_DEVICES={os.environ['GPUGRAD_TEST_DEVICES']!r}: "
                            "use cpu, cuda or cpu,cuda")

STANDIN = _CUPY_CHOICE == "standin"

# --doctest-modules imports every .py under tests/. The PyTorch programs are scripts
# (test_pytorch_programs.py runs them in subprocesses): imported here they would train
# at collection time, and poly_02_autograd.py's torch.set_default_device() would leave
# a DeviceContext mode active in the worker, under which PyTorch 2.13's F.l1_loss drops
# its weight= argument (its handle_torch_function call does not pass it on), so the
# torch oracle itself answered wrongly in later tests of the same worker.
collect_ignore = ["pytorch_programs"]

# Doctests and import-time code run outside any fixture: pin the process default too.
backend.set_default_device("cpu")


def _skip_unavailable(name):
    if name not in _SELECTED:
        pytest.skip(f"GPUGRAD_TEST_DEVICES={','.join(sorted(_SELECTED))} does not select {name}")
    if name == "cuda" and not backend.cuda_is_available():
        pytest.skip("CUDA not available (no CuPy or no GPU)")


@pytest.fixture(autouse=True)
def _default_device_is_cpu():
    """Tests that do not ask for a device run on the CPU, on every machine."""
    previous = backend._default_device
    backend.set_default_device("cpu")
    yield
    backend._default_device = previous


@pytest.fixture(params=DEVICES)
def device(request):
    """The device name ('cpu' or 'cuda') a test runs on."""
    _skip_unavailable(request.param)
    return request.param


@pytest.fixture
def real_gpu():
    """Skip where 'cuda' is the CuPy stand-in: for tests of real device behaviour."""
    if STANDIN:
        pytest.skip("needs a real GPU: the CuPy stand-in cannot emulate this (see tests/README.md)")


@pytest.fixture
def rng():
    return np.random.default_rng(0)

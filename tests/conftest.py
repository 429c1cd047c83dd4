"""Shared fixtures: every array test runs once per device.

``device`` is parametrised over ``cpu`` and ``cuda``; the CUDA run is skipped
cleanly where CuPy or a GPU is missing, so the same suite runs everywhere.
Set ``GPUGRAD_DEVICE=cuda`` on a GPU machine to run only the CUDA half.
"""
import os

import numpy as np
import pytest

from gpugrad import backend

_ONLY = os.environ.get("GPUGRAD_DEVICE", "").strip().lower()
DEVICES = ["cpu", "cuda"]


def _skip_unavailable(name):
    if name == "cuda" and not backend.cuda_is_available():
        pytest.skip("CUDA not available (no CuPy or no GPU)")
    if _ONLY in ("cpu", "cuda") and name != _ONLY and os.environ.get("GPUGRAD_BOTH_DEVICES") != "1":
        pytest.skip(f"GPUGRAD_DEVICE={_ONLY} selects only that device")


@pytest.fixture(params=DEVICES)
def device(request):
    """The device name ('cpu' or 'cuda') a test runs on."""
    _skip_unavailable(request.param)
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)

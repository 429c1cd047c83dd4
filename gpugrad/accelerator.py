"""``gg.accelerator``: PyTorch's device-agnostic queries (``torch.accelerator``).

gpugrad's only accelerator is CUDA (through CuPy).

Examples
--------
>>> import gpugrad as gg
>>> device = gg.accelerator.current_accelerator() if gg.accelerator.is_available() else gg.device("cpu")
>>> device.type in ("cpu", "cuda")
True
"""

from . import backend

__all__ = ["is_available", "current_accelerator", "device_count", "synchronize"]


def is_available():
    """True when a CUDA GPU is usable."""
    return backend.cuda_is_available()


def current_accelerator(check_available=False):
    """``gg.device("cuda")`` when a GPU is usable, else None (PyTorch's answer without an accelerator).

    ``check_available`` is accepted for PyTorch's signature: the device is returned only when usable.
    """
    return backend.Device("cuda", 0) if backend.cuda_is_available() else None


def device_count():
    """Number of usable accelerators (CUDA devices)."""
    return backend.cuda_device_count()


def synchronize(device=None):
    """Wait for the accelerator's queued work (no-op without one)."""
    backend.cuda_synchronize()

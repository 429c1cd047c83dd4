"""CUDA queries in PyTorch's spelling: ``gg.cuda.is_available()``, ``device_count()``,
``synchronize()``, and the CuPy memory pool's statistics."""

from . import backend


def is_available() -> bool:
    """True when CuPy imports and a usable NVIDIA GPU is present."""
    return backend.cuda_is_available()


def device_count() -> int:
    """Number of usable CUDA devices (0 without CuPy or a GPU)."""
    return backend.cuda_device_count()


def synchronize() -> None:
    """Wait for all queued GPU work (no-op on the CPU)."""
    backend.cuda_synchronize()


def memory_stats() -> dict:
    """Bytes used and held by CuPy's memory pool on the current device.

    Returns ``{"used_bytes": 0, "total_bytes": 0, "free_device_bytes": 0,
    "total_device_bytes": 0}`` when there is no GPU, so code can log it anywhere.
    """
    cupy = backend.cupy_module()
    if cupy is None:
        return {"used_bytes": 0, "total_bytes": 0, "free_device_bytes": 0, "total_device_bytes": 0}
    pool = cupy.get_default_memory_pool()
    free, total = cupy.cuda.runtime.memGetInfo()
    return {"used_bytes": int(pool.used_bytes()), "total_bytes": int(pool.total_bytes()),
            "free_device_bytes": int(free), "total_device_bytes": int(total)}


def memory_allocated() -> int:
    """Bytes of device memory held by live arrays (CuPy pool ``used_bytes``)."""
    return memory_stats()["used_bytes"]


def empty_cache() -> None:
    """Return cached, unused blocks of CuPy's memory pools to the driver."""
    cupy = backend.cupy_module()
    if cupy is not None:
        cupy.get_default_memory_pool().free_all_blocks()
        cupy.get_default_pinned_memory_pool().free_all_blocks()

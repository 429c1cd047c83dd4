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


# --------------------------------------------------------------------------
# PyTorch's seeding and naming spellings.
# --------------------------------------------------------------------------
def manual_seed(seed) -> None:
    """Reseed the random stream of the current GPU, leaving the CPU stream alone.

    As in PyTorch, silently does nothing without a GPU (so scripts may call it anywhere).
    """
    _reseed_cuda(seed, [0])


def manual_seed_all(seed) -> None:
    """Reseed the random streams of every GPU (nothing without one)."""
    _reseed_cuda(seed, range(device_count()))


def _reseed_cuda(seed, indices):
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"cuda.manual_seed: seed must be an integer, got {type(seed).__name__}")
    if not is_available():
        return
    cupy = backend.cupy_module()
    for index in indices:
        device = backend.Device("cuda", index)
        with cupy.cuda.Device(index):
            # The same per-device offset backend.generator uses after gg.manual_seed.
            backend._generators[device] = cupy.random.default_rng(int(seed) + 7919 * index)


def current_device() -> int:
    """Index of the current CUDA device (0; gpugrad does not switch devices)."""
    return 0


def get_device_name(device=None) -> str:
    """The GPU's name, e.g. ``'NVIDIA H100 80GB HBM3'``.

    Raises
    ------
    gg.DeviceError
        Without a usable GPU, or for an index past ``device_count()``.
    """
    from .errors import DeviceError
    if device is None:
        index = 0
    elif isinstance(device, int):
        index = device
    else:
        index = backend.as_device(device).index or 0
    if not is_available():
        raise DeviceError("cuda.get_device_name: no usable CUDA GPU here (install CuPy and an NVIDIA driver, or "
                          "guard the call with gg.cuda.is_available())")
    if not 0 <= index < device_count():
        raise DeviceError(f"cuda.get_device_name: device {index} does not exist ({device_count()} device(s))")
    name = backend.cupy_module().cuda.runtime.getDeviceProperties(index)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def is_bf16_supported() -> bool:
    """True where CUDA is usable: bfloat16 runs on every GPU (in float32 where CuPy has no bfloat16 path)."""
    return is_available()

"""CUDA queries in PyTorch's spelling: ``gg.cuda.is_available()``, ``device_count()``,
``synchronize()``, the CuPy memory pool's statistics, pinned memory and
asynchronous host-to-device copies, deterministic mode's switch (re-exported)
and CUDA graphs (:mod:`gpugrad.cuda_graphs`)."""

import collections
import threading

import numpy as np

from . import backend
from .determinism import are_deterministic_algorithms_enabled, use_deterministic_algorithms  # noqa: F401

_GRAPH_NAMES = ("CUDAGraph", "capture_check", "graph", "graph_pool_handle", "make_graphed_callables")


def __getattr__(name):
    """CUDA graphs' names (``gg.cuda.graph``, ...) come from :mod:`gpugrad.cuda_graphs` on first use:
    that module works with ops, a layer above this one, which ``Tensor.to`` imports."""
    if name in _GRAPH_NAMES:
        from . import cuda_graphs
        return getattr(cuda_graphs, name)
    raise AttributeError(f"module 'gpugrad.cuda' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_GRAPH_NAMES))


_capture = threading.local()
"""``_capture.stepped``: one list per CUDA graph capture this thread has open (pushed by
``gg.cuda.CUDAGraph.capture_begin``, popped by ``capture_end``), holding the optimizers
that stepped inside it; stream capture is per thread."""


def is_current_stream_capturing() -> bool:
    """Whether this thread is inside a CUDA graph capture (PyTorch's name).

    Code whose host-side values a capture would freeze (an optimizer's step
    count, for instance) asks this to refuse instead of replaying stale numbers.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.cuda.is_current_stream_capturing()
    False
    """
    return bool(getattr(_capture, "stepped", None))


def _note_capture(change: int):
    """Open (+1) or close (-1) a capture in this thread (for CUDAGraph); closing returns
    the optimizers that stepped inside it."""
    stack = _capture.__dict__.setdefault("stepped", [])
    if change > 0:
        stack.append([])
        return None
    return stack.pop()


def _note_captured_step(optimizer) -> None:
    """Record that ``optimizer`` stepped inside this thread's innermost capture: the graph
    checks before each replay that the settings and memory it baked in are unchanged."""
    stack = getattr(_capture, "stepped", None)
    if stack and all(seen is not optimizer for seen in stack[-1]):
        stack[-1].append(optimizer)


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


# --------------------------------------------------------------------------
# Page-locked host memory and asynchronous host-to-device copies
# (DataLoader(pin_memory=True), Tensor.to("cuda", non_blocking=True)).
# --------------------------------------------------------------------------
_side_streams = {}          # device index -> the stream host-to-device copies run on
_in_flight = collections.deque()   # (event, pinned source): kept alive until the copy is done


def pin_array(array):
    """A copy of the NumPy ``array`` in page-locked ("pinned") host memory; ``array`` itself without CuPy.

    Only page-locked memory can be copied to a GPU asynchronously.  The copy
    has the same values, shape and dtype (C-contiguous).

    Examples
    --------
    >>> import numpy as np, gpugrad as gg
    >>> pinned = gg.cuda.pin_array(np.arange(3.0))
    >>> pinned.tolist(), gg.cuda.is_pinned(pinned) == gg.cuda.is_available()
    ([0.0, 1.0, 2.0], True)
    """
    if not is_available() or not isinstance(array, np.ndarray) or is_pinned(array):
        return array
    import cupyx  # noqa: PLC0415 - only with CuPy
    pinned = cupyx.empty_pinned(array.shape, dtype=array.dtype)
    pinned[...] = array
    return pinned


def is_pinned(array_or_tensor):
    """Whether a NumPy array (or a CPU Tensor's array) lives in CuPy's page-locked host memory.

    Examples
    --------
    >>> import numpy as np, gpugrad as gg
    >>> gg.cuda.is_pinned(np.zeros(2))
    False
    """
    array = getattr(array_or_tensor, "array", array_or_tensor)
    if not isinstance(array, np.ndarray) or not is_available():
        return False
    pointer_type = backend.cupy_module().cuda.PinnedMemoryPointer
    owner = array
    while owner is not None:
        if isinstance(owner, pointer_type):
            return True
        owner = getattr(owner, "base", None) if isinstance(owner, np.ndarray) else getattr(owner, "obj", None)
    return False


def _side_stream(cupy, index):
    stream = _side_streams.get(index)
    if stream is None:
        with cupy.cuda.Device(index):
            stream = _side_streams[index] = cupy.cuda.Stream(non_blocking=True)
    return stream


def copy_to_device_async(array, device):
    """``array`` (pinned, NumPy) copied to the CUDA ``device`` on a side stream; later work waits for it.

    The copy is queued on a side stream after everything already queued on the
    current stream (the destination may reuse memory that pending kernels
    still read), and the current stream waits on an event recorded after the
    copy, so every later kernel on it sees the data: the host never blocks.
    The pinned source is kept alive until the copy's event has completed.
    """
    cupy = backend.require_cuda(device)
    index = device.index or 0
    while _in_flight and _in_flight[0][0].done:
        _in_flight.popleft()
    source = np.ascontiguousarray(array)
    with cupy.cuda.Device(index):
        current = cupy.cuda.get_current_stream()
        destination = cupy.empty(source.shape, dtype=source.dtype)
        side = _side_stream(cupy, index)
        side.wait_event(current.record())
        destination.set(source, stream=side)
        copied = side.record()
        current.wait_event(copied)
    _in_flight.append((copied, source))
    return destination


def to_device_non_blocking(tensor, device):
    """``tensor.to(device, non_blocking=True)``: asynchronous from pinned memory, else an ordinary copy.

    Used by ``Tensor.to``; a tensor that needs gradients (the copy is then a
    recorded op) or a source that is not pinned takes the ordinary, blocking path,
    as PyTorch does for pageable memory.
    """
    if (device.type != "cuda" or tensor.requires_grad or tensor.device.type != "cpu"
            or not is_pinned(tensor.array)):
        return tensor.to(device)            # the ordinary (recorded, blocking) copy
    from .tensor import Tensor
    return Tensor(copy_to_device_async(tensor.array, device))

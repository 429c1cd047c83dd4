"""Making tensors: from data, filled, ranges, random (seeded per device)."""

from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import DTypeError, ShapeError
from ..generator import rng_for
from ..tensor import Tensor


def normalize_shape(shape, op="shape"):
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike; reject negative sizes."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    elif len(shape) == 1 and isinstance(shape[0], Tensor):
        shape = tuple(int(v) for v in shape[0].tolist())
    try:
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise ShapeError(f"{op}: sizes must be integers, got {shape!r}") from None
    if any(n < 0 for n in shape):
        raise ShapeError(f"{op}: negative size in shape {shape}; sizes must be >= 0")
    return shape


def _finish(array, requires_grad):
    result = Tensor._make(array)
    if requires_grad:
        result.requires_grad_(True)
    return result


def _float_dtype(dtype):
    dtype = backend.as_dtype(dtype)
    return backend.get_default_dtype() if dtype is None else dtype


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.tensor([[1, 2], [3, 4]]).dtype
    dtype('int64')
    >>> gg.tensor([0.5, 1.5]).dtype
    dtype('float32')
    """
    result = Tensor(data, dtype=dtype, device=device)
    source = data.array if isinstance(data, Tensor) else data
    if hasattr(source, "__array_interface__") or backend.is_gpu_array(source):
        result.array = result.array.copy()   # a new tensor never aliases the caller's array
    if requires_grad:
        result.requires_grad_(True)
    return result


def as_tensor(data, dtype=None, device=None):
    """Like :func:`tensor` but shares memory with NumPy/CuPy input when it can."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return Tensor(data, dtype=dtype, device=device)


def as_tensor_like(value, like):
    """``value`` (number, array, tensor) as a tensor with ``like``'s dtype and device."""
    if isinstance(value, Tensor):
        return value
    return Tensor(value, dtype=like.dtype, device=like.device)


def from_numpy(array):
    """A CPU tensor sharing memory with a NumPy array (no copy)."""
    if not isinstance(array, np.ndarray):
        raise DTypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor._make(array)


def from_dlpack(obj):
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, PyTorch, ...)."""
    device_type = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
    if device_type == 1:  # kDLCPU
        try:
            return Tensor._make(np.from_dlpack(obj))
        except RuntimeError as error:
            if "dtype" not in str(error).lower():
                raise
            raise DTypeError(f"from_dlpack: NumPy cannot import this tensor's dtype ({error}); NumPy's DLPack "
                             "reader has no bfloat16. Convert on the producer's side first (for PyTorch: "
                             "t.float()), then .bfloat16() here") from error
    cupy = backend.require_cuda()
    return Tensor._make(cupy.from_dlpack(obj))


def _filled(maker, shape, dtype, device, requires_grad, op):
    shape = normalize_shape(shape, op)
    device = backend.as_device(device)
    dtype = _float_dtype(dtype)
    try:
        array = maker(device.xp, shape, dtype)
    except Exception as error:  # noqa: BLE001 - only CUDA allocation failures are translated
        if backend.is_out_of_memory(error):
            size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            raise backend.out_of_memory_error(op, error, size) from error
        raise
    return _finish(array, requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros: ``gg.zeros(2, 3)`` or ``gg.zeros((2, 3))``."""
    return _filled(lambda xp, s, d: xp.zeros(s, d), shape, dtype, device, requires_grad, "zeros")


def ones(*shape, dtype=None, device=None, requires_grad=False):
    """A tensor of ones."""
    return _filled(lambda xp, s, d: xp.ones(s, d), shape, dtype, device, requires_grad, "ones")


def empty(*shape, dtype=None, device=None, requires_grad=False):
    """An uninitialised tensor (its values are whatever the memory held)."""
    return _filled(lambda xp, s, d: xp.empty(s, d), shape, dtype, device, requires_grad, "empty")


def full(shape, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor filled with ``fill_value`` (int fill gives int64, like PyTorch)."""
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = backend.bool_
        elif isinstance(fill_value, int):
            dtype = backend.int64
    shape = shape if isinstance(shape, (tuple, list)) else (shape,)
    return _filled(lambda xp, s, d: xp.full(s, fill_value, d), (tuple(shape),), dtype, device, requires_grad, "full")


def _like(t, dtype, device):
    return (t.dtype if dtype is None else backend.as_dtype(dtype)), (t.device if device is None else device)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return zeros(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return ones(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return empty(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` to ``end`` (exclusive) by ``step``; ints give int64."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = backend.int64 if is_int else backend.get_default_dtype()
    device = backend.as_device(device)
    return _finish(device.xp.arange(start, end, step, dtype=backend.as_dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if steps < 0:
        raise ShapeError(f"linspace: steps must be >= 0, got {steps}")
    device = backend.as_device(device)
    return _finish(device.xp.linspace(start, end, int(steps), dtype=_float_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The identity matrix (``n`` x ``m``)."""
    if n < 0 or (m is not None and m < 0):
        raise ShapeError(f"eye: sizes must be >= 0, got {n}, {m}")
    device = backend.as_device(device)
    return _finish(device.xp.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


# --------------------------------------------------------------------------
# random
# --------------------------------------------------------------------------
def manual_seed(seed):
    """Seed every random op on every device, for reproducible runs."""
    backend.manual_seed(seed)


def _random(kind, shape, dtype, device, requires_grad, op, generator=None):
    shape = normalize_shape(shape, op)
    device = backend.as_device(device)
    dtype = _float_dtype(dtype)
    if not backend.is_floating(dtype):
        raise DTypeError(f"{op}: needs a floating dtype, got {dtype}; use randint for integers")
    generator = rng_for(device, generator, op)
    # NOTE: generators produce float32/float64 only; float16 is drawn in float32 and rounded.
    draw_dtype = dtype if dtype in (backend.float32, backend.float64) else backend.float32
    if kind == "uniform":
        array = generator.random(shape, dtype=draw_dtype)
    else:
        array = generator.standard_normal(shape, dtype=draw_dtype)
    return _finish(array.astype(dtype, copy=False), requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform random values in [0, 1) (drawn from ``generator``, a gg.Generator, when given)."""
    return _random("uniform", shape, dtype, device, requires_grad, "rand", generator)


def randn(*shape, dtype=None, device=None, requires_grad=False, generator=None):
    """Standard normal random values (drawn from ``generator``, a gg.Generator, when given)."""
    return _random("normal", shape, dtype, device, requires_grad, "randn", generator)


def rand_like(t, dtype=None, device=None, requires_grad=False, generator=None):
    dtype, device = _like(t, dtype, device)
    return rand(t.shape, dtype=dtype, device=device, requires_grad=requires_grad, generator=generator)


def randn_like(t, dtype=None, device=None, requires_grad=False, generator=None):
    dtype, device = _like(t, dtype, device)
    return randn(t.shape, dtype=dtype, device=device, requires_grad=requires_grad, generator=generator)


def randint(low, high=None, size=None, dtype=None, device=None, generator=None, requires_grad=False):
    """Random integers in [low, high): ``gg.randint(10, (3,))`` or ``gg.randint(2, 10, (3,))``."""
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise ShapeError("randint: give a size, e.g. gg.randint(0, 10, (3,))")
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be larger than low ({low})")
    shape = normalize_shape((size,) if not isinstance(size, (tuple, list)) else (tuple(size),), "randint")
    device = backend.as_device(device)
    dtype = backend.int64 if dtype is None else backend.as_dtype(dtype)
    if requires_grad:
        raise DTypeError("randint: integer tensors cannot require gradients; drop requires_grad=True")
    array = rng_for(device, generator, "randint").integers(low, high, shape)
    return Tensor._make(array.astype(dtype, copy=False))


def randperm(n, device=None, dtype=None, generator=None, requires_grad=False):
    """A random permutation of ``0 .. n-1`` (drawn from ``generator`` when given,
    else from the device's global generator).

    Examples
    --------
    >>> import gpugrad as gg
    >>> sorted(gg.randperm(4).tolist())
    [0, 1, 2, 3]
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    device = backend.as_device(device)
    if requires_grad:
        raise DTypeError("randperm: integer tensors cannot require gradients; drop requires_grad=True")
    source = rng_for(device, generator, "randperm")
    if device.type == "cpu":
        array = source.permutation(n)
    else:
        # cupy.random.Generator has no permutation: sort random 63-bit keys
        # (as PyTorch's CUDA randperm does); a tie (odds n**2 / 2**64) keeps index order.
        keys = source.integers(0, 2 ** 63 - 1, size=n, dtype=backend.int64)
        array = backend.require_cuda(device).argsort(keys)
    return Tensor._make(array.astype(backend.int64 if dtype is None else backend.as_dtype(dtype)))

"""A strict CuPy stand-in: CuPy's API over NumPy, for running the CUDA half of the suite on a CPU.

``GPUGRAD_TEST_CUPY=standin python -m pytest`` makes ``tests/conftest.py`` call
:func:`install`, which puts this module in ``sys.modules`` as ``cupy`` (and
``cupyx``, ``cupyx.scipy.special``) before gpugrad is imported.  gpugrad then
finds "a GPU" and every ``cuda``-parametrised test runs here instead of
skipping.  The library has no hook for it: it imports ``cupy`` as it always does.

What it is strict about (each is a bug on a real card that a NumPy run hides):

* **Its own array type.**  :class:`ndarray` is not a ``numpy.ndarray``;
  ``numpy.asarray(a)`` / ``a.__array__()`` raise CuPy's ``TypeError``
  ("Implicit conversion to a NumPy array is not allowed"), so a host
  round-trip on the CUDA path fails loudly.  ``.get()`` and ``cupy.asnumpy``
  are the explicit ways out.
* **No mixing.**  A ``numpy.ndarray`` given to a CuPy function, ufunc,
  operator or kernel raises ``TypeError: Unsupported type <class
  'numpy.ndarray'>`` as CuPy does (Python and NumPy *scalars* are fine), so
  device mismatches surface.  NumPy functions called on stand-in arrays go
  through ``__array_function__``/``__array_ufunc__`` exactly as with CuPy: they
  work where CuPy has the function and raise ``TypeError`` where it does not.
* **Only CuPy's names.**  The module exposes the names of CuPy's
  ``cupy/__init__.py`` (CuPy 15.0.0a1 source, commit 6b6d956, whose API is
  CuPy 14's); a NumPy-only function (``cupy.errstate``, ...) is an
  ``AttributeError``.  ``cupy.random.Generator`` has exactly CuPy's methods
  (``random``, ``uniform``, ``integers``, ``standard_normal``, ... and *no*
  ``permutation``, ``shuffle``, ``choice`` or ``normal``), and its bit
  generator holds a ``threading.Lock`` (so ``copy.deepcopy`` fails as it does on
  CuPy) and keeps its state in a device array ``_state``, as CuPy's do.
* **Reductions return 0-d arrays**, never Python or NumPy scalars, as CuPy's
  do; ``float()``, ``int()``, ``bool()``, ``.item()``, ``.tolist()``,
  ``.get()`` and ``asnumpy`` are device-to-host synchronisations and are
  counted in :data:`syncs` (see :func:`count_syncs`).
* **Kernels.**  ``RawModule`` records its compile options in
  :data:`compiled_modules` (both as passed and as CuPy 14.2's NVRTC receives
  them, with ``-ftz=true`` appended), checks that a requested function is one
  of its ``name_expressions`` (or an ``extern "C"`` kernel in the code), and a
  launch checks every argument: arrays must be stand-in arrays (a NumPy array
  is an illegal address on a card), C-contiguous, on the current device, of
  the dtype the template was instantiated with; scalars must be NumPy scalars;
  the argument count must match the kernel's family.  Then the launch runs
  the kernel's **NumPy twin** (:mod:`gpugrad.kernels.twins`) into the output
  arrays.  Decision: twins, not the C++ shim, because the shim needs a C++
  compiler and a build in every test process; the shim keeps covering the
  kernels' math in ``tests/test_kernels.py``.
* **Memory pool.**  ``get_default_memory_pool().set_limit(size=...)`` is
  honoured: an allocation that takes the live bytes past the limit raises
  ``cupy.cuda.memory.OutOfMemoryError`` with CuPy's message.
* **Devices.**  ``cuda.Device``, ``Stream``, ``Event``, ``runtime`` and
  ``driver`` basics exist.  One device by default;
  ``GPUGRAD_STANDIN_DEVICES=N`` emulates N, and then an array used while
  another device is current raises (CuPy without peer access).

What it cannot know (a pass here is not a pass on a card):

* kernel math on the card: NVRTC compilation, ``-ftz=true`` flush-to-zero,
  FMA contraction, float16 rounding, out-of-bounds indexing inside a kernel,
  grid/block sizing and races (the C++ shim and ``benchmarks/gpu_check.sh``
  cover these); a "kernel against its twin" test here compares the twin with
  itself, so it checks the launch (arguments, dtypes, layout), not the math;
* CuPy's own numerics (cuBLAS/cuRAND results, reduction order, ``erf``
  accuracy): results here are NumPy's;
* CuPy's random streams: the stand-in draws with NumPy's PCG64, so values
  differ from a card's; only *which* methods exist and that state round-trips
  are faithful;
* asynchrony: everything is synchronous, so missing ``synchronize()`` calls,
  stream ordering and event timing are not checked; timings are host times;
* real memory: caching, fragmentation, the card's size and out-of-memory
  from the driver (only the pool limit is emulated); ``memGetInfo`` is
  invented;
* multi-GPU behaviour beyond the current-device check; peer access; NCCL
  (``cupy.cuda.nccl`` is absent, as on a CuPy built without NCCL);
* every CuPy signature detail: functions accept NumPy's keyword arguments;
  lists are accepted where CuPy would insist on arrays.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import os
import sys
import threading
import time
import types
import weakref

import numpy

__version__ = "14.2.0+standin"
STANDIN = True

#: Device-to-host synchronisations by kind ("float", "int", "bool", "item", "tolist", "get", "asnumpy").
syncs = collections.Counter()
#: Host-to-device copies by kind ("asarray", "index", "setitem").
transfers = collections.Counter()
#: One dict per RawModule: options as passed and as CuPy's NVRTC gets them.
compiled_modules = []
#: One (kernel name, grid, block) per kernel launch.
launches = []

# The names of CuPy 15.0.0a1 cupy/__init__.py (commit 6b6d956; CuPy 14 has the same), public ones only.
_CUPY_NAMES = frozenset("""
    AxisError ComplexWarning ElementwiseKernel ModuleDeprecationWarning NAN NINF NZERO PINF PZERO
    RankWarning RawKernel RawModule ReductionKernel TooHardError VisibleDeprecationWarning abs absolute
    acos acosh add all allclose alltrue amax amin angle annotations any append apply_along_axis
    apply_over_axes arange arccos arccosh arcsin arcsinh arctan arctan2 arctanh argmax argmin
    argpartition argsort argwhere around array array2string array_equal array_equiv array_repr
    array_split array_str asanyarray asarray asarray_chkfinite ascontiguousarray asfarray asfortranarray
    asin asinh asnumpy astype atan atan2 atanh atleast_1d atleast_2d atleast_3d average bartlett
    base_repr binary_repr bincount bitwise_and bitwise_count bitwise_invert bitwise_left_shift
    bitwise_not bitwise_or bitwise_right_shift bitwise_xor blackman bool_ broadcast broadcast_arrays
    broadcast_to byte byte_bounds c_ can_cast cbrt cdouble ceil cfloat choose clear_memo clip
    column_stack common_type complex128 complex64 complex_ complexfloating compress concat concatenate
    conj conjugate convolve copy copysign copyto corrcoef correlate cos cosh count_nonzero cov cross
    csingle cuda cumprod cumproduct cumsum cumulative_prod cumulative_sum deg2rad degrees delete diag
    diag_indices diag_indices_from diagflat diagonal diff digitize disable_experimental_feature_warning
    divide divmod dot double dsplit dstack dtype e ediff1d einsum empty empty_like equal euler_gamma
    exceptions exp exp2 expand_dims expm1 extract eye fabs fft fill_diagonal finfo fix flatiter
    flatnonzero flip fliplr flipud float16 float32 float64 float_ float_power floating floor
    floor_divide fmax fmin fmod format_float_positional format_float_scientific frexp fromDlpack
    from_dlpack frombuffer fromfile fromfunction fromiter fromstring full full_like fuse gcd generic
    genfromtxt get_array_module get_default_memory_pool get_default_pinned_memory_pool get_printoptions
    gradient greater greater_equal half hamming hanning heaviside histogram histogram2d histogramdd
    hsplit hstack hypot i0 identity iinfo imag in1d index_exp indices inexact inf inner int16 int32
    int64 int8 int_ intc integer interp intersect1d intp invert is_available isclose iscomplex
    iscomplexobj isdtype isfinite isfortran isin isinf isnan isneginf isposinf isreal isrealobj isscalar
    issctype issubclass_ issubdtype issubsctype iterable ix_ kaiser kron lcm ldexp left_shift less
    less_equal lexsort linalg linspace load loadtxt log log10 log1p log2 logaddexp logaddexp2
    logical_and logical_not logical_or logical_xor logspace longlong make_aligned_dtype mask_indices
    matmul matrix_transpose max maximum may_share_memory mean median memoize meshgrid mgrid min
    min_scalar_type minimum mintypecode mod modf moveaxis msort multiply nan nan_to_num nanargmax
    nanargmin nancumprod nancumsum nanmax nanmean nanmedian nanmin nanprod nanstd nansum nanvar ndarray
    ndim ndindex negative newaxis nextafter nonzero not_equal number obj2sctype ogrid ones ones_like
    outer packbits pad partition percentile permute_dims pi piecewise place poly poly1d polyadd polyfit
    polymul polynomial polysub polyval positive pow power printoptions prod product promote_types ptp
    put put_along_axis putmask quantile r_ rad2deg radians random ravel ravel_multi_index real
    real_if_close reciprocal remainder repeat require reshape resize result_type right_shift rint roll
    rollaxis roots rot90 round round_ row_stack s_ save savetxt savez savez_compressed sctype2char
    searchsorted select set_printoptions setdiff1d setxor1d shape shares_memory short show_config sign
    signbit signedinteger sin sinc single singlecomplex sinh size sometrue sort sort_complex split sqrt
    square squeeze stack std subtract sum swapaxes take take_along_axis tan tanh tensordot testing tile
    trace transpose trapezoid trapz tri tril tril_indices tril_indices_from trim_zeros triu triu_indices
    triu_indices_from true_divide trunc typename ubyte ufunc uint uint16 uint32 uint64 uint8 uintc uintp
    ulonglong union1d unique unique_all unique_counts unique_inverse unique_values unpackbits
    unravel_index unsignedinteger unwrap ushort vander var vdot vectorize vsplit vstack where who zeros
    zeros_like
""".split())

_DEVICE_COUNT = max(1, int(os.environ.get("GPUGRAD_STANDIN_DEVICES", "1") or 1))
_SM_COUNT = 132
_TOTAL_MEMORY = 80 * 1024 ** 3


@contextlib.contextmanager
def count_syncs():
    """Count the device-to-host synchronisations inside the block.

    Examples
    --------
    >>> with count_syncs() as counted:
    ...     float(asarray([2.0]).sum())
    2.0
    >>> counted["float"]
    1
    """
    before = collections.Counter(syncs)
    delta = collections.Counter()
    try:
        yield delta
    finally:
        delta.update(syncs)
        delta.subtract(before)
        for key in [key for key, value in delta.items() if value == 0]:
            del delta[key]


def _unsupported(value):
    return TypeError(f"Unsupported type {type(value)} (CuPy stand-in: a host array reached a CuPy "
                     "operation; move it to the device with cupy.asarray, or keep the op on the CPU)")


# --------------------------------------------------------------------------
# Devices and the current device (per thread, as in CuPy).
# --------------------------------------------------------------------------
_local = threading.local()


def get_device_id():
    return getattr(_local, "device", 0)


class _Attributes(dict):
    def __missing__(self, key):
        raise KeyError(f"CuPy stand-in: device attribute {key!r} is not emulated")


class Device:
    """``cupy.cuda.Device``: a context manager that makes a device current."""

    def __init__(self, device=None):
        if device is None:
            device = get_device_id()
        if isinstance(device, Device):
            device = device.id
        device = int(device)
        if not 0 <= device < _DEVICE_COUNT:
            raise runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {device}")
        self.id = device
        self._previous = []

    def __enter__(self):
        self._previous.append(get_device_id())
        _local.device = self.id
        return self

    def __exit__(self, *exc):
        _local.device = self._previous.pop()
        return False

    def use(self):
        _local.device = self.id

    def synchronize(self):
        pass

    @property
    def compute_capability(self):
        return "90"

    @property
    def attributes(self):
        return _Attributes(MultiProcessorCount=_SM_COUNT, MaxThreadsPerBlock=1024, WarpSize=32,
                           ComputeCapabilityMajor=9, ComputeCapabilityMinor=0)

    @property
    def mem_info(self):
        return runtime.memGetInfo()

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(("standin-device", self.id))

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class MemoryPointer:
    def __init__(self, array, device_id):
        self.ptr = int(array.ctypes.data) if array.size else 0
        self.device_id = device_id
        self.device = Device(device_id)


# --------------------------------------------------------------------------
# The memory pool: counts live bytes, honours set_limit.
# --------------------------------------------------------------------------
class OutOfMemoryError(MemoryError):
    """``cupy.cuda.memory.OutOfMemoryError``."""

    def __init__(self, size, total, limit=0):
        message = f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes"
        message += f", limit set to: {limit:,} bytes)." if limit else ")."
        super().__init__(message)


class MemoryPool:
    def __init__(self):
        self._used = {}
        self._limit = 0
        self._lock = threading.Lock()

    def _allocate(self, nbytes, device_id):
        with self._lock:
            used = self._used.get(device_id, 0)
            if self._limit and used + nbytes > self._limit:
                raise OutOfMemoryError(nbytes, used, self._limit)
            self._used[device_id] = used + nbytes

    def _release(self, nbytes, device_id):
        with self._lock:
            self._used[device_id] = self._used.get(device_id, 0) - nbytes

    def used_bytes(self):
        return self._used.get(get_device_id(), 0)

    def total_bytes(self):
        return self.used_bytes()

    def free_bytes(self):
        return 0

    def free_all_blocks(self, stream=None):
        pass

    def n_free_blocks(self):
        return 0

    def set_limit(self, size=None, fraction=None):
        if fraction is not None:
            size = int(_TOTAL_MEMORY * fraction)
        self._limit = int(size or 0)

    def get_limit(self):
        return self._limit

    def malloc(self, size):
        raise StandinLimitation("CuPy stand-in: MemoryPool.malloc (raw device pointers) is not emulated")


class PinnedMemoryPool:
    def free_all_blocks(self):
        pass

    def n_free_blocks(self):
        return 0


class PinnedMemoryPointer(bytearray):
    """``cupy.cuda.PinnedMemoryPointer``: host memory a NumPy array can view (``numpy.ndarray(buffer=...)``)."""

    @property
    def ptr(self):
        return id(self)


def alloc_pinned_memory(size):
    """``cupy.cuda.alloc_pinned_memory``: ``size`` bytes of "page-locked" host memory."""
    return PinnedMemoryPointer(int(size))


def _empty_pinned(shape, dtype=float, order="C"):
    """``cupyx.empty_pinned``: a NumPy array over pinned memory (its ``base`` is the pointer, as in CuPy)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = int(numpy.prod(shape, dtype=numpy.int64)) * numpy.dtype(dtype).itemsize
    return numpy.ndarray(shape, dtype=dtype, buffer=alloc_pinned_memory(nbytes), order=order)


_default_memory_pool = MemoryPool()
_default_pinned_memory_pool = PinnedMemoryPool()


def get_default_memory_pool():
    return _default_memory_pool


def get_default_pinned_memory_pool():
    return _default_pinned_memory_pool


# --------------------------------------------------------------------------
# The array type.
# --------------------------------------------------------------------------
def _check_device(array):
    if _DEVICE_COUNT > 1 and array._device_id != get_device_id():
        raise ValueError(f"Array device must be same as the current device: array device = "
                         f"{array._device_id} while current = {get_device_id()}")


def _unwrap(value):
    """NumPy view of a stand-in value; host arrays are refused as CuPy refuses them."""
    if isinstance(value, ndarray):
        _check_device(value)
        return value._a
    if isinstance(value, numpy.ndarray):
        raise _unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(item) for item in value)
    return value


def _unwrap_index(key):
    """Indices may come from the host (CuPy copies them over): count those copies."""
    if isinstance(key, tuple):
        return tuple(_unwrap_index(part) for part in key)
    if isinstance(key, ndarray):
        _check_device(key)
        return key._a
    if isinstance(key, numpy.ndarray) or isinstance(key, list):
        transfers["index"] += 1
        return numpy.asarray(key)
    return key


def _wrap(value, device_id=None, *, scalars_to_arrays=True):
    if isinstance(value, numpy.ndarray):
        return ndarray._adopt(value, device_id)
    if scalars_to_arrays and isinstance(value, numpy.generic) and not isinstance(value, numpy.void):
        return ndarray._adopt(numpy.asarray(value), device_id)
    if isinstance(value, tuple):
        return tuple(_wrap(item, device_id, scalars_to_arrays=scalars_to_arrays) for item in value)
    if isinstance(value, list):
        return [_wrap(item, device_id, scalars_to_arrays=scalars_to_arrays) for item in value]
    return value


def _owner(array):
    while isinstance(array.base, numpy.ndarray):
        array = array.base
    return array


class ndarray:
    """``cupy.ndarray``: a NumPy array that refuses to be one.

    Examples
    --------
    >>> a = asarray([1.0, 2.0])
    >>> import numpy
    >>> numpy.asarray(a)
    Traceback (most recent call last):
    ...
    TypeError: Implicit conversion to a NumPy array is not allowed. Please use `.get()` ...explicitly.
    """

    __slots__ = ("_a", "_device_id", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        array = numpy.empty(shape, dtype=dtype, order=order)
        self._a, self._device_id = array, get_device_id()
        _account(self, array)

    @classmethod
    def _adopt(cls, array, device_id=None):
        self = object.__new__(cls)
        self._a = array
        self._device_id = get_device_id() if device_id is None else device_id
        if array.flags.owndata:
            _account(self, array)
        return self

    # ---- conversions: explicit ones are syncs, implicit ones are refused.
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self, stream=None, order="C", out=None, blocking=True):
        syncs["get"] += 1
        host = numpy.array(self._a, order=order if order in "CFA" else "C", copy=True)
        if out is not None:
            out[...] = host
            return out
        return host

    def set(self, arr, stream=None):
        if not isinstance(arr, numpy.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, not {type(arr)}")
        transfers["set"] += 1
        self._a[...] = arr

    def _scalar(self, kind):
        syncs[kind] += 1
        if self._a.size != 1:
            if kind == "bool":
                raise ValueError("The truth value of an array with more than one element is ambiguous.")
            raise TypeError("only length-1 arrays can be converted to Python scalars")
        return self._a.reshape(()).item()

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __complex__(self):
        return complex(self._scalar("complex"))

    def __bool__(self):
        return bool(self._scalar("bool"))

    def item(self, *args):
        syncs["item"] += 1
        return self._a.item(*args)

    def tolist(self):
        syncs["tolist"] += 1
        return self._a.tolist()

    def tobytes(self, order="C"):
        syncs["tobytes"] += 1
        return self._a.tobytes(order)

    def __dlpack__(self, *args, **kwargs):
        raise BufferError("CuPy stand-in: DLPack export of a device array is not emulated")

    def __dlpack_device__(self):
        return (2, self._device_id)  # kDLCUDA

    def __reduce__(self):
        syncs["pickle"] += 1
        return (_rebuild, (self._a.copy(), self._device_id))

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        if self._a.ndim == 0:
            syncs["format"] += 1
        return format(self._a, spec) if self._a.ndim == 0 else str(self)

    # ---- attributes.
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: _wrap(self._a.T, self._device_id))
    mT = property(lambda self: _wrap(numpy.swapaxes(self._a, -1, -2), self._device_id))
    real = property(lambda self: _wrap(self._a.real, self._device_id))
    imag = property(lambda self: _wrap(self._a.imag, self._device_id))
    device = property(lambda self: Device(self._device_id))
    data = property(lambda self: MemoryPointer(self._a, self._device_id))

    @property
    def base(self):
        return None if self._a.base is None else _wrap(self._a.base, self._device_id)

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    __hash__ = None

    def __getitem__(self, key):
        _check_device(self)
        key = _unwrap_index(key)
        result = self._a[key]
        if isinstance(result, numpy.generic):
            # CuPy answers a full integer index with a 0-d view of the same
            # memory, where NumPy makes a scalar copy; an Ellipsis gives the view.
            result = self._a[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
        return _wrap(result, self._device_id)

    def __setitem__(self, key, value):
        _check_device(self)
        if isinstance(value, numpy.ndarray):
            transfers["setitem"] += 1
        elif isinstance(value, ndarray):
            _check_device(value)
            value = value._a
        self._a[_unwrap_index(key)] = value

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        wrapper = _UFUNCS.get(ufunc.__name__)
        if wrapper is None:
            return NotImplemented
        return getattr(wrapper, method)(*inputs, **kwargs) if method != "__call__" else wrapper(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        ours = _MODULE_FUNCTIONS.get(func.__name__)
        if ours is None:
            return NotImplemented
        return ours(*args, **kwargs)


def _rebuild(array, device_id):
    return ndarray._adopt(array, device_id)


def _account(owner, array):
    nbytes, device_id = int(array.nbytes), owner._device_id
    _default_memory_pool._allocate(nbytes, device_id)
    weakref.finalize(owner, _default_memory_pool._release, nbytes, device_id)


# CuPy's ndarray methods (cupy/_core/core.pyx) that simply forward.
_METHODS = ("all any argmax argmin argpartition argsort astype byteswap choose clip compress conj "
            "conjugate copy cumprod cumsum diagonal dot fill flatten max mean min nonzero partition "
            "prod ptp put ravel repeat reshape round searchsorted sort squeeze std sum swapaxes take "
            "trace transpose var view").split()


def _forwarding_method(name):
    def method(self, *args, **kwargs):
        _check_device(self)
        if "out" in kwargs and kwargs["out"] is not None:
            out = kwargs["out"]
            kwargs["out"] = _unwrap(out)
            getattr(self._a, name)(*_unwrap(args), **kwargs)
            return out
        result = getattr(self._a, name)(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
        if name in ("fill", "put", "sort", "partition"):
            return None
        return _wrap(result, self._device_id)
    method.__name__ = name
    return method


for _name in _METHODS:
    setattr(ndarray, _name, _forwarding_method(_name))


# --------------------------------------------------------------------------
# Ufuncs (also behind the operators).
# --------------------------------------------------------------------------
class ufunc:
    """A CuPy ufunc over a NumPy one: refuses host arrays, returns device arrays."""

    def __init__(self, np_ufunc):
        self._np = np_ufunc
        self.__name__ = np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs
        self.types = np_ufunc.types

    def _run(self, function, args, kwargs):
        out = kwargs.get("out")
        if out is not None:
            kwargs = dict(kwargs, out=_unwrap(out if isinstance(out, tuple) else (out,)))
        for key in ("where",):
            if key in kwargs:
                kwargs[key] = _unwrap(kwargs[key])
        args = tuple(_unwrap(a) if isinstance(a, (ndarray, numpy.ndarray)) else
                     (_refuse_list(a) if isinstance(a, (list, tuple)) else a) for a in args)
        result = function(*args, **kwargs)
        if out is not None:
            return out
        return _wrap(result)

    def __call__(self, *args, **kwargs):
        return self._run(self._np, args, kwargs)

    def reduce(self, *args, **kwargs):
        return self._run(self._np.reduce, args, kwargs)

    def accumulate(self, *args, **kwargs):
        return self._run(self._np.accumulate, args, kwargs)

    def reduceat(self, *args, **kwargs):
        return self._run(self._np.reduceat, args, kwargs)

    def outer(self, *args, **kwargs):
        return self._run(self._np.outer, args, kwargs)

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise _unsupported(a)
        args = (a._a, _unwrap_index(indices)) + (() if b is None else (_unwrap(b),))
        self._np.at(*args)

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


def _refuse_list(value):
    raise TypeError(f"Unsupported type {type(value)} (CuPy ufuncs take arrays and scalars, not sequences)")


_UFUNCS = {}


def _binary(name, reflected=False):
    def operator(self, other):
        if isinstance(other, numpy.ndarray):
            raise _unsupported(other)
        if isinstance(other, (list, tuple)):
            return NotImplemented
        function = _UFUNCS[name]
        return function(other, self) if reflected else function(self, other)
    return operator


def _inplace(name):
    def operator(self, other):
        if isinstance(other, numpy.ndarray):
            raise _unsupported(other)
        _UFUNCS[name](self, other, out=self)
        return self
    return operator


for _dunder, _ufunc_name in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"),
                             ("truediv", "divide"), ("floordiv", "floor_divide"), ("mod", "remainder"),
                             ("pow", "power"), ("matmul", "matmul"), ("and", "bitwise_and"),
                             ("or", "bitwise_or"), ("xor", "bitwise_xor"), ("lshift", "left_shift"),
                             ("rshift", "right_shift")]:
    setattr(ndarray, f"__{_dunder}__", _binary(_ufunc_name))
    setattr(ndarray, f"__r{_dunder}__", _binary(_ufunc_name, reflected=True))
    setattr(ndarray, f"__i{_dunder}__", _inplace(_ufunc_name))
for _dunder, _ufunc_name in [("eq", "equal"), ("ne", "not_equal"), ("lt", "less"), ("le", "less_equal"),
                             ("gt", "greater"), ("ge", "greater_equal")]:
    setattr(ndarray, f"__{_dunder}__", _binary(_ufunc_name))
ndarray.__neg__ = lambda self: _UFUNCS["negative"](self)
ndarray.__pos__ = lambda self: _UFUNCS["positive"](self)
ndarray.__abs__ = lambda self: _UFUNCS["absolute"](self)
ndarray.__invert__ = lambda self: _UFUNCS["invert"](self)
ndarray.__divmod__ = lambda self, other: _UFUNCS["divmod"](self, other)


# --------------------------------------------------------------------------
# Module-level functions: CuPy's names only.
# --------------------------------------------------------------------------
# Functions whose results are not arrays (dtypes, shapes, booleans about dtypes).
_NOT_ARRAY_RESULTS = frozenset(
    "can_cast common_type dtype finfo iinfo isscalar issubdtype min_scalar_type ndim promote_types "
    "result_type shape size obj2sctype issctype issubclass_ issubsctype sctype2char binary_repr "
    "base_repr isdtype format_float_positional format_float_scientific".split())
# Explicit host -> device copies: NumPy input is welcome here.
_CREATION_FROM_HOST = frozenset("array asarray asanyarray ascontiguousarray asfortranarray".split())


def _module_function(name, np_function):
    def function(*args, **kwargs):
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _unwrap(out)
        result = np_function(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
        if out is not None and result is kwargs["out"]:
            return out
        if name in _NOT_ARRAY_RESULTS:
            return result
        return _wrap(result)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"cupy.{name} (stand-in over numpy.{name})."
    return function


def _from_host(name, np_function):
    def function(obj, *args, **kwargs):
        if isinstance(obj, ndarray):
            _check_device(obj)
            if obj._device_id != get_device_id():
                obj = obj.get()
            else:
                result = np_function(obj._a, *args, **kwargs)
                return obj if result is obj._a else _wrap(result)
        transfers[name] += 1
        host = _host_tree(obj)
        return _wrap(numpy.array(np_function(host, *args, **kwargs), copy=True))
    function.__name__ = function.__qualname__ = name
    return function


def _host_tree(value):
    if isinstance(value, ndarray):
        syncs["get"] += 1
        return value._a
    if isinstance(value, (list, tuple)):
        return type(value)(_host_tree(item) for item in value)
    return value


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """``cupy.asnumpy``: an explicit device-to-host copy (counted as a sync)."""
    if isinstance(a, ndarray):
        syncs["asnumpy"] += 1
        host = numpy.array(a._a, order=order, copy=True)
    else:
        host = numpy.asarray(a, order=order)
    if out is not None:
        out[...] = host
        return out
    return host


def get_array_module(*args):
    for arg in args:
        if isinstance(arg, ndarray):
            return sys.modules[__name__]
    return numpy


def from_dlpack(array, *, device=None, copy=None):
    if isinstance(array, ndarray):
        return _wrap(array._a.view(), array._device_id)
    device_type = array.__dlpack_device__()[0] if hasattr(array, "__dlpack_device__") else None
    raise BufferError(f"CuPy stand-in: from_dlpack of a DLPack device type {device_type} producer; "
                      "CuPy accepts only CUDA (device type 2) producers")


def is_available():
    return True


def show_config(*, _full=False):
    print(f"CuPy stand-in {__version__} over NumPy {numpy.__version__}")


_MODULE_FUNCTIONS = {}


def _populate(namespace, names, source, functions=None):
    for name in names:
        if name in namespace:
            continue
        if not hasattr(source, name):
            continue
        value = getattr(source, name)
        if isinstance(value, types.ModuleType):
            continue
        if isinstance(value, numpy.ufunc):
            value = _UFUNCS.setdefault(value.__name__, ufunc(value))
        elif isinstance(value, type) or not callable(value):
            pass
        elif name in _CREATION_FROM_HOST:
            value = _from_host(name, value)
        else:
            value = _module_function(name, value)
        namespace[name] = value
        if functions is not None and callable(value) and not isinstance(value, type):
            functions[name] = value
            if getattr(getattr(source, name), "__name__", name) != name:
                functions.setdefault(getattr(source, name).__name__, value)


# --------------------------------------------------------------------------
# cupy.cuda: runtime, driver, memory, streams, events, RawModule.
# --------------------------------------------------------------------------
class CUDARuntimeError(RuntimeError):
    pass


class CUDADriverError(RuntimeError):
    pass


def _memGetInfo():
    used = builtins.sum(_default_memory_pool._used.values())
    return _TOTAL_MEMORY - used, _TOTAL_MEMORY


def _device_properties(device):
    Device(device)
    return {"name": b"CuPy stand-in (NumPy)", "totalGlobalMem": _TOTAL_MEMORY,
            "multiProcessorCount": _SM_COUNT, "major": 9, "minor": 0, "warpSize": 32,
            "maxThreadsPerBlock": 1024, "pciBusID": device}


runtime = types.SimpleNamespace(
    CUDARuntimeError=CUDARuntimeError, is_hip=False,
    getDeviceCount=lambda: _DEVICE_COUNT, getDevice=get_device_id,
    setDevice=lambda device: Device(device).use(), memGetInfo=_memGetInfo,
    getDeviceProperties=_device_properties, deviceSynchronize=lambda: None,
    runtimeGetVersion=lambda: 13000, driverGetVersion=lambda: 13000,
    cudaDevAttrMultiProcessorCount=16,
    deviceGetAttribute=lambda attribute, device: _SM_COUNT if attribute == 16 else 0,
)


def _occupancy(function_pointer, block_size, dynamic_shared_memory):
    return 8


driver = types.SimpleNamespace(CUDADriverError=CUDADriverError,
                               occupancyMaxActiveBlocksPerMultiprocessor=_occupancy,
                               get_build_version=lambda: 13000)


class Event:
    """``cupy.cuda.Event``: records host time (the stand-in runs synchronously)."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.disable_timing = disable_timing
        self._time = None

    def record(self, stream=None):
        self._time = time.perf_counter()

    def synchronize(self):
        pass

    @property
    def done(self):
        return True


def get_elapsed_time(start_event, end_event):
    if start_event._time is None or end_event._time is None:
        raise CUDARuntimeError("cudaErrorInvalidResourceHandle: event not recorded")
    if start_event.disable_timing or end_event.disable_timing:
        raise CUDARuntimeError("cudaErrorInvalidResourceHandle: event created with disable_timing")
    return (end_event._time - start_event._time) * 1000.0


class Stream:
    """``cupy.cuda.Stream``: a context manager making itself current."""

    null = None

    def __init__(self, null=False, non_blocking=False, ptr=None):
        self.ptr = 0 if null else id(self)
        self.device_id = get_device_id()
        self._previous = []

    def __enter__(self):
        self._previous.append(get_current_stream())
        _local.stream = self
        return self

    def __exit__(self, *exc):
        _local.stream = self._previous.pop()
        return False

    def use(self):
        _local.stream = self
        return self

    def synchronize(self):
        pass

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        pass

    def begin_capture(self, mode=None):
        raise StandinLimitation("CuPy stand-in: stream capture (CUDA graphs) is not emulated; "
                                "the test needs a real GPU")

    def is_capturing(self):
        return False

    @property
    def done(self):
        return True

    def __eq__(self, other):
        return isinstance(other, Stream) and other.ptr == self.ptr

    def __hash__(self):
        return hash(self.ptr)


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    return getattr(_local, "stream", None) or Stream.null


memory = types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError, MemoryPool=MemoryPool,
                               MemoryPointer=MemoryPointer, PinnedMemoryPool=PinnedMemoryPool)


def _kernel_signatures():
    """Kernel name -> (C parameter list, template?) from gpugrad's own kernel table."""
    from gpugrad import kernels  # noqa: PLC0415 - the stand-in emulates gpugrad's kernels only
    table = {name: (kernels.FAMILIES[family].split(", "), True) for name, family in kernels.KERNELS.items()}
    table["gg_pack_mask"] = (["const unsigned char*", "unsigned char*", "long long"], False)
    table["gg_unpack_mask"] = (["const unsigned char*", "unsigned char*", "long long"], False)
    return table


_CTYPE_DTYPES = {"gg_half": numpy.dtype(numpy.float16), "float": numpy.dtype(numpy.float32),
                 "double": numpy.dtype(numpy.float64)}
# What CuPy 14.2's compiler.py appends to every RawModule compile, after the caller's options.
CUPY_APPENDED_OPTIONS = ("-ftz=true",)


class RawModule:
    """``cupy.RawModule``: records options; launches run gpugrad's NumPy twins."""

    def __init__(self, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 *, enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if code is None and path is not None:
            with open(path, encoding="utf-8") as source:
                code = source.read()
        if not isinstance(code, str):
            raise TypeError("RawModule: code must be a str")
        self.code, self.options = code, tuple(options)
        self.name_expressions = tuple(name_expressions or ())
        self.backend = backend
        compiled_modules.append({"options": self.options,
                                 "nvrtc_options": self.options + CUPY_APPENDED_OPTIONS,
                                 "name_expressions": self.name_expressions, "backend": backend})

    def get_function(self, name):
        base, _, template = name.partition("<")
        if template:
            if name not in self.name_expressions:
                raise CUDADriverError(f"CUDA_ERROR_NOT_FOUND: named symbol not found: {name} "
                                      "(not in name_expressions)")
        elif f'extern "C" __global__ void {name}(' not in self.code:
            raise CUDADriverError(f"CUDA_ERROR_NOT_FOUND: named symbol not found: {name}")
        return RawKernel(self, base, template.rstrip(">") or None)


class RawKernel:
    num_regs = 32
    max_threads_per_block = 1024

    def __init__(self, module, name, ctype):
        self.module, self.name, self.ctype = module, name, ctype
        signatures = _kernel_signatures()
        if name not in signatures:
            raise CUDADriverError(f"CuPy stand-in: kernel {name} has no NumPy twin to run")
        self.parameters, templated = signatures[name]
        if templated != (ctype is not None):
            raise CUDADriverError(f"CuPy stand-in: kernel {name} called with template {ctype!r}")

    def _check(self, args):
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.parameters)} parameters "
                            f"({', '.join(self.parameters)})")
        element = _CTYPE_DTYPES.get(self.ctype)
        for position, (arg, parameter) in enumerate(zip(args, self.parameters)):
            where = f"{self.name} argument {position} ({parameter})"
            if parameter.endswith("*"):
                if isinstance(arg, numpy.ndarray):
                    raise TypeError(f"{where}: a NumPy array passed to a CUDA kernel "
                                    "(an illegal address on a card)")
                if not isinstance(arg, ndarray):
                    raise TypeError(f"{where}: {type(arg).__name__} is not a device array")
                if arg._device_id != get_device_id():
                    raise ValueError(f"{where}: array on device {arg._device_id}, launch on {get_device_id()}")
                if not arg.flags.c_contiguous:
                    raise ValueError(f"{where}: a non-contiguous array reaches a kernel that indexes it flat")
                base = parameter.replace("const ", "").rstrip("*").strip()
                expected = {"T": element, "float": numpy.dtype(numpy.float32),
                            "unsigned char": numpy.dtype(numpy.uint8)}[base]
                if arg.dtype != expected and not (base == "unsigned char" and arg.dtype == numpy.bool_):
                    raise TypeError(f"{where}: dtype {arg.dtype}, the kernel reads {expected}")
            else:
                expected = {"long long": numpy.int64, "double": numpy.float64}[parameter]
                if not isinstance(arg, numpy.generic) or arg.dtype != numpy.dtype(expected):
                    raise TypeError(f"{where}: pass a numpy.{expected.__name__} scalar, "
                                    f"not {type(arg).__name__} (CuPy would pick the C type from it)")

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        self._check(tuple(args))
        if not builtins.all(int(g) > 0 for g in grid) or not builtins.all(int(b) > 0 for b in block):
            raise CUDADriverError(f"CUDA_ERROR_INVALID_VALUE: empty launch {grid} x {block}")
        if int(numpy.prod(block)) > self.max_threads_per_block:
            raise CUDADriverError(f"CUDA_ERROR_INVALID_VALUE: block {block} exceeds 1024 threads")
        launches.append((self.name, tuple(grid), tuple(block)))
        _run_twin(self.name, [a._a if isinstance(a, ndarray) else a for a in args])


def _run_twin(name, args):
    from gpugrad.kernels import twins  # noqa: PLC0415
    if name == "gg_pack_mask":
        flags, words, n = args
        words[...] = twins.pack_mask(flags[:int(n)].astype(bool))
        return
    if name == "gg_unpack_mask":
        words, flags, n = args
        flags.reshape(-1)[:int(n)] = twins.unpack_mask(words, (int(n),))
        return
    if name == "gg_dropout_forward":
        x, uniform, y, words, n, p, scale = args
        out, mask = twins.dropout_forward(x, uniform, float(p), float(scale))
        y[...], words[...] = out, mask
        return
    if name == "gg_dropout_backward":
        grad, words, grad_x, n, scale, _ = args
        grad_x[...] = twins.mask_backward(grad, twins.unpack_mask(words, grad.shape), float(scale), 0.0)
        return
    activation, _, kind = name[3:].partition("_")
    for suffix in ("bias_forward_mask", "forward_mask", "bias_forward", "bias_backward", "forward", "backward"):
        if name.endswith("_" + suffix):
            activation, kind = name[3:-len(suffix) - 1], suffix
            break
    from gpugrad import kernels  # noqa: PLC0415
    if kind == "forward":
        x, y, n, a, b = args
        y[...] = twins.forward(activation, x, float(a), float(b))
    elif kind == "forward_mask":
        x, y, words, n, a, b = args
        y[...] = twins.forward(activation, x, float(a), float(b))
        words[...] = twins.pack_mask(twins.mask(activation, x, float(a), float(b)))
    elif kind == "bias_forward":
        x, bias, y, n, c, a, b = args
        z = twins.add_bias(x, bias)
        y[...] = twins.forward(activation, z, float(a), float(b), compute=True, out_dtype=x.dtype)
    elif kind == "bias_forward_mask":
        x, bias, y, words, n, c, a, b = args
        z = twins.add_bias(x, bias)
        y[...] = twins.forward(activation, z, float(a), float(b), compute=True, out_dtype=x.dtype)
        words[...] = twins.pack_mask(twins.mask(activation, z, float(a), float(b), compute=True))
    elif kind == "bias_backward":
        grad, x, bias, grad_x, n, c, a, b = args
        z = twins.add_bias(x, bias)
        grad_x[...] = twins.backward(activation, grad, z, float(a), float(b), compute=True)
    elif activation in kernels.SAVES_MASK:
        grad, words, grad_x, n, a, b = args
        kept = twins.unpack_mask(words, grad.shape)
        grad_x[...] = twins.mask_backward(grad, kept, 1.0, float(a) if activation == "leaky_relu" else 0.0)
    else:
        grad, saved, grad_x, n, a, b = args
        grad_x[...] = twins.backward(activation, grad, saved, float(a), float(b))


class StandinLimitation(RuntimeError):
    """Raised by the few CuPy features the stand-in does not emulate (a test needing them needs a GPU)."""


class _Unemulated:
    def __init__(self, what):
        self.what = what

    def __call__(self, *args, **kwargs):
        raise StandinLimitation(f"CuPy stand-in: {self.what} is not emulated; the test needs a real GPU")


cuda = types.ModuleType("cupy.cuda")
cuda.Device, cuda.Stream, cuda.Event, cuda.get_elapsed_time = Device, Stream, Event, get_elapsed_time
cuda.get_current_stream, cuda.get_device_id = get_current_stream, get_device_id
cuda.runtime, cuda.driver, cuda.memory = runtime, driver, memory
cuda.MemoryPool, cuda.PinnedMemoryPool, cuda.MemoryPointer = MemoryPool, PinnedMemoryPool, MemoryPointer
cuda.OutOfMemoryError = OutOfMemoryError
cuda.PinnedMemoryPointer, cuda.alloc_pinned_memory = PinnedMemoryPointer, alloc_pinned_memory


@contextlib.contextmanager
def _using_allocator(allocator=None):
    """``cupy.cuda.using_allocator``: the stand-in's arrays are NumPy's, so the allocator is only recorded."""
    yield


cuda.using_allocator = _using_allocator
cuda.streamCaptureModeGlobal, cuda.streamCaptureModeThreadLocal, cuda.streamCaptureModeRelaxed = 0, 1, 2
runtime.streamCaptureModeGlobal, runtime.streamCaptureModeThreadLocal, runtime.streamCaptureModeRelaxed = 0, 1, 2
cuda.is_available = is_available
cuda.get_local_runtime_version = lambda: 13000


# --------------------------------------------------------------------------
# cupy.random: CuPy's Generator methods, state in a device array.
# --------------------------------------------------------------------------
class BitGenerator:
    """Base of the stand-in bit generators: a lock (as CuPy's: not deep-copyable)
    and the state in a device array ``_state`` (PCG64's 32 bytes)."""

    def __init__(self, seed=None):
        self.lock = threading.Lock()
        if isinstance(seed, numpy.random.SeedSequence):
            self._seed_seq = seed
        else:
            if isinstance(seed, ndarray):
                seed = asnumpy(seed)
            self._seed_seq = numpy.random.SeedSequence(seed)
        self._current_device_id = get_device_id()
        self._seed = self._seed_seq.generate_state(1, numpy.uint32)[0]
        pcg = numpy.random.PCG64(self._seed_seq)
        self._state = ndarray._adopt(_pack_pcg(pcg.state), self._current_device_id)

    def _check_device(self):
        if get_device_id() != self._current_device_id:
            raise RuntimeError("This Generator state is allocated in a different device")

    def state(self):
        self._check_device()
        return self._state.data.ptr

    def _draw(self, draw):
        """Run ``draw(numpy.random.Generator)`` from the state in ``_state``, write the state back."""
        self._check_device()
        pcg = numpy.random.PCG64()
        pcg.state = _unpack_pcg(self._state._a)
        result = draw(numpy.random.Generator(pcg))
        self._state._a[...] = _pack_pcg(pcg.state)
        return result

    def random_raw(self, size=None, output=True):
        y = self._draw(lambda g: g.integers(0, 2 ** 31, size=() if size is None else size, dtype=numpy.int32))
        return _wrap(numpy.asarray(y)) if output else None


def _pack_pcg(state):
    words = [state["state"]["state"], state["state"]["inc"]]
    raw = b"".join(int(w).to_bytes(16, "little") for w in words)
    return numpy.frombuffer(raw, dtype=numpy.int8).copy()


def _unpack_pcg(raw):
    data = numpy.ascontiguousarray(raw).view(numpy.uint8).tobytes()
    state, inc = int.from_bytes(data[:16], "little"), int.from_bytes(data[16:32], "little")
    return {"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0, "uinteger": 0}


class XORWOW(BitGenerator):
    generator = 0


class MRG32k3a(BitGenerator):
    generator = 1


class Philox4x3210(BitGenerator):
    generator = 2


def _size(size):
    return () if size is None else size


def _float_draw(generator, method, size, dtype, out, *args):
    dtype = numpy.dtype(dtype)
    draw_dtype = numpy.float64 if dtype == numpy.float64 else numpy.float32
    values = generator.bit_generator._draw(
        lambda g: numpy.asarray(getattr(g, method)(*args, size=_size(size), dtype=draw_dtype)))
    result = _wrap(values.astype(dtype, copy=False))
    if out is not None:
        if not isinstance(out, ndarray):
            raise _unsupported(out)
        out._a[...] = result._a
        return out
    return result


class Generator:
    """``cupy.random.Generator`` with exactly CuPy 14's public methods."""

    def __init__(self, bit_generator):
        self.bit_generator = bit_generator
        self._binomial_state = None

    def random(self, size=None, dtype=numpy.float64, out=None):
        return _float_draw(self, "random", size, dtype, out)

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        return _float_draw(self, "standard_normal", size, dtype, out)

    def standard_exponential(self, size=None, dtype=numpy.float64, method="inv", out=None):
        return _float_draw(self, "standard_exponential", size, dtype, out)

    def standard_gamma(self, shape, size=None, dtype=numpy.float64, out=None):
        return _float_draw(self, "standard_gamma", size, dtype, out, _host_arg(shape))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        values = self.bit_generator._draw(lambda g: numpy.asarray(
            g.uniform(_host_arg(low), _host_arg(high), size=_size(size))))
        return _wrap(values.astype(dtype, copy=False))

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        values = self.bit_generator._draw(lambda g: numpy.asarray(
            g.integers(_host_arg(low), _host_arg(high), size=_size(size), dtype=dtype, endpoint=endpoint)))
        return _wrap(values)

    def _distribution(self, method, *args, size=None):
        return _wrap(self.bit_generator._draw(
            lambda g: numpy.asarray(getattr(g, method)(*[_host_arg(a) for a in args], size=_size(size)))))

    def beta(self, a, b, size=None, dtype=numpy.float64):
        return self._distribution("beta", a, b, size=size).astype(dtype, copy=False)

    def chisquare(self, df, size=None):
        return self._distribution("chisquare", df, size=size)

    def dirichlet(self, alpha, size=None):
        return self._distribution("dirichlet", alpha, size=size)

    def exponential(self, scale=1.0, size=None):
        return self._distribution("exponential", scale, size=size)

    def f(self, dfnum, dfden, size=None):
        return self._distribution("f", dfnum, dfden, size=size)

    def geometric(self, p, size=None):
        return self._distribution("geometric", p, size=size)

    def hypergeometric(self, ngood, nbad, nsample, size=None):
        return self._distribution("hypergeometric", ngood, nbad, nsample, size=size)

    def logseries(self, p, size=None):
        return self._distribution("logseries", p, size=size)

    def poisson(self, lam=1.0, size=None):
        return self._distribution("poisson", lam, size=size)

    def power(self, a, size=None):
        return self._distribution("power", a, size=size)

    def gamma(self, shape, scale=1.0, size=None):
        return self._distribution("gamma", shape, scale, size=size)

    def binomial(self, n, p, size=None):
        return self._distribution("binomial", n, p, size=size)


def _host_arg(value):
    # Distribution parameters on the device are read by the kernel; here, from the NumPy view.
    return value._a if isinstance(value, ndarray) else value


def default_rng(seed=None):
    if isinstance(seed, BitGenerator):
        return Generator(seed)
    if isinstance(seed, Generator):
        return seed
    return Generator(XORWOW(seed))


random = types.ModuleType("cupy.random")
random.Generator, random.BitGenerator, random.default_rng = Generator, BitGenerator, default_rng
random.XORWOW, random.MRG32k3a, random.Philox4x3210 = XORWOW, MRG32k3a, Philox4x3210
_legacy = numpy.random.RandomState()


def _legacy_function(name):
    def function(*args, **kwargs):
        return _wrap(numpy.asarray(getattr(_legacy, name)(*_unwrap(args), **_unwrap(kwargs))))
    function.__name__ = name
    return function


for _name in ("rand randn random random_sample randint permutation choice normal uniform "
              "standard_normal beta binomial poisson exponential gamma").split():
    setattr(random, _name, _legacy_function(_name))
random.seed = lambda seed=None: _legacy.seed(seed)


def _shuffle(a):
    if not isinstance(a, ndarray):
        raise TypeError("The array must be cupy.ndarray")
    _legacy.shuffle(a._a)


random.shuffle = _shuffle


# --------------------------------------------------------------------------
# Assemble the cupy namespace, linalg, fft and cupyx.
# --------------------------------------------------------------------------
linalg = types.ModuleType("cupy.linalg")
fft = types.ModuleType("cupy.fft")


# CuPy's GEMM compute-type switch (cupy/_core/_routines_linalg.pyx), for TF32:
# the stand-in records the setting (the math stays float32; TF32 rounding is
# the GPU's) and, like CuPy, accepts only float16/32/64 and the known codes.
def _set_compute_type(dtype, compute_type):
    char = numpy.dtype(dtype).char
    if char not in "efd":
        raise TypeError(f"dtype is not supported: {dtype}")
    if compute_type not in (0, 1, 2, 3, 4, 5, 6, 7):
        raise ValueError(f"Unknown compute type: {compute_type}")
    _compute_types[char] = compute_type


_compute_types = {}
_core = types.SimpleNamespace(_routines_linalg=types.SimpleNamespace(
    set_compute_type=_set_compute_type, get_compute_type=lambda dtype: _compute_types.get(numpy.dtype(dtype).char, 1),
    COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_TF32=7))
_populate(vars(linalg), "cholesky cond det eig eigh eigvals eigvalsh inv lstsq matmul matrix_power "
          "matrix_rank norm pinv qr slogdet solve svd tensorinv tensorsolve".split(), numpy.linalg)
_populate(vars(fft), "fft fft2 fftfreq fftn fftshift hfft ifft ifft2 ifftn ifftshift ihfft irfft irfft2 "
          "irfftn rfft rfft2 rfftfreq rfftn".split(), numpy.fft)
_populate(globals(), sorted(_CUPY_NAMES), numpy, _MODULE_FUNCTIONS)
for _name in ("negative", "positive", "absolute", "invert", "divmod", "equal", "matmul"):
    assert _name in _UFUNCS, _name


def _as_strided(x, shape=None, strides=None):
    """``cupy.lib.stride_tricks.as_strided`` (CuPy's signature: no ``writeable``)."""
    if not isinstance(x, ndarray):
        raise _unsupported(x)
    return _wrap(numpy.lib.stride_tricks.as_strided(x._a, shape=shape, strides=strides), x._device_id)


def _sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    if not isinstance(x, ndarray):
        raise _unsupported(x)
    return _wrap(numpy.lib.stride_tricks.sliding_window_view(x._a, window_shape, axis, writeable=writeable),
                 x._device_id)


lib = types.ModuleType("cupy.lib")
lib.stride_tricks = types.ModuleType("cupy.lib.stride_tricks")
lib.stride_tricks.as_strided = _as_strided
lib.stride_tricks.sliding_window_view = _sliding_window_view


def fuse(*args, **kwargs):
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda function: function


class ElementwiseKernel:
    """``cupy.ElementwiseKernel`` for gpugrad's fused optimizer kernels: checks a launch, runs the NumPy twin.

    The twin comes from :data:`gpugrad.kernels.optim_kernels.TWINS` by kernel
    name (any other name raises, as the stand-in cannot run CUDA source).  A
    launch checks, as CuPy does, the argument count, that every array is a
    stand-in array on the current device (a NumPy array raises
    ``Unsupported type``), that the arrays have one shape, and that all
    ``T`` arrays share one floating dtype; scalars must be Python or NumPy
    numbers.  Outputs are updated in place.
    """

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, loop_prep="", after_loop="", **kwargs):
        from gpugrad.kernels import optim_kernels  # noqa: PLC0415 - the stand-in emulates gpugrad's kernels only
        if name not in optim_kernels.TWINS:
            raise StandinLimitation(f"CuPy stand-in: ElementwiseKernel {name!r} has no NumPy twin to run")
        self.name, self.operation = name, operation
        self.twin = optim_kernels.TWINS[name]
        self.in_params = [part.split() for part in in_params.split(",")]
        self.out_params = [part.split() for part in out_params.split(",")]

    def __call__(self, *args, **kwargs):
        parameters = self.in_params + self.out_params
        if len(args) != len(parameters):
            raise TypeError(f"{self.name}: wrong number of arguments: {len(args)} for {len(parameters)}")
        shape = element = None
        for arg, (ctype, pname) in zip(args, parameters):
            where = f"{self.name} argument {pname!r}"
            if ctype == "T":
                if isinstance(arg, numpy.ndarray):
                    raise _unsupported(arg)
                if not isinstance(arg, ndarray):
                    raise TypeError(f"{where}: {type(arg).__name__} is not a device array")
                if arg._device_id != get_device_id():
                    raise ValueError(f"{where}: array on device {arg._device_id}, launch on {get_device_id()}")
                shape = arg.shape if shape is None else shape
                element = arg.dtype if element is None else element
                if arg.shape != shape:
                    raise ValueError(f"{where}: shape {arg.shape} does not match {shape} (no broadcasting here)")
                if arg.dtype != element or arg.dtype.kind != "f":
                    raise TypeError(f"{where}: dtype {arg.dtype}; T is bound to {element} (a floating type)")
            elif isinstance(arg, (ndarray, numpy.ndarray)) or isinstance(arg, bool) \
                    or not isinstance(arg, (int, float, numpy.number)):
                raise TypeError(f"{where}: the scalar parameter {ctype} {pname} got {type(arg).__name__}")
        launches.append((self.name, None, None))
        self.twin(*[a._a if isinstance(a, ndarray) else a for a in args])


ReductionKernel = _Unemulated("cupy.ReductionKernel")

cupyx = types.ModuleType("cupyx")
cupyx.__doc__ = "CuPy stand-in's cupyx: scatter_add/max/min and scipy.special over SciPy."


def _scatter(np_ufunc):
    def scatter(a, slices, value):
        if not isinstance(a, ndarray):
            raise _unsupported(a)
        np_ufunc.at(a._a, _unwrap_index(slices), _unwrap(value))
    return scatter


cupyx.scatter_add, cupyx.scatter_max, cupyx.scatter_min = (
    _scatter(numpy.add), _scatter(numpy.maximum), _scatter(numpy.minimum))
cupyx.errstate, cupyx.seterr, cupyx.geterr = numpy.errstate, numpy.seterr, numpy.geterr
cupyx.empty_pinned = _empty_pinned


@contextlib.contextmanager
def _allow_synchronize(allow):
    yield


cupyx.allow_synchronize = _allow_synchronize
cupyx.scipy = types.ModuleType("cupyx.scipy")
cupyx.scipy.special = types.ModuleType("cupyx.scipy.special")
try:
    import scipy.special as _scipy_special  # noqa: PLC0415
except ImportError:  # pragma: no cover - scipy is a test dependency
    _scipy_special = None
if _scipy_special is not None:
    _populate(vars(cupyx.scipy.special), "erf erfc erfinv erfcinv erfcx gammaln digamma polygamma expit "
              "logit log_expit log_softmax softmax logsumexp i0 i0e i1 i1e ndtr ndtri log_ndtr xlogy "
              "xlog1py entr gamma zeta sinc".split(), _scipy_special)
    for _value in vars(cupyx.scipy.special).values():
        if isinstance(_value, ufunc):
            _UFUNCS.setdefault(_value.__name__, _value)


def install():
    """Make ``import cupy`` / ``import cupyx`` give the stand-in (call before importing gpugrad)."""
    module = sys.modules[__name__]
    sys.modules["cupy"] = module
    sys.modules["cupy.cuda"] = cuda
    sys.modules["cupy.random"] = random
    sys.modules["cupy.linalg"] = linalg
    sys.modules["cupy.fft"] = fft
    sys.modules["cupy.lib"] = lib
    sys.modules["cupy.lib.stride_tricks"] = lib.stride_tricks
    sys.modules["cupyx"] = cupyx
    sys.modules["cupyx.scipy"] = cupyx.scipy
    sys.modules["cupyx.scipy.special"] = cupyx.scipy.special
    return module

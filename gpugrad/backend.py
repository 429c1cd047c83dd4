"""The array backend: NumPy on the CPU, CuPy on NVIDIA GPUs.

Nothing here knows about tensors.  Everything above this module asks it three
questions: *which array module does this array belong to* (:func:`xp_of`),
*on which device does it live* (:func:`device_of`), and *move it there*
(:func:`to_device`).

GPU detection never crashes: CuPy missing, CuPy installed without a driver, or
a driver with no GPU (CuPy imports, then raises ``CUDARuntimeError`` on first
use) all mean "CPU only".
"""

from __future__ import annotations

import copy
import os
import threading

import ml_dtypes
import numpy as np

from .errors import DeviceError, DTypeError

# --------------------------------------------------------------------------
# dtypes: plain NumPy dtype objects, so ``t.dtype == np.float32`` just works.
# --------------------------------------------------------------------------
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")
# bfloat16 has no NumPy type of its own; ml_dtypes supplies one that NumPy
# arithmetic accepts and CuPy stores.  Its dtype ``kind`` is "V", not "f", so
# code asking "is this floating?" must use :func:`is_floating` (or
# :data:`FLOATING_DTYPES`), never ``dtype.kind == "f"``.
bfloat16 = np.dtype(ml_dtypes.bfloat16)
half, double, long = float16, float64, int64
FLOATING_DTYPES = frozenset((float16, bfloat16, float32, float64))
#: Low-precision floats, which compute in float32 wherever NumPy/CuPy would
#: otherwise round every intermediate (sums, kernels) or have no loop (einsum).
LOW_PRECISION = frozenset((float16, bfloat16))

_DTYPE_NAMES = {
    "float16": float16, "half": float16, "float32": float32, "float": float32,
    "float64": float64, "double": float64, "bfloat16": bfloat16, "int8": int8, "uint8": uint8,
    "int16": int16, "int32": int32, "int": int32, "int64": int64, "long": int64,
    "bool": bool_,
}
_default_float = float32


def as_dtype(dtype) -> np.dtype:
    """Normalise anything dtype-like (``gg.float32``, ``"float32"``, ``np.int64``,
    ``float``) to a NumPy dtype, with a typed error for nonsense."""
    if dtype is None:
        return None
    if isinstance(dtype, np.dtype):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype]
    if dtype is float:
        return _default_float
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    try:
        return np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"dtype: {dtype!r} is not a dtype; use one of gg.float16, gg.bfloat16, "
                         "gg.float32, gg.float64, gg.int32, gg.int64, gg.bool") from None


def get_default_dtype() -> np.dtype:
    """The dtype of new floating tensors (float32 unless changed)."""
    return _default_float


def set_default_dtype(dtype) -> None:
    """Change the dtype of new floating tensors (float16, bfloat16, float32 or float64)."""
    global _default_float
    dtype = as_dtype(dtype)
    if dtype not in FLOATING_DTYPES:
        raise DTypeError(f"set_default_dtype: {dtype} is not a floating dtype; "
                         "use gg.float32 or gg.float64")
    _default_float = dtype


def is_floating(dtype) -> bool:
    """True for float16, bfloat16, float32 and float64 (bfloat16's ``kind`` is "V").

    Examples
    --------
    >>> is_floating(bfloat16), is_floating(int64)
    (True, False)
    """
    return dtype.kind == "f" or dtype == bfloat16


# --------------------------------------------------------------------------
# CuPy, guarded.
# --------------------------------------------------------------------------
_cupy = None
_cupy_checked = False
_cuda_count = 0


def _probe_cupy():
    """Import CuPy and count GPUs once; any failure means "no GPU"."""
    global _cupy, _cupy_checked, _cuda_count
    if _cupy_checked:
        return
    _cupy_checked = True
    if os.environ.get("GPUGRAD_DISABLE_CUDA", "") not in ("", "0"):
        return
    try:
        import cupy  # noqa: PLC0415 - optional dependency, imported lazily on purpose
        count = cupy.cuda.runtime.getDeviceCount()
        if count > 0:
            # A driver can report devices yet fail on first allocation (e.g. no
            # permission); touch one to be sure before promising CUDA.
            cupy.zeros(1)
            _cupy, _cuda_count = cupy, count
    except Exception:  # noqa: BLE001 - ImportError, CUDARuntimeError, driver errors...
        _cupy, _cuda_count = None, 0


def cupy_module():
    """The ``cupy`` module when a usable GPU is present, else ``None``."""
    _probe_cupy()
    return _cupy


def cuda_is_available() -> bool:
    _probe_cupy()
    return _cupy is not None


def cuda_device_count() -> int:
    _probe_cupy()
    return _cuda_count


def cuda_synchronize() -> None:
    if cuda_is_available():
        _cupy.cuda.Device().synchronize()


# --------------------------------------------------------------------------
# Devices.
# --------------------------------------------------------------------------
VALID_DEVICE_SPELLINGS = "'cpu', 'cuda' or 'cuda:N' with N a device number such as 0 (any letter case)"


class Device:
    """Where a tensor lives: ``Device("cpu")`` or ``Device("cuda:0")``.

    Examples
    --------
    >>> Device("cuda:1").index, str(Device("cpu"))
    (1, 'cpu')
    """

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise DeviceError(f"device: {spec!r} is not a device; use {VALID_DEVICE_SPELLINGS}")
        # Case-insensitive, as PyTorch's parser is not but users write "CPU" and "Cuda:0".
        kind, colon, number = spec.strip().lower().partition(":")
        if kind not in ("cpu", "cuda") or (colon and not number.isdigit()):
            raise DeviceError(f"device: unknown device {spec!r}; use {VALID_DEVICE_SPELLINGS}")
        self.type = kind
        if kind == "cpu":
            self.index = None
        else:
            self.index = int(number) if number else (index if index is not None else 0)

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __str__(self):
        return "cpu" if self.type == "cpu" else f"cuda:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Device(other)
            except DeviceError:
                return False
        return isinstance(other, Device) and self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    @property
    def xp(self):
        """The array module (numpy or cupy) for this device."""
        if self.type == "cpu":
            return np
        return require_cuda(self)


CPU = Device("cpu")


def device_or_dtype(name, op):
    """What a string given to ``to(...)`` means: a Device (``"cuda:0"``, ``"CPU"``)
    or, failing that, a dtype name (``"float64"``); anything else (``"gpu"``,
    ``"cuda:x"``) is a DeviceError listing the valid spellings."""
    try:
        return Device(name)
    except DeviceError as device_error:
        try:
            return as_dtype(name)
        except (DTypeError, TypeError):
            raise DeviceError(f"{op}: {name!r} is neither a device nor a dtype; devices are spelled "
                              f"{VALID_DEVICE_SPELLINGS}") from device_error


def require_cuda(device=None):
    """Return cupy, or raise a DeviceError explaining why CUDA is unusable."""
    cp = cupy_module()
    if cp is None:
        raise DeviceError(
            f"device {device or 'cuda'}: CUDA is not available (no CuPy, no driver or no GPU); "
            "install gpugrad[cuda12] or gpugrad[cuda13] on a machine with an NVIDIA GPU, "
            "or use device='cpu'")
    if device is not None and device.index is not None and device.index >= _cuda_count:
        raise DeviceError(f"device {device}: only {_cuda_count} CUDA device(s) present; "
                          f"use an index below {_cuda_count}")
    return cp


def as_device(device) -> Device:
    """Normalise ``None`` (default device), strings and Device objects."""
    if device is None:
        return get_default_device()
    if isinstance(device, Device):
        return device
    if isinstance(device, int):
        return Device("cuda", device)
    return Device(device)


_local = threading.local()
_default_device = None


def _device_from_environment() -> Device:
    raw = os.environ.get("GPUGRAD_DEVICE", "")
    wanted = raw.strip().lower()
    if wanted in ("", "auto"):
        return Device("cuda:0") if cuda_is_available() else CPU
    try:
        device = Device(wanted)
    except DeviceError:
        raise DeviceError(f"GPUGRAD_DEVICE={raw!r} is not a device; set it to 'auto' (or leave it unset), "
                          f"or to {VALID_DEVICE_SPELLINGS}") from None
    if device.type == "cuda" and not cuda_is_available():
        # Asking for CUDA where there is none must not crash the import;
        # tests skip CUDA cleanly and scripts fall back to the CPU.
        return CPU
    return device


def get_default_device() -> Device:
    """Device for new tensors: ``set_default_device`` > ``GPUGRAD_DEVICE`` > cuda if present > cpu."""
    global _default_device
    if _default_device is None:
        _default_device = _device_from_environment()
    return _default_device


def set_default_device(device) -> None:
    global _default_device
    device = as_device(device)
    if device.type == "cuda":
        require_cuda(device)
    _default_device = device


# --------------------------------------------------------------------------
# Device memory faults.
# --------------------------------------------------------------------------
def is_out_of_memory(error) -> bool:
    """True for CuPy's OutOfMemoryError (or a CUDA allocation failure)."""
    if _cupy is None:
        return False
    return isinstance(error, _cupy.cuda.memory.OutOfMemoryError) or "out of memory" in str(error).lower()


def out_of_memory_error(operation, error, requested_bytes=None):
    """Free CuPy's cached blocks and build a gpugrad OutOfMemoryError that
    reports what was requested and what the device has free."""
    from .errors import OutOfMemoryError
    pool = _cupy.get_default_memory_pool()
    held = int(pool.total_bytes())
    pool.free_all_blocks()
    _cupy.get_default_pinned_memory_pool().free_all_blocks()
    free, total = _cupy.cuda.runtime.memGetInfo()
    if requested_bytes is None:
        import re
        match = re.search(r"allocating ([0-9,]+) bytes", str(error))
        requested_bytes = int(match.group(1).replace(",", "")) if match else None
    requested = "an unknown number of" if requested_bytes is None else f"{requested_bytes:,}"
    return OutOfMemoryError(
        f"{operation}: the GPU ran out of memory allocating {requested} bytes ({free:,} of {total:,} bytes free "
        f"after releasing {held:,} cached bytes). Use a smaller batch, free tensors you no longer need, "
        "or gg.checkpoint() to trade compute for memory; the process remains usable.")


# --------------------------------------------------------------------------
# Arrays.
# --------------------------------------------------------------------------
def xp_of(array):
    """NumPy or CuPy, whichever owns ``array`` (NumPy for scalars)."""
    if isinstance(array, np.ndarray) or _cupy is None:
        return np
    if isinstance(array, _cupy.ndarray):
        return _cupy
    return np


def device_of(array) -> Device:
    if isinstance(array, np.ndarray) or _cupy is None or not isinstance(array, _cupy.ndarray):
        return CPU
    return Device("cuda", array.device.id)


def is_gpu_array(array) -> bool:
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def to_device(array, device: Device):
    """Copy ``array`` to ``device`` (no copy if it is already there)."""
    if device.type == "cpu":
        if is_gpu_array(array):
            return _cupy.asnumpy(array)
        return np.asarray(array)
    cp = require_cuda(device)
    if isinstance(array, cp.ndarray) and array.device.id == device.index:
        return array
    with cp.cuda.Device(device.index):
        return cp.asarray(array)


def to_numpy(array) -> np.ndarray:
    return _cupy.asnumpy(array) if is_gpu_array(array) else np.asarray(array)


# --------------------------------------------------------------------------
# Random numbers: one generator per device, all reseeded by manual_seed.
# --------------------------------------------------------------------------
_generators = {}
_seed = None


def manual_seed(seed: int) -> None:
    """Reseed every random op on every device (reproducible runs)."""
    global _seed
    _seed = int(seed)
    _generators.clear()


class _OnDevice:
    """A CuPy generator whose draws run with its own GPU current.

    CuPy raises ("This Generator state is allocated in a different device")
    when a generator is used while another GPU is current, and allocates its
    result on the current GPU; gpugrad draws wherever the caller happens to
    be, so each method call enters the generator's device first.
    """

    __slots__ = ("generator", "device_index")

    def __init__(self, generator, device_index):
        self.generator, self.device_index = generator, device_index

    @property
    def bit_generator(self):
        return self.generator.bit_generator

    def __getattr__(self, name):
        method = getattr(self.generator, name)
        if not callable(method):
            return method
        cp = _cupy

        def on_device(*args, **kwargs):
            with cp.cuda.Device(self.device_index):
                return method(*args, **kwargs)
        on_device.__name__ = name
        return on_device


def generator(device: Device):
    """The random generator for ``device`` (NumPy Generator, or CuPy Generator drawing on its GPU)."""
    gen = _generators.get(device)
    if gen is None:
        if device.type == "cpu":
            gen = np.random.default_rng(_seed)
        else:
            cp = require_cuda(device)
            seed = _seed if _seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
            with cp.cuda.Device(device.index):
                gen = _OnDevice(cp.random.default_rng(seed + 7919 * device.index), device.index)
        _generators[device] = gen
    return gen


def _cuda_bit_state(generator, device):
    """The device array holding a CuPy generator's state (cuRAND states, one per thread)."""
    state = getattr(getattr(generator, "bit_generator", None), "_state", None)
    cp = require_cuda(device)
    if isinstance(state, cp.ndarray) and state.device.id != device.index:
        raise RuntimeError(f"random state on {device}: the generator's state is on cuda:{state.device.id}")
    if not isinstance(state, cp.ndarray):
        raise RuntimeError(
            f"random state on {device}: this CuPy's Generator keeps no device state array "
            "(bit_generator._state, present in CuPy 11-15); gpugrad cannot snapshot it, so "
            "checkpoint(preserve_rng_state=True) and get_rng_state cannot replay CUDA random streams")
    return state


def generator_state(device) -> dict:
    """A snapshot of ``device``'s generator, for :func:`generator_from_state`.

    CPU: NumPy's ``bit_generator.state`` (a dict of ints).  CUDA: the class of
    CuPy's bit generator and a device copy of its state array (CuPy's
    generators hold a lock, so they cannot be deep-copied; their whole state
    is that array).  Taking a snapshot does not synchronise.

    Examples
    --------
    >>> before = generator_state(CPU)
    >>> first = generator(CPU).random()
    >>> generator_from_state(CPU, before).random() == first
    True
    """
    device = as_device(device)
    gen = generator(device)
    if device.type == "cpu":
        return {"device": "cpu", "state": copy.deepcopy(gen.bit_generator.state)}
    with require_cuda(device).cuda.Device(device.index):
        state = _cuda_bit_state(gen, device).copy()
    return {"device": str(device), "bit_generator": type(gen.bit_generator).__name__, "state": state}


def _check_generator_state(device, snapshot):
    if not isinstance(snapshot, dict) or "state" not in snapshot:
        raise ValueError(f"random state for {device}: expected a dict with 'state', got {type(snapshot).__name__}")
    if device.type == "cpu":
        state = snapshot["state"]
        if not isinstance(state, dict) or not isinstance(state.get("bit_generator"), str):
            raise ValueError("random state for cpu: 'state' must be NumPy's bit_generator.state dict")
        return
    name, state = snapshot.get("bit_generator"), snapshot["state"]
    cp = require_cuda(device)
    if not isinstance(name, str) or not isinstance(getattr(cp.random, name, None), type):
        raise ValueError(f"random state for {device}: unknown CuPy bit generator {name!r}")
    if getattr(state, "dtype", None) != np.int8 or getattr(state, "ndim", None) != 1:
        raise ValueError(f"random state for {device}: 'state' must be a 1-D int8 array, "
                         f"got {type(state).__name__}")


def generator_from_state(device, snapshot):
    """A new generator for ``device`` that continues exactly where ``snapshot`` was taken.

    The live generator is untouched (install the result with
    :func:`set_generator_state`, or use it for a replay).
    """
    device = as_device(device)
    _check_generator_state(device, snapshot)
    if device.type == "cpu":
        gen = np.random.default_rng()
        gen.bit_generator.state = copy.deepcopy(snapshot["state"])
        if type(gen.bit_generator).__name__ != snapshot["state"]["bit_generator"]:
            raise ValueError(f"random state for cpu: a {snapshot['state']['bit_generator']} state "
                             "does not fit NumPy's default bit generator")
        return gen
    cp = require_cuda(device)
    with cp.cuda.Device(device.index):
        gen = cp.random.Generator(getattr(cp.random, snapshot["bit_generator"])(seed=0))
        target = _cuda_bit_state(gen, device)
        if target.shape != tuple(snapshot["state"].shape):
            raise ValueError(f"random state for {device}: {snapshot['state'].shape[0]} state bytes, but this "
                             f"device's generator has {target.shape[0]} (a different GPU model?)")
        target[...] = cp.asarray(snapshot["state"])
    return _OnDevice(gen, device.index)


def set_generator_state(device, snapshot) -> None:
    """Make ``device``'s generator continue from ``snapshot`` (see :func:`generator_state`)."""
    device = as_device(device)
    _generators[device] = generator_from_state(device, snapshot)


def get_rng_state() -> dict:
    """A snapshot of every random stream, for checkpoint files (``gg.save`` stores it).

    ``{"seed": ..., "cpu": NumPy bit_generator state, "cuda": {"0": {"bit_generator":
    "XORWOW", "state": host int8 array}, ...}}``; ``"cuda"`` lists the CUDA
    devices whose generator exists (the others start from ``seed`` when first
    used, in the saved run as in the resumed one).
    """
    cuda_states = {}
    for device, gen in sorted(_generators.items(), key=lambda item: str(item[0])):
        if device.type == "cuda" and hasattr(getattr(gen, "bit_generator", None), "_state"):
            snapshot = generator_state(device)
            snapshot["state"] = to_numpy(snapshot["state"])
            del snapshot["device"]
            cuda_states[str(device.index)] = snapshot
    return {"seed": _seed, "cpu": generator(CPU).bit_generator.state, "cuda": cuda_states}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned: the seed, the CPU stream and
    the saved CUDA streams.  Everything is checked before anything changes.

    CUDA streams of devices this machine lacks are not restored (nothing can
    draw from them here); generators of devices the state does not mention
    keep their place.
    """
    global _seed
    if not isinstance(state, dict) or "cpu" not in state:
        raise ValueError("set_rng_state: expected the dict get_rng_state() returns, with a 'cpu' entry")
    seed = state.get("seed")
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise ValueError(f"set_rng_state: 'seed' must be an int or None, got {type(seed).__name__}")
    cpu_gen = generator_from_state(CPU, {"state": state["cpu"]})
    cuda_states = state.get("cuda") or {}
    if not isinstance(cuda_states, dict):
        raise ValueError("set_rng_state: 'cuda' must map device indices to generator states")
    restored = {}
    for index, snapshot in cuda_states.items():
        if not str(index).isdigit():
            raise ValueError(f"set_rng_state: CUDA device index {index!r} is not a number")
        device = Device("cuda", int(index))
        if not cuda_is_available() or device.index >= _cuda_count:
            continue
        restored[device] = generator_from_state(device, snapshot)
    _seed = None if seed is None else int(seed)
    _generators[CPU] = cpu_gen
    _generators.update(restored)


# --------------------------------------------------------------------------
# Special functions NumPy lacks.
# --------------------------------------------------------------------------
def erf(array):
    """The error function on NumPy or CuPy arrays, keeping the dtype."""
    if is_gpu_array(array):
        import cupyx.scipy.special  # noqa: PLC0415 - only present with CuPy
        return cupyx.scipy.special.erf(array)
    try:
        from scipy.special import erf as scipy_erf  # noqa: PLC0415 - optional, fast path
        return scipy_erf(array).astype(array.dtype, copy=False)
    except ImportError:
        import math  # noqa: PLC0415
        # NOTE: exact but slow (a Python call per element); install scipy for speed.
        return np.vectorize(math.erf, otypes=[array.dtype])(array)

"""``gg.backends``: PyTorch's backend switches.

TF32 is real: ``gg.backends.cuda.matmul.allow_tf32`` (off by default, as in
PyTorch) lets float32 matrix products on CuPy run on tensor cores in TF32
(10-bit mantissa inputs, float32 accumulation), and
``gg.backends.cudnn.allow_tf32`` (on by default, as in PyTorch) does the same
for gpugrad's convolutions (im2col GEMMs).  They map to CuPy's float32
compute type (``cupy._core._routines_linalg.set_compute_type(float32,
COMPUTE_TYPE_TF32 or COMPUTE_TYPE_DEFAULT)``); on NumPy they change nothing
(the CPU has no TF32).  PyTorch's newer ``fp32_precision`` ("ieee"/"tf32") and
``gg.set_float32_matmul_precision("highest"|"high"|"medium")`` set the same
switches.

The other switches (``cudnn.benchmark``, ``cudnn.deterministic``...) are stored
and read back but change nothing: gpugrad calls no cuDNN, and its kernels are
deterministic.  ``mps`` is never available.

Examples
--------
>>> import gpugrad as gg
>>> gg.backends.cudnn.benchmark = True
>>> gg.backends.cudnn.benchmark, gg.backends.mps.is_available()
(True, False)
>>> gg.backends.cuda.matmul.allow_tf32
False
"""

import functools as _functools
import os as _os
import types as _types

import numpy as _np

__all__ = [
    "convolution_precision",
    "cuda",
    "cudnn",
    "get_float32_matmul_precision",
    "mkldnn",
    "mps",
    "openmp",
    "set_float32_matmul_precision",
]

# CuPy's compute-type codes (cupy/_core/_routines_linalg.pyx).
COMPUTE_TYPE_DEFAULT = 1
COMPUTE_TYPE_TF32 = 7


def _false():
    return False


def _flags(name, doc, **settings):
    module = _types.SimpleNamespace(**settings)
    module.__doc__ = doc
    module.__name__ = f"gpugrad.backends.{name}"
    module.is_available = _false
    return module


def _cupy_linalg():
    """CuPy's GEMM settings module, or None (no usable GPU)."""
    from .. import backend
    cupy = backend.cupy_module()
    if cupy is None:
        return None
    return getattr(getattr(cupy, "_core", None), "_routines_linalg", None)


def _set_cupy_float32_compute(tf32):
    linalg = _cupy_linalg()
    if linalg is not None:
        linalg.set_compute_type(_np.float32, COMPUTE_TYPE_TF32 if tf32 else COMPUTE_TYPE_DEFAULT)


def _precision_name(value, switch):
    if value not in ("ieee", "tf32", "none"):
        raise ValueError(f"{switch}.fp32_precision: {value!r} is not a precision; use 'ieee', 'tf32' or 'none'")
    return value


class _TF32Switch:
    """One TF32 switch with PyTorch's two spellings: ``allow_tf32`` and ``fp32_precision``."""

    def __init__(self, name, default, applies_now):
        self._name, self._allow, self._applies_now = name, bool(default), applies_now
        self._precision = "none"

    @property
    def allow_tf32(self):
        return self._allow

    @allow_tf32.setter
    def allow_tf32(self, value):
        self._allow = bool(value)
        self._precision = "tf32" if self._allow else "ieee"
        if self._applies_now:
            _set_cupy_float32_compute(self._allow)

    @property
    def fp32_precision(self):
        return self._precision

    @fp32_precision.setter
    def fp32_precision(self, value):
        value = _precision_name(value, self._name)
        if value != "none":
            self.allow_tf32 = value == "tf32"
        self._precision = value


class _MatmulSwitches(_TF32Switch):
    """``gg.backends.cuda.matmul``: TF32 for float32 matrix products on CuPy."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True

    def __repr__(self):
        return f"gpugrad.backends.cuda.matmul(allow_tf32={self.allow_tf32})"


class _CudnnSwitches(_TF32Switch):
    """``gg.backends.cudnn``: TF32 for gpugrad's convolutions (they are GEMMs), other switches stored."""

    enabled = True
    benchmark = False
    deterministic = False
    __name__ = "gpugrad.backends.cudnn"

    @staticmethod
    def is_available():
        return False

    @staticmethod
    def version():
        return None

    def __repr__(self):
        return f"gpugrad.backends.cudnn(allow_tf32={self.allow_tf32})"


# Off, as PyTorch's, unless CuPy's own CUPY_TF32=1 asked for TF32 (then the flag says so).
_matmul = _MatmulSwitches("cuda.matmul", default=_os.environ.get("CUPY_TF32", "0").strip() not in ("", "0"),
                          applies_now=True)
cudnn = _CudnnSwitches("cudnn", default=True, applies_now=False)
mps = _flags("mps", "Apple MPS: not supported by gpugrad.")
mps.is_built = _false
mkldnn = _flags("mkldnn", "oneDNN switches (stored only).", enabled=True)
openmp = _flags("openmp", "OpenMP (stored only).")
cuda = _types.SimpleNamespace(__doc__="CUDA switches: matmul.allow_tf32 (TF32 float32 products on CuPy).",
                              matmul=_matmul, is_built=lambda: True)

_MATMUL_PRECISIONS = {"highest": False, "high": True, "medium": True}


def set_float32_matmul_precision(precision):
    """PyTorch's ``torch.set_float32_matmul_precision``: "highest" is IEEE float32, "high"/"medium" allow TF32.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.set_float32_matmul_precision("high")
    >>> gg.backends.cuda.matmul.allow_tf32
    True
    >>> gg.set_float32_matmul_precision("highest")
    """
    if precision not in _MATMUL_PRECISIONS:
        raise ValueError(f"set_float32_matmul_precision: {precision!r} is not a precision; "
                         "use 'highest', 'high' or 'medium'")
    _matmul.allow_tf32 = _MATMUL_PRECISIONS[precision]
    _matmul_precision[0] = precision


_matmul_precision = ["highest"]


def get_float32_matmul_precision():
    """"highest" unless TF32 matrix products are allowed ("high", or what was set)."""
    if _matmul.allow_tf32:
        return _matmul_precision[0] if _matmul_precision[0] != "highest" else "high"
    return "highest"


def convolution_precision(forward):
    """Run a CuPy convolution forward under ``cudnn.allow_tf32`` (products elsewhere follow ``matmul``).

    CuPy has one float32 compute type for every GEMM; a convolution switches it
    to its own setting for the call and back.  NumPy arrays and matching
    settings go straight through.
    """
    @_functools.wraps(forward)
    def run(*arrays, **params):
        first = arrays[0]
        if first.__class__ is _np.ndarray or cudnn.allow_tf32 == _matmul.allow_tf32 or first.dtype != _np.float32:
            return forward(*arrays, **params)
        _set_cupy_float32_compute(cudnn.allow_tf32)
        try:
            return forward(*arrays, **params)
        finally:
            _set_cupy_float32_compute(_matmul.allow_tf32)
    return run

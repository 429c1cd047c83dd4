"""NumPy twins of the CUDA kernels in ``activation.cu``: the CPU path and the reference.

Each function here computes exactly what its kernel computes: the same
formula, the same order of operations (so the same roundings), the same
branches for NaN, infinities and signed zeros.  float16 is widened to float32,
computed, and rounded to float16 once on the store, as the kernels do.  The
only differences left between the two paths are the last ulps of the math
library (exp, expm1, log1p, tanh, erfc), which the tests bound.

The stable forms used (and why):

- ``sigmoid(z)``: one ``exp(-|z|)`` for either sign, so nothing overflows and
  large negative ``z`` keeps its tiny value instead of ``1 - (1 - tiny)``; the
  derivatives of silu and gelu_tanh take ``1 - sigmoid(z)`` from the same
  exp (``e / (1 + e)``), not by subtraction.
- ``softplus``: PyTorch's ``softplus(beta, threshold)``, linear above the
  threshold, ``max(z, 0) + log1p(exp(-|z|))`` below it.
- ``gelu`` (exact): ``0.5 x erfc(-x / sqrt 2)``, equal to ``0.5 x (1 + erf(x /
  sqrt 2))`` without its cancellation for ``x << 0``.
- ``gelu_tanh``: ``x sigmoid(2u)``, equal to ``0.5 x (1 + tanh(u))``, ``u =
  sqrt(2/pi) (x + 0.044715 x^3)``, without the cancellation of ``1 + tanh(u)``.
- ``mish``: ``x tanh(softplus(x))``; its derivative uses ``sech^2(s) =
  4e / (1 + e)^2``, ``e = exp(-2s)``, not ``1 - tanh^2(s)``.

Derivative conventions follow PyTorch: ``relu'(0) = 0``, ``leaky_relu'(0) =
negative_slope``, ``elu'(x <= 0) = alpha exp(x)``; relu and elu pass the
gradient through at NaN inputs as PyTorch does.  ``relu(-0.0)`` is ``+0.0`` and
``relu(NaN)`` is NaN.

Flush-to-zero on the GPU
------------------------
CuPy compiles every ``RawModule`` with ``-ftz=true`` appended after our
options, so on the GPU float32 arithmetic (float16 computes in float32) may
treat subnormal operands and results as zeros of the same sign.  The twins
compute in IEEE arithmetic without flushing, and what holds between the two is:

- **Branches and mask bits are identical.**  The kernels decide every branch
  (``x > 0``, ``x <= 0``, ``z > threshold``, ``u >= p``, ...) with integer
  tests on the float's bits, which are IEEE comparisons whatever the flush
  mode, so NumPy's comparisons here are their exact twins.  The values those
  tests read that are computed (``x + bias``, ``x * beta``, the parameters
  converted to float32) are computed on the GPU with PTX ``add.rn.f32``,
  ``mul.rn.f32`` and ``cvt.rn.f32.f64`` without ``.ftz``, never flushed.
  relu's and the mask backward's selects (``grad`` where kept, 0 elsewhere)
  move bits without arithmetic, so they are exact too.
- **Values may differ by a flushed subnormal.**  The remaining float32
  arithmetic may lose a subnormal intermediate (``alpha * expm1(1e-40)``,
  ``exp(-100)`` inside sigmoid, ``x * negative_slope`` for tiny ``x``).
  Such an intermediate is below 2^-126 and reaches a float32 output scaled by
  at most ~2^7 (``x * sigmoid(x)`` near ``x = -88``), so a float32 result
  differs from its twin by less than 2^-116 in absolute terms; the
  CUDA-vs-twin tests allow exactly that (``FTZ_ATOL`` in
  ``tests/test_kernels.py``), and the CPU shim checks it by running the
  kernels with the SSE flush-to-zero and denormals-are-zero bits set.  float16
  results are unaffected (their smallest step is 2^-24) and float64 never
  flushes.

Examples
--------
>>> import numpy as np
>>> forward("softplus", np.array([0.0, 30.0], dtype=np.float32), 1.0, 20.0)
array([ 0.6931472, 30.       ], dtype=float32)
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

try:  # SciPy's erfc is vectorised; the fallback is correct but slow.
    from scipy.special import erfc as _scipy_erfc
    from scipy.special import erfcx as _scipy_erfcx
except ImportError:  # pragma: no cover - depends on the environment
    _scipy_erfc = _scipy_erfcx = None


_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)

def compute_dtype(dtype):
    """The dtype the math runs in: float32 for float16 and bfloat16, else ``dtype`` itself.

    Examples
    --------
    >>> compute_dtype(np.float16)
    dtype('float32')
    """
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 or dtype == _BFLOAT16 else dtype


def _widen(array):
    """A C-ordered copy (or view) of ``array`` in its compute dtype, 0-d kept 0-d."""
    return np.asarray(array, dtype=compute_dtype(array.dtype), order="C")


def _erfc(values):
    if _scipy_erfc is not None:
        if values.dtype == np.float64:
            return _erfc_float64(values)
        return _scipy_erfc(values).astype(values.dtype, copy=False)
    flat = np.fromiter((math.erfc(v) for v in values.ravel().tolist()), dtype=np.float64,
                       count=values.size)
    return flat.reshape(values.shape).astype(values.dtype)


def _erfc_float64(t):
    """erfc to a few ulps in float64, tail included.

    SciPy's float64 erfc loses up to ~150 ulps for t > 10 (it rounds t*t before
    exp); glibc and CUDA do not.  erfcx(t) = exp(t^2) erfc(t) is accurate, and
    exp(-t^2) is computed from an exact split t = hi + lo (hi has 24 bits, so
    hi*hi is exact in float64): exp(-t^2) = exp(-hi^2) exp(-lo (t + hi)).
    """
    out = _scipy_erfc(t)
    tail = (t > 0.5) & (t < 27.0)  # erfc(27) underflows to a subnormal anyway
    if tail.any():
        tt = t[tail]
        hi = tt.astype(np.float32).astype(np.float64)
        lo = tt - hi
        out[tail] = _scipy_erfcx(tt) * (np.exp(-hi * hi) * np.exp(-lo * (tt + hi)))
    return out


class _Constants:
    """The literals of the .cu, rounded to the compute dtype once, as C(literal) is."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.bits = np.dtype(f"u{dtype.itemsize}")
        c = dtype.type
        self.zero, self.one, self.two, self.three, self.four = c(0), c(1), c(2), c(3), c(4)
        self.half, self.neg_half, self.neg_two, self.twenty = c(0.5), c(-0.5), c(-2), c(20)
        self.neg_rsqrt2 = c(-0.70710678118654752440)
        self.inv_sqrt_2pi = c(0.39894228040143267794)
        self.sqrt_2_over_pi = c(0.79788456080286535588)
        self.cubic = c(0.044715)


_CONSTANTS = {}


def _k(dtype):
    constants = _CONSTANTS.get(dtype)
    if constants is None:
        constants = _CONSTANTS[dtype] = _Constants(dtype)
    return constants


# --------------------------------------------------------------------------
# Shared numerics (gg_sigmoid, gg_softplus in the .cu).
# --------------------------------------------------------------------------
def _select(condition, if_true, if_false, k):
    """``condition ? if_true : if_false``, bit for bit, like the kernels' ternaries.

    A bitwise blend rather than ``np.where``: with unpredictable conditions
    (the sign of random activations) ``np.where`` runs about 10x slower than
    these five branch-free passes.
    """
    if np.ndim(condition) == 0:  # NumPy turns 0-d results into scalars, which out= refuses
        return np.asarray(if_true if condition else if_false, k.dtype)
    # In place where possible: every fresh temporary of this size costs page faults.
    mask = np.asarray(condition).astype(k.bits)
    np.negative(mask, out=mask)  # all ones where true
    true_bits = np.asarray(if_true, k.dtype).view(k.bits)
    false_bits = np.asarray(if_false, k.dtype).view(k.bits)
    if false_bits.ndim == 0 and false_bits == 0:  # "else +0.0" (relu, dropout): one AND
        return np.bitwise_and(true_bits, mask, out=mask).view(k.dtype) \
            if true_bits.shape == mask.shape else np.bitwise_and(true_bits, mask).view(k.dtype)
    mask = np.broadcast_to(mask, np.broadcast_shapes(mask.shape, true_bits.shape, false_bits.shape))
    blended = np.bitwise_and(np.bitwise_xor(true_bits, false_bits), mask)
    np.bitwise_xor(blended, false_bits, out=blended)
    return blended.view(k.dtype)


def _sigmoid(z, k):
    e = np.exp(-np.abs(z))
    d = k.one + e
    return _select(z >= k.zero, k.one / d, e / d, k)


def _sigmoid_pair(z, k):
    """sigmoid(z) and 1 - sigmoid(z), the complement without cancellation."""
    e = np.exp(-np.abs(z))
    d = k.one + e
    large, small = k.one / d, e / d
    nonnegative = z >= k.zero
    return _select(nonnegative, large, small, k), _select(nonnegative, small, large, k)


def _softplus(x, beta, threshold, k):
    z = x * beta
    positive = _select(z > k.zero, z, k.zero, k)
    below = (positive + np.log1p(np.exp(-np.abs(z)))) / beta
    return _select(z > threshold, x, below, k)


# --------------------------------------------------------------------------
# Per activation: forward(x, a, b, k) and derivative(saved, a, b, k) (or mask),
# in the compute dtype.  Same order of operations as the structs in activation.cu;
# each is named by its row in gpugrad.kernels.table.
# --------------------------------------------------------------------------
def relu(x, a, b, k):
    # Bit for bit the kernel's x > 0 ? x : (x != x ? x : 0), in two fast passes:
    # maximum keeps x > 0 and NaN, and adding +0 turns the -0.0 it may return into +0.0.
    y = np.maximum(x, k.zero)
    return np.add(y, k.zero, out=y) if isinstance(y, np.ndarray) else y + k.zero


def leaky_relu(x, slope, b, k):
    return _select(x > k.zero, x, x * slope, k)


def elu(x, alpha, b, k):
    return _select(x > k.zero, x, alpha * np.expm1(x), k)


def elu_derivative(x, alpha, b, k):
    return _select(x <= k.zero, alpha * np.exp(x), k.one, k)


def gelu(x, a, b, k):
    return k.half * x * _erfc(x * k.neg_rsqrt2)


def gelu_derivative(x, a, b, k):
    cdf = k.half * _erfc(x * k.neg_rsqrt2)
    pdf = np.exp(k.neg_half * x * x) * k.inv_sqrt_2pi
    return cdf + x * pdf


def _gelu_tanh_inner(x, k):
    x3 = x * x * x
    return k.sqrt_2_over_pi * (x + k.cubic * x3)


def gelu_tanh(x, a, b, k):
    s = _sigmoid(k.two * _gelu_tanh_inner(x, k), k)
    return x * s


def gelu_tanh_derivative(x, a, b, k):
    s, complement = _sigmoid_pair(k.two * _gelu_tanh_inner(x, k), k)
    ds = k.two * s * complement
    du = k.sqrt_2_over_pi * (k.one + k.three * k.cubic * x * x)
    t = x * ds
    # Saturated sigmoid: the second term is exactly 0 (x * 0 * inf would be NaN).
    return _select(ds == k.zero, s, s + t * du, k)


def silu(x, a, b, k):
    return x * _sigmoid(x, k)


def silu_derivative(x, a, b, k):
    s, complement = _sigmoid_pair(x, k)
    return s * (k.one + x * complement)


def sigmoid(x, a, b, k):
    return _sigmoid(x, k)


def sigmoid_derivative(y, a, b, k):
    return y * (k.one - y)


def tanh(x, a, b, k):
    return np.tanh(x)


def tanh_derivative(y, a, b, k):
    return k.one - y * y


def softplus(x, beta, threshold, k):
    return _softplus(x, beta, threshold, k)


def softplus_derivative(x, beta, threshold, k):
    z = x * beta
    return _select(z > threshold, k.one, _sigmoid(z, k), k)


def mish(x, a, b, k):
    return x * np.tanh(_softplus(x, k.one, k.twenty, k))


def mish_derivative(x, a, b, k):
    sp = _softplus(x, k.one, k.twenty, k)
    t = np.tanh(sp)
    e = np.exp(k.neg_two * sp)
    d = k.one + e
    sech2 = k.four * e / (d * d)
    return t + x * _sigmoid(x, k) * sech2


# The bit each mask activation keeps (Op::mask): relu keeps "not x <= 0" (so NaN
# keeps its gradient, as PyTorch's threshold_backward does), leaky_relu keeps x > 0.
def relu_mask(x, a, b, k):
    return ~(x <= k.zero)


def leaky_relu_mask(x, a, b, k):
    return x > k.zero


def _row(name):
    # Late: the table (gpugrad.kernels.table) is built from the functions above.
    from .table import ROWS
    return ROWS[name]


# --------------------------------------------------------------------------
# Entry points used by gpugrad.kernels.
# --------------------------------------------------------------------------
def forward(name, x, a, b, compute=False, out_dtype=None):
    """Twin of ``gg_<name>_forward``.

    Parameters
    ----------
    name : str
        Activation name.
    x : numpy.ndarray
        Input in its storage dtype, or already in the compute dtype when
        ``compute`` is true (as :func:`add_bias` returns it).
    a, b : float
        Kernel parameters (negative_slope; alpha; beta and threshold).
    compute : bool
        ``x`` is already widened.
    out_dtype : dtype, optional
        Storage dtype of the result; ``x.dtype`` by default.

    Returns
    -------
    numpy.ndarray
        C-contiguous, ``x``'s shape.

    Examples
    --------
    >>> forward("relu", np.array([-0.0, np.nan, 2.0]), 0.0, 0.0)
    array([ 0., nan,  2.])
    """
    out_dtype = np.dtype(out_dtype if out_dtype is not None else x.dtype)
    xc = np.asarray(x, order="C") if compute else _widen(x)
    k = _k(xc.dtype)
    with np.errstate(all="ignore"):
        y = _row(name).forward(xc, xc.dtype.type(a), xc.dtype.type(b), k)
        # float16 results beyond 65504 become inf on the store, silently, as on the GPU.
        return np.asarray(y, dtype=out_dtype, order="C")


def mask(name, x, a, b, compute=False):
    """The boolean each mask activation keeps for backward (before packing).

    Examples
    --------
    >>> mask("relu", np.array([-1.0, 0.0, np.nan, 1.0]), 0.0, 0.0)
    array([False, False,  True,  True])
    """
    xc = np.asarray(x, order="C") if compute else _widen(x)
    with np.errstate(invalid="ignore"):
        k = _k(xc.dtype)
        return np.ascontiguousarray(_row(name).mask(xc, xc.dtype.type(a), xc.dtype.type(b), k)).reshape(xc.shape)


def backward(name, grad, saved, a, b, compute=False):
    """Twin of ``gg_<name>_backward``: ``grad * f'(saved)`` for non-mask activations.

    Parameters
    ----------
    name : str
        Activation name (not relu or leaky_relu: see :func:`mask_backward`).
    grad : numpy.ndarray
        Gradient with respect to the output.
    saved : numpy.ndarray
        The input, or the output for sigmoid and tanh; in the compute dtype
        when ``compute`` is true.
    a, b : float
        Kernel parameters.

    Returns
    -------
    numpy.ndarray
        ``grad``'s dtype and shape, C-contiguous.

    Examples
    --------
    >>> backward("tanh", np.ones(2), np.array([0.0, 0.5]), 0.0, 0.0)
    array([1.  , 0.75])
    """
    gc = _widen(grad)
    sc = np.asarray(saved, order="C") if compute else _widen(saved)
    k = _k(gc.dtype)
    with np.errstate(all="ignore"):
        gx = gc * _row(name).derivative(sc, gc.dtype.type(a), gc.dtype.type(b), k)
        return np.asarray(gx, dtype=grad.dtype, order="C")


def mask_backward(grad, kept, on, off):
    """Twin of ``gg_mask_backward``: ``grad * on`` where kept, else ``grad * off``.

    ``off == 0`` is a select, so an infinite gradient where not kept gives 0.

    Examples
    --------
    >>> mask_backward(np.array([np.inf, 3.0]), np.array([False, True]), 2.0, 0.0)
    array([0., 6.])
    """
    gc = _widen(grad)
    k = _k(gc.dtype)
    on_c, off_c = gc.dtype.type(on), gc.dtype.type(off)
    with np.errstate(all="ignore"):
        off_value = k.zero if off_c == k.zero else gc * off_c
        on_value = gc if on_c == k.one else gc * on_c  # g * 1 is g, bit for bit
        gx = _select(np.asarray(kept, dtype=bool).reshape(gc.shape), on_value, off_value, k)
        return np.asarray(gx, dtype=grad.dtype, order="C")


def add_bias(x, bias):
    """``x + bias`` over the last axis, in the compute dtype (not rounded back).

    Examples
    --------
    >>> add_bias(np.ones((2, 2), np.float16), np.array([1, 2], np.float16)).dtype
    dtype('float32')
    """
    return _widen(x) + _widen(bias)


def dropout_forward(x, uniform, p, scale):
    """Twin of ``gg_dropout_forward``: keep where ``uniform >= p`` (in float32).

    Parameters
    ----------
    x : numpy.ndarray
        Input.
    uniform : numpy.ndarray of float32
        One uniform draw in ``[0, 1)`` per element, C order.
    p, scale : float
        Drop probability and ``1 / (1 - p)`` (0 when ``p == 1``).

    Returns
    -------
    y, mask_words : numpy.ndarray

    Examples
    --------
    >>> dropout_forward(np.ones(3), np.array([0.1, 0.6, 0.9], np.float32), 0.5, 2.0)
    (array([0., 2., 2.]), array([6], dtype=uint8))
    """
    xc = _widen(x)
    keep = np.asarray(uniform, dtype=np.float32).reshape(xc.shape) >= np.float32(p)
    with np.errstate(all="ignore"):
        k = _k(xc.dtype)
        y = np.asarray(_select(keep, xc * xc.dtype.type(scale), k.zero, k), dtype=x.dtype, order="C")
    return y, pack_mask(keep)


def pack_mask(kept):
    """``numpy.packbits`` of the C-order flattening, little bit order.

    Examples
    --------
    >>> pack_mask(np.array([[True, False], [False, True]]))
    array([9], dtype=uint8)
    """
    return np.packbits(np.asarray(kept, dtype=bool).ravel(order="C"), bitorder="little")


def unpack_mask(words, shape):
    """Inverse of :func:`pack_mask`.

    Examples
    --------
    >>> unpack_mask(np.array([9], dtype=np.uint8), (4,))
    array([ True, False, False,  True])
    """
    shape = tuple(shape)
    n = int(np.prod(shape, dtype=np.int64))
    bits = np.unpackbits(np.asarray(words, dtype=np.uint8), count=n, bitorder="little")
    return bits.astype(bool).reshape(shape)

"""Reductions: sum, mean, var, amax/amin, prod, logsumexp, norm, cumsum, arg-reductions.

Every reduction takes ``axis`` (None, an int or a tuple) and ``keepdims``;
the Tensor methods also accept PyTorch's ``dim``/``keepdim`` spellings.
"""

from __future__ import annotations

import numpy as np

from ..amp.autocast_mode import autocast_composite
from ..backend import LOW_PRECISION, float32
from ..backend import xp_of as _xp
from ..errors import ShapeError
from .elementwise import absolute, cast, exp, logical_and, logical_or, sign, sqrt, where
from .low_precision import in_float32_for_low_precision
from .registry import defop
from .samples import Away, Distinct, Positive, Sample
from .shape import broadcast_to, reshape


def accumulator(x):
    """dtype to accumulate a reduction of ``x`` in: float16 and bfloat16 sums run in
    float32 (a float16 running sum loses every term below 1/2048 of the total,
    a bfloat16 one below 1/256), as PyTorch's do."""
    return np.float32 if x.dtype in LOW_PRECISION else None


def normalize_axes(axis, ndim, op="reduce"):
    """``axis`` as a sorted tuple of non-negative ints (``None``: all axes)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    result = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ShapeError(f"{op}: dim {a} is out of range for a tensor with {ndim} dimension(s); "
                             f"use a dim in [{-max(ndim, 1)}, {max(ndim, 1) - 1}]")
        result.append(a % max(ndim, 1))
    if len(set(result)) != len(result):
        raise ShapeError(f"{op}: dim {axis} repeats a dimension")
    return tuple(sorted(result))


def kept_shape(shape, axis):
    """Shape of a reduction with keepdims=True."""
    axes = normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def unreduce(g, shape, axis, keepdims):
    """Broadcast the gradient of a reduction back over the reduced axes."""
    if not keepdims:
        g = reshape(g, shape=kept_shape(shape, axis))
    return broadcast_to(g, shape=tuple(shape))


def _count(shape, axis):
    axes = normalize_axes(axis, len(shape))
    count = 1
    for a in axes:
        count *= shape[a]
    return count


_REDUCE_SAMPLES = [Sample((3, 4)), Sample((3, 4), axis=1), Sample((2, 3, 4), axis=(0, 2), keepdims=True),
                   Sample((2, 3), axis=-1, keepdims=True), Sample(())]


def _check_axis(x, axis=None, keepdims=False, **_):
    normalize_axes(axis, x.ndim)


# --------------------------------------------------------------------------
def _sum_forward(x, axis=None, keepdims=False):
    # The method, not numpy.sum: it skips NumPy's Python-level dispatch (hot in every backward).
    result = x.sum(axis=axis, keepdims=keepdims, dtype=accumulator(x))
    return result if result.dtype == x.dtype else result.astype(x.dtype)


reduce_sum = defop(
    "sum", _sum_forward,
    vjp=(lambda g, out, x, axis=None, keepdims=False: unreduce(g, x.shape, axis, keepdims),),
    jvp=lambda t, out, x, axis=None, keepdims=False: reduce_sum(t[0], axis=axis, keepdims=keepdims),
    save=(), check=_check_axis, samples=_REDUCE_SAMPLES, reference=np.sum,
    doc="""Sum of elements.

    PyTorch: ``torch.sum(input, dim, keepdim)`` (``axis``/``keepdims`` are ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    """)


def _sum_to_forward(x, shape):
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    if lead < 0:
        raise ShapeError(f"sum_to: cannot reduce shape {x.shape} to the larger rank shape {shape}")
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    for i, n in enumerate(shape):
        if n != 1 and x.shape[lead + i] != n:
            raise ShapeError(f"sum_to: shape {x.shape} does not broadcast to {shape}")
    result = x.sum(axis=axes, keepdims=True) if axes else x
    return result.reshape(shape)


sum_to = defop(
    "sum_to", _sum_to_forward,
    vjp=(lambda g, out, x, shape: _broadcast(g, x.shape),),
    jvp=lambda t, out, x, shape: sum_to(t[0], shape=shape),
    save=(), samples=[Sample((3, 4), shape=(4,)), Sample((2, 3, 4), shape=(3, 1)), Sample((2, 3), shape=())],
    reference=lambda x, shape: _sum_to_forward(x, shape),
    doc="""Sum over broadcast dimensions so the result has ``shape``: the inverse of broadcasting.

    PyTorch: ``input.sum_to_size(shape)``.

    Parameters
    ----------
    input : Tensor
    shape : tuple of int
    """)


def _broadcast(g, shape):
    from .shape import broadcast_to
    return broadcast_to(g, shape=tuple(shape))


def _mean_forward(x, axis=None, keepdims=False):
    result = x.mean(axis=axis, keepdims=keepdims, dtype=accumulator(x))
    return result if result.dtype == x.dtype else result.astype(x.dtype)


mean = defop(
    "mean", _mean_forward,
    vjp=(lambda g, out, x, axis=None, keepdims=False: unreduce(g, x.shape, axis, keepdims) / _count(x.shape, axis),),
    jvp=lambda t, out, x, axis=None, keepdims=False: mean(t[0], axis=axis, keepdims=keepdims),
    save=(), check=_check_axis, samples=_REDUCE_SAMPLES, reference=np.mean,
    doc="""Mean of elements.

    PyTorch: ``torch.mean(input, dim, keepdim)`` (``axis``/``keepdims`` are ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    """)


def _var_forward(x, axis=None, correction=1, keepdims=False):
    return _xp(x).var(x, axis=axis, ddof=correction, keepdims=keepdims,
                      dtype=accumulator(x)).astype(x.dtype, copy=False)


def _var_vjp(g, out, x, axis=None, correction=1, keepdims=False):
    centred = x - mean(x, axis=axis, keepdims=True)
    return unreduce(g, x.shape, axis, keepdims) * centred * (2.0 / (_count(x.shape, axis) - correction))


def _var_jvp(t, out, x, axis=None, correction=1, keepdims=False):
    centred = x - mean(x, axis=axis, keepdims=True)
    return reduce_sum(centred * t[0], axis=axis, keepdims=keepdims) * (2.0 / (_count(x.shape, axis) - correction))


var = defop(
    "var", _var_forward, vjp=(_var_vjp,), jvp=_var_jvp, check=_check_axis,
    samples=[Sample((3, 4)), Sample((3, 4), axis=1), Sample((2, 3, 4), axis=(0, 2), keepdims=True, correction=0)],
    reference=lambda x, axis=None, correction=1, keepdims=False: np.var(x, axis=axis, ddof=correction,
                                                                         keepdims=keepdims),
    doc="""Variance, divided by ``N - correction``.

    PyTorch: ``torch.var(input, dim, keepdim=keepdim, correction=correction)`` (``axis``/``keepdims`` are
    ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    correction : int
        1 (Bessel's, the default) or 0.
    """)


def std(x, axis=None, correction=1, keepdims=False):
    """Standard deviation, ``sqrt(var)``."""
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


# --------------------------------------------------------------------------
def _extreme_vjp(g, out, x, axis=None, keepdims=False):
    # NOTE: ties share the gradient evenly (PyTorch's amax/amin convention).
    out_kept = out if keepdims else _keep(out, x.shape, axis)
    mask = cast(x == out_kept, g.dtype if hasattr(g, "dtype") else x.dtype)
    count = reduce_sum(mask, axis=axis, keepdims=True)
    return unreduce(g, x.shape, axis, keepdims) * mask / count


def _extreme_jvp(t, out, x, axis=None, keepdims=False):
    out_kept = out if keepdims else _keep(out, x.shape, axis)
    mask = cast(x == out_kept, x.dtype)
    return reduce_sum(t[0] * mask, axis=axis, keepdims=keepdims) / reduce_sum(mask, axis=axis, keepdims=keepdims)


def _keep(value, shape, axis):
    from .shape import reshape
    return reshape(value, shape=kept_shape(shape, axis))


def _check_nonempty(name):
    def check(x, axis=None, keepdims=False):
        normalize_axes(axis, x.ndim, name)
        if x.array.size == 0:
            raise ShapeError(f"{name}: cannot reduce an empty tensor of shape {tuple(x.shape)} "
                             "(the result is undefined); check the input is not empty")
    return check


_EXTREME_SAMPLES = [Sample(Distinct((3, 4))), Sample(Distinct((3, 4)), axis=1),
                    Sample(Distinct((2, 3, 4)), axis=(0, 2), keepdims=True)]

amax = defop(
    "amax", lambda x, axis=None, keepdims=False: _xp(x).amax(x, axis=axis, keepdims=keepdims),
    vjp=(_extreme_vjp,), jvp=_extreme_jvp, save_output=True, check=_check_nonempty("amax"),
    samples=_EXTREME_SAMPLES, reference=np.amax,
    doc="""Largest element (the gradient is shared at ties).

    PyTorch: ``torch.amax(input, dim, keepdim)`` (``axis``/``keepdims`` are ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    """)

amin = defop(
    "amin", lambda x, axis=None, keepdims=False: _xp(x).amin(x, axis=axis, keepdims=keepdims),
    vjp=(_extreme_vjp,), jvp=_extreme_jvp, save_output=True, check=_check_nonempty("amin"),
    samples=_EXTREME_SAMPLES, reference=np.amin,
    doc="""Smallest element (the gradient is shared at ties).

    PyTorch: ``torch.amin(input, dim, keepdim)`` (``axis``/``keepdims`` are ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    """)


def _arg_forward(name):
    def forward(x, axis=None, keepdims=False):
        xp = _xp(x)
        function = xp.argmax if name == "argmax" else xp.argmin
        if axis is None:
            result = function(x.reshape(-1))
            return result.reshape((1,) * x.ndim) if keepdims else result
        return function(x, axis=axis, keepdims=keepdims).astype(np.int64, copy=False)
    return forward


argmax = defop("argmax", _arg_forward("argmax"), differentiable=False, check=_check_nonempty("argmax"),
               samples=[Sample(Distinct((3, 4))), Sample(Distinct((3, 4)), axis=1)], reference=np.argmax,
    doc="""Index of the largest element (of the flattened tensor when ``axis`` is None).

    PyTorch: ``torch.argmax(input, dim, keepdim)`` (``axis``/``keepdims`` are ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    """)
argmin = defop("argmin", _arg_forward("argmin"), differentiable=False, check=_check_nonempty("argmin"),
               samples=[Sample(Distinct((3, 4))), Sample(Distinct((3, 4)), axis=0)], reference=np.argmin,
    doc="""Index of the smallest element (of the flattened tensor when ``axis`` is None).

    PyTorch: ``torch.argmin(input, dim, keepdim)`` (``axis``/``keepdims`` are ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    """)


# --------------------------------------------------------------------------
def _prod_forward(x, axis=None, keepdims=False):
    return _xp(x).prod(x, axis=axis, keepdims=keepdims, dtype=accumulator(x)).astype(x.dtype, copy=False)


def _product_of_others(x, axis):
    """For each element, the product of the other elements along ``axis``
    (exact when the slice holds zeros, where ``prod / x`` would divide by 0)."""
    is_zero = x == 0
    nonzero = where(is_zero, 1.0, x)
    product_nonzero = prod(nonzero, axis=axis, keepdims=True)
    zeros = reduce_sum(cast(is_zero, x.dtype), axis=axis, keepdims=True)
    only_zero = logical_and(is_zero, zeros == 1)
    return where(zeros == 0, product_nonzero / nonzero, where(only_zero, product_nonzero, 0.0))


prod = defop(
    "prod", _prod_forward,
    vjp=(lambda g, out, x, axis=None, keepdims=False:
         unreduce(g, x.shape, axis, keepdims) * _product_of_others(x, axis),),
    jvp=lambda t, out, x, axis=None, keepdims=False:
        reduce_sum(t[0] * _product_of_others(x, axis), axis=axis, keepdims=keepdims),
    check=_check_axis,
    samples=[Sample(Away((3, 4))), Sample(Away((3, 4)), axis=1), Sample(Away((2, 3)), axis=0, keepdims=True)],
    reference=np.prod,
    doc="""Product of elements.

    PyTorch: ``torch.prod(input, dim, keepdim)`` (``axis``/``keepdims`` are ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    """)


@in_float32_for_low_precision
def _logsumexp_forward(x, axis=None, keepdims=False):
    xp = _xp(x)
    peak = xp.amax(x, axis=axis, keepdims=True)
    # NOTE: shifting by the max keeps exp() from overflowing (inputs ~1e4 stay finite);
    # an all -inf slice has a non-finite max, which must not poison the shift.
    peak = xp.where(xp.isfinite(peak), peak, xp.zeros_like(peak))
    shifted = xp.exp(x - peak)
    result = xp.log(xp.sum(shifted, axis=axis, keepdims=True, dtype=accumulator(x))) + peak
    if not keepdims:
        result = result.reshape(tuple(n for i, n in enumerate(x.shape) if i not in normalize_axes(axis, x.ndim)))
    return result.astype(x.dtype, copy=False)


def _softmax_weights(out, x, axis, keepdims):
    out_kept = out if keepdims else _keep(out, x.shape, axis)
    return exp(x - out_kept)


logsumexp = defop(
    "logsumexp", _logsumexp_forward, promote="float",     # integers compute in the default float dtype
    vjp=(lambda g, out, x, axis=None, keepdims=False:
         unreduce(g, x.shape, axis, keepdims) * _softmax_weights(out, x, axis, keepdims),),
    jvp=lambda t, out, x, axis=None, keepdims=False:
        reduce_sum(t[0] * _softmax_weights(out, x, axis, keepdims), axis=axis, keepdims=keepdims),
    save_output=True, check=_check_nonempty("logsumexp"),
    samples=[Sample((3, 4)), Sample((3, 4), axis=1), Sample((2, 3, 4), axis=(0, 2), keepdims=True)],
    reference=lambda x, axis=None, keepdims=False: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
    doc="""``log(sum(exp(input)))``, computed without overflow.

    PyTorch: ``torch.logsumexp(input, dim, keepdim)`` (``axis``/``keepdims`` are ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    """)


# --------------------------------------------------------------------------
def _norm_forward(x, ord=2, axis=None, keepdims=False):
    xp = _xp(x)
    magnitude = xp.abs(x)
    if ord == 2:
        # NOTE: scale by the largest magnitude so squares cannot overflow.
        scale = xp.amax(magnitude, axis=axis, keepdims=True) if x.size else xp.ones((), x.dtype)
        scale = xp.where(scale > 0, scale, xp.ones_like(scale))
        result = xp.sqrt(xp.sum((magnitude / scale) ** 2, axis=axis, keepdims=True, dtype=accumulator(x))) * scale
        if not keepdims:
            axes = normalize_axes(axis, x.ndim)
            result = result.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
        return result.astype(x.dtype, copy=False)
    if ord == float("inf"):
        return xp.amax(magnitude, axis=axis, keepdims=keepdims)
    if ord == 1:
        return xp.sum(magnitude, axis=axis, keepdims=keepdims)
    return (xp.sum(magnitude ** ord, axis=axis, keepdims=keepdims)) ** (1.0 / ord)


def _norm_factor(out, x, ord, axis, keepdims):
    """d norm / d x, with 0 where the norm is 0 (a subgradient, like PyTorch)."""
    out_kept = out if keepdims else _keep(out, x.shape, axis)
    if ord == 1:
        return sign(x)
    if ord == float("inf"):
        magnitude = absolute(x)
        mask = cast(magnitude == out_kept, x.dtype)
        return sign(x) * mask / reduce_sum(mask, axis=axis, keepdims=True)
    safe = where(out_kept == 0, 1.0, out_kept)
    if ord == 2:
        return where(out_kept == 0, 0.0, x / safe)
    magnitude = absolute(x)
    # PyTorch's subgradient 0 at a zero element too (for ord < 1, |0| ** (ord - 1) is inf and sign 0: NaN).
    zero = logical_or(out_kept == 0, magnitude == 0)
    return where(zero, 0.0, sign(x) * where(zero, 1.0, magnitude) ** (ord - 1) / safe ** (ord - 1))


def _check_norm(x, ord=2, axis=None, keepdims=False):
    normalize_axes(axis, x.ndim, "norm")
    if not (ord == float("inf") or (isinstance(ord, (int, float)) and ord > 0)):
        raise ValueError(f"norm: ord={ord!r} is not supported; use a positive number or float('inf')")


norm = defop(
    "norm", _norm_forward,
    vjp=(lambda g, out, x, ord=2, axis=None, keepdims=False:
         unreduce(g, x.shape, axis, keepdims) * _norm_factor(out, x, ord, axis, keepdims),),
    jvp=lambda t, out, x, ord=2, axis=None, keepdims=False:
        reduce_sum(t[0] * _norm_factor(out, x, ord, axis, keepdims), axis=axis, keepdims=keepdims),
    save_output=True, check=_check_norm,
    samples=[Sample((3, 4)), Sample((3, 4), axis=1), Sample(Distinct((3, 4)), ord=1, axis=0),
             Sample(Distinct((3, 4)), ord=float("inf"), axis=1), Sample(Positive((2, 3)), ord=3, keepdims=True)],
    reference=lambda x, ord=2, axis=None, keepdims=False:
        np.sum(np.abs(x) ** ord, axis=axis, keepdims=keepdims) ** (1 / ord)
    if ord != float("inf") else np.amax(np.abs(x), axis=axis, keepdims=keepdims),
    doc="""Vector ``ord``-norm of the elements.

    PyTorch: ``torch.linalg.vector_norm(input, ord, dim, keepdim)`` (``axis``/``keepdims`` are
    ``dim``/``keepdim``).

    Parameters
    ----------
    input : Tensor
    axis : int or tuple of int, optional
        Dimensions to reduce (all by default).
    keepdims : bool
        Keep reduced dimensions with size 1.
    ord : float
        2 by default.
    """)


def _cumsum_forward(x, axis):
    return _xp(x).cumsum(x, axis=axis, dtype=accumulator(x)).astype(x.dtype, copy=False)


def _reverse_cumsum(g, axis):
    from .shape import flip
    return flip(cumsum(flip(g, axis=(axis,)), axis=axis), axis=(axis,))


cumsum = defop(
    "cumsum", _cumsum_forward,
    vjp=(lambda g, out, x, axis: _reverse_cumsum(g, axis),),
    jvp=lambda t, out, x, axis: cumsum(t[0], axis=axis),
    save=(), samples=[Sample((3, 4), axis=1), Sample((3, 4), axis=0), Sample((5,), axis=0)],
    reference=lambda x, axis: np.cumsum(x, axis=axis),
    doc="""Cumulative sum along ``axis``.

    PyTorch: ``torch.cumsum(input, dim)``.

    Parameters
    ----------
    input : Tensor
    axis : int
    """)


@autocast_composite("softmax")   # cross-owner hook: float32 in PyTorch's CUDA autocast list
def softmax(x, axis=-1):
    """``exp(x - logsumexp(x))`` along ``axis`` (stable for large inputs)."""
    if x.dtype in LOW_PRECISION:
        # NOTE: as PyTorch, float16/bfloat16 run in float32 and round once: rounding
        # x - logsumexp to 8 bits first would cost every output a few steps.
        return cast(softmax(cast(x, float32), axis), x.dtype)
    return exp(x - logsumexp(x, axis=axis, keepdims=True))


@autocast_composite("log_softmax")
def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis`` (stable for large inputs)."""
    if x.dtype in LOW_PRECISION:
        return cast(log_softmax(cast(x, float32), axis), x.dtype)
    return x - logsumexp(x, axis=axis, keepdims=True)


__all__ = ["reduce_sum", "sum_to", "mean", "var", "std", "amax", "amin", "argmax", "argmin", "prod", "logsumexp",
           "norm", "cumsum", "softmax", "log_softmax", "normalize_axes", "unreduce"]

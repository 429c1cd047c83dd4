"""More of PyTorch's tensor ops: triangles, masks, rolls, scatters and compositions.

True primitives here are registered (``tril``, ``triu``, ``masked_fill``,
``roll``, ``scatter``, ``scatter_value``, ``nan_to_num``) with their VJP and
JVP, so the op battery checks them; the rest (``repeat_interleave``, ``tile``,
``Tensor.unfold``, ``index_put_``, ``lerp``, ``baddbmm``, ``cdist``) are
compositions of differentiable ops and need no rules of their own.

>>> import gpugrad as gg
>>> gg.tril(gg.ones(3, 3)).sum().item()
6.0
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..amp.autocast_mode import autocast_composite
from ..backend import xp_of as _xp
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from . import elementwise as ew
from . import index as ix
from . import linalg as la
from . import methods
from . import reduce as rd
from . import shape as sh
from .registry import defop
from .samples import Ints, Mask, Sample

__all__ = ["tril", "triu", "masked_fill", "roll", "scatter", "nan_to_num", "repeat_interleave", "tile", "lerp",
           "baddbmm", "cdist"]


class DistinctInts(Ints):
    """Battery spec: an int64 index with distinct values along ``axis`` (scatter's defined case)."""

    def __init__(self, shape, high, axis):
        super().__init__(shape, 0, high)
        self.axis = axis

    def make(self, rng):
        moved = list(self.shape)
        size = moved.pop(self.axis)
        rows = [rng.permutation(self.high)[:size] for _ in range(int(np.prod(moved)) or 1)]
        array = np.stack(rows).reshape(moved + [size]).astype(np.int64)
        return np.moveaxis(array, -1, self.axis)


def _check_matrix(name):
    def check(x, diagonal=0):
        if x.ndim < 2:
            raise ShapeError(f"{name}: input must have at least 2 dimensions, got shape {tuple(x.shape)}")
    return check


# --------------------------------------------------------------------------
# triangles
# --------------------------------------------------------------------------
_tril = defop(
    "tril", lambda x, diagonal=0: _xp(x).tril(x, diagonal),
    vjp=(lambda g, out, x, diagonal=0: _tril(g, diagonal=diagonal),),
    jvp=lambda t, out, x, diagonal=0: _tril(t[0], diagonal=diagonal),
    save=(), check=_check_matrix("tril"),
    samples=[Sample((4, 4)), Sample((3, 5), diagonal=1), Sample((2, 4, 3), diagonal=-1)],
    reference=lambda x, diagonal=0: np.tril(x, diagonal),
    doc="""The lower triangle of the last two dimensions; the rest set to 0.

    PyTorch: ``torch.tril(input, diagonal)``.

    Parameters
    ----------
    input : Tensor
        At least 2-D.
    diagonal : int
        0 keeps the main diagonal, positive values keep more above it, negative fewer.
    """)

_triu = defop(
    "triu", lambda x, diagonal=0: _xp(x).triu(x, diagonal),
    vjp=(lambda g, out, x, diagonal=0: _triu(g, diagonal=diagonal),),
    jvp=lambda t, out, x, diagonal=0: _triu(t[0], diagonal=diagonal),
    save=(), check=_check_matrix("triu"),
    samples=[Sample((4, 4)), Sample((3, 5), diagonal=-1), Sample((2, 4, 3), diagonal=2)],
    reference=lambda x, diagonal=0: np.triu(x, diagonal),
    doc="""The upper triangle of the last two dimensions; the rest set to 0.

    PyTorch: ``torch.triu(input, diagonal)``.

    Parameters
    ----------
    input : Tensor
        At least 2-D.
    diagonal : int
        0 keeps the main diagonal, positive values keep fewer, negative more below it.
    """)


def tril(input, diagonal=0):
    """The lower triangle of the last two dims (elements above ``diagonal`` set to 0).

    >>> import gpugrad as gg
    >>> gg.tril(gg.ones(2, 2)).tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    return _tril(input, diagonal=int(diagonal))


def triu(input, diagonal=0):
    """The upper triangle of the last two dims (elements below ``diagonal`` set to 0).

    >>> import gpugrad as gg
    >>> gg.triu(gg.ones(2, 2)).tolist()
    [[1.0, 1.0], [0.0, 1.0]]
    """
    return _triu(input, diagonal=int(diagonal))


# --------------------------------------------------------------------------
# masked_fill
# --------------------------------------------------------------------------
def _check_masked_fill(x, mask, value):
    if mask.dtype.kind != "b":
        raise DTypeError(f"masked_fill: mask must be a bool tensor, got {mask.dtype}; use mask.bool() or a "
                         "comparison such as (x == 0)")
    try:
        shape = np.broadcast_shapes(tuple(x.shape), tuple(mask.shape))
    except ValueError:
        shape = None
    if shape != tuple(x.shape):
        raise ShapeError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast to the input's shape "
                         f"{tuple(x.shape)}")


def _masked_fill_forward(x, mask, value):
    xp = _xp(x)
    return xp.where(mask, xp.asarray(value, dtype=x.dtype), x)


_masked_fill = defop(
    "masked_fill", _masked_fill_forward,
    vjp=(lambda g, out, x, mask, value: _masked_fill(g, mask, value=0.0), None),
    jvp=lambda t, out, x, mask, value: _masked_fill(t[0], mask, value=0.0),
    save=(1,), check=_check_masked_fill,
    samples=[Sample((3, 4), Mask((3, 4)), value=-1.5), Sample((2, 3, 4), Mask((3, 1)), value=-1e4)],
    reference=lambda x, mask, value: np.where(mask, value, x),
    doc="""``input`` with ``value`` where ``mask`` is true (the mask broadcasts).

    PyTorch: ``input.masked_fill(mask, value)``.

    Parameters
    ----------
    input : Tensor
    mask : Tensor of bool
    value : float
    """)


def _fill_value(value, op):
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(f"{op}: value must be a number or a 0-dim tensor, got shape {tuple(value.shape)}")
        return value.item()
    return value


def masked_fill(input, mask, value):
    """``value`` where ``mask`` is True, ``input`` elsewhere (``mask`` broadcasts to ``input``).

    >>> import gpugrad as gg
    >>> x = gg.zeros(2, 2)
    >>> x.masked_fill(gg.tensor([[True, False], [False, True]]), 5.0).tolist()
    [[5.0, 0.0], [0.0, 5.0]]
    """
    if isinstance(value, Tensor) and value.requires_grad:
        # A value that needs a gradient: the composition carries it (the primitive takes a constant).
        _check_masked_fill(input, mask, value)
        _fill_value(value, "masked_fill")
        return ew.where(mask, ew.cast(value, input.dtype) if value.dtype != input.dtype else value, input)
    return _masked_fill(input, mask, value=_fill_value(value, "masked_fill"))


def masked_fill_(self, mask, value):
    """In-place :func:`masked_fill`."""
    others = (value,) if isinstance(value, Tensor) else ()
    return methods.inplace(self, lambda current: masked_fill(current, mask, value), "masked_fill_", others)


# --------------------------------------------------------------------------
# roll
# --------------------------------------------------------------------------
def _negate(shifts):
    return tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts


_roll = defop(
    "roll", lambda x, shifts, axis=None: _xp(x).roll(x, shifts, axis),
    vjp=(lambda g, out, x, shifts, axis=None: _roll(g, shifts=_negate(shifts), axis=axis),),
    jvp=lambda t, out, x, shifts, axis=None: _roll(t[0], shifts=shifts, axis=axis),
    save=(),
    samples=[Sample((3, 4), shifts=1, axis=1), Sample((3, 4), shifts=-5),
             Sample((2, 3, 4), shifts=(1, 2), axis=(0, 2))],
    reference=lambda x, shifts, axis=None: np.roll(x, shifts, axis),
    doc="""Shift elements cyclically along ``axis`` (the flattened tensor when ``axis`` is None).

    PyTorch: ``torch.roll(input, shifts, dims)``.

    Parameters
    ----------
    input : Tensor
    shifts : int or tuple of int
    axis : int or tuple of int, optional
    """)


def roll(input, shifts, dims=None):
    """Shift elements along ``dims`` cyclically (flattened first when ``dims`` is None).

    >>> import gpugrad as gg
    >>> gg.roll(gg.arange(4), 1).tolist()
    [3, 0, 1, 2]
    """
    if isinstance(shifts, (list, tuple)):
        shifts = tuple(int(s) for s in shifts)
        if not isinstance(dims, (list, tuple)) or len(dims) != len(shifts):
            raise ShapeError(f"roll: shifts {shifts} needs as many dims, got dims={dims}")
        dims = tuple(int(d) for d in dims)
    else:
        shifts = int(shifts)
        if isinstance(dims, (list, tuple)):
            if len(dims) != 1:
                raise ShapeError(f"roll: one shift needs one dim, got dims={tuple(dims)}")
            dims = int(dims[0])
    for d in (dims if isinstance(dims, tuple) else () if dims is None else (dims,)):
        if not -max(input.ndim, 1) <= d < max(input.ndim, 1):
            raise ShapeError(f"roll: dim {d} is out of range for shape {tuple(input.shape)}")
    return _roll(input, shifts=shifts, axis=dims)


# --------------------------------------------------------------------------
# scatter
# --------------------------------------------------------------------------
def _scatter_forward(x, index, src, axis):
    out = x.copy()
    full_index = ix._along_axis(index, axis % x.ndim, _xp(x))
    return ix.assign_into(out, full_index, src[tuple(slice(0, n) for n in index.shape)])  # cross-owner: pipeline


def _scatter_value_forward(x, index, value, axis):
    out = x.copy()
    return ix.assign_into(out, ix._along_axis(index, axis % x.ndim, _xp(x)), value)  # cross-owner: pipeline


def _check_scatter(x, index, src, axis):
    ix._check_gather(x, index, axis)
    if any(i > s for i, s in zip(index.shape, src.shape, strict=False)):
        raise ShapeError(f"scatter: index shape {tuple(index.shape)} is larger than src shape {tuple(src.shape)}")
    if any(i > s for d, (i, s) in enumerate(zip(index.shape, x.shape, strict=True)) if d != axis % x.ndim):
        raise ShapeError(f"scatter: index shape {tuple(index.shape)} is larger than the input's shape "
                         f"{tuple(x.shape)} outside dim {axis}")


def _check_scatter_value(x, index, value, axis):
    ix._check_gather(x, index, axis)


_scatter_value = defop(
    "scatter_value", _scatter_value_forward,
    vjp=(lambda g, out, x, index, value, axis: _scatter_value(g, index, value=0.0, axis=axis), None),
    jvp=lambda t, out, x, index, value, axis: _scatter_value(t[0], index, value=0.0, axis=axis),
    save=(1,), check=_check_scatter_value,
    samples=[Sample((3, 4), Ints((3, 2), 0, 4), value=2.5, axis=1)],
    reference=lambda x, index, value, axis: _scatter_value_forward(x, index, value, axis),
    doc="""``input`` with ``value`` written at ``index`` along ``axis``.

    PyTorch: ``input.scatter(dim, index, value=value)``.

    Parameters
    ----------
    input : Tensor
    index : Tensor of int64
    value : float
    axis : int
    """)

_scatter = defop(
    "scatter", _scatter_forward,
    # Overwritten positions pass no gradient to the input; each src element gets
    # the gradient of the position it was written to (distinct indices: defined).
    vjp=(lambda g, out, x, index, src, axis: _scatter_value(g, index, value=0.0, axis=axis),
         None,
         lambda g, out, x, index, src, axis: ix._pad_to(ix.gather(g, index, axis=axis), src.shape)),
    jvp=lambda t, out, x, index, src, axis: _scatter(t[0], index, t[2], axis=axis),
    save=(1,), check=_check_scatter,
    samples=[Sample((3, 4), DistinctInts((3, 2), 4, 1), (3, 2), axis=1),
             Sample((4, 3), DistinctInts((3, 3), 4, 0), (3, 4), axis=0)],
    reference=lambda x, index, src, axis: _scatter_forward(x, index, src, axis),
    doc="""``input`` with ``src`` written at ``index`` along ``axis`` (indices distinct along ``axis``).

    PyTorch: ``input.scatter(dim, index, src)``.

    Parameters
    ----------
    input : Tensor
    index : Tensor of int64
    src : Tensor
    axis : int
    """)


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """Write ``src`` (a tensor) or ``value`` (a number) into ``input`` at ``index`` along ``dim``.

    ``out[i][index[i][j]][k] = src[i][j][k]`` for ``dim=1``; with repeated
    indices PyTorch leaves which write wins unspecified, and so does this.

    >>> import gpugrad as gg
    >>> gg.zeros(2, 3).scatter(1, gg.tensor([[2], [0]]), 1.0).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    if reduce is not None:
        raise ValueError(f"scatter: reduce={reduce!r} is not supported; use scatter_add (reduce='add') or compute "
                         "the reduction separately")
    if src is None and value is None:
        raise TypeError("scatter: give src (a tensor) or value (a number)")
    dim = int(dim)
    operand = src if src is not None else value
    if isinstance(operand, Tensor):
        if operand.ndim == 0:
            if not operand.requires_grad:
                return _scatter_value(input, index, value=operand.item(), axis=dim)
            operand = methods.expand(operand, tuple(index.shape))    # keeps the value's gradient
        if operand.dtype != input.dtype:
            operand = ew.cast(operand, input.dtype)
        return _scatter(input, index, operand, axis=dim)
    return _scatter_value(input, index, value=operand, axis=dim)


def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
    """In-place :func:`scatter`."""
    others = (src,) if isinstance(src, Tensor) else ()
    return methods.inplace(self, lambda current: scatter(current, dim, index, src, value, reduce=reduce),
                           "scatter_", others)


def index_put(input, indices, values, accumulate=False):
    """``input`` with ``input[indices] = values`` (``+=`` with ``accumulate``, repeats summed).

    >>> import gpugrad as gg
    >>> gg.zeros(3).index_put((gg.tensor([0, 0]),), gg.tensor(1.0), accumulate=True).tolist()
    [2.0, 0.0, 0.0]
    """
    if not isinstance(indices, tuple):
        indices = tuple(indices) if isinstance(indices, list) else (indices,)
    index = methods._index_to_device(methods._normalize_index(indices), input.device)
    if not isinstance(values, Tensor):
        values = Tensor(values, dtype=input.dtype, device=input.device)
    elif values.dtype != input.dtype:
        values = ew.cast(values, input.dtype)
    if not accumulate:
        return ix.index_put(input, values, index=index)
    spread = methods.expand(values, input.array[index].shape)
    return input + ix.index_backward(spread, index=index, shape=tuple(input.shape))


def index_put_(self, indices, values, accumulate=False):
    """In-place :func:`index_put` (``t.index_put_((rows, cols), v)``)."""
    others = (values,) if isinstance(values, Tensor) else ()
    return methods.inplace(self, lambda current: index_put(current, indices, values, accumulate), "index_put_",
                           others)


# --------------------------------------------------------------------------
# nan_to_num
# --------------------------------------------------------------------------
def _nan_to_num_forward(x, nan, posinf, neginf):
    xp = _xp(x)
    info = np.finfo(x.dtype)
    return xp.nan_to_num(x, nan=nan, posinf=info.max if posinf is None else posinf,
                         neginf=info.min if neginf is None else neginf)


_nan_to_num = defop(
    "nan_to_num", _nan_to_num_forward,
    # Replaced elements are constants: gradient flows only where x was finite (PyTorch's rule).
    vjp=(lambda g, out, x, nan, posinf, neginf: ew.where(ew.isfinite(x), g, 0.0),),
    jvp=lambda t, out, x, nan, posinf, neginf: ew.where(ew.isfinite(x), t[0], 0.0),
    samples=[Sample((3, 4), nan=0.0, posinf=None, neginf=None), Sample((2, 3), nan=1.0, posinf=2.0, neginf=-2.0)],
    reference=lambda x, nan, posinf, neginf: np.nan_to_num(x, nan=nan, posinf=np.finfo(x.dtype).max if posinf is None
                                                           else posinf, neginf=np.finfo(x.dtype).min if neginf is None
                                                           else neginf),
    doc="""Replace NaN by ``nan`` and infinities by ``posinf``/``neginf`` (the dtype's extremes when None).

    PyTorch: ``torch.nan_to_num(input, nan, posinf, neginf)``.

    Parameters
    ----------
    input : Tensor
    nan, posinf, neginf : float or None
    """)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """Replace NaN by ``nan`` and +/-inf by ``posinf``/``neginf`` (the dtype's extremes by default).

    >>> import gpugrad as gg
    >>> gg.nan_to_num(gg.tensor([float('nan'), 1.0])).tolist()
    [0.0, 1.0]
    """
    if not backend.is_floating(input.dtype):
        return methods.clone(input)
    return _nan_to_num(input, nan=float(nan), posinf=None if posinf is None else float(posinf),
                       neginf=None if neginf is None else float(neginf))


# --------------------------------------------------------------------------
# compositions
# --------------------------------------------------------------------------
def repeat_interleave(input, repeats, dim=None, *, output_size=None):
    """Repeat each element ``repeats`` times along ``dim`` (the flattened input when ``dim`` is None).

    >>> import gpugrad as gg
    >>> gg.tensor([1, 2]).repeat_interleave(2).tolist()
    [1, 1, 2, 2]
    """
    if dim is None:
        input = sh.reshape(input, shape=(-1,))
        dim = 0
    dim = int(dim) % max(input.ndim, 1)
    size = input.shape[dim]
    if isinstance(repeats, Tensor):
        counts = backend.to_device(repeats.array, backend.CPU).astype(np.int64).reshape(-1)
    else:
        counts = np.asarray(repeats, dtype=np.int64).reshape(-1)
    if counts.size == 1:
        counts = np.repeat(counts, size)
    if counts.size != size or (counts < 0).any():
        raise ShapeError(f"repeat_interleave: repeats must be one non-negative count or one per element of dim {dim} "
                         f"(size {size}), got {counts.size} values")
    positions = np.repeat(np.arange(size), counts)
    index = Tensor._make(backend.to_device(positions, input.device))
    return ix.index_select(input, index, axis=dim)


def tile(input, dims):
    """Repeat the whole tensor ``dims`` times per dimension (missing leading dims count as 1).

    >>> import gpugrad as gg
    >>> gg.tensor([1, 2]).tile((2,)).tolist()
    [1, 2, 1, 2]
    """
    dims = tuple(int(d) for d in (dims if isinstance(dims, (tuple, list)) else (dims,)))
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return methods.repeat(input, *dims)


def unfold(self, dimension, size, step):
    """Every window of ``size`` elements, ``step`` apart, along ``dimension``, as a new last dim.

    >>> import gpugrad as gg
    >>> gg.arange(5.).unfold(0, 2, 2).tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    ndim = max(self.ndim, 1)
    dimension = int(dimension) % ndim
    length = self.shape[dimension] if self.ndim else 1
    if size <= 0 or step <= 0 or size > length:
        raise ShapeError(f"unfold: size {size} and step {step} must be positive and size at most {length} "
                         f"(dim {dimension} of shape {tuple(self.shape)})")
    count = (length - size) // step + 1
    positions = np.arange(count)[:, None] * step + np.arange(size)[None, :]
    index = (slice(None),) * dimension + (backend.to_device(positions, self.device),)
    windows = ix.take(self, index=index)              # (..., count, size, ...)
    order = list(range(windows.ndim))
    order.append(order.pop(dimension + 1))
    return sh.permute(windows, axes=tuple(order))


def lerp(input, end, weight):
    """``input + weight * (end - input)``.

    >>> import gpugrad as gg
    >>> gg.lerp(gg.tensor([0.0]), gg.tensor([10.0]), 0.25).tolist()
    [2.5]
    """
    return input + weight * (end - input)


@autocast_composite("baddbmm")   # cross-owner hook: a lower-precision op in PyTorch's autocast lists
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * (batch1 @ batch2)`` for batches of matrices (``input`` ignored when beta is 0).

    >>> import gpugrad as gg
    >>> gg.baddbmm(gg.zeros(2, 3, 4), gg.ones(2, 3, 5), gg.ones(2, 5, 4)).shape
    Size([2, 3, 4])
    """
    if batch1.ndim != 3 or batch2.ndim != 3:
        raise ShapeError(f"baddbmm: batch1 and batch2 must be 3-D, got {tuple(batch1.shape)} and "
                         f"{tuple(batch2.shape)}")
    product = la.matmul(batch1, batch2)
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product          # PyTorch ignores input (its NaNs too) when beta is 0
    return (input if beta == 1 else input * beta) + product


def cdist(x1, x2, p=2.0, compute_mode=None):
    """Pairwise ``p``-norm distances between the rows of ``x1`` (..., P, M) and ``x2`` (..., R, M).

    >>> import gpugrad as gg
    >>> gg.cdist(gg.tensor([[0.0, 0.0]]), gg.tensor([[3.0, 4.0]])).tolist()
    [[5.0]]
    """
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} must be (..., P, M) and "
                         "(..., R, M) with the same M")
    if p < 0:
        raise ValueError(f"cdist: p must be non-negative, got {p}")
    difference = sh.unsqueeze(x1, axis=-2) - sh.unsqueeze(x2, axis=-3)     # (..., P, R, M)
    if p == 0:
        return rd.reduce_sum(ew.cast(ew.ne(difference, 0.0), difference.dtype), axis=-1)
    # The norm op's gradient is 0 at a zero distance (PyTorch's subgradient), not NaN.
    return rd.norm(difference, ord=float(p), axis=-1)


Tensor.tril = lambda self, diagonal=0: tril(self, diagonal)
Tensor.triu = lambda self, diagonal=0: triu(self, diagonal)
Tensor.masked_fill = masked_fill
Tensor.masked_fill_ = masked_fill_
Tensor.roll = roll
Tensor.scatter = scatter
Tensor.scatter_ = scatter_
Tensor.index_put = index_put
Tensor.index_put_ = index_put_
Tensor.nan_to_num = nan_to_num
Tensor.repeat_interleave = repeat_interleave
Tensor.tile = tile
Tensor.unfold = unfold
Tensor.lerp = lerp
Tensor.baddbmm = lambda self, batch1, batch2, *, beta=1, alpha=1: baddbmm(self, batch1, batch2, beta=beta,
                                                                         alpha=alpha)

"""Indexing: ``t[...]``, gather/take_along_dim, index_select, index_add, scatter_add,
and the functional ``index_put`` behind ``t[idx] = v``.

Scatter-style backward passes accumulate (``numpy.add.at`` / ``cupyx.scatter_add``)
so repeated indices receive the sum of their gradients.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import xp_of as _xp
from ..errors import ShapeError
from .registry import defop
from .samples import Ints, Sample


def scatter_add_into(target, index, values):
    """``target[index] += values`` with repeated indices accumulated, in place."""
    if backend.is_gpu_array(target):
        import cupyx  # noqa: PLC0415 - only with CuPy
        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)
    return target


def is_basic_index(index):
    """True when ``index`` only has ints, slices, None and Ellipsis (a view)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(item is None or item is Ellipsis or isinstance(item, (int, slice, np.integer)) for item in items)


# --------------------------------------------------------------------------
# t[index]
# --------------------------------------------------------------------------
def _index_backward_forward(g, index, shape):
    xp = _xp(g)
    grad = xp.zeros(shape, dtype=g.dtype)
    if is_basic_index(index):
        grad[index] = g
    else:
        scatter_add_into(grad, index, g)
    return grad


index_backward = defop(
    "index_backward", _index_backward_forward,
    vjp=(lambda g, out, grad, index, shape: getitem(g, index=index),),
    jvp=lambda t, out, grad, index, shape: index_backward(t[0], index=index, shape=shape),
    save=(), samples=[Sample((2,), index=(1, slice(0, 2)), shape=(3, 4))],
    reference=lambda g, index, shape: _index_backward_forward(g, index, shape))


def _getitem_forward(x, index):
    out = x[index]
    if isinstance(out, np.generic):
        # NOTE: NumPy answers a full integer index with a scalar copy; with an
        # Ellipsis it gives a 0-d view, as PyTorch does (y[0][0].mul_(2) changes y).
        items = index if isinstance(index, tuple) else (index,)
        if not any(item is Ellipsis for item in items):
            out = x[items + (Ellipsis,)]
    return out


getitem = defop(
    "getitem", _getitem_forward,
    vjp=(lambda g, out, x, index: index_backward(g, index=index, shape=x.shape),),
    jvp=lambda t, out, x, index: getitem(t[0], index=index),
    save=(), view=True,
    samples=[Sample((3, 4), index=(1, slice(None))), Sample((3, 4), index=(slice(None, None, 2), None, 2)),
             Sample((2, 3, 4), index=(Ellipsis, slice(1, 3)))],
    reference=lambda x, index: x[index])

take = defop(
    "index", _getitem_forward,   # advanced indexing: a copy, not a view
    vjp=(lambda g, out, x, index: index_backward(g, index=index, shape=x.shape),),
    jvp=lambda t, out, x, index: take(t[0], index=index),
    save=(),
    samples=[Sample((3, 4), index=(np.array([0, 2, 0]),)), Sample((3, 4), index=(slice(None), np.array([[1, 3], [0, 0]])))],
    reference=lambda x, index: x[index])


# --------------------------------------------------------------------------
# functional t[index] = value
# --------------------------------------------------------------------------
def _index_put_forward(x, value, index):
    out = x.copy()
    out[index] = value
    return out


index_put = defop(
    "index_put", _index_put_forward,
    vjp=(lambda g, out, x, value, index: index_put(g, 0.0, index=index),
         lambda g, out, x, value, index: take(g, index=index)),
    jvp=lambda t, out, x, value, index: index_put(t[0], t[1], index=index),
    save=(),
    samples=[Sample((3, 4), (4,), index=(1,)), Sample((3, 4), (2, 4), index=(np.array([0, 2]),)), Sample((3, 4), 0.5, index=(slice(0, 2), 1))],
    reference=lambda x, value, index: _index_put_forward(x, value, index))


# --------------------------------------------------------------------------
# along one dimension
# --------------------------------------------------------------------------
def _along_axis(index, axis, xp):
    """Full index tuple for ``x[...]`` that picks ``index`` along ``axis``
    and every position elsewhere (what take_along_axis does)."""
    grids = []
    for dim, size in enumerate(index.shape):
        if dim == axis:
            grids.append(index)
        else:
            shape = [1] * index.ndim
            shape[dim] = size
            grids.append(xp.arange(size).reshape(shape))
    return tuple(grids)


def _check_gather(x, index, axis):
    if index.array.dtype.kind not in "iu":
        from ..errors import DTypeError
        raise DTypeError(f"gather: index must be an integer tensor, got {index.dtype}; use index.long()")
    if index.ndim != x.ndim:
        raise ShapeError(f"gather: index has {index.ndim} dimensions but input has {x.ndim} "
                         f"(shapes {tuple(index.shape)} and {tuple(x.shape)}); they must match")
    _check_index_range("gather", index, x.shape[axis], axis)


def _check_index_range(op, index, size, axis):
    """Indices must lie in [-size, size) along ``axis``: say which values fall outside."""
    if index.array.size and (int(index.array.max()) >= size or int(index.array.min()) < -size):
        raise IndexError(f"{op}: index out of range for dim {axis} of size {size} "
                         f"(got values in [{int(index.array.min())}, {int(index.array.max())}])")


def _gather_forward(x, index, axis):
    return _xp(x).take_along_axis(x, index, axis=axis)


def _scatter_add_forward(x, index, src, axis):
    xp = _xp(x)
    out = x.copy()
    full_index = _along_axis(index, axis % x.ndim, xp)
    scatter_add_into(out, full_index, src[tuple(slice(0, n) for n in index.shape)])
    return out


gather = defop(
    "gather", _gather_forward,
    vjp=(lambda g, out, x, index, axis: scatter_add(_zeros_like(g, x.shape), index, g, axis=axis), None),
    jvp=lambda t, out, x, index, axis: gather(t[0], index, axis=axis),
    save=(1,), check=_check_gather,
    samples=[Sample((3, 4), Ints((3, 2), 0, 4), axis=1), Sample((3, 4), Ints((5, 4), 0, 3), axis=0)],
    reference=lambda x, index, axis: np.take_along_axis(x, index, axis=axis))


def _zeros_like(g, shape):
    """Zeros of ``shape`` like ``g`` (a constant: raw array or tensor)."""
    from ..tensor import Tensor
    xp = _xp(g.array if isinstance(g, Tensor) else g)
    zeros = xp.zeros(shape, dtype=g.dtype)
    return Tensor._make(zeros) if isinstance(g, Tensor) else zeros


def _check_scatter(x, index, src, axis):
    _check_gather(x, index, axis)
    if any(i > s for i, s in zip(index.shape, src.shape)):
        raise ShapeError(f"scatter_add: index shape {tuple(index.shape)} is larger than src shape "
                         f"{tuple(src.shape)}")


scatter_add = defop(
    "scatter_add", _scatter_add_forward,
    vjp=(lambda g, out, x, index, src, axis: g,
         None,
         lambda g, out, x, index, src, axis: _pad_to(gather(g, index, axis=axis), src.shape)),
    jvp=lambda t, out, x, index, src, axis: scatter_add(t[0], index, t[2], axis=axis),
    save=(1,), check=_check_scatter,
    samples=[Sample((3, 4), Ints((3, 2), 0, 4), (3, 2), axis=1), Sample((3, 4), Ints((5, 4), 0, 3), (5, 4), axis=0)],
    reference=lambda x, index, src, axis: _scatter_add_forward(x.copy(), index, src, axis))


def _pad_to(value, shape):
    """Zero-pad ``value`` up to ``shape`` (src may be larger than index)."""
    if tuple(value.shape) == tuple(shape):
        return value
    from .shape import pad_constant
    return pad_constant(value, pad_width=tuple((0, s - v) for v, s in zip(value.shape, shape)))


def _check_index_select(x, index, axis):
    if index.array.dtype.kind not in "iu" or index.ndim != 1:
        raise ShapeError(f"index_select: index must be a 1-D integer tensor, got shape {tuple(index.shape)} "
                         f"{index.dtype}")
    _check_index_range("index_select", index, x.shape[axis], axis)


index_select = defop(
    "index_select", lambda x, index, axis: _xp(x).take(x, index, axis=axis),
    vjp=(lambda g, out, x, index, axis: index_add(_zeros_like(g, x.shape), index, g, axis=axis), None),
    jvp=lambda t, out, x, index, axis: index_select(t[0], index, axis=axis),
    save=(1,), check=_check_index_select,
    samples=[Sample((4, 3), Ints((5,), 0, 4), axis=0), Sample((3, 4), Ints((2,), 0, 4), axis=1)],
    reference=lambda x, index, axis: np.take(x, index, axis=axis))


def _index_add_forward(x, index, source, axis, alpha=1.0):
    xp = _xp(x)
    out = x.copy()
    moved_out = xp.moveaxis(out, axis, 0)      # a view: writes land in ``out``
    moved_source = xp.moveaxis(source, axis, 0)
    scatter_add_into(moved_out, (index,), moved_source * alpha if alpha != 1 else moved_source)
    return out


def _check_index_add(x, index, source, axis, alpha=1.0):
    _check_index_select(x, index, axis)
    expected = list(x.shape)
    expected[axis] = index.shape[0]
    if tuple(source.shape) != tuple(expected):
        raise ShapeError(f"index_add: source has shape {tuple(source.shape)} but input {tuple(x.shape)} with "
                         f"{index.shape[0]} indices along dim {axis} needs {tuple(expected)}")


index_add = defop(
    "index_add", _index_add_forward,
    vjp=(lambda g, out, x, index, source, axis, alpha=1.0: g,
         None,
         lambda g, out, x, index, source, axis, alpha=1.0: index_select(g, index, axis=axis) * alpha),
    jvp=lambda t, out, x, index, source, axis, alpha=1.0: index_add(t[0], index, t[2], axis=axis, alpha=alpha),
    save=(1,), check=_check_index_add,
    samples=[Sample((4, 3), Ints((5,), 0, 4), (5, 3), axis=0), Sample((3, 4), Ints((2,), 0, 4), (3, 2), axis=1, alpha=2.0)],
    reference=lambda x, index, source, axis, alpha=1.0: _index_add_forward(x, index, source, axis, alpha))

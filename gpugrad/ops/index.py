"""Indexing: ``t[...]``, gather/take_along_dim, index_select, index_add, scatter_add,
and the functional ``index_put`` behind ``t[idx] = v``.

Scatter-style backward passes accumulate (``numpy.add.at`` / ``cupyx.scatter_add``)
so repeated indices receive the sum of their gradients.  On CuPy in
deterministic mode (``gg.use_deterministic_algorithms(True)``) the sum, and
the assignment with repeated indices, run in a fixed order instead of with
atomics (:func:`fixed_order_scatter_add`, :func:`fixed_order_assign`).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import xp_of as _xp
from ..determinism import _MODE as _DETERMINISTIC
from ..errors import ShapeError
from .registry import defop
from .samples import Ints, Sample


def scatter_add_into(target, index, values):
    """``target[index] += values`` with repeated indices accumulated, in place.

    On CuPy: atomics (``cupyx.scatter_add``), or in deterministic mode the
    fixed-order :func:`fixed_order_scatter_add`.
    """
    if backend.is_gpu_array(target):
        if _DETERMINISTIC[0]:
            return fixed_order_scatter_add(target, index, values)
        import cupyx  # noqa: PLC0415 - only with CuPy
        cupyx.scatter_add(target, index, values)
    elif not _numpy_row_scatter_add(target, index, values):
        np.add.at(target, index, values)
    return target


#: Fewest values per row for which :func:`_numpy_row_scatter_add` beats ``numpy.add.at``.
_ROW_SCATTER_MIN_ROW = 8


def _numpy_row_scatter_add(target, index, values):
    """``numpy.add.at(target, index, values)`` for whole rows (an embedding's backward), faster,
    with the same bits; returns False, doing nothing, when the case is not that one.

    ``numpy.add.at`` adds one element at a time, in index order.  For a 1-D integer
    index on axis 0 whose rows are long, the rows are put in (occurrence rank, row)
    order with stable sorts, and level k adds every row's k-th occurrence at once
    (distinct rows within a level, so a plain fancy-indexed add): the same
    sequence of additions per element, ``((t + v0) + v1) + ...``, in as many
    vectorised steps as the most repeated row has occurrences.  (``add.reduceat``
    would be one step, but does not add front to back.)  Out-of-range indices,
    and rows repeated more than _ROW_SCATTER_MAX_LEVELS times, are left to
    ``add.at`` (which raises the IndexError).

    Examples
    --------
    >>> import numpy as np
    >>> target = np.ones((3, 8))
    >>> _numpy_row_scatter_add(target, (np.array([2, 0, 2]),), np.arange(24.0).reshape(3, 8))
    True
    >>> target[:, 0].tolist()
    [9.0, 1.0, 17.0]
    """
    rows_index = index[0] if isinstance(index, tuple) and len(index) == 1 else index
    if not (target.__class__ is np.ndarray and rows_index.__class__ is np.ndarray and rows_index.ndim == 1
            and rows_index.dtype.kind in "iu" and target.ndim >= 2 and target.flags.c_contiguous
            and values.__class__ is np.ndarray and values.dtype == target.dtype
            and values.shape == rows_index.shape + target.shape[1:]
            and rows_index.size > 1 and target[0].size >= _ROW_SCATTER_MIN_ROW):
        return False
    count = target.shape[0]
    low, high = int(rows_index.min()), int(rows_index.max())
    if low < -count or high >= count:
        return False
    if low < 0:
        rows_index = np.where(rows_index < 0, rows_index + count, rows_index)
    by_row = np.argsort(rows_index, kind="stable")
    ordered = rows_index[by_row]
    boundary = np.empty(ordered.shape, dtype=bool)
    boundary[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=boundary[1:])
    starts = np.flatnonzero(boundary)
    rank = np.arange(ordered.size) - starts[np.cumsum(boundary) - 1]     # k: the k-th occurrence of its row
    per_level = np.bincount(rank)
    if per_level.size > _ROW_SCATTER_MAX_LEVELS:
        return False
    by_level = np.argsort(rank, kind="stable")       # level by level, rows ascending within a level
    positions = ordered[by_level]
    rows = values.reshape(rows_index.size, -1)[by_row[by_level]]
    flat_target = target.reshape(count, -1)
    end = 0
    for size in per_level.tolist():
        start, end = end, end + size
        flat_target[positions[start:end]] += rows[start:end]
    return True


#: Most occurrences of one row for which the level-by-level add beats ``numpy.add.at``.
_ROW_SCATTER_MAX_LEVELS = 64


def assign_into(target, index, values):
    """``target[index] = values`` in place; in deterministic mode on CuPy the last of repeated positions wins."""
    if _DETERMINISTIC[0] and backend.is_gpu_array(target) and not is_basic_index(index):
        return fixed_order_assign(target, index, values)
    target[index] = values
    return target


def _keys_and_rows(target, index, values):
    """The indexed region as ``(keys, rows, unravel)``: one flat target position per row of values.

    When ``index`` is integer arrays for the leading dimensions only, a row is
    everything after them (an embedding row: one sort key per row); otherwise a
    row is one element.  The keys come from indexing a grid of positions with
    ``index`` itself, so bounds and negative indices behave as in the indexing
    they replace.  ``unravel(keys)`` turns keys back into an index of ``target``.
    """
    xp = _xp(target)
    values = xp.asarray(values)
    items = index if isinstance(index, tuple) else (index,)
    leading = 0
    for item in items:
        if not (hasattr(item, "dtype") and hasattr(item, "shape") and item.dtype.kind in "iu"):
            break
        leading += 1
    if 0 < leading <= target.ndim and all(isinstance(item, slice) and item == slice(None)
                                          for item in items[leading:]):
        shape, grid_index = tuple(target.shape[:leading]), tuple(items[:leading])
    else:
        shape, grid_index, leading = tuple(target.shape), index, target.ndim
    keys = xp.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)[grid_index]
    region = tuple(keys.shape) + tuple(target.shape[leading:])
    rows = xp.broadcast_to(values, region).reshape(keys.size, -1) if keys.size else None

    def unravel(flat):
        return tuple(xp.unravel_index(flat, shape))
    return keys.reshape(-1), rows, unravel


def _sorted_runs(keys, xp):
    """Stable sort of ``keys``: ``(order, run_starts, run_of_each)`` for the runs of equal keys."""
    order = xp.argsort(keys, kind="stable")
    ordered = keys[order]
    boundary = xp.ones(ordered.shape, dtype=bool)
    boundary[1:] = ordered[1:] != ordered[:-1]
    starts = xp.flatnonzero(boundary)
    return order, ordered, starts, xp.cumsum(boundary) - 1


def fixed_order_scatter_add(target, index, values):
    """``target[index] += values`` summing repeated positions in an order fixed by the positions alone.

    A stable sort groups equal positions (keeping their order of appearance);
    then each group is summed pairwise, ``(v0 + v1) + (v2 + v3) ...`` level by
    level, and the group sums are added to their (now distinct) positions.  No
    atomics, so every run gives the same bits.  Works on NumPy and CuPy.

    Examples
    --------
    >>> import numpy as np
    >>> from gpugrad.ops.index import fixed_order_scatter_add
    >>> fixed_order_scatter_add(np.zeros(3), (np.array([0, 2, 0, 0]),), np.array([1.0, 2.0, 3.0, 4.0])).tolist()
    [8.0, 0.0, 2.0]
    """
    xp = _xp(target)
    keys, rows, unravel = _keys_and_rows(target, index, values)
    if keys.size == 0:
        return target
    order, ordered, starts, run = _sorted_runs(keys, xp)
    rows = rows[order]
    rank = xp.arange(keys.size, dtype=np.int64) - starts[run]
    while rows.shape[0] > starts.shape[0]:      # sizes are known on the host: no sync for the test
        kept = xp.flatnonzero(rank % 2 == 0)
        partner = xp.minimum(kept + 1, rows.shape[0] - 1)
        paired = (kept + 1 < rows.shape[0]) & (run[partner] == run[kept])
        rows = xp.where(paired[:, None], rows[kept] + rows[partner], rows[kept])
        run, rank = run[kept], rank[kept] // 2
    region = target[unravel(ordered[starts])]
    target[unravel(ordered[starts])] = region + rows.reshape(region.shape).astype(target.dtype, copy=False)
    return target


def fixed_order_assign(target, index, values):
    """``target[index] = values`` where, of repeated positions, the last one in index order wins (as NumPy).

    Examples
    --------
    >>> import numpy as np
    >>> from gpugrad.ops.index import fixed_order_assign
    >>> fixed_order_assign(np.zeros(3), (np.array([1, 1, 0]),), np.array([5.0, 6.0, 7.0])).tolist()
    [7.0, 6.0, 0.0]
    """
    xp = _xp(target)
    keys, rows, unravel = _keys_and_rows(target, index, values)
    if keys.size == 0:
        return target
    order, ordered, starts, _ = _sorted_runs(keys, xp)
    ends = xp.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = keys.size - 1
    position = unravel(ordered[ends])
    target[position] = rows[order[ends]].reshape(target[position].shape).astype(target.dtype, copy=False)
    return target


def is_basic_index(index):
    """True when ``index`` only has ints, slices, None and Ellipsis (a view).

    A bool is not basic: it indexes a new dimension of size 1 (True) or 0
    (False) as an advanced index does, and gives a copy.
    """
    items = index if isinstance(index, tuple) else (index,)
    return all(item is None or item is Ellipsis or (isinstance(item, (int, slice, np.integer))
                                                    and not isinstance(item, bool)) for item in items)


def sequence_as_tuple(index):
    """True for a list PyTorch reads as a tuple of indices: ``x[[[0, 1]]]`` is ``x[[0, 1]]``.

    NumPy dropped this legacy rule; PyTorch (with a deprecation warning) still
    applies it to a list of fewer than 32 items holding a tensor, an array, a
    sequence, a slice, Ellipsis or None.
    """
    if not isinstance(index, list) or len(index) >= 32:
        return False
    return any(item is None or item is Ellipsis or isinstance(item, (list, tuple, slice, np.ndarray))
               or (hasattr(item, "array") and hasattr(item, "grad_fn")) for item in index)


def _is_advanced(item):
    return isinstance(item, (bool, np.bool_)) or (hasattr(item, "dtype") and getattr(item, "ndim", 0) > 0)


def select_before_advanced(index, ndim):
    """PyTorch's reading of a key with both ints and advanced indices, as two NumPy keys, or None.

    PyTorch applies the ints (selects), slices, None and Ellipsis first, as a
    view, and only then the advanced indices to that view, so an int never
    counts as an advanced index: ``x[0, :, idx]`` is ``x[0][:, idx]``, shape
    ``(3, 2)`` for ``x`` of shape ``(2, 3, 4)``, where NumPy moves the indexed
    dimension to the front, ``(2, 3)``.  Without ints the two agree, and so
    does a key with no advanced index: None is returned, the key serves as is.

    Otherwise ``(select, advanced)``: ``x[index]`` in PyTorch is
    ``x[select][advanced]`` in NumPy, ``select`` a basic key (a view) and
    ``advanced`` integer arrays and full slices only.  A bool becomes what
    PyTorch makes of it, a new dimension indexed by ``[0]`` (True) or ``[]``
    (False).  ``index`` is normalised (integer arrays, no masks, ints).
    """
    items = index if isinstance(index, tuple) else (index,)
    if not any(isinstance(item, (int, np.integer)) and not isinstance(item, bool) for item in items) or not any(
            _is_advanced(item) for item in items):
        return None
    consumed = sum(1 for item in items if not (item is None or item is Ellipsis or isinstance(item, (bool, np.bool_))))
    select, advanced = [], []
    for item in items:
        if item is Ellipsis:
            select.append(item)
            advanced.extend([slice(None)] * max(ndim - consumed, 0))
        elif item is None:
            select.append(None)
            advanced.append(slice(None))
        elif isinstance(item, (bool, np.bool_)):
            select.append(None)
            advanced.append(np.zeros(1 if item else 0, dtype=np.int64))
        elif isinstance(item, (int, np.integer)):
            select.append(item)
        elif isinstance(item, slice):
            select.append(item)
            advanced.append(slice(None))
        else:
            select.append(slice(None))
            advanced.append(item)
    while advanced and isinstance(advanced[-1], slice):
        advanced.pop()
    return tuple(select), tuple(advanced)


# --------------------------------------------------------------------------
# t[index]
# --------------------------------------------------------------------------
def _raw_index_item(item):
    """An index item as NumPy/CuPy sees it (Tensors and lists become arrays)."""
    if hasattr(item, "array") and hasattr(item, "grad_fn"):      # a Tensor (no import cycle)
        return item.array
    if isinstance(item, list):
        try:
            return np.asarray(item)
        except (ValueError, TypeError):
            return item
    return item


def _is_mask(item):
    # uint8 too: PyTorch reads a uint8 index as a mask (deprecated, with a warning)
    return hasattr(item, "dtype") and hasattr(item, "shape") and item.dtype in (np.bool_, np.uint8)


_PLAIN_INDEX_TYPES = (int, slice)


def check_boolean_masks(shape, index, op="index"):
    """Refuse a boolean mask whose shape differs from the dimensions it indexes.

    ``nonzero()`` would otherwise turn a too-short mask into valid integer
    indices and pick the wrong elements without a word (NumPy and PyTorch
    raise IndexError).
    """
    items = index if isinstance(index, tuple) else (index,)
    for item in items:
        if not (item is None or item is Ellipsis or item.__class__ in _PLAIN_INDEX_TYPES):
            break
    else:
        return             # ints and slices only: the common case costs one loop
    items = [_raw_index_item(item) for item in items]
    if not any(_is_mask(item) for item in items):
        return

    def dims_used(item):
        if item is None or item is Ellipsis or isinstance(item, bool):
            return 0
        return item.ndim if _is_mask(item) else 1
    ellipsis_dims = max(len(shape) - sum(dims_used(item) for item in items), 0)
    dim = 0
    for position, item in enumerate(items):
        if item is Ellipsis:
            dim += ellipsis_dims
            continue
        if _is_mask(item):
            indexed = tuple(shape[dim:dim + item.ndim])
            if indexed != tuple(item.shape):
                raise IndexError(f"{op}: the shape of the mask {list(item.shape)} at index {position} does not "
                                 f"match the shape of the indexed tensor {list(shape)} at dim {dim} (sizes "
                                 f"{list(indexed)} there); a boolean mask must have exactly the sizes of the "
                                 "dimensions it selects")
        dim += dims_used(item)


def check_setitem_value(array, index, value):
    """``t[index] = value``: ``value`` must broadcast to the selected region's
    shape (leading size-1 dimensions of ``value`` may be dropped, as in NumPy and
    PyTorch); otherwise a ShapeError naming both shapes, before anything is written."""
    if isinstance(value, (int, float, bool, np.generic)):
        return
    value_shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
    if is_basic_index(index):
        target = array[index].shape
    else:
        xp = _xp(array)
        target = xp.broadcast_to(xp.zeros((), dtype=bool), array.shape)[index].shape
    trimmed = tuple(value_shape)
    while len(trimmed) > len(target) and trimmed[0] == 1:
        trimmed = trimmed[1:]
    fits = len(trimmed) <= len(target) and all(v in (1, t) for v, t in zip(reversed(trimmed), reversed(target)))
    if not fits:
        raise ShapeError(f"__setitem__: a value of shape {tuple(value_shape)} cannot be assigned to the indexed "
                         f"region of shape {tuple(target)} (tensor shape {tuple(array.shape)}); the value must "
                         "broadcast to the region's shape")


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
    reference=lambda g, index, shape: _index_backward_forward(g, index, shape),
    doc="""Zeros of ``shape`` with ``input`` added at ``index`` (repeats summed): the gradient of indexing.

    PyTorch: the backward of ``x[index]``.

    Parameters
    ----------
    input : Tensor
    index : tuple
    shape : tuple of int
    """)


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
    reference=lambda x, index: x[index],
    doc="""Basic indexing ``input[index]`` (ints, slices, None, Ellipsis): a view.

    PyTorch: ``input[index]``.

    Parameters
    ----------
    input : Tensor
    index : tuple
    """)

take = defop(
    "index", _getitem_forward,   # advanced indexing: a copy, not a view
    vjp=(lambda g, out, x, index: index_backward(g, index=index, shape=x.shape),),
    jvp=lambda t, out, x, index: take(t[0], index=index),
    save=(),
    samples=[Sample((3, 4), index=(np.array([0, 2, 0]),)),
             Sample((3, 4), index=(slice(None), np.array([[1, 3], [0, 0]])))],
    reference=lambda x, index: x[index],
    doc="""Advanced indexing ``input[index]`` with integer arrays (a copy).

    PyTorch: ``input[index]`` with index tensors.

    Parameters
    ----------
    input : Tensor
    index : tuple of arrays and slices
    """)


# --------------------------------------------------------------------------
# functional t[index] = value
# --------------------------------------------------------------------------
def _index_put_forward(x, value, index):
    out = x.copy()
    if _DETERMINISTIC[0]:
        return assign_into(out, index, value)
    out[index] = value
    return out


index_put = defop(
    "index_put", _index_put_forward,
    vjp=(lambda g, out, x, value, index: index_put(g, 0.0, index=index),
         lambda g, out, x, value, index: take(g, index=index)),
    jvp=lambda t, out, x, value, index: index_put(t[0], t[1], index=index),
    save=(),
    samples=[Sample((3, 4), (4,), index=(1,)), Sample((3, 4), (2, 4), index=(np.array([0, 2]),)),
             Sample((3, 4), 0.5, index=(slice(0, 2), 1))],
    reference=lambda x, value, index: _index_put_forward(x, value, index),
    doc="""``input`` with ``input[index] = values`` (out of place; values broadcast).

    PyTorch: ``input.index_put(indices, values)``.

    Parameters
    ----------
    input : Tensor
    values : Tensor or number
    index : tuple
    """)


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


def _check_gather(x, index, axis, op="gather"):
    """PyTorch's gather rules: an integer index with the input's number of
    dimensions, no larger than the input outside ``axis``, values in [0, size)."""
    if index.array.dtype.kind not in "iu":
        from ..errors import DTypeError
        raise DTypeError(f"{op}: index must be an integer tensor, got {index.dtype}; use index.long()")
    if index.ndim != x.ndim:
        raise ShapeError(f"{op}: index has {index.ndim} dimensions but input has {x.ndim} "
                         f"(shapes {tuple(index.shape)} and {tuple(x.shape)}); they must match")
    for dim, (n, size) in enumerate(zip(index.shape, x.shape)):
        if dim != axis and n > size:
            raise ShapeError(f"{op}: index of shape {tuple(index.shape)} is larger than input of shape "
                             f"{tuple(x.shape)} in dim {dim} ({n} > {size}); only dim {axis} may differ")
    check_index_range(op, index.array, x.shape[axis], axis)


def check_index_range(op, index, size, axis, allow_negative=False):
    """Raise an IndexError naming ``op``, a bad value and the valid range when an
    index (a raw array) falls outside [0, size) ([-size, size) with ``allow_negative``).

    PyTorch's gather, scatter_add, index_select, index_add and embedding refuse
    negative indices; NumPy would silently wrap them, hence this check.
    """
    if not index.size:
        return
    low = -size if allow_negative else 0
    smallest, largest = int(index.min()), int(index.max())
    if smallest >= low and largest < size:
        return
    bad = smallest if smallest < low else largest
    where = f"dim {axis}" if axis is not None else "the flattened input"
    raise IndexError(f"{op}: index {bad} is out of range for {where} of size {size}; valid indices are "
                     f"in [{low}, {size - 1}]")


def _leading_block(x, index, axis):
    """``x`` cut to ``index``'s extent outside ``axis``: PyTorch's gather reads only
    ``x[i][index[i][j]]`` for the positions of ``index`` (NumPy would broadcast a
    size-1 index dimension instead)."""
    if all(n == size or dim == axis for dim, (n, size) in enumerate(zip(index.shape, x.shape))):
        return x
    return x[tuple(slice(None) if dim == axis else slice(0, n) for dim, n in enumerate(index.shape))]


def _gather_forward(x, index, axis):
    return _xp(x).take_along_axis(_leading_block(x, index, axis), index, axis=axis)


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
    reference=lambda x, index, axis: np.take_along_axis(_leading_block(x, index, axis), index, axis=axis),
    doc="""Values of ``input`` picked by ``index`` along ``axis``.

    PyTorch: ``torch.gather(input, dim, index)``.

    Parameters
    ----------
    input : Tensor
    index : Tensor of int64
    axis : int
    """)


def _zeros_like(g, shape):
    """Zeros of ``shape`` like ``g`` (a constant: raw array or tensor)."""
    from ..tensor import Tensor
    xp = _xp(g.array if isinstance(g, Tensor) else g)
    zeros = xp.zeros(shape, dtype=g.dtype)
    return Tensor._make(zeros) if isinstance(g, Tensor) else zeros


def _check_scatter(x, index, src, axis):
    _check_gather(x, index, axis, op="scatter_add")
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
    reference=lambda x, index, src, axis: _scatter_add_forward(x.copy(), index, src, axis),
    doc="""``input`` with ``src`` added at ``index`` along ``axis`` (repeats summed).

    PyTorch: ``input.scatter_add(dim, index, src)``.

    Parameters
    ----------
    input : Tensor
    index : Tensor of int64
    src : Tensor
    axis : int
    """)


def _pad_to(value, shape):
    """Zero-pad ``value`` up to ``shape`` (src may be larger than index)."""
    if tuple(value.shape) == tuple(shape):
        return value
    from .shape import pad_constant
    return pad_constant(value, pad_width=tuple((0, s - v) for v, s in zip(value.shape, shape)))


def _check_index_select(x, index, axis, op="index_select"):
    if index.array.dtype.kind not in "iu" or index.ndim != 1:
        raise ShapeError(f"{op}: index must be a 1-D integer tensor, got shape {tuple(index.shape)} "
                         f"{index.dtype}")
    check_index_range(op, index.array, x.shape[axis], axis)


index_select = defop(
    "index_select", lambda x, index, axis: _xp(x).take(x, index, axis=axis),
    vjp=(lambda g, out, x, index, axis: index_add(_zeros_like(g, x.shape), index, g, axis=axis), None),
    jvp=lambda t, out, x, index, axis: index_select(t[0], index, axis=axis),
    save=(1,), check=_check_index_select,
    samples=[Sample((4, 3), Ints((5,), 0, 4), axis=0), Sample((3, 4), Ints((2,), 0, 4), axis=1)],
    reference=lambda x, index, axis: np.take(x, index, axis=axis),
    doc="""The entries of ``input`` at ``index`` along ``axis``.

    PyTorch: ``torch.index_select(input, dim, index)``.

    Parameters
    ----------
    input : Tensor
    index : Tensor of int64, 1-D
    axis : int
    """)


def _index_add_forward(x, index, source, axis, alpha=1.0):
    xp = _xp(x)
    out = x.copy()
    moved_out = xp.moveaxis(out, axis, 0)      # a view: writes land in ``out``
    moved_source = xp.moveaxis(source, axis, 0)
    scatter_add_into(moved_out, (index,), moved_source * alpha if alpha != 1 else moved_source)
    return out


def _check_index_add(x, index, source, axis, alpha=1.0):
    _check_index_select(x, index, axis, op="index_add")
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
    samples=[Sample((4, 3), Ints((5,), 0, 4), (5, 3), axis=0), Sample((3, 4), Ints((2,), 0, 4), (3, 2), axis=1,
                                                                      alpha=2.0)],
    reference=lambda x, index, source, axis, alpha=1.0: _index_add_forward(x, index, source, axis, alpha),
    doc="""``input`` with ``alpha * source`` added at ``index`` along ``axis`` (repeats summed).

    PyTorch: ``input.index_add(dim, index, source, alpha=alpha)``.

    Parameters
    ----------
    input : Tensor
    index : Tensor of int64, 1-D
    source : Tensor
    axis : int
    alpha : float
    """)

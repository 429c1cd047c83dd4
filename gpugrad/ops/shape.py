"""Shape ops: reshape, broadcast, transpose/permute, squeeze/unsqueeze, concatenate,
stack, flip, tile (``repeat``), pad.  Views share their input's version counter."""

from __future__ import annotations

import numpy as np

from ..backend import xp_of as _xp
from ..errors import ShapeError
from .registry import defop
from .samples import Sample


def _check_reshape(x, shape):
    size = x.array.size
    known = 1
    unknown = 0
    for n in shape:
        if n == -1:
            unknown += 1
        elif n < 0:
            raise ShapeError(f"reshape: invalid size {n} in shape {tuple(shape)}; sizes must be >= 0 or -1")
        else:
            known *= n
    if unknown > 1:
        raise ShapeError(f"reshape: only one dimension can be -1, got shape {tuple(shape)}")
    if (unknown == 0 and known != size) or (unknown == 1 and (known == 0 or size % known)):
        raise ShapeError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} ({size} elements) into "
                         f"shape {tuple(shape)}; the number of elements must stay the same")


reshape = defop(
    "reshape", lambda x, shape: x.reshape(shape),
    vjp=(lambda g, out, x, shape: reshape(g, shape=x.shape),),
    jvp=lambda t, out, x, shape: reshape(t[0], shape=shape),
    save=(), view=True, check=_check_reshape,
    samples=[Sample((3, 4), shape=(4, 3)), Sample((2, 3, 4), shape=(6, -1)), Sample((), shape=(1, 1))],
    reference=lambda x, shape: x.reshape(shape),
    doc="""The same elements in another shape (a view when the memory allows); one size may be -1.

    PyTorch: ``torch.reshape(input, shape)``.

    Parameters
    ----------
    input : Tensor
    shape : tuple of int
    """)


def _check_broadcast(x, shape):
    shape = tuple(shape)
    if len(shape) < x.ndim or any(n != m and n != 1 for n, m in zip(x.shape[::-1], shape[::-1], strict=False)):
        raise ShapeError(f"broadcast_to: shape {tuple(x.shape)} cannot be broadcast to {shape}; dimensions must "
                         "match or be 1 (trailing dimensions are aligned)")


def _broadcast_forward(x, shape):
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if type(x) is np.ndarray and x.flags.c_contiguous:
        # NOTE: numpy.broadcast_to costs ~3 us (it builds an nditer); a strided
        # view made directly costs ~0.4 us, and every reduction's backward uses it.
        lead = len(shape) - x.ndim
        strides = (0,) * lead + tuple(0 if n != m else stride
                                      for n, m, stride in zip(x.shape, shape[lead:], x.strides, strict=True))
        view = np.ndarray(shape, x.dtype, x, 0, strides)
        view.flags.writeable = False
        return view
    return _xp(x).broadcast_to(x, shape)


def _sum_to(g, shape):
    from .reduce import sum_to
    return sum_to(g, shape=shape)


broadcast_to = defop(
    "broadcast_to", _broadcast_forward,
    vjp=(lambda g, out, x, shape: _sum_to(g, x.shape),),
    jvp=lambda t, out, x, shape: broadcast_to(t[0], shape=shape),
    save=(), view=True, check=_check_broadcast,
    samples=[Sample((3, 1), shape=(2, 3, 4)), Sample((), shape=(2, 2))],
    reference=lambda x, shape: np.broadcast_to(x, shape),
    doc="""A read-only broadcast view with ``shape``.

    PyTorch: ``torch.broadcast_to(input, shape)`` / ``input.expand(shape)``.

    Parameters
    ----------
    input : Tensor
    shape : tuple of int
    """)


def _check_permutation(x, axes):
    if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)) or len(axes) != x.ndim:
        raise ShapeError(f"permute: {tuple(axes)} is not a permutation of the {x.ndim} dimensions of a tensor "
                         f"of shape {tuple(x.shape)}")


def _inverse_permutation(axes):
    ndim = len(axes)
    return tuple(int(i) for i in np.argsort([a % ndim for a in axes]))


permute = defop(
    "permute", lambda x, axes: x.transpose(axes),
    vjp=(lambda g, out, x, axes: permute(g, axes=_inverse_permutation(axes)),),
    jvp=lambda t, out, x, axes: permute(t[0], axes=axes),
    save=(), view=True, check=_check_permutation,
    samples=[Sample((2, 3, 4), axes=(2, 0, 1)), Sample((3, 4), axes=(1, 0))],
    reference=lambda x, axes: np.transpose(x, axes),
    doc="""Reorder dimensions as ``axes`` says (a view).

    PyTorch: ``torch.permute(input, dims)``.

    Parameters
    ----------
    input : Tensor
    axes : tuple of int
    """)


def swapaxes(x, axis0, axis1):
    """Exchange two dimensions (``transpose(dim0, dim1)`` in PyTorch)."""
    ndim = x.ndim
    axes = list(range(ndim))
    axes[axis0], axes[axis1] = axes[axis1], axes[axis0]
    return permute(x, axes=tuple(axes))


def _check_squeeze(x, axis):
    for a in axis:
        if not -max(x.ndim, 1) <= a < max(x.ndim, 1):
            raise ShapeError(f"squeeze: dim {a} is out of range for shape {tuple(x.shape)}")


def _squeeze_forward(x, axis):
    axes = tuple(a % max(x.ndim, 1) for a in axis if x.ndim and x.shape[a] == 1)
    return x.squeeze(axes) if axes else x.reshape(x.shape)


squeeze = defop(
    "squeeze", _squeeze_forward,
    vjp=(lambda g, out, x, axis: reshape(g, shape=x.shape),),
    jvp=lambda t, out, x, axis: squeeze(t[0], axis=axis),
    save=(), view=True, check=_check_squeeze,
    samples=[Sample((3, 1, 4, 1), axis=(1,)), Sample((1, 3, 1), axis=(0, 2))],
    reference=lambda x, axis: np.squeeze(x, tuple(a for a in axis if x.shape[a] == 1)),
    doc="""Remove the size-1 dimensions in ``axis`` (a view).

    PyTorch: ``torch.squeeze(input, dim)``.

    Parameters
    ----------
    input : Tensor
    axis : tuple of int
    """)


def _check_unsqueeze(x, axis):
    if not -(x.ndim + 1) <= axis <= x.ndim:
        raise ShapeError(f"unsqueeze: dim {axis} is out of range for shape {tuple(x.shape)}; "
                         f"use a dim in [{-(x.ndim + 1)}, {x.ndim}]")


def _unsqueeze_forward(x, axis):
    return _xp(x).expand_dims(x, axis)


unsqueeze = defop(
    "unsqueeze", _unsqueeze_forward,
    vjp=(lambda g, out, x, axis: reshape(g, shape=x.shape),),
    jvp=lambda t, out, x, axis: unsqueeze(t[0], axis=axis),
    save=(), view=True, check=_check_unsqueeze,
    samples=[Sample((3, 4), axis=1), Sample((3, 4), axis=-1), Sample((), axis=0)],
    reference=lambda x, axis: np.expand_dims(x, axis),
    doc="""Insert a size-1 dimension at ``axis`` (a view).

    PyTorch: ``torch.unsqueeze(input, dim)``.

    Parameters
    ----------
    input : Tensor
    axis : int
    """)


def _check_concatenate(*tensors, axis=0):
    if not tensors:
        raise ShapeError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    if first.ndim == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated; use gg.stack")
    if not -first.ndim <= axis < first.ndim:
        raise ShapeError(f"cat: dim {axis} is out of range for tensors with {first.ndim} dimensions")
    a = axis % first.ndim
    for index, t in enumerate(tensors):
        if t.ndim != first.ndim or any(n != m for i, (n, m) in enumerate(zip(t.shape, first.shape, strict=True))
                                       if i != a):
            raise ShapeError(f"cat: tensor {index} has shape {tuple(t.shape)} but tensor 0 has shape "
                             f"{tuple(first.shape)}; all dimensions except dim {axis} must match")


def _concatenate_forward(*arrays, axis=0):
    xp = _xp(arrays[0])
    return xp.concatenate(arrays, axis=axis)


def _concatenate_vjp(g, out, *inputs, axis=0):
    grads = []
    start = 0
    for x in inputs:
        size = x.shape[axis]
        index = [slice(None)] * len(x.shape)
        index[axis] = slice(start, start + size)
        grads.append(getitem(g, index=tuple(index)))
        start += size
    return grads


def getitem(x, index):
    from .index import getitem as _getitem
    return _getitem(x, index=index)


concatenate = defop(
    "cat", _concatenate_forward, vjp=_concatenate_vjp,
    jvp=lambda t, out, *inputs, axis=0: concatenate(*t, axis=axis),
    save=(), check=_check_concatenate,
    samples=[Sample((2, 3), (4, 3), axis=0), Sample((2, 3), (2, 1), (2, 2), axis=1), Sample((2, 3), (2, 3), axis=-1)],
    reference=lambda *arrays, axis=0: np.concatenate(arrays, axis=axis),
    doc="""Join tensors along an existing dimension ``axis``.

    PyTorch: ``torch.cat(tensors, dim)``.

    Parameters
    ----------
    *tensors : Tensor
        Equal shapes except along ``axis``.
    axis : int
    """)


def _check_stack(*tensors, axis=0):
    if not tensors:
        raise ShapeError("stack: expected a non-empty list of tensors")
    for index, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ShapeError(f"stack: tensor {index} has shape {tuple(t.shape)} but tensor 0 has shape "
                             f"{tuple(tensors[0].shape)}; stack needs tensors of equal shape")


def _stack_forward(*arrays, axis=0):
    return _xp(arrays[0]).stack(arrays, axis=axis)


def _stack_vjp(g, out, *inputs, axis=0):
    index = [slice(None)] * len(out.shape if hasattr(out, "shape") else g.shape)
    grads = []
    for position in range(len(inputs)):
        index[axis] = position
        grads.append(getitem(g, index=tuple(index)))
    return grads


stack = defop(
    "stack", _stack_forward, vjp=_stack_vjp,
    jvp=lambda t, out, *inputs, axis=0: stack(*t, axis=axis),
    save=(), check=_check_stack,
    samples=[Sample((2, 3), (2, 3), axis=0), Sample((2, 3), (2, 3), (2, 3), axis=2)],
    reference=lambda *arrays, axis=0: np.stack(arrays, axis=axis),
    doc="""Join equal-shape tensors along a new dimension ``axis``.

    PyTorch: ``torch.stack(tensors, dim)``.

    Parameters
    ----------
    *tensors : Tensor
    axis : int
    """)


flip = defop(
    "flip", lambda x, axis: _xp(x).flip(x, axis=axis).copy(),   # PyTorch's flip copies; NumPy's is a view
    vjp=(lambda g, out, x, axis: flip(g, axis=axis),),
    jvp=lambda t, out, x, axis: flip(t[0], axis=axis),
    save=(), samples=[Sample((3, 4), axis=(0,)), Sample((2, 3, 4), axis=(0, 2))],
    reference=lambda x, axis: np.flip(x, axis=axis),
    doc="""Reverse the order of elements along ``axis``.

    PyTorch: ``torch.flip(input, dims)``.

    Parameters
    ----------
    input : Tensor
    axis : tuple of int
    """)


def _tile_forward(x, reps):
    return _xp(x).tile(x, reps)


def _tile_vjp(g, out, x, reps):
    # Split every tiled dimension into (reps, size) and sum over the reps.
    reps = tuple(reps)
    shape = (1,) * (len(reps) - x.ndim) + tuple(x.shape)
    split = []
    for r, n in zip(reps, shape, strict=False):
        split += [r, n]
    summed = reshape(g, shape=tuple(split))
    from .reduce import reduce_sum
    summed = reduce_sum(summed, axis=tuple(range(0, 2 * len(reps), 2)))
    return reshape(summed, shape=x.shape)


def _check_tile(x, reps):
    if len(reps) < x.ndim:
        raise ShapeError(f"repeat: {len(reps)} repeat counts given for a tensor with {x.ndim} dimensions; "
                         "give at least one count per dimension")
    if any(r < 0 for r in reps):
        raise ShapeError(f"repeat: repeat counts must be >= 0, got {tuple(reps)}")


tile = defop(
    "repeat", _tile_forward, vjp=(_tile_vjp,),
    jvp=lambda t, out, x, reps: tile(t[0], reps=reps),
    save=(), check=_check_tile,
    samples=[Sample((2, 3), reps=(2, 1)), Sample((2, 3), reps=(2, 3, 2))],
    reference=lambda x, reps: np.tile(x, reps),
    doc="""Tile the tensor ``reps`` times per dimension.

    PyTorch: ``input.repeat(*reps)`` (NumPy's ``tile``).

    Parameters
    ----------
    input : Tensor
    reps : tuple of int
    """)


def _pad_forward(x, pad_width, value=0.0):
    return _xp(x).pad(x, pad_width, mode="constant", constant_values=value)


def _unpad(g, x_shape, pad_width):
    index = tuple(slice(before, before + n) for (before, _after), n in zip(pad_width, x_shape, strict=False))
    return getitem(g, index=index)


def _check_pad(x, pad_width, value=0.0):
    if len(pad_width) != x.ndim or any(b < 0 or a < 0 for b, a in pad_width):
        raise ShapeError(f"pad: padding {pad_width} does not fit a tensor of shape {tuple(x.shape)}; give "
                         "non-negative (before, after) pairs, at most one per dimension")


pad_constant = defop(
    "pad", _pad_forward,
    vjp=(lambda g, out, x, pad_width, value=0.0: _unpad(g, x.shape, pad_width),),
    jvp=lambda t, out, x, pad_width, value=0.0: pad_constant(t[0], pad_width=pad_width, value=0.0),
    save=(), check=_check_pad,
    samples=[Sample((2, 3), pad_width=((1, 0), (2, 1))),
             Sample((2, 3, 4), pad_width=((0, 0), (0, 0), (1, 1)), value=1.5)],
    reference=lambda x, pad_width, value=0.0: np.pad(x, pad_width, constant_values=value),
    doc="""Pad with a constant, ``pad_width`` giving ``(before, after)`` per dimension (NumPy's order).

    PyTorch: ``torch.nn.functional.pad(input, pad, value=value)``, whose ``pad`` lists the last dimension
    first.

    Parameters
    ----------
    input : Tensor
    pad_width : tuple of (int, int)
    value : float
    """)


def torch_pad_to_width(ndim, pad):
    """Convert PyTorch's ``pad`` (last dim first: (left, right, top, bottom, ...))
    into NumPy's per-dimension ``((before, after), ...)``."""
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ShapeError(f"pad: padding {tuple(pad)} must have an even length of at most 2*{ndim}")
    width = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        width[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return tuple(width)


# --------------------------------------------------------------------------
# In-place changes through views: "the base with this region replaced"
# --------------------------------------------------------------------------
class ViewChain:
    """The view ops (function, parameters) that take a base tensor to one of its views.

    Applied to a Tensor it records them (differentiable); applied to an array
    it just runs their forwards.  :func:`copy_slices` uses it to find the
    region of the base that a view looks at.
    """

    __slots__ = ("steps",)

    def __init__(self, steps):
        self.steps = tuple(steps)

    def __call__(self, value):
        for function, params in self.steps:
            value = function(value, **params)
        return value

    def describe(self):
        """The chain as ``getitem(...) -> permute(...)`` for error messages."""
        return " -> ".join(f"{function.__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
                           for function, params in self.steps) or "the tensor itself"

    def __repr__(self):
        return f"ViewChain({self.describe()})"


def _put_region(out, value, chain):
    """``chain(out)[...] = value`` in place, whatever the layout of ``out``."""
    region = chain(out)
    xp = _xp(out)
    if getattr(region.flags, "writeable", True) and region.base is not None and xp.may_share_memory(region, out) \
            and 0 not in [stride for stride, n in zip(region.strides, region.shape, strict=True) if n > 1]:
        region[...] = value
        return out
    # The chain's reshape copied on this layout: find the region's elements by
    # their flat positions instead (an index array of the base's size).
    positions = chain(xp.arange(out.size).reshape(out.shape))
    flat = out.reshape(-1)
    flat[positions.reshape(-1)] = xp.broadcast_to(xp.asarray(value, dtype=out.dtype), positions.shape).reshape(-1)
    return out


def _copy_slices_forward(base, value, chain):
    return _put_region(base.copy(), value, chain)


def _copy_slices_base_vjp(g, out, base, value, chain):
    # The region was overwritten: no gradient reaches the base's old values there.
    return copy_slices(g, 0.0, chain=chain)


def _copy_slices_value_vjp(g, out, base, value, chain):
    return chain(g)


copy_slices = defop(
    "copy_slices", _copy_slices_forward,
    vjp=(_copy_slices_base_vjp, _copy_slices_value_vjp),
    jvp=lambda t, out, base, value, chain: copy_slices(t[0], t[1], chain=chain),
    save=(), promote=True,
    samples=[Sample((4,), (2,), chain=ViewChain([(getitem, {"index": (slice(1, 3),)})])),
             Sample((3, 4), (2, 2), chain=ViewChain([(permute, {"axes": (1, 0)}),
                                                     (getitem, {"index": (slice(1, 3), slice(0, 2))})])),
             Sample((2, 3), (3,), chain=ViewChain([(reshape, {"shape": (6,)}),
                                                   (getitem, {"index": (slice(None, None, 2),)})])),
             Sample((2, 3), 1.5, chain=ViewChain([(unsqueeze, {"axis": 0}), (getitem, {"index": (0, 1)})]))],
    reference=lambda base, value, chain: _put_region(np.array(base, copy=True), value, chain),
    doc="""``base`` with the region its view ``chain`` selects replaced by ``value``: how an in-place change
    through a view is recorded.

    PyTorch: the CopySlices node of an in-place op on a view.

    Parameters
    ----------
    base : Tensor
    value : Tensor
        The view's new value.
    chain : ViewChain
        The view ops from ``base`` to the view.

    Examples
    --------
    An in-place change through a view records this op on the base:

    >>> import gpugrad as gg
    >>> y = gg.tensor([1.0, 2.0, 3.0], requires_grad=True) * 1
    >>> _ = y[1:].mul_(2)
    >>> y.grad_fn
    <copy_slices>
    """)
"""``base`` with the region ``chain(base)`` replaced by ``value``: what an
in-place change through a view does to its base (PyTorch's CopySlices)."""

"""The public face of the ops: PyTorch-style functions and Tensor methods.

The primitives in the sibling modules take NumPy-style keyword parameters
(``axis=``, ``keepdims=``, ``shape=``).  Here they get PyTorch's spellings too
(``dim=``, ``keepdim=``, shapes as separate integers), Python operators, the
in-place methods, and device / dtype conversion.
"""

from __future__ import annotations

import builtins
import collections
import warnings

import numpy as np

from .. import backend
from .. import cuda as _cuda  # cross-owner hook (pipeline): non_blocking copies
from ..autograd import tape
from ..errors import AutogradError, DTypeError, ShapeError
from ..tensor import LAST_INPLACE, Tensor, next_sequence
from . import elementwise as ew
from . import index as ix
from . import linalg as la
from . import reduce as rd
from . import shape as sh
from .registry import _SCALARS, defop, pass_through, scalar_array, tensor_method
from .samples import Sample

# --------------------------------------------------------------------------
# argument helpers
# --------------------------------------------------------------------------
_NOTHING = object()


def _axis(dim, axis, default=None):
    """PyTorch's ``dim`` or NumPy's ``axis`` (one of them)."""
    if dim is not _NOTHING and axis is not _NOTHING and dim is not None and axis is not None:
        raise TypeError("give either dim= or axis=, not both")
    if dim is not _NOTHING:
        return dim
    if axis is not _NOTHING:
        return axis
    return default


def _keep(keepdim, keepdims):
    return bool(keepdim or keepdims)


def _as_tensor(value, like=None):
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, (int, float, bool)):
        return value
    return Tensor(value, device=like.device if like is not None else None)


def _dims(dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        return tuple(dims[0])
    return tuple(dims)


# --------------------------------------------------------------------------
# device and dtype transfer (differentiable)
# --------------------------------------------------------------------------
def _source_device(x):
    return x.device if isinstance(x, Tensor) else backend.device_of(x)


transfer = defop(
    "to_device", lambda x, device: backend.to_device(x, device),
    vjp=(lambda g, out, x, device: transfer(g, device=_source_device(x)),),
    jvp=lambda t, out, x, device: transfer(t[0], device=device),
    samples=[Sample((2, 3), device=backend.CPU)], reference=lambda x, device: x,
    doc="""A copy on ``device``; the gradient goes back to the input's device.

    PyTorch: ``input.to(device)``.

    Parameters
    ----------
    input : Tensor
    device : gg.device
    """)

clone = defop(
    "clone", lambda x: x.copy(),
    vjp=(pass_through,),
    jvp=lambda t, out, x: clone(t[0]),
    save=(), samples=[Sample((2, 3))], reference=np.copy,
    doc="""A copy with its own memory; the gradient passes through.

    PyTorch: ``torch.clone(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)


def to(self, *args, **kwargs):
    """Move and/or convert: ``t.to("cuda")``, ``t.to(gg.float64)``, ``t.to(other)``,
    ``t.to(device, dtype)``.  Returns ``self`` when nothing changes."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    non_blocking = kwargs.pop("non_blocking", False)
    copy = kwargs.pop("copy", False)
    if kwargs:
        raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, backend.Device):
            device = arg
        elif isinstance(arg, str):
            parsed = backend.device_or_dtype(arg, "to")
            if isinstance(parsed, backend.Device):
                device = parsed
            else:
                dtype = parsed
        elif isinstance(arg, int) and not isinstance(arg, bool):
            device = backend.Device("cuda", arg)
        else:
            dtype = arg
    result = self
    if device is not None:
        device = backend.as_device(device)
        if device.type == "cuda":
            backend.require_cuda(device)
        if device != self.device:
            if non_blocking:    # cross-owner hook (pipeline): copies on the side stream
                result = _cuda.to_device_non_blocking(result, device)
            else:
                result = transfer(result, device=device)
    if dtype is not None:
        dtype = backend.as_dtype(dtype)
        if dtype != result.dtype:
            if result.requires_grad and not backend.is_floating(dtype):
                result = result.detach()
            result = ew.cast(result, dtype)
    if copy and result is self:
        result = clone(self)
    return result


def cuda(self, device=None):
    return to(self, "cuda" if device is None else backend.Device("cuda", device if isinstance(device, int) else None)
              if not isinstance(device, (str, backend.Device)) else device)


def cpu(self):
    return to(self, backend.CPU)


Tensor.to = to
Tensor.cuda = cuda
Tensor.cpu = cpu
Tensor.clone = lambda self: clone(self)
Tensor.float = lambda self: to(self, backend.float32)
Tensor.double = lambda self: to(self, backend.float64)
Tensor.half = lambda self: to(self, backend.float16)
Tensor.bfloat16 = lambda self: to(self, backend.bfloat16)
Tensor.long = lambda self: to(self, backend.int64)
Tensor.int = lambda self: to(self, backend.int32)
Tensor.bool = lambda self: to(self, backend.bool_)
Tensor.type_as = lambda self, other: to(self, other.dtype)
Tensor.is_floating_point = lambda self: backend.is_floating(self.dtype)


def contiguous(self):
    data = self.array
    return self if data.flags.c_contiguous else clone(self)


Tensor.contiguous = contiguous
Tensor.is_contiguous = lambda self: bool(self.array.flags.c_contiguous)

# --------------------------------------------------------------------------
# operators
# --------------------------------------------------------------------------
def _binary(function, swap=False):
    """A Tensor operator method for a binary op (``a * b``, ``2 - a``, ``a @ b``)."""
    method = tensor_method(function.op, swap)
    method.__name__ = function.__name__
    return method


for _name, _function in [("add", ew.add), ("sub", ew.sub), ("mul", ew.mul), ("truediv", ew.div),
                         ("floordiv", ew.floor_divide), ("mod", ew.remainder), ("pow", ew.power),
                         ("matmul", la.matmul)]:
    setattr(Tensor, f"__{_name}__", _binary(_function))
    setattr(Tensor, f"__r{_name}__", _binary(_function, swap=True))
for _name, _function in [("eq", ew.eq), ("ne", ew.ne), ("lt", ew.lt), ("le", ew.le), ("gt", ew.gt), ("ge", ew.ge),
                         ("and", ew.logical_and), ("or", ew.logical_or), ("xor", ew.logical_xor)]:
    setattr(Tensor, f"__{_name}__", _binary(_function))
Tensor.__rand__ = _binary(ew.logical_and, swap=True)
Tensor.__ror__ = _binary(ew.logical_or, swap=True)
Tensor.__neg__ = lambda self: ew.neg(self)
Tensor.__pos__ = lambda self: self
Tensor.__invert__ = lambda self: ew.logical_not(self)

Tensor.add = lambda self, other, alpha=1: ew.add(self, other if alpha == 1 else ew.mul(other, alpha))
Tensor.sub = lambda self, other, alpha=1: ew.sub(self, other if alpha == 1 else ew.mul(other, alpha))
Tensor.mul = _binary(ew.mul)
Tensor.div = _binary(ew.div)
Tensor.true_divide = _binary(ew.div)
Tensor.pow = _binary(ew.power)
Tensor.matmul = _binary(la.matmul)
Tensor.neg = Tensor.__neg__
Tensor.square = lambda self: ew.square(self)
Tensor.reciprocal = lambda self: ew.reciprocal(self)
Tensor.rsqrt = lambda self: ew.rsqrt(self)
Tensor.maximum = _binary(ew.maximum)
Tensor.minimum = _binary(ew.minimum)
for _name, _function in [("eq", ew.eq), ("ne", ew.ne), ("lt", ew.lt), ("le", ew.le), ("gt", ew.gt), ("ge", ew.ge)]:
    setattr(Tensor, _name, _binary(_function))


def clamp(input, min=None, max=None):
    """Limit values to ``[min, max]`` (either bound may be None or a tensor)."""
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return ew.clamp_tensor(input, min, max)
    if min is None and max is None:
        raise ValueError("clamp: give at least one of min= or max=")
    if not backend.is_floating(input.dtype) and (isinstance(min, float) or isinstance(max, float)):
        input = to(input, backend.get_default_dtype())     # PyTorch: an integer tensor clamped to 0.5 is float
    return ew.clamp(input, min=min, max=max)


Tensor.clamp = clamp
Tensor.clip = clamp


def where(condition, input, other):
    """``input`` where ``condition`` holds, else ``other`` (broadcast)."""
    condition = _as_tensor(condition)
    if condition.dtype != backend.bool_:
        condition = to(condition, backend.bool_)
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        if input.dtype != other.dtype:
            from .registry import result_dtype
            dtype = result_dtype(input.dtype, other.dtype)
            input, other = to(input, dtype), to(other, dtype)
    elif isinstance(input, Tensor) or isinstance(other, Tensor):
        # A Python number never widens a tensor (PyTorch's promotion).
        from .promotion import promote_arguments
        input, other = promote_arguments(ew.where.op, (input, other))
        data = (input if isinstance(input, Tensor) else other).array
        # A number as a 0-d array of the tensor's dtype: NumPy's where would widen bfloat16 for a float.
        as_array = scalar_array if data.__class__ is np.ndarray else backend.xp_of(data).asarray
        if input.__class__ in (int, float, bool):
            input = as_array(input, data.dtype)
        if other.__class__ in (int, float, bool):
            other = as_array(other, data.dtype)
    else:
        # Two Python numbers: float ones are the default float dtype (NumPy would say float64).
        dtype = backend.get_default_dtype() if isinstance(input, float) or isinstance(other, float) else None
        input, other = (Tensor(value, device=condition.device) for value in (input, other))
        if dtype is not None:
            input, other = to(input, dtype), to(other, dtype)
    return ew.where(condition, input, other)


Tensor.where = lambda self, condition, other: where(condition, self, other)


# --------------------------------------------------------------------------
# reductions
# --------------------------------------------------------------------------
def _reduction(primitive):
    def method(self, dim=_NOTHING, keepdim=False, *, axis=_NOTHING, keepdims=False, dtype=None):
        if dtype is not None:
            self = to(self, dtype)
        elif primitive in (rd.reduce_sum, rd.prod) and self.dtype.kind in "biu":
            self = to(self, backend.int64)
        elif primitive is rd.mean and not backend.is_floating(self.dtype):
            raise DTypeError(f"mean: needs a floating tensor, got {self.dtype} (shape {tuple(self.shape)}); "
                             "convert with t.float() or pass dtype=gg.float32")
        return primitive(self, axis=_axis(dim, axis), keepdims=_keep(keepdim, keepdims))
    method.__name__ = primitive.__name__
    method.__doc__ = primitive.__doc__      # the op's doc= and example (help(gg.sum), help(x.sum))
    return method


sum = _reduction(rd.reduce_sum)  # noqa: A001 - PyTorch's name
mean = _reduction(rd.mean)
prod = _reduction(rd.prod)
amax = _reduction(rd.amax)
amin = _reduction(rd.amin)
logsumexp = _reduction(rd.logsumexp)
Tensor.sum, Tensor.mean, Tensor.prod = sum, mean, prod
Tensor.amax, Tensor.amin, Tensor.logsumexp = amax, amin, logsumexp


def var(input, dim=_NOTHING, unbiased=None, keepdim=False, *, axis=_NOTHING, correction=None, keepdims=False,
        ddof=None):
    """Variance; ``correction=1`` (Bessel) by default like PyTorch, ``ddof`` accepted too."""
    if correction is None:
        correction = ddof if ddof is not None else (0 if unbiased is False else 1)
    return rd.var(input, axis=_axis(dim, axis), correction=correction, keepdims=_keep(keepdim, keepdims))


def std(input, dim=_NOTHING, unbiased=None, keepdim=False, *, axis=_NOTHING, correction=None, keepdims=False,
        ddof=None):
    """Standard deviation; same arguments as :func:`var`."""
    variance = var(input, dim, unbiased, keepdim, axis=axis, correction=correction, keepdims=keepdims, ddof=ddof)
    # PyTorch's gradient is 0 where the deviation is 0 (a constant slice), not sqrt's 1/0 times 0.
    constant = ew.eq(variance, 0.0)
    return where(constant, 0.0, ew.sqrt(where(constant, 1.0, variance)))


Tensor.var, Tensor.std = var, std

MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])


def _max_or_min(name, extreme, arg_extreme, elementwise):
    def method(self, dim=_NOTHING, keepdim=False, *, axis=_NOTHING, keepdims=False):
        if isinstance(dim, Tensor):
            return elementwise(self, dim)
        axis_value = _axis(dim, axis)
        keep = _keep(keepdim, keepdims)
        if axis_value is None:
            return extreme(self, axis=None, keepdims=keep)
        if self.ndim == 0:
            return MaxResult(extreme(self, axis=axis_value, keepdims=keep),
                             arg_extreme(self, axis=axis_value, keepdims=keep))
        # The values are gathered at the returned indices, so at ties the whole gradient
        # goes to that index (PyTorch's max/min with a dim); amax/amin share it instead.
        axis_value = rd.normalize_axes(axis_value, self.ndim, name)[0] if isinstance(axis_value, int) else axis_value
        indices = arg_extreme(self, axis=axis_value, keepdims=True)
        values = ix.gather(self, indices, axis=axis_value)
        if not keep:
            values, indices = sh.squeeze(values, axis=(axis_value,)), sh.squeeze(indices, axis=(axis_value,))
        return MaxResult(values, indices)
    method.__name__ = name
    return method


max = _max_or_min("max", rd.amax, rd.argmax, ew.maximum)  # noqa: A001 - PyTorch's name
min = _max_or_min("min", rd.amin, rd.argmin, ew.minimum)  # noqa: A001
Tensor.max, Tensor.min = max, min


def argmax(input, dim=_NOTHING, keepdim=False, *, axis=_NOTHING, keepdims=False):
    return rd.argmax(input, axis=_axis(dim, axis), keepdims=_keep(keepdim, keepdims))


def argmin(input, dim=_NOTHING, keepdim=False, *, axis=_NOTHING, keepdims=False):
    return rd.argmin(input, axis=_axis(dim, axis), keepdims=_keep(keepdim, keepdims))


Tensor.argmax, Tensor.argmin = argmax, argmin


def norm(input, p=2, dim=_NOTHING, keepdim=False, *, axis=_NOTHING, keepdims=False, ord=None):
    """Vector p-norm over ``dim`` (all elements by default); ``p="fro"`` means 2."""
    order = ord if ord is not None else p
    if order == "fro":
        order = 2
    return rd.norm(input, ord=order, axis=_axis(dim, axis), keepdims=_keep(keepdim, keepdims))


def cumsum(input, dim=_NOTHING, *, axis=_NOTHING):
    """Cumulative sum along ``dim``."""
    axis_value = _axis(dim, axis)
    if axis_value is None:
        raise ShapeError("cumsum: give the dimension to accumulate along, e.g. t.cumsum(dim=0)")
    if input.dtype.kind in "biu":
        input = to(input, backend.int64)            # PyTorch: integer and bool sums accumulate in int64
    return rd.cumsum(input, axis=axis_value % builtins.max(input.ndim, 1))


def reduce_all(input, dim=_NOTHING, keepdim=False):
    xp = backend.xp_of(input.array)
    return Tensor._make(xp.all(input.array, axis=_axis(dim, _NOTHING), keepdims=keepdim))


def reduce_any(input, dim=_NOTHING, keepdim=False):
    xp = backend.xp_of(input.array)
    return Tensor._make(xp.any(input.array, axis=_axis(dim, _NOTHING), keepdims=keepdim))


Tensor.norm, Tensor.cumsum, Tensor.all, Tensor.any = norm, cumsum, reduce_all, reduce_any


def softmax(input, dim=_NOTHING, *, axis=_NOTHING):
    """Softmax along ``dim`` (last by default)."""
    return rd.softmax(input, axis=_axis(dim, axis, -1))


def log_softmax(input, dim=_NOTHING, *, axis=_NOTHING):
    """Log-softmax along ``dim`` (last by default)."""
    return rd.log_softmax(input, axis=_axis(dim, axis, -1))


Tensor.softmax, Tensor.log_softmax = softmax, log_softmax


# --------------------------------------------------------------------------
# shape
# --------------------------------------------------------------------------
def reshape(input, *shape):
    """Reshape: ``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; one size may be -1."""
    shape = _dims(shape)
    return sh.reshape(input, shape=tuple(int(n) for n in shape))


def view(self, *shape):
    """A view with another shape (memory shared, as PyTorch's ``view``), or its bits as another dtype.

    Where the memory layout cannot be viewed with the new shape (a transposed
    or sliced tensor), it raises as PyTorch does, instead of silently copying:
    an in-place change of the result would then not reach ``self``.  Use
    :meth:`reshape`, which copies when it must.  ``t.view(dtype)`` reinterprets
    the bits as a dtype of the same size (no gradient), as in PyTorch.

    Examples
    --------
    >>> import gpugrad as gg
    >>> x = gg.arange(6.0)
    >>> v = x.view(2, 3)
    >>> _ = v[0, 0].fill_(10.0)
    >>> x[0].item()
    10.0
    """
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
        return _view_as_dtype(self, backend.as_dtype(shape[0]))
    result = reshape(self, *shape)
    source, viewed = self.array, result.array
    if source.size and not backend.xp_of(source).may_share_memory(source, viewed):
        raise ShapeError(f"view: a tensor of shape {tuple(self.shape)} with strides {source.strides} cannot be "
                         f"viewed as shape {tuple(result.shape)} without copying (at least one dimension spans "
                         "two separate blocks of memory); use .reshape(...) instead, or .contiguous() first")
    return result


def _view_as_dtype(tensor, dtype):
    if dtype == tensor.dtype:
        return tensor
    if dtype.itemsize != tensor.array.dtype.itemsize:
        raise DTypeError(f"view: reinterpreting {tensor.dtype} ({tensor.array.dtype.itemsize} bytes) as {dtype} "
                         f"({dtype.itemsize} bytes) is not supported; use .to({dtype}) to convert the values")
    if tensor.requires_grad:
        raise AutogradError(f"view: reinterpreting the bits of a tensor that requires grad ({tensor.dtype} as "
                            f"{dtype}) has no gradient; call .detach() first, or .to({dtype}) to convert values")
    return Tensor._make(tensor.array.view(dtype))


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions ``start_dim..end_dim`` into one."""
    ndim = input.ndim
    if ndim == 0:
        return reshape(input, 1)
    start, end = start_dim % ndim, end_dim % ndim
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {tuple(input.shape)}")
    shape = input.shape
    merged = 1
    for n in shape[start:end + 1]:
        merged *= n
    return reshape(input, shape[:start] + (merged,) + shape[end + 1:])


def unflatten(input, dim, sizes):
    dim = dim % input.ndim
    return reshape(input, input.shape[:dim] + tuple(sizes) + input.shape[dim + 1:])


def permute(input, *dims):
    """Reorder dimensions: ``t.permute(2, 0, 1)``."""
    return sh.permute(input, axes=_dims(dims))


def transpose(input, dim0=0, dim1=1):
    """Swap two dimensions (PyTorch's ``transpose(dim0, dim1)``)."""
    ndim = input.ndim
    for d in (dim0, dim1):
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise ShapeError(f"transpose: dim {d} is out of range for shape {tuple(input.shape)}")
    if ndim < 2:
        return input
    return sh.swapaxes(input, dim0 % ndim, dim1 % ndim)


def squeeze(input, dim=_NOTHING, *, axis=_NOTHING):
    """Remove size-1 dimensions (all of them, or those in ``dim``)."""
    chosen = _axis(dim, axis)
    if chosen is None:
        chosen = tuple(i for i, n in enumerate(input.shape) if n == 1)
    elif isinstance(chosen, int):
        chosen = (chosen,)
    return sh.squeeze(input, axis=tuple(chosen))


def unsqueeze(input, dim=_NOTHING, *, axis=_NOTHING):
    """Insert a size-1 dimension at ``dim``."""
    return sh.unsqueeze(input, axis=_axis(dim, axis))


def expand(input, *sizes):
    """Broadcast to ``sizes`` without copying; -1 keeps a dimension."""
    sizes = _dims(sizes)
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ShapeError(f"expand: the number of sizes ({len(sizes)}) must be at least the tensor's number of "
                         f"dimensions ({input.ndim}) for shape {tuple(input.shape)}")
    shape = tuple(input.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    return sh.broadcast_to(input, shape=shape)


def broadcast_to(input, *shape):
    return sh.broadcast_to(input, shape=_dims(shape))


def repeat(input, *repeats):
    """Tile the tensor: ``t.repeat(2, 1)`` (PyTorch's repeat, NumPy's tile)."""
    return sh.tile(input, reps=_dims(repeats))


def flip(input, *dims):
    dims = _dims(dims)
    return sh.flip(input, axis=tuple(d % builtins.max(input.ndim, 1) for d in dims))


def split(input, split_size_or_sections, dim=0):
    """Split into pieces of ``split_size`` (last may be smaller) or of the given sizes."""
    size = input.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ShapeError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [split_size_or_sections] * (size // split_size_or_sections)
        if size % split_size_or_sections:
            sizes.append(size % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != size:
            raise ShapeError(f"split: sizes {sizes} add up to {builtins.sum(sizes)}, but dim {dim} has size {size}")
    pieces = []
    start = 0
    for n in sizes:
        index = [slice(None)] * input.ndim
        index[dim] = slice(start, start + n)
        pieces.append(ix.getitem(input, index=tuple(index)))
        start += n
    return tuple(pieces)


def chunk(input, chunks, dim=0):
    """Split into ``chunks`` pieces of (nearly) equal size."""
    if chunks <= 0:
        raise ShapeError(f"chunk: chunks must be positive, got {chunks}")
    size = input.shape[dim]
    return split(input, -(-size // chunks) if size else 1, dim)


def pad(input, pad, mode="constant", value=0.0):
    """Pad with PyTorch's convention: ``pad=(left, right, top, bottom, ...)`` from the last dim."""
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported; use mode='constant'")
    return sh.pad_constant(input, pad_width=sh.torch_pad_to_width(input.ndim, pad), value=value)


for _name, _function in [("reshape", reshape), ("view", view), ("flatten", flatten), ("unflatten", unflatten),
                         ("permute", permute), ("transpose", transpose), ("squeeze", squeeze),
                         ("unsqueeze", unsqueeze), ("expand", expand), ("broadcast_to", broadcast_to),
                         ("repeat", repeat), ("flip", flip), ("split", split), ("chunk", chunk)]:
    setattr(Tensor, _name, _function)
Tensor.swapaxes = lambda self, axis0, axis1: transpose(self, axis0, axis1)
Tensor.swapdims = Tensor.swapaxes
Tensor.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))
Tensor.mT = property(lambda self: transpose(self, -2, -1))
Tensor.expand_as = lambda self, other: expand(self, other.shape)
Tensor.reshape_as = lambda self, other: reshape(self, other.shape)
Tensor.view_as = Tensor.reshape_as


def cat(tensors, dim=0, *, axis=_NOTHING):
    """Concatenate along an existing dimension."""
    tensors = _tensor_list(tensors, "cat")
    chosen = _axis(dim if dim != 0 else _NOTHING, axis, 0)
    tensors = _common_dtype(tensors)
    return sh.concatenate(*tensors, axis=chosen)


def stack(tensors, dim=0, *, axis=_NOTHING):
    """Stack equal-shape tensors along a new dimension."""
    tensors = _tensor_list(tensors, "stack")
    chosen = _axis(dim if dim != 0 else _NOTHING, axis, 0)
    chosen = chosen % (tensors[0].ndim + 1)
    return sh.stack(*_common_dtype(tensors), axis=chosen)


def _tensor_list(tensors, op):
    """``tensors`` as a non-empty list of Tensors, or an error naming the bad element."""
    if isinstance(tensors, Tensor) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"{op}: expected a sequence of tensors, got {type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise ShapeError(f"{op}: expected a non-empty list of tensors")
    for position, item in enumerate(tensors):
        if not isinstance(item, Tensor):
            raise TypeError(f"{op}: expected a Tensor as element {position}, but got {type(item).__name__} "
                            f"({item!r:.60}); convert it with gg.tensor(...) first")
    return tensors


def _common_dtype(tensors):
    from .registry import result_dtype
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = result_dtype(dtype, t.dtype)
    return [t if t.dtype == dtype else to(t, dtype) for t in tensors]


# --------------------------------------------------------------------------
# indexing
# --------------------------------------------------------------------------
def _normalize_index(index):
    """Tensors and lists inside an index become raw arrays; bool masks become
    integer arrays (one per masked dimension), so backward can scatter-add.

    As in PyTorch, a 0-d integer tensor is an int (a select, so ``x[t]`` is a
    view), a 0-d bool a bool, and a uint8 tensor a mask (with its deprecation
    warning)."""
    items = index if isinstance(index, tuple) else (index,)
    result = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.array
        elif isinstance(item, list):
            item = np.asarray(item)
        if hasattr(item, "dtype") and getattr(item, "ndim", 0) >= 0 and not isinstance(item, (int, np.integer)):
            if item.dtype == np.uint8:
                warnings.warn("indexing with dtype uint8 is deprecated (PyTorch reads it as a mask); use a bool "
                              "tensor instead", UserWarning, stacklevel=3)
                item = item.astype(bool)
            if item.dtype == np.bool_:
                if item.ndim == 0:
                    result.append(bool(item))
                else:
                    result.extend(item.nonzero())
                continue
            if item.dtype.kind not in "iu":
                raise IndexError(f"index: tensors used as indices must be integer or bool, got {item.dtype}")
            if item.ndim == 0:
                item = int(item)
        result.append(item)
    return tuple(result)


_PLAIN_INDEX_ITEMS = (int, slice, type(None), type(Ellipsis))      # not bool: its class is bool


def _torch_index(tensor, index, op="index"):
    """``index`` as NumPy keys that give PyTorch's result: ``(key, None)``, or
    ``(select, advanced)`` when ``tensor[index]`` is ``tensor[select][advanced]``
    (ints mixed with advanced indices, see :func:`gpugrad.ops.index.select_before_advanced`)."""
    items = index if index.__class__ is tuple else (index,)
    if all(item.__class__ in _PLAIN_INDEX_ITEMS for item in items):
        return items, None          # ints and slices only (the common case): nothing to convert
    if ix.sequence_as_tuple(index):
        warnings.warn("Using a non-tuple sequence for multidimensional indexing is deprecated; use x[tuple(seq)] "
                      "instead of x[seq] (PyTorch reads it as a tuple, NumPy as one array)", UserWarning,
                      stacklevel=3)
        index = tuple(index)
    ix.check_boolean_masks(tensor.shape, index, op)
    index = _normalize_index(index)
    stages = ix.select_before_advanced(index, tensor.ndim)
    if stages is None:
        return index, None
    return stages


def _index_to_device(index, device):
    return tuple(backend.to_device(item, device) if hasattr(item, "dtype") and hasattr(item, "shape") else item
                 for item in index)


def getitem(self, index):
    index, advanced = _torch_index(self, index)
    if advanced is not None:
        _check_basic_index(self, index)
        return ix.take(ix.getitem(self, index=index), index=_index_to_device(advanced, self.device))
    if ix.is_basic_index(index):
        _check_basic_index(self, index)
        return ix.getitem(self, index=index)
    return ix.take(self, index=_index_to_device(index, self.device))


def _check_basic_index(tensor, index):
    dim = 0
    for item in index:
        if item is Ellipsis:
            dim = tensor.ndim - builtins.sum(1 for i in index if i is not None and i is not Ellipsis) + dim
            continue
        if item is None:
            continue
        if dim >= tensor.ndim:
            raise IndexError(f"index: too many indices for a tensor of shape {tuple(tensor.shape)}")
        if isinstance(item, (int, np.integer)):
            size = tensor.shape[dim]
            if not -size <= item < size:
                raise IndexError(f"index: {item} is out of range for dim {dim} of size {size} "
                                 f"(tensor shape {tuple(tensor.shape)})")
        dim += 1


Tensor.__getitem__ = getitem


def gather(input, dim, index):
    """``out[i][j] = input[i][index[i][j]]`` along ``dim`` (PyTorch's gather)."""
    return ix.gather(input, _as_tensor(index), axis=dim % builtins.max(input.ndim, 1))


def take_along_dim(input, indices, dim=None):
    """Pick values along ``dim`` (flattened when ``dim`` is None), broadcasting the indices."""
    indices = _as_tensor(indices)
    if dim is None:
        # PyTorch: the flattened input is gathered, so negative indices are refused.
        ix.check_index_range("take_along_dim", indices.array, input.numel(), None)
        return ix.gather(reshape(input, -1), reshape(indices, -1), axis=0)
    dim = dim % input.ndim
    # PyTorch wraps indices in [-size, 0) along ``dim`` (NumPy's take_along_axis too); beyond that is an error.
    size = input.shape[dim]
    ix.check_index_range("take_along_dim", indices.array, size, dim, allow_negative=True)
    if indices.array.size and int(indices.array.min()) < 0:
        indices = Tensor._make(indices.array % size)
    shape = list(np.broadcast_shapes(tuple(n for i, n in enumerate(input.shape) if i != dim),
                                     tuple(n for i, n in enumerate(indices.shape) if i != dim)))
    input_shape = shape[:dim] + [input.shape[dim]] + shape[dim:]
    index_shape = shape[:dim] + [indices.shape[dim]] + shape[dim:]
    if tuple(input.shape) != tuple(input_shape):
        input = expand(input, input_shape)
    if tuple(indices.shape) != tuple(index_shape):
        indices = Tensor._make(backend.xp_of(indices.array).broadcast_to(indices.array, index_shape))
    return ix.gather(input, indices, axis=dim)


def index_select(input, dim, index):
    return ix.index_select(input, _as_tensor(index), axis=dim % builtins.max(input.ndim, 1))


def index_add(input, dim, index, source, alpha=1):
    """``input`` with ``alpha * source`` added at ``index`` along ``dim`` (out of place)."""
    return ix.index_add(input, _as_tensor(index), source, axis=dim % builtins.max(input.ndim, 1), alpha=alpha)


def scatter_add(input, dim, index, src):
    """``input`` with ``src`` added at ``index`` along ``dim`` (out of place, PyTorch's scatter_add)."""
    return ix.scatter_add(input, _as_tensor(index), src, axis=dim % builtins.max(input.ndim, 1))


Tensor.gather = gather
Tensor.take_along_dim = take_along_dim
Tensor.index_select = index_select
Tensor.index_add = index_add
Tensor.scatter_add = scatter_add


# --------------------------------------------------------------------------
# in place
# --------------------------------------------------------------------------
def _check_inplace(tensor, name, others=()):
    """Refuse what PyTorch refuses before anything is written; return whether
    the change must be recorded in the graph."""
    _check_writable(tensor, name)
    if not tape.state.grad_enabled:
        return False
    if tensor.requires_grad and tensor.grad_fn is None:
        raise AutogradError(
            f"{name}: a leaf tensor that requires grad (shape {tuple(tensor.shape)}) is being changed in place "
            "while the graph is recorded; do it under `with gg.no_grad():` (as optimizers and init do) or "
            "change a clone()")
    base = tensor._base
    if base is not None:
        if base.requires_grad and base.grad_fn is None:
            raise AutogradError(
                f"{name}: this tensor (shape {tuple(tensor.shape)}) is a view ({_describe_view(tensor)}) of a leaf "
                f"that requires grad (shape {tuple(base.shape)}); changing it in place would change the leaf behind "
                "the graph's back. Use `with gg.no_grad():` or change a clone()")
        if tensor._view_without_grad and (base.requires_grad or tensor.requires_grad or builtins.any(
                isinstance(o, Tensor) and o.requires_grad for o in others)):
            raise AutogradError(
                f"{name}: this tensor (shape {tuple(tensor.shape)}) is a view ({_describe_view(tensor)}) made under "
                f"gg.no_grad() of a tensor of shape {tuple(base.shape)}, and is being changed in place while the "
                "graph is recorded: its base's gradient could not follow the change. Take the view with grad "
                "enabled, or change a clone()")
        return True if base.requires_grad else (tensor.requires_grad or builtins.any(
            isinstance(o, Tensor) and o.requires_grad for o in others))
    return tensor.requires_grad or builtins.any(isinstance(o, Tensor) and o.requires_grad for o in others)


def _carries_tangents(tensor, others):
    """Forward mode: the change must carry tangents even where no graph is recorded."""
    if not tape.state.forward_levels or tensor.requires_grad:
        return False
    base = tensor._base
    return bool(tensor._tangents or (base is not None and base._tangents) or builtins.any(
        isinstance(o, Tensor) and o._tangents for o in others))


def _describe_view(tensor):
    from .shape import ViewChain
    return "made by " + ViewChain(tensor._view_chain).describe()


def _check_writable(tensor, name):
    """An expanded view maps several elements to one memory location: writing
    through it cannot be expressed as one value per element (PyTorch refuses too)."""
    data = tensor.array
    overlapping = (0 in data.strides and builtins.any(stride == 0 and n > 1
                                                      for stride, n in zip(data.strides, data.shape, strict=True))
                   or not getattr(data.flags, "writeable", True))
    if overlapping:
        view = f" ({_describe_view(tensor)})" if tensor._base is not None else ""
        raise AutogradError(f"{name}: the tensor (shape {tuple(tensor.shape)}) is an expanded/broadcast view{view} in "
                            "which several elements share one memory location, so it cannot be changed in place. "
                            "Call .clone() (or .contiguous()) first")


def _write(tensor, values, name):
    """Copy ``values`` into ``tensor.array`` in place (views of it see the change)."""
    data = tensor.array
    if values.shape != data.shape:
        try:
            values = backend.xp_of(data).broadcast_to(values, data.shape)
        except ValueError:
            raise ShapeError(f"{name}: the result has shape {tuple(values.shape)} but the tensor changed in place "
                             f"has shape {tuple(data.shape)}; in-place results must keep the tensor's shape") from None
    if backend.is_floating(values.dtype) and not backend.is_floating(data.dtype):
        raise DTypeError(f"{name}: the result is {values.dtype} but the tensor is {data.dtype}; an integer tensor "
                         "cannot hold floats in place. Use the out-of-place op instead")
    try:
        data[...] = values
    except ValueError as error:
        raise AutogradError(f"{name}: cannot write into this tensor ({error}); it is an expanded/broadcast view. "
                            "Call .clone() (or .contiguous()) first") from None


def _snapshot(tensor):
    """A copy standing in for ``tensor`` in the graph of an in-place op: same
    graph edge, its own data, so the op's saved input is not overwritten."""
    return tape.graph_alias(tensor, data=tensor.array.copy(), tangents=tensor._tangents)


def inplace(tensor, compute, name, others=()):
    """Apply ``compute(current_value) -> new tensor`` to ``tensor`` in place.

    Outside the graph this is a plain write.  Inside it, the new value's node
    becomes the tensor's ``grad_fn`` (gradients flow through the change), and
    the version counter moves on so nodes that saved the old value refuse to
    run backward with the new one.

    Through a view (``y[1:3].mul_(3)``) the change is recorded on the view's
    base as "the base with this region replaced by the new value"
    (:func:`gpugrad.ops.shape.copy_slices`, PyTorch's CopySlices), and every
    live view of the base, this one included, remakes its ``grad_fn`` from the
    base's new history; a change of the base itself is seen by its views the
    same way.

    Examples
    --------
    >>> import gpugrad as gg
    >>> x = gg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    >>> y = x * 1
    >>> _ = y[1:3].mul_(3)
    >>> (y * y).sum().backward()
    >>> x.grad
    tensor([ 2., 36., 54.,  8.], device='cpu')
    """
    record = _check_inplace(tensor, name, others) or _carries_tangents(tensor, others)
    if not record:
        with tape.no_grad():
            result = compute(tensor)
        _write(tensor, result.array, name)
        tensor._bump_version()
        return tensor
    result = compute(_snapshot(tensor))
    _write(tensor, result.array, name)
    tensor._bump_version()
    base = tensor._base
    if base is not None:
        _record_on_base(base, tensor, result)
        return tensor
    old_grad_fn, old_output_nr = tensor.grad_fn, tensor._output_nr
    tensor.grad_fn, tensor._output_nr = result.grad_fn, result._output_nr
    tensor.requires_grad = result.requires_grad
    tensor._tangents = result._tangents
    tape.move_retained_grad(tensor, old_grad_fn, old_output_nr)
    _replay_views(tensor)
    return tensor


def _record_on_base(base, view, value):
    """Record on ``base`` that the region ``view`` looks at now holds ``value``,
    then remake the base's views from that history (``view`` among them)."""
    from .registry import record
    from .shape import ViewChain, copy_slices
    old_base = tape.graph_alias(base, tangents=base._tangents)
    chain = ViewChain(view._view_chain)
    if tape.state.forward_levels and (base._tangents or value._tangents):
        # Forward mode: run the op itself so the new base gets its tangent from the rule.
        new_base = copy_slices(old_base, value, chain=chain)
    else:
        # The values are already in place: only the graph node is needed.
        new_base = Tensor._make(base.array)
        if old_base.requires_grad or value.requires_grad:
            record(copy_slices.op, (old_base, value), [base.array, value.array], {"chain": chain}, new_base)
    old_grad_fn, old_output_nr = base.grad_fn, base._output_nr
    base.grad_fn, base._output_nr = new_base.grad_fn, new_base._output_nr
    base.requires_grad = new_base.requires_grad
    base._tangents = new_base._tangents
    tape.move_retained_grad(base, old_grad_fn, old_output_nr)
    _replay_views(base, view)


def _replay_views(base, also=None):
    """Remake the ``grad_fn`` of every live view of ``base`` (and of ``also``)."""
    from .registry import live_views, replay_view
    views = live_views(base)
    if also is not None and not builtins.any(view is also for view in views):
        views.append(also)
    for view in views:
        replay_view(view, base)


def _inplace_binary(function, name, ufunc=None):
    """``x.add_(other, alpha=...)`` and friends: :func:`inplace` of ``function``.

    Outside the graph (grad mode off in this thread, nothing unusual on: an
    optimizer's ``p.add_(g, alpha=-lr)`` under ``no_grad``), a NumPy float
    tensor and an operand of its own shape and dtype take a lean path built
    from the same forwards: ``function``'s NumPy ufunc ``ufunc`` written
    straight into the tensor (``out=``), after ``mul``'s forward for ``alpha``
    (the numbers of the general path: the same ufuncs on the same dtypes;
    tested against it in tests/test_cpu_fast_paths.py).
    """
    multiply = ew.mul.op.forward

    def lean(self, data, other, alpha):
        operand = other.array
        if alpha != 1:
            constant = _SCALARS.get((alpha, data.dtype))
            operand = multiply(operand, scalar_array(alpha, data.dtype) if constant is None else constant)
        ufunc(data, operand, out=data)
        # self._bump_version(), inlined (an optimizer step runs this once per parameter)
        sequence = LAST_INPLACE[0] = next_sequence()
        box = self._version_box
        if box is None:
            box = self._version_box = [0, 0]
        box[0] += 1
        box[1] = sequence
        return self

    def method(self, other, **kwargs):
        alpha = kwargs.pop("alpha", 1)
        if ufunc is not None and tape.threads_off_default:
            # Grad mode off (or something unusual) somewhere: is it this thread, outside the graph?
            try:
                recording = tape.lean_modes.recording
            except AttributeError:
                recording = True
            if recording is False and isinstance(other, Tensor):
                data = self.array
                other_data = other.array
                if (data.__class__ is _ndarray and other_data.__class__ is _ndarray
                        and data.dtype == other_data.dtype and data.dtype.kind == "f"
                        and data.shape == other_data.shape and data.flags.writeable and 0 not in data.strides
                        and (alpha.__class__ is float or alpha.__class__ is int)):
                    return lean(self, data, other, alpha)

        def compute(current):
            # ``x.mul_(x)``: the operand is the old value too, not the tensor being overwritten.
            operand = current if other is self else other
            return function(current, operand if alpha == 1 else ew.mul(operand, alpha))
        return inplace(self, compute, name, (other,))
    method.__name__ = name
    return method


_ndarray = np.ndarray
Tensor.add_ = _inplace_binary(ew.add, "add_", np.add)
Tensor.sub_ = _inplace_binary(ew.sub, "sub_", np.subtract)
Tensor.mul_ = _inplace_binary(ew.mul, "mul_", np.multiply)
Tensor.div_ = _inplace_binary(ew.div, "div_", np.true_divide)
Tensor.pow_ = _inplace_binary(ew.power, "pow_")
Tensor.__iadd__ = Tensor.add_
Tensor.__isub__ = Tensor.sub_
Tensor.__imul__ = Tensor.mul_
Tensor.__itruediv__ = Tensor.div_
Tensor.__ipow__ = Tensor.pow_
Tensor.clamp_ = lambda self, min=None, max=None: inplace(self, lambda c: clamp(c, min, max), "clamp_")
Tensor.exp_ = lambda self: inplace(self, ew.exp, "exp_")
Tensor.neg_ = lambda self: inplace(self, ew.neg, "neg_")


def _constant_fill(tensor, value_maker, name):
    record = _check_inplace(tensor, name) or _carries_tangents(tensor, ())
    data = tensor.array
    value = value_maker(backend.xp_of(data), data.shape, data.dtype)
    zero_history = None
    if tensor._base is None and tensor.grad_fn is not None and tape.state.grad_enabled:
        # PyTorch keeps a filled non-leaf in the graph, with a zero gradient to
        # what it was (y.zero_(); y.sum().backward() gives zeros, not an error).
        # The stand-in carries zeros, so nothing is computed on the old values.
        zero_history = tape.graph_alias(tensor, data=backend.xp_of(data).zeros_like(data)) * 0
    _write(tensor, value, name)
    tensor._bump_version()
    if not tape.state.grad_enabled:
        return tensor
    base = tensor._base
    if base is not None and record:
        # Through a view: the base's region becomes a constant (no gradient flows to what it was).
        _record_on_base(base, tensor, Tensor._make(value))
    elif zero_history is not None:
        old_grad_fn, old_output_nr = tensor.grad_fn, tensor._output_nr
        tensor.grad_fn, tensor._output_nr = zero_history.grad_fn, zero_history._output_nr
        tape.move_retained_grad(tensor, old_grad_fn, old_output_nr)
        tensor._tangents = None  # the tangent of a constant is zero
        _replay_views(tensor)
    elif tensor.grad_fn is not None or tensor._tangents:
        tensor.grad_fn = None   # a constant now: no gradient flows to what it was
        tensor.requires_grad = False
        tensor._tangents = None
        _replay_views(tensor)
    return tensor


Tensor.zero_ = lambda self: _constant_fill(self, lambda xp, s, d: xp.zeros(s, d), "zero_")
Tensor.fill_ = lambda self, value: _constant_fill(
    self, lambda xp, s, d: xp.full(s, float(value) if backend.is_floating(d) else value, d), "fill_")


def uniform_(self, a=0.0, b=1.0, *, generator=None):
    from ..generator import rng_for
    generator = rng_for(self.device, generator, "uniform_")
    return _constant_fill(self, lambda xp, s, d: (generator.random(s) * (b - a) + a).astype(d), "uniform_")


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    from ..generator import rng_for
    generator = rng_for(self.device, generator, "normal_")
    return _constant_fill(self, lambda xp, s, d: (generator.standard_normal(s) * std + mean).astype(d), "normal_")


Tensor.uniform_ = uniform_
Tensor.normal_ = normal_


def copy_(self, source):
    """Copy ``source``'s values into this tensor (broadcast, any device)."""
    source = Tensor(source, dtype=self.dtype, device=self.device) if not isinstance(source, Tensor) else source
    if source.device != self.device:
        source = to(source, self.device)

    def compute(current):
        # The old value is overwritten, so no gradient flows to it: only to source.
        return to(expand(source, self.shape), self.dtype)
    return inplace(self, compute, "copy_", (source,))


Tensor.copy_ = copy_


def setitem(self, index, value):
    index, advanced = _torch_index(self, index, "__setitem__")
    if advanced is not None:
        # PyTorch's order: the region is ``self[select][advanced]`` (see _torch_index)
        _check_basic_index(self, index)
        select, index = index, _index_to_device(advanced, self.device)
        target = self.array[select]
    else:
        select, target = None, self.array
        if not ix.is_basic_index(index):
            index = _index_to_device(index, self.device)
    ix.check_setitem_value(target, index, value)
    if isinstance(value, Tensor) and value.device != self.device:
        value = to(value, self.device)
    record = _check_inplace(self, "__setitem__", (value,)) or _carries_tangents(self, (value,))
    if not record:
        if ix._DETERMINISTIC[0]:        # cross-owner hook (pipeline): repeated indices in a fixed order
            ix.assign_into(target, index, value.array if isinstance(value, Tensor) else value)
        else:
            target[index] = value.array if isinstance(value, Tensor) else value
        self._bump_version()
        return

    def put(current):
        if select is None:
            return ix.index_put(current, value, index=index)
        region = ix.index_put(ix.getitem(current, index=select), value, index=index)
        return ix.index_put(current, region, index=select)
    inplace(self, put, "__setitem__", (value,))


Tensor.__setitem__ = setitem

"""PyTorch's spellings that real programs use, on top of gpugrad's core.

Attached to :class:`gpugrad.Tensor` here, because they are compositions of
ops (the Tensor class sits below the op layer): ``t.t()``,
``mm``/``bmm``/``addmm``, ``narrow``, ``new_zeros`` and friends,
``t.type()``; the typed constructors ``gg.FloatTensor``/``gg.LongTensor``...;
``grad_fn.next_functions`` and ``grad_fn.name()``; ``out=`` for the public
functions.  Everything is a composition of registered ops, so gradients flow.

Examples
--------
>>> import gpugrad as gg
>>> x = gg.ones(2, 3)
>>> x.size()
Size([2, 3])
>>> f"{x.sum():.2f}"
'6.00'
>>> x.t().shape, x.new_zeros(4).dtype
(Size([3, 2]), dtype('float32'))
"""

from __future__ import annotations

import numpy as np

from . import backend
from .amp.autocast_mode import autocast_composite
from .autograd import tape
from .errors import AutogradError, DeviceError, DTypeError, ShapeError
from .tensor import Size, Tensor

__all__ = ["Size", "bernoulli", "normal", "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor",
           "ShortTensor",
           "ByteTensor", "CharTensor", "BoolTensor", "mm", "bmm", "addmm", "narrow", "write_out"]


# Size, t.size(), t.shape, f"{t:.4f}" and t.nelement() are defined in the Tensor
# class itself (gpugrad.tensor); Size is re-exported here for its old import path.


# --------------------------------------------------------------------------
# typed conversion
# --------------------------------------------------------------------------

_TYPE_NAMES = {
    np.dtype("float32"): "FloatTensor", np.dtype("float64"): "DoubleTensor", np.dtype("float16"): "HalfTensor",
    np.dtype("int64"): "LongTensor", np.dtype("int32"): "IntTensor", np.dtype("int16"): "ShortTensor",
    np.dtype("int8"): "CharTensor", np.dtype("uint8"): "ByteTensor", np.dtype("bool"): "BoolTensor",
    backend.bfloat16: "BFloat16Tensor",
}
_DTYPE_OF_NAME = {name: dtype for dtype, name in _TYPE_NAMES.items()}


def _type(self, dtype=None, non_blocking=False):
    """``t.type()``: PyTorch's type string (``'torch.FloatTensor'``, ``'torch.cuda.LongTensor'``);
    ``t.type(dtype)``: ``t`` converted to ``dtype`` (a dtype, a type string or ``gg.FloatTensor``...)."""
    if dtype is None:
        name = _TYPE_NAMES.get(self.array.dtype)
        if name is None:
            raise DTypeError(f"type: PyTorch has no tensor type name for dtype {self.array.dtype}")
        return ("torch.cuda." if self.is_cuda else "torch.") + name
    if isinstance(dtype, _TypedTensorMeta):
        target = dtype._dtype
    elif isinstance(dtype, str) and dtype.rsplit(".", 1)[-1] in _DTYPE_OF_NAME:
        target = _DTYPE_OF_NAME[dtype.rsplit(".", 1)[-1]]
        if ".cuda." in dtype and not self.is_cuda:
            return self.to("cuda", target)
    else:
        target = backend.as_dtype(dtype)
    return self.to(target)


Tensor.type = _type


class _TypedTensorMeta(type):
    """``gg.FloatTensor(...)`` builds a tensor; ``isinstance(t, gg.FloatTensor)`` checks dtype and CPU."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.array.dtype == cls._dtype and not obj.is_cuda

    def __call__(cls, *args, device=None):
        from .ops.creation import empty, tensor
        if not args:
            return empty(0, dtype=cls._dtype, device=device)
        if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
            return empty(*args, dtype=cls._dtype, device=device)       # sizes: uninitialised, as PyTorch
        if len(args) != 1:
            raise TypeError(f"{cls.__name__}: give sizes (ints) or one sequence of data, got {len(args)} arguments")
        data = args[0]
        if isinstance(data, Size):
            return empty(*data, dtype=cls._dtype, device=device)
        return tensor(data, dtype=cls._dtype, device=device)

    def __repr__(cls):
        return f"<class 'gpugrad.{cls.__name__}'>"


def _typed(name, dtype):
    return _TypedTensorMeta(name, (), {"_dtype": np.dtype(dtype), "__doc__": (
        f"``gg.{name}(data)`` is ``gg.tensor(data, dtype={np.dtype(dtype).name})``; ``gg.{name}(2, 3)`` an "
        f"uninitialised {np.dtype(dtype).name} tensor of that shape; ``isinstance(t, gg.{name})`` checks the dtype.")})


FloatTensor = _typed("FloatTensor", "float32")
DoubleTensor = _typed("DoubleTensor", "float64")
HalfTensor = _typed("HalfTensor", "float16")
BFloat16Tensor = _typed("BFloat16Tensor", "bfloat16")
LongTensor = _typed("LongTensor", "int64")
IntTensor = _typed("IntTensor", "int32")
ShortTensor = _typed("ShortTensor", "int16")
CharTensor = _typed("CharTensor", "int8")
ByteTensor = _typed("ByteTensor", "uint8")
BoolTensor = _typed("BoolTensor", "bool")


# --------------------------------------------------------------------------
# new_* (same dtype and device as self unless told otherwise)
# --------------------------------------------------------------------------
def _new_like(self, dtype, device):
    return (self.array.dtype if dtype is None else backend.as_dtype(dtype)), (self.device if device is None else device)


def _new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    """Zeros of ``size``, with this tensor's dtype and device by default."""
    from .ops.creation import zeros
    dtype, device = _new_like(self, dtype, device)
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    """Ones of ``size``, with this tensor's dtype and device by default."""
    from .ops.creation import ones
    dtype, device = _new_like(self, dtype, device)
    return ones(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    """An uninitialised tensor of ``size``, with this tensor's dtype and device by default."""
    from .ops.creation import empty
    dtype, device = _new_like(self, dtype, device)
    return empty(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """``fill_value`` everywhere in ``size``, with this tensor's dtype and device by default."""
    from .ops.creation import full
    dtype, device = _new_like(self, dtype, device)
    return full(size, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def _new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    """A copy of ``data`` with this tensor's dtype and device by default (never sharing memory)."""
    from .ops.creation import tensor
    dtype, device = _new_like(self, dtype, device)
    return tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


Tensor.new_zeros, Tensor.new_ones, Tensor.new_empty = _new_zeros, _new_ones, _new_empty
Tensor.new_full, Tensor.new_tensor = _new_full, _new_tensor


# --------------------------------------------------------------------------
# t, mm, bmm, addmm, narrow: compositions of registered ops (so differentiable)
# --------------------------------------------------------------------------
def _t(self):
    """Transpose of a matrix (tensors with fewer than 2 dimensions come back unchanged)."""
    if self.ndim > 2:
        raise ShapeError(f"t: expects a tensor with at most 2 dimensions, got shape {tuple(self.array.shape)}; "
                         "use t.transpose(dim0, dim1) or t.mT for batches")
    return self.transpose(0, 1) if self.ndim == 2 else self


def mm(input, mat2, *, out=None):
    """Matrix product of two 2-D tensors (no broadcasting; see :func:`gpugrad.matmul` for that).

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.mm(gg.ones(2, 3), gg.ones(3, 4)).shape
    Size([2, 4])
    """
    if not isinstance(input, Tensor) or not isinstance(mat2, Tensor):
        raise TypeError("mm: expects two tensors")
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: expects two 2-D tensors, got shapes {tuple(input.array.shape)} and "
                         f"{tuple(mat2.array.shape)}; use gg.matmul for batched or 1-D operands")
    if input.array.shape[1] != mat2.array.shape[0]:
        raise ShapeError(f"mm: shapes {tuple(input.array.shape)} and {tuple(mat2.array.shape)} cannot be multiplied "
                         f"({input.array.shape[1]} != {mat2.array.shape[0]})")
    return write_out(input @ mat2, out, "mm", (input, mat2))


def bmm(input, mat2, *, out=None):
    """Batched matrix product of two 3-D tensors ``(b, n, m) @ (b, m, p) -> (b, n, p)``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.bmm(gg.ones(5, 2, 3), gg.ones(5, 3, 4)).shape
    Size([5, 2, 4])
    """
    if input.ndim != 3 or mat2.ndim != 3:
        raise ShapeError(f"bmm: expects two 3-D tensors, got shapes {tuple(input.array.shape)} and "
                         f"{tuple(mat2.array.shape)}")
    (b1, _, m1), (b2, m2, _) = input.array.shape, mat2.array.shape
    if b1 != b2 or m1 != m2:
        raise ShapeError(f"bmm: shapes {tuple(input.array.shape)} and {tuple(mat2.array.shape)} do not fit: "
                         "batch sizes must be equal and the inner dimensions must agree")
    return write_out(input @ mat2, out, "bmm", (input, mat2))


@autocast_composite("addmm")   # cross-owner hook: a lower-precision op in PyTorch's autocast lists
def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    """``beta * input + alpha * (mat1 @ mat2)``; ``input`` broadcasts to the product's shape.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.addmm(gg.ones(3), gg.ones(2, 4), gg.ones(4, 3), alpha=0.5).tolist()
    [[3.0, 3.0, 3.0], [3.0, 3.0, 3.0]]
    """
    product = mm(mat1, mat2)
    try:
        fits = np.broadcast_shapes(tuple(input.array.shape), tuple(product.array.shape)) == tuple(product.array.shape)
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"addmm: input of shape {tuple(input.array.shape)} does not broadcast to the product's "
                         f"shape {tuple(product.array.shape)}")
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        # PyTorch ignores input entirely (even NaN) when beta is 0.
        result = product
    else:
        result = (input if beta == 1 else input * beta) + product
    return write_out(result, out, "addmm", (input, mat1, mat2))


def narrow(input, dim, start, length):
    """The slice ``start:start + length`` of dimension ``dim`` (a view, differentiable).

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.arange(10).narrow(0, 2, 3).tolist()
    [2, 3, 4]
    """
    shape = input.array.shape
    if not shape:
        raise ShapeError("narrow: cannot narrow a 0-d tensor")
    if not -len(shape) <= dim < len(shape):
        raise IndexError(f"narrow: dim {dim} is out of range for shape {tuple(shape)}")
    dim %= len(shape)
    start = int(start)
    if start < 0:
        start += shape[dim]
    if not 0 <= start <= shape[dim] or length < 0 or start + length > shape[dim]:
        raise IndexError(f"narrow: start {start} and length {length} exceed dimension {dim} of size {shape[dim]} "
                         f"(shape {tuple(shape)})")
    index = (slice(None),) * dim + (slice(start, start + int(length)),)
    return input[index]


Tensor.t = _t
Tensor.mm = lambda self, mat2: mm(self, mat2)
Tensor.bmm = lambda self, mat2: bmm(self, mat2)
Tensor.addmm = lambda self, mat1, mat2, *, beta=1, alpha=1: addmm(self, mat1, mat2, beta=beta, alpha=alpha)
Tensor.narrow = narrow


# --------------------------------------------------------------------------
# out=
# --------------------------------------------------------------------------
def write_out(result, out, op, inputs=()):
    """PyTorch's ``out=``: ``result`` written into ``out`` by :mod:`gpugrad.ops.out_argument`'s rules for
    ``op`` (``result`` itself when ``out`` is None)."""
    if out is None:
        return result
    from .ops.out_argument import call_with_out
    return call_with_out(lambda *inputs: result, op, tuple(inputs), {}, out)


# --------------------------------------------------------------------------
# grad_fn.name() and grad_fn.next_functions
# --------------------------------------------------------------------------
class NodeName(str):
    """A graph node's name: the string gpugrad prints (``'mul'``), callable for PyTorch's
    spelling (``grad_fn.name()`` gives ``'MulBackward0'``)."""

    def __call__(self):
        text = str(self)
        if text == "AccumulateGrad":
            return "torch::autograd::AccumulateGrad"
        if text and text[0].isupper():           # a custom Function's class name, or a named node
            return text + "Backward"
        return "".join(part.capitalize() for part in text.split("_") if part) + "Backward0"


def _next_functions(self):
    """PyTorch's ``grad_fn.next_functions``: ``(node, output_nr)`` per input, ``(None, 0)`` where none."""
    return tuple((None, 0) if edge is None else (edge[0], edge[1]) for edge in self.next_edges)


def _install_node_names():
    from .autograd.tape import AccumulateGrad, Node
    from .ops.registry import OpNode
    Node.next_functions = property(_next_functions)
    AccumulateGrad.variable = property(lambda self: self.leaf, doc="The leaf tensor this node accumulates into.")
    pending = [Node]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        attribute = cls.__dict__.get("name")
        if isinstance(attribute, str):
            cls.name = NodeName(attribute)
        elif isinstance(attribute, property):
            getter = attribute.fget
            cls.name = property(lambda self, getter=getter: NodeName(getter(self)))
    assert isinstance(OpNode.__dict__["name"], property)


_install_node_names()


# --------------------------------------------------------------------------
# bernoulli and normal, with generator=
# --------------------------------------------------------------------------
def bernoulli(input, p=None, *, generator=None, out=None):  # noqa: A002 - PyTorch's name
    """0/1 draws: element ``i`` is 1 with probability ``input[i]`` (or ``p``), in ``input``'s dtype.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.bernoulli(gg.tensor([0.0, 1.0, 1.0, 0.0])).tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    from .generator import rng_for
    probabilities = input.array if p is None else backend.xp_of(input.array).full(input.array.shape, p,
                                                                                    dtype=input.array.dtype)
    xp = backend.xp_of(probabilities)
    if not backend.is_floating(probabilities.dtype):
        raise DTypeError(f"bernoulli: probabilities must be floating, got {probabilities.dtype}")
    if bool(xp.any((probabilities < 0) | (probabilities > 1) | xp.isnan(probabilities))):
        raise ValueError("bernoulli: every probability must lie in [0, 1]")
    rng = rng_for(input.device, generator, "bernoulli")
    draws = rng.random(probabilities.shape)
    result = Tensor._make((draws < probabilities).astype(probabilities.dtype))
    return write_out(result, out, "bernoulli")


def _bernoulli_(self, p=0.5, *, generator=None):
    """Fill with 0/1 draws, each 1 with probability ``p`` (a number or a tensor of this shape)."""
    from .generator import rng_for
    from .ops.methods import _constant_fill
    rng = rng_for(self.device, generator, "bernoulli_")
    if isinstance(p, Tensor):
        probabilities = backend.to_device(p.array, self.device)
    else:
        if not 0 <= p <= 1:
            raise ValueError(f"bernoulli_: p={p!r} must lie in [0, 1]")
        probabilities = p
    return _constant_fill(self, lambda xp, s, d: (rng.random(s) < probabilities).astype(d), "bernoulli_")


Tensor.bernoulli = lambda self, p=None, *, generator=None: bernoulli(self, p, generator=generator)
Tensor.bernoulli_ = _bernoulli_


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, out=None):
    """Normal draws: ``normal(0.0, 1.0, size=(2, 3))``, or elementwise ``normal(mean_tensor, std_tensor)``.

    The draws are not differentiable here; for a reparameterised sample write
    ``mean + std * gg.randn_like(mean)``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.normal(2.0, 0.0, size=(3,)).tolist()
    [2.0, 2.0, 2.0]
    """
    from .generator import rng_for
    for name, value in (("mean", mean), ("std", std)):
        if isinstance(value, Tensor) and value.requires_grad and tape.is_grad_enabled():
            raise AutogradError(f"normal: {name} requires grad, but the draws are not differentiable; write "
                                "mean + std * gg.randn_like(mean) for a reparameterised sample")
    tensors = [v for v in (mean, std) if isinstance(v, Tensor)]
    if tensors:
        if size is not None:
            raise TypeError("normal: give size= only with float mean and std")
        like = tensors[0]
        means = mean.array if isinstance(mean, Tensor) else mean
        stds = std.array if isinstance(std, Tensor) else std
        shape = np.broadcast_shapes(*[t.array.shape for t in tensors])
        device, dtype = like.device, like.array.dtype
    else:
        if size is None:
            raise TypeError("normal: with float mean and std give size=, e.g. gg.normal(0.0, 1.0, size=(3,))")
        means, stds = mean, std
        shape = tuple(size) if isinstance(size, (tuple, list)) else (int(size),)
        device = backend.as_device(device)
        dtype = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    xp = device.xp
    if bool(xp.any(xp.asarray(stds) < 0)):
        raise ValueError("normal: std must be non-negative")
    draws = rng_for(device, generator, "normal").standard_normal(shape)
    result = Tensor._make((draws * stds + means).astype(dtype, copy=False))
    return write_out(result, out, "normal")


# --------------------------------------------------------------------------
# small top-level functions PyTorch scripts call
# --------------------------------------------------------------------------
def _arrays_of(op, input, other):
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError(f"{op}: expects two tensors, got {type(input).__name__} and {type(other).__name__}")
    if input.device != other.device:
        raise DeviceError(f"{op}: tensors on {input.device} and {other.device}; move one of them")
    return input.array, other.array


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|input - other| <= atol + rtol * |other|`` (a bool tensor), as ``torch.isclose``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.isclose(gg.tensor([1.0, 2.0]), gg.tensor([1.0 + 1e-7, 2.1])).tolist()
    [True, False]
    """
    a, b = _arrays_of("isclose", input, other)
    return Tensor._make(backend.xp_of(a).isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when every element is close (see :func:`isclose`); shapes must broadcast."""
    return bool(isclose(input, other, rtol, atol, equal_nan).array.all())


def equal(input, other):
    """True when both tensors have the same shape and the same values."""
    a, b = _arrays_of("equal", input, other)
    return tuple(a.shape) == tuple(b.shape) and bool((a == b).all())


def is_floating_point(input):  # noqa: A002 - PyTorch's name
    """True for floating dtypes."""
    return backend.is_floating(input.array.dtype)


def all_(input, dim=None, keepdim=False):  # noqa: A002
    """``gg.all(t)``: whether every element is true (along ``dim``)."""
    return input.all() if dim is None else input.all(dim, keepdim)


def any_(input, dim=None, keepdim=False):  # noqa: A002
    """``gg.any(t)``: whether some element is true (along ``dim``)."""
    return input.any() if dim is None else input.any(dim, keepdim)


def relu(input):  # noqa: A002
    """``gg.relu(x)``, as ``gg.nn.functional.relu``."""
    from .nn import functional
    return functional.relu(input)


_THREADS = [0]


def set_num_threads(count):
    """Recorded only: NumPy's and CuPy's thread pools are set by their own environment variables."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"set_num_threads: count={count!r} must be a positive integer")
    _THREADS[0] = count


def get_num_threads():
    """The count given to :func:`set_num_threads` (else the CPU count)."""
    import os
    return _THREADS[0] or os.cpu_count() or 1

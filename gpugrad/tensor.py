"""The Tensor: an array (NumPy or CuPy) plus what autograd needs to know about it.

A Tensor is deliberately thin.  It holds

* ``array``: the raw ``numpy.ndarray`` or ``cupy.ndarray`` (``data`` is PyTorch's detached view of it);
* ``grad_fn``/``_output_nr``: the graph node that produced it (``None`` for leaves);
* ``requires_grad`` and ``grad`` for leaves;
* ``_version_box``: ``[version, sequence of the latest change]``, shared by a
  tensor and its views and updated by every in-place change, so the backward
  pass can tell when a tensor it saved has been modified since;
* ``_tangents``: forward-mode tangents, ``{level: Tensor}``, or ``None``.

Every operation lives in :mod:`gpugrad.ops`, which attaches the methods and
operators (``t.exp()``, ``a @ b``) to this class from the same declaration that
defines the op's forward, VJP and JVP.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import backend
from .errors import AutogradError, DTypeError

next_sequence = itertools.count(1).__next__
"""Creation order of graph nodes (a node's consumers are always created after
it); in-place changes draw from the same count."""

_engine = {}
"""The autograd engine's entry points, looked up once on first use (see Tensor.backward)."""

LAST_INPLACE = [0]
"""The sequence number drawn by the latest in-place change of any tensor.  A
graph node recorded after it (a larger sequence) cannot have had its saved
tensors modified, so backward skips the node's per-input version checks
(which cost as much as a small op's gradient)."""



class Size(tuple):
    """A shape: a tuple of ints that prints as ``Size([2, 3])`` (PyTorch's ``torch.Size``).

    Examples
    --------
    >>> import gpugrad as gg
    >>> s = gg.Size([2, 3])
    >>> s, s == (2, 3), s.numel(), s[1:]
    (Size([2, 3]), True, 6, Size([3]))
    """

    def __new__(cls, sizes=()):
        return super().__new__(cls, (int(n) for n in sizes))

    def __repr__(self):
        return f"Size({list(self)})"

    __str__ = __repr__

    def numel(self):
        """The number of elements a tensor of this shape holds."""
        count = 1
        for n in self:
            count *= n
        return count

    def __getitem__(self, index):
        result = tuple.__getitem__(self, index)
        return Size(result) if isinstance(index, slice) else result

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __reduce__(self):
        return (Size, (tuple(self),))


# An array's shape already holds Python ints: Tensor.shape wraps it without
# Size.__new__'s per-element int() (the property is read on every op's hot path).
_size_from_ints = tuple.__new__

class Tensor:
    """An n-dimensional array on the CPU (NumPy) or a GPU (CuPy) that can record
    the operations applied to it for automatic differentiation.

    Create tensors with :func:`gpugrad.tensor`, :func:`gpugrad.zeros`, ... rather
    than calling this class directly.

    Examples
    --------
    >>> import gpugrad as gg
    >>> x = gg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.], device='cpu')
    """

    # Defaults live on the class, so making a tensor stores only what differs:
    # the hot path of every op (``_make``) sets one or two attributes, not eleven.
    requires_grad = False
    grad = None
    grad_fn = None
    _output_nr = 0
    _version_box = None
    _accumulator = None
    _leaf_edge = None        # (its AccumulateGrad node, 0), made once per leaf
    _tangents = None
    _retains_grad = False
    _base = None             # the tensor whose memory a view looks into (see ops.registry._link_view)
    _view_chain = ()         # the view ops, with their parameters, that take _base to this view
    _view_without_grad = False   # made under no_grad: a view, but not a differentiable one
    _views = None            # weak references to the live differentiable views of this base
    name = None

    # NumPy must not treat a Tensor as a scalar or sequence in ``ndarray * tensor``;
    # this makes NumPy defer to Tensor.__rmul__ and friends.
    __array_priority__ = 1000

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        array = _to_array(data, dtype, device)
        self.array = array
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ make
    @staticmethod
    def _make(array, grad_fn=None, output_nr=0):
        """Wrap a raw array without copying (the hot path of every op)."""
        tensor = object.__new__(Tensor)
        tensor.array = array
        if grad_fn is not None:
            tensor.grad_fn = grad_fn
            tensor._output_nr = output_nr
            tensor.requires_grad = True
        return tensor

    # ------------------------------------------------------------ properties
    @property
    def shape(self):
        """The shape, as a :class:`Size` (a tuple of ints that prints like PyTorch's)."""
        return _size_from_ints(Size, self.array.shape)

    @property
    def ndim(self):
        return self.array.ndim

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def device(self) -> backend.Device:
        return backend.device_of(self.array)

    @property
    def is_cuda(self) -> bool:
        return backend.is_gpu_array(self.array)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        return 0 if self._version_box is None else self._version_box[0]

    def _shared_version_box(self):
        """The version counter, created on first need (most tensors never need one).

        A list ``[version, sequence]`` shared with views: how many in-place
        changes the memory has had, and the :data:`next_sequence` number drawn
        by the latest; a graph node recorded before that number saved an
        older value.
        """
        box = self._version_box
        if box is None:
            box = self._version_box = [0, 0]
        return box

    def _bump_version(self):
        """Record an in-place change of ``data`` (graphs that saved this tensor notice)."""
        bump_versions((self,))

    def numel(self) -> int:
        return int(self.array.size)

    def size(self, dim=None):
        """The shape as a :class:`Size`, or the length of dimension ``dim``."""
        shape = self.array.shape
        if dim is None:
            return Size(shape)
        if not shape:
            raise IndexError(f"size: dimension {dim} specified, but a 0-d tensor has no dimensions")
        if not -len(shape) <= dim < len(shape):
            raise IndexError(f"size: dimension {dim} is out of range for a tensor of shape {tuple(shape)} "
                             f"(valid: {-len(shape)} to {len(shape) - 1})")
        return shape[dim]

    def nelement(self) -> int:
        return int(self.array.size)

    def dim(self) -> int:
        return self.array.ndim

    def element_size(self) -> int:
        return self.array.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def __len__(self):
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    # ------------------------------------------------------------- autograd
    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` on a leaf in place; returns ``self``."""
        if self.grad_fn is not None:
            if not requires_grad:
                raise AutogradError(
                    "requires_grad_: only leaf tensors can stop requiring grad; "
                    "use t.detach() to get a tensor outside the graph")
            return self
        if requires_grad and self.array.dtype.kind not in "fc" and self.array.dtype != backend.bfloat16:
            raise DTypeError(
                f"requires_grad_: only floating tensors can require gradients, got {self.array.dtype} "
                f"(shape {tuple(self.shape)}); convert first with t.float() or t.to(gg.float64)")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        from .autograd.tape import retain_grad
        retain_grad(self)
        return self

    @property
    def retains_grad(self):
        """True for a non-leaf tensor whose ``.grad`` backward fills (after :meth:`retain_grad`)."""
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` when the gradient of this tensor is computed.

        The hook may return a replacement gradient.  Returns a handle whose
        ``remove()`` unregisters the hook.
        """
        from .autograd.tape import register_tensor_hook
        return register_tensor_hook(self, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` after backward has updated this leaf's ``.grad``
        (not for ``gg.grad``).  Returns a handle with ``remove()``."""
        from .autograd.tape import register_post_accumulate_grad_hook
        return register_post_accumulate_grad_hook(self, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf.

        Parameters
        ----------
        gradient : Tensor, optional
            Gradient of some scalar with respect to this tensor; required unless
            this tensor has a single element.
        retain_graph : bool, optional
            Keep the graph's saved tensors so backward can run again (defaults
            to ``create_graph``).
        create_graph : bool
            Record the backward pass too, for higher-order derivatives.
        inputs : sequence of Tensor, optional
            Accumulate only into these leaves.
        """
        engine = _engine.get("backward")
        if engine is None:
            # The engine imports this module (it makes tensors), so it is imported when
            # first needed, not when this module loads: no import cycle at load time.
            from .autograd.tape import backward as engine
            _engine["backward"] = engine
        engine([self], None if gradient is None else [gradient], retain_graph=retain_graph,
               create_graph=create_graph, inputs=inputs)

    @property
    def data(self):
        """PyTorch's ``t.data``: a tensor sharing this one's memory, outside the graph.

        Unlike :meth:`detach`, the result has a version counter of its own, so
        in-place changes made through it (``p.data.add_(g, alpha=-lr)``) are not
        seen by the graph's saved-tensor checks, as in PyTorch.  The raw NumPy
        or CuPy array is :attr:`array`.

        Examples
        --------
        >>> import gpugrad as gg
        >>> w = gg.ones(3, requires_grad=True)
        >>> d = w.data
        >>> d.requires_grad, d.grad_fn is None
        (False, True)
        >>> _ = d.mul_(2)
        >>> w
        tensor([2., 2., 2.], device='cpu', requires_grad=True)
        """
        return Tensor._make(self.array)

    @data.setter
    def data(self, value):
        # ``p.data = other`` swaps the memory under p, keeping p's identity,
        # graph role and .grad, as PyTorch does.
        if not isinstance(value, Tensor):
            raise TypeError(f"t.data = value: value must be a Tensor, got {type(value).__name__}; "
                            "wrap it with gg.tensor(...) (the raw array is t.array)")
        self.array = value.array

    def detach(self):
        """A tensor sharing this one's data (and version counter) but outside the graph."""
        out = Tensor._make(self.array)
        out._version_box = self._shared_version_box()
        # NOTE: no reference back to self: a detached loss must not keep its graph alive.
        return out

    def detach_(self):
        if self._base is not None and self.grad_fn is not None:
            raise AutogradError("detach_: cannot detach a view in place; use t.detach()")
        self.grad_fn = None
        self.requires_grad = False
        return self

    # ------------------------------------------------------------ transfers
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (copied from the GPU; shared on the CPU)."""
        return backend.to_numpy(self.array)

    def __array__(self, dtype=None, copy=None):
        if backend.is_gpu_array(self.array):
            raise TypeError(
                "np.asarray(tensor) on a cuda tensor: NumPy cannot read GPU memory implicitly; "
                "call t.numpy() or t.cpu() first")
        return self.array if dtype is None else self.array.astype(dtype, copy=False)

    def __dlpack__(self, *args, **kwargs):
        if self.array.dtype == backend.bfloat16 and not backend.is_gpu_array(self.array):
            raise DTypeError("__dlpack__: NumPy cannot export bfloat16 through DLPack (its DLPack has no "
                             f"bfloat16 code); shape {tuple(self.shape)} on cpu. Export t.float() instead, or "
                             "move the tensor to cuda, where CuPy exports bfloat16")
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def item(self):
        if self.array.size != 1:
            from .errors import ShapeError
            raise ShapeError(f"item: only one-element tensors can be converted to a Python number, "
                             f"got shape {tuple(self.shape)}; index or reduce first")
        return self.array.reshape(()).item() if not backend.is_gpu_array(self.array) else self.array.item()

    def tolist(self):
        return backend.to_numpy(self.array).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.array.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self.item())

    def __bool__(self):
        if self.array.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.array.size} elements is "
                             "ambiguous; use t.any() or t.all()")
        return bool(self.item())

    def __hash__(self):
        return id(self)

    def __iter__(self):
        if self.array.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.array.shape[0]))

    def __repr__(self):
        host = backend.to_numpy(self.array)
        if host.dtype == backend.bfloat16:
            host = host.astype(np.float32)    # exact; NumPy prints ml_dtypes' bfloat16 as if it were an integer
        values = np.array2string(host, separator=", ", precision=4,
                                 prefix="tensor(", threshold=200, edgeitems=3)
        extras = [f"device='{self.device}'"]    # always, cpu too (the API promises it); PyTorch's order
        if self.array.dtype not in (backend.get_default_dtype(), backend.int64, backend.bool_):
            extras.append(f"dtype={self.array.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + values + "".join(", " + e for e in extras) + ")"

    # Comparisons make elementwise tensors, so Tensors cannot be dict keys by
    # value; identity hashing above matches PyTorch.
    __str__ = __repr__

    def __format__(self, format_spec):
        """``f"{loss:.4f}"`` formats a 0-d tensor's value, as PyTorch does; other tensors take no spec."""
        if self.array.ndim == 0:
            return self.item().__format__(format_spec)
        if format_spec:
            raise TypeError(f"unsupported format string {format_spec!r} for a tensor of shape "
                            f"{tuple(self.array.shape)}; only 0-d tensors take a format spec (use t.item() or "
                            "index an element first)")
        return str(self)


def _to_array(data, dtype=None, device=None):
    """Turn Python data / NumPy / CuPy / Tensor into an array on the device."""
    dtype = backend.as_dtype(dtype)
    device = backend.as_device(device) if device is not None else None
    if isinstance(data, Tensor):
        data = data.array
    if backend.is_gpu_array(data):
        if device is None:
            device = backend.device_of(data)
        array = backend.to_device(data, device)
        return array if dtype is None else array.astype(dtype, copy=False)
    if isinstance(data, (list, tuple)) and any(isinstance(item, Tensor) for item in _flatten(data)):
        data = _nested_to_numpy(data)
    array = np.asarray(data)
    if dtype is None:
        if not isinstance(data, (np.ndarray, np.generic)):
            # Python numbers follow PyTorch: floats become the default float
            # dtype (float32), integers int64.  NumPy input keeps its dtype.
            if array.dtype.kind == "f":
                array = array.astype(backend.get_default_dtype())
            elif array.dtype.kind in "iu":
                array = array.astype(backend.int64)
        if array.dtype.kind not in "fiub" and array.dtype != backend.bfloat16:
            raise DTypeError(f"tensor: cannot make a tensor from data of dtype {array.dtype}; "
                             "give numbers, nested lists of numbers or a numeric array")
    else:
        array = array.astype(dtype, copy=False)
    if device is None:
        device = backend.get_default_device()
    if device.type == "cuda":
        return backend.to_device(array, device)
    return array


def _flatten(data):
    for item in data:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


def _nested_to_numpy(data):
    if isinstance(data, Tensor):
        return backend.to_numpy(data.array)
    if isinstance(data, (list, tuple)):
        return [_nested_to_numpy(item) for item in data]
    return data


def bump_versions(tensors):
    """``t._bump_version()`` for each of ``tensors`` (an optimizer step's parameters), in one call."""
    sequence = LAST_INPLACE[0] = next_sequence()
    for tensor in tensors:
        box = tensor._version_box
        if box is None:
            box = tensor._version_box = [0, 0]
        box[0] += 1
        box[1] = sequence


"""How an op is declared, applied and differentiated.

An op is declared once, with its forward, VJP and JVP side by side::

    mul = defop(
        "mul",
        forward=lambda a, b: a * b,                    # raw arrays in, raw array out
        vjp=(lambda g, out, a, b: g * b,               # one rule per input ...
             lambda g, out, a, b: g * a),
        jvp=lambda t, out, a, b: t[0] * b + a * t[1],  # tangents ``t`` aligned with inputs
        promote=True, method="mul", samples=[...])

``defop`` returns a *polymorphic* function: called with Tensors it records the
op on the tape (and carries forward-mode tangents); called with raw NumPy/CuPy
arrays only, it just runs the forward.  VJP and JVP rules are written with
operators and these functions, so the same rule runs

* on raw arrays during an ordinary ``backward()`` (fast: no Tensor wrappers), and
* on Tensors under ``create_graph=True`` or forward mode, where it is recorded
  and can be differentiated again (higher-order derivatives).

The engine handles broadcasting once for every op: a VJP may return a
gradient in the broadcast shape of the output and the engine sums it back to
the input's shape (:func:`sum_to`), and casts it to the input's dtype.

``vjp`` is either a tuple with one rule per input (rules for inputs that need
no gradient are never called) or one function returning a tuple.  Rules get
``(g, out, *inputs, **params)``: the output's gradient, the output, the inputs
(saved tensors, or :class:`InputMeta` with ``shape``/``dtype`` for inputs the
op declared it does not need), and the op's keyword parameters.  A rule that
returns ``g`` unchanged is written :func:`pass_through` and never called.
Fused ops may declare a ``residual`` (something the forward computed that
backward reuses: cross-entropy's softmax) and a ``vjp_prologue`` (a first step
shared by all their rules: ``linear_relu`` masks ``g`` once).

Per-op cost is Python's, not the arithmetic's, for small arrays, so the common
case has a lean path: :func:`tensor_method` makes ``x.exp()`` and ``x * 2.0``
one frame that runs the forward and fills in the node itself; a node keeps the
argument tuple and arrays it was called with and, when only one input needs a
gradient (most ops), that one edge; version checks are one comparison with the
sequence number of the latest in-place change.
"""

from __future__ import annotations

import weakref

import numpy as np

from .. import backend
from ..autograd import tape
from ..autograd.tape import Node, edge_of, lean_modes, next_sequence, state, threads_off_default
from ..errors import AutogradError, DeviceError, GpugradError, ShapeError, describe
from ..tensor import LAST_INPLACE, Tensor

_new_object = object.__new__
_ndarray = np.ndarray

OPS: dict = {}
"""Every registered op by name; the test battery iterates over it."""


class Op:
    """A primitive: forward on raw arrays, VJP and JVP rules, test samples."""

    __slots__ = ("name", "forward", "vjp", "jvp", "vjp_per_input", "vjp_prologue", "save", "save_output", "view",
                 "unusual", "residual", "plain_vjp", "promote", "differentiable", "samples", "reference", "check", "doc",
                 "function", "tolerance", "second_order", "needs", "lean_save", "unneeded")

    def __repr__(self):
        return f"Op({self.name!r})"


class InputMeta:
    """Stands in for an input the op does not save: only its shape and dtype.

    Rules that read ``x.shape`` or ``x.dtype`` of an unsaved input get one of
    these; the engine also reads the shape and dtype a gradient must have off
    it (or off the saved array itself).
    """

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"InputMeta(shape={self.shape}, dtype={self.dtype})"


def pass_through(g, out, *inputs, **params):
    """The VJP rule of an input whose gradient is the output's, unchanged
    (``a`` in ``a + b``, a cast): the engine hands ``g`` on without calling it."""
    return g


def _meta_of(array):
    meta = _new_object(InputMeta)
    meta.shape = array.shape
    meta.dtype = array.dtype
    return meta


def defop(name, forward, vjp=None, jvp=None, *, save=True, needs=None, save_output=False, view=False,
          promote=False, differentiable=True, samples=(), reference=None, check=None, method=None,
          tolerance=None, second_order=True, residual=False, vjp_prologue=None):
    """Register an op and return its polymorphic function.

    Parameters
    ----------
    name : str
        Op name, shown in errors, ``grad_fn`` and graph pictures.
    forward : callable
        ``forward(*arrays, **params) -> array``, written with the array module
        of its inputs (:func:`gpugrad.backend.xp_of`).
    vjp : tuple of callables or callable
        Reverse-mode rules (see module docstring).
    jvp : callable
        ``jvp(tangents, out, *inputs, **params)`` -> tangent of the output.
    save : bool or tuple of int
        Which inputs the rules need (``True``: all; a tuple: those indices).
        Unsaved inputs reach the rules as :class:`InputMeta`, and changing
        them in place after the op does not invalidate the graph.
    needs : tuple of tuples of int, optional
        Per input, the inputs its VJP rule reads (``mul``: ``((1,), (0,))``,
        the gradient of ``a`` needs ``b`` and that of ``b`` needs ``a``).  When
        given, each node keeps only what the rules of its inputs that require
        grad need, so ``z = y * 3; y.add_(1); z.backward()`` works: the
        gradient of ``3y`` never reads ``y``.  Overrides ``save``.
    save_output : bool
        Whether the rules use ``out``.
    view : bool
        The output shares memory with input 0 (reshape, transpose, slicing):
        it shares its version counter, so in-place changes through either
        are seen by graphs that saved the other.
    promote : bool
        Apply PyTorch's type promotion to the inputs first (binary arithmetic).
    differentiable : bool
        ``False`` for ops with no gradient (comparisons, argmax).
    samples : sequence
        Example inputs for the op battery (see :mod:`gpugrad.ops.samples`).
    reference : callable
        Independent NumPy implementation the battery compares the forward with.
    check : callable
        ``check(*inputs, **params)`` raising a clear error for bad input before
        anything runs.
    method : str or tuple of str
        Names under which the op becomes a ``Tensor`` method.
    residual : bool
        ``forward`` returns ``(out, residual)``: something it computed on the
        way that backward can reuse (cross-entropy's softmax).  The node keeps
        it, and the rules get it as ``residual=`` in an ordinary backward; under
        ``create_graph`` they get ``residual=None`` and must recompute with
        ops, so that the gradient is itself differentiable.
    vjp_prologue : callable
        ``vjp_prologue(g, out, *inputs, **params) -> g'``, run once per backward
        before the rules, which then get ``g'``: the shared first step of a
        fused op's rules (``linear_relu`` masks ``g`` once, not once per input).
    """
    op = Op()
    op.name = name
    op.forward = forward
    op.vjp_per_input = isinstance(vjp, tuple)
    op.vjp = vjp
    op.jvp = jvp
    op.save = save if save is True else tuple(save or ())
    op.needs = None if needs is None else tuple(tuple(reads) for reads in needs)
    op.unneeded = {}     # edge pattern -> inputs no rule then reads (filled by _fill as patterns occur)
    if op.needs is not None:
        op.save = True      # the loop in _fill keeps every input; _fill then drops the unneeded ones
    # What the lean path of tensor_method keeps (one Tensor input, at 0 or 1;
    # the other argument is a constant): the positions whose own rule reads
    # the input itself.  The same ``save is True or position in save`` test
    # as before, so the hot path does not change.
    op.lean_save = op.save if op.needs is None else tuple(
        position for position, reads in enumerate(op.needs) if position in reads)
    op.save_output = save_output
    op.view = view
    op.promote = promote
    op.differentiable = differentiable and vjp is not None
    # Needs more than tensor_method's lean path: an input check, a view's shared counter, no node.
    op.unusual = check is not None or view or not op.differentiable or residual
    op.residual = residual
    op.vjp_prologue = vjp_prologue
    # Rules the engine may call straight away on raw arrays: one per input, nothing before them.
    op.plain_vjp = op.vjp_per_input and not residual and vjp_prologue is None
    op.samples = tuple(samples)
    op.reference = reference
    op.check = check
    op.tolerance = tolerance
    op.second_order = second_order
    op.doc = forward.__doc__
    if name in OPS:
        raise GpugradError(f"defop: an op named {name!r} is already registered")
    OPS[name] = op

    def function(*args, **params):
        for arg in args:
            if isinstance(arg, Tensor):
                return apply_op(op, args, params)
        return forward(*args, **params)[0] if residual else forward(*args, **params)

    function.__name__ = name
    function.__qualname__ = name
    function.op = op
    op.function = function
    if method:
        bound = tensor_method(op)
        for method_name in (method,) if isinstance(method, str) else method:
            setattr(Tensor, method_name, bound)
    return function


# --------------------------------------------------------------------------
# Applying an op.
# --------------------------------------------------------------------------
def apply_op(op, args, params):
    """Run ``op`` on Tensor arguments: forward, then record a node if needed."""
    if op.promote:
        args = promote_arguments(op, args)
    return apply_promoted(op, args, params)


def apply_promoted(op, args, params):
    """:func:`apply_op` for arguments whose dtypes already agree."""
    # NOTE: this is the hot path of every op; keep it free of avoidable calls.
    if threads_off_default and state.autocast is not None:   # cross-owner hook: gg.autocast
        args = state.autocast(op, args)
    requires_grad = False
    datas = []
    for arg in args:
        if isinstance(arg, Tensor):
            datas.append(arg.array)
            if arg.requires_grad:
                requires_grad = True
            if arg._tangents is not None and state.forward_levels:
                return _apply_with_tangents(op, args, params)
        else:
            datas.append(arg)
    if backend._cupy is not None:
        _check_one_device(op, args)
    if op.check is not None:
        op.check(*args, **params)
    try:
        out = op.forward(*datas, **params)
    except Exception as error:  # noqa: BLE001 - translated, or re-raised unchanged
        failure = _forward_failure(op, args, params, error)
        if failure is error:
            raise
        raise failure from error
    if op.residual:
        out, residual = out
    if out.__class__ is not _ndarray and isinstance(out, np.generic):
        out = np.asarray(out)        # full reductions give NumPy scalars; tensors hold arrays
    result = _new_object(Tensor)     # Tensor._make, inlined: this runs for every op
    result.array = out
    if op.view:
        _link_view(result, args[0], op, params)
    lean_recording = True             # the thread's mode summary, read as in Tensor methods (below)
    if threads_off_default:
        try:
            lean_recording = lean_modes.recording
        except AttributeError:
            pass
    if requires_grad and op.differentiable and (
            lean_recording if lean_recording is not None else state.grad_enabled):
        _fill(_new_object(OpNode), op, args, datas, params, result)
        if op.residual:
            result.grad_fn.residual = residual
    if lean_recording is None and state.anomaly:
        tape.check_anomaly_forward(op.name, out)
    return result


_NO_ARGUMENT = object()
NO_PARAMS = {}
"""The parameters of ops called without any: one dict shared by all their nodes, never mutated."""


def tensor_method(op, swap=None):
    """The ``Tensor`` method of ``op``.

    ``swap=None``: a method whose only argument is the tensor, with keyword
    parameters (``x.exp()``, ``x.sum(axis=1)``).  ``swap`` False or True: a
    binary operator, ``x * y`` or (swapped) ``y * x``.

    The method's body is the lean path of the common case, inlined (one frame
    per op, not two): ``self`` is the only Tensor among the arguments (for an
    operator the other is a Python number, held as a cached 0-d array of the
    tensor's dtype), so there is no loop over arguments, no promotion and no
    device check.  Ops with an input check or a view, and the forward and
    anomaly modes, go through :func:`apply_promoted`; other operands through
    :func:`apply_op`.
    """
    binary = swap is not None

    def method(self, other=_NO_ARGUMENT, **params):
        data = self.array
        if binary:
            kind = other.__class__
            if (kind is float or kind is int) and data.__class__ is _ndarray and data.dtype.kind == "f":
                constant = _SCALARS.get((other, data.dtype))
                if constant is None:
                    constant = scalar_array(other, data.dtype)
                if swap:
                    position, args, datas = 1, (constant, self), [constant, data]
                else:
                    position, args, datas = 0, (self, constant), [data, constant]
                params = NO_PARAMS
            else:
                if kind is not Tensor and not isinstance(other, (Tensor, int, float, bool)):
                    if isinstance(other, (np.ndarray, np.generic, list, tuple)) or backend.is_gpu_array(other):
                        other = Tensor(other, device=self.device)
                    else:
                        return NotImplemented
                return apply_op(op, (other, self) if swap else (self, other), NO_PARAMS)
        else:
            if other is not _NO_ARGUMENT:
                raise TypeError(f"Tensor.{method.__name__}() takes its parameters by keyword, got a positional "
                                f"{other!r}")
            position, args, datas = 0, (self,), [data]
        # The grad mode: no thread-local read while every thread is in the default
        # modes, one otherwise (see tape._State and tape.lean_modes).
        lean_recording = True
        if threads_off_default:
            try:
                lean_recording = lean_modes.recording
            except AttributeError:        # this thread never changed a mode: the defaults
                pass
            if lean_recording is None:
                return apply_promoted(op, args, params)
        if op.unusual:
            return apply_promoted(op, args, params)
        try:
            out = op.forward(*datas, **params) if params else op.forward(*datas)
        except Exception as error:  # noqa: BLE001 - translated, or re-raised unchanged
            failure = _forward_failure(op, args, params, error)
            if failure is error:
                raise
            raise failure from error
        if out.__class__ is not _ndarray and isinstance(out, np.generic):
            out = np.asarray(out)
        result = _new_object(Tensor)
        result.array = out
        if lean_recording and self.requires_grad:
            # _fill for one Tensor input, inlined.
            node = _new_object(OpNode)
            node.op = op
            node.params = params
            node.sequence = next_sequence()
            function = self.grad_fn
            node.edge = (function, self._output_nr) if function is not None else self._leaf_edge or edge_of(self)
            if binary:
                node.n_inputs = 2
                if position:
                    node.only_edge = position
            save = op.lean_save
            if save is True or position in save:
                node.saved = args
                node.saved_raw = datas
            else:
                # self is not saved: its shape and dtype stand in for it.  Any other
                # argument is a constant, the same object in args and datas, so one
                # list serves both modes.
                meta = datas[position] = _new_object(InputMeta)     # _meta_of, inlined
                meta.shape = data.shape
                meta.dtype = data.dtype
                node.saved = node.saved_raw = datas
            if op.save_output:
                node.out_data = out
                node.out_box = result._version_box = [0, 0]
            result.grad_fn = node
            result.requires_grad = True
        return result

    method.__name__ = method.__qualname__ = op.name
    method.__doc__ = op.doc
    return method


def _link_view(result, source, op, params):
    """``result`` is a view of ``source`` (made by ``op`` with ``params``): share
    its memory's version counter and remember its base and how to remake it.

    Every view knows its *base*, the tensor that owns the memory (a view of a
    view points at the first tensor), and ``_view_chain``, the view ops that
    take the base to the view.  An in-place change through a view is recorded
    on the base (CopySlices, see :func:`gpugrad.ops.methods.inplace`) and
    every live view of that base then remakes its ``grad_fn`` from the base's
    new history by replaying its chain: what PyTorch does.
    """
    out = result.array
    data = source.array
    if out.__class__ is _ndarray and data.__class__ is _ndarray:
        # NumPy points every view at the array that owns the memory (cheaper than may_share_memory).
        owner = out.base if out.base is not None else out
        shares = owner is (data.base if data.base is not None else data)
    else:
        shares = not out.size or backend.xp_of(out).may_share_memory(out, data)
    if not shares:
        # NumPy had to copy (a reshape of a transposed array): an independent
        # tensor, not a view, as PyTorch's reshape gives.
        return
    result._version_box = source._shared_version_box()
    base = source._base
    step = ((op.function, params),)
    if base is None:
        base = source
        result._view_chain = step
    else:
        result._view_chain = source._view_chain + step
    result._base = base
    if not state.grad_enabled or source._view_without_grad:
        # Made under no_grad: not a differentiable view (it is never remade, and an
        # in-place change through it while recording raises, as in PyTorch).
        result._view_without_grad = True
    elif not (base.requires_grad and base.grad_fn is None):
        # A leaf that requires grad never changes in place in a graph: its views
        # never need remaking, so a parameter's ``W.T`` every step costs nothing here.
        views = base._views
        if views is None:
            base._views = [_weak_reference(result)]
        else:       # runs for every view op: kept inline, no helper call
            views.append(_weak_reference(result))
            count = len(views)
            if count >= 16 and not count & (count - 1):
                views[:] = [ref for ref in views if ref() is not None]


_weak_reference = weakref.ref


def live_views(base):
    """The views of ``base`` still alive (and the list trimmed to them)."""
    views = base._views
    if not views:
        return []
    alive = []
    refs = []
    for ref in views:
        view = ref()
        if view is not None:
            alive.append(view)
            refs.append(ref)
    views[:] = refs
    return alive


def replay_view(view, base):
    """Remake ``view``'s ``grad_fn`` (and tangents) from ``base``'s current history
    by applying its view ops to the base again (the values are already shared)."""
    fresh = base
    # NOTE: the replayed intermediates register as views of the base too; they
    # die at once and are dropped with the other dead references (no flag to
    # share between threads).
    with tape.enable_grad():
        for function, params in view._view_chain:
            fresh = function(fresh, **params)
    retained = view._retains_grad
    view.grad_fn = fresh.grad_fn
    view._output_nr = fresh._output_nr
    view.requires_grad = fresh.requires_grad
    view._tangents = fresh._tangents
    if retained and view.grad_fn is not None:
        view._retains_grad = False
        tape.retain_grad(view)      # the hook lives on the node, so it moves to the new one


def _forward_failure(op, args, params, error):
    """The error to raise for an exception inside an op's forward."""
    if isinstance(error, GpugradError):
        return error
    if isinstance(error, (ValueError, IndexError, TypeError)):
        return _explain_failure(op, args, params, error)
    if backend.is_out_of_memory(error):
        return backend.out_of_memory_error(op.name, error)
    return error


def _check_one_device(op, args):
    devices = {arg.device for arg in args if isinstance(arg, Tensor)}
    for arg in args:
        if not isinstance(arg, Tensor) and hasattr(arg, "__array_priority__") and hasattr(arg, "shape"):
            devices.add(backend.device_of(arg))
    if len(devices) > 1:
        raise DeviceError(
            f"{op.name}: expected all tensors on one device, got {describe([a for a in args if hasattr(a, 'shape')])}; "
            "move them with .to(device), .cuda() or .cpu()")


def _explain_failure(op, args, params, error):
    """Turn a NumPy/CuPy error inside a forward into a gpugrad error naming the op."""
    shapes = describe([a for a in args if hasattr(a, "shape")])
    extra = f" with {params}" if params else ""
    text = str(error)
    if isinstance(error, ValueError) and ("broadcast" in text or "shape" in text or "dimension" in text
                                          or "size" in text or "axis" in text):
        return ShapeError(f"{op.name}: inputs {shapes}{extra} do not fit: {text}. Check the shapes "
                          "(broadcasting aligns trailing dimensions; reshape or unsqueeze to line them up)")
    if isinstance(error, IndexError):
        return IndexError(f"{op.name}: index out of range for inputs {shapes}{extra}: {text}")
    if isinstance(error, TypeError):
        from ..errors import DTypeError
        return DTypeError(f"{op.name}: cannot apply to inputs {shapes}{extra}: {text}")
    return ShapeError(f"{op.name}: inputs {shapes}{extra} are invalid: {text}")


# --------------------------------------------------------------------------
# Type promotion (PyTorch's rules, which differ from NumPy's for int+float).
# --------------------------------------------------------------------------
def result_dtype(a, b):
    """Dtype of ``a op b`` for two tensor dtypes, following PyTorch."""
    if a == b:
        return a
    a_float, b_float = a.kind == "f" or a == backend.bfloat16, b.kind == "f" or b == backend.bfloat16
    if a_float and b_float and a.itemsize == b.itemsize == 2:
        return backend.float32     # float16 with bfloat16: neither holds the other (PyTorch's rule)
    if a_float and not b_float:
        return a
    if b_float and not a_float:
        return b
    if a.kind == "b":
        return b
    if b.kind == "b":
        return a
    import numpy as np
    return np.promote_types(a, b)


_SCALARS = {}


def scalar_array(value, dtype):
    """A cached read-only 0-d NumPy array holding ``value`` as ``dtype``."""
    key = (value, dtype)
    array = _SCALARS.get(key)
    if array is None:
        if len(_SCALARS) > 4096:   # bounded: learning rates and the like vary per step
            _SCALARS.clear()
        array = np.array(value, dtype=dtype)
        array.flags.writeable = False
        _SCALARS[key] = array
    return array


def promote_arguments(op, args):
    """Cast Tensor arguments to a common dtype; Python scalars never upcast a float tensor."""
    if len(args) > 2:
        # Fast exit: tensors that all share one dtype (linear's x, weight and bias).
        first = args[0]
        if isinstance(first, Tensor):
            dtype = first.array.dtype
            for arg in args:
                if not isinstance(arg, Tensor) or arg.array.dtype != dtype:
                    break
            else:
                return args
    elif len(args) == 2:
        # Fast exits for the common cases: equal dtypes, or a float tensor and a Python number.
        first, second = args
        first_is_tensor, second_is_tensor = isinstance(first, Tensor), isinstance(second, Tensor)
        if first_is_tensor and second_is_tensor:
            if first.array.dtype == second.array.dtype:
                return args
        elif first_is_tensor or second_is_tensor:
            tensor, other = (first, second) if first_is_tensor else (second, first)
            data = tensor.array
            if data.dtype.kind == "f" and type(other) in (float, int):
                if type(data) is not np.ndarray:
                    return args       # CuPy takes Python scalars natively
                # NOTE: NumPy multiplies by a 0-d array of the same dtype about twice as
                # fast as by a Python float, in forward and again in backward.
                constant = scalar_array(other, data.dtype)
                return (tensor, constant) if first_is_tensor else (constant, tensor)
    if any(isinstance(arg, np.generic) for arg in args):
        # NumPy scalars act like Python numbers (PyTorch's rule), not like float64 arrays.
        args = tuple(arg.item() if isinstance(arg, np.generic) else arg for arg in args)
    dtype = None
    scalar_kind = None
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype if dtype is None else result_dtype(dtype, arg.dtype)
        elif isinstance(arg, bool):
            scalar_kind = scalar_kind or "b"
        elif isinstance(arg, int):
            scalar_kind = "i" if scalar_kind in (None, "b") else scalar_kind
        elif isinstance(arg, float):
            scalar_kind = "f"
    if dtype is None:
        return args
    if scalar_kind == "f" and dtype.kind != "f" and dtype != backend.bfloat16:
        dtype = backend.get_default_dtype()
    elif scalar_kind == "i" and dtype.kind == "b":
        dtype = backend.int64
    if all(not isinstance(arg, Tensor) or arg.dtype == dtype for arg in args):
        return args
    from .elementwise import cast
    return tuple(cast(arg, dtype) if isinstance(arg, Tensor) and arg.dtype != dtype else arg
                 for arg in args)


# --------------------------------------------------------------------------
# The node an op application leaves on the tape.
# --------------------------------------------------------------------------
class OpNode(Node):
    """Records one op application: its inputs' graph edges, what its rules need.

    ``saved_raw`` holds what the rules get in an ordinary backward: for each
    input the array (saved inputs), an :class:`InputMeta` (inputs the op does
    not save, so an ``add`` does not keep its operands alive) or the constant.
    ``saved`` is the same with Tensors in place of arrays, for
    ``create_graph``.  The shape and dtype a gradient must have are read off
    ``saved_raw`` too, so nothing else is stored per input.

    Nodes are made by :func:`record` (and by the lean path of
    :func:`tensor_method`), not by calling the class.
    """

    # Defaults on the class: a node stores only what differs (recorded for every op).
    out_data = None
    out_box = None
    out_tangents = None
    residual = None          # what the forward kept for backward (ops declared with residual=True)
    # Most ops have one input that needs a gradient (x.exp(), x * 2.0, x @ W with
    # a constant x): the node then keeps that input's position and ``edge`` and
    # no per-input list, and the engine asks it for that one gradient
    # (:meth:`input_gradient`).  ``only_edge`` is None for the general case,
    # which keeps the aligned list in ``_edges``.
    only_edge = 0
    edge = None
    n_inputs = 1

    _edges = None

    # NOTE: a property, not __getattr__: a class with __getattr__ loses CPython's
    # specialised attribute access on every attribute, which costs more than
    # the property does on the few nodes with several edges.
    @property
    def next_edges(self):
        if self.only_edge is None:
            return self._edges
        edges = [None] * self.n_inputs
        edges[self.only_edge] = self.edge
        return edges

    @property
    def name(self):
        return self.op.name

    @property
    def input_meta(self):
        """``(shape, dtype)`` per input that gets a gradient (None elsewhere), while the node holds them."""
        raw = self.saved_raw
        if raw is None:
            return ()
        return [None if edge is None else (source.shape, source.dtype)
                for edge, source in zip(self.next_edges, raw)]

    def release(self):
        self.saved = self.saved_raw = None
        self.out_data = self.residual = None
        self.released = True

    def _check_versions(self):
        """Raise if a saved input (or the saved output) changed in place after this node was recorded."""
        sequence = self.sequence
        for index, arg in enumerate(self.saved):
            if isinstance(arg, Tensor):
                box = arg._version_box
                if box is not None and box[1] > sequence:
                    raise AutogradError(
                        f"backward: input {index} of op '{self.op.name}' (shape {tuple(arg.shape)}, {arg.dtype}) "
                        f"was modified in place after the op saved it (it is now at version {box[0]}), so its "
                        "gradient cannot be computed. Fix: change a copy (t.clone()) instead, or do the in-place "
                        f"change after backward.{self.where()}")
        out_box = self.out_box
        if out_box is not None and out_box[1] > sequence:
            raise AutogradError(
                f"backward: the output of op '{self.op.name}' was modified in place after the op saved it, so its "
                "gradient cannot be computed. Fix: change a copy (t.clone()) instead, or do the in-place change "
                f"after backward.{self.where()}")

    def saved_output(self, tensor_mode):
        if not tensor_mode:
            return self.out_data
        if self.out_data is None:
            return None
        out = Tensor._make(self.out_data, self, 0)
        out._version_box = self.out_box
        out._tangents = self.out_tangents
        return out

    def input_gradient(self, grads, tensor_mode, retain=True):
        """The gradient of input ``only_edge`` (the only one with an edge), then
        release unless ``retain``: what the engine calls for such nodes."""
        # NOTE: runs once per node per backward; kept flat on purpose.
        if self.sequence < LAST_INPLACE[0]:
            self._check_versions()      # something changed in place since this node was recorded
        op = self.op
        raw = self.saved_raw
        position = self.only_edge
        if op.plain_vjp and not tensor_mode:
            # The common case: one rule per input, on raw arrays.
            rule = op.vjp[position]
            if rule is pass_through:
                result = grads[0]
            else:
                params = self.params
                if params:
                    result = rule(grads[0], self.out_data, *raw, **params)
                else:
                    result = rule(grads[0], self.out_data, *raw)
        else:
            result = self._rule_result(grads[0], tensor_mode, position)
        if result is not None:
            source = raw[position]
            if result.shape != source.shape or result.dtype != source.dtype:
                result = _fit(result, source)
        if not retain:
            # release(), inlined: this runs once per node of every backward.
            self.saved = self.saved_raw = self.out_data = None
            self.released = True
            if op.residual:
                self.residual = None
        return result

    def _rule_arguments(self, grad, tensor_mode):
        """``(g, out, inputs, params)`` as the rules get them: Tensors under
        create_graph, arrays (and the residual) otherwise, ``g`` after the prologue."""
        op = self.op
        params = self.params
        if tensor_mode:
            out = self.saved_output(True)
            inputs = self.saved
        else:
            out = self.out_data
            inputs = self.saved_raw
            if self.residual is not None:
                params = dict(params, residual=self.residual)
        if op.vjp_prologue is not None:
            grad = op.vjp_prologue(grad, out, *inputs, **params)
        return grad, out, inputs, params

    def _rule_result(self, grad, tensor_mode, position):
        """input_gradient's rule call for the rest: tensor mode, a residual, a prologue, one rule for all inputs."""
        op = self.op
        grad, out, inputs, params = self._rule_arguments(grad, tensor_mode)
        if op.vjp_per_input:
            rule = op.vjp[position]
            return grad if rule is pass_through else rule(grad, out, *inputs, **params)
        return op.vjp(grad, out, *inputs, **params)[position]

    def apply(self, grads, tensor_mode, retain=True):
        if self.only_edge is not None:
            fitted = [None] * self.n_inputs
            fitted[self.only_edge] = self.input_gradient(grads, tensor_mode, retain)
            return fitted
        if self.sequence < LAST_INPLACE[0]:
            self._check_versions()
        op = self.op
        raw = self.saved_raw
        grad, out, inputs, params = self._rule_arguments(grads[0], tensor_mode)
        edges = self._edges
        if op.vjp_per_input:
            fitted = []
            for rule, edge, source in zip(op.vjp, edges, raw):
                if edge is None:
                    fitted.append(None)
                    continue
                if rule is pass_through:
                    result = grad
                elif params:
                    result = rule(grad, out, *inputs, **params)
                else:
                    result = rule(grad, out, *inputs)
                if result.shape != source.shape or result.dtype != source.dtype:
                    result = _fit(result, source)
                fitted.append(result)
        else:
            results = op.vjp(grad, out, *inputs, **params)
            fitted = [_fit(result, source) if result is not None and edge is not None else None
                      for result, edge, source in zip(results, edges, raw)]
        if not retain:
            self.release()
        return fitted


def _fill(node, op, args, datas, params, result, save=None):
    """Record ``result = op(*args)`` in ``node`` and make it ``result``'s ``grad_fn``.

    ``save`` overrides the op's own choice of inputs to keep (a kernel that
    saved what backward needs in ``params`` keeps none).
    """
    node.op = op
    node.params = params
    node.sequence = next_sequence()
    if state.capture_sites:
        node.creation_site = tape.user_frames()
    derive_save = save is None and op.needs is not None
    if save is None:
        save = op.save
    edges = []
    edge_count = 0
    edge_index = 0
    unsaved = None
    for index, arg in enumerate(args):
        if isinstance(arg, Tensor):
            if arg.requires_grad:
                function = arg.grad_fn
                edges.append((function, arg._output_nr) if function is not None
                             else arg._leaf_edge or edge_of(arg))
                edge_count += 1
                edge_index = index
            else:
                edges.append(None)
            if save is not True and index not in save:
                if unsaved is None:
                    unsaved = [index]
                else:
                    unsaved.append(index)
        else:
            edges.append(None)
    if derive_save:
        # Keep an input only when the rule of an input that gets a gradient reads it
        # (the inputs to drop are worked out once per op and edge pattern: _unneeded).
        key = edge_index if edge_count == 1 else -1 if edge_count == len(edges) else tuple(
            edge is not None for edge in edges)
        unneeded = op.unneeded.get(key)
        if unneeded is None:
            unneeded = op.unneeded[key] = _unneeded_inputs(op.needs, key, len(edges))
        unsaved = [index for index in unneeded if isinstance(args[index], Tensor)] or None
    if edge_count == 1:
        node.only_edge = edge_index
        node.edge = edges[edge_index]
        if len(edges) != 1:
            node.n_inputs = len(edges)
    else:
        node.only_edge = None
        node._edges = edges
    if unsaved is None:
        node.saved = args
        node.saved_raw = datas
    else:
        # Inputs the op does not save are replaced by their shape and dtype (and the
        # tensor-mode list keeps Tensors only where the op saves them).
        saved = list(args)
        for index in unsaved:
            datas[index] = saved[index] = _meta_of(datas[index])
        node.saved = saved
        node.saved_raw = datas
    if op.save_output:
        node.out_data = result.array
        node.out_box = result._version_box = [0, 0]      # result is new: no counter yet
    result.grad_fn = node
    result.requires_grad = True


def _unneeded_inputs(needs, key, count):
    """The inputs no rule of an input with a gradient reads; ``key`` is the one
    input with a gradient, -1 for all of them, or a flag per input."""
    if key == -1:
        with_gradient = range(count)
    elif isinstance(key, int):
        with_gradient = (key,)
    else:
        with_gradient = [index for index, flag in enumerate(key) if flag]
    kept = set()
    for index in with_gradient:
        kept.update(needs[index])
    return tuple(index for index in range(count) if index not in kept)


def record(op, args, datas, params, result, save=None):
    """Make a node for ``result = op(*args)`` (``datas``: the arguments' arrays, kept if the op saves them)."""
    _fill(_new_object(OpNode), op, args, datas, params, result, save)


def _fit(gradient, source):
    """Undo broadcasting (sum back to the input's shape) and cast to the input's dtype."""
    if gradient.shape != source.shape:
        gradient = sum_to(gradient, source.shape)
    if gradient.dtype != source.dtype:
        gradient = _cast(gradient, source.dtype)
    return gradient


def _cast(value, dtype):
    from .elementwise import cast
    return cast(value, dtype)


def sum_to(value, shape):
    """Sum ``value`` over broadcast dimensions so it has ``shape`` (the one un-broadcast)."""
    from .reduce import sum_to as _sum_to
    return _sum_to(value, shape)


# --------------------------------------------------------------------------
# Forward mode: nested dual numbers, one level per active gg.jvp.
# --------------------------------------------------------------------------
def strip_level(tensor, level):
    """An alias of ``tensor`` without its level-``level`` tangent (same graph edge)."""
    tangents = tensor._tangents
    if tangents is None or level not in tangents:
        return tensor
    return tape.graph_alias(tensor, tangents={key: value for key, value in tangents.items() if key != level})


def _tangent_at(arg, level):
    """The level-``level`` tangent of an argument (zeros, or 0.0 for a scalar, when it has none)."""
    if not isinstance(arg, Tensor):
        return 0.0
    tangent = arg._tangents.get(level) if arg._tangents else None
    return tangent if tangent is not None else _zero_tangent(arg)


def _zero_tangent(arg):
    if isinstance(arg, Tensor):
        xp = backend.xp_of(arg.array)
        return Tensor._make(xp.zeros_like(arg.array))
    return 0.0


def _apply_with_tangents(op, args, params):
    level = max(max(arg._tangents) for arg in args if isinstance(arg, Tensor) and arg._tangents)
    stripped = tuple(strip_level(arg, level) if isinstance(arg, Tensor) else arg for arg in args)
    result = apply_op(op, stripped, params)
    if op.view and result._base is not None:
        # A view of the caller's tensor, not of the stripped stand-in: in-place
        # changes through it must reach (and remake the views of) the real base.
        _link_view(result, args[0], op, params)
    node = result.grad_fn
    if isinstance(node, OpNode) and node.op is op and node.saved is not None:
        # The node saved the stripped aliases; give it the originals so that a
        # backward pass run inside this forward level (forward-over-reverse,
        # e.g. hessian) differentiates through the saved inputs too.
        node.saved = [original if isinstance(saved, Tensor) and isinstance(original, Tensor)
                      and saved.array is original.array else saved
                      for original, saved in zip(args, node.saved)]
    if not op.differentiable:
        return result
    if op.jvp is None:
        raise AutogradError(f"jvp: op '{op.name}' has no forward-mode (JVP) rule; use reverse mode "
                            "(gg.vjp / gg.jacrev) for functions that use it")
    tangents_in = tuple(_tangent_at(arg, level) for arg in args)
    tangent = op.jvp(tangents_in, result, *stripped, **params)
    if not isinstance(tangent, Tensor):
        tangent = Tensor._make(backend.xp_of(result.array).broadcast_to(
            backend.xp_of(result.array).asarray(tangent, dtype=result.dtype), result.shape).copy())
    if tangent.shape != result.shape:
        from .shape import broadcast_to
        tangent = broadcast_to(tangent, result.shape)
    if tangent.dtype != result.dtype:
        tangent = _cast(tangent, result.dtype)
    if state.anomaly:
        tape.check_anomaly_forward(op.name, tangent.array, what="forward-mode tangent")
    tangents = dict(result._tangents) if result._tangents else {}
    tangents[level] = tangent
    result._tangents = tangents
    if isinstance(node, OpNode) and node.op is op:
        node.out_tangents = tangents
    return result

"""User-defined ops: subclass :class:`Function` with hand-written derivatives.

Examples
--------
>>> import gpugrad as gg
>>> class Cube(gg.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x * x * x
...     @staticmethod
...     def backward(ctx, grad):
...         (x,) = ctx.saved_tensors
...         return grad * 3 * x * x
...     @staticmethod
...     def jvp(ctx, tangent):
...         (x,) = ctx.saved_tensors
...         return tangent * 3 * x * x
>>> x = gg.tensor([2.0], requires_grad=True)
>>> Cube.apply(x).sum().backward()
>>> x.grad
tensor([12.], device='cpu')
"""

from __future__ import annotations

from .. import backend
from ..errors import AutogradError, ShapeError
from ..tensor import Tensor
from . import tape
from .tape import Node, edge_of, state


class FunctionCtx:
    """What ``forward`` leaves for ``backward``/``jvp``: saved tensors and any attributes."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self._saved_versions = ()
        self._released = False
        self.materialize_grads = True
        self._name = "Function"

    def save_for_backward(self, *tensors):
        """Keep tensors for backward; changing them in place afterwards is detected."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward: only tensors (or None) can be saved, got {type(t).__name__}; "
                                "store other values as attributes of ctx")
        self._saved = tensors
        self._saved_versions = tuple(None if t is None else t._shared_version_box()[0] for t in tensors)

    @property
    def saved_tensors(self):
        if self._released:
            raise AutogradError(
                f"backward: trying to backward through the graph a second time (op '{self._name}'): its saved "
                "tensors were freed. Pass retain_graph=True to the first backward if you need to backward twice.")
        for index, (t, version) in enumerate(zip(self._saved, self._saved_versions)):
            if t is not None and t._version_box[0] != version:
                raise AutogradError(
                    f"backward: saved tensor {index} of op '{self._name}' (shape {tuple(t.shape)}) was modified in "
                    f"place after it was saved (version {version} -> {t._version_box[0]}); change a clone() instead")
        return self._saved

    def set_materialize_grads(self, value):
        """With ``False``, ``backward`` receives ``None`` for outputs that got no gradient."""
        self.materialize_grads = bool(value)

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable = {id(t) for t in tensors}


class FunctionNode(Node):
    """The graph node of a :class:`Function` application."""

    def __init__(self, function_class, ctx, args, outputs):
        self.function_class = function_class
        self.ctx = ctx
        self.sequence = tape.next_sequence()
        self.creation_site = tape.user_frames() if state.capture_sites else None
        self.next_edges = tuple(edge_of(a) if isinstance(a, Tensor) else None for a in args)
        self.input_meta = tuple((a.shape, a.dtype) if isinstance(a, Tensor) else None for a in args)
        self.output_meta = tuple((o.shape, o.dtype, o.array) for o in outputs)
        self.n_outputs = len(outputs)

    @property
    def name(self):
        return self.function_class.__name__

    def release(self):
        self.ctx._released = True
        self.ctx._saved = ()
        self.released = True

    def _input_gradients(self, grads, tensor_mode):
        wrapped = []
        for grad, (shape, dtype, data) in zip(grads, self.output_meta):
            if grad is None:
                if self.ctx.materialize_grads:
                    wrapped.append(Tensor._make(backend.xp_of(data).zeros(shape, dtype)))
                else:
                    wrapped.append(None)
            else:
                wrapped.append(grad if isinstance(grad, Tensor) else Tensor._make(grad))
        results = self.function_class.backward(self.ctx, *wrapped)
        if not isinstance(results, tuple):
            results = (results,)
        if len(results) < len(self.next_edges):
            # Trailing inputs with no gradient may be left out, as in PyTorch.
            results = results + (None,) * (len(self.next_edges) - len(results))
        if len(results) != len(self.next_edges):
            raise AutogradError(f"{self.name}.backward returned {len(results)} gradients but forward took "
                                f"{len(self.next_edges)} inputs; return one (or None) per input")
        fixed = []
        for index, (result, edge, meta) in enumerate(zip(results, self.next_edges, self.input_meta)):
            if result is None or edge is None:
                fixed.append(None)
                continue
            if not isinstance(result, Tensor):
                result = Tensor._make(backend.xp_of(result).asarray(result))
            if tuple(result.shape) != tuple(meta[0]):
                raise ShapeError(f"{self.name}.backward returned a gradient of shape {tuple(result.shape)} for "
                                 f"input {index} of shape {tuple(meta[0])}; it must match the input's shape")
            if result.dtype != meta[1]:
                result = result.to(meta[1])
            fixed.append(result if tensor_mode else result.array)
        return fixed


class Function:
    """Base class for ops with hand-written derivatives.

    Subclasses define static ``forward(ctx, *args)``, ``backward(ctx,
    *grad_outputs)`` and optionally ``jvp(ctx, *tangents)``, then are called
    as ``MyFunction.apply(*args)``.  ``forward`` runs without recording; its
    tensors are plain values.  ``backward`` is recorded when
    ``create_graph=True``, so writing it with gpugrad ops gives higher-order
    derivatives for free.
    """

    @staticmethod
    def forward(ctx, *args):  # pragma: no cover - abstract by contract
        raise NotImplementedError("Function subclasses must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grad_outputs):  # pragma: no cover - abstract by contract
        raise NotImplementedError("Function subclasses must define backward(ctx, *grad_outputs)")

    @classmethod
    def apply(cls, *args):
        levels = [level for a in args if isinstance(a, Tensor) and a._tangents for level in a._tangents]
        plain_args = tuple(_without_tangents(a) for a in args)
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        ctx._name = cls.__name__
        with tape.no_grad():
            outputs = cls.forward(ctx, *plain_args)
        if levels:
            # forward ran on tangent-free stand-ins; backward must see the real inputs
            # (with their tangents), or forward-over-reverse loses the saved-input path.
            originals = {id(plain): original for plain, original in zip(plain_args, args) if plain is not original}
            ctx._saved = tuple(originals.get(id(t), t) for t in ctx._saved)
        single = isinstance(outputs, Tensor)
        outputs = (outputs,) if single else tuple(outputs)
        if not all(isinstance(o, Tensor) for o in outputs):
            raise TypeError(f"{cls.__name__}.forward must return a Tensor or a tuple of Tensors")
        # Outputs are new tensors even when forward returns an input unchanged.
        outputs = tuple(Tensor._make(o.array) if any(o is a for a in args + plain_args) or o.grad_fn is not None else o
                        for o in outputs)
        non_differentiable = getattr(ctx, "_non_differentiable", set())
        if state.grad_enabled and any(needs):
            node = FunctionNode(cls, ctx, args, outputs)
            for index, out in enumerate(outputs):
                if id(out) in non_differentiable or not backend.is_floating(out.dtype):
                    continue
                out.grad_fn, out._output_nr, out.requires_grad = node, index, True
        if levels and state.forward_levels:
            _forward_mode(cls, ctx, args, outputs, max(levels))
        return outputs[0] if single else outputs


def _without_tangents(arg):
    if not isinstance(arg, Tensor) or not arg._tangents:
        return arg
    return tape.graph_alias(arg)


def _forward_mode(cls, ctx, args, outputs, level):
    if "jvp" not in {name for klass in cls.__mro__[:-1] if klass is not Function for name in vars(klass)}:
        raise AutogradError(
            f"jvp: {cls.__name__} defines no jvp(ctx, *tangents), so forward mode cannot pass through it; "
            "add a static jvp method, or use reverse mode (gg.vjp / gg.jacrev)")
    tangents = []
    for a in args:
        if isinstance(a, Tensor):
            tangent = a._tangents.get(level) if a._tangents else None
            if tangent is None:
                tangent = Tensor._make(backend.xp_of(a.array).zeros_like(a.array))
            tangents.append(tangent)
        else:
            tangents.append(None)
    results = cls.jvp(ctx, *tangents)
    results = (results,) if isinstance(results, Tensor) else tuple(results)
    if len(results) != len(outputs):
        raise AutogradError(f"{cls.__name__}.jvp returned {len(results)} tangents for {len(outputs)} outputs")
    for out, tangent in zip(outputs, results):
        if tangent is None:
            continue
        if tuple(tangent.shape) != tuple(out.shape):
            raise ShapeError(f"{cls.__name__}.jvp returned a tangent of shape {tuple(tangent.shape)} for an output "
                             f"of shape {tuple(out.shape)}")
        tangents_of_out = dict(out._tangents) if out._tangents else {}
        tangents_of_out[level] = tangent
        out._tangents = tangents_of_out

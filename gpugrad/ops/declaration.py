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

from ..autograd.op_node import InputMeta, pass_through  # noqa: F401 - part of how ops are declared
from ..errors import GpugradError
from ..tensor import Tensor
from .dispatch import apply_op, tensor_method
from .docs import docstring

OPS: dict = {}
"""Every registered op by name; the test battery iterates over it."""


class Op:
    """A primitive: forward on raw arrays, VJP and JVP rules, test samples."""

    __slots__ = ("name", "forward", "vjp", "jvp", "vjp_per_input", "vjp_prologue", "save", "save_output", "view",
                 "needs_general_path", "residual", "plain_vjp", "promote", "differentiable", "samples", "reference",
                 "check", "doc",
                 "function", "tolerance", "second_order", "needs", "lean_save", "unneeded")

    def __repr__(self):
        return f"Op({self.name!r})"



def defop(name, forward, vjp=None, jvp=None, *, save=True, needs=None, save_output=False, view=False,
          promote=False, differentiable=True, samples=(), reference=None, check=None, method=None,
          tolerance=None, second_order=True, residual=False, vjp_prologue=None, doc=None):
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
    doc : str, optional
        What the op does (NumPy style): the ``__doc__`` of the returned
        function and of its Tensor methods, so ``help(gg.tanh)`` and
        ``help(x.tanh)`` explain it, followed by the example generated from
        its first sample (:mod:`gpugrad.ops.docs`).  Defaults to ``forward``'s
        docstring.
    """
    op = Op()
    op.name = name
    op.forward = forward
    op.vjp_per_input = isinstance(vjp, tuple)
    op.vjp = vjp
    op.jvp = jvp
    op.save = save if save is True else tuple(save or ())
    op.needs = None if needs is None else tuple(tuple(reads) for reads in needs)
    op.unneeded = {}     # edge pattern -> inputs no rule then reads (filled by op_node.fill as patterns occur)
    if op.needs is not None:
        op.save = True      # the loop in fill keeps every input; fill then drops the unneeded ones
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
    op.needs_general_path = check is not None or view or not op.differentiable or residual
    op.residual = residual
    op.vjp_prologue = vjp_prologue
    # Rules the engine may call straight away on raw arrays: one per input, nothing before them.
    op.plain_vjp = op.vjp_per_input and not residual and vjp_prologue is None
    op.samples = tuple(samples)
    op.reference = reference
    op.check = check
    op.tolerance = tolerance
    op.second_order = second_order
    op.doc = forward.__doc__ if doc is None else docstring(name, doc)
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
    function.__doc__ = op.doc
    function.op = op
    op.function = function
    if method:
        bound = tensor_method(op)
        for method_name in (method,) if isinstance(method, str) else method:
            setattr(Tensor, method_name, bound)
    return function


"""The node an op application leaves on the tape, and how it turns the
gradient of the op's output into the gradients of its inputs.

The engine (:mod:`gpugrad.autograd.tape`) runs these nodes; the op rules they
call come with the node (``node.op``), so nothing here imports
:mod:`gpugrad.ops`.  The few structural ops a node itself applies to fit a
gradient to its input (``sum_to`` to undo broadcasting, ``cast``) are
registered here by :mod:`gpugrad.ops.structural` when the op library loads.
"""

from __future__ import annotations

from ..errors import AutogradError, GpugradError
from ..tensor import LAST_INPLACE, Tensor
from . import tape
from .tape import Node, edge_of, next_sequence, state

_new_object = object.__new__


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
    # (:meth:`input_gradient`).  ``single_edge_position`` is None for the general case,
    # which keeps the aligned list in ``_edges``.
    single_edge_position = 0
    edge = None
    n_inputs = 1

    _edges = None

    # NOTE: a property, not __getattr__: a class with __getattr__ loses CPython's
    # specialised attribute access on every attribute, which costs more than
    # the property does on the few nodes with several edges.
    @property
    def next_edges(self):
        if self.single_edge_position is None:
            return self._edges
        edges = [None] * self.n_inputs
        edges[self.single_edge_position] = self.edge
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
        """The gradient of input ``single_edge_position`` (the only one with an edge), then
        release unless ``retain``: what the engine calls for such nodes."""
        # NOTE: runs once per node per backward; kept flat on purpose.
        if self.sequence < LAST_INPLACE[0]:
            self._check_versions()      # something changed in place since this node was recorded
        op = self.op
        raw = self.saved_raw
        position = self.single_edge_position
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
        if self.single_edge_position is not None:
            fitted = [None] * self.n_inputs
            fitted[self.single_edge_position] = self.input_gradient(grads, tensor_mode, retain)
            return fitted
        if self.sequence < LAST_INPLACE[0]:
            self._check_versions()
        op = self.op
        raw = self.saved_raw
        if op.plain_vjp and not tensor_mode:
            # _rule_arguments for the common case (raw arrays, no residual, no prologue), inlined.
            grad, out, inputs, params = grads[0], self.out_data, raw, self.params
        else:
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
            # release(), inlined as in input_gradient.
            self.saved = self.saved_raw = self.out_data = None
            self.released = True
            if op.residual:
                self.residual = None
        return fitted


def fill(node, op, args, arrays, params, result, save=None):
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
        node.single_edge_position = edge_index
        node.edge = edges[edge_index]
        if len(edges) != 1:
            node.n_inputs = len(edges)
    else:
        node.single_edge_position = None
        node._edges = edges
    if unsaved is None:
        node.saved = args
        node.saved_raw = arrays
    else:
        # Inputs the op does not save are replaced by their shape and dtype (and the
        # tensor-mode list keeps Tensors only where the op saves them).
        saved = list(args)
        for index in unsaved:
            array = arrays[index]
            meta = arrays[index] = saved[index] = _new_object(InputMeta)     # _meta_of, inlined
            meta.shape = array.shape
            meta.dtype = array.dtype
        node.saved = saved
        node.saved_raw = arrays
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


def record(op, args, arrays, params, result, save=None):
    """Make a node for ``result = op(*args)`` (``arrays``: the arguments' arrays, kept if the op saves them)."""
    fill(_new_object(OpNode), op, args, arrays, params, result, save)



def _fit(gradient, source):
    """Undo broadcasting (sum back to the input's shape) and cast to the input's dtype."""
    if gradient.shape != source.shape:
        gradient = sum_to(gradient, source.shape)
    if gradient.dtype != source.dtype:
        gradient = _cast(gradient, source.dtype)
    return gradient



STRUCTURAL = {}
"""The ops the engine applies itself, by name (``"cast"``, ``"sum_to"``,
``"broadcast_to"``): filled by :func:`register_structural` when
:mod:`gpugrad.ops` loads, so autograd never imports the op library."""


def register_structural(name, function):
    """Make ``function`` (a declared op's function) the engine's ``name`` op."""
    STRUCTURAL[name] = function


def structural(name):
    """The engine's ``name`` op, or a clear error if the op library never registered it."""
    function = STRUCTURAL.get(name)
    if function is None:
        raise GpugradError(f"autograd: the structural op {name!r} is not registered; import gpugrad (which loads "
                           "gpugrad.ops and registers it) before running backward")
    return function


def _cast(value, dtype):
    return (STRUCTURAL.get("cast") or structural("cast"))(value, dtype)


def sum_to(value, shape):
    """Sum ``value`` over broadcast dimensions so it has ``shape`` (the one un-broadcast)."""
    return (STRUCTURAL.get("sum_to") or structural("sum_to"))(value, shape)

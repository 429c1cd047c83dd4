"""The reverse-mode tape: graph nodes, grad mode, hooks and the backward engine.

Every op applied to a tensor that requires grad records one :class:`Node`.  A
node knows the op, the inputs it saved, and an *edge* ``(parent_node,
output_index)`` per input, so the graph is a DAG of nodes, not of tensors: a
tensor modified in place can point at a new node while old edges stay valid.
Leaves that require grad are represented by an :class:`AccumulateGrad` node.

The engine walks the graph in an iterative topological order (Kahn's
algorithm, so a chain of 100,000 ops needs no recursion), calling each node's
VJP once all of its consumers have contributed their gradients.

Two gradient representations flow through the engine:

* *raw mode* (the default): gradients are raw NumPy/CuPy arrays and each op's
  VJP rule runs on raw arrays, which keeps the per-op overhead of a training
  step close to hand-written NumPy;
* *tensor mode* (``create_graph=True`` or forward-mode tangents active):
  gradients are Tensors and the same VJP rules run as recorded ops, so the
  backward pass is itself differentiable (higher-order derivatives, Hessians).

The rules are written once, with operators and :mod:`gpugrad.ops` functions
that accept either representation.
"""

from __future__ import annotations

import functools
import heapq
import inspect
import sys
import threading
import traceback
import weakref

import numpy as np

from .. import backend
from ..errors import AnomalyError, AutogradError, ShapeError
from ..tensor import Tensor, next_sequence


# --------------------------------------------------------------------------
# Grad mode.
# --------------------------------------------------------------------------
class _State(threading.local):
    """The autograd switches of the calling thread, as in PyTorch: every thread
    has its own grad mode, anomaly mode, forward-mode levels and "inside
    backward" depth, and a new thread starts from the defaults below (grad
    enabled, no special mode), whatever the thread that started it was doing.

    Ops read the mode on every call, and a thread-local attribute costs more
    to read than a plain one (it is found through the thread's own dict), so
    the lean path of an op reads, in the common case, no thread-local at all:
    :data:`threads_off_default` holds the threads whose switches differ from
    the defaults, and while it is empty every thread records (grad mode on,
    no special mode).  Otherwise the op reads one summary of its thread's
    switches, :func:`lean_recording`, instead of two or three.  Change
    ``grad_enabled`` with :func:`set_grad_mode` and the other switches
    followed by :meth:`refresh`: both keep the summary and the set right.
    """

    grad_enabled = True
    anomaly = False
    forward_levels = 0          # number of active gg.jvp levels
    backward_depth = 0          # > 0 while the engine runs (ops then compute gradients)
    capture_sites = False       # record creation tracebacks (anomaly mode)
    # ``autocast(op, args) -> args``, applied by dispatch to every op's arguments
    # before promotion while set (mixed precision); None: off.  Set it, then
    # call refresh(), so that the lean op paths send ops to dispatch.
    autocast = None
    # Any of forward mode, anomaly mode, site capture or autocast is on: ops then
    # take the general path.  One flag, so the common path tests one thing, not four.
    special_mode = False
    unusual = False   # the former name of special_mode, still read by ops.activation; kept equal

    def refresh(self):
        """Recompute :attr:`special_mode` and the summaries; call after changing the switches."""
        self.special_mode = self.unusual = bool(self.forward_levels or self.anomaly or self.capture_sites
                                                or self.autocast is not None)
        set_grad_mode(self.grad_enabled)


state = _State()

lean_modes = threading.local()
"""The summary the lean path of an op reads, per thread: ``lean_modes.recording``
is True (record: grad mode on, no special mode), False (do not record: grad
mode off, no special mode) or None (a special mode is on: take the general
path).  A plain ``threading.local``, not a subclass like :class:`_State`, so a
read is one dict look-up (about half a subclass attribute's cost); a thread
that never changed a mode has no entry, and reads the defaults (True) through
``AttributeError``, which only a thread in the default modes can meet."""

threads_off_default = set()
"""Idents of the threads whose grad mode is off or which have a special mode
on (so whose ``lean_modes.recording`` is not True).  Only a thread itself adds
or removes its ident (``set.add``/``discard`` are atomic), and a thread reads
the set only for its own ops, so the test "the set is empty, so I am in the
default modes" is never wrong.  A thread that ends off the defaults leaves its
ident behind; that only costs the others the thread-local read."""


def lean_recording():
    """The calling thread's summary (see :data:`lean_modes`), however it is stored."""
    if not threads_off_default:
        return True
    try:
        return lean_modes.recording
    except AttributeError:
        return True


def set_grad_mode(mode: bool, get_ident=threading.get_ident) -> None:
    """Set the calling thread's grad mode (and the summaries the lean op path reads)."""
    local = state
    local.grad_enabled = mode
    if mode is True and not local.special_mode:
        lean_modes.recording = True
        threads_off_default.discard(get_ident())
    else:
        lean_modes.recording = None if local.special_mode else mode
        threads_off_default.add(get_ident())


def is_grad_enabled() -> bool:
    """Whether ops applied now, in this thread, are recorded for backward.

    Examples
    --------
    >>> import gpugrad as gg
    >>> with gg.no_grad():
    ...     inside = gg.is_grad_enabled()
    >>> inside, gg.is_grad_enabled()
    (False, True)
    """
    return state.grad_enabled


def _run_generator_under(function, args, kwargs, context):
    """Drive the generator ``function(*args, **kwargs)`` with every resumption
    (first ``next``, ``send``, ``throw``, ``close``) inside ``context()``; the
    caller's own modes hold between resumptions (PyTorch's generator decorators)."""
    generator = function(*args, **kwargs)
    try:
        with context():
            response = generator.send(None)
        while True:
            try:
                request = yield response
            except GeneratorExit:
                with context():
                    generator.close()
                raise
            except BaseException as error:   # noqa: BLE001 - thrown in by the caller: the body decides
                with context():
                    response = generator.throw(error)
            else:
                with context():
                    response = generator.send(request)
    except StopIteration as finished:
        return finished.value


def _decorate(function, context):
    """``function`` run inside ``context()`` (for a generator function: each resumption)."""
    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def generator_wrapper(*args, **kwargs):
            return (yield from _run_generator_under(function, args, kwargs, context))
        return generator_wrapper

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with context():
            return function(*args, **kwargs)
    return wrapper


class _GradModeContext:
    """Base of no_grad / enable_grad / set_grad_enabled: context manager and decorator.

    The mode is the calling thread's (see :class:`_State`): a block in one
    thread never changes what another thread records.
    """

    mode = True

    def __enter__(self):
        self._previous = state.grad_enabled
        set_grad_mode(self.mode)
        return self

    def __exit__(self, *exc):
        set_grad_mode(self._previous)
        return False

    def __call__(self, function):
        mode = self.mode
        if inspect.isgeneratorfunction(function):
            return _decorate(function, lambda: set_grad_enabled(mode))

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            previous = state.grad_enabled
            set_grad_mode(mode)
            try:
                return function(*args, **kwargs)
            finally:
                set_grad_mode(previous)
        return wrapper


class no_grad(_GradModeContext):
    """Context manager and decorator: ops inside are not recorded (in this thread).

    On a generator function it applies to the generator's body: each
    resumption runs without grad, and the caller's mode holds between yields.

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.ones(3, requires_grad=True)
    >>> with gg.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    >>> @gg.no_grad()
    ... def doubled(items):
    ...     for item in items:
    ...         yield item * 2
    >>> [t.requires_grad for t in doubled([w, w])], gg.is_grad_enabled()
    ([False, False], True)
    """

    mode = False


class enable_grad(_GradModeContext):
    """Context manager and decorator: re-enable recording inside ``no_grad`` (in this thread).

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.ones(3, requires_grad=True)
    >>> with gg.no_grad():
    ...     with gg.enable_grad():
    ...         y = w * 2
    >>> y.requires_grad
    True
    """

    mode = True


class set_grad_enabled(_GradModeContext):
    """Turn recording on or off in this thread: as a call, a context manager or a decorator.

    As in PyTorch, the mode changes as soon as the object is made, so
    ``gg.set_grad_enabled(False)`` alone switches recording off;
    ``with gg.set_grad_enabled(flag):`` restores the previous mode on exit, and
    ``@gg.set_grad_enabled(flag)`` leaves the mode alone until the function runs.

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.ones(2, requires_grad=True)
    >>> with gg.set_grad_enabled(False):
    ...     y = w * 2
    >>> y.requires_grad, gg.is_grad_enabled()
    (False, True)
    >>> _ = gg.set_grad_enabled(False)
    >>> gg.is_grad_enabled()
    False
    >>> _ = gg.set_grad_enabled(True)
    """

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._previous = state.grad_enabled
        set_grad_mode(self.mode)   # like PyTorch, also works as a plain call

    def __enter__(self):
        return self

    def __call__(self, function):
        set_grad_mode(self._previous)   # decorating must not flip the mode now
        return super().__call__(function)


# --------------------------------------------------------------------------
# Nodes.
# --------------------------------------------------------------------------
class Node:
    """One recorded application of an op (the ``grad_fn`` of its outputs).

    Subclasses set ``next_edges`` (one ``(node, output_nr)`` or None per
    input) and implement ``_input_gradients`` (or all of :meth:`apply`), which
    maps the gradients of the node's outputs to the gradients of its inputs.  A node with exactly one
    input edge may instead set ``single_edge_position`` (that input's position) and
    ``edge``, and implement ``input_gradient``, which returns that input's
    gradient alone: the engine then builds no per-input lists (see OpNode).
    """

    # Defaults on the class: a new node stores only what differs (hot path).
    name = "Node"
    n_outputs = 1
    pre_hooks = None
    released = False
    creation_site = None
    sequence = 0
    # Position of the one input with a graph edge, for nodes that answer
    # ``input_gradient`` (see OpNode); None: the engine calls ``apply``.
    single_edge_position = None
    # True for nodes that find more edges while they run (gg.checkpoint meets
    # the leaves of fn's closure only when it recomputes fn): gg.grad must not
    # prune them, whatever their edges say beforehand.
    discovers_edges = False

    def apply(self, grads, tensor_mode, retain=True):
        """Gradients of the inputs (one per ``next_edges`` entry, None where there
        is no edge) from ``grads``, one per output; then :meth:`release` unless
        ``retain`` (one call per node fewer for the engine)."""
        gradients = self._input_gradients(grads, tensor_mode)
        if not retain:
            self.release()
        return gradients

    def _input_gradients(self, grads, tensor_mode):  # pragma: no cover - abstract
        """What :meth:`apply` returns, before any release: subclasses define it."""
        raise NotImplementedError

    def release(self):
        """Drop saved tensors (called after backward unless ``retain_graph``)."""

    def where(self) -> str:
        """Where in user code this node was created (anomaly mode only)."""
        if not self.creation_site:
            return ""
        return "\n" + "".join(traceback.format_list(self.creation_site))

    def __repr__(self):
        return f"<{self.name}>"


class AccumulateGrad(Node):
    """The node of a leaf tensor: adds the incoming gradient into ``leaf.grad``."""

    name = "AccumulateGrad"
    post_hooks = None        # hooks run after the leaf's .grad has been updated
    next_edges = ()          # a leaf: nothing further back


    def __init__(self, leaf):
        self.leaf = leaf
        # Leaves come first in any graph, so their nodes run last: below every
        # op node in the engine's heap, and distinct, so heap entries never tie.
        self.sequence = -next_sequence()




def edge_of(tensor):
    """The graph edge a gradient for ``tensor`` must flow into, or ``None``."""
    if tensor.grad_fn is not None:
        return (tensor.grad_fn, tensor._output_nr)
    if tensor.requires_grad:
        edge = tensor._leaf_edge
        if edge is None:
            accumulator = tensor._accumulator
            if accumulator is None:
                accumulator = tensor._accumulator = AccumulateGrad(tensor)
            edge = tensor._leaf_edge = (accumulator, 0)
        return edge
    return None


def graph_alias(tensor, data=None, tangents=None):
    """A new Tensor object standing for ``tensor`` in the graph: same graph edge
    (gradients flowing into it reach ``tensor``'s node or leaf), ``tangents``
    as its forward-mode tangents, and ``tensor``'s data and version counter
    unless other ``data`` is given (then a counter of its own).

    Forward mode strips or adds tangent levels this way, and in-place ops
    stand a snapshot of the old value in for the tensor being overwritten.
    """
    alias = Tensor._make(tensor.array if data is None else data, tensor.grad_fn, tensor._output_nr)
    alias.requires_grad = tensor.requires_grad
    if tensor.grad_fn is None and tensor.requires_grad:
        alias._accumulator = edge_of(tensor)[0]
    if data is None:
        alias._version_box = tensor._shared_version_box()
        if tensor._base is not None:
            # Same memory: a view of the same base (in-place changes through it
            # are recorded on the base, see ops.methods.inplace).
            alias._base = tensor._base
            alias._view_chain = tensor._view_chain
            alias._view_without_grad = tensor._view_without_grad
    alias._tangents = tangents or None
    return alias


# --------------------------------------------------------------------------
# Hooks.
# --------------------------------------------------------------------------
class RemovableHandle:
    """Returned by ``register_hook``; ``handle.remove()`` unregisters the hook."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _hook_list(tensor):
    edge = edge_of(tensor)
    if edge is None:
        raise AutogradError(
            f"register_hook: the tensor (shape {tuple(tensor.shape)}) does not require grad, so no "
            "gradient will ever reach a hook; call t.requires_grad_() first")
    node, output_nr = edge
    if node.pre_hooks is None:
        node.pre_hooks = {}
    return node.pre_hooks.setdefault(output_nr, [])


def register_post_accumulate_grad_hook(tensor, hook):
    """Call ``hook(tensor)`` after backward has added into a leaf's ``.grad``.

    Unlike ``register_hook`` it runs only when gradients are accumulated
    (``backward``), never for ``gg.grad``, and sees the finished ``.grad``:
    what data-parallel training needs to average gradients.
    """
    if tensor.grad_fn is not None or not tensor.requires_grad:
        raise AutogradError("register_post_accumulate_grad_hook: only leaf tensors that require grad accumulate "
                            "gradients; call it on a parameter (a leaf with requires_grad=True)")
    node = edge_of(tensor)[0]
    if node.post_hooks is None:
        node.post_hooks = []
    node.post_hooks.append(hook)
    return RemovableHandle(node.post_hooks, hook)


def register_tensor_hook(tensor, hook):
    hooks = _hook_list(tensor)
    # PyTorch (>= 2.0) runs the retain_grad hook after every other hook, whenever
    # either was registered, so .grad is the gradient the hooks hand on: it stays last.
    position = len(hooks)
    while position and hooks[position - 1].__class__ is _RetainGrad:
        position -= 1
    hooks.insert(position, hook)
    return RemovableHandle(hooks, hook)


class _RetainGrad:
    """Hook that stores the gradient on a non-leaf tensor (held weakly: no cycle).

    The engine notes the tensor's ``.grad`` before calling it, and puts it back
    if the pass fails (see :func:`run_backward`)."""

    def __init__(self, tensor):
        self.tensor = weakref.ref(tensor)

    def __call__(self, grad):
        tensor = self.tensor()
        if tensor is not None:
            tensor.grad = grad if tensor.grad is None else tensor.grad + grad
        return None


def retain_grad(tensor):
    if tensor.grad_fn is None:
        if not tensor.requires_grad:
            raise AutogradError("retain_grad: the tensor does not require grad; call requires_grad_() first")
        return  # leaves keep their grad anyway
    if tensor._retains_grad:
        return
    tensor._retains_grad = True
    _hook_list(tensor).append(_RetainGrad(tensor))      # last: see register_tensor_hook


def move_retained_grad(tensor, old_grad_fn, old_output_nr):
    """Move ``tensor``'s retain_grad hook from its old node to its current ``grad_fn``.

    Called when an in-place op gives a tensor a new ``grad_fn``: as in PyTorch,
    ``.grad`` is then the gradient of the tensor's current version, while the
    hooks registered on the old version stay with it (they see its gradient).
    """
    if not tensor._retains_grad or (tensor.grad_fn is old_grad_fn and tensor._output_nr == old_output_nr):
        return
    if old_grad_fn is not None and old_grad_fn.pre_hooks:
        hooks = old_grad_fn.pre_hooks.get(old_output_nr, [])
        for hook in hooks:
            if hook.__class__ is _RetainGrad and hook.tensor() is tensor:
                hooks.remove(hook)
                break
    if tensor.grad_fn is not None:
        tensor._retains_grad = False
        retain_grad(tensor)


# --------------------------------------------------------------------------
# The engine.
# --------------------------------------------------------------------------
def _graph_nodes(root_nodes):
    """Every node reachable from the roots."""
    stack = list(root_nodes)
    seen = set(stack)
    while stack:
        node = stack.pop()
        for edge in node.next_edges:
            if edge is not None and edge[0] not in seen:
                seen.add(edge[0])
                stack.append(edge[0])
    return seen


def _nodes_leading_to(root_nodes, targets):
    """The nodes from which some target node can be reached (gg.grad prunes the rest)."""
    nodes = sorted(_graph_nodes(root_nodes), key=lambda node: node.sequence)
    needed = set(targets)
    for node in nodes:  # ascending creation order: parents are decided before their consumers
        if node in needed:
            continue
        if node.discovers_edges:
            needed.add(node)
            continue
        for edge in node.next_edges:
            if edge is not None and edge[0] in needed:
                needed.add(node)
                break
    return needed


def _as_tensor_grad(grad):
    return grad if isinstance(grad, Tensor) else Tensor._make(grad)


def _hook_name(hook):
    """How an error names a hook: its qualified name, else its type's."""
    name = getattr(hook, "__qualname__", None)
    return name if isinstance(name, str) else f"{type(hook).__qualname__} object"


def _run_hooks(hooks, grad, tensor_mode, undo):
    """``grad`` passed through the tensor hooks in ``hooks``, in registration order.

    A ``retain_grad`` hook first notes the tensor's current ``.grad`` in
    ``undo`` (put back if the pass fails).  A hook returns None (keep the
    gradient) or a Tensor of the gradient's shape (use it instead); anything
    else raises, naming the hook.
    """
    for hook in list(hooks):
        wrapped = grad if tensor_mode else Tensor._make(grad)
        if hook.__class__ is _RetainGrad:
            tensor = hook.tensor()
            if tensor is not None:
                undo.append((tensor, tensor.grad))
                hook(wrapped)
            continue
        replacement = hook(wrapped)
        if replacement is None:
            continue
        if not isinstance(replacement, Tensor):
            raise TypeError(
                f"hook '{_hook_name(hook)}' registered on a tensor of shape {tuple(wrapped.shape)} returned a "
                f"{type(replacement).__name__}; a tensor hook must return None (keep the gradient) or a "
                f"gg.Tensor of shape {tuple(wrapped.shape)} (the new gradient)")
        if replacement.shape != wrapped.shape:
            raise ShapeError(
                f"hook '{_hook_name(hook)}' returned a gradient of shape {tuple(replacement.shape)} for a tensor "
                f"of shape {tuple(wrapped.shape)}; a hook must return a gradient of the same shape "
                f"{tuple(wrapped.shape)} (or None)")
        if replacement.device != wrapped.device:
            from ..errors import DeviceError
            raise DeviceError(
                f"hook '{_hook_name(hook)}' returned a gradient on {replacement.device} for a tensor on "
                f"{wrapped.device}; return it on {wrapped.device} (e.g. with .to(grad.device))")
        grad = replacement if tensor_mode else replacement.array
    return grad


def _root_gradient(tensor, gradient, tensor_mode):
    if gradient is None:
        if tensor.array.size != 1:
            raise AutogradError(
                f"backward: grad can be implicitly created only for one-element outputs, but the output "
                f"has shape {tuple(tensor.shape)}; reduce it first (e.g. loss.sum() or loss.mean()) or pass "
                "gradient=gg.ones_like(output)")
        data = tensor.array
        if data.__class__ is np.ndarray and data.ndim == 0:
            grad = np.array(1, dtype=data.dtype)       # the usual loss: cheaper than ones()
        else:
            grad = backend.xp_of(data).ones(data.shape, dtype=data.dtype)
        return Tensor._make(grad) if tensor_mode else grad
    if not isinstance(gradient, Tensor):
        from ..ops.creation import as_tensor_like
        gradient = as_tensor_like(gradient, tensor)
    if gradient.shape != tensor.shape:
        raise ShapeError(f"backward: gradient has shape {tuple(gradient.shape)} but the output has shape "
                         f"{tuple(tensor.shape)}; pass a gradient of the output's shape")
    if gradient.device != tensor.device:
        from ..errors import DeviceError
        raise DeviceError(f"backward: gradient is on {gradient.device} but the output is on {tensor.device}; "
                          "move one of them with .to(device)")
    return gradient if tensor_mode else gradient.array


def _second_backward_error(node):
    return AutogradError(
        f"backward: trying to backward through the graph a second time (op '{node.name}'): its saved tensors "
        "were freed after the first backward. Pass retain_graph=True to the first backward (or gg.grad) if "
        "you need to backward twice.")


def run_backward(outputs, gradients, retain_graph, create_graph, inputs=None, allow_unused=False, undo=None):
    """The engine behind ``Tensor.backward`` and ``gg.grad``.

    Nodes run in decreasing creation order (a max-heap on ``node.sequence``):
    every consumer of a node was created after it, so by the time a node is
    popped all the gradients flowing into it have arrived.  No recursion and
    no separate dependency-counting pass.  Two short cuts keep a chain off the
    heap: a node whose parent is due next anyway (nothing buffered for it,
    nothing younger waiting) hands its gradient straight on, and a leaf
    without hooks takes each gradient as it arrives.

    Returns the gradients of ``inputs`` (a list, ``None`` where unused) when
    ``inputs`` is given; otherwise accumulates into the leaves' ``.grad``.
    If the pass fails, every ``.grad`` it replaced is put back; ``undo``, when
    given, receives ``(tensor, old .grad)`` for each one the pass replaced, for
    a caller that stores more afterwards and must put everything back if that fails.
    """
    tensor_mode = create_graph or state.forward_levels > 0
    buffers, heap = _seed_roots(outputs, gradients, tensor_mode)
    capture = needed = input_edges = None
    if inputs is not None:
        capture, needed, input_edges = _capture_plan(inputs, heap)
    if not retain_graph:
        _watch_for_leaks(heap)
    # Arrays handed to leaves' .grad (see _accumulate); a root gradient counts as
    # handed out: its array belongs to the caller (or to another root).
    handed_out = None if tensor_mode else {id(slots[0]) for slots in buffers.values()}
    # A pass that raises part-way (a hook, a modified saved tensor, a failing
    # rule) changes no .grad: every .grad the pass replaces (leaves' and retained
    # ones; always out of place) is noted in ``undo`` and put back if it fails,
    # and post-accumulate hooks run only once every gradient is in.  Noting the
    # old .grad costs a list append per gradient, less than holding the new ones
    # back until the end.
    if undo is None:
        undo = []
    previous_mode = state.grad_enabled
    set_grad_mode(bool(create_graph))
    state.backward_depth += 1
    # Gradients flow in the dtype each op ran in (PyTorch), so a tensor-mode
    # backward dispatches its ops with autocast off.
    forward_autocast = state.autocast
    if forward_autocast is not None:
        state.autocast = None
        state.refresh()
    try:
        hooked = _run_nodes(buffers, heap, tensor_mode, retain_graph, capture, needed, handed_out, undo)
        for node in hooked:     # every gradient is in: the leaves' .grad are final
            for hook in list(node.post_hooks):
                hook(node.leaf)
    except BaseException:
        for tensor, old_grad in reversed(undo):   # newest first: each .grad ends as before the pass
            tensor.grad = old_grad
        raise
    finally:
        if forward_autocast is not None:
            state.autocast = forward_autocast
            state.refresh()
        set_grad_mode(previous_mode)
        state.backward_depth -= 1
    if capture is None:
        return None
    return _captured_gradients(capture, input_edges, inputs, allow_unused)


def _seed_roots(outputs, gradients, tensor_mode):
    """The engine's starting state: each root's gradient buffered at its node, the nodes in the heap."""
    if gradients is None:
        gradients = [None] * len(outputs)
    buffers = {}
    heap = []
    for position, (tensor, gradient) in enumerate(zip(outputs, gradients)):
        edge = edge_of(tensor)
        if edge is None:
            raise AutogradError(
                f"backward: element {position} of the outputs (shape {tuple(tensor.shape)}) does not require grad "
                "and has no grad_fn; make sure a leaf it depends on has requires_grad=True and that it was not "
                "computed under gg.no_grad()")
        grad = _root_gradient(tensor, gradient, tensor_mode)
        node, output_nr = edge
        slots = buffers.get(node)
        if slots is None:
            slots = buffers[node] = [None] * node.n_outputs
            heapq.heappush(heap, (-node.sequence, node))
        slots[output_nr] = grad if slots[output_nr] is None else slots[output_nr] + grad
    return buffers, heap


def _capture_plan(inputs, heap):
    """For ``gg.grad``: the edges whose gradients to capture and the nodes worth running."""
    capture = {}
    input_edges = []
    for index, tensor in enumerate(inputs):
        edge = edge_of(tensor)
        if edge is None:
            raise AutogradError(f"grad: input {index} (shape {tuple(tensor.shape)}) does not require grad; "
                                "call requires_grad_() on it before computing the outputs")
        input_edges.append(edge)
        capture[edge] = None
    needed = _nodes_leading_to([entry[1] for entry in heap], [edge[0] for edge in input_edges])
    return capture, needed, input_edges


def _watch_for_leaks(heap):
    """Note the roots of a graph about to be freed (see :func:`check_retained_graphs`)."""
    recent = _leak_watches.watch.recent
    if len(recent) < 64:          # a bounded sample (_LeakWatch.SAMPLE) is enough to spot the leak
        recent += [weakref.ref(entry[1]) for entry in heap]


def _captured_gradients(capture, input_edges, inputs, allow_unused):
    """``gg.grad``'s results: the captured gradient of each input, as Tensors."""
    results = []
    for index, edge in enumerate(input_edges):
        grad = capture[edge]
        if grad is None and not allow_unused:
            raise AutogradError(
                f"grad: input {index} (shape {tuple(inputs[index].shape)}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it")
        results.append(None if grad is None else _as_tensor_grad(grad))
    return results


def _run_nodes(buffers, heap, tensor_mode, retain_graph, capture, needed, handed_out, undo):
    """Run every node once its gradients are in; return the leaves' nodes with post-accumulate hooks.

    Longer than the engine's other steps on purpose: this loop runs once per
    node of every backward pass, and each helper call in it would cost about
    as much as a small op's gradient, so its cases stay inline.

    Two short cuts keep a chain off the heap: a node with one input edge
    whose parent is due next anyway (nothing buffered for it, every node in
    the heap older, so no gradient can still reach it) hands its gradient
    straight on (``next_up``), and a leaf without hooks takes each gradient
    as it arrives rather than through the heap (a parameter is usually used
    once; ``gg.grad``, which captures, accumulates nothing).
    """
    anomaly = state.anomaly
    hooked = []
    direct_to_leaves = capture is None
    heappop, heappush = heapq.heappop, heapq.heappush
    next_up = None           # (node, grads) to run next without a trip through the heap
    if len(heap) == 1:       # one root (a loss): it runs first
        node = heap.pop()[1]
        next_up = (node, buffers.pop(node))
    while next_up is not None or heap:
        if next_up is None:
            node = heappop(heap)[1]
            grads = buffers.pop(node)
        else:
            node, grads = next_up
            next_up = None
        if node.pre_hooks:
            for output_nr, hooks in node.pre_hooks.items():
                if grads[output_nr] is not None:
                    grads[output_nr] = _run_hooks(hooks, grads[output_nr], tensor_mode, undo)
        if capture is not None:
            for output_nr, grad in enumerate(grads):
                if grad is not None and (node, output_nr) in capture:
                    capture[(node, output_nr)] = grad
            if type(node) is AccumulateGrad:
                continue
        elif type(node) is AccumulateGrad:
            _accumulate(node.leaf, grads[0], tensor_mode, handed_out, undo)
            if node.post_hooks:
                hooked.append(node)
            continue
        if node.released:
            raise _second_backward_error(node)
        position = node.single_edge_position
        if position is not None:
            # One input needs a gradient (most ops): no per-input lists.
            grad = node.input_gradient(grads, tensor_mode, retain_graph)
            if anomaly:
                _check_anomaly_backward(node, (grad,), position)
            if grad is None:
                continue
            parent, output_nr = node.edge
            if needed is not None and parent not in needed:
                continue
            slots = buffers.get(parent)
            if slots is not None:
                previous = slots[output_nr]
                slots[output_nr] = grad if previous is None else previous + grad
                continue
            key = -parent.sequence
            if heap and heap[0][0] < key:
                if (parent.__class__ is AccumulateGrad and direct_to_leaves
                        and not parent.pre_hooks and not parent.post_hooks):
                    _accumulate(parent.leaf, grad, tensor_mode, handed_out, undo)
                    continue
                slots = buffers[parent] = [None] * parent.n_outputs
                slots[output_nr] = grad
                heappush(heap, (key, parent))
            else:
                slots = [None] * parent.n_outputs
                slots[output_nr] = grad
                next_up = (parent, slots)
            continue
        input_grads = node.apply(grads, tensor_mode, retain_graph)
        if anomaly:
            _check_anomaly_backward(node, input_grads)
        for edge, grad in zip(node.next_edges, input_grads):
            if grad is None:
                continue
            parent, output_nr = edge
            if needed is not None and parent not in needed:
                continue
            slots = buffers.get(parent)
            if slots is None:
                if (parent.__class__ is AccumulateGrad and direct_to_leaves
                        and not parent.pre_hooks and not parent.post_hooks):
                    _accumulate(parent.leaf, grad, tensor_mode, handed_out, undo)
                    continue
                slots = buffers[parent] = [None] * parent.n_outputs
                heappush(heap, (-parent.sequence, parent))
                slots[output_nr] = grad
            else:
                previous = slots[output_nr]
                slots[output_nr] = grad if previous is None else previous + grad
    return hooked


# --------------------------------------------------------------------------
# The "summed the loss with its graph" leak detector.
# --------------------------------------------------------------------------
class GraphRetainedWarning(UserWarning):
    """A graph that was backpropagated (and freed) in an earlier training step
    is still reachable, usually because a loss was accumulated with its graph
    (``total += loss`` instead of ``total += loss.item()``)."""


class _LeakWatch:
    """What the leak detector knows about one thread (one thread's training
    loop never judges another's graphs); see :func:`check_retained_graphs`.

    ``recent``: weak references to the roots backpropagated (graphs freed)
    since the last optimizer step, a bounded sample; ``previous``: those of
    the interval before; ``survivors``: roots of earlier intervals that were
    still alive (and freed) at the last check; ``growing``: for how many
    checks in a row their number has grown.
    """

    SAMPLE = 64        # roots kept per interval: enough to see a graph that grows
    SURVIVORS = 256    # a leak is reported long before this many graphs are kept
    GROWTH_CHECKS = 3  # consecutive growing checks that make a leak

    def __init__(self):
        self.recent = []
        self.previous = []
        self.survivors = []
        self.growing = 0


class _LeakWatches(threading.local):
    """The calling thread's :class:`_LeakWatch` (a plain object: one thread-local read per use)."""

    def __init__(self):
        self.watch = _LeakWatch()


_leak_watches = _LeakWatches()


def check_retained_graphs(where="optimizer.step()"):
    """Warn if the freed graphs of earlier steps that are still alive grow in number, step after step.

    Called by every optimizer's ``step()``.  A freed graph (backward ran
    without ``retain_graph``) that stays reachable after later steps is held
    by user code.  One such graph is harmless (a ``loss`` variable of an
    earlier loop, the other model's loss in a GAN's alternating steps); one
    more at every step, :attr:`_LeakWatch.GROWTH_CHECKS` steps in a row, is
    the classic leak (``total += loss``), which grows memory every step.  The
    check is per thread: the graphs of the calling thread's backward passes,
    at the calling thread's steps.
    """
    watch = _leak_watches.watch
    previous, watch.previous, watch.recent = watch.previous, watch.recent, []
    old = watch.survivors
    if not old and not previous:
        watch.growing = 0
        return
    survivors = []
    for ref in old + previous if old else previous:
        node = ref()
        if node is not None and node.released:
            survivors.append(ref)
    watch.growing = watch.growing + 1 if len(survivors) > len(old) else 0
    watch.survivors = survivors[-_LeakWatch.SURVIVORS:]
    if watch.growing >= _LeakWatch.GROWTH_CHECKS:
        import warnings
        warnings.warn(
            f"{where}: the graph of a loss from an earlier step (op '{survivors[-1]().name}') is still alive "
            f"after its backward pass, and such graphs keep piling up ({len(survivors)} alive now, one more "
            "every step). This usually means a loss was kept with its graph, e.g. `total += loss` or "
            "`losses.append(loss)`; keep `loss.item()` (a Python number) or `loss.detach()` instead, or memory "
            "grows every step.", GraphRetainedWarning, stacklevel=3)


def _accumulate(leaf, grad, tensor_mode, handed_out=None, undo=None):
    """Add ``grad`` into ``leaf.grad`` (out of place), first noting the old
    ``.grad`` in ``undo`` when one is passed (the engine puts it back if the pass fails).

    ``handed_out`` collects the ids of the arrays a raw-mode backward has handed to
    leaves: a leaf's ``.grad`` must own its memory, so an array another leaf
    already holds (add's VJP passes one array to both inputs) or a view (the
    broadcast gradient of a sum) is copied first.  In-place changes to one
    ``.grad`` then never show up in another, or in the loss's gradient.
    """
    previous = leaf.grad
    if undo is not None:
        undo.append((leaf, previous))
    if not tensor_mode:
        if grad.__class__ is not np.ndarray and isinstance(grad, np.generic):
            grad = backend.xp_of(leaf.array).asarray(grad)     # a NumPy scalar from a full reduction
        dtype = leaf.array.dtype
        if grad.dtype != dtype:
            grad = grad.astype(dtype)
        elif previous is None and ((grad.base is not None and _base_held_elsewhere(grad))
                                   or (handed_out is not None and id(grad) in handed_out)):
            grad = grad.copy()
        if previous is not None:
            # Out of place: the old .grad may be referenced by the user.
            grad = previous.array + grad
        if handed_out is not None:
            handed_out.add(id(grad))
        result = _new_tensor(Tensor)
        result.array = grad
        leaf.grad = result
        return
    if grad.dtype != leaf.dtype:
        grad = grad.to(leaf.dtype)
    leaf.grad = grad if previous is None else previous + grad


_new_tensor = object.__new__
_reference_count = sys.getrefcount


def _base_held_elsewhere(view):
    """Whether the memory under the view ``view`` is reachable other than through it.

    A gradient that is a view of a temporary (``sum_to``'s reshape of the
    summed array) can become a leaf's ``.grad`` as it is: nothing else can
    change the memory.  A view of anything someone holds (the incoming
    gradient, a saved output, another view) is copied.  Three references to
    the base mean: ``view.base``, the argument here and ``getrefcount``'s own.
    """
    if view.__class__ is not np.ndarray or not view.flags.writeable or 0 in view.strides:
        # Only NumPy's base is the owning array itself; a read-only or broadcast
        # view (a sum's gradient) is no gradient to keep either.
        return True
    base = view.base
    # NumPy points a view at the array owning the memory; a base that is itself a
    # view (a subclass's) is not judged, so it counts as held.
    return base.base is not None or _reference_count(base) > 3


def backward(outputs, gradients=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of ``outputs`` into the leaves (``Tensor.backward``)."""
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        undo = []
        grads = run_backward(outputs, gradients, retain_graph, create_graph, inputs=list(inputs),
                             allow_unused=True, undo=undo)     # retained gradients it stores go in undo
        handed_out = set()
        try:
            for tensor, grad in zip(inputs, grads):
                if grad is not None:
                    _accumulate(tensor, grad if create_graph else grad.array, create_graph, handed_out, undo)
            for tensor, grad in zip(inputs, grads):
                node = tensor._accumulator
                if grad is not None and node is not None and node.post_hooks:
                    for hook in list(node.post_hooks):
                        hook(tensor)
        except BaseException:
            for tensor, old_grad in reversed(undo):     # as in run_backward: a failure changes no .grad
                tensor.grad = old_grad
            raise
        return
    run_backward(outputs, gradients, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple.

    Unlike ``backward`` nothing is accumulated into ``.grad``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> x = gg.tensor(3.0, requires_grad=True)
    >>> (dx,) = gg.grad(x ** 3, x, create_graph=True)
    >>> (d2x,) = gg.grad(dx, x)
    >>> float(dx), float(d2x)
    (27.0, 18.0)
    """
    single_output = isinstance(outputs, Tensor)
    outputs = [outputs] if single_output else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is not None:
        grad_outputs = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
        if len(grad_outputs) != len(outputs):
            raise ShapeError(f"grad: {len(grad_outputs)} grad_outputs given for {len(outputs)} outputs; "
                             "give one per output")
    if retain_graph is None:
        retain_graph = create_graph
    results = run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=inputs,
                           allow_unused=allow_unused)
    return tuple(results)


# --------------------------------------------------------------------------
# Anomaly detection.
# --------------------------------------------------------------------------
class detect_anomaly:
    """Context manager: the first NaN/Inf produced in forward or backward raises.

    The error names the op and the line of user code that created it (the
    creation traceback of every node is recorded while this mode is on).
    """

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self._previous = (state.anomaly, state.capture_sites)
        state.anomaly = self.check_nan
        state.capture_sites = True
        state.refresh()
        return self

    def __exit__(self, *exc):
        state.anomaly, state.capture_sites = self._previous
        state.refresh()
        return False

    def __call__(self, function):
        check_nan = self.check_nan
        return _decorate(function, lambda: detect_anomaly(check_nan))


def user_frames():
    """The stack without gpugrad's own frames: where the user called the op."""
    frames = traceback.extract_stack()[:-1]
    import os
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    return [frame for frame in frames if not os.path.abspath(frame.filename).startswith(package_dir)][-6:]


def _has_non_finite(array):
    xp = backend.xp_of(array)
    if array.dtype.kind not in "fc" and array.dtype != backend.bfloat16:
        return False
    return not bool(xp.isfinite(array).all())


def check_anomaly_forward(op_name, array, what="output"):
    """Raise if ``array`` (an op's output or forward-mode tangent) holds NaN or Inf."""
    if _has_non_finite(array):
        site = "".join(traceback.format_list(user_frames()))
        phase = ("while computing gradients (inside the backward pass)" if state.backward_depth
                 else "in the forward pass")
        raise AnomalyError(f"detect_anomaly: op '{op_name}' produced NaN or Inf in its {what} {phase} "
                           f"(shape {tuple(array.shape)}, {array.dtype}). It was called from:\n{site}")


def _check_anomaly_backward(node, input_grads, single_edge_position=None):
    for index, grad in enumerate(input_grads):
        if single_edge_position is not None:
            index = single_edge_position
        if grad is None:
            continue
        array = grad.array if isinstance(grad, Tensor) else grad
        if _has_non_finite(array):
            raise AnomalyError(
                f"detect_anomaly: the backward of op '{node.name}' produced NaN or Inf in the gradient of its "
                f"input {index} (shape {tuple(array.shape)}). The op was created at:{node.where()}")


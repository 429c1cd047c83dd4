"""Capture a step once, replay it with one launch: ``gg.cuda.CUDAGraph``, ``gg.cuda.graph``,
``gg.cuda.make_graphed_callables`` (PyTorch's names), and ``gg.cuda.capture_check``.

How capture works here
----------------------
Over CuPy's stream capture: the work is queued on a side stream between
``Stream.begin_capture()`` and ``Stream.end_capture()``, which returns a
``cupy.cuda.Graph``; ``replay()`` is ``Graph.launch()`` on the current stream.
Every array allocated during capture comes from the graph's own
``cupy.cuda.MemoryPool`` (``cupy.cuda.using_allocator``), so no one else can
be handed that memory while the graph may still write it; ``pool()`` lets a
second graph share it, as PyTorch's pool handles do.  Capture records device
work with the addresses it touched: inputs must be *static* (copy new data
into the same tensors before each replay) and outputs are rewritten in place
by every replay.

What breaks capture (:func:`capture_check` finds each on the CPU too)
---------------------------------------------------------------------
* **host synchronisations**: ``.item()``, ``float()``/``int()``/``bool()``,
  ``.tolist()``, ``.numpy()``, ``numpy.asarray(t)``, printing a tensor, and ops
  that read device values on the host to check them (``gather``,
  ``index_select``, ``embedding``... validate index ranges that way);
* **shapes that change between steps** (a graph replays fixed shapes);
* **allocations after warm-up** that a graph cannot honour, defined as what can
  be seen on NumPy: (a) tensors made from host data inside the step
  (``gg.tensor(...)``, ``gg.as_tensor``/``gg.from_numpy`` of host arrays,
  ``Tensor(...)``): on a GPU a copy from host memory read once, at capture;
  (b) tensors the step creates and leaves referenced after it returns,
  other than what it returns and the arrays (and ``.grad``) of tensors that
  existed before the step (parameters, optimizer state): a replay rewrites
  their memory, so kept values (a logged loss, a replaced buffer) change
  behind the caller's back;
* **optimizer steps that read host-side values**: Adam's family computes its
  bias corrections from a step count on the host, and a first step creates
  state (momentum buffers) on the host; a replay would repeat the captured
  values, so ``step()`` refuses inside a capture (``gg.DeviceError``, as
  PyTorch refuses ``capturable=False``) and :func:`capture_check` reports it
  (kind ``"host-state"``); and since a captured step bakes in the optimizer's
  settings (``lr``: an LR scheduler's change would never reach it) and the memory
  of its parameters and state, ``CUDAGraph.replay`` refuses once any of them
  changed (PyTorch replays the old values silently);
* **random numbers not drawn from a captured generator**: gpugrad's generator
  of the step's device is captured (on CUDA its state lives on the device, so
  each replay draws new numbers); draws through NumPy's or Python's global
  ``random`` functions, from another device's generator, or a reseed inside
  the step happen on the host once, at capture, and every replay repeats them.

On the CPU there is nothing to capture: :func:`make_graphed_callables`
returns callables that run eagerly (with the same static-shape rules, so code
checked on a CPU keeps working on a GPU), and :class:`CUDAGraph` raises.

Examples
--------
>>> import gpugrad as gg
>>> def step(x):
...     y = (x * 2).sum()
...     print(y)                        # a host synchronisation
...     return y
>>> report = gg.cuda.capture_check(step, gg.ones(3), warmup=0, steps=2)
tensor(6., device='cpu')
tensor(6., device='cpu')
>>> [(p.kind, p.op) for p in report.problems]
[('host-sync', 'print / str(tensor)')]
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import gc
import random as _python_random
import threading
import weakref

import numpy as np

from . import backend
from . import cuda as _cuda_namespace
from .errors import DeviceError, ShapeError

__all__ = ["CUDAGraph", "graph", "graph_pool_handle", "make_graphed_callables", "capture_check", "CaptureReport",
           "CaptureProblem"]


def _tensor_class():
    from .tensor import Tensor
    return Tensor


def _require_cupy(op):
    cupy = backend.cupy_module()
    if cupy is None:
        raise DeviceError(f"{op}: CUDA graphs need a GPU (CuPy and an NVIDIA driver); on the CPU, "
                          "gg.cuda.make_graphed_callables runs the callables eagerly, and gg.cuda.capture_check "
                          "tells what would break a capture")
    return cupy


_CAPTURE_MODES = {"global": "streamCaptureModeGlobal", "thread_local": "streamCaptureModeThreadLocal",
                  "relaxed": "streamCaptureModeRelaxed"}


def graph_pool_handle():
    """A fresh memory pool that graphs can share (``pool=`` of :class:`graph`); PyTorch's name.

    Raises
    ------
    gg.DeviceError
        Without a GPU.
    """
    return _require_cupy("graph_pool_handle").cuda.MemoryPool()


class CUDAGraph:
    """One captured sequence of GPU work: ``capture_begin``/``capture_end`` (or :class:`graph`), then ``replay``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> g = gg.cuda.CUDAGraph()
    >>> if gg.cuda.is_available():
    ...     x = gg.ones(4, device="cuda")
    ...     with gg.cuda.graph(g):
    ...         y = x * 2
    ...     x.copy_(gg.full((4,), 3.0, device="cuda"))
    ...     g.replay()
    ...     assert y.tolist() == [6.0] * 4
    """

    def __init__(self):
        self._graph = None
        self._pool = None
        self._stream = None
        self._contexts = None
        self._baked = []        # (optimizer, what its captured step baked in), checked before each replay

    def capture_begin(self, pool=None, capture_error_mode="relaxed"):
        """Start capturing the current thread's GPU work on a side stream.

        ``capture_error_mode`` is CUDA's stream-capture mode: ``"relaxed"`` (the
        default here, as CuPy's: its memory pool may call ``cudaMalloc`` while
        capturing), ``"thread_local"`` or ``"global"``.
        """
        cupy = _require_cupy("CUDAGraph.capture_begin")
        if self._contexts is not None:
            raise RuntimeError("CUDAGraph.capture_begin: this graph is already capturing; call capture_end first")
        if capture_error_mode not in _CAPTURE_MODES:
            raise ValueError(f"CUDAGraph.capture_begin: capture_error_mode={capture_error_mode!r}; use one of "
                             f"{sorted(_CAPTURE_MODES)}")
        self.reset()
        self._pool = pool if pool is not None else cupy.cuda.MemoryPool()
        self._stream = cupy.cuda.Stream(non_blocking=True)
        # Work queued before the capture (filling the static inputs) comes first.
        self._stream.wait_event(cupy.cuda.get_current_stream().record())
        contexts = contextlib.ExitStack()
        contexts.enter_context(cupy.cuda.using_allocator(self._pool.malloc))
        contexts.enter_context(self._stream)
        try:
            self._stream.begin_capture(getattr(cupy.cuda.runtime, _CAPTURE_MODES[capture_error_mode]))
        except BaseException:
            contexts.close()
            raise
        self._contexts = contexts
        _cuda_namespace._note_capture(+1)

    def capture_end(self):
        """Stop capturing; the graph can be replayed from now on."""
        if self._contexts is None:
            raise RuntimeError("CUDAGraph.capture_end: no capture in progress; call capture_begin first")
        contexts, self._contexts = self._contexts, None
        try:
            self._graph = self._stream.end_capture()
        finally:
            stepped = _cuda_namespace._note_capture(-1)
            contexts.close()
        self._bake(stepped)

    def _bake(self, optimizers):
        """Note what the optimizers that stepped in the capture baked into it (settings, memory)."""
        self._baked = [(optimizer, optimizer._capture_fingerprint()) for optimizer in optimizers]

    def replay(self):
        """Launch the captured work on the current stream (the host does not wait for it).

        Raises ``gg.DeviceError`` (and launches nothing) when an optimizer that
        stepped in the capture has changed since: a setting such as ``lr`` (an
        LR scheduler's step), or the memory of a parameter or of its state (a
        ``.data`` assignment, ``load_state_dict``): the replay would still use
        the captured values and memory.
        """
        if self._graph is None:
            raise RuntimeError("CUDAGraph.replay: nothing captured yet; capture with gg.cuda.graph(g) first")
        for optimizer, fingerprint in self._baked:
            change = optimizer._change_since_capture(fingerprint)
            if change is not None:
                raise DeviceError(
                    f"CUDAGraph.replay: {change}, so a replay would still use what the capture baked in. "
                    "Capture again after the change (g.reset(); with gg.cuda.graph(g): ...), keep the optimizer's "
                    "settings fixed while replaying, or capture only forward and backward "
                    "(gg.cuda.make_graphed_callables) and step the optimizer eagerly")
        cupy = _require_cupy("CUDAGraph.replay")
        self._graph.launch(stream=cupy.cuda.get_current_stream())

    def reset(self):
        """Forget the captured graph (its memory pool is released once no tensor uses it)."""
        self._graph = None
        self._baked = []

    def pool(self):
        """The memory pool this graph allocates from (pass it as ``pool=`` to share memory with another graph)."""
        return self._pool


class graph:  # noqa: N801 - PyTorch's name
    """Context manager: capture the GPU work of its body into ``cuda_graph``.

    Parameters
    ----------
    cuda_graph : CUDAGraph
    pool : optional
        A pool from :func:`graph_pool_handle` or another graph's ``pool()``.
    stream : optional
        Ignored beyond a check: the capture always runs on the graph's own side stream.
    capture_error_mode : str, default "relaxed"

    Raises
    ------
    gg.DeviceError
        Without a GPU.
    """

    def __init__(self, cuda_graph, pool=None, stream=None, capture_error_mode="relaxed"):
        if not isinstance(cuda_graph, CUDAGraph):
            raise TypeError(f"graph: expected a gg.cuda.CUDAGraph, got {type(cuda_graph).__name__}")
        self.cuda_graph, self.pool, self.capture_error_mode = cuda_graph, pool, capture_error_mode

    def __enter__(self):
        gc.collect()        # as PyTorch: free what can be freed before memory is tied to the graph
        self.cuda_graph.capture_begin(self.pool, self.capture_error_mode)
        return self.cuda_graph

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.cuda_graph.capture_end()
            return False
        try:                                    # end the (probably invalidated) capture; report the first error
            self.cuda_graph.capture_end()
        except Exception:  # noqa: BLE001, S110 - the body's error is the one to see
            pass
        self.cuda_graph.reset()
        if isinstance(exc, Exception):
            exc.add_note("gg.cuda.graph: the capture failed; gg.cuda.capture_check(step, *args) names what in the "
                         "step breaks a capture (host syncs, host data, changing shapes, host random draws)")
        return False


# --------------------------------------------------------------------------
# make_graphed_callables
# --------------------------------------------------------------------------
def _flatten_tensors(value):
    tensor_class = _tensor_class()
    if isinstance(value, tensor_class):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _flatten_tensors(item)]
    raise TypeError(f"make_graphed_callables: outputs must be tensors or tuples/lists of tensors, got "
                    f"{type(value).__name__}")


def _rebuild(template, flat):
    tensor_class = _tensor_class()
    if isinstance(template, tensor_class):
        return flat.pop(0)
    rebuilt = [_rebuild(item, flat) for item in template]
    return rebuilt if isinstance(template, list) else tuple(rebuilt)


def _signature(t):
    return tuple(t.shape), t.dtype, t.device, t.requires_grad


class _Graphed:
    """A graphed callable: static inputs, one capture of forward and one of backward, replayed per call."""

    def __init__(self, function, sample_args, num_warmup_iters, allow_unused_input, pool, capture):
        import gpugrad
        tensor_class = _tensor_class()
        if not isinstance(sample_args, tuple) or not all(isinstance(a, tensor_class) for a in sample_args):
            raise TypeError("make_graphed_callables: sample_args must be a tuple of tensors for each callable "
                            "(the static inputs every call is copied into)")
        self.function, self.static_inputs = function, sample_args
        self.signatures = [_signature(a) for a in sample_args]
        self.params = tuple(function.parameters()) if hasattr(function, "parameters") else ()
        self.eager = capture is None
        if self.eager:
            return
        for _ in range(num_warmup_iters):          # lazy state (kernels, handles, optimizer slots) before capture
            outputs = _flatten_tensors(function(*sample_args))
            self._grads(gpugrad, outputs, [gpugrad.ones_like(o) for o in outputs if o.requires_grad])
        self.forward_replay, outputs = capture(lambda: function(*sample_args), pool)
        self.output_template = outputs
        self.static_outputs = _flatten_tensors(outputs)
        self.static_grad_outputs = [gpugrad.zeros_like(o) if o.requires_grad else None for o in self.static_outputs]
        needing = [o for o in self.static_outputs if o.requires_grad]
        grads_in = [g for g in self.static_grad_outputs if g is not None]
        self.backward_replay, self.static_grad_inputs = capture(
            lambda: self._grads(gpugrad, needing, grads_in, allow_unused_input), pool)

    def _differentiable(self):
        return [a for a in self.static_inputs if a.requires_grad] + [p for p in self.params if p.requires_grad]

    def _grads(self, gpugrad, outputs, grad_outputs, allow_unused=True):
        inputs = self._differentiable()
        if not outputs or not inputs:
            return ()
        grads = gpugrad.grad(outputs, inputs, grad_outputs=grad_outputs, allow_unused=allow_unused)
        return tuple(None if g is None else g.detach() for g in grads)

    def _check(self, args):
        if len(args) != len(self.signatures):
            raise TypeError(f"graphed callable: called with {len(args)} arguments, captured with "
                            f"{len(self.signatures)}")
        for position, (arg, expected) in enumerate(zip(args, self.signatures)):
            if not isinstance(arg, _tensor_class()) or _signature(arg) != expected:
                got = _signature(arg) if isinstance(arg, _tensor_class()) else type(arg).__name__
                raise ShapeError(f"graphed callable: argument {position} is {got}, but the callable was graphed "
                                 f"with (shape, dtype, device, requires_grad) {expected}; a graph replays fixed "
                                 "shapes: pad or bucket the inputs, or graph one callable per shape")

    def __call__(self, *args):
        self._check(args)
        if self.eager:
            return self.function(*args)
        graphed = self

        import gpugrad

        class Replay(gpugrad.Function):
            @staticmethod
            def forward(ctx, *inputs):
                for static, given in zip(graphed.static_inputs, inputs):
                    if static is not given:
                        static.detach().copy_(given.detach())
                graphed.forward_replay()
                return tuple(o.detach() for o in graphed.static_outputs)

            @staticmethod
            def backward(ctx, *grads):
                for static, given in zip(graphed.static_grad_outputs, grads):
                    if static is not None:
                        static.copy_(given if given is not None else gpugrad.zeros_like(static))
                graphed.backward_replay()
                differentiable = iter(graphed.static_grad_inputs)
                result = []
                for t in (*graphed.static_inputs, *graphed.params):
                    result.append(next(differentiable) if t.requires_grad else None)
                return tuple(None if g is None else g.detach() for g in result)

        outputs = list(Replay.apply(*args, *self.params))
        return _rebuild(self.output_template, outputs)


def _cuda_capture(body, pool):
    """Capture ``body()`` into a CUDAGraph; ``(replay, what body returned)``."""
    cuda_graph = CUDAGraph()
    with graph(cuda_graph, pool=pool):
        result = body()
    return cuda_graph.replay, result


def make_graphed_callables(callables, sample_args, num_warmup_iters=3, allow_unused_input=False, pool=None):
    """Graphed versions of modules or functions: forward and backward each captured once, replayed per call.

    As ``torch.cuda.make_graphed_callables``: each callable is warmed up
    ``num_warmup_iters`` times on its ``sample_args`` (the static inputs),
    then its forward and the backward of its outputs (with respect to the
    inputs that require grad and the module's parameters) are captured.  A
    call copies its arguments into the static inputs and replays the forward;
    ``backward`` replays the captured backward and accumulates the gradients
    as usual, so an optimizer step works unchanged.  Arguments must have the
    sample's shapes, dtypes, devices and ``requires_grad``.

    On the CPU (or with sample tensors on the CPU) the callables run eagerly,
    with the same argument checks.

    Parameters
    ----------
    callables : Module, function, or tuple of them
    sample_args : tuple of tensors, or a tuple of such tuples (one per callable)
    num_warmup_iters : int, default 3
    allow_unused_input : bool, default False
    pool : optional
        A memory pool for the captures (:func:`graph_pool_handle`).

    Returns
    -------
    The graphed callable, or a tuple of them (matching ``callables``).

    Raises
    ------
    gg.ShapeError
        A call whose arguments differ from the sample's shapes/dtypes/devices.

    Examples
    --------
    >>> import gpugrad as gg
    >>> model = gg.nn.Linear(3, 2)
    >>> x = gg.ones(4, 3)
    >>> graphed = gg.cuda.make_graphed_callables(model, (x,))
    >>> bool((graphed(x) == model(x)).all())
    True
    """
    single = not isinstance(callables, tuple)
    callables = (callables,) if single else callables
    if single:
        sample_args = (sample_args,)
    if len(sample_args) != len(callables):
        raise ValueError(f"make_graphed_callables: {len(callables)} callables but {len(sample_args)} sample_args")
    results = []
    for function, args in zip(callables, sample_args):
        if not callable(function):
            raise TypeError(f"make_graphed_callables: {type(function).__name__} is not callable")
        on_gpu = bool(args) and all(getattr(a, "device", backend.CPU).type == "cuda" for a in args)
        results.append(_Graphed(function, args, num_warmup_iters, allow_unused_input, pool,
                                _cuda_capture if on_gpu else None))
    return results[0] if single else tuple(results)


# --------------------------------------------------------------------------
# capture_check
# --------------------------------------------------------------------------
CaptureProblem = collections.namedtuple("CaptureProblem", "kind op where message")
CaptureProblem.__doc__ = """One thing that would break capture: ``kind`` (``host-sync``, ``shape-change``,
``allocation``, ``host-data``, ``random``), the ``op``, ``where`` (the user's ``file:line``) and a ``message``."""


class CaptureReport:
    """What :func:`capture_check` found.

    ``problems`` (a list of :data:`CaptureProblem`), ``ok``, and a readable ``str``.
    """

    def __init__(self, problems, steps):
        self.problems, self.steps = problems, steps

    @property
    def ok(self):
        return not self.problems

    def kinds(self):
        return sorted({problem.kind for problem in self.problems})

    def __str__(self):
        if self.ok:
            return f"capture_check: nothing found that would break capture ({self.steps} steps checked)"
        lines = [f"capture_check: {len(self.problems)} problem(s) that would break capture:"]
        lines += [f"  [{p.kind}] {p.op} at {p.where}: {p.message}" for p in self.problems]
        return "\n".join(lines)

    __repr__ = __str__


def _user_site():
    from .autograd import tape
    frames = tape.user_frames()
    frames = [f for f in frames if f.filename != __file__]
    if not frames:
        return "<gpugrad>"
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno}"


_HOST_SYNCS = {"item": ".item()", "__float__": "float(tensor)", "__int__": "int(tensor)",
               "__bool__": "bool(tensor) / if tensor", "__index__": "tensor as an index",
               "tolist": ".tolist()", "numpy": ".numpy()", "__array__": "numpy.asarray(tensor)",
               "__repr__": "print / repr(tensor)", "__str__": "print / str(tensor)",
               "__format__": "format(tensor) / f-string"}
_NUMPY_RANDOM = ("random", "rand", "randn", "randint", "normal", "uniform", "choice", "permutation", "shuffle",
                 "random_sample", "standard_normal", "seed")
_PYTHON_RANDOM = ("random", "randint", "uniform", "gauss", "shuffle", "choice", "seed", "normalvariate")


class _Observer:
    """Patches what can be observed on the host for the length of one check (never on the hot path)."""

    def __init__(self, step_device):
        self.step_device = step_device
        self.problems, self.seen = [], set()
        self.ops = None                  # this step's (op, shape, dtype, site) records, or None when not recording
        self.created = None              # weakrefs to arrays the step's ops made
        self.local = threading.local()
        self.patches = []

    def report(self, kind, op, message, where=None):
        where = where or _user_site()
        key = (kind, op, where)
        if key not in self.seen:
            self.seen.add(key)
            self.problems.append(CaptureProblem(kind, op, where, message))

    def _patch(self, owner, name, replacement):
        self.patches.append((owner, name, owner.__dict__.get(name, _MISSING) if isinstance(owner, type)
                             else getattr(owner, name, _MISSING)))
        setattr(owner, name, replacement)

    @contextlib.contextmanager
    def _outermost(self):
        depth = getattr(self.local, "depth", 0)
        self.local.depth = depth + 1
        try:
            yield depth == 0
        finally:
            self.local.depth = depth

    def install(self):  # noqa: C901 - one patch per observed entry point
        import gpugrad

        from .autograd import tape
        from .generator import Generator
        from .ops import creation
        from .ops import index as index_ops
        tensor_class = _tensor_class()
        observer = self

        def sync(name, label):
            original = getattr(tensor_class, name)

            def observed(self, *args, **kwargs):
                with observer._outermost() as outermost:
                    if outermost and observer.ops is not None:
                        observer.report("host-sync", label, "copies a device value to the host (a synchronisation, "
                                        "not allowed while capturing); keep it on the device, or read it after "
                                        "the replay")
                    return original(self, *args, **kwargs)
            return observed
        for name, label in _HOST_SYNCS.items():
            if hasattr(tensor_class, name):
                self._patch(tensor_class, name, sync(name, label))

        original_check_range = index_ops.check_index_range

        def check_index_range(op, index, size, axis, allow_negative=False):
            if observer.ops is not None:
                observer.report("host-sync", op, "checks its indices' range by reading their min and max on the "
                                "host; on CUDA that synchronises (validate the indices once, outside the step)")
            return original_check_range(op, index, size, axis, allow_negative)
        self._patch(index_ops, "check_index_range", check_index_range)

        original_init = tensor_class.__init__

        def tensor_init(self, data, *args, **kwargs):
            if observer.ops is not None and not isinstance(data, tensor_class) and not backend.is_gpu_array(data):
                with observer._outermost() as outermost:
                    if outermost:
                        observer.report("host-data", "tensor(...)", "makes a tensor from host data inside the step; "
                                        "on CUDA that is a copy from host memory read once, at capture: make it "
                                        "once before the step (a static tensor) and update it in place")
            return original_init(self, data, *args, **kwargs)
        self._patch(tensor_class, "__init__", tensor_init)

        original_from_numpy = creation.from_numpy

        def from_numpy(array):
            if observer.ops is not None:
                observer.report("host-data", "from_numpy", "wraps a host array inside the step (on CUDA it would "
                                "be copied from host memory once, at capture); make the tensor before the step")
            return original_from_numpy(array)
        self._patch(creation, "from_numpy", from_numpy)
        self._patch(gpugrad, "from_numpy", from_numpy)

        original_generator = backend.generator

        def generator(device):
            if observer.ops is not None and backend.as_device(device).type != self.step_device.type:
                observer.report("random", f"random numbers on {device}", f"draws from the {device} generator while "
                                f"the step runs on {self.step_device}; a capture on {self.step_device} would run "
                                "that draw on the host once, and every replay would repeat its numbers")
            return original_generator(device)
        self._patch(backend, "generator", generator)

        def host_random(module_name, function_name, original):
            def observed(*args, **kwargs):
                if observer.ops is not None:
                    observer.report("random", f"{module_name}.{function_name}", "draws on the host; a capture runs "
                                    "it once, so every replay would repeat the same numbers: draw with gpugrad's "
                                    "ops (gg.rand, dropout...) on the step's device")
                return original(*args, **kwargs)
            return observed
        for name in _NUMPY_RANDOM:
            self._patch(np.random, name, host_random("numpy.random", name, getattr(np.random, name)))
        for name in _PYTHON_RANDOM:
            self._patch(_python_random, name, host_random("random", name, getattr(_python_random, name)))

        def reseed(label, original):
            def observed(*args, **kwargs):
                if observer.ops is not None:
                    observer.report("random", label, "reseeds a generator inside the step: on the host, once, at "
                                    "capture; reseed before capturing instead")
                return original(*args, **kwargs)
            return observed
        self._patch(gpugrad, "manual_seed", reseed("gg.manual_seed", gpugrad.manual_seed))
        self._patch(Generator, "manual_seed", reseed("Generator.manual_seed", Generator.manual_seed))

        def forward_seen(op_name, array, what="output"):
            if observer.ops is not None:
                observer.ops.append((op_name, tuple(array.shape), str(array.dtype), _user_site()))
                try:
                    observer.created.append(weakref.ref(array))
                except TypeError:               # an array type without weak references: not followed
                    observer.created.append(None)
        self._patch(tape, "check_anomaly_forward", forward_seen)

        def backward_seen(node, input_grads, only_edge=None):
            if observer.ops is not None:
                for grad in input_grads:
                    if grad is not None:
                        array = getattr(grad, "array", grad)
                        observer.ops.append((f"backward of {node.name}", tuple(array.shape), str(array.dtype),
                                             "<backward>"))
        self._patch(tape, "_check_anomaly_backward", backward_seen)

        # Optimizers refuse a capture that would freeze host-side values (a step count, state made by
        # the first step): during an observed step they see a capture and their refusal is reported.
        from .optim.optimizer import Optimizer
        self._patch(_cuda_namespace, "is_current_stream_capturing", lambda: observer.ops is not None)
        original_refusal = Optimizer._refuse_stale_capture

        def refuse_stale_capture(optimizer, work):
            try:
                original_refusal(optimizer, work)
            except DeviceError as refusal:
                observer.report("host-state", f"{type(optimizer).__name__}.step()", str(refusal).split(": ", 1)[1])
        self._patch(Optimizer, "_refuse_stale_capture", refuse_stale_capture)

    def uninstall(self):
        for owner, name, original in reversed(self.patches):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self.patches.clear()


_MISSING = object()


def _reachable_arrays(roots, limit=200_000):
    """ids of the arrays reachable from ``roots`` (tensors, containers, autograd nodes), bounded."""
    found, seen, queue = set(), set(), collections.deque(roots)
    skip = (type, type(len), type(_reachable_arrays), type(builtins))
    while queue and len(seen) < limit:
        obj = queue.popleft()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray) or backend.is_gpu_array(obj):
            found.add(id(obj))
            base = getattr(obj, "base", None)
            if base is not None:
                queue.append(base)
            continue
        queue.extend(gc.get_referents(obj))
    return found


def capture_check(step, *example_args, steps=3, warmup=1, **example_kwargs):
    """Run ``step(*example_args)`` a few times and name everything that would break capturing it.

    The first ``warmup`` calls run unobserved (lazy state, such as optimizer
    slots, is made there, as before a real capture); the next ``steps`` calls
    (at least 2) are observed: host synchronisations, tensors made from host
    data, tensors created and kept after the step, shapes that differ between
    steps, and random numbers not drawn from the step device's generator
    (see the module docstring for the exact rules).  Each problem names the
    op and the user's ``file:line``.  Runs on the CPU and on CUDA; the step
    really runs ``warmup + steps`` times (its side effects happen).  For its
    duration it patches Tensor's host-read methods, ``numpy.random``/``random``
    functions and gpugrad's per-op anomaly hook process-wide (everything is put
    back afterwards, even on error): run it alone, not beside other threads using gpugrad.

    Parameters
    ----------
    step : callable
        E.g. a training step doing forward, backward and optimizer step.
    *example_args, **example_kwargs
        What ``step`` is called with every time (the static inputs).
    steps : int, default 3
    warmup : int, default 1

    Returns
    -------
    CaptureReport
        ``.ok``, ``.problems`` (each with ``kind``, ``op``, ``where``, ``message``), ``str()``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> model = gg.nn.Linear(3, 1)
    >>> optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    >>> x, y = gg.ones(4, 3), gg.zeros(4, 1)
    >>> def train_step(x, y):
    ...     optimizer.zero_grad()
    ...     loss = ((model(x) - y) ** 2).mean()
    ...     loss.backward()
    ...     optimizer.step()
    ...     return loss.detach()
    >>> gg.cuda.capture_check(train_step, x, y).ok
    True
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"capture_check: steps={steps!r} must be an integer >= 2 (shapes are compared between steps)")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"capture_check: warmup={warmup!r} must be a non-negative integer")
    if not callable(step):
        raise TypeError(f"capture_check: step must be callable, got {type(step).__name__}")
    from .autograd import tape
    tensor_class = _tensor_class()
    devices = [a.device for a in (*example_args, *example_kwargs.values()) if isinstance(a, tensor_class)]
    step_device = devices[0] if devices else backend.get_default_device()
    for _ in range(warmup):
        step(*example_args, **example_kwargs)
    observer = _Observer(step_device)
    sequences = []
    observer.install()
    try:
        with tape.detect_anomaly():          # routes every op's output through the (patched) per-op check
            for _ in range(steps):
                before = [weakref.ref(o) for o in gc.get_objects() if type(o) is tensor_class]
                observer.ops, observer.created = [], []
                try:
                    result = step(*example_args, **example_kwargs)
                finally:
                    ops, created = observer.ops, observer.created
                    observer.ops = observer.created = None
                sequences.append(ops)
                _report_survivors(observer, result, before, created, ops)
                del result
    finally:
        observer.uninstall()
    _report_shape_changes(observer, sequences)
    return CaptureReport(observer.problems, steps)


def _report_survivors(observer, result, before, created, ops):
    gc.collect()
    alive = [(ref(), index) for index, ref in enumerate(created) if ref is not None]
    alive = [(array, index) for array, index in alive if array is not None]
    if not alive:
        return
    allowed = _reachable_arrays([result])
    for ref in before:
        tensor = ref()
        if tensor is not None:
            allowed.add(id(tensor.array))
            grad = tensor.__dict__.get("grad")
            if grad is not None:
                allowed.add(id(grad.array))
    created_ops = [record for record in ops if not record[0].startswith("backward of ")]
    for array, index in alive:
        if id(array) in allowed or (getattr(array, "base", None) is not None and id(array.base) in allowed):
            continue
        op, shape, dtype, site = created_ops[index] if index < len(created_ops) else ("?", array.shape, "", "?")
        observer.report("allocation", op, f"its output {shape} {dtype} is still referenced after the step "
                        "returns, but is neither returned nor held by a tensor that existed before the step; a "
                        "replay rewrites that memory, so the kept value would change: return it, or copy it "
                        "into a static tensor", where=site)


def _report_shape_changes(observer, sequences):
    first = sequences[0]
    for number, other in enumerate(sequences[1:], start=2):
        for (op_a, shape_a, dtype_a, site_a), (op_b, shape_b, dtype_b, site_b) in zip(first, other):
            if (op_a, shape_a, dtype_a) != (op_b, shape_b, dtype_b):
                observer.report("shape-change", op_b, f"step {number} produced {op_b} {shape_b} {dtype_b} where "
                                f"step 1 produced {op_a} {shape_a} {dtype_a} (at {site_a}); a graph replays "
                                "fixed shapes: pad or bucket the data", where=site_b)
                break
        else:
            if len(first) != len(other):
                extra = (other if len(other) > len(first) else first)[min(len(first), len(other))]
                observer.report("shape-change", extra[0], f"step {number} ran {len(other)} ops and step 1 ran "
                                f"{len(first)}: the work differs between steps (data-dependent control flow); a "
                                "graph replays one fixed sequence", where=extra[3])

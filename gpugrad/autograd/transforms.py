"""Function transforms built on the tape and on forward mode, and checkpointing.

* :func:`vjp` - ``(f(x), vjp_fn)`` where ``vjp_fn(v) = v^T J_f(x)`` (reverse mode).
* :func:`jacrev` - the Jacobian one row at a time (one ``vjp_fn`` call per output element).
* :func:`jacfwd` - the Jacobian one column at a time (one ``gg.jvp`` pass per input element).
* :func:`hessian` - ``jacfwd(jacrev(f))``: forward-over-reverse.
* :func:`hvp` - ``(f(x), H v)`` as the ``gg.jvp`` of the gradient: one forward pass
  carrying a tangent through a backward pass, never forming ``H``.
* :func:`checkpoint` - run a block without keeping its intermediates; recompute
  them during backward.

The transforms compose because every derivative they produce is itself made of
recorded ops: ``vjp_fn`` records its backward pass when the primals are part of
an outer graph (reverse-over-reverse), and inside a ``gg.jvp`` level the engine
runs the VJP rules as tensor ops that carry tangents (forward-over-reverse).
"""

from __future__ import annotations

from .. import backend
from ..errors import AutogradError, ShapeError
from ..tensor import Tensor
from . import tape
from .forward import jvp
from .tape import Node, edge_of, state

__all__ = ["checkpoint", "hessian", "hvp", "jacfwd", "jacrev", "vjp"]


# --------------------------------------------------------------------------
# vjp
# --------------------------------------------------------------------------
def _as_tuple(value):
    return (value,) if isinstance(value, Tensor) else tuple(value)


def _fresh_input(primal):
    """A tensor with ``primal``'s value (and tangents) whose gradient ``gg.grad`` can capture.

    If the primal is already part of an outer graph, the alias is a recorded
    ``clone`` of it, so derivatives computed through the alias stay connected to
    that graph (reverse-over-reverse).  Otherwise it is a new leaf.
    """
    if not isinstance(primal, Tensor):
        raise TypeError(f"vjp: primals must be tensors, got {type(primal).__name__}")
    if primal.requires_grad:
        with tape.enable_grad():
            return primal.clone()
    if primal.dtype.kind not in "fc" and primal.dtype != backend.bfloat16:
        raise AutogradError(f"vjp: primal of dtype {primal.dtype} (shape {tuple(primal.shape)}) cannot be "
                            "differentiated; convert it with .float() or .double()")
    leaf = Tensor._make(primal.array)
    leaf.requires_grad = True
    if primal._tangents:
        leaf._tangents = dict(primal._tangents)   # forward-mode tangents ride along (forward-over-reverse)
    return leaf


def _plain_output(out, connected):
    """What ``vjp`` hands back as ``f(x)``: detached from the internal leaves unless
    the caller's primals were themselves in a graph; forward-mode tangents kept."""
    if connected:
        return out
    result = Tensor._make(out.array)
    if out._tangents:
        result._tangents = out._tangents
    return result


def vjp(f, *primals, create_graph=None):
    """Evaluate ``f`` and return ``(outputs, vjp_fn)`` with ``vjp_fn(*v) = v^T J_f(primals)``.

    Parameters
    ----------
    f : callable
        Takes the primals positionally; returns a tensor or a tuple of tensors.
    *primals : Tensor
        The point at which to differentiate.
    create_graph : bool, optional
        Record the backward pass of ``vjp_fn`` (higher derivatives).  By default
        it is recorded exactly when a primal or a cotangent requires grad.

    Returns
    -------
    outputs : Tensor or tuple of Tensor
        ``f(*primals)``.
    vjp_fn : callable
        Takes one cotangent per output (same shapes) and returns a tuple with
        one gradient per primal (zeros for primals the outputs do not use).
        It can be called any number of times.

    Examples
    --------
    >>> import gpugrad as gg
    >>> out, vjp_fn = gg.vjp(lambda x: x ** 2, gg.tensor([1.0, 2.0, 3.0]))
    >>> vjp_fn(gg.tensor([1.0, 1.0, 0.5]))
    (tensor([2., 4., 3.], device='cpu'),)
    """
    connected = any(isinstance(p, Tensor) and p.requires_grad for p in primals)
    inputs = [_fresh_input(p) for p in primals]
    with tape.enable_grad():
        outputs = f(*inputs)
    single = isinstance(outputs, Tensor)
    output_list = [outputs] if single else list(outputs)
    for index, out in enumerate(output_list):
        if not isinstance(out, Tensor):
            raise TypeError(f"vjp: f must return tensors, but output {index} is {type(out).__name__}")

    def vjp_fn(*cotangents):
        if len(cotangents) == 1 and not isinstance(cotangents[0], Tensor) and len(output_list) > 1:
            cotangents = tuple(cotangents[0])
        if len(cotangents) != len(output_list):
            raise ShapeError(f"vjp_fn: {len(cotangents)} cotangents given for {len(output_list)} outputs; "
                             "give one per output, with the output's shape")
        live_outputs, live_cotangents = [], []
        for index, (out, cotangent) in enumerate(zip(output_list, cotangents)):
            if not isinstance(cotangent, Tensor):
                cotangent = Tensor(cotangent, dtype=out.dtype, device=out.device)
            if tuple(cotangent.shape) != tuple(out.shape):
                raise ShapeError(f"vjp_fn: cotangent {index} has shape {tuple(cotangent.shape)} but output "
                                 f"{index} has shape {tuple(out.shape)}")
            if out.requires_grad:
                live_outputs.append(out)
                live_cotangents.append(cotangent)
        record = create_graph
        if record is None:
            record = connected or any(c.requires_grad for c in live_cotangents)
        if live_outputs:
            grads = tape.grad(live_outputs, inputs, grad_outputs=live_cotangents, retain_graph=True,
                              create_graph=record, allow_unused=True)
        else:
            grads = (None,) * len(inputs)
        return tuple(g if g is not None else Tensor._make(backend.xp_of(x.array).zeros_like(x.array))
                     for g, x in zip(grads, inputs))

    plain = [_plain_output(out, connected) for out in output_list]
    return (plain[0] if single else tuple(plain)), vjp_fn


# --------------------------------------------------------------------------
# Jacobians
# --------------------------------------------------------------------------
def _basis(reference, index):
    """The ``index``-th unit tensor shaped like ``reference`` (a one-hot direction)."""
    xp = backend.xp_of(reference.array)
    array = xp.zeros(reference.array.size, dtype=reference.dtype)
    array[index] = 1
    return Tensor._make(array.reshape(reference.shape))


def _normalise_argnums(argnums, count):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for num in nums:
        if not -count <= num < count:
            raise ValueError(f"argnums={argnums!r} is out of range for a function called with {count} "
                             "positional arguments")
    return single, tuple(num % count for num in nums)


def jacrev(f, argnums=0):
    """The Jacobian of ``f`` by reverse mode: one ``vjp`` per output element.

    Returns a function with ``f``'s signature; its result has shape
    ``output.shape + input.shape``.  With a tuple ``argnums`` it returns a
    tuple (one Jacobian per chosen argument); with a tuple of outputs, a
    tuple over outputs.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.jacrev(lambda x: x ** 2)(gg.tensor([1.0, 2.0]))
    tensor([[2., 0.],
            [0., 4.]], device='cpu')
    """
    from ..ops.methods import stack

    def jacobian_function(*args):
        single_arg, nums = _normalise_argnums(argnums, len(args))

        def restricted(*chosen):
            values = list(args)
            for num, value in zip(nums, chosen):
                values[num] = value
            return f(*values)

        outputs, vjp_fn = vjp(restricted, *[args[num] for num in nums])
        single_out = isinstance(outputs, Tensor)
        output_list = [outputs] if single_out else list(outputs)
        # rows[k][j] = list over output-k elements of d out_k[i] / d arg_j
        per_output = []
        for k, out in enumerate(output_list):
            rows = [[] for _ in nums]
            for i in range(out.array.size):
                cotangents = [_basis(out, i) if m == k else Tensor._make(backend.xp_of(o.array).zeros_like(o.array))
                              for m, o in enumerate(output_list)]
                grads = vjp_fn(*cotangents)
                for j, g in enumerate(grads):
                    rows[j].append(g)
            jacobians = []
            for j, num in enumerate(nums):
                arg = args[num]
                if rows[j]:
                    jacobian = stack(rows[j]).reshape(tuple(out.shape) + tuple(arg.shape))
                else:
                    jacobian = Tensor._make(backend.xp_of(arg.array).zeros(tuple(out.shape) + tuple(arg.shape),
                                                                          dtype=arg.dtype))
                jacobians.append(jacobian)
            per_output.append(jacobians[0] if single_arg else tuple(jacobians))
        return per_output[0] if single_out else tuple(per_output)

    return jacobian_function


def jacfwd(f, argnums=0):
    """The Jacobian of ``f`` by forward mode: one ``gg.jvp`` pass per input element.

    Same signature and result layout as :func:`jacrev` (``output.shape +
    input.shape``); cheaper when inputs are fewer than outputs.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.jacfwd(lambda x: x.sin().sum())(gg.tensor([0.0, 0.0]))
    tensor([1., 1.], device='cpu')
    """
    from ..ops.methods import stack

    def jacobian_function(*args):
        single_arg, nums = _normalise_argnums(argnums, len(args))
        primals = [args[num] for num in nums]

        def restricted(*chosen):
            values = list(args)
            for num, value in zip(nums, chosen):
                values[num] = value
            return f(*values)

        per_arg = []      # per chosen arg: list over its elements of output tangents (tuple over outputs)
        outputs = None
        for j, primal in enumerate(primals):
            columns = []
            for i in range(primal.array.size):
                tangents = [_basis(p, i) if m == j else Tensor._make(backend.xp_of(p.array).zeros_like(p.array))
                            for m, p in enumerate(primals)]
                outputs, output_tangents = jvp(restricted, tuple(primals), tuple(tangents))
                columns.append((output_tangents,) if isinstance(outputs, Tensor) else tuple(output_tangents))
            per_arg.append(columns)
        if outputs is None:   # every chosen argument is empty
            with tape.no_grad():
                outputs = restricted(*primals)
        single_out = isinstance(outputs, Tensor)
        output_list = [outputs] if single_out else list(outputs)
        per_output = []
        for k, out in enumerate(output_list):
            jacobians = []
            for j, primal in enumerate(primals):
                shape = tuple(out.shape) + tuple(primal.shape)
                columns = per_arg[j]
                if columns:
                    # stack puts the input index first; move it behind the output dimensions
                    stacked = stack([column[k] for column in columns])            # (n_in, *out.shape)
                    stacked = stacked.reshape(primal.array.size, out.array.size)
                    jacobian = stacked.transpose(0, 1).reshape(shape)
                else:
                    jacobian = Tensor._make(backend.xp_of(out.array).zeros(shape, dtype=out.dtype))
                jacobians.append(jacobian)
            per_output.append(jacobians[0] if single_arg else tuple(jacobians))
        return per_output[0] if single_out else tuple(per_output)

    return jacobian_function


def hessian(f, argnums=0):
    """The Hessian of a scalar function, by forward-over-reverse: ``jacfwd(jacrev(f))``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.hessian(lambda x: (x ** 3).sum())(gg.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]], device='cpu')
    """
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f, primals, v):
    """Hessian-vector product ``(f(x), H_f(x) v)`` by forward-over-reverse.

    One ``gg.jvp`` of the gradient function: the backward pass runs inside the
    forward-mode level, so its VJP rules carry tangents and the tangent of the
    gradient is ``H v``.  Costs a small constant times one gradient; ``H`` is
    never formed.

    Parameters
    ----------
    f : callable
        Scalar function of the primals.
    primals, v : Tensor or tuple of Tensor
        The point and the direction (one tensor per primal).

    Returns
    -------
    (Tensor, Tensor or tuple of Tensor)
        ``f(*primals)`` and ``H v`` (a tuple when ``primals`` is a tuple).

    Examples
    --------
    >>> import gpugrad as gg
    >>> value, hv = gg.hvp(lambda x: (x ** 3).sum(), gg.tensor([1.0, 2.0]), gg.tensor([1.0, 1.0]))
    >>> float(value), hv
    (9.0, tensor([ 6., 12.], device='cpu'))
    """
    single = isinstance(primals, Tensor)
    primal_tuple = _as_tuple(primals)
    v_tuple = _as_tuple(v)
    if len(primal_tuple) != len(v_tuple):
        raise ShapeError(f"hvp: {len(primal_tuple)} primals but {len(v_tuple)} directions; give one per primal")

    def value_and_gradient(*xs):
        value, vjp_fn = vjp(f, *xs)
        if not isinstance(value, Tensor) or value.array.size != 1:
            raise ShapeError("hvp: f must return a one-element tensor (a scalar loss), got "
                             f"{type(value).__name__ if not isinstance(value, Tensor) else tuple(value.shape)}")
        one = Tensor._make(backend.xp_of(value.array).ones(value.shape, dtype=value.dtype))
        return (value,) + tuple(vjp_fn(one))

    outputs, tangents = jvp(value_and_gradient, primal_tuple, v_tuple)
    hv = tuple(tangents[1:])
    return outputs[0], (hv[0] if single else hv)


# --------------------------------------------------------------------------
# Checkpointing
# --------------------------------------------------------------------------
def _rng_snapshot(devices):
    """Snapshots of the random generators of ``devices`` (so recomputation draws the same numbers).

    On both backends the snapshot is the generator's state (CuPy's generators hold a lock and
    cannot be deep-copied; their state is a device array, copied without a sync), so the
    recomputation replays exactly the numbers the forward drew.
    """
    return {device: backend.generator_state(device) for device in devices}


class _RngReplay:
    """Context manager: the generators of the snapshot's devices start where they were
    in forward; the live generators are put back afterwards."""

    def __init__(self, snapshot):
        self.snapshot = snapshot

    def __enter__(self):
        self.live = {device: backend._generators.get(device) for device in self.snapshot}
        for device, snapshot in self.snapshot.items():
            backend._generators[device] = backend.generator_from_state(device, snapshot)
        return self

    def __exit__(self, *exc):
        for device, generator in self.live.items():
            if generator is None:
                backend._generators.pop(device, None)
            else:
                backend._generators[device] = generator
        return False


class CheckpointNode(Node):
    """Graph node of one :func:`checkpoint` call: keeps the inputs, not the intermediates.

    Its edges are those of the tensor arguments and of the parameters of ``fn``
    when ``fn`` is a Module.  Leaves ``fn`` reaches otherwise (parameters in a
    closure) are found when backward recomputes ``fn``; the node then adds
    their edges, so their gradients reach ``.grad`` (and ``gg.grad`` when they
    are among its inputs).
    """

    name = "Checkpoint"
    discovers_edges = True

    def __init__(self, fn, args, kwargs, outputs, extra_leaves, rng_snapshot, preserve_rng_state):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.sequence = tape.next_sequence()
        if state.capture_sites:
            self.creation_site = tape.user_frames()
        self.extra_leaves = list(extra_leaves)
        self.next_edges = [edge_of(a) if isinstance(a, Tensor) else None for a in args]
        self.next_edges += [edge_of(leaf) for leaf in self.extra_leaves]
        self.input_meta = [(a.shape, a.dtype) if isinstance(a, Tensor) else None for a in args]
        self.output_meta = [(o.shape, o.dtype, o.device) for o in outputs]
        self.n_outputs = len(outputs)
        self.rng_snapshot = rng_snapshot
        self.preserve_rng_state = preserve_rng_state
        self.autocast = state.autocast     # the recomputation runs under the forward's autocast

    def release(self):
        self.args = None
        self.kwargs = None
        self.released = True

    def _input_gradients(self, grads, tensor_mode):
        if tensor_mode and state.grad_enabled:
            raise AutogradError(
                "checkpoint: backward with create_graph=True (double backward) through gg.checkpoint is not "
                "supported; call fn directly where you need higher-order derivatives")
        args = self.args
        inputs = []
        for arg in args:
            if isinstance(arg, Tensor):
                fresh = Tensor._make(arg.array)
                if arg.requires_grad:
                    fresh.requires_grad = True
                inputs.append(fresh)
            else:
                inputs.append(arg)
        first_new = tape.next_sequence()
        replay = _RngReplay(self.rng_snapshot if self.preserve_rng_state else {})
        engine_autocast = state.autocast
        state.autocast = self.autocast
        state.refresh()
        try:
            with replay, tape.enable_grad():
                outputs = self.fn(*inputs, **self.kwargs)
        finally:
            state.autocast = engine_autocast
            state.refresh()
        output_list = [outputs] if isinstance(outputs, Tensor) else list(outputs)

        # The leaves the recomputed graph reaches: our fresh inputs, and leaves of fn's closure.
        fresh_ids = {id(x) for x in inputs if isinstance(x, Tensor)}
        known = {id(leaf) for leaf in self.extra_leaves}
        roots = [o.grad_fn for o in output_list if isinstance(o, Tensor) and o.grad_fn is not None]
        for node in sorted(tape._graph_nodes(roots), key=lambda n: n.sequence):
            if isinstance(node, tape.AccumulateGrad):
                leaf = node.leaf
                if id(leaf) not in fresh_ids and id(leaf) not in known:
                    known.add(id(leaf))
                    self.extra_leaves.append(leaf)
                    self.next_edges.append((node, 0))
            elif node.sequence < first_new:
                raise AutogradError(
                    f"checkpoint: fn uses a tensor computed outside it (by op '{node.name}') that requires grad "
                    "without receiving it as an argument; pass it to gg.checkpoint(fn, *args) as an argument so "
                    "its gradient can flow")

        live = [(o, g) for o, g in zip(output_list, grads)
                if isinstance(o, Tensor) and o.requires_grad and g is not None]
        targets = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad] + self.extra_leaves
        if not live or not targets:
            return [None] * len(self.next_edges)
        # Hooks on closure leaves run once, in the outer backward, not also here.
        hooked = []
        for leaf in self.extra_leaves:
            node = edge_of(leaf)[0]
            if node.pre_hooks:
                hooked.append((node, node.pre_hooks))
                node.pre_hooks = None
        try:
            results = tape.run_backward([o for o, _ in live],
                                        [g if isinstance(g, Tensor) else Tensor._make(g) for _, g in live],
                                        retain_graph=False, create_graph=False, inputs=targets,
                                        allow_unused=True)
        finally:
            for node, hooks in hooked:
                node.pre_hooks = hooks
        by_target = {id(t): r for t, r in zip(targets, results)}
        gradients = [by_target.get(id(x)) if isinstance(x, Tensor) else None for x in inputs]
        gradients += [by_target.get(id(leaf)) for leaf in self.extra_leaves]
        return [None if g is None else (g if tensor_mode else g.array) for g in gradients]


def _module_parameters(fn):
    parameters = getattr(fn, "parameters", None)
    if not callable(parameters):
        return []
    try:
        return [p for p in parameters() if isinstance(p, Tensor) and p.requires_grad]
    except TypeError:
        return []


def checkpoint(fn, *args, preserve_rng_state=True, use_reentrant=None, **kwargs):
    """Run ``fn(*args)`` keeping none of its intermediates; recompute them in backward.

    Memory for compute: the forward pass runs ``fn`` under ``gg.no_grad()`` and
    keeps only the arguments; backward runs ``fn`` again with grad enabled and
    differentiates through that second run.  Random ops draw the same numbers
    both times (the generators are replayed), so dropout masks match and the
    gradients equal those of the plain call.

    Parameters
    ----------
    fn : callable
        A function of tensors (a Module or any callable).  Parameters it uses
        get their gradients; other tensors that require grad must be passed as
        arguments.
    *args, **kwargs
        Arguments of ``fn``.
    preserve_rng_state : bool
        Replay the random generators in the recomputation (default True).
    use_reentrant : ignored
        Accepted for PyTorch compatibility.

    Examples
    --------
    >>> import gpugrad as gg
    >>> x = gg.tensor([1.0, 2.0], requires_grad=True)
    >>> y = gg.checkpoint(lambda t: (t.sin() * t).sum(), x)
    >>> y.backward()
    >>> [round(g, 4) for g in x.grad.tolist()]
    [1.3818, 0.077]

    Notes
    -----
    ``backward()`` reaches every parameter ``fn`` uses.  ``gg.grad(loss,
    params)`` needs to know them when ``fn`` runs: pass a Module as ``fn``
    (its ``parameters()`` are used) or pass them as arguments; parameters hidden
    in a plain closure are found only when backward recomputes ``fn``, after
    ``gg.grad`` has decided which nodes lead to its inputs.
    Inside a ``gg.jvp`` level, or when grad is disabled, ``fn`` just runs.
    ``create_graph=True`` through a checkpoint is not supported.
    """
    tangent_args = any(isinstance(a, Tensor) and a._tangents for a in args)
    if not state.grad_enabled or (tangent_args and state.forward_levels):
        return fn(*args, **kwargs)
    devices = {a.device for a in args if isinstance(a, Tensor)} | {backend.CPU}
    for leaf in _module_parameters(fn):
        devices.add(leaf.device)
    snapshot = _rng_snapshot(sorted(devices, key=str)) if preserve_rng_state else {}
    with tape.no_grad():
        outputs = fn(*args, **kwargs)
    single = isinstance(outputs, Tensor)
    output_list = [outputs] if single else list(outputs)
    if not all(isinstance(o, Tensor) for o in output_list):
        raise TypeError("checkpoint: fn must return a tensor or a tuple of tensors")
    # Fresh tensors: fn may return an argument unchanged.
    output_list = [Tensor._make(o.array) for o in output_list]
    node = CheckpointNode(fn, args, kwargs, output_list, _module_parameters(fn), snapshot, preserve_rng_state)
    for index, out in enumerate(output_list):
        if out.dtype.kind in "fc" or out.dtype == backend.bfloat16:
            out.grad_fn, out._output_nr, out.requires_grad = node, index, True
    return output_list[0] if single else tuple(output_list)

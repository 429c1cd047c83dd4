"""The base class every gpugrad optimizer derives from.

An optimizer owns *parameter groups* (lists of leaf tensors sharing options
such as ``lr``) and per-parameter *state* (momentum buffers, running
averages).  ``step()`` reads each parameter's ``.grad`` and updates the parameters
**in place** through the "foreach" ops of :mod:`gpugrad.ops.optim_steps`
(``sgd_step_``, ``adam_step_``, ...): no autograd graph is built, and graphs
that saved a parameter are told through its version counter.

The layout of :meth:`Optimizer.state_dict` follows PyTorch exactly, so
checkpoints read the same way::

    {"state": {0: {"step": 3, "exp_avg": Tensor, ...}, 1: {...}},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}]}

Parameters are numbered in the order they appear across the groups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping

import numpy as np

from .. import backend
from .. import cuda as _cuda
from ..autograd import tape
from ..errors import DeviceError, DTypeError, ShapeError
from ..tensor import bump_versions

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marker for an option every parameter group must set (e.g. SGD's lr)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _tensor_class():
    # Imported lazily: gpugrad/__init__ imports this package, and the core
    # must be fully initialised before we look its classes up.
    from ..tensor import Tensor
    return Tensor


def wrap_array(array):
    """A Tensor sharing ``array`` (no copy, no graph) on the array's own device.

    Only for arrays the optimizer itself created: the tensor aliases them.
    """
    import gpugrad
    return gpugrad.as_tensor(array, device=backend.device_of(array))


class _ParamState(MutableMapping):
    """Per-parameter state keyed by the parameter *object* (identity).

    Tensors overload ``==`` elementwise, so they cannot be ordinary dict keys;
    this mapping hashes them by ``id`` and keeps a reference so the id stays
    valid.  ``optimizer.state[p]``, ``p in optimizer.state`` and iteration
    over parameters work as in PyTorch.
    """

    def __init__(self):
        self._entries = {}      # id(param) -> (param, state dict)

    def __getitem__(self, param):
        try:
            return self._entries[id(param)][1]
        except KeyError:
            raise KeyError(f"no optimizer state for this parameter (shape {tuple(getattr(param, 'shape', ()))}); "
                           "state appears after its first step with a gradient") from None

    def __setitem__(self, param, value):
        self._entries[id(param)] = (param, value)

    def __delitem__(self, param):
        del self._entries[id(param)]

    def __contains__(self, param):
        return id(param) in self._entries

    def __iter__(self):
        return (param for param, _ in self._entries.values())

    def __len__(self):
        return len(self._entries)

    def __repr__(self):
        return f"<optimizer state for {len(self)} parameter(s)>"

    def setdefault_for(self, param):
        """The state dict of ``param``, created empty on first use."""
        entry = self._entries.get(id(param))
        if entry is None:
            entry = self._entries[id(param)] = (param, {})
        return entry[1]


def _check_foreach_fused(owner, group):
    """``foreach`` and ``fused`` are None or bools, and not both True (PyTorch raises the same)."""
    for key in ("foreach", "fused"):
        value = group.get(key)
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"{owner}: {key}={value!r} must be None, True or False")
    if group.get("foreach") and group.get("fused"):
        raise RuntimeError(f"{owner}: `fused` and `foreach` cannot be `True` together (as in PyTorch); "
                           "pass one of them, fused=True for one kernel per parameter on CUDA")


def zeros_state(param):
    """A zero state tensor of ``param``'s shape, dtype and device (no graph)."""
    import gpugrad
    return gpugrad.zeros_like(param.detach())


def _baked_value(value):
    """A group setting as a captured step sees it: numbers by value, tensors (a device ``lr``) by memory."""
    if hasattr(value, "array"):
        return ("tensor", id(value.array))
    return value


def _check_number(owner, name, value, low=0.0, high=None, low_inclusive=True, high_inclusive=False):
    """Raise a ValueError naming ``owner``, ``name`` and the valid range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{owner}: {name}={value!r} must be a real number")
    if math.isnan(value):
        raise ValueError(f"{owner}: {name} is NaN; pass a finite number")
    if math.isinf(value):
        raise ValueError(f"{owner}: {name}={value!r} is infinite; pass a finite number")
    bad_low = value < low if low_inclusive else value <= low
    bad_high = high is not None and (value > high if high_inclusive else value >= high)
    if bad_low or bad_high:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        upper = "inf" if high is None else repr(high)
        raise ValueError(f"{owner}: invalid {name}={value!r}; it must lie in {left}{low!r}, {upper}{right}")


class Optimizer:
    """Base class: parameter groups, state, ``zero_grad`` and state dicts.

    Subclasses set ``defaults`` through ``super().__init__(params, defaults)``,
    implement :meth:`_check_group` (validate one group's options) and
    :meth:`_update_group` (apply one step to the parameters of a group that
    have gradients).

    Parameters
    ----------
    params : iterable of Tensor or iterable of dict
        Leaf tensors with ``requires_grad=True``, or parameter groups: dicts
        holding ``"params"`` plus any option overriding ``defaults``.
    defaults : dict
        Option values for groups that do not set them.

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0, 2.0], requires_grad=True)
    >>> b = gg.tensor([0.5], requires_grad=True)
    >>> opt = gg.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
    >>> [g["lr"] for g in opt.param_groups]
    [0.1, 0.5]
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = _ParamState()
        self.param_groups = []
        name = type(self).__name__
        if params is None or _is_tensor(params) or isinstance(params, (set, frozenset)):
            raise TypeError(
                f"{name}: params must be a list of tensors or of parameter-group dicts, "
                f"got {type(params).__name__}; pass model.parameters() or [tensor, ...] "
                "(sets are rejected because their order, and so the state_dict numbering, changes between runs)")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError(f"{name}: got an empty parameter list; pass at least one tensor "
                             "with requires_grad=True (did the model register its parameters?)")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        # Validate every group first: a bad group leaves the optimizer unbuilt
        # rather than half-built.
        prepared = []
        seen = set()
        for group in groups:
            group = self._prepare_group(group, seen)
            prepared.append(group)
        self.param_groups.extend(prepared)

    # ------------------------------------------------------------------
    # Groups.
    # ------------------------------------------------------------------
    def _prepare_group(self, group, seen_ids):
        name = type(self).__name__
        if not isinstance(group, Mapping):
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' key, "
                            f"got {type(group).__name__}")
        if "params" not in group:
            raise ValueError(f"{name}: parameter group {sorted(group)} has no 'params' key; "
                             "write {'params': [tensors...], 'lr': ...}")
        group = dict(group)
        params = group["params"]
        if _is_tensor(params):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: a group's 'params' must be an ordered list, not a set")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: a parameter group has an empty 'params' list; "
                             "drop the group or give it at least one tensor")
        for position, param in enumerate(params):
            _check_parameter(name, position, param)
            if id(param) in seen_ids:
                raise ValueError(f"{name}: parameter #{position} (shape {tuple(param.shape)}) appears "
                                 "more than once across the parameter groups; list each tensor once")
        for param in params:
            seen_ids.add(id(param))
        group["params"] = params
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group does not set the required option {key!r} "
                                 f"and no default was given; pass {key}=... to {name}(...)")
            group.setdefault(key, default)
        self._check_group(group)
        return group

    def add_param_group(self, param_group):
        """Add a group of parameters (e.g. layers unfrozen while fine-tuning).

        Parameters
        ----------
        param_group : dict
            ``{"params": [...], **options}``; options not given take the
            optimizer's defaults.  Raises ValueError (and changes nothing) if
            a parameter already belongs to another group.
        """
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        self.param_groups.append(self._prepare_group(param_group, seen))

    def _check_group(self, group):
        """Validate one group's options; subclasses raise ValueError."""

    def _numbered_params(self):
        return [p for group in self.param_groups for p in group["params"]]

    # ------------------------------------------------------------------
    # Steps.
    # ------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Forget the gradients of every parameter.

        Parameters
        ----------
        set_to_none : bool, default True
            ``True`` drops ``.grad`` (saves memory, and ``step`` then skips
            the parameter); ``False`` zeroes the gradient arrays in place.
        """
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.array[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; return ``closure()``'s loss.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss (it runs with
            gradients enabled, before the update).
        """
        loss = None
        if closure is not None:
            import gpugrad
            enable_grad = getattr(gpugrad, "enable_grad", None)
            if enable_grad is None:
                loss = closure()
            else:
                with enable_grad():
                    loss = closure()
        # Check every gradient before touching anything, so an error leaves
        # all parameters and all state exactly as they were.
        work = []
        for group in self.param_groups:
            with_grad = []
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                grad_data, param_data = grad.array, param.array
                if not (grad_data.__class__ is np.ndarray and param_data.__class__ is np.ndarray
                        and grad_data.shape == param_data.shape and param_data.flags.writeable):
                    # the full check, with its errors
                    _check_gradient(type(self).__name__, param, group.get("fused"))
                with_grad.append(param)
            work.append((group, with_grad))
        if _cuda.is_current_stream_capturing():
            self._refuse_stale_capture(work)
            _cuda._note_captured_step(self)
        for group, with_grad in work:
            if with_grad:
                self._update_group(group, with_grad)
                if not self._steps_bump_versions:
                    bump_versions(with_grad)
        tape.check_retained_graphs(f"{type(self).__name__}.step()")
        return loss

    #: True when :meth:`_update_group` updates through ``gpugrad.ops.optim_steps``,
    #: whose ops bump the parameters' versions themselves; a subclass that
    #: writes its own update keeps the default and ``step`` bumps them.
    _steps_bump_versions = False

    #: True when the update reads each parameter's step count on the host (bias
    #: corrections, schedules inside the optimizer): a CUDA graph would freeze
    #: the captured step's constants and every replay would repeat them.
    _update_reads_step_count = False

    def _reads_step_count(self, group):
        """Whether ``group``'s update depends on the host-side step count (see above)."""
        return self._update_reads_step_count

    def _keeps_state(self, group):
        """Whether ``group``'s update keeps per-parameter state (created on the host by the first step)."""
        return bool(getattr(self, "state_keys", None))

    def _capture_fingerprint(self):
        """What a CUDA graph capture of ``step`` bakes in: each group's settings (``lr``, betas, ...)
        and the memory of its parameters and of their state arrays (compared before each replay)."""
        groups = []
        for group in self.param_groups:
            # The optimizer's own settings only: a scheduler's bookkeeping (initial_lr) is not read by the update.
            settings = tuple((key, _baked_value(group.get(key))) for key in self.defaults)
            memory = []
            for param in group["params"]:
                memory.append(id(param.array))
                for key, value in self.state.get(param, {}).items():
                    if hasattr(value, "array"):
                        memory.append((key, id(value.array)))
            groups.append((settings, tuple(memory)))
        return tuple(groups)

    def _change_since_capture(self, fingerprint):
        """``None``, or what changed since ``fingerprint`` was taken, in words (for ``CUDAGraph.replay``)."""
        now = self._capture_fingerprint()
        if now == fingerprint:
            return None
        name = type(self).__name__
        if len(now) != len(fingerprint):
            return (f"{name} has {len(now)} parameter groups but had {len(fingerprint)} when the graph was captured "
                    "(add_param_group)")
        for index, ((settings, memory), (old_settings, old_memory)) in enumerate(zip(now, fingerprint)):
            if settings != old_settings:
                before, after = dict(old_settings), dict(settings)
                for key in sorted(set(before) | set(after)):
                    if before.get(key) != after.get(key):
                        return (f"{name}.param_groups[{index}][{key!r}] is {after.get(key)!r} but was "
                                f"{before.get(key)!r} when the graph was captured (an LR scheduler's step or a "
                                "changed setting)")
            if memory != old_memory:
                return (f"a parameter of {name}.param_groups[{index}] or its optimizer state now lives in other "
                        "memory than at capture (a .data assignment, a load_state_dict, changed parameters): the "
                        "graph keeps updating the old memory")
        return f"{name} changed since the graph was captured"

    def _refuse_stale_capture(self, work):
        """Raise if a CUDA graph capture of this step would replay numbers that differ from eager steps.

        PyTorch refuses the same captures (``capturable=False``): a replay
        re-runs the captured kernels with the constants computed on the host
        at capture, so a step count (Adam's bias corrections) or state made by
        the first step (a momentum buffer's ``buf = g``) would be frozen there.
        """
        name = type(self).__name__
        for group, params in work:
            if not params:
                continue
            if self._reads_step_count(group):
                raise DeviceError(
                    f"{name}.step(): cannot be captured in a CUDA graph: its update reads the step count on the "
                    "host (bias corrections), so every replay would repeat the captured step's constants and "
                    "differ from eager steps. Capture only the forward and backward (gg.cuda.make_graphed_callables"
                    "(model, sample_args)) and call the optimizer eagerly, or use an optimizer whose update does "
                    "not depend on the step (SGD, RMSprop, Adadelta)")
            if self._keeps_state(group) and any(not self.state.get(param) for param in params):
                raise DeviceError(
                    f"{name}.step(): cannot be captured before its state exists: the first step creates it on the "
                    "host (a momentum buffer starts as a copy of the gradient), which a replay would repeat. Run "
                    "a few eager warm-up steps before capturing (as PyTorch's CUDA graph recipe does)")

    def _update_group(self, group, params):
        raise NotImplementedError(f"{type(self).__name__} must implement _update_group(group, params) "
                                  "(or override step)")

    def _states(self, params):
        """Each parameter's state dict, created empty on first use."""
        setdefault_for = self.state.setdefault_for
        return [setdefault_for(param) for param in params]

    # ------------------------------------------------------------------
    # State dicts.
    # ------------------------------------------------------------------
    def state_dict(self):
        """The optimizer's state, in PyTorch's layout (see the module docstring).

        State tensors are returned by reference, as in PyTorch; copy the dict
        (or save it with ``gg.save``) before further steps if you need a
        snapshot.
        """
        index_of = {}
        packed_groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            indices = []
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
                indices.append(index_of[id(param)])
            packed["params"] = indices
            packed_groups.append(packed)
        packed_state = {}
        for param in self._numbered_params():
            if param in self.state:
                packed_state[index_of[id(param)]] = dict(self.state[param])
        return {"state": packed_state, "param_groups": packed_groups}

    #: The per-parameter state keys ``step()`` reads and writes, each mapped to
    #: whether a non-empty state must hold it.  ``load_state_dict`` refuses any
    #: other key (the state of another algorithm, e.g. SGD's into Adam) and any
    #: incomplete state.  ``None`` (a subclass that does not declare them): not checked.
    state_keys = None

    #: The state keys that hold plain numbers rather than tensors of the
    #: parameter's shape, each with its kind: ``"count"`` (an integer >= 0),
    #: ``"number"`` (a finite real) or ``"numbers"`` (a list of finite reals).
    scalar_state_keys = {}

    def load_state_dict(self, state_dict):
        """Restore state saved by :meth:`state_dict` (possibly via gg.save/gg.load).

        Everything is checked before anything changes: the groups must have
        the same sizes as this optimizer's and pass the same option checks as
        ``__init__``; each parameter's state may only hold this algorithm's
        keys (:attr:`state_keys`), its ``step`` must be a finite integer >= 0,
        and its tensors must have the parameter's shape and dtype (0-d
        included).  State tensors are copied onto each parameter's device.
        Any violation raises (ValueError, ShapeError, DTypeError, TypeError)
        and leaves the optimizer exactly as it was.
        """
        saved_groups = self._check_saved_layout(state_dict)
        # Build everything first, then swap it in: a bad entry changes nothing.
        new_state = self._built_state(state_dict["state"], self._saved_index_map(saved_groups))
        new_groups = []
        for saved, own in zip(saved_groups, self.param_groups):
            group = {k: (tuple(v) if k == "betas" and isinstance(v, (list, tuple)) else v)
                     for k, v in saved.items() if k != "params"}
            group["params"] = own["params"]
            # Options added since the checkpoint was written take their defaults;
            # the result must pass the same checks as a group given to __init__.
            for key, default in self.defaults.items():
                group.setdefault(key, own.get(key, default))
            self._check_group(group)
            new_groups.append(group)
        self.state = new_state
        self.param_groups = new_groups

    def _check_saved_layout(self, state_dict):
        """The saved groups, once the dict's layout and group sizes match this optimizer's."""
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups' "
                             "(from optimizer.state_dict()); got "
                             f"{sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__}")
        if not isinstance(state_dict["param_groups"], (list, tuple)) or not all(
                isinstance(g, Mapping) and isinstance(g.get("params"), (list, tuple))
                for g in state_dict["param_groups"]):
            raise ValueError(f"{name}.load_state_dict: 'param_groups' must be a list of dicts each with a "
                             "'params' list of indices, as optimizer.state_dict() writes")
        if not isinstance(state_dict["state"], Mapping):
            raise ValueError(f"{name}.load_state_dict: 'state' must be a dict {{index: {{key: value}}}}, got "
                             f"a {type(state_dict['state']).__name__}")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved_groups)} parameter "
                             f"group(s) but this optimizer has {len(self.param_groups)}; build the optimizer "
                             "with the same groups as the one that was saved")
        saved_sizes = [len(g["params"]) for g in saved_groups]
        own_sizes = [len(g["params"]) for g in self.param_groups]
        if saved_sizes != own_sizes:
            raise ValueError(f"{name}.load_state_dict: the saved groups hold {saved_sizes} parameters but "
                             f"this optimizer's hold {own_sizes}; the model or the grouping changed")
        return saved_groups

    def _saved_index_map(self, saved_groups):
        """Saved parameter index -> this optimizer's parameter."""
        name = type(self).__name__
        param_of = {}
        for saved, own in zip(saved_groups, self.param_groups):
            for index, param in zip(saved["params"], own["params"]):
                index = _as_index(name, index)
                if index in param_of:
                    raise ValueError(f"{name}.load_state_dict: parameter index {index} appears twice in the "
                                     "saved param_groups; the state dict is corrupt")
                param_of[index] = param
        return param_of

    def _built_state(self, saved_state, param_of):
        """The checked and cast per-parameter state, as a new :class:`_ParamState`."""
        name = type(self).__name__
        new_state = _ParamState()
        for raw_index, entries in saved_state.items():
            index = _as_index(name, raw_index)
            if index not in param_of:
                raise ValueError(f"{name}.load_state_dict: state for parameter {index}, but the saved "
                                 f"groups only number parameters {sorted(param_of)}")
            if not isinstance(entries, Mapping):
                raise ValueError(f"{name}.load_state_dict: the state of parameter {index} is a "
                                 f"{type(entries).__name__}, not a dict of its buffers")
            param = param_of[index]
            self._check_state_keys(index, entries)
            built = {}
            scalar_kinds = type(self).scalar_state_keys
            for key, value in entries.items():
                if key in scalar_kinds:
                    value = None if value is None else _cast_scalar_state(name, index, key, value, scalar_kinds[key])
                else:
                    value = _cast_state_value(name, index, key, value, param)
                if value is not None:       # PyTorch's SGD writes momentum_buffer=None for "none yet"
                    built[key] = value
            if built:
                new_state[param] = built
        return new_state

    def _check_state_keys(self, index, entries):
        keys = type(self).state_keys
        if keys is None or not entries:
            return
        name = type(self).__name__
        unknown = sorted(str(key) for key in entries if key not in keys)
        if unknown:
            raise ValueError(f"{name}.load_state_dict: the state of parameter {index} holds {unknown}, which "
                             f"{name} does not keep (its state keys are {sorted(keys)}); the state belongs to "
                             "another optimizer (e.g. SGD's momentum_buffer loaded into Adam): load it into "
                             "the optimizer class that saved it")
        missing = sorted(key for key, needed in keys.items() if needed and entries.get(key) is None)
        if missing and any(entries.get(key) is not None for key in entries):
            raise ValueError(f"{name}.load_state_dict: the state of parameter {index} lacks {missing} "
                             f"(it holds {sorted(str(k) for k in entries)}); {name} needs all of them to take "
                             "its next step")

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _as_index(owner, index):
    # Indices come back as strings from formats whose keys must be strings.
    try:
        return int(index)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.load_state_dict: parameter index {index!r} is not an integer") from None


def _is_tensor(value):
    return isinstance(value, _tensor_class())


def _check_parameter(owner, position, param):
    if not _is_tensor(param):
        raise TypeError(f"{owner}: parameter #{position} is a {type(param).__name__}, not a gg.Tensor; "
                        "pass model.parameters() or tensors made with requires_grad=True")
    if not param.requires_grad:
        raise ValueError(f"{owner}: parameter #{position} (shape {tuple(param.shape)}) has requires_grad=False, "
                         "so it would never get a gradient; create it with requires_grad=True "
                         "or call t.requires_grad_(), or, for frozen layers, pass only the trainable ones: "
                         "[p for p in model.parameters() if p.requires_grad]")
    if not param.is_leaf:
        raise ValueError(f"{owner}: parameter #{position} (shape {tuple(param.shape)}) is not a leaf tensor "
                         "(it was computed from other tensors, so its .grad is not kept and updating it "
                         "would not change the model); optimize the leaf instead, or pass "
                         "t.detach().requires_grad_()")


def _check_gradient(owner, param, fused=False):
    grad = param.grad
    flags = getattr(param.array, "flags", None)
    if flags is not None and not flags.writeable:
        raise ValueError(f"{owner}.step: a parameter of shape {tuple(param.shape)} lives in read-only memory "
                         "(e.g. np.frombuffer over bytes, a read-only memory map, or a broadcast view), so it "
                         "cannot be updated in place; no parameter was changed. Build the parameter from a "
                         "writable copy (gg.tensor(np.array(source)), or np.array(source) before from_numpy)")
    if tuple(grad.shape) != tuple(param.shape):
        raise ShapeError(f"{owner}.step: a parameter of shape {tuple(param.shape)} has a gradient of shape "
                         f"{tuple(grad.shape)}; gradients must match their parameter's shape")
    if backend.device_of(grad.array) != backend.device_of(param.array):
        raise DeviceError(f"{owner}.step: a parameter on {backend.device_of(param.array)} has its gradient on "
                          f"{backend.device_of(grad.array)}; move the gradient (or the parameter) so they match")
    if fused and backend.is_gpu_array(param.array) and grad.array.dtype != param.array.dtype:
        raise DTypeError(f"{owner}.step (fused=True): a parameter of shape {tuple(param.shape)} is "
                         f"{param.array.dtype} but its gradient is {grad.array.dtype}; the fused kernel needs both "
                         "of one dtype: cast the gradient (p.grad = p.grad.to(p.dtype)) or pass fused=False; "
                         "no parameter was changed")


def _as_step(owner, index, value):
    """A step count: a finite integer >= 0 (a Python number, a 0-d array or a one-element tensor)."""
    raw = value
    if _is_tensor(value) or hasattr(value, "dtype"):
        array = backend.to_numpy(value.array if _is_tensor(value) else value)
        if array.size != 1 or array.dtype.kind not in "iuf":
            raise ValueError(f"{owner}.load_state_dict: 'step' of parameter {index} is an array of shape "
                             f"{tuple(array.shape)} and dtype {array.dtype}; it must be one integer >= 0")
        value = array.reshape(-1)[0].item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{owner}.load_state_dict: 'step' of parameter {index} is {str(raw)[:60]!r} "
                         f"({type(raw).__name__}); it must be a finite integer >= 0")
    if not (math.isfinite(value) and float(value).is_integer() and value >= 0):
        raise ValueError(f"{owner}.load_state_dict: 'step' of parameter {index} is {value!r}; it must be a "
                         "finite integer >= 0 (the number of steps taken)")
    return int(value)


def _cast_scalar_state(owner, index, key, value, kind):
    """A state entry that is a number (or a list of numbers), checked against its kind."""
    def one(item):
        if _is_tensor(item) or hasattr(item, "dtype"):
            array = backend.to_numpy(item.array if _is_tensor(item) else item)
            if array.size != 1 or array.dtype.kind not in "iuf":
                raise ValueError(f"{owner}.load_state_dict: state {key!r} of parameter {index} holds an array of "
                                 f"shape {tuple(array.shape)} and dtype {array.dtype}; it must be one number")
            item = array.reshape(-1)[0]
        if isinstance(item, bool) or not isinstance(item, (int, float, np.integer, np.floating)):
            raise TypeError(f"{owner}.load_state_dict: state {key!r} of parameter {index} is a "
                            f"{type(item).__name__}; it must be a number")
        if not math.isfinite(float(item)):
            raise ValueError(f"{owner}.load_state_dict: state {key!r} of parameter {index} is {float(item)!r}; "
                             "it must be finite")
        if kind == "count" and not (float(item).is_integer() and item >= 0):
            raise ValueError(f"{owner}.load_state_dict: state {key!r} of parameter {index} is {item!r}; it must be "
                             "an integer >= 0")
        return int(item) if kind == "count" else item
    if kind == "numbers":
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{owner}.load_state_dict: state {key!r} of parameter {index} is a "
                            f"{type(value).__name__}; it must be a list of numbers")
        return [one(item) for item in value]
    return one(value)


def _cast_state_value(owner, index, key, value, param):
    if key == "step":
        # Steps are plain ints here (PyTorch keeps 0-d tensors); accept both.
        return _as_step(owner, index, value)
    if value is None and key == "momentum_buffer":
        return None
    if not _is_tensor(value):
        if hasattr(value, "dtype") and hasattr(value, "shape") and hasattr(value, "__array__") \
                or backend.is_gpu_array(value):   # a raw numpy/cupy array
            value = wrap_array(value if backend.is_gpu_array(value) else np.asarray(value))
        else:
            raise TypeError(f"{owner}.load_state_dict: state {key!r} of parameter {index} is a "
                            f"{type(value).__name__}; it must be a tensor of the parameter's shape "
                            f"{tuple(param.shape)}")
    if tuple(value.shape) != tuple(param.shape):
        raise ShapeError(f"{owner}.load_state_dict: state {key!r} of parameter {index} has shape "
                         f"{tuple(value.shape)} but the parameter has shape {tuple(param.shape)}; "
                         "the checkpoint belongs to a different model")
    if np.dtype(value.array.dtype) != np.dtype(param.array.dtype):
        raise DTypeError(f"{owner}.load_state_dict: state {key!r} of parameter {index} is "
                         f"{np.dtype(value.array.dtype)} but the parameter is {np.dtype(param.array.dtype)}; "
                         "the state of a step must match its parameter's dtype: convert the model to the "
                         "checkpoint's dtype before loading (or cast the saved state explicitly)")
    array = backend.to_device(value.array, backend.device_of(param.array))
    if array is value.array:
        array = array.copy()    # never alias the caller's state dict
    return wrap_array(array)

"""``gg.autocast``: mixed precision by op, with PyTorch's op lists.

Inside ``with gg.autocast("cuda", dtype=gg.bfloat16):`` every op dispatched in
the calling thread first passes its arguments through the thread's *policy*
(``gpugrad.autograd.tape.state.autocast``), which casts them by the op's
list:

* **lower precision** (matrix products, ``linear``, convolutions, ``einsum``,
  attention's products, RNN cells): float32 (and the other half type) inputs
  run in the autocast dtype, for tensor cores;
* **float32** (losses, norms, softmax's reductions, ``exp``/``log``/``pow``,
  sums and means, on CUDA; losses and ``prod`` on the CPU): float16/bfloat16
  inputs run in float32, where rounding to 8 or 11 bits would hurt;
* **widest** (``cat``, ``stack``, ``index_put``...): all floating inputs go to
  the widest floating dtype among them;
* every other op runs in the dtype of its inputs.

The lists are PyTorch's, per device type (its CPU and CUDA autocast lists
differ: CPU autocast keeps softmax, norms and ``exp`` in the input dtype).
Only tensors on the autocast device are cast, float64 never is, and the casts
are ordinary recorded ops, so gradients flow back through them in the dtype
each op ran in, and parameters (float32 leaves) stay float32: they are the
master weights the optimizer updates.  Backward passes run with autocast off
(a ``create_graph`` backward dispatches ops; they keep their forward dtypes),
``gg.checkpoint`` recomputes under the autocast state of its forward, and
``gg.no_grad`` and forward mode (``gg.jvp``) work unchanged (the casts carry
tangents).

The state is per thread, as PyTorch's: a new thread starts with autocast off.
"""

from __future__ import annotations

import functools

from .. import backend
from ..autograd.tape import state
from ..errors import DeviceError, DTypeError
from ..tensor import Tensor

__all__ = [
    "FLOAT32_OPS",
    "LOWER_PRECISION_OPS",
    "WIDEST_OPS",
    "autocast",
    "autocast_composite",
    "get_autocast_dtype",
    "is_autocast_enabled",
]

_LOW, _FLOAT32, _WIDEST = "lower precision", "float32", "widest"

# Op names (gpugrad's, registry ops or composite functions wrapped with
# :func:`autocast_composite`) per device type, from PyTorch's autocast lists
# (aten/src/ATen/autocast_mode.cpp; the CUDA lists are also in PyTorch's AMP docs).
LOWER_PRECISION_OPS = {
    "cpu": frozenset({"matmul", "linear", "linear_relu", "conv2d", "einsum", "addmm", "baddbmm"}),
    "cuda": frozenset({"matmul", "linear", "linear_relu", "conv2d", "einsum", "addmm", "baddbmm", "gru_cell",
                       "lstm_cell"}),
}
FLOAT32_OPS = {
    "cpu": frozenset({"prod", "cross_entropy", "binary_cross_entropy", "nll_loss", "mse_loss", "l1_loss",
                      "binary_cross_entropy_with_logits", "smooth_l1_loss", "huber_loss", "kl_div"}),
    # batch_norm is not on PyTorch's CUDA list (cuDNN computes it in float32 and
    # returns the input dtype); gpugrad's is not one fused kernel, so it runs in float32.
    "cuda": frozenset({"softmax", "log_softmax", "exp", "expm1", "log", "log1p", "pow", "tan", "sum", "mean",
                       "cumsum", "prod", "norm",
                       "logsumexp", "softplus", "layer_norm", "batch_norm", "group_norm", "cross_entropy",
                       "binary_cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
                       "smooth_l1_loss", "huber_loss", "kl_div", "cosine_similarity", "normalize"}),
}
WIDEST_OPS = {
    "cpu": frozenset({"cat", "stack", "index_put"}),
    "cuda": frozenset({"cat", "stack", "index_put", "scatter_add", "index_add"}),
}
_DEFAULT_DTYPE = {"cpu": backend.bfloat16, "cuda": backend.float16}
_DEVICE_TYPES = ("cpu", "cuda")


def _rules(device_type):
    rules = {name: _WIDEST for name in WIDEST_OPS[device_type]}
    rules.update({name: _FLOAT32 for name in FLOAT32_OPS[device_type]})
    rules.update({name: _LOW for name in LOWER_PRECISION_OPS[device_type]})
    return rules


_RULES = {device_type: _rules(device_type) for device_type in _DEVICE_TYPES}


class _Policy:
    """What ``state.autocast`` holds: the autocast dtype per enabled device type.

    Called by dispatch as ``policy(op, args) -> args`` for every op; an op on
    no list costs one dict look-up per enabled device type.
    """

    __slots__ = ("dtypes",)

    def __init__(self, dtypes):
        self.dtypes = dtypes          # {"cpu": bfloat16, ...}: only enabled device types

    def __call__(self, op, args):
        return self.cast_arguments(op.name, args)

    def cast_arguments(self, name, args):
        changed = None
        for device_type, low_dtype in self.dtypes.items():
            rule = _RULES[device_type].get(name)
            if rule is None:
                continue
            target = _target_dtype(rule, low_dtype, args, device_type)
            if target is None:
                continue
            cast_args = tuple(_cast(arg, target) if _eligible(arg, rule, target, device_type) else arg
                              for arg in (args if changed is None else changed))
            changed = cast_args
        return args if changed is None else changed


def _on(arg, device_type):
    return (device_type == "cuda") == backend.is_gpu_array(arg.array)


def _target_dtype(rule, low_dtype, args, device_type):
    if rule is _LOW:
        return low_dtype
    if rule is _FLOAT32:
        return backend.float32
    from ..ops.registry import result_dtype  # PyTorch's promotion (float16 with bfloat16 -> float32)
    widest = None
    for arg in args:
        if isinstance(arg, Tensor) and backend.is_floating(arg.dtype) and _on(arg, device_type):
            widest = arg.dtype if widest is None else result_dtype(widest, arg.dtype)
    return widest


def _eligible(arg, rule, target, device_type):
    """Cast this argument? Floating tensors on the device, never float64 (PyTorch's is_eligible)."""
    if not isinstance(arg, Tensor):
        return False
    dtype = arg.dtype
    if dtype == target or not backend.is_floating(dtype) or not _on(arg, device_type):
        return False
    if rule is _LOW:
        return dtype != backend.float64
    if rule is _FLOAT32:
        return dtype in backend.LOW_PRECISION
    return True


def _cast(arg, dtype):
    from ..ops.elementwise import cast  # ops sit above the tape; imported on first use
    return cast(arg, dtype)


def _current():
    return state.autocast


def _install(policy):
    state.autocast = policy
    state.refresh()


class autocast:
    """Run ops in mixed precision: PyTorch's ``torch.autocast``.

    A context manager and a decorator.  Matrix products, ``linear`` and
    convolutions run in ``dtype``; losses, norms and reductions that need the
    range run in float32 (see the module docstring for the lists); everything
    else runs in its inputs' dtype.  Parameters stay float32.

    Parameters
    ----------
    device_type : str
        ``"cpu"`` or ``"cuda"``: only tensors on that device are cast, with that
        device's op lists (PyTorch's: they differ).
    dtype : gg.float16 or gg.bfloat16, optional
        The lower precision; PyTorch's defaults (bfloat16 on cpu, float16 on cuda).
    enabled : bool
        ``False`` turns autocast off for the device inside the block (nested
        regions, e.g. a float32 island inside an autocast model).
    cache_enabled : bool, optional
        Accepted for PyTorch's signature; gpugrad casts each use afresh (the
        results are the same, the weight casts are not cached).

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.randn(4, 3, requires_grad=True)
    >>> x = gg.randn(2, 4)
    >>> with gg.autocast("cpu", dtype=gg.bfloat16):
    ...     y = x @ w
    ...     loss = gg.nn.functional.cross_entropy(y, gg.tensor([0, 2]))
    >>> y.dtype, loss.dtype
    (dtype(bfloat16), dtype('float32'))
    >>> loss.backward()
    >>> w.grad.dtype
    dtype('float32')
    """

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        device_type = str(device_type).split(":")[0].lower() if device_type is not None else device_type
        if device_type not in _DEVICE_TYPES:
            raise DeviceError(f"autocast: device_type {device_type!r} is not supported; use 'cpu' or 'cuda'")
        dtype = _DEFAULT_DTYPE[device_type] if dtype is None else backend.as_dtype(dtype)
        if dtype not in backend.LOW_PRECISION:
            raise DTypeError(f"autocast: dtype {dtype} is not a lower precision; use gg.bfloat16 or gg.float16 "
                             "(float32 everywhere is autocast(..., enabled=False))")
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)
        self._saved = []

    def __enter__(self):
        previous = _current()
        dtypes = dict(previous.dtypes) if previous is not None else {}
        if self.enabled:
            dtypes[self.device_type] = self.fast_dtype
        else:
            dtypes.pop(self.device_type, None)
        self._saved.append(previous)
        _install(_Policy(dtypes) if dtypes else None)
        return self

    def __exit__(self, *exc):
        _install(self._saved.pop())
        return False

    def __call__(self, function):
        settings = (self.device_type, self.fast_dtype, self.enabled)

        @functools.wraps(function)
        def run_under_autocast(*args, **kwargs):
            with autocast(settings[0], dtype=settings[1], enabled=settings[2]):
                return function(*args, **kwargs)
        return run_under_autocast


def is_autocast_enabled(device_type="cuda"):
    """Whether autocast is on for ``device_type`` in this thread.

    Examples
    --------
    >>> import gpugrad as gg
    >>> with gg.autocast("cpu"):
    ...     inside = gg.is_autocast_enabled("cpu")
    >>> inside, gg.is_autocast_enabled("cpu")
    (True, False)
    """
    policy = _current()
    return policy is not None and str(device_type).split(":")[0] in policy.dtypes


def get_autocast_dtype(device_type):
    """The lower precision autocast uses (or would use) on ``device_type`` in this thread."""
    policy = _current()
    if policy is not None and device_type in policy.dtypes:
        return policy.dtypes[device_type]
    return _DEFAULT_DTYPE[device_type]


def autocast_composite(name):
    """Give a function composed of ops an autocast rule of its own (``mse_loss``).

    PyTorch's lists name functions that gpugrad writes as several ops (a loss
    made of ``sub``, ``mul`` and ``mean``); wrapped with this decorator, such a
    function casts its tensor arguments by ``name``'s list before its ops run.
    Outside autocast it costs one attribute read.

    Examples
    --------
    >>> import gpugrad as gg
    >>> @autocast_composite("mse_loss")
    ... def squared(a, b):
    ...     return ((a - b) ** 2).mean()
    >>> with gg.autocast("cpu"):
    ...     squared(gg.ones(2, dtype=gg.bfloat16), gg.zeros(2, dtype=gg.bfloat16)).dtype
    dtype('float32')
    """
    def decorate(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            policy = state.autocast
            if policy is not None:
                args = policy.cast_arguments(name, args)
                if kwargs:
                    keys = tuple(kwargs)
                    values = policy.cast_arguments(name, tuple(kwargs[key] for key in keys))
                    kwargs = dict(zip(keys, values))
            return function(*args, **kwargs)
        run.autocast_rule = name     # lets tests tell this wrapper from a redundant one
        return run
    return decorate

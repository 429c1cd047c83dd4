"""gpugrad: GPU array autodiff with PyTorch's names, NumPy on the CPU, CuPy on the GPU.

>>> import gpugrad as gg
>>> x = gg.tensor([1.0, 2.0], requires_grad=True)
>>> y = (x.exp() * x).sum()
>>> y.backward()
>>> x.grad
tensor([ 5.4366, 22.1672], device='cpu')
"""

import builtins as _builtins
import functools as _functools

from . import backend, cuda
from .backend import (Device, bfloat16, bool_ as bool, double, float16, float32, float64, get_default_device,  # noqa: A004
                      get_default_dtype, half, int8, int16, int32, int64, long, set_default_device,
                      set_default_dtype, uint8)
from .errors import (AnomalyError, AutogradError, CheckpointError, DeviceError, DTypeError, GpugradError,
                     GradcheckError, OutOfMemoryError, ShapeError)
from .tensor import Tensor
from .autograd.tape import (GraphRetainedWarning, detect_anomaly, enable_grad, grad, is_grad_enabled, no_grad,
                            set_grad_enabled)
from . import ops  # registers every op and attaches the Tensor methods
from .autograd.check import gradcheck, gradgradcheck, numerical_grad
from .autograd.forward import jvp
from .autograd.function import Function, FunctionCtx
from .autograd.transforms import checkpoint, hessian, hvp, jacfwd, jacrev, vjp
from .ops import elementwise as _elementwise
from .ops.creation import (arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy, full, full_like,
                           linspace, ones, ones_like, rand, rand_like, randint, randn, randn_like,
                           randperm, tensor, zeros, zeros_like)
from .ops.linalg import dot, einsum as _einsum, matmul as _matmul, outer
from .ops.methods import cat as _cat, stack as _stack
from .ops.methods import (amax, amin, argmax, argmin, broadcast_to, chunk, clamp, cumsum, expand, flatten,
                          flip, gather, index_add, index_select, log_softmax, logsumexp, max, mean, min, norm,
                          pad, permute, prod, repeat, reshape, scatter_add, softmax, split, squeeze, std,
                          sum, take_along_dim, transpose, unsqueeze, var, where)
from .ops.extra_shape import (baddbmm, cdist, index_put, lerp, masked_fill, nan_to_num, repeat_interleave, roll,
                              scatter, tile, tril, triu)
from .ops.sorting import argsort, multinomial, sort, topk
from . import data, distributed, nn, optim, train, viz
from .io import load as _load_file, save as _save_file
from . import accelerator, backends, utils
from . import amp
from .backends import get_float32_matmul_precision, set_float32_matmul_precision
from .amp import autocast, get_autocast_dtype, is_autocast_enabled
from .generator import Generator, default_generator
from .ops.out_argument import OUT_RULES as _OUT_RULES, accepts_out as _accepts_out, call_with_out as _call_with_out
from .determinism import (are_deterministic_algorithms_enabled, is_deterministic_algorithms_warn_only_enabled,
                          use_deterministic_algorithms)
from .pytorch_names import (all_ as all, allclose, any_ as any, equal, get_num_threads,  # noqa: A004
                            is_floating_point, isclose, relu, set_num_threads)
from .pytorch_names import (BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor,
                            LongTensor, ShortTensor, Size, addmm, bernoulli, bmm, mm, narrow, normal)
from .save_module import save_module
from . import autograd

__version__ = "0.1.0"


def _on_tensors(function):
    """``gg.exp(x)`` and friends: the op's polymorphic function (which maps raw
    arrays to raw arrays, for the rules inside the engine) made to take and
    return Tensors for users, so ``gg.exp([1.0, 2.0])`` gives a Tensor.  PyTorch's
    keywords work too: ``gg.add(input=a, other=b)``, and ``out=`` writes the
    result into a given tensor (:mod:`gpugrad.ops.out_argument`, checked here
    rather than by a second wrapper: one call per op)."""
    name = {"power": "pow"}.get(function.__name__, function.__name__)

    @_functools.wraps(function)
    def public(*args, input=None, other=None, out=None, **kwargs):  # noqa: A002 - PyTorch's names
        if input is not None:
            args = (input,) + args
        if other is not None:
            args = args[:1] + (other,) + args[1:]
        if not _builtins.any(isinstance(arg, Tensor) for arg in args):
            args = tuple(tensor(arg) if i == 0 or hasattr(arg, "__len__") or hasattr(arg, "shape") else arg
                         for i, arg in enumerate(args))
        if out is not None:
            return _call_with_out(function, name, args, kwargs, out)
        return function(*args, **kwargs)
    public.takes_out = True
    return public


for _name in ("absolute", "ceil", "cos", "eq", "erf", "exp", "expm1", "floor", "ge", "gt", "isfinite", "isinf", "isnan",
              "le", "log", "log1p", "logical_and", "logical_not", "logical_or", "lt", "maximum", "minimum", "ne",
              "reciprocal", "rsqrt", "sigmoid", "sign", "sin", "sqrt", "square", "tan", "tanh", "add", "div", "mul",
              "neg", "sub", "power"):
    globals()[{"absolute": "abs", "power": "pow"}.get(_name, _name)] = _on_tensors(getattr(_elementwise, _name))
del _name



def _with_input(function):
    """Top-level reductions take PyTorch's ``input=`` keyword too (``gg.sum(input=x, dim=0)``), and ``out=``
    (:mod:`gpugrad.ops.out_argument`, checked here rather than by a second wrapper)."""
    name = function.__name__

    @_functools.wraps(function)
    def public(*args, input=None, out=None, **kwargs):  # noqa: A002 - PyTorch's name
        if input is not None:
            args = (input,) + args
        if out is not None:
            return _call_with_out(function, name, args, kwargs, out)
        return function(*args, **kwargs)
    public.takes_out = True
    return public


sum, mean, prod, amax, amin, logsumexp, max, min = (  # noqa: A001 - PyTorch's names
    _with_input(f) for f in (sum, mean, prod, amax, amin, logsumexp, max, min))

clip = clamp
swapaxes = transpose
true_divide = divide = div  # noqa: F821 - defined by the loop above
multiply = mul  # noqa: F821
subtract = sub  # noqa: F821
negative = neg  # noqa: F821
device = Device
dtype = type(float32)


def manual_seed(seed):
    """Seed every random op on every device; returns ``gg.default_generator`` (as ``torch.manual_seed``)."""
    from .ops.creation import manual_seed as seed_everything
    seed_everything(seed)
    return default_generator


def initial_seed():
    """The seed of the global CPU stream (None if never seeded)."""
    return default_generator.initial_seed()


def seed():
    """Seed the global streams from fresh entropy; return the seed."""
    import numpy as _np
    chosen = _builtins.int(_np.random.SeedSequence().generate_state(1, _np.uint64)[0] >> _np.uint64(1))
    manual_seed(chosen)
    return chosen


def get_rng_state():
    """The global CPU stream's state as a uint8 tensor (give it to :func:`set_rng_state`)."""
    return default_generator.get_state()


def set_rng_state(new_state):
    """Restore the global CPU stream from :func:`get_rng_state`."""
    default_generator.set_state(new_state)


def matmul(input, other):  # noqa: A002 - PyTorch's names
    """Matrix product with NumPy/PyTorch broadcasting; ``out=`` writes the result into a given tensor."""
    return _matmul(input, other)


def _as_sequence(tensors):
    # A generator is read once here; a Tensor or a non-iterable goes through
    # untouched so that cat/stack name it in their own TypeError.
    return tensors if isinstance(tensors, Tensor) or not hasattr(tensors, "__iter__") else list(tensors)


def cat(tensors, dim=0, *, axis=None):
    """Join tensors along an existing dimension; ``out=`` writes the result into a given tensor."""
    tensors = _as_sequence(tensors)
    return _cat(tensors, dim) if axis is None else _cat(tensors, axis=axis)


def stack(tensors, dim=0, *, axis=None):
    """Join tensors along a new dimension; ``out=`` writes the result into a given tensor."""
    tensors = _as_sequence(tensors)
    return _stack(tensors, dim) if axis is None else _stack(tensors, axis=axis)


concat = concatenate = cat


def einsum(equation, *operands):
    """Einstein summation, ``gg.einsum("ij,jk->ik", a, b)`` (operands may also be one list)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return _einsum(*operands, equation=equation)


def is_tensor(obj):
    """True for gpugrad tensors (and Parameters)."""
    return isinstance(obj, Tensor)


def numel(t):
    return t.numel()


def clone(t):
    return t.clone()


def detach(t):
    return t.detach()


def save(obj, f, *args, **kwargs):
    """Save tensors, state dicts, optimizer states or a whole module to ``f`` (a path or a binary file object).

    No pickle: a whole ``nn.Module`` is saved by :func:`gpugrad.save_module`
    (its class path, constructor arguments and state dict), and loading it
    needs ``gg.load(f, allowed_modules=[MyNet])``.  Other objects as
    :func:`gpugrad.io.save`.

    Examples
    --------
    >>> import io, gpugrad as gg
    >>> buffer = io.BytesIO()
    >>> gg.save({"w": gg.ones(2)}, buffer)
    >>> _ = buffer.seek(0)
    >>> gg.load(buffer)["w"]
    tensor([1., 1.], device='cpu')
    """
    from .nn.module import Module
    from .save_module import _save_any
    if isinstance(obj, Module):
        return save_module(obj, f, *args, **kwargs)
    if args or kwargs:
        raise TypeError(f"gg.save: unexpected arguments {list(args) + sorted(kwargs)}; gg.save(obj, f) takes none")
    return _save_any(obj, f)


def load(f, *args, map_location=None, weights_only=None, **kwargs):
    """Load what :func:`save` wrote, from a path or a binary file object.

    ``device=`` (or PyTorch's ``map_location=``) as :func:`gpugrad.io.load`;
    ``weights_only`` is accepted (no file runs code); ``allowed_modules=[MyNet, ...]``
    lets a file holding a whole module rebuild it (see :func:`gpugrad.save_module`).
    """
    from .save_module import load_from_file_object
    if map_location is not None:
        # PyTorch's spelling of device=; only a device (not a dict or a function) is meaningful here.
        if isinstance(map_location, (dict,)) or callable(map_location) and not isinstance(map_location, Device):
            raise TypeError("gg.load: map_location must be a device ('cpu', 'cuda', gg.device(...)); "
                            "remapping by dict or function is not supported, move tensors with .to() after loading")
        if "device" in kwargs:
            raise TypeError("gg.load: give either device= or map_location=, not both")
        kwargs["device"] = map_location
    # weights_only: gpugrad files never hold code, so loading is always weights-only; accepted for PyTorch's calls.
    return load_from_file_object(_load_file, f, *args, **kwargs)



class inference_mode:
    """PyTorch's ``torch.inference_mode``: like :class:`no_grad` (nothing is recorded).

    A context manager and a decorator, with or without parentheses;
    ``inference_mode(False)`` changes nothing.  Unlike PyTorch, tensors made
    inside are ordinary tensors (PyTorch forbids using them in autograd later).

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.ones(2, requires_grad=True)
    >>> with gg.inference_mode():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, _builtins.bool):   # @gg.inference_mode without parentheses
            return cls(True)(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.mode = _builtins.bool(mode)
        self._contexts = []

    def __enter__(self):
        context = no_grad() if self.mode else None
        if context is not None:
            context.__enter__()
        self._contexts.append(context)
        return self

    def __exit__(self, *exc):
        context = self._contexts.pop()
        if context is not None:
            context.__exit__(*exc)
        return False

    def __call__(self, function):
        mode = self.mode

        @_functools.wraps(function)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return function(*args, **kwargs)
        return wrapper


def is_inference_mode_enabled():
    """False: gpugrad has no separate inference mode state (``inference_mode`` is ``no_grad``)."""
    return False


float = float32  # noqa: A001 - PyTorch's names; defined last, as they shadow builtins in this module
int = int32  # noqa: A001
short = int16


# PyTorch's out= on every function that has it there (gpugrad.ops.out_argument).  The wrappers made
# above (gg.exp's, gg.sum's) take it already, and so do mm/bmm/addmm (their write_out is
# out_argument's): no second wrapper, no extra call per op.
for _name in _OUT_RULES:
    if not getattr(globals()[_name], "takes_out", False) and globals()[_name] not in (mm, bmm, addmm):
        globals()[_name] = _accepts_out(globals()[_name], _name)
del _name

__all__ = [name for name in dir() if not name.startswith("_")]

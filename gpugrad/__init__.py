"""gpugrad: GPU array autodiff with PyTorch's names, NumPy on the CPU, CuPy on the GPU.

>>> import gpugrad as gg
>>> x = gg.tensor([1.0, 2.0], requires_grad=True)
>>> y = (x.exp() * x).sum()
>>> y.backward()
>>> x.grad
tensor([ 5.4366, 22.1672], device='cpu')
"""

import functools as _functools

from . import backend, cuda
from .backend import (Device, bool_ as bool, double, float16, float32, float64, get_default_device,  # noqa: A004
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
                           linspace, manual_seed, ones, ones_like, rand, rand_like, randint, randn, randn_like,
                           randperm, tensor, zeros, zeros_like)
from .ops.linalg import dot, einsum as _einsum, matmul, outer
from .ops.methods import (amax, amin, argmax, argmin, broadcast_to, cat, chunk, clamp, cumsum, expand, flatten,
                          flip, gather, index_add, index_select, log_softmax, logsumexp, max, mean, min, norm,
                          pad, permute, prod, repeat, reshape, scatter_add, softmax, split, squeeze, stack, std,
                          sum, take_along_dim, transpose, unsqueeze, var, where)
from .ops.extra_shape import (baddbmm, cdist, index_put, lerp, masked_fill, nan_to_num, repeat_interleave, roll,
                              scatter, tile, tril, triu)
from .ops.sorting import argsort, multinomial, sort, topk
from . import data, distributed, nn, optim, train, viz
from .io import load, save

__version__ = "0.1.0"


def _on_tensors(function):
    """``gg.exp(x)`` and friends: the op's polymorphic function (which maps raw
    arrays to raw arrays, for the rules inside the engine) made to take and
    return Tensors for users, so ``gg.exp([1.0, 2.0])`` gives a Tensor."""
    @_functools.wraps(function)
    def public(*args, **kwargs):
        if not any(isinstance(arg, Tensor) for arg in args):
            args = tuple(tensor(arg) if i == 0 or hasattr(arg, "__len__") or hasattr(arg, "shape") else arg
                         for i, arg in enumerate(args))
        return function(*args, **kwargs)
    return public


for _name in ("abs_", "ceil", "cos", "eq", "erf", "exp", "expm1", "floor", "ge", "gt", "isfinite", "isinf", "isnan",
              "le", "log", "log1p", "logical_and", "logical_not", "logical_or", "lt", "maximum", "minimum", "ne",
              "reciprocal", "rsqrt", "sigmoid", "sign", "sin", "sqrt", "square", "tan", "tanh", "add", "div", "mul",
              "neg", "sub", "power"):
    globals()[{"abs_": "abs", "power": "pow"}.get(_name, _name)] = _on_tensors(getattr(_elementwise, _name))
del _name

clip = clamp
concatenate = cat
swapaxes = transpose
true_divide = divide = div  # noqa: F821 - defined by the loop above
multiply = mul  # noqa: F821
subtract = sub  # noqa: F821
negative = neg  # noqa: F821
device = Device
dtype = type(float32)


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


__all__ = [name for name in dir() if not name.startswith("_")]

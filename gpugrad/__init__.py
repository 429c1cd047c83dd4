"""gpugrad: GPU array autodiff with PyTorch's names, NumPy on the CPU, CuPy on the GPU.

>>> import gpugrad as gg
>>> x = gg.tensor([1.0, 2.0], requires_grad=True)
>>> y = (x.exp() * x).sum()
>>> y.backward()
>>> x.grad
tensor([ 5.4366, 22.1672])
"""

from . import backend
from . import cuda  # noqa: F401 - gg.cuda.is_available() and friends
from .backend import (Device, bool_ as bool, double, float16, float32, float64, get_default_device,  # noqa: A004
                      get_default_dtype, half, int8, int16, int32, int64, long, set_default_device,
                      set_default_dtype, uint8)
from .errors import (AnomalyError, AutogradError, CheckpointError, DeviceError, DTypeError, GpugradError,
                     GradcheckError, OutOfMemoryError, ShapeError)
from .tensor import Tensor
from .autograd.tape import (GraphRetainedWarning, detect_anomaly, enable_grad, grad, is_grad_enabled,  # noqa: E402
                            no_grad, set_grad_enabled)
from . import ops  # noqa: E402 - registers every op and Tensor method
from .autograd.check import gradcheck, gradgradcheck, numerical_grad  # noqa: E402
from .autograd.forward import jvp  # noqa: E402
from .autograd.function import Function, FunctionCtx  # noqa: E402
from .ops.creation import (arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy, full, full_like,
                           linspace, manual_seed, ones, ones_like, rand, rand_like, randint, randn, randn_like,
                           randperm, tensor, zeros, zeros_like)
from .ops.elementwise import (abs_ as abs, ceil, cos, eq, erf, exp, expm1, floor, ge, gt, isfinite, isinf,  # noqa: A004
                              isnan, le, log, log1p, logical_and, logical_not, logical_or, lt, maximum, minimum,
                              ne, reciprocal, rsqrt, sigmoid, sign, sin, sqrt, square, tan, tanh)
from .ops.elementwise import add, div, mul, neg, sub
from .ops.elementwise import power as pow  # noqa: A004
from .ops.linalg import dot, einsum as _einsum, matmul, outer
from .ops.methods import (amax, amin, argmax, argmin, broadcast_to, cat, chunk, clamp, cumsum, expand, flatten,
                          flip, gather, index_add, index_select, log_softmax, logsumexp, max, mean, min, norm,
                          pad, permute, prod, repeat, reshape, scatter_add, softmax, split, squeeze, stack, std,
                          sum, take_along_dim, transpose, unsqueeze, var, where)

clip = clamp
concatenate = cat
swapaxes = transpose
true_divide = div
divide = div
multiply = mul
subtract = sub
negative = neg
device = Device
dtype = type(float32)


def einsum(equation, *operands):
    """Einstein summation, ``gg.einsum("ij,jk->ik", a, b)`` (operands may also be one list)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return _einsum(*operands, equation=equation)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(t):
    return t.numel()


def clone(t):
    return t.clone()


def detach(t):
    return t.detach()


from . import data, optim  # noqa: E402
from . import nn  # noqa: E402 - gg.nn (modules, layers, init, utils)
from .io import load, save  # noqa: E402

__version__ = "0.1.0"
from .autograd.transforms import vjp, jacrev, jacfwd, hessian, hvp, checkpoint  # noqa: E402
from . import viz  # noqa: E402
from . import train  # noqa: E402
from . import distributed  # noqa: E402

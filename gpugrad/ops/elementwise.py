"""Elementwise arithmetic and math: forward, VJP and JVP of each op side by side.

Rules use operators and the functions defined here, never Tensor methods, so
the same rule runs on raw arrays (plain backward) and on Tensors
(``create_graph=True``, forward mode).  Broadcasting is undone by the engine.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from .. import backend, kernels
from ..backend import xp_of as _xp
from ..errors import DTypeError
from ..tensor import Tensor
from .low_precision import in_float32_for_low_precision
from .registry import defop, pass_through
from .samples import Away, Distinct, Ints, Mask, Positive, Sample, Unit

_BINARY_SAMPLES = [Sample((3, 4), (3, 4)), Sample((3, 1), (4,)), Sample((2, 3), 1.5),
                   Sample(0.7, (2, 3)), Sample((), (2, 2))]


# --------------------------------------------------------------------------
# dtype conversion
# --------------------------------------------------------------------------
def _cast_forward(x, dtype):
    return x.astype(dtype, copy=False) if hasattr(x, "astype") else np.asarray(x, dtype=dtype)


cast = defop(
    "cast", _cast_forward,
    # The engine casts every gradient back to its input's dtype.
    vjp=(pass_through,),
    jvp=lambda t, out, x, dtype: cast(t[0], dtype),
    save=(), samples=[Sample((2, 3), dtype=np.dtype("float32"))],
    # float32 output: central differences need a larger step and looser tolerance.
    tolerance=dict(eps=1e-3, atol=1e-4, rtol=1e-3),
    reference=lambda x, dtype: x.astype(dtype),
    doc="""Convert to another dtype (a copy unless the dtype is already ``dtype``).

    PyTorch: ``input.to(dtype)``; the gradient is cast back to the input's dtype.

    Parameters
    ----------
    input : Tensor
    dtype : gg.dtype
        The result's dtype.
    """)

# --------------------------------------------------------------------------
# arithmetic
# --------------------------------------------------------------------------
add = defop(
    "add", operator.add,     # a C function: no Python frame per call
    vjp=(pass_through, pass_through),
    jvp=lambda t, out, a, b: t[0] + t[1],
    save=(), promote=True, samples=_BINARY_SAMPLES, reference=np.add,
    doc="""Elementwise sum ``input + other``.

    PyTorch: ``torch.add(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)

sub = defop(
    "sub", operator.sub,
    vjp=(pass_through,
         lambda g, out, a, b: -g),
    jvp=lambda t, out, a, b: t[0] - t[1],
    save=(), promote=True, samples=_BINARY_SAMPLES, reference=np.subtract,
    doc="""Elementwise difference ``input - other``.

    PyTorch: ``torch.sub(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)

mul = defop(
    "mul", operator.mul,
    vjp=(lambda g, out, a, b: g * b,
         lambda g, out, a, b: g * a),
    jvp=lambda t, out, a, b: t[0] * b + a * t[1],
    # The gradient of a reads b and that of b reads a: ``y * 3`` keeps nothing of y.
    needs=((1,), (0,)), promote=True, samples=_BINARY_SAMPLES, reference=np.multiply,
    doc="""Elementwise product ``input * other``.

    PyTorch: ``torch.mul(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)

div = defop(
    "div", operator.truediv,
    vjp=(lambda g, out, a, b: g / b,
         lambda g, out, a, b: -g * a / (b * b)),
    jvp=lambda t, out, a, b: (t[0] - a / b * t[1]) / b,
    needs=((1,), (0, 1)), promote="float",
    samples=[Sample((3, 4), Away((3, 4))), Sample((3, 1), Away((4,))), Sample((2, 3), 1.5),
             Sample(0.7, Away((2, 3)))],
    reference=np.divide,
    doc="""Elementwise true division ``input / other``.

    PyTorch: ``torch.div(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)

neg = defop(
    "neg", lambda x: -x,
    vjp=(lambda g, out, x: -g,),
    jvp=lambda t, out, x: -t[0],
    save=(), samples=[Sample((3, 4))], reference=np.negative,
    doc="""Elementwise negation ``-input``.

    PyTorch: ``torch.neg(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)


def _pow_vjp_base(g, out, a, b):
    # PyTorch: zero where the exponent is 0, also at a == 0 (where b * a**(b-1) is 0 * inf = NaN).
    if isinstance(b, Tensor) or getattr(b, "ndim", 0) > 0:       # a tensor (or, in a plain backward, its array)
        with np.errstate(divide="ignore", invalid="ignore"):      # 0 ** -1 where b == 0: replaced below
            return where(b == 0, 0.0, g * b * power(a, b - 1))
    if b == 0:
        return g * 0.0
    return g * b * power(a, b - 1)


def _pow_vjp_exponent(g, out, a, b):
    # d(a**b)/db = a**b * log(a); define it as 0 where a == 0 (PyTorch does the same).
    safe_a = where(a == 0, 1.0, a)
    return g * where(a == 0, 0.0, out * log(safe_a))


def _pow_jvp(t, out, a, b):
    tangent = _pow_vjp_base(t[0], out, a, b)      # the same factor, zero where the exponent is 0
    if not isinstance(t[1], float):  # the exponent has a tangent (a tensor exponent)
        tangent = tangent + t[1] * where(a == 0, 0.0, out * log(where(a == 0, 1.0, a)))
    return tangent


def _check_pow(a, b):
    # PyTorch refuses an integer tensor to a negative Python integer (a 0-d array
    # after promotion); a tensor exponent with negative entries is computed below.
    if (isinstance(a, Tensor) and a.array.dtype.kind in "iub" and not isinstance(b, (Tensor, bool, float))
            and _kind(b) in "iu" and getattr(b, "ndim", 0) == 0 and int(b) < 0):
        raise DTypeError(f"pow: Integers to negative integer powers are not allowed. ({a.dtype} tensor of shape "
                         f"{tuple(a.shape)} ** {int(b)}); convert first, e.g. t.float() ** {int(b)}")


def _kind(value):
    """dtype kind of an array or a Python number (``2 ** t`` passes the int as is)."""
    return value.dtype.kind if hasattr(value, "dtype") else ("i" if isinstance(value, int) else "f")


def _pow_forward(a, b):
    if _kind(a) in "iub" and _kind(b) in "iu" and bool(b < 0 if isinstance(b, int) else (b < 0).any()):
        # PyTorch's integer pow for negative exponents (NumPy raises, CuPy differs):
        # 1 stays 1, -1 alternates by parity, everything else (0 included) becomes 0.
        xp = _xp(b) if hasattr(b, "dtype") else _xp(a)
        negative = b < 0
        positive_part = a ** xp.where(negative, 0, b)
        parity = xp.where(b % 2 == 0, 1, -1).astype(positive_part.dtype)
        small = xp.where(a == 1, 1, xp.where(a == -1, parity, 0)).astype(positive_part.dtype)
        return xp.where(negative, small, positive_part)
    return a ** b


power = defop(
    "pow", _pow_forward,
    vjp=(_pow_vjp_base, _pow_vjp_exponent), jvp=_pow_jvp,
    needs=((0, 1), (0,)), promote=True, save_output=True, check=_check_pow,
    samples=[Sample(Positive((3, 4)), (3, 4)), Sample((3, 4), 2), Sample((2, 3), 3.0),
             Sample(Positive((2, 3)), 0.5), Sample(1.7, (2, 3)), Sample(Positive((3, 1)), (4,))],
    reference=np.power,
    doc="""Elementwise power ``input ** exponent``; an integer tensor to a negative integer power is an error, as
    in PyTorch.

    PyTorch: ``torch.pow(input, exponent)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)


def _floor_divide_forward(a, b):
    return a // b


floor_divide = defop("floor_divide", _floor_divide_forward, promote=True, differentiable=False,
                     samples=[Sample(Ints((3,), 1, 9), Ints((3,), 1, 4))], reference=np.floor_divide,
    doc="""Elementwise floor division ``input // other`` (no gradient).

    PyTorch: ``torch.floor_divide(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)

remainder = defop(
    "remainder", lambda a, b: a % b,
    vjp=(pass_through,
         lambda g, out, a, b: -g * floor(a / b)),
    jvp=lambda t, out, a, b: t[0] - t[1] * floor(a / b),
    needs=((), (0, 1)), promote=True, samples=[Sample(Positive((3, 4)), 0.3)], reference=np.remainder,
    doc="""Elementwise remainder ``input % other`` with the sign of ``other`` (Python's).

    PyTorch: ``torch.remainder(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)

# --------------------------------------------------------------------------
# unary math
# --------------------------------------------------------------------------
exp = defop(
    "exp", lambda x: _xp(x).exp(x),
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(lambda g, out, x: g * out,),
    jvp=lambda t, out, x: t[0] * out,
    save=(), save_output=True, samples=[Sample((3, 4))], reference=np.exp, method="exp",
    doc="""Elementwise exponential ``e ** input``.

    PyTorch: ``torch.exp(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

log = defop(
    "log", lambda x: _xp(x).log(x),
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(lambda g, out, x: g / x,),
    jvp=lambda t, out, x: t[0] / x,
    samples=[Sample(Positive((3, 4)))], reference=np.log, method="log",
    doc="""Elementwise natural logarithm.

    PyTorch: ``torch.log(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

log1p = defop(
    "log1p", lambda x: _xp(x).log1p(x),
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(lambda g, out, x: g / (x + 1),),
    jvp=lambda t, out, x: t[0] / (x + 1),
    samples=[Sample(Positive((3, 4)))], reference=np.log1p, method="log1p",
    doc="""Elementwise ``log(1 + input)``, accurate for small inputs.

    PyTorch: ``torch.log1p(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

expm1 = defop(
    "expm1", lambda x: _xp(x).expm1(x),
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(lambda g, out, x: g * (out + 1),),
    jvp=lambda t, out, x: t[0] * (out + 1),
    save=(), save_output=True, samples=[Sample((3, 4))], reference=np.expm1, method="expm1",
    doc="""Elementwise ``exp(input) - 1``, accurate for small inputs.

    PyTorch: ``torch.expm1(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

sqrt = defop(
    "sqrt", lambda x: _xp(x).sqrt(x),
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(lambda g, out, x: g / (out * 2),),
    jvp=lambda t, out, x: t[0] / (out * 2),
    save=(), save_output=True, samples=[Sample(Positive((3, 4)))], reference=np.sqrt, method="sqrt",
    doc="""Elementwise square root.

    PyTorch: ``torch.sqrt(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

sin = defop(
    "sin", lambda x: _xp(x).sin(x),
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(lambda g, out, x: g * cos(x),),
    jvp=lambda t, out, x: t[0] * cos(x),
    samples=[Sample((3, 4))], reference=np.sin, method="sin",
    doc="""Elementwise sine (radians).

    PyTorch: ``torch.sin(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

cos = defop(
    "cos", lambda x: _xp(x).cos(x),
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(lambda g, out, x: -g * sin(x),),
    jvp=lambda t, out, x: -t[0] * sin(x),
    samples=[Sample((3, 4))], reference=np.cos, method="cos",
    doc="""Elementwise cosine (radians).

    PyTorch: ``torch.cos(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

tan = defop(
    "tan", lambda x: _xp(x).tan(x),
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(lambda g, out, x: g * (out * out + 1),),
    jvp=lambda t, out, x: t[0] * (out * out + 1),
    save=(), save_output=True, samples=[Sample(Unit((3, 4)))], reference=np.tan, method="tan",
    doc="""Elementwise tangent (radians).

    PyTorch: ``torch.tan(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

# sigmoid and tanh on CuPy: their activation kernels (activation.cu, rows of
# gpugrad/kernels/table.py), one launch forward and one backward; on NumPy the
# formulas below.  Both are written with the output, so backward keeps y and not x.
def _kernel_array(array):
    return array.__class__ is not np.ndarray and array.dtype.kind == "f" and backend.is_gpu_array(array)


def _output_activation_rule(name, formula):
    def rule(g, out, x):
        if not isinstance(g, Tensor) and _kernel_array(g) and g.dtype == out.dtype and g.shape == out.shape:
            return kernels.activation_backward(name, g, out)
        return formula(g, out)
    return rule


def _tanh_forward(x):
    if _kernel_array(x):
        return kernels.activation_forward("tanh", x)
    return _xp(x).tanh(x)


tanh = defop(
    "tanh", _tanh_forward,
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(_output_activation_rule("tanh", lambda g, out: g * (1 - out * out)),),
    jvp=lambda t, out, x: t[0] * (1 - out * out),
    save=(), save_output=True, samples=[Sample((3, 4))], reference=np.tanh, method="tanh",
    doc="""Elementwise hyperbolic tangent.

    PyTorch: ``torch.tanh(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)


@in_float32_for_low_precision     # bfloat16: one rounding, not three (as PyTorch)
def _sigmoid_forward(x):
    if _kernel_array(x):
        return kernels.activation_forward("sigmoid", x)
    xp = _xp(x)
    # NOTE: exp(-|x|) never overflows, so both halves are finite for |x| ~ 1e4.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


sigmoid = defop(
    "sigmoid", _sigmoid_forward,
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(_output_activation_rule("sigmoid", lambda g, out: g * out * (1 - out)),),
    jvp=lambda t, out, x: t[0] * out * (1 - out),
    save=(), save_output=True, samples=[Sample((3, 4))],
    reference=lambda x: 1 / (1 + np.exp(-x)), method="sigmoid",
    doc="""Elementwise logistic sigmoid ``1 / (1 + exp(-input))``.

    PyTorch: ``torch.sigmoid(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)


@in_float32_for_low_precision
def _erf_forward(x):
    return backend.erf(x)


erf = defop(
    "erf", _erf_forward,
    promote="float",   # integers and bools compute in the default float dtype (PyTorch)
    vjp=(lambda g, out, x: g * (2 / math.sqrt(math.pi)) * exp(-(x * x)),),
    jvp=lambda t, out, x: t[0] * (2 / math.sqrt(math.pi)) * exp(-(x * x)),
    samples=[Sample((3, 4))], reference=lambda x: np.vectorize(math.erf)(x), method="erf",
    doc="""Elementwise Gauss error function.

    PyTorch: ``torch.erf(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

absolute = defop(
    "abs", lambda x: _xp(x).abs(x),
    vjp=(lambda g, out, x: g * sign(x),),
    jvp=lambda t, out, x: t[0] * sign(x),
    samples=[Sample(Away((3, 4)))], reference=np.abs, method=("abs", "__abs__"),
    doc="""Elementwise absolute value (gradient ``sign(input)``, 0 at 0).

    PyTorch: ``torch.abs(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)

sign = defop("sign", lambda x: _xp(x).sign(x), differentiable=False,
             samples=[Sample(Away((3, 4)))], reference=np.sign, method="sign",
    doc="""Elementwise sign: -1, 0 or 1 (zero gradient).

    PyTorch: ``torch.sign(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)
floor = defop("floor", lambda x: _xp(x).floor(x), differentiable=False,
              samples=[Sample((3, 4))], reference=np.floor, method="floor",
    doc="""Elementwise largest integer not above the input (zero gradient).

    PyTorch: ``torch.floor(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)
ceil = defop("ceil", lambda x: _xp(x).ceil(x), differentiable=False,
             samples=[Sample((3, 4))], reference=np.ceil, method="ceil",
    doc="""Elementwise smallest integer not below the input (zero gradient).

    PyTorch: ``torch.ceil(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)
round_half_even = defop("round", lambda x: _xp(x).round(x), differentiable=False,
               samples=[Sample((3, 4))], reference=np.round, method="round",
    doc="""Elementwise rounding to the nearest integer, halves to even (zero gradient).

    PyTorch: ``torch.round(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)


# --------------------------------------------------------------------------
# selection: maximum, minimum, clamp, where
# --------------------------------------------------------------------------
def _share_ties(first_wins, ties):
    # NOTE: on ties the gradient is split evenly, as PyTorch does for max/min.
    return first_wins + ties * 0.5


maximum = defop(
    "maximum", lambda a, b: _xp(a if hasattr(a, "shape") else b).maximum(a, b),
    vjp=(lambda g, out, a, b: g * _share_ties(a > b, a == b),
         lambda g, out, a, b: g * _share_ties(b > a, a == b)),
    jvp=lambda t, out, a, b: where(a > b, t[0], where(a < b, t[1], (t[0] + t[1]) * 0.5)),
    promote=True,
    samples=[Sample(Distinct((3, 4)), Distinct((3, 4))), Sample(Distinct((3, 1)), Distinct((4,))),
             Sample(Distinct((2, 3)), 0.1)],
    reference=np.maximum,
    doc="""Elementwise maximum of two tensors (the gradient is shared at ties).

    PyTorch: ``torch.maximum(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)

minimum = defop(
    "minimum", lambda a, b: _xp(a if hasattr(a, "shape") else b).minimum(a, b),
    vjp=(lambda g, out, a, b: g * _share_ties(a < b, a == b),
         lambda g, out, a, b: g * _share_ties(b < a, a == b)),
    jvp=lambda t, out, a, b: where(a < b, t[0], where(a > b, t[1], (t[0] + t[1]) * 0.5)),
    promote=True,
    samples=[Sample(Distinct((3, 4)), Distinct((3, 4))), Sample(Distinct((3, 1)), Distinct((4,))),
             Sample(Distinct((2, 3)), 0.1)],
    reference=np.minimum,
    doc="""Elementwise minimum of two tensors (the gradient is shared at ties).

    PyTorch: ``torch.minimum(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)


def _clamp_forward(x, min=None, max=None):
    xp = _xp(x)
    if min is not None:
        x = xp.maximum(x, xp.asarray(min, dtype=x.dtype))
    if max is not None:
        x = xp.minimum(x, xp.asarray(max, dtype=x.dtype))
    return x


def _inside(x, low, high):
    mask = None
    if low is not None:
        mask = x >= low
    if high is not None:
        mask = (x <= high) if mask is None else mask * (x <= high)
    return mask


def _clamp_vjp(g, out, x, min=None, max=None):
    mask = _inside(x, min, max)
    return g if mask is None else where(mask, g, 0.0)


def _clamp_jvp(t, out, x, min=None, max=None):
    mask = _inside(x, min, max)
    return t[0] if mask is None else where(mask, t[0], 0.0)


def _check_clamp(x, min=None, max=None):
    if min is not None and max is not None and min > max:
        raise ValueError(f"clamp: min={min} is larger than max={max}; swap them")


clamp = defop(
    "clamp", _clamp_forward, vjp=(_clamp_vjp,), jvp=_clamp_jvp, check=_check_clamp,
    samples=[Sample(Distinct((3, 4)), min=-0.5, max=0.6), Sample(Distinct((3, 4)), min=0.05),
             Sample(Distinct((3, 4)), max=0.05)],
    reference=lambda x, min=None, max=None: np.clip(x, min, max),
    doc="""Limit values to ``[min, max]`` (either bound may be None).

    PyTorch: ``torch.clamp(input, min, max)``; the gradient is 1 inside the bounds, 0 outside.

    Parameters
    ----------
    input : Tensor
    min, max : float or None
        The bounds.
    """)


def _where_forward(condition, a, b):
    xp = backend.xp_of(condition)
    return xp.where(condition, a, b)


where = defop(
    "where", _where_forward,
    vjp=(None,
         lambda g, out, c, a, b: where(c, g, 0.0),
         lambda g, out, c, a, b: where(c, 0.0, g)),
    jvp=lambda t, out, c, a, b: where(c, t[1], t[2]),
    save=(0,), promote=False,
    samples=[Sample(Mask((3, 4)), (3, 4), (3, 4)), Sample(Mask((3, 4)), (4,), 0.5),
             Sample(Mask((3, 1)), 1.5, (4,))],
    reference=np.where,
    doc="""``input`` where ``condition`` holds, else ``other`` (broadcast).

    PyTorch: ``torch.where(condition, input, other)``.

    Parameters
    ----------
    condition : Tensor of bool
    input, other : Tensor or number
    """)

# --------------------------------------------------------------------------
# comparisons and logic (no gradient)
# --------------------------------------------------------------------------
_COMPARE_SAMPLES = [Sample((3, 4), (3, 4)), Sample((3, 1), 0.0)]
eq = defop("eq", lambda a, b: a == b, promote=True, differentiable=False,
           samples=[Sample(Ints((3, 4), 0, 3), Ints((3, 4), 0, 3))], reference=np.equal,
    doc="""Elementwise ``input == other`` as a bool tensor.

    PyTorch: ``torch.eq(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)
ne = defop("ne", lambda a, b: a != b, promote=True, differentiable=False,
           samples=[Sample(Ints((3, 4), 0, 3), Ints((3, 4), 0, 3))], reference=np.not_equal,
    doc="""Elementwise ``input != other`` as a bool tensor.

    PyTorch: ``torch.ne(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)
lt = defop("lt", lambda a, b: a < b, promote=True, differentiable=False,
           samples=_COMPARE_SAMPLES, reference=np.less,
    doc="""Elementwise ``input < other`` as a bool tensor.

    PyTorch: ``torch.lt(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)
le = defop("le", lambda a, b: a <= b, promote=True, differentiable=False,
           samples=_COMPARE_SAMPLES, reference=np.less_equal,
    doc="""Elementwise ``input <= other`` as a bool tensor.

    PyTorch: ``torch.le(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)
gt = defop("gt", lambda a, b: a > b, promote=True, differentiable=False,
           samples=_COMPARE_SAMPLES, reference=np.greater,
    doc="""Elementwise ``input > other`` as a bool tensor.

    PyTorch: ``torch.gt(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)
ge = defop("ge", lambda a, b: a >= b, promote=True, differentiable=False,
           samples=_COMPARE_SAMPLES, reference=np.greater_equal,
    doc="""Elementwise ``input >= other`` as a bool tensor.

    PyTorch: ``torch.ge(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)
logical_not = defop("logical_not", lambda x: _xp(x).logical_not(x), differentiable=False,
                    samples=[Sample(Mask((3,)))], reference=np.logical_not, method="logical_not",
    doc="""Elementwise logical NOT (non-zero is true), as a bool tensor.

    PyTorch: ``torch.logical_not(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)
logical_and = defop("logical_and", lambda a, b: _xp(a).logical_and(a, b), differentiable=False,
                    samples=[Sample(Mask((3,)), Mask((3,)))], reference=np.logical_and,
    doc="""Elementwise logical AND, as a bool tensor.

    PyTorch: ``torch.logical_and(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)
logical_or = defop("logical_or", lambda a, b: _xp(a).logical_or(a, b), differentiable=False,
                   samples=[Sample(Mask((3,)), Mask((3,)))], reference=np.logical_or,
    doc="""Elementwise logical OR, as a bool tensor.

    PyTorch: ``torch.logical_or(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)
logical_xor = defop("logical_xor", lambda a, b: _xp(a).logical_xor(a, b), differentiable=False,
                    samples=[Sample(Mask((3,)), Mask((3,)))], reference=np.logical_xor,
    doc="""Elementwise logical XOR, as a bool tensor.

    PyTorch: ``torch.logical_xor(input, other)``.

    Parameters
    ----------
    input, other : Tensor or number
        Broadcast against each other (PyTorch's type promotion).
    """)
isnan = defop("isnan", lambda x: _xp(x).isnan(x), differentiable=False,
              samples=[Sample((3,))], reference=np.isnan, method="isnan",
    doc="""Elementwise test for NaN, as a bool tensor.

    PyTorch: ``torch.isnan(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)
isinf = defop("isinf", lambda x: _xp(x).isinf(x), differentiable=False,
              samples=[Sample((3,))], reference=np.isinf, method="isinf",
    doc="""Elementwise test for positive or negative infinity, as a bool tensor.

    PyTorch: ``torch.isinf(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)
isfinite = defop("isfinite", lambda x: _xp(x).isfinite(x), differentiable=False,
                 samples=[Sample((3,))], reference=np.isfinite, method="isfinite",
    doc="""Elementwise test for a finite value (not NaN, not infinite), as a bool tensor.

    PyTorch: ``torch.isfinite(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """)


# --------------------------------------------------------------------------
# compositions (no rule needed: built from the primitives above)
# --------------------------------------------------------------------------
def square(x):
    """``x * x``."""
    return mul(x, x)


def reciprocal(x):
    """``1 / x``."""
    return div(1.0, x)


def rsqrt(x):
    """``1 / sqrt(x)``."""
    return div(1.0, sqrt(x))


def clamp_tensor(x, min=None, max=None):
    """clamp with tensor bounds, with PyTorch's gradient: all of it to ``x`` where
    ``min <= x <= max`` (the boundary included, where ``maximum`` would share it) and to
    the bound elsewhere; a NaN in ``x`` or in a bound gives NaN."""
    from .promotion import promote_arguments
    given = [value for value in (x, min, max) if value is not None]
    promoted = iter(promote_arguments(where.op, tuple(given)))      # PyTorch's result type of the three
    x, min, max = (None if value is None else next(promoted) for value in (x, min, max))
    if min is not None:
        x = where(_clamped_by(lt(x, min), min), min, x)
    if max is not None:
        x = where(_clamped_by(gt(x, max), max), max, x)
    return x


def _clamped_by(beyond, bound):
    """Where ``bound`` replaces the value: beyond it, or where the bound is NaN (NaN propagates)."""
    if isinstance(bound, Tensor):
        return logical_or(beyond, isnan(bound))
    return beyond if bound == bound else logical_or(beyond, True)

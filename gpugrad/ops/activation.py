"""Activations on the fused kernels of :mod:`gpugrad.kernels`, and ``linear``.

Each activation ``f`` is one primitive whose forward is one kernel launch
(CuPy) or its NumPy twin, and which keeps for backward only what the kernel
needs: a bit-packed mask (relu, leaky_relu), the output (sigmoid, tanh), or the
input (the rest).  Its VJP and JVP are both ``activation_grad(g, saved)`` =
``g * f'(.)``, itself a primitive running the fused backward kernel, so a plain
``backward()`` costs one kernel per activation.  ``activation_grad``'s own VJP
is written with ordinary ops (it needs ``f''``), which keeps every activation
differentiable to any order under ``create_graph=True``.

How the mask reaches backward: the node that :func:`_record` leaves carries
it in its parameters (``saved=``) and keeps no reference to ``x``; on the
generic path (forward mode, anomaly mode) the node saves ``x`` and backward
rebuilds the mask from it.  On NumPy, relu keeps its output instead of a
packed mask: the output marks the same elements, costs no extra pass, and the
next layer holds it anyway.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..backend import bfloat16 as _bfloat16, float16 as _float16, xp_of as _xp
from ..autograd.tape import state
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import exp, sigmoid, tanh, where
from .low_precision import round_to, widen_low_precision
from .registry import NO_PARAMS, apply_op, apply_promoted, defop, record
from .samples import Away, Ints, Sample, Unit
from .reduce import accumulator, sum_
from .shape import reshape, swapaxes
from .linalg import matmul


def _raw(value):
    return value.array if isinstance(value, Tensor) else value


def _kernel_name(name, params):
    """Kernel name and kernel parameters for an activation's public parameters."""
    if name == "gelu":
        approximate = params.get("approximate", "none")
        return ("gelu_tanh" if approximate == "tanh" else "gelu"), {}
    return name, params


# --------------------------------------------------------------------------
# f'' as compositions of ops (the VJP of activation_grad with respect to what
# the forward saved).  ``s`` is the saved input or output.
# --------------------------------------------------------------------------
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715


def _second_elu(x, alpha=1.0):
    return where(x > 0, 0.0, exp(x) * alpha)


def _second_gelu(x):
    return exp(x * x * -0.5) * _INV_SQRT_2PI * (2.0 - x * x)


def _second_gelu_tanh(x):
    inner = (x + x * x * x * _GELU_CUBIC) * _SQRT_2_OVER_PI
    t = tanh(inner)
    slope = (x * x * (3 * _GELU_CUBIC) + 1.0) * _SQRT_2_OVER_PI
    curvature = x * (6 * _GELU_CUBIC * _SQRT_2_OVER_PI)
    sech2 = 1.0 - t * t
    return sech2 * slope + x * 0.5 * (sech2 * curvature - t * sech2 * slope * slope * 2.0)


def _second_silu(x):
    s = sigmoid(x)
    return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))


def _second_softplus(x, beta=1.0, threshold=20.0):
    s = sigmoid(x * beta)
    return where(x * beta > threshold, 0.0, s * (1.0 - s) * beta)


def _second_mish(x):
    t = tanh(softplus(x))
    s = sigmoid(x)
    return (1.0 - t * t) * s * (2.0 + x * (1.0 - s) - x * t * s * 2.0)


# d f'(y) / dy for the activations that save their output y.
_SECOND = {
    "elu": _second_elu, "gelu": _second_gelu, "gelu_tanh": _second_gelu_tanh, "silu": _second_silu,
    "softplus": _second_softplus, "mish": _second_mish,
    "sigmoid": lambda y: 1.0 - y * 2.0,
    "tanh": lambda y: y * -2.0,
}


# NOTE: on NumPy, the mask activations skip the kernels' twins: those select with
# np.where, which NumPy 2.x runs branchy and unvectorised for irregular masks
# (~2 ms for 200k float32 elements here, against ~40 us for a multiply by the
# unpacked mask).  The result is the same function; the CUDA path is the kernel.
def _mask_forward_saving(name, x, negative_slope=0.01):
    # Same bit as the CUDA kernel, !(x <= 0): NaN inputs keep their gradient on both paths.
    positive = ~(x <= 0)
    y = np.maximum(x, 0)
    if name == "leaky_relu":
        y += np.minimum(x, 0) * x.dtype.type(negative_slope)
    return y, np.packbits(positive, bitorder="little")


def _mask_backward(name, g, mask, negative_slope=0.01):
    kept = np.unpackbits(mask, count=g.size, bitorder="little").reshape(g.shape)
    if name == "relu":
        return g * kept
    factors = np.array([negative_slope, 1.0], dtype=g.dtype)
    return g * factors[kept]


# --------------------------------------------------------------------------
# GELU's CPU path: the twin's formulas, with the CDF computed once per step.
#
# The twin computes erfc twice per layer and step (forward, then again from
# the saved input in backward), and erfc is most of GELU's cost on the CPU.
# On NumPy float32/float16 the recorded forward keeps the CDF it computed
# next to the input, and a plain backward reads it instead of recomputing
# it: ``g * (cdf + x * pdf(x))``, the twin's derivative in the twin's order
# of operations.  erfc comes from SciPy when it is importable (the function
# the twin calls, in the twin's order of operations, so forward and backward
# agree with the twin bit for bit); without SciPy from a vectorised NumPy form (Numerical
# Recipes' erfcc, relative error < 1.2e-7, evaluated in float64), within
# GELU_CPU_ULPS ulps of the twin (2 for most inputs; up to 7 for x < -13,
# where erfc itself is a float32 subnormal with few bits left; counted in
# ulps of the smallest normal number there).  float64 stays on the twin itself (its
# erfc is the float64-accurate one, and gradcheck runs there).
# --------------------------------------------------------------------------
#: Largest distance, in ulps of the result's dtype, between the CPU path of
#: gelu (forward and backward) and the NumPy twin; checked in the battery.
GELU_CPU_ULPS = 8

try:
    from scipy.special import erfc as _scipy_erfc
except ImportError:  # pragma: no cover - depends on the environment
    _scipy_erfc = None

_ERFCC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
          1.48851587, -0.82215223, 0.17087277)


def _erfc_numpy(values):
    """erfc of float32 ``values`` without SciPy: Numerical Recipes' erfcc in float64, rounded once.

    Relative error below 1.2e-7 everywhere (tails included), i.e. within two
    float32 ulps of the correctly rounded value.
    """
    z = np.abs(values, dtype=np.float64)
    t = 1.0 / (0.5 * z + 1.0)
    poly = np.full_like(t, _ERFCC[-1])
    for coefficient in _ERFCC[-2::-1]:
        poly *= t
        poly += coefficient
    poly -= z * z
    np.exp(poly, out=poly)
    poly *= t
    negative = values < 0
    poly[negative] = 2.0 - poly[negative]      # erfc(-z) = 2 - erfc(z), no cancellation: it is in [1, 2]
    return poly.astype(values.dtype)


def _erfc32(values):
    if _scipy_erfc is not None:
        return _scipy_erfc(values)
    return _erfc_numpy(values)


_GELU_CPU_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
_NEG_RSQRT2 = np.float32(-0.70710678118654752440)
_INV_SQRT_2PI32 = np.float32(0.39894228040143267794)


def _gelu_cpu_path(array):
    return array.__class__ is np.ndarray and array.dtype in _GELU_CPU_DTYPES


def gelu_cpu_forward(x):
    """(gelu(x), cdf(x)) for a NumPy float32/float16 ``x``, computed in float32 as the twin does."""
    wide = x.astype(np.float32, copy=False)
    with np.errstate(all="ignore"):
        cdf = _erfc32(wide * _NEG_RSQRT2)
        y = wide * np.float32(0.5)
        y *= cdf                     # the twin's (0.5 x) erfc: exact where 0.5 erfc would be subnormal
        cdf *= np.float32(0.5)
    return (y if x.dtype == np.float32 else y.astype(x.dtype)), cdf


def gelu_cpu_backward(g, x, cdf):
    """``g * gelu'(x)`` from the forward's ``cdf`` (float32), in ``g``'s dtype."""
    wide = x.astype(np.float32, copy=False)
    with np.errstate(all="ignore"):
        pdf = wide * np.float32(-0.5)      # the twin's order: exp((-0.5 x) x) / sqrt(2 pi)
        pdf *= wide
        np.exp(pdf, out=pdf)
        pdf *= _INV_SQRT_2PI32
        pdf *= wide
        pdf += cdf
        if g.dtype == np.float32:
            pdf *= g
            return pdf
        return (g.astype(np.float32) * pdf).astype(g.dtype)


def _numpy_mask_path(name, array):
    return name in kernels.SAVES_MASK and type(array) is np.ndarray and array.dtype.kind == "f"


def _activation_grad_forward(g, saved, name, **params):
    if name == "relu" and saved.dtype.kind == "f" and saved.shape == g.shape:
        # relu's output (what the NumPy path keeps), which is 0 exactly where the
        # mask's bit !(x <= 0) is clear: y != 0 is that bit in one pass, and a NaN
        # keeps its gradient here too.
        return g * (saved != 0)
    if name in kernels.SAVES_MASK and saved.dtype != np.uint8:
        saved = saved.astype(np.uint8)     # the battery hands masks over as int64
    if _numpy_mask_path(name, g) and saved.size == (g.size + 7) // 8:
        return _mask_backward(name, g, saved, **params)
    return kernels.activation_backward(name, g, saved, **params)


def _forward_saving(name, x, **params):
    if _numpy_mask_path(name, x):
        return _mask_forward_saving(name, x, **params)
    return kernels.activation_forward_saving(name, x, **params)


def _activation_grad_vjp(u, out, g, saved, name, **params):
    grad_g = activation_grad(u, saved, name=name, **params)
    if name in kernels.SAVES_MASK:
        return grad_g, None
    return grad_g, u * g * _SECOND[name](saved, **params)


def _activation_grad_jvp(t, out, g, saved, name, **params):
    tangent = activation_grad(t[0], saved, name=name, **params)
    if name in kernels.SAVES_MASK or isinstance(t[1], float):
        return tangent
    return tangent + g * _SECOND[name](saved, **params) * t[1]


def _reference_derivative(name, s, negative_slope=0.01, alpha=1.0, beta=1.0, threshold=20.0):
    if name == "relu":
        return (s > 0).astype(float)
    if name == "leaky_relu":
        return np.where(s > 0, 1.0, negative_slope)
    if name == "elu":
        return np.where(s > 0, 1.0, alpha * np.exp(s))
    if name == "gelu":
        cdf = 0.5 * (1 + np.vectorize(math.erf)(s / math.sqrt(2)))
        return cdf + s * np.exp(-s * s / 2) / math.sqrt(2 * math.pi)
    if name == "gelu_tanh":
        inner = _SQRT_2_OVER_PI * (s + _GELU_CUBIC * s ** 3)
        t = np.tanh(inner)
        return 0.5 * (1 + t) + 0.5 * s * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * s * s)
    if name == "silu":
        sig = 1 / (1 + np.exp(-s))
        return sig * (1 + s * (1 - sig))
    if name == "softplus":
        return np.where(s * beta > threshold, 1.0, 1 / (1 + np.exp(-beta * s)))
    if name == "mish":
        t = np.tanh(np.log1p(np.exp(s)))
        sig = 1 / (1 + np.exp(-s))
        return t + s * sig * (1 - t * t)
    if name == "sigmoid":
        return s * (1 - s)
    if name == "tanh":
        return 1 - s * s
    raise ValueError(name)


def _reference_activation_grad(g, saved, name, **params):
    if name in kernels.SAVES_MASK:
        kept = np.unpackbits(saved.astype(np.uint8), bitorder="little")[:g.size].reshape(g.shape).astype(bool)
        return g * np.where(kept, 1.0, params.get("negative_slope", 0.01) if name == "leaky_relu" else 0.0)
    return g * _reference_derivative(name, saved, **params)


activation_grad = defop(
    "activation_grad", _activation_grad_forward,
    vjp=_activation_grad_vjp, jvp=_activation_grad_jvp,
    samples=[Sample((3, 4), Ints((2,), 0, 256), name="relu"),
             Sample((2, 5), Ints((2,), 0, 256), name="leaky_relu", negative_slope=0.2),
             Sample((3, 4), Away((3, 4)), name="elu", alpha=0.7),
             Sample((3, 4), (3, 4), name="gelu"),
             Sample((3, 4), (3, 4), name="gelu_tanh"),
             Sample((3, 4), (3, 4), name="silu"),
             Sample((3, 4), (3, 4), name="softplus", beta=2.0, threshold=3.0),
             Sample((3, 4), (3, 4), name="mish"),
             Sample((3, 4), Unit((3, 4)), name="sigmoid"),
             Sample((3, 4), Unit((3, 4)), name="tanh")],
    reference=_reference_activation_grad)


# --------------------------------------------------------------------------
# The activations themselves.
# --------------------------------------------------------------------------
def _make_activation(name, reference, samples, param_names=()):
    kernel_saves_mask = name in kernels.SAVES_MASK

    def forward(x, **params):
        kernel, kernel_params = _kernel_name(name, params)
        if kernel == "gelu" and _gelu_cpu_path(x):
            return gelu_cpu_forward(x)[0]
        if _numpy_mask_path(kernel, x):
            if kernel == "relu":
                return np.maximum(x, 0)
            return _mask_forward_saving(kernel, x, **kernel_params)[0]
        return kernels.activation_forward(kernel, x, **kernel_params)

    def vjp(g, out, x, saved=None, cdf=None, **params):
        if saved is None and out is not None and name == "relu" and not isinstance(g, Tensor):
            return (_activation_grad_forward(g, out, "relu"),)     # NumPy relu, plain backward
        if cdf is not None and not isinstance(g, Tensor) and not isinstance(x, Tensor):
            return (gelu_cpu_backward(g, x, cdf),)                 # NumPy gelu, plain backward
        kernel, kernel_params = _kernel_name(name, params)
        if not kernel_saves_mask:
            saved = x
        elif saved is None:
            if out is not None:    # relu on NumPy: the node kept the output, positive where x was
                saved = out
            else:                  # generic path: the node kept x, rebuild the mask from it
                saved = _forward_saving(kernel, _raw(x), **kernel_params)[1]
        return (activation_grad(g, saved, name=kernel, **kernel_params),)

    def jvp(t, out, x, saved=None, cdf=None, **params):
        kernel, kernel_params = _kernel_name(name, params)
        saved = _forward_saving(kernel, _raw(x), **kernel_params)[1] if kernel_saves_mask else x
        return activation_grad(t[0], saved, name=kernel, **kernel_params)

    generic = defop(name, forward, vjp=vjp, jvp=jvp, samples=samples, reference=reference)
    op = generic.op

    if name == "gelu":
        def function(x, approximate="none"):
            params = NO_PARAMS if approximate == "none" else {"approximate": approximate}
            if (approximate != "none" or not isinstance(x, Tensor) or state.unusual
                    or not (x.requires_grad and state.grad_enabled) or not _gelu_cpu_path(x.array)):
                return generic(x, **params) if isinstance(x, Tensor) else forward(x, **params)
            y, cdf = gelu_cpu_forward(x.array)
            # The node saves x as the op does (version-checked) and carries the
            # CDF, which only the plain backward reads; create_graph ignores it.
            result = Tensor._make(y)
            record(op, (x,), [x.array], {"cdf": cdf}, result)
            return result

        function.__name__ = function.__qualname__ = name
        function.__doc__ = generic.__doc__
        function.op = op
        op.function = function
        return function

    if not kernel_saves_mask:
        return generic

    def function(x, **params):
        if not isinstance(x, Tensor):
            return forward(x, **params)
        if state.unusual or not (x.requires_grad and state.grad_enabled):
            return apply_op(op, (x,), params)
        data = x.array
        if name == "relu" and data.__class__ is np.ndarray and data.dtype.kind == "f":
            # NOTE: on NumPy, packing the mask costs three extra passes for a memory
            # saving that CPU training rarely needs, while relu's output already says
            # where x was positive, and the next layer keeps it anyway (as PyTorch
            # does).  The node keeps the output, version-checked like any saved output.
            y = np.maximum(data, 0)
            result = Tensor._make(y)
            record(op, (x,), [data], params, result, save=())
            node = result.grad_fn
            node.out_data = y
            node.out_box = result._version_box = [0, 0]
            return result
        kernel, kernel_params = _kernel_name(name, params)
        y, mask = _forward_saving(kernel, data, **kernel_params)
        result = _record(op, x, dict(params, saved=mask), y)
        if name == "relu":
            # PyTorch's relu saves its output, so changing it in place makes backward an
            # error; the mask does not need the output, but the same program must fail
            # alike on every device: watch the output's version without keeping it.
            result.grad_fn.out_box = result._version_box = [0, 0]
        return result

    function.__name__ = function.__qualname__ = name
    function.__doc__ = generic.__doc__
    function.op = op
    op.function = function      # the battery checks the path users take
    return function


def _record(op, x, params, y):
    """The output of ``op(x)`` computed outside the op, with a node that keeps
    only ``params`` (which carry what backward needs), not ``x``."""
    result = Tensor._make(y)
    record(op, (x,), [x.array], params, result, save=())
    return result


def _ref_relu(x):
    return np.maximum(x, 0)


relu = _make_activation("relu", _ref_relu, [Sample(Away((3, 4))), Sample(Away((2, 3, 4)))])
leaky_relu = _make_activation(
    "leaky_relu", lambda x, negative_slope=0.01: np.where(x > 0, x, negative_slope * x),
    [Sample(Away((3, 4))), Sample(Away((2, 3, 4)), negative_slope=0.3)])
elu = _make_activation(
    "elu", lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(x)),
    [Sample(Away((3, 4))), Sample(Away((2, 3, 4)), alpha=0.5)])
gelu = _make_activation(
    "gelu", lambda x, approximate="none": (
        0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))) if approximate == "none"
        else 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3)))),
    [Sample((3, 4)), Sample((2, 3, 4), approximate="tanh")])
silu = _make_activation("silu", lambda x: x / (1 + np.exp(-x)), [Sample((3, 4)), Sample((2, 3, 4))])
softplus = _make_activation(
    "softplus", lambda x, beta=1.0, threshold=20.0: np.where(x * beta > threshold, x,
                                                             np.log1p(np.exp(beta * x)) / beta),
    [Sample((3, 4)), Sample(Away((2, 3, 4)), beta=2.0, threshold=1.5)])
mish = _make_activation("mish", lambda x: x * np.tanh(np.log1p(np.exp(x))), [Sample((3, 4)), Sample((2, 3, 4))])


def _method(function):
    def method(self, *args, **params):
        return function(self, *args, **params)
    method.__name__ = function.__name__
    method.__doc__ = function.__doc__
    return method


for _function in (relu, leaky_relu, elu, gelu, silu, softplus, mish):
    if not hasattr(Tensor, _function.__name__):
        setattr(Tensor, _function.__name__, _method(_function))


# --------------------------------------------------------------------------
# linear: x @ weight.T + bias in one op, with no transposed copies.
# --------------------------------------------------------------------------
def _linear_forward(x, weight, bias):
    dtype = x.dtype
    if dtype is _bfloat16 or (dtype is _float16 and x.__class__ is np.ndarray):
        # bf16, NumPy fp16: the GEMM in float32, rounded once (see ops/low_precision.py; inlined: runs per layer)
        return round_to(_linear_forward(*widen_low_precision((x, weight, bias))), dtype)
    out = x @ weight.T               # BLAS reads weight.T as a transposed operand: no copy
    out += bias
    return out


def _widened_product(a, b):
    a, b = widen_low_precision((a, b))
    return a @ b


# The three rules.  On raw arrays (a plain backward) they are the bare products,
# without op dispatch; on Tensors (create_graph) they are recorded ops.
def _linear_grad_input(g, out, x, weight, bias):
    if isinstance(g, Tensor):
        return matmul(g, weight)
    dtype = g.dtype
    if dtype is _bfloat16 or (dtype is _float16 and g.__class__ is np.ndarray):
        return round_to(_widened_product(g, weight), dtype)
    return g @ weight


def _linear_grad_weight(g, out, x, weight, bias):
    if x.ndim == 1:
        return reshape(g, shape=(-1, 1)) * reshape(x, shape=(1, -1))
    rows_g = reshape(g, shape=(-1, g.shape[-1])) if g.ndim != 2 else g
    rows_x = reshape(x, shape=(-1, x.shape[-1])) if x.ndim != 2 else x
    if isinstance(rows_g, Tensor) or isinstance(rows_x, Tensor):
        return matmul(swapaxes(rows_g, 0, 1), rows_x)
    dtype = rows_g.dtype
    if dtype is _bfloat16 or (dtype is _float16 and rows_g.__class__ is np.ndarray):
        return round_to(_widened_product(rows_g.T, rows_x), dtype)
    return rows_g.T @ rows_x      # raw arrays (a plain backward): the same product, no op dispatch


def _linear_grad_bias(g, out, x, weight, bias):
    if g.ndim == 1:
        return g
    if isinstance(g, Tensor):
        return sum_(g, axis=tuple(range(g.ndim - 1)))
    if g.ndim == 2 and g.__class__ is np.ndarray and g.dtype.itemsize > 2:   # not float16/bfloat16
        return np.add.reduce(g, axis=0)      # ndarray.sum without its Python-level wrapper
    return g.sum(axis=tuple(range(g.ndim - 1)), dtype=accumulator(g)).astype(g.dtype, copy=False)


def _linear_jvp(t, out, x, weight, bias):
    return matmul(t[0], swapaxes(weight, 0, 1)) + matmul(x, swapaxes(t[1], 0, 1)) + t[2]


def _check_linear(x, weight, bias):
    if isinstance(x, Tensor) and isinstance(weight, Tensor) and isinstance(bias, Tensor):
        # The common case, read off the arrays' shapes (no property calls: runs per layer per step).
        x_shape, weight_shape, bias_shape = x.array.shape, weight.array.shape, bias.array.shape
        if (len(weight_shape) == 2 and x_shape and x_shape[-1] == weight_shape[1]
                and (bias_shape == weight_shape[:1] or bias_shape == ())):
            return
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input of shape {tuple(x.shape)} does not fit weight of shape "
                         f"{tuple(weight.shape)}: the input's last dimension must equal weight.shape[1] "
                         f"(weight is (out_features, in_features))")
    if bias.shape not in ((weight.shape[0],), ()):
        raise ShapeError(f"linear: bias of shape {tuple(bias.shape)} does not fit weight of shape "
                         f"{tuple(weight.shape)}; it needs shape ({weight.shape[0]},)")


linear = defop(
    "linear", _linear_forward,
    vjp=(_linear_grad_input,
         _linear_grad_weight,
         _linear_grad_bias),
    # save=True although the rules never read the bias: it is a parameter, alive anyway,
    # and keeping the arguments as they are spares a shape-and-dtype record per call.
    jvp=_linear_jvp, promote=True, check=_check_linear, save=True,
    samples=[Sample((4, 3), (5, 3), (5,)), Sample((2, 4, 3), (2, 3), (2,)), Sample((3,), (2, 3), (2,))],
    reference=lambda x, weight, bias: x @ weight.T + bias)


def apply_linear(op, x, weight, bias):
    """``op`` (linear or linear_relu) on three Tensors, as a layer calls it once per
    step: straight to the op, and without the promotion step when the dtypes agree."""
    arguments = (x, weight, bias)
    if x.array.dtype == weight.array.dtype == bias.array.dtype:
        return apply_promoted(op, arguments, NO_PARAMS)
    return apply_op(op, arguments, NO_PARAMS)


# --------------------------------------------------------------------------
# linear_relu: relu(x @ weight.T + bias), what nn.Sequential runs for a Linear
# followed by a ReLU.  One node instead of two: the rules are linear's, after
# a prologue that masks the gradient once with relu's output.
# --------------------------------------------------------------------------
def _linear_relu_forward(x, weight, bias):
    dtype = x.dtype
    if dtype is _bfloat16 or (dtype is _float16 and x.__class__ is np.ndarray):
        return round_to(_linear_relu_forward(*widen_low_precision((x, weight, bias))), dtype)
    out = x @ weight.T
    out += bias
    xp = np if out.__class__ is np.ndarray else _xp(out)
    return xp.maximum(out, 0, out=out)


def _relu_mask_gradient(g, out, x, weight, bias):
    """The gradient before relu: ``g`` where the output is not 0 (positive, or NaN as in relu's own backward)."""
    if isinstance(g, Tensor):
        return activation_grad(g, out, name="relu")
    return g * (out != 0)


linear_relu = defop(
    "linear_relu", _linear_relu_forward,
    vjp=(_linear_grad_input, _linear_grad_weight, _linear_grad_bias),
    vjp_prologue=_relu_mask_gradient,
    jvp=lambda t, out, x, weight, bias: activation_grad(_linear_jvp(t, out, x, weight, bias), out, name="relu"),
    promote=True, check=_check_linear, save=True, save_output=True,
    samples=[Sample(Away((4, 3)), (5, 3), (5,)), Sample(Away((2, 4, 3)), (2, 3), (2,))],
    reference=lambda x, weight, bias: np.maximum(x @ weight.T + bias, 0))


__all__ = ["relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "mish", "activation_grad", "linear",
           "linear_relu", "apply_linear"]

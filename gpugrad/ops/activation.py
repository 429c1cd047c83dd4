"""Activations, generated from the activation table, and ``linear``.

Each row of :data:`gpugrad.kernels.table.TABLE` becomes, here:

* a public activation ``f`` (relu, leaky_relu, elu, gelu, silu, softplus,
  mish; sigmoid and tanh are declared with the other elementwise functions in
  :mod:`gpugrad.ops.elementwise` and run the same kernels on CuPy), one
  primitive whose forward is one kernel launch (CuPy) or its NumPy twin or a
  faster CPU form, and which keeps for backward only what the kernel needs: a
  bit-packed mask (relu, leaky_relu), the output (sigmoid, tanh), or the input
  (the rest).  Its VJP and JVP are both ``activation_grad(g, saved)`` = ``g *
  f'(.)``, itself a primitive running the backward kernel, so a plain
  ``backward()`` costs one kernel per activation.  ``activation_grad``'s own
  VJP is the row's ``f''`` written with ops, which keeps every activation
  differentiable to any order under ``create_graph=True``;
* a fused op ``linear_<name>``: ``f(x @ weight.T + bias)`` in one node, which
  :func:`linear` runs for ``activation=...`` (and ``nn.Sequential`` for a
  Linear followed by an activation module).  On NumPy it computes exactly what
  the two ops compute one after the other; on CuPy the bias-add runs inside the
  activation kernel (``gg_<name>_bias_forward``), in the compute precision;
* the battery samples, the NumPy references and the reference derivative.

How the mask reaches backward: the node that :func:`_record` leaves carries
it in its parameters (``saved=``) and keeps no reference to ``x``; on the
generic path (forward mode, anomaly mode) the node saves ``x`` and backward
rebuilds the mask from it.  On NumPy, relu keeps its output instead of a
packed mask: the output marks the same elements, costs no extra pass, and the
next layer holds it anyway.
"""

from __future__ import annotations

import numpy as np

from .. import backend, kernels
from ..autograd.tape import state, threads_off_default
from ..backend import bfloat16 as _bfloat16
from ..backend import float16 as _float16
from ..errors import ShapeError
from ..kernels.table import ROWS, TABLE
from ..tensor import Tensor
from . import elementwise
from .elementwise import exp, sigmoid, tanh, where
from .linalg import matmul
from .low_precision import round_to, widen_low_precision
from .reduce import accumulator, reduce_sum
from .registry import NO_PARAMS, apply_op, apply_promoted, defop, record
from .samples import Away, Ints, Sample, Unit
from .shape import reshape, swapaxes


def _raw(value):
    return value.array if isinstance(value, Tensor) else value


# The public activations declared elsewhere: sigmoid and tanh are elementwise
# functions of gg (gg.sigmoid, x.tanh()), declared in ops/elementwise.py.
_DECLARED_IN_ELEMENTWISE = ("sigmoid", "tanh")


def _rows_of(public):
    return [row for row in TABLE if row.public_name == public]


def _row_selector(public):
    """``select(params) -> (kernel name, kernel params)`` for the public function ``public``.

    Public parameters that pick a row (gelu's ``approximate``) are taken out;
    the rest are the kernel's.
    """
    rows = _rows_of(public)
    keys = {key for row in rows for key, _ in row.public_params}
    if not keys:
        name = rows[0].name
        return lambda params: (name, params)
    (key,) = keys
    by_value = {dict(row.public_params)[key]: row.name for row in rows}
    default = dict(rows[0].public_params)[key]

    def select(params):
        if key not in params:
            return by_value[default], params
        value = params[key]
        if value not in by_value:
            raise ValueError(f"{public}: {key}={value!r} is not supported; use one of "
                             f"{', '.join(repr(v) for v in by_value)}")
        rest = {k: v for k, v in params.items() if k != key}
        return by_value[value], rest
    return select


def _kernel_name(name, params):
    """Kernel name and kernel parameters for an activation's public parameters."""
    return _SELECTORS[name](params)


_SELECTORS = {row.public_name: _row_selector(row.public_name) for row in TABLE}


class _OpsMath:
    """The functions a row's ``second`` (f'') is written with, as ops: differentiable again."""

    exp, tanh, sigmoid, where = staticmethod(exp), staticmethod(tanh), staticmethod(sigmoid), staticmethod(where)

    @staticmethod
    def softplus(x):
        return softplus(x)


def _second(name, saved, **params):
    """f'' of kernel activation ``name`` at what its forward saved, written with ops."""
    return ROWS[name].second(saved, _OpsMath, **params)


_SPECS = {"normal": lambda shape: shape, "away": Away, "unit": Unit}


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
# of operations.  erfc is computed in float32 arithmetic (:func:`_erfc32`,
# within 5 ulps of the correctly rounded value; SciPy's float32 erfc, which the
# twin calls, runs in float64 and took ~1.6 ms of the main job's 64,000-value
# layers, against PyTorch's 0.1 ms for the whole GELU), so the path is within
# GELU_CPU_ULPS ulps of the twin (subnormal results counted in ulps of the
# smallest normal number).  float64 stays on the twin itself (its erfc is the
# float64-accurate one, and gradcheck runs there).
# --------------------------------------------------------------------------
#: Largest distance, in ulps of the result's dtype, between the CPU path of
#: gelu (forward and backward) and the NumPy twin; checked in the battery.
GELU_CPU_ULPS = 8

# erfc(a) for a >= 0 as erfcx(a) exp(-a^2), with erfcx(a) = (1 + p(q)) / (1 + 2a) and
# q = (a - 2) / (a + 2) in [-1, 0.68] (N. Juffa's change of variable: erfcx is
# smooth in q up to a = inf); p fitted here by least squares on 4000 Chebyshev
# nodes against SciPy's float64 erfcx, relative error 1e-8 before rounding.
_ERFCX_Q = tuple(np.float32(c) for c in (
    0.27697840332984924, -0.09276390075683594, -0.16603140532970428, 0.16405309736728668,
    -0.054204486310482025, -0.008043435402214527, 0.008636148646473885, 0.0012680498184636235,
    -0.001252411282621324, -0.0003575805458240211, 3.001636650878936e-05))
_ERFC_CLAMP = np.float32(10.5)       # erfc(10.5) rounds to 0 in float32; also keeps q finite for inf
_HIGH_12_BITS = np.int32(-4096)      # 0xFFFFF000: a float32's sign, exponent and 12 leading mantissa bits


def _erfc32(values):
    """erfc of a float32 NumPy array in float32 arithmetic: within 5 ulps of the correctly
    rounded value (1.2e-7 relative; tails included, NaN and +-inf kept), ~40 vectorised
    passes and one float32 exp: 2-3x faster than SciPy's erfc, which runs in float64.

    exp(-a^2) from the rounded square s = fl(a*a) as exp(-s) (1 + (s - a^2)): the error
    s - a^2 is exact from a = hi + lo (hi with 12 bits, so hi*hi is exact) and below
    4e-6, so the first-order factor is exact to float32 precision.  Runs over blocks of
    _ERFC_BLOCK values, so its four scratch arrays stay small (and in cache).
    """
    out = np.empty(values.shape, np.float32)
    flat_in, flat_out = values.reshape(-1), out.reshape(-1)
    block = min(_ERFC_BLOCK, flat_in.size)
    scratch = [np.empty(block, np.float32) for _ in range(4)]
    for start in range(0, flat_in.size, block):
        chunk = flat_in[start:start + block]
        size = chunk.size
        _erfc32_block(chunk, flat_out[start:start + size], *(buffer[:size] for buffer in scratch))
    return out


_ERFC_BLOCK = 32768


def _erfc32_block(x, p, a, q, hi, error):
    """erfc(x) into ``p``, with scratch arrays ``a, q, hi, error`` of x's size."""
    f32 = np.float32
    np.abs(x, out=a)
    np.minimum(a, _ERFC_CLAMP, out=a)
    np.subtract(a, f32(2.0), out=q)
    np.add(a, f32(2.0), out=hi)
    q /= hi
    np.multiply(q, _ERFCX_Q[-1], out=p)
    p += _ERFCX_Q[-2]
    for coefficient in _ERFCX_Q[-3::-1]:
        p *= q
        p += coefficient
    p += f32(1.0)
    np.add(a, a, out=q)
    q += f32(1.0)
    p /= q                                         # erfcx(a)
    square = np.multiply(a, a, out=q)
    np.bitwise_and(a.view(np.int32), _HIGH_12_BITS, out=hi.view(np.int32))
    np.multiply(hi, hi, out=error)
    np.subtract(square, error, out=error)          # exact: the two are within a factor 2
    a -= hi                                        # lo
    hi += hi
    hi += a                                        # a + hi = 2 hi + lo
    a *= hi
    error -= a                                     # s - a^2 = s - hi^2 - lo (a + hi)
    np.negative(square, out=square)
    np.exp(square, out=square)
    p *= square
    error *= p
    p += error                                     # erfc(|x|)
    # erfc(-a) = 2 - erfc(a), without a select (NumPy's where with an irregular mask is slow)
    negative = np.signbit(x)
    np.multiply(negative, f32(-2.0), out=a)
    a += f32(1.0)
    p *= a
    np.multiply(negative, f32(2.0), out=a)
    p += a


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
    return grad_g, u * g * _second(name, saved, **params)


def _activation_grad_jvp(t, out, g, saved, name, **params):
    tangent = activation_grad(t[0], saved, name=name, **params)
    if name in kernels.SAVES_MASK or isinstance(t[1], float):
        return tangent
    return tangent + g * _second(name, saved, **params) * t[1]


def _reference_derivative(name, s, **params):
    return ROWS[name].reference_derivative(s, **params)


def _reference_activation_grad(g, saved, name, **params):
    row = ROWS[name]
    if row.saves == "mask":
        kept = np.unpackbits(saved.astype(np.uint8), bitorder="little")[:g.size].reshape(g.shape).astype(bool)
        off = dict(row.params, **params)[row.mask_off] if row.mask_off else 0.0
        return g * np.where(kept, 1.0, off)
    return g * _reference_derivative(name, saved, **params)


def _activation_grad_samples():
    """One sample per row, with its last parameter set: a mask of 12 bits, or the saved input/output."""
    samples = []
    for row in TABLE:
        params = dict(row.samples[-1], name=row.name)
        saved = Ints((2,), 0, 256) if row.saves == "mask" else _SPECS[row.domain]((3, 4))
        samples.append(Sample((3, 4), saved, **params))
    return samples


activation_grad = defop(
    "activation_grad", _activation_grad_forward,
    vjp=_activation_grad_vjp, jvp=_activation_grad_jvp,
    samples=_activation_grad_samples(),
    reference=_reference_activation_grad,
    doc="""The gradient of an activation: ``g * f'(x)``, with ``f'`` read off what the forward saved.

    PyTorch: the backward of the activation ``name`` (``torch.ops.aten.threshold_backward`` and friends).

    Parameters
    ----------
    g : Tensor
        The output's gradient.
    saved : Tensor or array
        What the forward kept (the input, or a packed mask).
    name : str
        The activation.
    """)


#: What each public activation computes (the ``doc=`` of its declaration).
_DOCS = {
    "relu": """Elementwise rectified linear unit ``max(input, 0)``.

    PyTorch: ``torch.relu(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """,
    "leaky_relu": """Elementwise ``input`` where positive, else ``negative_slope * input``.

    PyTorch: ``torch.nn.functional.leaky_relu(input, negative_slope)``.

    Parameters
    ----------
    input : Tensor
    negative_slope : float
        0.01 by default.
    """,
    "elu": """Elementwise ``input`` where positive, else ``alpha * (exp(input) - 1)``.

    PyTorch: ``torch.nn.functional.elu(input, alpha)``.

    Parameters
    ----------
    input : Tensor
    alpha : float
        1.0 by default.
    """,
    "gelu": """Elementwise Gaussian error linear unit ``input * Phi(input)``.

    PyTorch: ``torch.nn.functional.gelu(input, approximate=approximate)``.

    Parameters
    ----------
    input : Tensor
    approximate : {'none', 'tanh'}
        The exact form (default) or the tanh approximation.
    """,
    "silu": """Elementwise sigmoid linear unit ``input * sigmoid(input)``.

    PyTorch: ``torch.nn.functional.silu(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """,
    "softplus": """Elementwise ``log(1 + exp(beta * input)) / beta``, linear above ``threshold``.

    PyTorch: ``torch.nn.functional.softplus(input, beta, threshold)``.

    Parameters
    ----------
    input : Tensor
    beta : float
        1.0 by default.
    threshold : float
        20.0 by default.
    """,
    "mish": """Elementwise ``input * tanh(softplus(input))``.

    PyTorch: ``torch.nn.functional.mish(input)``.

    Parameters
    ----------
    input : Tensor
        The input.
    """,
}


# --------------------------------------------------------------------------
# The activations themselves.
# --------------------------------------------------------------------------
def _make_activation(name):
    """The public activation ``name``, declared from its rows of the table."""
    kernel_saves_mask = ROWS[_kernel_name(name, {})[0]].saves == "mask"
    reference, samples = _public_reference(name), _public_samples(name)

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

    generic = defop(name, forward, vjp=vjp, jvp=jvp, samples=samples, reference=reference, doc=_DOCS[name])
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


def _public_reference(public):
    """The NumPy reference of the public function: its rows' references, picked by the public parameters."""
    select = _SELECTORS[public]

    def reference(x, **params):
        kernel, kernel_params = select(params)
        return ROWS[kernel].reference(x, **kernel_params)
    return reference


def _public_samples(public):
    """Per row of the public function and parameter set, one input of shape (3, 4), then (2, 3, 4), ..."""
    samples = []
    for row in _rows_of(public):
        for params in row.samples:
            shape = (3, 4) if not samples else (2, 3, 4)
            samples.append(Sample(_SPECS[row.domain](shape), **params, **_selecting(row)))
    if len(samples) == 1:       # one parameter set: a second shape
        (only,) = samples
        samples.append(Sample(_SPECS[_rows_of(public)[0].domain]((2, 3, 4)), **only.params))
    return samples


def _selecting(row):
    """The public parameters that select ``row``, where they differ from the public function's default."""
    first = _rows_of(row.public_name)[0]
    return {} if row is first else dict(row.public_params)


_PUBLIC = tuple(dict.fromkeys(row.public_name for row in TABLE if row.public_name not in _DECLARED_IN_ELEMENTWISE))
#: Every public activation declared here, by name (a new row of the table adds one).
ACTIVATION_FUNCTIONS = {public: _make_activation(public) for public in _PUBLIC}
relu, leaky_relu, elu, gelu, silu, softplus, mish = (
    ACTIVATION_FUNCTIONS[name] for name in ("relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "mish"))


def _method(function):
    def method(self, *args, **params):
        return function(self, *args, **params)
    method.__name__ = function.__name__
    method.__doc__ = function.__doc__
    return method


for _function in ACTIVATION_FUNCTIONS.values():
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
# without op dispatch; on Tensors (create_graph) they are recorded ops.  The
# linear_<name> ops use them as they are, after their prologue; ``fused`` takes
# those ops' parameters (the activation's, and the residual), which the rules ignore.
def _linear_grad_input(g, out, x, weight, bias, **fused):
    if isinstance(g, Tensor):
        return matmul(g, weight)
    dtype = g.dtype
    if dtype is _bfloat16 or (dtype is _float16 and g.__class__ is np.ndarray):
        return round_to(_widened_product(g, weight), dtype)
    return g @ weight


def _linear_grad_weight(g, out, x, weight, bias, **fused):
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


def _linear_grad_bias(g, out, x, weight, bias, **fused):
    if g.ndim == 1:
        return g
    if isinstance(g, Tensor):
        return reduce_sum(g, axis=tuple(range(g.ndim - 1)))
    if g.ndim == 2 and g.__class__ is np.ndarray and g.dtype.itemsize > 2:   # not float16/bfloat16
        return np.add.reduce(g, axis=0)      # ndarray.sum without its Python-level wrapper
    return g.sum(axis=tuple(range(g.ndim - 1)), dtype=accumulator(g)).astype(g.dtype, copy=False)


def _linear_jvp(t, out, x, weight, bias):
    return matmul(t[0], swapaxes(weight, 0, 1)) + matmul(x, swapaxes(t[1], 0, 1)) + t[2]


def _check_linear(x, weight, bias, **activation_params):
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


_linear = defop(
    "linear", _linear_forward,
    vjp=(_linear_grad_input,
         _linear_grad_weight,
         _linear_grad_bias),
    # save=True although the rules never read the bias: it is a parameter, alive anyway,
    # and keeping the arguments as they are spares a shape-and-dtype record per call.
    jvp=_linear_jvp, promote=True, check=_check_linear, save=True,
    samples=[Sample((4, 3), (5, 3), (5,)), Sample((2, 4, 3), (2, 3), (2,)), Sample((3,), (2, 3), (2,))],
    reference=lambda x, weight, bias: x @ weight.T + bias,
    doc="""``input @ weight.T + bias`` in one op.

    PyTorch: ``torch.nn.functional.linear(input, weight, bias)``.

    Parameters
    ----------
    input : Tensor, (..., in_features)
    weight : Tensor, (out_features, in_features)
    bias : Tensor, (out_features,)
    """)
_LINEAR = _linear.op


# --------------------------------------------------------------------------
# linear_<name>: f(x @ weight.T + bias) in one node, one op per row of the
# table.  The rules are linear's, after a prologue that turns the gradient of
# the output into the gradient of the pre-activation once.
#
# What the forward keeps (the node's residual), per device:
# * NumPy: what the activation op alone would keep, computed by the same
#   functions, so values and gradients are those of linear then f: relu keeps
#   nothing but the output, leaky_relu its packed mask, gelu (float32/16) the
#   pre-activation and its CDF, sigmoid and tanh nothing but the output, the
#   others the pre-activation.
# * CuPy, with a 1-D bias: ``x @ weight.T`` goes to gg_<name>_bias_forward
#   (_mask), which adds the bias in the compute precision inside the
#   activation kernel; the residual is the kernel's saved state (a mask, or
#   ``(x @ weight.T, bias)``, from which gg_<name>_bias_backward recomputes
#   the sum), ``("bias", saved)``.
# Under create_graph the prologue recomputes the pre-activation with ops and
# differentiates the composition, so every order of derivative is exact.
# --------------------------------------------------------------------------
_ELEMENTWISE_OPS = {"sigmoid": elementwise.sigmoid.op, "tanh": elementwise.tanh.op}


def _unfused_forward_saving(row, z, params):
    """``(f(z), residual)``, computed as the activation op alone computes it on ``z``'s device."""
    name = row.name
    if row.saves == "output":     # sigmoid, tanh: the elementwise op's forward (the kernel on CuPy)
        return _ELEMENTWISE_OPS[name].forward(z), None
    if name == "relu" and z.__class__ is np.ndarray and z.dtype.kind == "f":
        return np.maximum(z, 0, out=z), None       # z is this op's own temporary
    if row.saves == "mask":
        return _forward_saving(name, z, **params)
    if name == "gelu" and _gelu_cpu_path(z):
        y, cdf = gelu_cpu_forward(z)
        return y, ("cdf", z, cdf)
    return kernels.activation_forward(name, z, **params), z


def _pre_activation_gradient(row, g, out, residual, params):
    """``g * f'(z)`` on raw arrays (a plain backward), from what the forward kept."""
    name = row.name
    if row.saves == "output":     # the elementwise op's rule (the kernel on CuPy)
        return _ELEMENTWISE_OPS[name].vjp[0](g, out, None)
    if residual is None:           # relu on NumPy: the output is 0 exactly where the bit is clear
        return g * (out != 0)
    if isinstance(residual, tuple):
        if residual[0] == "cdf":
            return gelu_cpu_backward(g, residual[1], residual[2])
        saved = residual[1]        # ("bias", what the bias kernel saved)
        if row.saves == "input":
            return kernels.bias_activation_backward(name, g, saved, sum_bias=False, **params)[0]
        return kernels.activation_backward(name, g, saved, **params)
    return activation_grad(g, residual, name=name, **params)


def _saved_for_ops(row, out, x, weight, bias, params):
    """What ``activation_grad`` needs, from the node's Tensors (create_graph, forward mode)."""
    if row.saves == "output" or row.name == "relu":
        return out
    z = linear(x, weight, bias)
    if row.saves == "mask":
        return _forward_saving(row.name, _raw(z), **params)[1]
    return z


def _make_linear_activation(row):
    name = row.name

    relu = name == "relu"

    def forward(x, weight, bias, **params):
        dtype = x.dtype
        if dtype is _bfloat16 or (dtype is _float16 and x.__class__ is np.ndarray):
            z = _linear_forward(x, weight, bias)    # the GEMM in float32, rounded once (low precision)
        elif x.__class__ is not np.ndarray and bias.ndim == 1 and backend.is_gpu_array(x):
            y, saved = kernels.bias_activation_forward(name, x @ weight.T, bias, **params)
            return y, ("bias", saved)
        else:
            z = x @ weight.T                 # linear's forward, inlined (one frame fewer per layer and step)
            z += bias
        if relu and z.__class__ is np.ndarray and z.dtype.kind == "f":
            return np.maximum(z, 0, out=z), None       # _unfused_forward_saving's relu, inlined likewise
        return _unfused_forward_saving(row, z, params)

    def prologue(g, out, x, weight, bias, residual=None, **params):
        if relu and residual is None and g.__class__ is np.ndarray:
            return g * (out != 0)                       # _pre_activation_gradient's relu, inlined likewise
        if isinstance(g, Tensor):
            return activation_grad(g, _saved_for_ops(row, out, x, weight, bias, params), name=name, **params)
        return _pre_activation_gradient(row, g, out, residual, params)

    def jvp(t, out, x, weight, bias, **params):
        tangent = _linear_jvp(t, out, x, weight, bias)
        return activation_grad(tangent, _saved_for_ops(row, out, x, weight, bias, params), name=name, **params)

    reference = row.reference
    samples = [Sample(_SPECS[row.domain]((4, 3)), (5, 3), (5,), **row.samples[0]),
               Sample(_SPECS[row.domain]((2, 4, 3)), (2, 3), (2,), **row.samples[-1])]
    if row.saves == "output":      # inputs that keep x @ weight.T + bias inside (-1, 1), where the output lives
        samples = [Sample(Unit((4, 3)), Unit((5, 3)), Unit((5,)))]
    return defop(
        f"linear_{name}", forward,
        vjp=(_linear_grad_input, _linear_grad_weight, _linear_grad_bias),
        vjp_prologue=prologue, jvp=jvp, promote=True, check=_check_linear, save=True,
        save_output=row.saves == "output" or name == "relu", residual=True, samples=samples,
        reference=lambda x, weight, bias, **params: reference(x @ weight.T + bias, **params),
        doc=f"""``{name}(input @ weight.T + bias)`` in one op (``ops.linear(..., activation={name!r})``,
    what ``nn.Sequential`` runs for Linear then the activation's module).

    PyTorch: ``torch.nn.functional.{name}(torch.nn.functional.linear(input, weight, bias))``
    (``torch.{name}`` for sigmoid and tanh).

    Parameters
    ----------
    input : Tensor, (..., in_features)
    weight : Tensor, (out_features, in_features)
    bias : Tensor, (out_features,)
    """)


_FUSED = {row.name: _make_linear_activation(row).op for row in TABLE}
linear_relu = _FUSED["relu"].function


def linear(input, weight, bias=None, activation=None, **activation_params):
    """``activation(input @ weight.T + bias)``; weight is ``(out_features, in_features)``.

    With ``activation`` (the name of an activation: ``"relu"``, ``"gelu"``,
    ``"leaky_relu"``, ..., with its parameters as keywords) the two run as one
    op, ``linear_<name>``: on NumPy the same numbers as the activation applied
    to ``linear``'s output, on CuPy with the bias-add inside the activation's
    kernel.  ``nn.Sequential`` asks for it for a ``Linear`` followed by an
    activation module.

    Parameters
    ----------
    input : Tensor
        ``(..., in_features)``.
    weight : Tensor
        ``(out_features, in_features)``.
    bias : Tensor, optional
        ``(out_features,)`` (or a scalar).
    activation : str, optional
        One of relu, leaky_relu, elu, gelu, silu, sigmoid, tanh, softplus, mish.
    **activation_params
        The activation's parameters (``negative_slope``, ``alpha``,
        ``approximate``, ``beta``, ``threshold``).

    Returns
    -------
    Tensor
        ``(..., out_features)``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> x, w, b = gg.tensor([[1.0, -2.0]]), gg.tensor([[1.0, 1.0], [2.0, 0.5]]), gg.tensor([0.5, 0.0])
    >>> linear(x, w, b)
    tensor([[-0.5,  1. ]], device='cpu')
    >>> linear(x, w, b, activation="relu")
    tensor([[0., 1.]], device='cpu')
    >>> linear(x.requires_grad_(), w, b, activation="relu").grad_fn.name
    'linear_relu'
    """
    if activation is None:
        if bias is None:
            return _linear_without_bias(input, weight)
        if isinstance(input, Tensor) and isinstance(weight, Tensor) and isinstance(bias, Tensor):
            # As a layer calls it, once per step: straight to the op, and without
            # the promotion step when the dtypes agree.
            arguments = (input, weight, bias)
            if input.array.dtype == weight.array.dtype == bias.array.dtype and not threads_off_default:
                return apply_promoted(_LINEAR, arguments, NO_PARAMS)
            return apply_op(_LINEAR, arguments, NO_PARAMS)
        return _linear(input, weight, bias)
    if activation_params:
        op, params = fused_linear_op(activation, activation_params)
    else:
        op, params = _FUSED_WITH_DEFAULTS.get(activation) or fused_linear_op(activation, activation_params)
    if bias is None:
        return _ACTIVATIONS_BY_NAME[activation](_linear_without_bias(input, weight), **activation_params)
    if isinstance(input, Tensor) and isinstance(weight, Tensor) and isinstance(bias, Tensor):
        arguments = (input, weight, bias)            # apply_linear, inlined
        if input.array.dtype == weight.array.dtype == bias.array.dtype and not threads_off_default:
            return apply_promoted(op, arguments, params)
        return apply_op(op, arguments, params)
    if not isinstance(input, Tensor) and not isinstance(weight, Tensor) and not isinstance(bias, Tensor):
        return op.forward(input, weight, bias, **params)[0]
    return apply_op(op, (input, weight, bias), params)


linear.op = _LINEAR


def _linear_without_bias(input, weight):
    if weight.ndim != 2 or input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input of shape {tuple(input.shape)} does not fit weight of shape "
                         f"{tuple(weight.shape)}: the input's last dimension must equal weight.shape[1]")
    return matmul(input, swapaxes(weight, 0, 1))


def fused_linear_op(activation, params):
    """The op ``linear_<row>`` for a public activation name and its parameters, and the kernel's parameters.

    Examples
    --------
    >>> op, params = fused_linear_op("gelu", {"approximate": "tanh"})
    >>> op.name, params
    ('linear_gelu_tanh', {})
    """
    selector = _SELECTORS.get(activation)
    if selector is None:
        raise ValueError(f"linear: activation={activation!r} is not supported; use one of "
                         f"{', '.join(_SELECTORS)} or apply it after linear")
    kernel, kernel_params = selector(params)
    known = {key for key, _ in ROWS[kernel].params}
    unknown = set(kernel_params) - known
    if unknown:
        raise TypeError(f"linear: unexpected parameter(s) {', '.join(sorted(unknown))} for activation "
                        f"{activation!r}; it accepts {', '.join(sorted(known)) or 'no parameters'}")
    return _FUSED[kernel], ({key: float(value) for key, value in kernel_params.items()} or NO_PARAMS)


def apply_linear(op, x, weight, bias, params=NO_PARAMS):
    """``op`` (linear or a linear_<name>) on three Tensors, as a layer calls it once per
    step: straight to the op, and without the promotion step when the dtypes agree."""
    arguments = (x, weight, bias)
    # apply_op when some thread is off the default modes: it applies autocast first.
    if x.array.dtype == weight.array.dtype == bias.array.dtype and not threads_off_default:
        return apply_promoted(op, arguments, params)
    return apply_op(op, arguments, params)


# The fused op of each public activation called without parameters (the common case, per layer per step).
_FUSED_WITH_DEFAULTS = {public: (_FUSED[select({})[0]], NO_PARAMS) for public, select in _SELECTORS.items()}

_ACTIVATIONS_BY_NAME = dict(ACTIVATION_FUNCTIONS, sigmoid=sigmoid, tanh=tanh)


__all__ = ["relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "mish", "activation_grad", "linear",
           "linear_relu", "apply_linear", "fused_linear_op", "ACTIVATION_FUNCTIONS"]

"""The activation table: one row per kernel-backed activation.

Everything else about an activation is generated from its row: the kernel
names and families the launcher compiles (:data:`gpugrad.kernels.KERNELS`),
the parameters and defaults the launcher accepts, the NumPy twin the CPU path
and the tests run, the op declared in :mod:`gpugrad.ops.activation` (its VJP
and JVP, its second derivative for double backward, its reference forward and
derivative, its battery samples), and the fused ``linear_<name>`` op that
``ops.linear(..., activation=name)`` and ``nn.Sequential`` use.

Adding a kernel-backed activation touches three places: its ``struct
gg_<name>_op`` in ``activation.cu`` (and its line in ``GG_ACTIVATIONS`` there),
its twin in :mod:`gpugrad.kernels.twins`, and one row here.  The row gives
it its op (``gpugrad.ops.activation.ACTIVATION_FUNCTIONS[name]``, a Tensor
method), its fused ``linear_<name>`` op, ``ops.linear(..., activation=name)``
and the battery's checks; PyTorch-shaped wrappers (an ``F.`` function with
PyTorch's signature, an ``nn`` module) are written where PyTorch has them.

Each row says:

``name``
    The kernel's name (``gg_<name>_forward`` ...).
``saves``
    What backward keeps: ``"mask"`` (a bit per element; the twin's ``mask``
    gives the bit, ``mask_off`` the factor where it is clear), ``"output"``
    (``y``; ``derivative`` is then a function of ``y``) or ``"input"`` (``x``).
``params``
    ``((name, PyTorch's default), ...)``, in the order they reach the kernel
    as its ``a`` and ``b``.
``forward``, ``derivative``, ``mask``
    The twins of ``Op::forward``, ``Op::derivative``, ``Op::mask``:
    ``f(x, a, b, k)`` in the compute dtype, ``k`` the literals of
    :mod:`~gpugrad.kernels.twins`.
``second``
    ``f''`` as ``second(saved, m, **params)``: the derivative of
    ``f'(saved)`` with respect to ``saved``, written with the functions of the
    namespace ``m`` (``exp``, ``tanh``, ``sigmoid``, ``softplus``, ``where``)
    and operators, so the same formula runs on ops (double backward) and on
    NumPy (its test).  None for mask rows (f'' is 0 almost everywhere).
``reference``, ``reference_derivative``
    Independent float64 NumPy forms of ``f(x, **params)`` and
    ``f'(saved, **params)`` (written the textbook way, not the twin's way),
    what the battery compares with.
``public``, ``public_params``
    The public function the row belongs to and the public parameters that
    select it (``gelu_tanh`` is ``gelu(approximate='tanh')``).
``domain``, ``samples``
    The battery's inputs: ``"normal"``, ``"away"`` (|x| >= 0.3: a kink at
    0) or ``"unit"`` (a saved output in (-1, 1)); and parameter sets.

Examples
--------
>>> ROWS["softplus"].params
(('beta', 1.0), ('threshold', 20.0))
>>> [row.name for row in TABLE if row.saves == "mask"]
['relu', 'leaky_relu']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import twins


class Activation(NamedTuple):
    """One row of :data:`TABLE` (see the module docstring for each field)."""

    name: str
    saves: str
    forward: Callable
    reference: Callable
    reference_derivative: Callable
    params: tuple = ()
    derivative: Callable = None
    mask: Callable = None
    mask_off: str = None
    second: Callable = None
    public: str = None
    public_params: tuple = ()
    domain: str = "normal"
    samples: tuple = ({},)

    @property
    def defaults(self):
        """``{name: default}`` of the row's parameters."""
        return dict(self.params)

    @property
    def public_name(self):
        return self.public or self.name


# --------------------------------------------------------------------------
# Independent references (float64, textbook formulas).
# --------------------------------------------------------------------------
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715
_erf = np.vectorize(math.erf, otypes=[float])


def _logistic(x):
    return 1 / (1 + np.exp(-x))


def _gelu_tanh_reference_derivative(s):
    t = np.tanh(_SQRT_2_OVER_PI * (s + _GELU_CUBIC * s ** 3))
    return 0.5 * (1 + t) + 0.5 * s * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * s * s)


def _mish_reference_derivative(s):
    t = np.tanh(np.log1p(np.exp(s)))
    return t + s * _logistic(s) * (1 - t * t)


# --------------------------------------------------------------------------
# Second derivatives, written over a namespace of functions (ops or NumPy).
# --------------------------------------------------------------------------
def _second_elu(x, m, alpha=1.0):
    return m.where(x > 0, 0.0, m.exp(x) * alpha)


def _second_gelu(x, m):
    return m.exp(x * x * -0.5) * _INV_SQRT_2PI * (2.0 - x * x)


def _second_gelu_tanh(x, m):
    inner = (x + x * x * x * _GELU_CUBIC) * _SQRT_2_OVER_PI
    t = m.tanh(inner)
    slope = (x * x * (3 * _GELU_CUBIC) + 1.0) * _SQRT_2_OVER_PI
    curvature = x * (6 * _GELU_CUBIC * _SQRT_2_OVER_PI)
    sech2 = 1.0 - t * t
    return sech2 * slope + x * 0.5 * (sech2 * curvature - t * sech2 * slope * slope * 2.0)


def _second_silu(x, m):
    s = m.sigmoid(x)
    return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))


def _second_softplus(x, m, beta=1.0, threshold=20.0):
    s = m.sigmoid(x * beta)
    return m.where(x * beta > threshold, 0.0, s * (1.0 - s) * beta)


def _second_mish(x, m):
    t = m.tanh(m.softplus(x))
    s = m.sigmoid(x)
    return (1.0 - t * t) * s * (2.0 + x * (1.0 - s) - x * t * s * 2.0)


# --------------------------------------------------------------------------
# The table.
# --------------------------------------------------------------------------
TABLE = (
    Activation(
        "relu", "mask", twins.relu, mask=twins.relu_mask,
        reference=lambda x: np.maximum(x, 0),
        reference_derivative=lambda s: (s > 0).astype(float),
        domain="away"),
    Activation(
        "leaky_relu", "mask", twins.leaky_relu, mask=twins.leaky_relu_mask, mask_off="negative_slope",
        params=(("negative_slope", 0.01),),
        reference=lambda x, negative_slope=0.01: np.where(x > 0, x, negative_slope * x),
        reference_derivative=lambda s, negative_slope=0.01: np.where(s > 0, 1.0, negative_slope),
        domain="away", samples=({}, {"negative_slope": 0.3})),
    Activation(
        "elu", "input", twins.elu, derivative=twins.elu_derivative, second=_second_elu,
        params=(("alpha", 1.0),),
        reference=lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(x)),
        reference_derivative=lambda s, alpha=1.0: np.where(s > 0, 1.0, alpha * np.exp(s)),
        domain="away", samples=({}, {"alpha": 0.5})),
    Activation(
        "gelu", "input", twins.gelu, derivative=twins.gelu_derivative, second=_second_gelu,
        public_params=(("approximate", "none"),),
        reference=lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
        reference_derivative=lambda s: 0.5 * (1 + _erf(s / math.sqrt(2))) + s * np.exp(-s * s / 2) * _INV_SQRT_2PI),
    Activation(
        "gelu_tanh", "input", twins.gelu_tanh, derivative=twins.gelu_tanh_derivative, second=_second_gelu_tanh,
        public="gelu", public_params=(("approximate", "tanh"),),
        reference=lambda x: 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3))),
        reference_derivative=_gelu_tanh_reference_derivative),
    Activation(
        "silu", "input", twins.silu, derivative=twins.silu_derivative, second=_second_silu,
        reference=lambda x: x * _logistic(x),
        reference_derivative=lambda s: _logistic(s) * (1 + s * (1 - _logistic(s)))),
    Activation(
        "sigmoid", "output", twins.sigmoid, derivative=twins.sigmoid_derivative,
        second=lambda y, m: 1.0 - y * 2.0,
        reference=_logistic, reference_derivative=lambda y: y * (1 - y), domain="unit"),
    Activation(
        "tanh", "output", twins.tanh, derivative=twins.tanh_derivative,
        second=lambda y, m: y * -2.0,
        reference=np.tanh, reference_derivative=lambda y: 1 - y * y, domain="unit"),
    Activation(
        "softplus", "input", twins.softplus, derivative=twins.softplus_derivative, second=_second_softplus,
        params=(("beta", 1.0), ("threshold", 20.0)),
        reference=lambda x, beta=1.0, threshold=20.0: np.where(x * beta > threshold, x,
                                                               np.log1p(np.exp(beta * x)) / beta),
        reference_derivative=lambda s, beta=1.0, threshold=20.0: np.where(s * beta > threshold, 1.0,
                                                                          _logistic(beta * s)),
        samples=({}, {"beta": 2.0, "threshold": 1.5})),
    Activation(
        "mish", "input", twins.mish, derivative=twins.mish_derivative, second=_second_mish,
        reference=lambda x: x * np.tanh(np.log1p(np.exp(x))),
        reference_derivative=_mish_reference_derivative),
)

#: The rows by kernel name.
ROWS = {row.name: row for row in TABLE}


def _check_table():
    for row in TABLE:
        assert row.saves in ("mask", "output", "input"), row
        assert (row.saves == "mask") == (row.mask is not None) == (row.derivative is None), row
        assert (row.saves == "mask") == (row.second is None), row
        known = {key for key, _ in row.params}
        assert all(set(sample) <= known for sample in row.samples), row
        assert row.mask_off is None or row.mask_off in known, row
        assert len(row.params) <= 2, row     # the kernels take two scalars, a and b


_check_table()

"""Fused optimizer updates: one CUDA ``ElementwiseKernel`` launch per parameter, with NumPy twins.

Why: an unfused Adam step on CuPy runs about ten array operations per
parameter, each a kernel launch that reads and writes whole temporaries.  One
elementwise kernel reads the gradient and the state once, applies the whole
update in registers and writes the parameter and the state once.

What each kernel computes is defined by its NumPy twin below (same formulas,
in the same order): :data:`TWINS` maps every kernel name to its twin, which
takes the kernel's arguments in the kernel's order (inputs, then the outputs
it updates in place).  The strict CuPy stand-in of the test suite runs the
twin when a kernel is launched.  Scalars enter both as float64 and are
rounded to the compute type before use, as NumPy and CuPy round a Python
float that meets a float32 array; float16 computes in float32 and rounds once
per stored value (so a float16 fused step agrees with the unfused one within
float16 rounding, not bit for bit).  On a card, FMA contraction can change the
last bit of float32 results too: "within rounding", as the issue asks.

Examples
--------
>>> import numpy as np
>>> from gpugrad.kernels import optim_kernels
>>> param, grad = np.array([1.0, 2.0], np.float32), np.array([0.5, -0.5], np.float32)
>>> optim_kernels.TWINS["gg_sgd_step"](grad, 0.1, 0.0, 0, param)
>>> param
array([0.95, 2.05], dtype=float32)
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["TWINS", "sgd_kernel_name", "adam_kernel_name", "rmsprop_kernel_name", "adagrad_kernel_name",
           "launch"]

# ---------------------------------------------------------------------------
# CUDA sources.  ``C`` is the compute type: T itself, float for float16.
# ---------------------------------------------------------------------------
_GRAD_PREAMBLE = "C g = maximize ? -(C)grad : (C)grad; C p = (C)param;\n"

_SOURCES = {
    "gg_sgd_step": (
        "T grad, float64 lr, float64 weight_decay, int32 maximize", "T param",
        _GRAD_PREAMBLE + """
        if (weight_decay != 0) g = g + (C)weight_decay * p;
        param = (T)(p - g * (C)lr);
        """),
    "gg_sgd_momentum_step": (
        "T grad, float64 lr, float64 weight_decay, float64 momentum, float64 dampening_complement, "
        "int32 nesterov, int32 maximize, int32 first", "T param, T momentum_buffer",
        _GRAD_PREAMBLE + """
        if (weight_decay != 0) g = g + (C)weight_decay * p;
        C b = first ? g : (C)momentum_buffer * (C)momentum + (C)dampening_complement * g;
        momentum_buffer = (T)b;
        g = nesterov ? g + (C)momentum * b : b;
        param = (T)(p - g * (C)lr);
        """),
    "gg_adam_step": (
        "T grad, float64 weight_decay, float64 decay_factor, float64 lerp_weight, float64 beta2, "
        "float64 one_minus_beta2, float64 step_size, float64 bias_correction2_sqrt, float64 eps, "
        "int32 maximize, int32 decoupled", "T param, T exp_avg, T exp_avg_sq",
        _GRAD_PREAMBLE + """
        if (weight_decay != 0) { if (decoupled) p = p * (C)decay_factor; else g = g + (C)weight_decay * p; }
        C m = (C)exp_avg;
        m = lerp_weight < 0.5 ? m + (C)lerp_weight * (g - m) : g - (g - m) * (C)(1.0 - lerp_weight);
        C v = (C)exp_avg_sq * (C)beta2 + (C)one_minus_beta2 * (g * g);
        exp_avg = (T)m; exp_avg_sq = (T)v;
        C denom = sqrt(v) / (C)bias_correction2_sqrt + (C)eps;
        param = (T)(p - (C)step_size * (m / denom));
        """),
    "gg_adam_amsgrad_step": (
        "T grad, float64 weight_decay, float64 decay_factor, float64 lerp_weight, float64 beta2, "
        "float64 one_minus_beta2, float64 step_size, float64 bias_correction2_sqrt, float64 eps, "
        "int32 maximize, int32 decoupled", "T param, T exp_avg, T exp_avg_sq, T max_exp_avg_sq",
        _GRAD_PREAMBLE + """
        if (weight_decay != 0) { if (decoupled) p = p * (C)decay_factor; else g = g + (C)weight_decay * p; }
        C m = (C)exp_avg;
        m = lerp_weight < 0.5 ? m + (C)lerp_weight * (g - m) : g - (g - m) * (C)(1.0 - lerp_weight);
        C v = (C)exp_avg_sq * (C)beta2 + (C)one_minus_beta2 * (g * g);
        exp_avg = (T)m; exp_avg_sq = (T)v;
        C previous = (C)max_exp_avg_sq;
        C highest = (previous != previous || v != v) ? previous + v : (previous > v ? previous : v);
        max_exp_avg_sq = (T)highest;
        C denom = sqrt(highest) / (C)bias_correction2_sqrt + (C)eps;
        param = (T)(p - (C)step_size * (m / denom));
        """),
    "gg_adagrad_step": (
        "T grad, float64 clr, float64 weight_decay, float64 eps, int32 maximize", "T param, T state_sum",
        _GRAD_PREAMBLE + """
        if (weight_decay != 0) g = g + (C)weight_decay * p;
        C s = (C)state_sum + g * g;
        state_sum = (T)s;
        param = (T)(p - (C)clr * (g / (sqrt(s) + (C)eps)));
        """),
}

_RMSPROP_BODY = _GRAD_PREAMBLE + """
        if (weight_decay != 0) g = g + (C)weight_decay * p;
        C v = (C)square_avg * (C)alpha + (C)one_minus_alpha * (g * g);
        square_avg = (T)v;
    #if CENTERED
        C a = (C)grad_avg;
        a = one_minus_alpha < 0.5 ? a + (C)one_minus_alpha * (g - a) : g - (g - a) * (C)alpha;
        grad_avg = (T)a;
        C avg = sqrt(v - a * a) + (C)eps;
    #else
        C avg = sqrt(v) + (C)eps;
    #endif
    #if MOMENTUM
        C b = (C)momentum_buffer * (C)momentum + g / avg;
        momentum_buffer = (T)b;
        param = (T)(p - (C)lr * b);
    #else
        param = (T)(p - (C)lr * (g / avg));
    #endif
        """
for _centered in (False, True):
    for _momentum in (False, True):
        _outputs = "T param, T square_avg" + (", T grad_avg" if _centered else "") + \
            (", T momentum_buffer" if _momentum else "")
        _body = f"#define CENTERED {int(_centered)}\n#define MOMENTUM {int(_momentum)}\n" + _RMSPROP_BODY
        _SOURCES["gg_rmsprop" + ("_centered" if _centered else "") + ("_momentum" if _momentum else "") + "_step"] = (
            "T grad, float64 lr, float64 alpha, float64 one_minus_alpha, float64 eps, float64 weight_decay, "
            "float64 momentum, int32 maximize", _outputs, _body)


def sgd_kernel_name(momentum):
    """The SGD kernel for ``momentum != 0`` or not."""
    return "gg_sgd_momentum_step" if momentum != 0 else "gg_sgd_step"


def adam_kernel_name(amsgrad):
    """The Adam kernel with or without the running maximum of ``amsgrad``."""
    return "gg_adam_amsgrad_step" if amsgrad else "gg_adam_step"


def rmsprop_kernel_name(centered, momentum):
    """The RMSprop kernel for the given ``centered`` and ``momentum > 0``."""
    return "gg_rmsprop" + ("_centered" if centered else "") + ("_momentum" if momentum > 0 else "") + "_step"


def adagrad_kernel_name():
    """Adagrad's one kernel."""
    return "gg_adagrad_step"


_built = {}
_lock = threading.Lock()


def launch(name, arrays_and_scalars):
    """Run kernel ``name`` on CuPy arrays (updated in place), built on first use per compute type.

    ``arrays_and_scalars`` is the kernel's argument list (its inputs, then the
    arrays it updates), in the order of :data:`TWINS`' functions.
    """
    import cupy

    half = arrays_and_scalars[0].dtype == np.float16
    kernel = _built.get((name, half))
    if kernel is None:
        in_params, out_params, body = _SOURCES[name]
        with _lock:
            kernel = _built.get((name, half))
            if kernel is None:
                compute = "float" if half else "T"
                kernel = cupy.ElementwiseKernel(in_params, out_params, f"typedef {compute} C;\n" + body, name)
                _built[(name, half)] = kernel
    kernel(*arrays_and_scalars)


# ---------------------------------------------------------------------------
# NumPy twins: what each kernel computes, line for line.
# ---------------------------------------------------------------------------
def _compute(array):
    """The compute-type view of a stored array: float16 is computed in float32."""
    return array.astype(np.float32) if array.dtype == np.float16 else array


def _cast(value, like):
    """A float64 kernel scalar rounded to the compute type of ``like`` (kept 0-d: NumPy keeps its dtype)."""
    return like.dtype.type(value)


def _store(target, value):
    target[...] = value


def _signed(grad, maximize):
    grad = _compute(grad)
    return -grad if maximize else grad


def _sgd_twin(grad, lr, weight_decay, maximize, param):
    g, p = _signed(grad, maximize), _compute(param)
    if weight_decay != 0:
        g = g + _cast(weight_decay, p) * p
    _store(param, p - g * _cast(lr, p))


def _sgd_momentum_twin(grad, lr, weight_decay, momentum, dampening_complement, nesterov, maximize, first,
                       param, momentum_buffer):
    g, p = _signed(grad, maximize), _compute(param)
    if weight_decay != 0:
        g = g + _cast(weight_decay, p) * p
    b = g.copy() if first else _compute(momentum_buffer) * _cast(momentum, p) + _cast(dampening_complement, p) * g
    _store(momentum_buffer, b)
    g = g + _cast(momentum, p) * b if nesterov else b
    _store(param, p - g * _cast(lr, p))


def _adam_moments(g, p, weight_decay, decay_factor, lerp_weight, beta2, one_minus_beta2, decoupled,
                  exp_avg, exp_avg_sq):
    if weight_decay != 0:
        if decoupled:
            p = p * _cast(decay_factor, p)
        else:
            g = g + _cast(weight_decay, p) * p
    m = _compute(exp_avg)
    if lerp_weight < 0.5:
        m = m + _cast(lerp_weight, p) * (g - m)
    else:
        m = g - (g - m) * _cast(1.0 - lerp_weight, p)
    v = _compute(exp_avg_sq) * _cast(beta2, p) + _cast(one_minus_beta2, p) * (g * g)
    _store(exp_avg, m)
    _store(exp_avg_sq, v)
    return p, m, v


def _adam_twin(grad, weight_decay, decay_factor, lerp_weight, beta2, one_minus_beta2, step_size,
               bias_correction2_sqrt, eps, maximize, decoupled, param, exp_avg, exp_avg_sq):
    p, m, v = _adam_moments(_signed(grad, maximize), _compute(param), weight_decay, decay_factor, lerp_weight,
                            beta2, one_minus_beta2, decoupled, exp_avg, exp_avg_sq)
    denom = np.sqrt(v) / _cast(bias_correction2_sqrt, p) + _cast(eps, p)
    _store(param, p - _cast(step_size, p) * (m / denom))


def _adam_amsgrad_twin(grad, weight_decay, decay_factor, lerp_weight, beta2, one_minus_beta2, step_size,
                       bias_correction2_sqrt, eps, maximize, decoupled, param, exp_avg, exp_avg_sq, max_exp_avg_sq):
    p, m, v = _adam_moments(_signed(grad, maximize), _compute(param), weight_decay, decay_factor, lerp_weight,
                            beta2, one_minus_beta2, decoupled, exp_avg, exp_avg_sq)
    highest = np.maximum(_compute(max_exp_avg_sq), v)
    _store(max_exp_avg_sq, highest)
    denom = np.sqrt(highest) / _cast(bias_correction2_sqrt, p) + _cast(eps, p)
    _store(param, p - _cast(step_size, p) * (m / denom))


def _adagrad_twin(grad, clr, weight_decay, eps, maximize, param, state_sum):
    g, p = _signed(grad, maximize), _compute(param)
    if weight_decay != 0:
        g = g + _cast(weight_decay, p) * p
    s = _compute(state_sum) + g * g
    _store(state_sum, s)
    _store(param, p - _cast(clr, p) * (g / (np.sqrt(s) + _cast(eps, p))))


def _rmsprop_twin(centered, with_momentum):
    def twin(grad, lr, alpha, one_minus_alpha, eps, weight_decay, momentum, maximize, param, square_avg, *rest):
        g, p = _signed(grad, maximize), _compute(param)
        if weight_decay != 0:
            g = g + _cast(weight_decay, p) * p
        v = _compute(square_avg) * _cast(alpha, p) + _cast(one_minus_alpha, p) * (g * g)
        _store(square_avg, v)
        if centered:
            grad_avg = rest[0]
            a = _compute(grad_avg)
            if one_minus_alpha < 0.5:
                a = a + _cast(one_minus_alpha, p) * (g - a)
            else:
                a = g - (g - a) * _cast(alpha, p)
            _store(grad_avg, a)
            avg = np.sqrt(v - a * a) + _cast(eps, p)
        else:
            avg = np.sqrt(v) + _cast(eps, p)
        if with_momentum:
            buffer = rest[-1]
            b = _compute(buffer) * _cast(momentum, p) + g / avg
            _store(buffer, b)
            _store(param, p - _cast(lr, p) * b)
        else:
            _store(param, p - _cast(lr, p) * (g / avg))
    return twin


#: Kernel name -> its NumPy twin (arguments in the kernel's order; outputs updated in place).
TWINS = {
    "gg_sgd_step": _sgd_twin,
    "gg_sgd_momentum_step": _sgd_momentum_twin,
    "gg_adam_step": _adam_twin,
    "gg_adam_amsgrad_step": _adam_amsgrad_twin,
    "gg_adagrad_step": _adagrad_twin,
}
for _centered in (False, True):
    for _momentum in (False, True):
        TWINS[rmsprop_kernel_name(_centered, 1 if _momentum else 0)] = _rmsprop_twin(_centered, _momentum)

#: Kernel name -> (input parameters, output parameters) as ElementwiseKernel declares them.
SIGNATURES = {name: (inputs, outputs) for name, (inputs, outputs, _) in _SOURCES.items()}

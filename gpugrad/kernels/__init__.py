"""Hand-written CUDA kernels for activations and dropout, with NumPy twins.

Why kernels at all: an activation composed from CuPy ops (``x * sigmoid(x)``,
GELU's erf, ...) launches several kernels and writes and reads a temporary
array for each step; one fused kernel reads its input once and writes its
output once, which is all a memory-bound op can hope for.  The kernels also
keep less for backward: relu, leaky_relu and dropout save a bit-packed mask
(1 bit per element) instead of a float tensor, sigmoid and tanh save their
output (which the next op usually keeps anyway), and the bias-add of a Linear
layer followed by an activation runs inside the activation's kernel (the
``linear_<name>`` ops of :mod:`gpugrad.ops.activation` on CuPy).  The
activations, what each saves and its parameters come from
:mod:`gpugrad.kernels.table`.

How the math is defined: every kernel in ``activation.cu`` has a NumPy twin in
:mod:`gpugrad.kernels.twins` written with the same formulas in the same order
(float16 computes in float32 on both sides and rounds once when stored).  The
twin is the CPU path and the reference the CUDA path is tested against, on the
GPU when there is one and through a C++ build of the same source
(``cpu_shim.h``) when there is not.

Every function here takes raw arrays and returns raw arrays: NumPy arrays go to
the twins, CuPy arrays to the kernels.  Inputs may be non-contiguous; outputs
are C-contiguous with the input's shape and dtype.  Forward-mode derivatives
need no kernels of their own: the JVP of an elementwise ``f`` is ``f'(x) *
tangent``, exactly what :func:`activation_backward` computes from the tangent.

Examples
--------
>>> import numpy as np
>>> from gpugrad import kernels
>>> x = np.array([-1.0, 0.0, 2.0], dtype=np.float32)
>>> y, mask = kernels.activation_forward_saving("relu", x)
>>> y, mask
(array([0., 0., 2.], dtype=float32), array([4], dtype=uint8))
>>> kernels.activation_backward("relu", np.ones(3, np.float32), mask)
array([0., 0., 1.], dtype=float32)
"""

from __future__ import annotations

import os
import threading

import numpy as np

from .. import backend
from ..errors import DeviceError, DTypeError, ShapeError
from . import twins
from .table import ROWS, TABLE

__all__ = [
    "ACTIVATIONS", "SAVES_OUTPUT", "SAVES_MASK", "SAVES_INPUT", "TABLE", "ROWS", "KERNELS", "FAMILIES", "SOURCE_PATH",
    "activation_forward", "activation_forward_saving", "activation_backward",
    "bias_activation_forward", "bias_activation_backward", "dropout_forward",
    "dropout_backward", "pack_mask", "unpack_mask", "saved_bytes_per_element",
    "launch_config", "name_expressions",
]

#: Kernel-backed activations, in the order of :data:`gpugrad.kernels.table.TABLE`.
ACTIVATIONS = tuple(row.name for row in TABLE)
SAVES_OUTPUT = frozenset(row.name for row in TABLE if row.saves == "output")
SAVES_MASK = frozenset(row.name for row in TABLE if row.saves == "mask")
SAVES_INPUT = frozenset(row.name for row in TABLE if row.saves == "input")

SOURCE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "activation.cu")

# Kernel families: the C parameter list of each (T is the element type).  The
# compile test instantiates every kernel from this table and the CPU harness
# exports one function per entry, so a kernel missing from the source fails both.
FAMILIES = {
    "unary": "const T*, T*, long long, double, double",
    "backward": "const T*, const T*, T*, long long, double, double",
    "bias_forward": "const T*, const T*, T*, long long, long long, double, double",
    "bias_backward": "const T*, const T*, const T*, T*, long long, long long, double, double",
    "forward_mask": "const T*, T*, unsigned char*, long long, double, double",
    "bias_forward_mask": "const T*, const T*, T*, unsigned char*, long long, long long, double, double",
    "mask_backward": "const T*, const unsigned char*, T*, long long, double, double",
    "dropout_forward": "const T*, const float*, T*, unsigned char*, long long, double, double",
}


def _kernel_table():
    table = {}
    for name in ACTIVATIONS:
        table[f"gg_{name}_forward"] = "unary"
        if name in SAVES_MASK:
            table[f"gg_{name}_forward_mask"] = "forward_mask"
            table[f"gg_{name}_bias_forward_mask"] = "bias_forward_mask"
            table[f"gg_{name}_backward"] = "mask_backward"
        else:
            table[f"gg_{name}_backward"] = "backward"
            table[f"gg_{name}_bias_forward"] = "bias_forward"
            if name in SAVES_INPUT:
                table[f"gg_{name}_bias_backward"] = "bias_backward"
    table["gg_dropout_forward"] = "dropout_forward"
    table["gg_dropout_backward"] = "mask_backward"
    return table


#: Every templated kernel in activation.cu and its family.
KERNELS = _kernel_table()
#: Untemplated (``extern "C"``) kernels: bool <-> packed mask conversion.
PLAIN_KERNELS = ("gg_pack_mask", "gg_unpack_mask")

# NumPy dtype -> the C++ type the template is instantiated with.
_CTYPES = {np.dtype(np.float16): "gg_half", np.dtype(np.float32): "float",
           np.dtype(np.float64): "double"}

_BLOCK = 256
# At most as many blocks per SM as can be resident at once (8 x 256 threads fill
# an sm_80/sm_90 SM).  More would only queue: a queued block of a grid-stride
# loop starts when a resident one ends, and the last wave runs the SM half empty.
_MAX_BLOCKS_PER_SM = 8
# When the occupancy cannot be queried (see _resident_blocks).
_FALLBACK_BLOCKS_PER_SM = 4


def name_expressions():
    """Every template instantiation the RawModule compiles.

    Returns
    -------
    list of str
        ``"gg_relu_forward<float>"`` and so on, for float16 (``gg_half``),
        float32 and float64.

    Examples
    --------
    >>> "gg_gelu_backward<gg_half>" in name_expressions()
    True
    """
    return [f"{kernel}<{ctype}>" for kernel in KERNELS for ctype in _CTYPES.values()]


# --------------------------------------------------------------------------
# Argument checking.
# --------------------------------------------------------------------------
def _check_name(name, allowed=ACTIVATIONS):
    if name not in allowed:
        raise ValueError(f"kernels: unknown activation {name!r}; use one of {', '.join(allowed)}")


def _params(name, params):
    """(a, b) for the kernel from keyword parameters, rejecting unknown names."""
    spec = ROWS[name].params
    known = {key for key, _ in spec}
    unknown = set(params) - known
    if unknown:
        accepted = ", ".join(sorted(known)) or "no parameters"
        raise TypeError(f"{name}: unexpected parameter(s) {', '.join(sorted(unknown))}; "
                        f"{name} accepts {accepted}")
    values = [float(params.get(key, default)) for key, default in spec]
    values += [0.0] * (2 - len(values))
    return values[0], values[1]


def _mask_off(name, a, b):
    """The gradient's factor where a mask activation's bit is clear (its kernel's Op::mask_off)."""
    off = ROWS[name].mask_off
    if off is None:
        return 0.0
    return a if ROWS[name].params[0][0] == off else b


# bfloat16 has no template instance: the twins widen it to float32 like float16,
# and on the GPU :func:`_in_float32` runs the float32 kernel and rounds once.
_ACCEPTED_DTYPES = frozenset(_CTYPES) | {backend.bfloat16}


def _in_float32(function, *args, **params):
    """``function`` on GPU bfloat16 arrays: widened to float32, results rounded back."""
    from ..ops.low_precision import round_to_bfloat16, widen_bfloat16
    return round_to_bfloat16(function(*widen_bfloat16(args), **params))


def _check_float(op, *arrays):
    for array in arrays:
        if np.dtype(array.dtype) not in _ACCEPTED_DTYPES:
            raise DTypeError(f"{op}: dtype {array.dtype} is not supported; activation kernels "
                             "take float16, float32 or float64 (convert with .float())")


def _check_device(op, first, second, what):
    if backend.is_gpu_array(first) != backend.is_gpu_array(second):
        raise DeviceError(f"{op}: {backend.device_of(first)} array but {what} on "
                          f"{backend.device_of(second)}; move both to one device")


def _check_same(op, first, second, what):
    if tuple(first.shape) != tuple(second.shape):
        raise ShapeError(f"{op}: {what} has shape {tuple(second.shape)} but the gradient has "
                         f"shape {tuple(first.shape)}; they must match")
    if first.dtype != second.dtype:
        raise DTypeError(f"{op}: {what} is {second.dtype} but the gradient is {first.dtype}; "
                         "they must match")
    _check_device(op, first, second, what)


def _mask_size(n):
    return (n + 7) // 8


def _check_mask(op, words, n):
    if words.dtype != np.uint8 or words.ndim != 1 or words.size != _mask_size(n):
        raise ShapeError(f"{op}: mask must be uint8 words of shape ({_mask_size(n)},) for "
                         f"{n} elements, got {words.dtype} of shape {tuple(words.shape)}")


# --------------------------------------------------------------------------
# The CUDA side: one RawModule, compiled on first use, functions cached per device.
# --------------------------------------------------------------------------
_module = None
_functions = {}
_sm_counts = {}
_lock = threading.Lock()


def _raw_module(cp):
    global _module
    if _module is None:
        with open(SOURCE_PATH, encoding="utf-8") as source:
            code = source.read()
        # --fmad=false: the twins round after every multiply and add, so the
        # kernels must too; a memory-bound kernel does not miss the FMA.
        _module = cp.RawModule(code=code, options=("--std=c++14", "--fmad=false"),
                               name_expressions=name_expressions() + list(PLAIN_KERNELS))
    return _module


def _function(cp, kernel, dtype=None):
    device_id = cp.cuda.Device().id
    key = (device_id, kernel, None if dtype is None else np.dtype(dtype))
    function = _functions.get(key)
    if function is None:
        with _lock:
            module = _raw_module(cp)
            name = kernel if dtype is None else f"{kernel}<{_CTYPES[np.dtype(dtype)]}>"
            function = _functions[key] = module.get_function(name)
    return function


def launch_config(work_items, device_id=None, blocks_per_sm=_MAX_BLOCKS_PER_SM):
    """Grid and block size for a grid-stride kernel over ``work_items`` items.

    The grid is capped at (SM count x ``blocks_per_sm``) blocks of 256
    threads: every SM full, once, after which the grid-stride loop does the rest.

    Parameters
    ----------
    work_items : int
        Elements (or mask bytes, for kernels where a thread owns 8 elements).
    device_id : int, optional
        CUDA device; the current one by default.
    blocks_per_sm : int
        Blocks of 256 threads that fit on one SM at once (the kernel's
        occupancy; 8 fills an sm_80/sm_90 SM).

    Returns
    -------
    (grid, block) : tuple of int
    """
    cp = backend.require_cuda()
    if device_id is None:
        device_id = cp.cuda.Device().id
    sm_count = _sm_counts.get(device_id)
    if sm_count is None:
        sm_count = _sm_counts[device_id] = cp.cuda.Device(device_id).attributes["MultiProcessorCount"]
    blocks = max(1, min(-(-work_items // _BLOCK), sm_count * blocks_per_sm))
    return blocks, _BLOCK


_resident = {}


def _resident_blocks(cp, function, key):
    """How many 256-thread blocks of ``function`` fit on one SM at once.

    Register use differs per kernel (27 to 47 on sm_90 for float32, more for
    float64), so the grid is sized from the driver's occupancy answer, falling
    back to an estimate from the register count, then to a safe constant.
    """
    blocks = _resident.get(key)
    if blocks is None:
        try:
            blocks = cp.cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(function.kernel.ptr, _BLOCK, 0)
        except Exception:  # noqa: BLE001 - attribute names vary across CuPy versions
            try:
                registers_per_warp = -(-function.num_regs * 32 // 256) * 256
                blocks = 65536 // registers_per_warp // (_BLOCK // 32)
            except Exception:  # noqa: BLE001
                blocks = _FALLBACK_BLOCKS_PER_SM
        blocks = _resident[key] = max(1, min(int(blocks), _MAX_BLOCKS_PER_SM))
    return blocks


def _launch(cp, kernel, dtype, work_items, args):
    # On the device of the data (args[0] is always an array), not whichever is current.
    with cp.cuda.Device(args[0].device.id):
        function = _function(cp, kernel, dtype)
        key = (cp.cuda.Device().id, kernel, None if dtype is None else np.dtype(dtype))
        grid, block = launch_config(work_items, key[0], _resident_blocks(cp, function, key))
        function((grid,), (block,), args)


def _contiguous(array):
    # Not ascontiguousarray: that turns 0-d arrays into 1-d ones.
    return array if array.flags.c_contiguous else array.copy(order="C")


def _gpu_scalars(*values):
    return tuple(np.float64(v) for v in values)


# --------------------------------------------------------------------------
# Public functions.
# --------------------------------------------------------------------------
def activation_forward(name, x, **params):
    """Apply an activation elementwise, keeping nothing for backward.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    x : numpy.ndarray or cupy.ndarray
        float16, float32 or float64, any shape and strides.
    **params
        ``negative_slope`` (leaky_relu, default 0.01), ``alpha`` (elu, 1.0),
        ``beta`` and ``threshold`` (softplus, 1.0 and 20.0).

    Returns
    -------
    y : array
        C-contiguous, same shape, dtype and device as ``x``.

    Examples
    --------
    >>> activation_forward("leaky_relu", np.array([-2.0, 3.0]), negative_slope=0.5)
    array([-1.,  3.])
    """
    _check_name(name)
    a, b = _params(name, params)
    _check_float(name, x)
    if not backend.is_gpu_array(x):
        return twins.forward(name, x, a, b)
    if x.dtype == backend.bfloat16:
        return _in_float32(activation_forward, name, x, **params)
    cp = backend.cupy_module()
    x = _contiguous(x)
    y = cp.empty_like(x)
    if x.size:
        _launch(cp, f"gg_{name}_forward", x.dtype, x.size, (x, y, np.int64(x.size), *_gpu_scalars(a, b)))
    return y


def activation_forward_saving(name, x, **params):
    """Apply an activation and return what its backward needs.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    x : array
        float16, float32 or float64, any shape and strides.
    **params
        As for :func:`activation_forward`.

    Returns
    -------
    y : array
        The activation, C-contiguous, same shape and dtype as ``x``.
    saved : array
        For names in :data:`SAVES_MASK` the bit-packed mask (uint8, 1 bit per
        element, ``numpy.packbits(..., bitorder='little')`` order); for
        :data:`SAVES_OUTPUT` it is ``y`` itself; otherwise ``x``.  Pass it to
        :func:`activation_backward` unchanged.

    Examples
    --------
    >>> y, saved = activation_forward_saving("sigmoid", np.zeros(2))
    >>> saved is y
    True
    """
    _check_name(name)
    a, b = _params(name, params)
    _check_float(name, x)
    if name not in SAVES_MASK:
        y = activation_forward(name, x, **params)
        return y, (y if name in SAVES_OUTPUT else x)
    if not backend.is_gpu_array(x):
        return twins.forward(name, x, a, b), twins.pack_mask(twins.mask(name, x, a, b))
    if x.dtype == backend.bfloat16:
        return _in_float32(activation_forward_saving, name, x, **params)
    cp = backend.cupy_module()
    x = _contiguous(x)
    y = cp.empty_like(x)
    words = cp.empty(_mask_size(x.size), dtype=cp.uint8)
    if x.size:
        _launch(cp, f"gg_{name}_forward_mask", x.dtype, _mask_size(x.size),
                (x, y, words, np.int64(x.size), *_gpu_scalars(a, b)))
    return y, words


def activation_backward(name, grad, saved, **params):
    """Gradient of an activation: ``grad * f'(x)``.

    Also the forward-mode rule: pass a tangent as ``grad`` to get ``f'(x) *
    tangent``.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    grad : array
        Gradient with respect to the output (or a tangent of the input).
    saved : array
        What :func:`activation_forward_saving` returned as ``saved``; for mask
        activations the element count comes from ``grad``.
    **params
        The parameters the forward used.

    Returns
    -------
    grad_x : array
        C-contiguous, same shape and dtype as ``grad``.

    Examples
    --------
    >>> x = np.array([-1.0, 1.0])
    >>> y, saved = activation_forward_saving("elu", x)
    >>> activation_backward("elu", np.ones(2), saved)
    array([0.36787944, 1.        ])
    """
    _check_name(name)
    a, b = _params(name, params)
    _check_float(name, grad)
    op = f"{name} backward"
    if name in SAVES_MASK:
        _check_mask(op, saved, grad.size)
        _check_device(op, grad, saved, "the mask")
    else:
        _check_same(op, grad, saved, "the saved " + ("output" if name in SAVES_OUTPUT else "input"))
    if not backend.is_gpu_array(grad):
        if name in SAVES_MASK:
            return twins.mask_backward(grad, twins.unpack_mask(saved, grad.shape), 1.0, _mask_off(name, a, b))
        return twins.backward(name, grad, saved, a, b)
    if grad.dtype == backend.bfloat16:
        return _in_float32(activation_backward, name, grad, saved, **params)
    cp = backend.cupy_module()
    grad = _contiguous(grad)
    grad_x = cp.empty_like(grad)
    if grad.size:
        # Mask kernels give each thread one mask byte, i.e. 8 elements.
        work_items = _mask_size(grad.size) if name in SAVES_MASK else grad.size
        _launch(cp, f"gg_{name}_backward", grad.dtype, work_items,
                (grad, _contiguous(saved), grad_x, np.int64(grad.size), *_gpu_scalars(a, b)))
    return grad_x


def _check_bias(op, x, bias):
    _check_float(op, x, bias)
    if x.ndim < 1 or bias.ndim != 1 or bias.shape[0] != x.shape[-1]:
        raise ShapeError(f"{op}: bias of shape {tuple(bias.shape)} does not match input of shape "
                         f"{tuple(x.shape)}; bias must be 1-D with x.shape[-1] "
                         f"= {x.shape[-1] if x.ndim else '?'} elements")
    if x.dtype != bias.dtype:
        raise DTypeError(f"{op}: input is {x.dtype} but bias is {bias.dtype}; they must match")
    _check_device(op, x, bias, "the bias")


def bias_activation_forward(name, x, bias, **params):
    """Fused ``act(x + bias)`` for Linear layers, bias broadcast over the last axis.

    ``x + bias`` is formed in the compute precision (float32 for float16
    inputs) and never stored, so nothing but the activation's own ``saved``
    stays alive.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    x : array
        Shape ``(..., C)``, float16/32/64.
    bias : array
        Shape ``(C,)``, same dtype and device as ``x``.
    **params
        As for :func:`activation_forward`.

    Returns
    -------
    y : array
        ``act(x + bias)``, C-contiguous.
    saved : object
        Opaque; pass to :func:`bias_activation_backward`.  A packed mask for
        :data:`SAVES_MASK`, ``y`` for :data:`SAVES_OUTPUT`, else the tuple
        ``(x, bias)`` from which backward recomputes ``x + bias``.

    Examples
    --------
    >>> y, saved = bias_activation_forward("relu", np.array([[1.0, -1.0]]), np.array([-2.0, 2.0]))
    >>> y
    array([[0., 1.]])
    """
    _check_name(name)
    a, b = _params(name, params)
    op = f"{name} with bias"
    _check_bias(op, x, bias)
    if not backend.is_gpu_array(x):
        z = twins.add_bias(x, bias)
        y = twins.forward(name, z, a, b, compute=True, out_dtype=x.dtype)
        if name in SAVES_MASK:
            return y, twins.pack_mask(twins.mask(name, z, a, b, compute=True))
        return y, (y if name in SAVES_OUTPUT else (x, bias))
    if x.dtype == backend.bfloat16:
        return _in_float32(bias_activation_forward, name, x, bias, **params)
    cp = backend.cupy_module()
    x, bias = _contiguous(x), _contiguous(bias)
    y = cp.empty_like(x)
    n, c = np.int64(x.size), np.int64(bias.size)
    if name in SAVES_MASK:
        words = cp.empty(_mask_size(x.size), dtype=cp.uint8)
        if x.size:
            _launch(cp, f"gg_{name}_bias_forward_mask", x.dtype, _mask_size(x.size),
                    (x, bias, y, words, n, c, *_gpu_scalars(a, b)))
        return y, words
    if x.size:
        _launch(cp, f"gg_{name}_bias_forward", x.dtype, x.size, (x, bias, y, n, c, *_gpu_scalars(a, b)))
    return y, (y if name in SAVES_OUTPUT else (x, bias))


def bias_activation_backward(name, grad, saved, sum_bias=True, **params):
    """Gradients of :func:`bias_activation_forward` for ``x`` and ``bias``.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    grad : array
        Gradient with respect to ``y``, shape ``(..., C)``.
    saved : object
        The ``saved`` returned by the forward.
    sum_bias : bool
        Whether to return ``grad_bias`` (None otherwise: a caller that sums
        ``grad_x`` itself skips the reduction).
    **params
        The parameters the forward used.

    Returns
    -------
    grad_x : array
        Same shape and dtype as ``grad``.
    grad_bias : array or None
        Shape ``(C,)``: ``grad_x`` summed over every axis but the last
        (accumulated in float32 for float16).

    Examples
    --------
    >>> y, saved = bias_activation_forward("relu", np.array([[1.0, -1.0]]), np.array([-2.0, 2.0]))
    >>> bias_activation_backward("relu", np.ones((1, 2)), saved)
    (array([[0., 1.]]), array([0., 1.]))
    """
    _check_name(name)
    a, b = _params(name, params)
    _check_float(name, grad)
    if grad.ndim < 1:
        raise ShapeError(f"{name} with bias backward: gradient must have at least one axis")
    if backend.is_gpu_array(grad) and grad.dtype == backend.bfloat16:
        return _in_float32(bias_activation_backward, name, grad, saved, **params)
    if name in SAVES_INPUT:
        x, bias = saved
        _check_same(f"{name} with bias backward", grad, x, "the saved input")
        if backend.is_gpu_array(grad):
            cp = backend.cupy_module()
            grad, x, bias = _contiguous(grad), _contiguous(x), _contiguous(bias)
            grad_x = cp.empty_like(grad)
            if grad.size:
                _launch(cp, f"gg_{name}_bias_backward", grad.dtype, grad.size,
                        (grad, x, bias, grad_x, np.int64(grad.size), np.int64(bias.size),
                         *_gpu_scalars(a, b)))
        else:
            z = twins.add_bias(x, bias)
            grad_x = twins.backward(name, grad, z, a, b, compute=True)
    else:
        grad_x = activation_backward(name, grad, saved, **params)
    return grad_x, (_sum_leading(grad_x) if sum_bias else None)


def _sum_leading(grad_x):
    # float16 sums in float32: thousands of rows would otherwise lose the bias
    # gradient to rounding.
    flat = grad_x.reshape(-1, grad_x.shape[-1])
    with np.errstate(over="ignore"):
        return flat.sum(axis=0, dtype=twins.compute_dtype(grad_x.dtype)).astype(grad_x.dtype)


def dropout_forward(x, p, generator):
    """Inverted dropout: zero each element with probability ``p``, scale the rest.

    Parameters
    ----------
    x : array
        float16/32/64, any shape and strides.
    p : float
        Drop probability in ``[0, 1]``.  ``p == 1`` gives zeros.
    generator : numpy.random.Generator or cupy.random.Generator
        Source of the uniforms (``gpugrad.backend.generator(device)``), so
        ``gg.manual_seed`` makes dropout reproducible.

    Returns
    -------
    y : array
        ``x / (1 - p)`` where kept, 0 where dropped (a select: a dropped NaN
        gives 0).
    mask_words : array
        uint8 bit mask of kept elements (``packbits(..., bitorder='little')``).

    Examples
    --------
    >>> y, mask = dropout_forward(np.ones(4), 0.5, np.random.default_rng(0))
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """
    p = _check_p(p)
    _check_float("dropout", x)
    scale = _dropout_scale(p)
    if not backend.is_gpu_array(x):
        uniform = generator.random(x.size, dtype=np.float32)
        return twins.dropout_forward(x, uniform.reshape(x.shape), p, scale)
    if x.dtype == backend.bfloat16:
        return _in_float32(dropout_forward, x, p, generator)
    cp = backend.cupy_module()
    x = _contiguous(x)
    y = cp.empty_like(x)
    words = cp.empty(_mask_size(x.size), dtype=cp.uint8)
    if x.size:
        uniform = generator.random(x.size, dtype=cp.float32)
        _launch(cp, "gg_dropout_forward", x.dtype, _mask_size(x.size),
                (x, uniform, y, words, np.int64(x.size), np.float64(p), np.float64(scale)))
    return y, words


def dropout_backward(grad, mask_words, p):
    """Gradient of :func:`dropout_forward`: ``grad / (1 - p)`` where kept, else 0.

    Parameters
    ----------
    grad : array
        Gradient with respect to ``y``.
    mask_words : array
        The mask the forward returned.
    p : float
        The drop probability the forward used.

    Returns
    -------
    grad_x : array
        Same shape and dtype as ``grad``.

    Examples
    --------
    >>> dropout_backward(np.ones(3), pack_mask(np.array([True, False, True])), 0.5)
    array([2., 0., 2.])
    """
    p = _check_p(p)
    _check_float("dropout backward", grad)
    _check_mask("dropout backward", mask_words, grad.size)
    # Before any launch: a host mask handed to the kernel is an illegal address
    # that poisons the CUDA context (and a mask on another GPU reads garbage).
    if backend.device_of(grad) != backend.device_of(mask_words):
        raise DeviceError(f"dropout backward: the gradient is on {backend.device_of(grad)} but the mask is "
                          f"on {backend.device_of(mask_words)}; keep the mask dropout_forward returned "
                          "on the gradient's device")
    scale = _dropout_scale(p)
    if not backend.is_gpu_array(grad):
        return twins.mask_backward(grad, twins.unpack_mask(mask_words, grad.shape), scale, 0.0)
    if grad.dtype == backend.bfloat16:
        return _in_float32(dropout_backward, grad, mask_words, p)
    cp = backend.cupy_module()
    grad = _contiguous(grad)
    grad_x = cp.empty_like(grad)
    if grad.size:
        _launch(cp, "gg_dropout_backward", grad.dtype, _mask_size(grad.size),
                (grad, _contiguous(mask_words), grad_x, np.int64(grad.size),
                 np.float64(scale), np.float64(0.0)))
    return grad_x


def _check_p(p):
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p={p} is outside [0, 1]")
    return p


def _dropout_scale(p):
    return 0.0 if p == 1.0 else 1.0 / (1.0 - p)


def pack_mask(bool_array):
    """Pack booleans into uint8 words, 8 per byte, little bit order.

    Same layout as ``numpy.packbits(a.ravel(), bitorder='little')``: element
    ``8*w + j`` of the C-order flattening is bit ``j`` of byte ``w``.

    Parameters
    ----------
    bool_array : array of bool
        Any shape, NumPy or CuPy.

    Returns
    -------
    words : array of uint8
        Shape ``(ceil(n / 8),)``, on the same device.

    Examples
    --------
    >>> pack_mask(np.array([True, False, False, True]))
    array([9], dtype=uint8)
    """
    if not backend.is_gpu_array(bool_array):
        return twins.pack_mask(np.asarray(bool_array, dtype=bool))
    cp = backend.cupy_module()
    flags = _contiguous(bool_array.astype(cp.bool_, copy=False)).view(cp.uint8).ravel()
    words = cp.empty(_mask_size(flags.size), dtype=cp.uint8)
    if flags.size:
        _launch(cp, "gg_pack_mask", None, words.size, (flags, words, np.int64(flags.size)))
    return words


def unpack_mask(words, shape):
    """Inverse of :func:`pack_mask`.

    Parameters
    ----------
    words : array of uint8
        Packed mask.
    shape : tuple of int
        Shape of the boolean array to rebuild.

    Returns
    -------
    array of bool
        C-contiguous, ``shape``, same device as ``words``.

    Examples
    --------
    >>> unpack_mask(np.array([9], dtype=np.uint8), (2, 2))
    array([[ True, False],
           [False,  True]])
    """
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    n = int(np.prod(shape, dtype=np.int64))
    _check_mask("unpack_mask", words, n)
    if not backend.is_gpu_array(words):
        return twins.unpack_mask(words, shape)
    cp = backend.cupy_module()
    flags = cp.empty(shape, dtype=cp.bool_)
    if n:
        _launch(cp, "gg_unpack_mask", None, n,
                (_contiguous(words), flags.view(cp.uint8), np.int64(n)))
    return flags


def saved_bytes_per_element(name, dtype):
    """Bytes per element that backward keeps alive for ``name``.

    Compare with ``numpy.dtype(dtype).itemsize``, the cost of saving the input:
    relu, leaky_relu and dropout keep 1/8 byte; sigmoid and tanh keep their
    output (itemsize, but an array the graph usually holds anyway); the others
    keep their input.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS` or ``"dropout"``.
    dtype : dtype-like
        The activation's dtype.

    Returns
    -------
    float

    Examples
    --------
    >>> saved_bytes_per_element("relu", np.float32), np.dtype(np.float32).itemsize
    (0.125, 4)
    """
    _check_name(name, ACTIVATIONS + ("dropout",))
    if name in SAVES_MASK or name == "dropout":
        return 1.0 / 8.0
    return float(np.dtype(dtype).itemsize)

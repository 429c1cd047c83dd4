"""Convolution and pooling: conv2d (conv1d is conv2d with a height of 1), max/avg pooling.

How convolution runs: im2col through one strided view of the (padded) input,
``(N, C, kh, kw, Ho, Wo)``, copied once into columns, then one batched matmul
with the weight.  No Python loop visits pixels; the only loops run over the
``kh * kw`` kernel offsets (col2im's strided slice-adds).

Convolution is bilinear, so three primitives close under differentiation::

    conv2d(x, w)                    out
    conv2d_input_grad(g, w)         the transposed convolution: d out / d x
    conv2d_weight_grad(x, g)        d out / d w

and each one's VJP is written with the other two, so ``create_graph=True``
differentiates any of them again.  Pooling works the same way with pairs:
max_pool2d -> (max_pool2d_scatter, max_pool2d_gather) sharing the argmax,
avg_pool2d <-> avg_pool2d_backward.

Parameters reach the primitives normalised: ``stride=(sh, sw)``,
``padding=((top, bottom), (left, right))``, ``dilation=(dh, dw)``.
"""

from __future__ import annotations

import numpy as np

from ..backend import is_floating
from ..backend import xp_of as _xp
from ..backends import convolution_precision
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .low_precision import in_float32_for_low_precision
from .registry import defop
from .samples import Distinct, Ints, Sample


def _raw(value):
    return value.array if isinstance(value, Tensor) else value


def _as_strided(array):
    xp = _xp(array)
    return xp.lib.stride_tricks.as_strided


def out_size(size, kernel, stride, pad_before, pad_after, dilation):
    """Output length of a convolution along one axis."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def _pad2d(x, padding, value=0.0):
    """``x`` with constant padding on its last two axes (no copy when there is none)."""
    (top, bottom), (left, right) = padding
    if not (top or bottom or left or right):
        return x
    xp = _xp(x)
    n, c, h, w = x.shape
    shape = (n, c, h + top + bottom, w + left + right)
    padded = xp.zeros(shape, dtype=x.dtype) if value == 0 else xp.full(shape, value, dtype=x.dtype)
    padded[:, :, top:top + h, left:left + w] = x
    return padded


def _windows(padded, kernel, stride, dilation, out_hw):
    """A read-only strided view ``(N, C, kh, kw, Ho, Wo)`` of every window."""
    n, c = padded.shape[:2]
    s_n, s_c, s_h, s_w = padded.strides
    kh, kw = kernel
    shape = (n, c, kh, kw, out_hw[0], out_hw[1])
    strides = (s_n, s_c, s_h * dilation[0], s_w * dilation[1], s_h * stride[0], s_w * stride[1])
    if type(padded) is np.ndarray:
        return np.lib.stride_tricks.as_strided(padded, shape=shape, strides=strides, writeable=False)
    return _as_strided(padded)(padded, shape=shape, strides=strides)     # CuPy: no writeable flag


def _offset_view(array, i, j, stride, dilation, out_hw):
    """The (Ho, Wo) positions that kernel offset (i, j) reads, as a basic-slice view."""
    top, left = i * dilation[0], j * dilation[1]
    return array[:, :, top:top + stride[0] * (out_hw[0] - 1) + 1:stride[0],
                 left:left + stride[1] * (out_hw[1] - 1) + 1:stride[1]]


def _columns(x, kernel, stride, padding, dilation, groups):
    """im2col: ``(N, G, Cg*kh*kw, Ho*Wo)`` columns and ``(Ho, Wo)``."""
    n, c, h, w = x.shape
    out_hw = (out_size(h, kernel[0], stride[0], *padding[0], dilation[0]),
              out_size(w, kernel[1], stride[1], *padding[1], dilation[1]))
    if kernel == (1, 1) and stride == (1, 1) and not any(padding[0] + padding[1]):
        return x.reshape(n, groups, c // groups, h * w), out_hw
    windows = _windows(_pad2d(x, padding), kernel, stride, dilation, out_hw)
    # NOTE: reshape of the strided view is the one im2col copy (C-order, contiguous).
    cols = windows.reshape(n, groups, (c // groups) * kernel[0] * kernel[1], out_hw[0] * out_hw[1])
    return cols, out_hw


@convolution_precision       # cudnn.allow_tf32 (cross-owner hook)
@in_float32_for_low_precision    # bfloat16: the GEMMs accumulate in float32 and round once
def _conv2d_forward(x, weight, stride, padding, dilation, groups):
    xp = _xp(x)
    n = x.shape[0]
    out_channels, _, kh, kw = weight.shape
    cols, (ho, wo) = _columns(x, (kh, kw), stride, padding, dilation, groups)
    kernel = weight.reshape(groups, out_channels // groups, -1)
    out = xp.matmul(kernel, cols)                  # (N, G, O/G, Ho*Wo), contiguous
    return out.reshape(n, out_channels, ho, wo)


@convolution_precision
@in_float32_for_low_precision
def _conv2d_input_grad_forward(g, weight, input_shape, stride, padding, dilation, groups):
    xp = _xp(g)
    n, c, h, w = input_shape
    out_channels, _, kh, kw = weight.shape
    ho, wo = g.shape[2], g.shape[3]
    (top, bottom), (left, right) = padding
    padded = xp.zeros((n, c, h + top + bottom, w + left + right), dtype=g.dtype)
    if groups == 1:
        # col2im one kernel offset at a time: W[:, :, i, j]^T @ g, (N, C, Ho*Wo), added
        # where offset (i, j) reads; the (N, C*kh*kw, Ho*Wo) columns never exist at
        # once (kh*kw times the input's size: the peak of a conv's backward).
        grad = g.reshape(n, out_channels, ho * wo)
        taps = xp.ascontiguousarray(weight.transpose(2, 3, 1, 0))     # (kh, kw, C, O)
        part = xp.empty((n, c, ho * wo), dtype=xp.result_type(taps, grad))
        for i in range(kh):
            for j in range(kw):
                xp.matmul(taps[i, j], grad, out=part)
                _offset_view(padded, i, j, stride, dilation, (ho, wo))[...] += part.reshape(n, c, ho, wo)
    else:
        kernel = weight.reshape(groups, out_channels // groups, -1)
        grad_cols = xp.matmul(kernel.transpose(0, 2, 1), g.reshape(n, groups, out_channels // groups, ho * wo))
        grad_cols = grad_cols.reshape(n, c, kh, kw, ho, wo)
        # col2im: one strided slice-add per kernel offset (overlapping windows accumulate).
        for i in range(kh):
            for j in range(kw):
                _offset_view(padded, i, j, stride, dilation, (ho, wo))[...] += grad_cols[:, :, i, j]
    if top or bottom or left or right:
        return padded[:, :, top:top + h, left:left + w].copy()
    return padded


@convolution_precision
@in_float32_for_low_precision
def _conv2d_weight_grad_forward(x, g, weight_shape, stride, padding, dilation, groups):
    xp = _xp(x)
    n = x.shape[0]
    out_channels, _, kh, kw = weight_shape
    if groups == 1:
        # One GEMM, (O, N*Ho*Wo) @ (N*Ho*Wo, C*kh*kw), with the columns built
        # straight in the (C*kh*kw, N*Ho*Wo) layout it reads (one im2col copy, and
        # g's small transpose): tensordot would copy both operands again.
        ho, wo = g.shape[2], g.shape[3]
        windows = _windows(_pad2d(x, padding), (kh, kw), stride, dilation, (ho, wo))
        cols = windows.transpose(1, 2, 3, 0, 4, 5).reshape(-1, n * ho * wo)
        grad = g.transpose(1, 0, 2, 3).reshape(out_channels, n * ho * wo)
        return xp.matmul(grad, cols.T).reshape(weight_shape).astype(g.dtype, copy=False)
    cols, (ho, wo) = _columns(x, (kh, kw), stride, padding, dilation, groups)
    grad = g.reshape(n, groups, out_channels // groups, ho * wo)
    result = xp.einsum("ngol,ngkl->gok", grad, cols)
    return result.reshape(weight_shape).astype(g.dtype, copy=False)


_CONV_PARAMS = ("stride", "padding", "dilation", "groups")


def _check_conv2d(x, weight, stride, padding, dilation, groups):
    if not (is_floating(x.dtype) and is_floating(weight.dtype)):
        raise DTypeError(f"conv2d: input and weight must be floating point, got {x.dtype} and {weight.dtype}; "
                         "convert with .float()")
    if x.ndim != 4 or weight.ndim != 4:
        raise ShapeError(f"conv2d: expected a 4-D input (N, C, H, W) and a 4-D weight (O, C/groups, kh, kw), got "
                         f"shapes {tuple(x.shape)} and {tuple(weight.shape)}")
    c, o = x.shape[1], weight.shape[0]
    if groups < 1 or c % groups or o % groups:
        raise ShapeError(f"conv2d: groups={groups} must divide both the input channels ({c}) and the output "
                         f"channels ({o})")
    if weight.shape[1] * groups != c:
        raise ShapeError(f"conv2d: input of shape {tuple(x.shape)} has {c} channels but weight of shape "
                         f"{tuple(weight.shape)} expects {weight.shape[1]} x groups={groups} = "
                         f"{weight.shape[1] * groups}; the input's dim 1 must equal weight.shape[1] * groups")
    for axis, name in ((0, "height"), (1, "width")):
        size = x.shape[2 + axis] + sum(padding[axis])
        extent = dilation[axis] * (weight.shape[2 + axis] - 1) + 1
        if extent > size:
            raise ShapeError(f"conv2d: kernel {name} {weight.shape[2 + axis]} (dilated extent {extent}) is larger "
                             f"than the padded input {name} {size} (input {tuple(x.shape)}, padding "
                             f"{padding[axis]}); use a smaller kernel or more padding")


conv2d = defop(
    "conv2d", _conv2d_forward,
    vjp=(lambda g, out, x, weight, **p: conv2d_input_grad(g, weight, input_shape=tuple(x.shape), **p),
         lambda g, out, x, weight, **p: conv2d_weight_grad(x, g, weight_shape=tuple(weight.shape), **p)),
    jvp=lambda t, out, x, weight, **p: conv2d(t[0], weight, **p) + conv2d(x, t[1], **p),
    promote=True, check=_check_conv2d,
    samples=[Sample((2, 3, 5, 5), (4, 3, 3, 3), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1),
             Sample((2, 2, 6, 5), (3, 2, 2, 3), stride=(2, 1), padding=((1, 1), (2, 0)), dilation=(1, 1), groups=1),
             Sample((1, 4, 7, 7), (4, 2, 3, 2), stride=(2, 2), padding=((1, 1), (1, 1)), dilation=(2, 1), groups=2),
             Sample((2, 2, 4, 4), (2, 1, 1, 1), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=2)],
    reference=lambda x, weight, **p: _reference_conv2d(x, weight, **p),
    doc="""2-D cross-correlation of ``(N, C_in, H, W)`` input with ``(C_out, C_in / groups, kH, kW)`` weight (no
    bias).

    PyTorch: ``torch.nn.functional.conv2d(input, weight, stride=stride, padding=..., dilation=dilation,
    groups=groups)``; here padding is ``((top, bottom), (left, right))``.

    Parameters
    ----------
    input, weight : Tensor
    stride, dilation : tuple of int
    padding : tuple of (int, int)
    groups : int
    """)

conv2d_input_grad = defop(
    "conv2d_input_grad", _conv2d_input_grad_forward,
    vjp=(lambda u, out, g, weight, input_shape, **p: conv2d(u, weight, **p),
         lambda u, out, g, weight, input_shape, **p: conv2d_weight_grad(u, g, weight_shape=tuple(weight.shape), **p)),
    jvp=lambda t, out, g, weight, input_shape, **p: (conv2d_input_grad(t[0], weight, input_shape=input_shape, **p)
                                                     + conv2d_input_grad(g, t[1], input_shape=input_shape, **p)),
    promote=True,
    samples=[Sample((2, 4, 3, 3), (4, 3, 3, 3), input_shape=(2, 3, 5, 5), stride=(1, 1), padding=((0, 0), (0, 0)),
                    dilation=(1, 1), groups=1),
             Sample((1, 4, 3, 4), (4, 2, 3, 2), input_shape=(1, 4, 7, 7), stride=(2, 2), padding=((1, 1), (1, 1)),
                    dilation=(2, 1), groups=2)],
    reference=lambda g, weight, input_shape, **p: _reference_conv2d_input_grad(g, weight, input_shape, **p),
    doc="""The gradient of :func:`conv2d` with respect to its input (a transposed convolution of ``g``).

    PyTorch: ``torch.nn.grad.conv2d_input``.

    Parameters
    ----------
    g : Tensor
        The output's gradient.
    weight : Tensor
    input_shape : tuple of int
    stride, padding, dilation, groups
        As in :func:`conv2d`.
    """)

conv2d_weight_grad = defop(
    "conv2d_weight_grad", _conv2d_weight_grad_forward,
    vjp=(lambda v, out, x, g, weight_shape, **p: conv2d_input_grad(g, v, input_shape=tuple(x.shape), **p),
         lambda v, out, x, g, weight_shape, **p: conv2d(x, v, **p)),
    jvp=lambda t, out, x, g, weight_shape, **p: (conv2d_weight_grad(t[0], g, weight_shape=weight_shape, **p)
                                                 + conv2d_weight_grad(x, t[1], weight_shape=weight_shape, **p)),
    promote=True,
    samples=[Sample((2, 3, 5, 5), (2, 4, 3, 3), weight_shape=(4, 3, 3, 3), stride=(1, 1),
                    padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1),
             Sample((1, 4, 7, 7), (1, 4, 3, 4), weight_shape=(4, 2, 3, 2), stride=(2, 2),
                    padding=((1, 1), (1, 1)), dilation=(2, 1), groups=2)],
    reference=lambda x, g, weight_shape, **p: _reference_conv2d_weight_grad(x, g, weight_shape, **p),
    doc="""The gradient of :func:`conv2d` with respect to its weight.

    PyTorch: ``torch.nn.grad.conv2d_weight``.

    Parameters
    ----------
    input : Tensor
    g : Tensor
        The output's gradient.
    weight_shape : tuple of int
    stride, padding, dilation, groups
        As in :func:`conv2d`.
    """)


# --------------------------------------------------------------------------
# Independent NumPy references (explicit loops over output positions; test-size only).
# --------------------------------------------------------------------------
def _reference_conv2d(x, weight, stride, padding, dilation, groups):
    x = np.pad(x, ((0, 0), (0, 0)) + tuple(padding))
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for oc in range(o):
        group = oc // og
        for r in range(ho):
            for s in range(wo):
                patch = x[:, group * cg:(group + 1) * cg,
                          r * stride[0]:r * stride[0] + dilation[0] * (kh - 1) + 1:dilation[0],
                          s * stride[1]:s * stride[1] + dilation[1] * (kw - 1) + 1:dilation[1]]
                out[:, oc, r, s] = np.sum(patch * weight[oc], axis=(1, 2, 3))
    return out


def _reference_linear_grad(shape, conv_of, g):
    """The gradient ``sum(conv_of(a) * g)`` by ``a`` for ``conv_of`` linear in ``a``:
    its value at each unit basis array."""
    basis = np.zeros(shape)
    result = np.zeros(shape)
    for index in np.ndindex(*shape):
        basis[index] = 1.0
        result[index] = np.sum(conv_of(basis) * g)
        basis[index] = 0.0
    return result


def _reference_conv2d_input_grad(g, weight, input_shape, stride, padding, dilation, groups):
    return _reference_linear_grad(
        input_shape, lambda x: _reference_conv2d(x, weight, stride, padding, dilation, groups), g)


def _reference_conv2d_weight_grad(x, g, weight_shape, stride, padding, dilation, groups):
    return _reference_linear_grad(
        weight_shape, lambda weight: _reference_conv2d(x, weight, stride, padding, dilation, groups), g)


# --------------------------------------------------------------------------
# Pooling.  Sizes follow PyTorch, ceil_mode included: a last window may hang
# over the right edge but must start inside the input or the left padding.
# --------------------------------------------------------------------------
def pool_out_size(size, kernel, stride, pad, dilation, ceil_mode):
    """Output length of a pooling window along one axis (PyTorch's formula)."""
    extent = dilation * (kernel - 1) + 1
    span = size + 2 * pad - extent
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pool_geometry(shape, kernel, stride, padding, dilation, ceil_mode):
    """((Ho, Wo), padding ((top, bottom), (left, right)) that covers every window)."""
    out_hw, pads = [], []
    for axis in range(2):
        size = shape[2 + axis]
        n_out = pool_out_size(size, kernel[axis], stride[axis], padding[axis], dilation[axis], ceil_mode)
        needed = (n_out - 1) * stride[axis] + dilation[axis] * (kernel[axis] - 1) + 1
        pads.append((padding[axis], max(0, needed - size - padding[axis])))
        out_hw.append(n_out)
    return tuple(out_hw), tuple(pads)


def _max_pool2d_argmax(x, kernel, stride, padding, dilation, ceil_mode, out=None):
    """(max, winning kernel offset i*kw+j) per window; the first max wins ties, like PyTorch.

    NOTE: written with comparisons, bool logic and multiplies only: NumPy's
    ``where``/``putmask`` with an irregular mask run ~50x slower than a
    multiply here (branchy, not vectorised), and pooling after a ReLU is all ties.
    """
    xp = _xp(x)
    if out is None:
        out = _max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
    out_hw, pads = _pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
    padded = _pad2d(x, pads, value=-np.inf)
    code_dtype = np.int8 if kernel[0] * kernel[1] < 128 else np.int32
    winner = xp.zeros(out.shape, dtype=code_dtype)
    taken = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            hit = _offset_view(padded, i, j, stride, dilation, out_hw) == out
            if taken is None:
                taken = hit
                continue
            hit &= ~taken
            taken |= hit
            code = i * kernel[1] + j
            winner += hit.astype(code_dtype) * code_dtype(code)
    return out, winner


def _max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    xp = _xp(x)
    out_hw, pads = _pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
    padded = _pad2d(x, pads, value=-np.inf)
    best = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            view = _offset_view(padded, i, j, stride, dilation, out_hw)
            if best is None:
                best = view.copy()
            else:
                xp.maximum(best, view, out=best)
    return best


def _max_pool_winner(x, out, **p):
    return _max_pool2d_argmax(_raw(x), out=_raw(out), **p)[1]


def _scatter_forward(g, winner, input_shape, kernel, stride, padding, dilation, ceil_mode):
    """Route each window's gradient to its winning input position."""
    xp = _xp(g)
    out_hw, pads = _pool_geometry(input_shape, kernel, stride, padding, dilation, ceil_mode)
    n, c, h, w = input_shape
    (top, bottom), (left, right) = pads
    padded = xp.zeros((n, c, h + top + bottom, w + left + right), dtype=g.dtype)
    overlapping = stride[0] < dilation[0] * (kernel[0] - 1) + 1 or stride[1] < dilation[1] * (kernel[1] - 1) + 1
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            # NOTE: a multiply, not where(): see _max_pool2d_argmax.
            hit = winner == i * kernel[1] + j
            view = _offset_view(padded, i, j, stride, dilation, out_hw)
            if overlapping:
                view += g * hit
            else:
                xp.multiply(g, hit, out=view)
    if top or bottom or left or right:
        return padded[:, :, top:top + h, left:left + w].copy()
    return padded


def _gather_forward(u, winner, kernel, stride, padding, dilation, ceil_mode):
    """Each window's value of ``u`` at its winning position (the adjoint of the scatter)."""
    xp = _xp(u)
    out_hw, pads = _pool_geometry(u.shape, kernel, stride, padding, dilation, ceil_mode)
    padded = _pad2d(u, pads)
    result = xp.zeros(u.shape[:2] + out_hw, dtype=u.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            view = _offset_view(padded, i, j, stride, dilation, out_hw)
            result += xp.where(winner == i * kernel[1] + j, view, xp.zeros((), dtype=u.dtype))
    return result


_POOL_PARAMS = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)
_POOL_PARAMS_2 = dict(kernel=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=True)


def _check_pool_shape(name, shape, kernel, stride, padding, dilation, ceil_mode):
    if len(shape) != 4:
        raise ShapeError(f"{name}: expected a 4-D input (N, C, H, W), got shape {tuple(shape)}")
    for axis in range(2):
        if stride[axis] < 1 or kernel[axis] < 1 or dilation[axis] < 1:
            raise ShapeError(f"{name}: kernel {kernel}, stride {stride} and dilation {dilation} must be >= 1")
        if padding[axis] < 0 or 2 * padding[axis] > kernel[axis]:
            raise ShapeError(f"{name}: padding {padding} must be >= 0 and at most half the kernel {kernel}")
        if pool_out_size(shape[2 + axis], kernel[axis], stride[axis], padding[axis], dilation[axis],
                         ceil_mode) < 1:
            raise ShapeError(f"{name}: kernel {kernel} (dilation {dilation}) is larger than the padded input "
                             f"of shape {tuple(shape)} with padding {padding}; the output would be empty")


def _check_max_pool(x, kernel, stride, padding, dilation, ceil_mode):
    _check_pool_shape("max_pool2d", x.shape, kernel, stride, padding, dilation, ceil_mode)


def _check_avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad=True, divisor_override=None):
    _check_pool_shape("avg_pool2d", x.shape, kernel, stride, padding, (1, 1), ceil_mode)


max_pool2d = defop(
    "max_pool2d", _max_pool2d_forward,
    vjp=(lambda g, out, x, **p: max_pool2d_scatter(g, _max_pool_winner(x, out, **p), input_shape=tuple(x.shape),
                                                   **p),),
    jvp=lambda t, out, x, **p: max_pool2d_gather(t[0], _max_pool_winner(x, out, **p), **p),
    save_output=True, check=_check_max_pool,
    samples=[Sample(Distinct((2, 3, 4, 6)), **_POOL_PARAMS), Sample(Distinct((1, 2, 5, 6)), **_POOL_PARAMS_2),
             Sample(Distinct((1, 2, 5, 5)), kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1),
                    ceil_mode=False)],
    reference=lambda x, **p: _reference_pool(x, np.max, -np.inf, **p),
    doc="""2-D max pooling of ``(N, C, H, W)`` input over ``kernel`` windows.

    PyTorch: ``torch.nn.functional.max_pool2d(input, kernel, stride, padding, dilation, ceil_mode)``.

    Parameters
    ----------
    input : Tensor
    kernel, stride, padding, dilation : tuple of int
    ceil_mode : bool
    """)

max_pool2d_scatter = defop(
    "max_pool2d_scatter", _scatter_forward,
    vjp=(lambda u, out, g, winner, input_shape, **p: max_pool2d_gather(u, winner, **p), None),
    jvp=lambda t, out, g, winner, input_shape, **p: max_pool2d_scatter(t[0], winner, input_shape=input_shape, **p),
    save=(1,),
    samples=[Sample((2, 3, 2, 3), Ints((2, 3, 2, 3), 0, 4), input_shape=(2, 3, 4, 6), **_POOL_PARAMS),
             Sample((1, 2, 3, 6), Ints((1, 2, 3, 6), 0, 6), input_shape=(1, 2, 5, 6), **_POOL_PARAMS_2)],
    reference=lambda g, winner, input_shape, **p: _reference_scatter(g, winner, input_shape, **p),
    doc="""The gradient of :func:`max_pool2d`: each output gradient added at its window's winner.

    PyTorch: ``torch.ops.aten.max_pool2d_with_indices_backward``.

    Parameters
    ----------
    g : Tensor
    winner : Tensor of int64
        Position of each window's maximum.
    input_shape : tuple of int
    kernel, stride, padding, dilation, ceil_mode
        As in :func:`max_pool2d`.
    """)

max_pool2d_gather = defop(
    "max_pool2d_gather", _gather_forward,
    vjp=(lambda g, out, u, winner, **p: max_pool2d_scatter(g, winner, input_shape=tuple(u.shape), **p), None),
    jvp=lambda t, out, u, winner, **p: max_pool2d_gather(t[0], winner, **p),
    save=(1,),
    samples=[Sample((2, 3, 4, 6), Ints((2, 3, 2, 3), 0, 4), **_POOL_PARAMS),
             Sample((1, 2, 5, 6), Ints((1, 2, 3, 6), 0, 6), **_POOL_PARAMS_2)],
    reference=lambda u, winner, **p: _reference_gather(u, winner, **p),
    doc="""The values at each window's winner (the forward-mode and second-order companion of
    :func:`max_pool2d_scatter`).

    PyTorch: no public equivalent.

    Parameters
    ----------
    input : Tensor
    winner : Tensor of int64
    kernel, stride, padding, dilation, ceil_mode
        As in :func:`max_pool2d`.
    """)


def max_pool2d_keeping_winner(x, kernel, stride, padding, dilation, ceil_mode):
    """:func:`max_pool2d` of Tensor ``x`` whose node keeps the winners, not ``x``.

    The max and each window's winning offset (int8 for kernels under 128
    values, a quarter of the output's float32 bytes) come out of one forward
    pass; the node recorded is max_pool2d_gather's (the output *is* the
    gather of ``x`` at the winners, and its VJP is the scatter that
    max_pool2d's backward runs), with ``x`` unsaved: backward never reads
    the input again, so the tape does not keep the pre-pool activation alive
    (after a GELU, nothing else holds it).  Forward mode, anomaly mode and
    inputs without a gradient take the plain op.

    Examples
    --------
    >>> import gpugrad as gg
    >>> x = gg.arange(16.0).reshape(1, 1, 4, 4).requires_grad_()
    >>> y = max_pool2d_keeping_winner(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
    ...                               ceil_mode=False)
    >>> y.sum().backward()
    >>> y.array.ravel().tolist(), int(x.grad.sum())
    ([5.0, 7.0, 13.0, 15.0], 4)
    """
    from ..autograd.tape import state
    from .registry import record

    params = {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
    if not (x.requires_grad and state.grad_enabled) or x._tangents is not None or state.anomaly:
        return max_pool2d(x, **params)
    _check_max_pool(x, **params)
    out, winner = _max_pool2d_argmax(x.array, **params)
    result = Tensor._make(out)
    record(max_pool2d_gather.op, (x, winner), [x.array, winner], params, result, save=(1,))
    return result


def _pool_divisor(shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, xp, dtype):
    """Per-window divisor (Ho, Wo) exactly as PyTorch counts it."""
    if divisor_override:
        return xp.asarray(float(divisor_override), dtype=dtype)
    counts = []
    for axis in range(2):
        size, k, s, p = shape[2 + axis], kernel[axis], stride[axis], padding[axis]
        n_out = pool_out_size(size, k, s, p, 1, ceil_mode)
        start = np.arange(n_out) * s - p
        end = np.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append((end - start).astype(np.float64))
    return xp.asarray(np.outer(counts[0], counts[1]), dtype=dtype)


def _avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad=True, divisor_override=None):
    xp = _xp(x)
    dilation = (1, 1)
    out_hw, pads = _pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
    padded = _pad2d(x, pads)
    total = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            view = _offset_view(padded, i, j, stride, dilation, out_hw)
            total = view.copy() if total is None else xp.add(total, view, out=total)
    total /= _pool_divisor(x.shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override,
                           xp, x.dtype)
    return total


def _avg_pool2d_backward_forward(g, input_shape, kernel, stride, padding, ceil_mode, count_include_pad=True,
                                 divisor_override=None):
    xp = _xp(g)
    dilation = (1, 1)
    out_hw, pads = _pool_geometry(input_shape, kernel, stride, padding, dilation, ceil_mode)
    share = g / _pool_divisor(input_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                              divisor_override, xp, g.dtype)
    n, c, h, w = input_shape
    (top, bottom), (left, right) = pads
    padded = xp.zeros((n, c, h + top + bottom, w + left + right), dtype=g.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            _offset_view(padded, i, j, stride, dilation, out_hw)[...] += share
    if top or bottom or left or right:
        return padded[:, :, top:top + h, left:left + w].copy()
    return padded


_AVG_PARAMS = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False)
_AVG_PARAMS_2 = dict(kernel=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True, count_include_pad=False)
_AVG_PARAMS_3 = dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True, count_include_pad=True)


avg_pool2d = defop(
    "avg_pool2d", _avg_pool2d_forward,
    vjp=(lambda g, out, x, **p: avg_pool2d_backward(g, input_shape=tuple(x.shape), **p),),
    jvp=lambda t, out, x, **p: avg_pool2d(t[0], **p),
    save=(), check=_check_avg_pool,
    samples=[Sample((2, 3, 4, 6), **_AVG_PARAMS), Sample((1, 2, 5, 6), **_AVG_PARAMS_2),
             Sample((1, 2, 5, 5), **_AVG_PARAMS_3)],
    reference=lambda x, **p: _reference_avg_pool(x, **p),
    doc="""2-D average pooling of ``(N, C, H, W)`` input over ``kernel`` windows.

    PyTorch: ``torch.nn.functional.avg_pool2d(input, kernel, stride, padding, ceil_mode, count_include_pad,
    divisor_override)``.

    Parameters
    ----------
    input : Tensor
    kernel, stride, padding : tuple of int
    ceil_mode, count_include_pad : bool
    """)

avg_pool2d_backward = defop(
    "avg_pool2d_backward", _avg_pool2d_backward_forward,
    vjp=(lambda u, out, g, input_shape, **p: avg_pool2d(u, **p),),
    jvp=lambda t, out, g, input_shape, **p: avg_pool2d_backward(t[0], input_shape=input_shape, **p),
    save=(),
    samples=[Sample((2, 3, 2, 3), input_shape=(2, 3, 4, 6), **_AVG_PARAMS),
             Sample((1, 2, 3, 7), input_shape=(1, 2, 5, 6), **_AVG_PARAMS_2)],
    reference=lambda g, input_shape, **p: _reference_adjoint(
        lambda x: _reference_avg_pool(x, **p), g, input_shape),
    doc="""The gradient of :func:`avg_pool2d`: each output gradient spread evenly over its window.

    PyTorch: ``torch.ops.aten.avg_pool2d_backward``.

    Parameters
    ----------
    g : Tensor
    input_shape : tuple of int
    kernel, stride, padding, ceil_mode, count_include_pad
        As in :func:`avg_pool2d`.
    """)


def _reference_windows(x, kernel, stride, padding, dilation, ceil_mode, fill):
    """Every window of x as a list of ((r, s), values, flat positions) (PyTorch's semantics)."""
    n, c, h, w = x.shape
    out = [pool_out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode),
           pool_out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)]
    for r in range(out[0]):
        for s in range(out[1]):
            rows = [r * stride[0] - padding[0] + i * dilation[0] for i in range(kernel[0])]
            cols = [s * stride[1] - padding[1] + j * dilation[1] for j in range(kernel[1])]
            yield (r, s), rows, cols, out


def _reference_pool(x, reduce, fill, kernel, stride, padding, dilation, ceil_mode):
    result = None
    for (r, s), rows, cols, out in _reference_windows(x, kernel, stride, padding, dilation, ceil_mode, fill):
        if result is None:
            result = np.zeros(x.shape[:2] + tuple(out))
        values = [x[:, :, a, b] for a in rows for b in cols if 0 <= a < x.shape[2] and 0 <= b < x.shape[3]]
        result[:, :, r, s] = reduce(np.stack(values, -1), axis=-1)
    return result


def _reference_avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad=True, divisor_override=None):
    result = None
    h, w = x.shape[2:]
    for (r, s), rows, cols, out in _reference_windows(x, kernel, stride, padding, (1, 1), ceil_mode, 0.0):
        if result is None:
            result = np.zeros(x.shape[:2] + tuple(out))
        inside = [x[:, :, a, b] for a in rows for b in cols if 0 <= a < h and 0 <= b < w]
        if divisor_override:
            count = divisor_override
        elif count_include_pad:
            count = (len([a for a in rows if a < h + padding[0]]) * len([b for b in cols if b < w + padding[1]]))
        else:
            count = len(inside)
        result[:, :, r, s] = np.sum(np.stack(inside, -1), axis=-1) / count
    return result


def _reference_scatter(g, winner, input_shape, kernel, stride, padding, dilation, ceil_mode):
    result = np.zeros(input_shape)
    for (r, s), rows, cols, _out in _reference_windows(result, kernel, stride, padding, dilation, ceil_mode, 0):
        for n in range(input_shape[0]):
            for c in range(input_shape[1]):
                k = winner[n, c, r, s]
                a, b = rows[k // kernel[1]], cols[k % kernel[1]]
                if 0 <= a < input_shape[2] and 0 <= b < input_shape[3]:
                    result[n, c, a, b] += g[n, c, r, s]
    return result


def _reference_gather(u, winner, kernel, stride, padding, dilation, ceil_mode):
    result = np.zeros(winner.shape)
    for (r, s), rows, cols, _out in _reference_windows(u, kernel, stride, padding, dilation, ceil_mode, 0):
        for n in range(u.shape[0]):
            for c in range(u.shape[1]):
                k = winner[n, c, r, s]
                a, b = rows[k // kernel[1]], cols[k % kernel[1]]
                if 0 <= a < u.shape[2] and 0 <= b < u.shape[3]:
                    result[n, c, r, s] = u[n, c, a, b]
    return result


def _reference_adjoint(linear, g, input_shape):
    x = np.zeros(input_shape)
    result = np.zeros(input_shape)
    for index in np.ndindex(*input_shape):
        x[index] = 1.0
        result[index] = np.sum(linear(x) * g)
        x[index] = 0.0
    return result


def max_pool2d_indices(x, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's ``return_indices``: flat ``h * W + w`` position of each window's max (int64, raw array)."""
    xp = _xp(x)
    _, winner = _max_pool2d_argmax(x, kernel, stride, padding, dilation, ceil_mode)
    ho, wo = winner.shape[2:]
    winner = winner.astype(np.int64)
    offset_row, offset_col = winner // kernel[1], winner % kernel[1]
    rows = xp.arange(ho).reshape(ho, 1) * stride[0] - padding[0] + offset_row * dilation[0]
    cols = xp.arange(wo).reshape(1, wo) * stride[1] - padding[1] + offset_col * dilation[1]
    return rows * x.shape[3] + cols

"""Normalisation and dropout primitives: batch_norm, layer_norm, dropout.

batch_norm and layer_norm are single primitives with the fused three-term
VJP (one pass of reductions instead of the dozen nodes a composition leaves)::

    dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))
    dw = sum(g * xhat)        db = sum(g)

The rules are written with ops, so they are differentiable again.

dropout is the deterministic op ``x * keep / (1 - p)`` for a given bit-packed
``mask`` (a parameter): drawing the mask is the caller's business
(:func:`gpugrad.ops.dropout.dropout`, through the dropout kernel), which keeps
the op itself checkable, and self-adjoint.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..backend import xp_of as _xp
from ..errors import ShapeError
from .elementwise import clamp, exp, log, maximum, sqrt, where
from .reduce import logsumexp, mean, reduce_sum
from .registry import defop
from .samples import Ints, Positive, Probability, Sample
from .shape import reshape, unsqueeze


# --------------------------------------------------------------------------
# batch_norm (training mode: statistics of the batch)
# --------------------------------------------------------------------------
def _bn_axes(ndim):
    return (0,) + tuple(range(2, ndim))


def _bn_shape(ndim, channels):
    return (1, channels) + (1,) * (ndim - 2)


def channel_sum(a):
    """Sum of a NumPy ``(N, C, ...)`` array over every axis but 1, shaped ``(1, C, 1, ...)``.

    NOTE: axis 0 first, then the trailing axes of the ``(C, ...)`` rest: reducing
    axis 0 adds whole contiguous rows (vectorised), where one reduce over
    ``(0, 2, ...)`` walks the array with a strided inner loop, 4-10x slower at
    the main job's sizes ((100, 16, 40): 17 us against 67 us).

    Examples
    --------
    >>> channel_sum(np.ones((4, 3, 5), dtype=np.float32)).ravel()
    array([20., 20., 20.], dtype=float32)
    """
    partial = np.add.reduce(a, axis=0)
    if partial.ndim > 1:
        partial = np.add.reduce(partial, axis=tuple(range(1, partial.ndim)), keepdims=True)
    return partial[None] if partial.ndim > 1 else partial.reshape(1, -1)


def batch_statistics(x):
    """(mean, biased variance, centred ``x``) of a NumPy ``(N, C, ...)`` array per channel, shaped
    ``(1, C, 1, ...)``: two passes (mean, then mean of squares of the centred values),
    which keep their precision when the mean is large against the spread, as
    E[x^2] - E[x]^2 would not; in ``x``'s dtype, no float64 temporaries.

    Examples
    --------
    >>> x = np.array([[1.0, 10.0], [3.0, 10.0]], dtype=np.float32)
    >>> mean, var, _ = batch_statistics(x)
    >>> mean, var
    (array([[ 2., 10.]], dtype=float32), array([[1., 0.]], dtype=float32))
    """
    count = x.dtype.type(x.size // x.shape[1])
    mean_ = channel_sum(x)
    mean_ /= count
    centred = x - mean_
    var = channel_sum(centred * centred)
    var /= count
    return mean_, var, centred


def _batch_norm_forward(x, weight, bias, eps):
    xp = _xp(x)
    shape = _bn_shape(x.ndim, x.shape[1])
    if xp is np and x.dtype.itemsize > 2:     # float16/bfloat16 take the float32-accumulating path
        mean_, var, centred = batch_statistics(x)
        invstd = 1.0 / np.sqrt(var + x.dtype.type(eps))
        centred *= weight.reshape(shape) * invstd
        centred += bias.reshape(shape)
        # mean and 1/std are what backward needs besides x: kept, not recomputed;
        # the biased variance rides along for the running-statistics update.
        return centred, (mean_, invstd, var)
    axes = _bn_axes(x.ndim)
    centred = x - x.mean(axis=axes, keepdims=True)
    var = xp.mean(centred * centred, axis=axes, keepdims=True)
    centred *= weight.reshape(shape) / xp.sqrt(var + eps)
    centred += bias.reshape(shape)
    return centred, None


def _normalized(x, axes, eps):
    """(xhat, invstd) with ops, for the rules."""
    centred = x - mean(x, axis=axes, keepdims=True)
    invstd = 1.0 / sqrt(mean(centred * centred, axis=axes, keepdims=True) + eps)
    return centred * invstd, invstd


def _norm_input_grad(dxhat, xhat, invstd, axes):
    return invstd * (dxhat - mean(dxhat, axis=axes, keepdims=True)
                     - xhat * mean(dxhat * xhat, axis=axes, keepdims=True))


def _plain_numpy(*arrays):
    # Not float16/bfloat16: those take the general path that widens them.
    return all(array.__class__ is np.ndarray for array in arrays) and arrays[0].dtype.itemsize > 2


def _batch_norm_vjp(g, out, x, weight, bias, eps, residual=None):
    if residual is not None and _plain_numpy(g, x, weight):
        # The three-term rule on raw arrays with the forward's statistics: four
        # full-size passes and two channel sums, in place, no float64 temporaries.
        mean_, invstd = residual[:2]
        count = x.dtype.type(x.size // x.shape[1])
        xhat = x - mean_
        xhat *= invstd
        sum_g = channel_sum(g)
        sum_g_xhat = channel_sum(g * xhat)
        grad_weight = sum_g_xhat.reshape(-1).astype(weight.dtype, copy=False)
        grad_bias = sum_g.reshape(-1).astype(bias.dtype, copy=False)
        # dx = w invstd (g - mean(g) - xhat mean(g xhat)), reusing xhat's buffer
        xhat *= sum_g_xhat / count
        np.subtract(g, xhat, out=xhat)
        xhat -= sum_g / count
        xhat *= weight.reshape(mean_.shape) * invstd
        return xhat, grad_weight, grad_bias
    axes = _bn_axes(x.ndim)
    shape = _bn_shape(x.ndim, x.shape[1])
    xhat, invstd = _normalized(x, axes, eps)
    grad_x = _norm_input_grad(g * reshape(weight, shape=shape), xhat, invstd, axes)
    grad_weight = reshape(reduce_sum(g * xhat, axis=axes), shape=(x.shape[1],))
    grad_bias = reshape(reduce_sum(g, axis=axes), shape=(x.shape[1],))
    return grad_x, grad_weight, grad_bias


def _batch_norm_jvp(t, out, x, weight, bias, eps):
    axes = _bn_axes(x.ndim)
    shape = _bn_shape(x.ndim, x.shape[1])
    xhat, invstd = _normalized(x, axes, eps)
    tangent = _norm_input_grad(t[0], xhat, invstd, axes) * reshape(weight, shape=shape)
    return tangent + xhat * reshape(t[1], shape=shape) + reshape(t[2], shape=shape)


def _check_batch_norm(x, weight, bias, eps):
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input of shape (N, C, ...), got {tuple(x.shape)}")
    channels = x.shape[1]
    for name, value in (("weight", weight), ("bias", bias)):
        if tuple(value.shape) != (channels,):
            raise ShapeError(f"batch_norm: {name} of shape {tuple(value.shape)} does not fit input of shape "
                             f"{tuple(x.shape)}; it needs shape ({channels},) (one per channel, dim 1)")
    count = x.array.size // max(channels, 1)
    if count < 2:
        raise ShapeError(f"batch_norm: training needs more than one value per channel, got input of shape "
                         f"{tuple(x.shape)}; use a larger batch or eval mode")


def _reference_batch_norm(x, weight, bias, eps):
    axes = _bn_axes(x.ndim)
    shape = _bn_shape(x.ndim, x.shape[1])
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)


batch_norm = defop(
    "batch_norm", _batch_norm_forward, vjp=_batch_norm_vjp, jvp=_batch_norm_jvp,
    save=(0, 1), promote=True, check=_check_batch_norm, residual=True,
    samples=[Sample((5, 3), Positive((3,)), (3,), eps=1e-5), Sample((2, 3, 2, 3), (3,), (3,), eps=0.1),
             Sample((3, 2, 4), (2,), (2,), eps=1e-3)],
    reference=_reference_batch_norm,
    doc="""Batch normalisation with the batch's statistics over every dimension but 1 (channels), then ``* weight +
    bias``.

    PyTorch: ``torch.nn.functional.batch_norm(input, None, None, weight, bias, training=True, eps=eps)``.

    Parameters
    ----------
    input : Tensor, (N, C, ...)
    weight, bias : Tensor, (C,)
    eps : float
        Added to the (biased) variance.
    """)


def batch_norm_training(input, weight, bias, running_mean, running_var, momentum, eps):
    """:func:`batch_norm` with the batch's statistics, then the running buffers updated in
    place from the same statistics: ``running = (1 - momentum) * running + momentum * batch``
    (the variance unbiased, ``* n / (n - 1)``), as PyTorch's training-mode batch norm.

    The statistics are the ones the op's forward computed (kept on its node), not a
    second pass over the input; where the forward kept none (no graph recorded, or the
    low-precision and CuPy paths) they are computed here.  ``running_mean`` and
    ``running_var`` may each be ``None``; they are buffers, not differentiated.

    Examples
    --------
    >>> import gpugrad as gg
    >>> x = gg.tensor([[1.0, 4.0], [3.0, 8.0]])
    >>> mean, var = gg.zeros(2), gg.ones(2)
    >>> out = batch_norm_training(x, gg.ones(2, requires_grad=True), gg.zeros(2), mean, var, 0.5, 1e-5)
    >>> mean.tolist(), var.tolist()
    ([1.0, 3.0], [1.5, 4.5])
    """
    out = batch_norm(input, weight, bias, eps=float(eps))
    if running_mean is None and running_var is None:
        return out
    data = input.array
    count = data.size // data.shape[1]
    node = out.grad_fn
    statistics = getattr(node, "residual", None) if node is not None else None
    if statistics is not None and len(statistics) == 3:
        batch_mean, batch_var = statistics[0].reshape(-1), statistics[2].reshape(-1)
    else:
        xp = _xp(data)
        axes = _bn_axes(data.ndim)
        if xp is np and data.dtype.kind == "f" and data.dtype.itemsize > 2:
            batch_mean, batch_var, _ = batch_statistics(data)
            batch_mean, batch_var = batch_mean.reshape(-1), batch_var.reshape(-1)
        else:
            batch_mean, batch_var = xp.mean(data, axis=axes), xp.var(data, axis=axes)
    unbias = count / max(count - 1, 1)
    for buffer, statistic, factor in ((running_mean, batch_mean, 1.0), (running_var, batch_var, unbias)):
        if buffer is None:
            continue
        # In place on the buffer's memory (the same arithmetic order as PyTorch's
        # (1 - m) * running + m * batch), and a version bump so that a graph that
        # saved the buffer notices, as copy_ would.
        array = buffer.array
        if factor != 1.0:
            statistic = statistic * statistic.dtype.type(factor)
        array *= 1 - momentum
        array += (statistic * momentum).astype(array.dtype, copy=False)
        buffer._bump_version()
    return out


# --------------------------------------------------------------------------
# layer_norm (over the last ``normalized_ndim`` dimensions)
# --------------------------------------------------------------------------
def _ln_axes(ndim, normalized_ndim):
    return tuple(range(ndim - normalized_ndim, ndim))


def _layer_norm_forward(x, weight, bias, normalized_ndim, eps):
    xp = _xp(x)
    axes = _ln_axes(x.ndim, normalized_ndim)
    if xp is np and x.dtype != np.float16:
        # Bare ufunc reductions over the trailing (contiguous) axes, in x's dtype.
        count = x.dtype.type(np.prod(x.shape[x.ndim - normalized_ndim:]))
        mean_ = np.add.reduce(x, axis=axes, keepdims=True)
        mean_ /= count
        centred = x - mean_
        var = np.add.reduce(centred * centred, axis=axes, keepdims=True)
        var /= count
        var += x.dtype.type(eps)
        invstd = np.sqrt(var, out=var)
        np.divide(1.0, invstd, out=invstd)
        centred *= invstd
        centred *= weight
        centred += bias
        # mean and 1/std per row are what backward needs besides x: kept, not recomputed.
        return centred, (mean_, invstd)
    centred = x - x.mean(axis=axes, keepdims=True)
    var = xp.mean(centred * centred, axis=axes, keepdims=True)
    centred /= xp.sqrt(var + eps)
    centred *= weight
    centred += bias
    return centred, None


def _layer_norm_vjp(g, out, x, weight, bias, normalized_ndim, eps, residual=None):
    axes = _ln_axes(x.ndim, normalized_ndim)
    if residual is not None and _plain_numpy(g, x, weight):
        # The three-term rule on raw arrays with the forward's statistics, the
        # weight and bias gradients summed over the leading dimensions here.
        mean_, invstd = residual
        count = x.dtype.type(weight.size)
        xhat = x - mean_
        xhat *= invstd
        leading = (-1,) + weight.shape
        gw = g * weight
        grad_weight = np.add.reduce((g * xhat).reshape(leading), axis=0).astype(weight.dtype, copy=False)
        grad_bias = np.add.reduce(g.reshape(leading), axis=0).astype(bias.dtype, copy=False)
        mean_gw = np.add.reduce(gw, axis=axes, keepdims=True)
        mean_gw /= count
        mean_gw_xhat = np.add.reduce(gw * xhat, axis=axes, keepdims=True)
        mean_gw_xhat /= count
        xhat *= mean_gw_xhat
        np.subtract(gw, xhat, out=xhat)
        xhat -= mean_gw
        xhat *= invstd
        return xhat, grad_weight, grad_bias
    xhat, invstd = _normalized(x, axes, eps)
    # The engine sums g * xhat and g over the leading dimensions (un-broadcasting).
    return _norm_input_grad(g * weight, xhat, invstd, axes), g * xhat, g


def _layer_norm_jvp(t, out, x, weight, bias, normalized_ndim, eps):
    axes = _ln_axes(x.ndim, normalized_ndim)
    xhat, invstd = _normalized(x, axes, eps)
    return _norm_input_grad(t[0], xhat, invstd, axes) * weight + xhat * t[1] + t[2]


def _check_layer_norm(x, weight, bias, normalized_ndim, eps):
    shape = tuple(x.shape[x.ndim - normalized_ndim:]) if normalized_ndim <= x.ndim else None
    if shape is None or normalized_ndim < 1:
        raise ShapeError(f"layer_norm: cannot normalise the last {normalized_ndim} dimensions of an input of shape "
                         f"{tuple(x.shape)}")
    for name, value in (("weight", weight), ("bias", bias)):
        if tuple(value.shape) != shape:
            raise ShapeError(f"layer_norm: {name} of shape {tuple(value.shape)} does not fit normalized_shape "
                             f"{shape} of input {tuple(x.shape)}; it must equal normalized_shape")


def _reference_layer_norm(x, weight, bias, normalized_ndim, eps):
    axes = _ln_axes(x.ndim, normalized_ndim)
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * weight + bias


layer_norm = defop(
    "layer_norm", _layer_norm_forward, vjp=_layer_norm_vjp, jvp=_layer_norm_jvp,
    save=(0, 1), promote=True, check=_check_layer_norm, residual=True,
    samples=[Sample((3, 4), (4,), (4,), normalized_ndim=1, eps=1e-5),
             Sample((2, 3, 4), Positive((3, 4)), (3, 4), normalized_ndim=2, eps=0.1)],
    reference=_reference_layer_norm,
    doc="""Normalise over the last ``normalized_ndim`` dimensions, then ``* weight + bias``.

    PyTorch: ``torch.nn.functional.layer_norm(input, weight.shape, weight, bias, eps)``.

    Parameters
    ----------
    input : Tensor
    weight, bias : Tensor
        Of the normalised trailing shape.
    normalized_ndim : int
    eps : float
    """)


# --------------------------------------------------------------------------
# softmax along one axis, fused (attention weights)
# --------------------------------------------------------------------------
# NOTE: softmax composed as exp(x - logsumexp(x)) records three nodes, and its
# backward recomputes exp(x - lse) with a float64 sum; fused, the forward is
# max, exp, sum, divide, and the VJP reads only the output:
# y * (g - sum(g * y)).  Written with ops, so differentiable again.
def _fused_softmax_forward(x, axis=-1):
    xp = _xp(x)
    peak = xp.max(x, axis=axis, keepdims=True)
    # A row that is all -inf (fully masked) has a non-finite max; shifting by 0
    # instead gives 0 / 0 = NaN there, as PyTorch's softmax does.
    # On CuPy the test would be a host sync per call, so the where runs unconditionally there.
    if xp is not np or not np.isfinite(peak).all():
        peak = xp.where(xp.isfinite(peak), peak, xp.zeros_like(peak))
    shifted = x - peak
    xp.exp(shifted, out=shifted)
    total = xp.sum(shifted, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        shifted /= total
    return shifted


def _fused_softmax_vjp(g, out, x, axis=-1):
    return out * (g - reduce_sum(g * out, axis=axis, keepdims=True))


fused_softmax = defop(
    "fused_softmax", _fused_softmax_forward,
    vjp=(_fused_softmax_vjp,),
    jvp=lambda t, out, x, axis=-1: _fused_softmax_vjp(t[0], out, x, axis=axis),
    save=(), save_output=True,
    samples=[Sample((3, 4)), Sample((2, 3, 4), axis=1), Sample((2, 2, 3, 5), axis=-1)],
    reference=lambda x, axis=-1: np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True),
    doc="""Softmax along ``axis`` in one op: ``exp(input - max) / sum(exp(input - max))``.

    Its backward reads only the output, ``y * (g - sum(g * y))``; a row that is
    all ``-inf`` gives NaN, as PyTorch's softmax does.  Attention uses it.

    PyTorch: ``torch.softmax(input, dim=axis)``.

    Parameters
    ----------
    input : Tensor
    axis : int
        The dimension normalised; -1 by default.
    """)


# --------------------------------------------------------------------------
# dropout with a given mask
# --------------------------------------------------------------------------
def _dropout_forward(x, p, mask):
    return kernels.dropout_backward(x, mask, p)     # x * keep * 1/(1-p): the same kernel


dropout = defop(
    "dropout", _dropout_forward,
    vjp=(lambda g, out, x, p, mask: dropout(g, p=p, mask=mask),),
    jvp=lambda t, out, x, p, mask: dropout(t[0], p=p, mask=mask),
    save=(),
    samples=[Sample((3, 4), p=0.5, mask=kernels.pack_mask(np.arange(12) % 3 != 0)),
             Sample((2, 5), p=0.2, mask=kernels.pack_mask(np.arange(10) % 4 != 1))],
    reference=lambda x, p, mask: x * np.unpackbits(np.asarray(mask), bitorder="little")[:x.size]
    .reshape(x.shape) / (1 - p),
    doc="""``input * mask / (1 - p)`` for a given bit-packed keep ``mask``.

    PyTorch: ``torch.nn.functional.dropout(input, p)`` once the mask is drawn.

    Parameters
    ----------
    input : Tensor
    p : float
        Probability of zeroing.
    mask : array of uint8
        One bit per element (1: keep).
    """)




# --------------------------------------------------------------------------
# cross_entropy of (N, C) logits against class indices, fused
# --------------------------------------------------------------------------
# NOTE: the common case of F.cross_entropy (no weight, nothing ignored, no
# smoothing) as one op: log_softmax + gather + mean would leave five nodes
# and a scatter-add in backward; here backward is one cross_entropy_grad op,
# (softmax - onehot) in one pass, times g / N; its own VJP is written with ops.
def _cross_entropy_forward(logits, target, reduction="mean"):
    xp = _xp(logits)
    if xp is np:
        # The ufuncs' reduce, not the ndarray methods: those go through a Python
        # wrapper each (three frames per loss, on the path of every training step).
        shifted = logits - np.maximum.reduce(logits, axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = np.add.reduce(exp, axis=1, keepdims=True)
    else:
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
    loss = xp.log(sum_exp[:, 0]) - shifted[xp.arange(shifted.shape[0]), target]
    if reduction == "mean":
        # numpy's mean: the same sum, divided by the count
        loss = np.add.reduce(loss) / loss.dtype.type(len(loss)) if xp is np and len(loss) else loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    # exp and its row sums are the softmax backward needs: kept, not recomputed.
    return loss, (exp, sum_exp)


def _cross_entropy_grad_forward(logits, target):
    """softmax(logits) - onehot(target): each row's gradient."""
    xp = _xp(logits)
    probabilities = xp.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    rows = xp.arange(logits.shape[0])
    probabilities[rows, target] -= 1
    return probabilities


def _softmax_of(logits):
    return exp(logits - logsumexp(logits, axis=1, keepdims=True))


def _cross_entropy_grad_vjp(u, out, logits, target):
    # d softmax . u = s * (u - sum(u * s)): the softmax Jacobian, with ops.
    s = _softmax_of(logits)
    return s * (u - reduce_sum(u * s, axis=1, keepdims=True))


cross_entropy_grad = defop(
    "cross_entropy_grad", _cross_entropy_grad_forward,
    vjp=(_cross_entropy_grad_vjp, None),
    jvp=lambda t, out, logits, target: _cross_entropy_grad_vjp(t[0], out, logits, target),
    samples=[Sample((4, 5), Ints((4,), 0, 5)), Sample((2, 3), Ints((2,), 0, 3))],
    reference=lambda logits, target: (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
                                      - np.eye(logits.shape[1])[target]),
    doc="""The gradient of mean cross-entropy with respect to the logits: ``(softmax(logits) - one_hot(target)) /
    N``.

    PyTorch: the backward of ``torch.nn.functional.cross_entropy``.

    Parameters
    ----------
    logits : Tensor, (N, C)
    target : Tensor of int64, (N,)
    """)


def _per_row(g, reduction, rows):
    if reduction == "mean":
        return g / rows
    if reduction == "sum":
        return g
    return unsqueeze(g, axis=1)


def _cross_entropy_vjp(g, out, logits, target, reduction="mean", residual=None):
    if residual is None:       # create_graph: with ops, so that it can be differentiated again
        return cross_entropy_grad(logits, target) * _per_row(g, reduction, logits.shape[0])
    exp, sum_exp = residual
    xp = _xp(exp)
    grad = exp / sum_exp                                   # softmax(logits), a fresh array
    rows = grad.shape[0]
    grad[xp.arange(rows), target] -= 1
    if reduction == "mean":
        grad *= g / rows
    elif reduction == "sum":
        grad *= g
    else:
        grad *= g[:, None]
    return grad


def _cross_entropy_jvp(t, out, logits, target, reduction="mean"):
    per_row = reduce_sum(cross_entropy_grad(logits, target) * t[0], axis=1)
    if reduction == "mean":
        return mean(per_row)
    if reduction == "sum":
        return reduce_sum(per_row)
    return per_row


def _reference_cross_entropy(logits, target, reduction="mean"):
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = -log_probabilities[np.arange(len(target)), target]
    return {"mean": np.mean, "sum": np.sum}.get(reduction, lambda v: v)(loss)


cross_entropy = defop(
    "cross_entropy", _cross_entropy_forward,
    vjp=(_cross_entropy_vjp, None), jvp=_cross_entropy_jvp, residual=True,
    samples=[Sample((4, 5), Ints((4,), 0, 5)), Sample((3, 4), Ints((3,), 0, 4), reduction="sum"),
             Sample((3, 4), Ints((3,), 0, 4), reduction="none")],
    reference=_reference_cross_entropy,
    doc="""Cross-entropy of class-index targets with the log-softmax of ``logits``.

    PyTorch: ``torch.nn.functional.cross_entropy(logits, target, reduction=reduction)``.

    Parameters
    ----------
    logits : Tensor, (N, C)
    target : Tensor of int64, (N,)
    reduction : {'mean', 'sum', 'none'}
    """)


# --------------------------------------------------------------------------
# binary_cross_entropy of probabilities, elementwise, with PyTorch's gradient
# --------------------------------------------------------------------------
# NOTE: PyTorch clamps both logs at -100 in the loss but differentiates
# (p - t) / max(p (1 - p), 1e-12), not the clamped logs: at p = 0 or 1 with
# the wrong target the gradient is huge (-1e12), where differentiating the
# clamp would give 0 and stop learning.  One op, so backward can use that form.
# The target's gradient is the difference of the clamped logs: PyTorch's inside
# (0, 1), and +-100 rather than +-inf at 0 and 1.
_BCE_EPSILON = 1e-12


def clamped_log(x):
    """``max(log(x), -100)``, PyTorch's BCE log, with a finite gradient at 0."""
    positive = x > 0
    safe = where(positive, x, 1.0)
    return where(positive, clamp(log(safe), min=-100.0), -100.0)


def _binary_cross_entropy_forward(p, target):
    return -(target * clamped_log(p) + (1 - target) * clamped_log(1 - p))


def _bce_grad_input(g, out, p, target):
    return g * (p - target) / maximum((1 - p) * p, _BCE_EPSILON)


def _bce_grad_target(g, out, p, target):
    return g * (clamped_log(1 - p) - clamped_log(p))


def _reference_binary_cross_entropy(p, target):
    with np.errstate(divide="ignore"):
        return -(target * np.maximum(np.log(p), -100) + (1 - target) * np.maximum(np.log(1 - p), -100))


binary_cross_entropy = defop(
    "binary_cross_entropy", _binary_cross_entropy_forward,
    vjp=(_bce_grad_input, _bce_grad_target),
    jvp=lambda t, out, p, target: (_bce_grad_input(t[0], out, p, target)
                                   + _bce_grad_target(t[1], out, p, target)),
    promote=True,
    samples=[Sample(Probability((3, 4)), Probability((3, 4))), Sample(Probability((5,)), Ints((5,), 0, 2))],
    reference=_reference_binary_cross_entropy,
    doc="""Elementwise binary cross-entropy ``-(t log p + (1 - t) log(1 - p))`` (logs clamped at -100).

    PyTorch: ``torch.nn.functional.binary_cross_entropy(input, target, reduction='none')``.

    Parameters
    ----------
    input : Tensor
        Probabilities.
    target : Tensor
    """)


__all__ = ["batch_norm", "batch_norm_training", "layer_norm", "fused_softmax", "dropout", "cross_entropy",
           "cross_entropy_grad", "binary_cross_entropy"]

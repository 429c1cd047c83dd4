"""Normalisation and dropout primitives: batch_norm, layer_norm, dropout.

batch_norm and layer_norm are single primitives with the fused three-term
VJP (one pass of reductions instead of the dozen nodes a composition leaves)::

    dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))
    dw = sum(g * xhat)        db = sum(g)

The rules are written with ops, so they are differentiable again.

dropout is the deterministic op ``x * keep / (1 - p)`` for a given bit-packed
``mask`` (a parameter): drawing the mask is the caller's business
(:func:`gpugrad.nn.functional.dropout`, through the fused kernel), which keeps
the op itself checkable, and self-adjoint.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..backend import xp_of as _xp
from ..errors import ShapeError
from .elementwise import clamp, exp, log, maximum, sqrt, where
from .reduce import logsumexp, mean, sum_
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


def _batch_norm_forward(x, weight, bias, eps):
    xp = _xp(x)
    axes = _bn_axes(x.ndim)
    shape = _bn_shape(x.ndim, x.shape[1])
    if xp is np and x.dtype.itemsize > 2:     # float16/bfloat16 take the float32-accumulating path
        # ndarray.mean's Python wrapper and its float64 count, skipped: sums, then one division.
        count = x.size // x.shape[1]
        centred = x - np.add.reduce(x, axis=axes, keepdims=True) / x.dtype.type(count)
        var = np.add.reduce(centred * centred, axis=axes, keepdims=True) / x.dtype.type(count)
    else:
        centred = x - x.mean(axis=axes, keepdims=True)
        var = xp.mean(centred * centred, axis=axes, keepdims=True)
    scale = weight.reshape(shape) / xp.sqrt(var + eps)
    centred *= scale
    centred += bias.reshape(shape)
    return centred


def _normalized(x, axes, eps):
    """(xhat, invstd) with ops, for the rules."""
    centred = x - mean(x, axis=axes, keepdims=True)
    invstd = 1.0 / sqrt(mean(centred * centred, axis=axes, keepdims=True) + eps)
    return centred * invstd, invstd


def _norm_input_grad(dxhat, xhat, invstd, axes):
    return invstd * (dxhat - mean(dxhat, axis=axes, keepdims=True)
                     - xhat * mean(dxhat * xhat, axis=axes, keepdims=True))


def _raw_norm_input_grad(g, x, weight, axes, shape, eps):
    """The three-term rule on raw NumPy arrays (a plain backward): no op dispatch, no
    float64 temporaries, in-place updates.  The variance is the forward's two-pass
    one (mean, then mean of squares of the centred values), which keeps its
    precision when the mean is large against the spread, as E[x^2] - E[x]^2 would not."""
    count = x.size // x.shape[1]
    xhat = x - np.add.reduce(x, axis=axes, keepdims=True) / x.dtype.type(count)
    var = np.add.reduce(xhat * xhat, axis=axes, keepdims=True) / x.dtype.type(count)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat *= invstd
    gw = g * weight.reshape(shape)
    mean_gw = np.add.reduce(gw, axis=axes, keepdims=True) / count
    mean_gw_xhat = np.add.reduce(gw * xhat, axis=axes, keepdims=True) / count
    grad_x = xhat * mean_gw_xhat
    np.subtract(gw, grad_x, out=grad_x)
    grad_x -= mean_gw
    grad_x *= invstd
    return grad_x.astype(x.dtype, copy=False), xhat


def _plain_numpy(*arrays):
    return all(array.__class__ is np.ndarray for array in arrays) and arrays[0].dtype.itemsize > 2   # not float16/bfloat16


def _batch_norm_vjp(g, out, x, weight, bias, eps):
    axes = _bn_axes(x.ndim)
    shape = _bn_shape(x.ndim, x.shape[1])
    if _plain_numpy(g, x, weight):
        grad_x, xhat = _raw_norm_input_grad(g, x, weight, axes, shape, eps)
        grad_weight = np.add.reduce(g * xhat, axis=axes).astype(weight.dtype, copy=False)
        return grad_x, grad_weight, np.add.reduce(g, axis=axes).astype(bias.dtype, copy=False)
    xhat, invstd = _normalized(x, axes, eps)
    grad_x = _norm_input_grad(g * reshape(weight, shape=shape), xhat, invstd, axes)
    grad_weight = reshape(sum_(g * xhat, axis=axes), shape=(x.shape[1],))
    grad_bias = reshape(sum_(g, axis=axes), shape=(x.shape[1],))
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
    save=(0, 1), promote=True, check=_check_batch_norm,
    samples=[Sample((5, 3), Positive((3,)), (3,), eps=1e-5), Sample((2, 3, 2, 3), (3,), (3,), eps=0.1),
             Sample((3, 2, 4), (2,), (2,), eps=1e-3)],
    reference=_reference_batch_norm)


# --------------------------------------------------------------------------
# layer_norm (over the last ``normalized_ndim`` dimensions)
# --------------------------------------------------------------------------
def _ln_axes(ndim, normalized_ndim):
    return tuple(range(ndim - normalized_ndim, ndim))


def _layer_norm_forward(x, weight, bias, normalized_ndim, eps):
    xp = _xp(x)
    axes = _ln_axes(x.ndim, normalized_ndim)
    centred = x - x.mean(axis=axes, keepdims=True)
    var = xp.mean(centred * centred, axis=axes, keepdims=True)
    centred /= xp.sqrt(var + eps)
    centred *= weight
    centred += bias
    return centred


def _layer_norm_vjp(g, out, x, weight, bias, normalized_ndim, eps):
    axes = _ln_axes(x.ndim, normalized_ndim)
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
    save=(0, 1), promote=True, check=_check_layer_norm,
    samples=[Sample((3, 4), (4,), (4,), normalized_ndim=1, eps=1e-5),
             Sample((2, 3, 4), Positive((3, 4)), (3, 4), normalized_ndim=2, eps=0.1)],
    reference=_reference_layer_norm)


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
    .reshape(x.shape) / (1 - p))




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
    return s * (u - sum_(u * s, axis=1, keepdims=True))


cross_entropy_grad = defop(
    "cross_entropy_grad", _cross_entropy_grad_forward,
    vjp=(_cross_entropy_grad_vjp, None),
    jvp=lambda t, out, logits, target: _cross_entropy_grad_vjp(t[0], out, logits, target),
    samples=[Sample((4, 5), Ints((4,), 0, 5)), Sample((2, 3), Ints((2,), 0, 3))],
    reference=lambda logits, target: (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
                                      - np.eye(logits.shape[1])[target]))


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
    per_row = sum_(cross_entropy_grad(logits, target) * t[0], axis=1)
    if reduction == "mean":
        return mean(per_row)
    if reduction == "sum":
        return sum_(per_row)
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
    reference=_reference_cross_entropy)


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
    reference=_reference_binary_cross_entropy)


__all__ = ["batch_norm", "layer_norm", "dropout", "cross_entropy", "cross_entropy_grad", "binary_cross_entropy"]

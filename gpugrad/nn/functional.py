"""``gg.nn.functional`` (``F``): PyTorch's functional API on gpugrad's primitives.

Signatures and defaults follow ``torch.nn.functional``.  The differentiable
work happens in registered ops (:mod:`gpugrad.ops.activation`,
:mod:`gpugrad.ops.conv`, :mod:`gpugrad.ops.nn_ops`); what is here converts
PyTorch's arguments (``padding='same'``, ``stride=None``, unbatched inputs) and
composes losses and attention from those ops.

>>> import gpugrad as gg
>>> import gpugrad.nn.functional as F
>>> x = gg.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
>>> loss = F.cross_entropy(x, gg.tensor([0]))
>>> round(loss.item(), 4)
0.2413
>>> loss.backward()
>>> x.grad.shape
Size([1, 3])
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend, kernels
from ..autograd.tape import no_grad, state
from ..errors import DTypeError, ShapeError
from ..ops import activation as act
from ..ops import conv as cv
from ..ops import elementwise as ew
from ..ops import index as ix
from ..ops import linalg as la
from ..ops import methods
from ..ops import nn_ops
from ..ops import reduce as rd
from ..ops import shape as sh
from ..ops.registry import apply_op, apply_promoted
from ..tensor import Tensor

__all__ = [
    "relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", "softplus", "mish", "softmax", "log_softmax",
    "linear", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool2d",
    "batch_norm", "layer_norm", "dropout", "embedding", "one_hot", "pad", "scaled_dot_product_attention",
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
_LINEAR = act.linear.op


def _tensor(value, name, op):
    if isinstance(value, Tensor):
        return value
    raise TypeError(f"{op}: {name} must be a gg.Tensor, got {type(value).__name__}; wrap it with gg.tensor(...)")


def _constant(array_like, like, dtype=None):
    """A constant tensor on ``like``'s device."""
    data = backend.to_device(np.asarray(array_like, dtype=dtype or like.dtype), like.device)
    return Tensor._make(data)


def _tuple(value, n, name, op):
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise ShapeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value}")
    return value


def _inplace_unsupported(inplace, op):
    if inplace:
        raise ValueError(f"{op}: inplace=True is not supported; assign the result instead (x = F.{op}(x))")


# --------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------
def relu(input, inplace=False):
    """``max(x, 0)``; backward keeps a 1-bit mask on CUDA, the output on NumPy.

    >>> import gpugrad as gg
    >>> relu(gg.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    if inplace:
        _inplace_unsupported(inplace, "relu")
    return act.relu(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    _inplace_unsupported(inplace, "leaky_relu")
    return act.leaky_relu(input, negative_slope=float(negative_slope))


def elu(input, alpha=1.0, inplace=False):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere."""
    _inplace_unsupported(inplace, "elu")
    return act.elu(input, alpha=float(alpha))


def gelu(input, approximate="none"):
    """``x * Phi(x)`` (``approximate='tanh'``: the tanh approximation)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate={approximate!r} is not supported; use 'none' or 'tanh'")
    if approximate == "none":
        return act.gelu(input)
    return act.gelu(input, approximate="tanh")


def silu(input, inplace=False):
    """``x * sigmoid(x)``."""
    _inplace_unsupported(inplace, "silu")
    return act.silu(input)


def sigmoid(input):
    """``1 / (1 + exp(-x))``, finite for any input."""
    return ew.sigmoid(input)


def tanh(input):
    """Hyperbolic tangent."""
    return ew.tanh(input)


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``."""
    return act.softplus(input, beta=float(beta), threshold=float(threshold))


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``."""
    _inplace_unsupported(inplace, "mish")
    return act.mish(input)


def _softmax_dim(ndim):
    return 0 if ndim in (0, 1, 3) else 1     # PyTorch's implicit choice


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim`` (stable for large inputs)."""
    if dtype is not None:
        input = input.to(dtype)
    return rd.softmax(input, axis=_softmax_dim(input.ndim) if dim is None else dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``x - logsumexp(x)`` along ``dim`` (stable for large inputs)."""
    if dtype is not None:
        input = input.to(dtype)
    return rd.log_softmax(input, axis=_softmax_dim(input.ndim) if dim is None else dim)


# --------------------------------------------------------------------------
# linear and convolution
# --------------------------------------------------------------------------
def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` (weight is ``(out_features, in_features)``).

    >>> import gpugrad as gg
    >>> linear(gg.ones(2, 3), gg.ones(4, 3), gg.zeros(4)).shape
    Size([2, 4])
    """
    if bias is not None:
        if isinstance(input, Tensor) and isinstance(weight, Tensor) and isinstance(bias, Tensor):
            return act.apply_linear(_LINEAR, input, weight, bias)
        return act.linear(input, weight, bias)
    if weight.ndim != 2 or input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input of shape {tuple(input.shape)} does not fit weight of shape "
                         f"{tuple(weight.shape)}: the input's last dimension must equal weight.shape[1]")
    return la.matmul(input, sh.swapaxes(weight, 0, 1))


def _conv_padding(padding, kernel, dilation, stride, op):
    """PyTorch's padding argument as ((before, after), ...) per spatial axis."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride}; pad explicitly")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))   # the odd one goes after, like PyTorch
            return tuple(pads)
        raise ValueError(f"{op}: padding={padding!r} is not supported; use an int, a tuple, 'same' or 'valid'")
    return tuple((p, p) for p in _tuple(padding, n, "padding", op))


def _check_float_operands(op, input, weight):
    if input.dtype.kind != "f" or weight.dtype.kind != "f":
        raise DTypeError(f"{op}: input and weight must be floating point, got {input.dtype} and {weight.dtype}; "
                         "convert with .float()")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, like PyTorch) of ``(N, C, H, W)`` inputs.

    >>> import gpugrad as gg
    >>> conv2d(gg.ones(1, 1, 4, 4), gg.ones(2, 1, 3, 3), padding=1).shape
    Size([1, 2, 4, 4])
    """
    _tensor(input, "input", "conv2d")
    _tensor(weight, "weight", "conv2d")
    _check_float_operands("conv2d", input, weight)
    unbatched = input.ndim == 3
    if unbatched:
        input = sh.unsqueeze(input, axis=0)
    if input.ndim != 4 or weight.ndim != 4:
        raise ShapeError(f"conv2d: expected a 3-D or 4-D input (N, C, H, W) and a 4-D weight "
                         f"(out_channels, in_channels/groups, kh, kw), got {tuple(input.shape)} and "
                         f"{tuple(weight.shape)}")
    stride = _tuple(stride, 2, "stride", "conv2d")
    dilation = _tuple(dilation, 2, "dilation", "conv2d")
    pads = _conv_padding(padding, weight.shape[2:], dilation, stride, "conv2d")
    out = cv.conv2d(input, weight, stride=stride, padding=pads, dilation=dilation, groups=int(groups))
    if bias is not None:
        if tuple(bias.shape) != (weight.shape[0],):
            raise ShapeError(f"conv2d: bias of shape {tuple(bias.shape)} does not fit {weight.shape[0]} output "
                             f"channels; it needs shape ({weight.shape[0]},)")
        out = out + sh.reshape(bias, shape=(weight.shape[0], 1, 1))
    return sh.squeeze(out, axis=(0,)) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution of ``(N, C, L)`` inputs (a conv2d with height 1)."""
    _tensor(input, "input", "conv1d")
    _tensor(weight, "weight", "conv1d")
    _check_float_operands("conv1d", input, weight)
    unbatched = input.ndim == 2
    if unbatched:
        input = sh.unsqueeze(input, axis=0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ShapeError(f"conv1d: expected a 2-D or 3-D input (N, C, L) and a 3-D weight "
                         f"(out_channels, in_channels/groups, k), got {tuple(input.shape)} and {tuple(weight.shape)}")
    stride = _tuple(stride, 1, "stride", "conv1d")
    dilation = _tuple(dilation, 1, "dilation", "conv1d")
    pads = _conv_padding(padding, weight.shape[2:], dilation, stride, "conv1d")
    out = cv.conv2d(sh.unsqueeze(input, axis=2), sh.unsqueeze(weight, axis=2), stride=(1, stride[0]),
                    padding=((0, 0), pads[0]), dilation=(1, dilation[0]), groups=int(groups))
    out = sh.squeeze(out, axis=(2,))
    if bias is not None:
        out = out + sh.reshape(bias, shape=(weight.shape[0], 1))
    return sh.squeeze(out, axis=(0,)) if unbatched else out


# --------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------
def _pool_args(kernel_size, stride, padding, dilation, n, op):
    kernel = _tuple(kernel_size, n, "kernel_size", op)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else _tuple(stride, n, "stride", op)
    return kernel, stride, _tuple(padding, n, "padding", op), _tuple(dilation, n, "dilation", op)


def _batched(input, spatial, op):
    """(4-D input, undo) for pooling: adds the batch axis and, for 1-D pools, a height of 1."""
    _tensor(input, "input", op)
    if input.ndim not in (spatial + 1, spatial + 2):
        layout = "(N, C, L)" if spatial == 1 else "(N, C, H, W)"
        raise ShapeError(f"{op}: expected a {spatial + 1}-D or {spatial + 2}-D input {layout}, got shape "
                         f"{tuple(input.shape)}")
    unbatched = input.ndim == spatial + 1
    x = sh.unsqueeze(input, axis=0) if unbatched else input
    if spatial == 1:
        x = sh.unsqueeze(x, axis=2)

    def undo(out):
        if spatial == 1:
            out = sh.squeeze(out, axis=(2,))
        return sh.squeeze(out, axis=(0,)) if unbatched else out
    return x, undo


def _max_pool(input, spatial, kernel_size, stride, padding, dilation, ceil_mode, return_indices, op):
    kernel, stride, padding, dilation = _pool_args(kernel_size, stride, padding, dilation, spatial, op)
    if spatial == 1:
        kernel, stride, padding, dilation = (1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation
    x, undo = _batched(input, spatial, op)
    params = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=bool(ceil_mode))
    try:
        out = cv.max_pool2d(x, **params)
    except ShapeError as error:
        raise ShapeError(str(error).replace("max_pool2d", op, 1)) from None
    out = undo(out)
    if not return_indices:
        return out
    indices = Tensor._make(cv.max_pool2d_indices(x.array, **params))
    return out, undo(indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows of ``(N, C, H, W)``; the gradient goes to the first max of each window.

    >>> import gpugrad as gg
    >>> max_pool2d(gg.arange(16.0).reshape(1, 1, 4, 4), 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    return _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool2d")


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows of ``(N, C, L)`` inputs."""
    return _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool1d")


def _avg_pool(input, spatial, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, op):
    kernel, stride, padding, _ = _pool_args(kernel_size, stride, padding, 1, spatial, op)
    if spatial == 1:
        kernel, stride, padding = (1,) + kernel, (1,) + stride, (0,) + padding
    x, undo = _batched(input, spatial, op)
    try:
        out = cv.avg_pool2d(x, kernel=kernel, stride=stride, padding=padding, ceil_mode=bool(ceil_mode),
                            count_include_pad=bool(count_include_pad), divisor_override=divisor_override)
    except ShapeError as error:
        raise ShapeError(str(error).replace("avg_pool2d", op, 1)) from None
    return undo(out)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over windows of ``(N, C, H, W)`` (padding counts, like PyTorch, unless told otherwise)."""
    return _avg_pool(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                     "avg_pool2d")


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over windows of ``(N, C, L)``."""
    return _avg_pool(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None, "avg_pool1d")


def _adaptive_matrix(size, out):
    """(out, size) averaging matrix with PyTorch's bins [floor(i*in/out), ceil((i+1)*in/out))."""
    matrix = np.zeros((out, size))
    for i in range(out):
        start = (i * size) // out
        end = -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool2d(input, output_size):
    """Average into a fixed ``output_size`` grid (``None`` keeps that input size)."""
    x, undo = _batched(input, 2, "adaptive_avg_pool2d")
    h, w = x.shape[2:]
    size = _tuple(tuple(s if s is not None else d for s, d in zip(
        (output_size,) * 2 if not isinstance(output_size, (tuple, list)) else output_size, (h, w))),
        2, "output_size", "adaptive_avg_pool2d")
    if size[0] < 1 or size[1] < 1:
        raise ShapeError(f"adaptive_avg_pool2d: output_size {size} must be positive")
    if h % size[0] == 0 and w % size[1] == 0:
        kernel = (h // size[0], w // size[1])
        out = cv.avg_pool2d(x, kernel=kernel, stride=kernel, padding=(0, 0), ceil_mode=False)
        return undo(out)
    rows = _constant(_adaptive_matrix(h, size[0]), x)
    cols = _constant(_adaptive_matrix(w, size[1]).T, x)
    return undo(la.matmul(la.matmul(rows, x), cols))


# --------------------------------------------------------------------------
# normalisation, dropout, embedding
# --------------------------------------------------------------------------
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation over dim 1 (channels) of ``(N, C, ...)`` inputs.

    Training: normalises with the batch statistics (biased variance) and, when
    running buffers are given, updates them in place with the unbiased
    variance: ``running = (1 - momentum) * running + momentum * batch``.
    Eval: normalises with the running statistics.
    """
    _tensor(input, "input", "batch_norm")
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input of shape (N, C, ...), got {tuple(input.shape)}")
    channels = input.shape[1]
    if weight is None:
        weight = _constant(np.ones(channels), input)
    if bias is None:
        bias = _constant(np.zeros(channels), input)
    if training:
        out = nn_ops.batch_norm(input, weight, bias, eps=float(eps))
        if running_mean is not None or running_var is not None:
            _update_running(input, running_mean, running_var, momentum)
        return out
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: eval mode (training=False) needs running_mean and running_var; pass them "
                         "or use training=True")
    shape = (1, channels) + (1,) * (input.ndim - 2)
    scale = weight * ew.rsqrt(running_var + eps)
    return (input - sh.reshape(running_mean, shape=shape)) * sh.reshape(scale, shape=shape) \
        + sh.reshape(bias, shape=shape)


def _update_running(input, running_mean, running_var, momentum):
    data = input.array
    xp = backend.xp_of(data)
    axes = (0,) + tuple(range(2, data.ndim))
    count = data.size // data.shape[1]
    batch_mean = xp.mean(data, axis=axes)
    batch_var = xp.var(data, axis=axes) * (count / max(count - 1, 1))
    with no_grad():
        if running_mean is not None:
            running_mean.copy_(Tensor._make((running_mean.array * (1 - momentum) + batch_mean * momentum)
                                            .astype(running_mean.dtype, copy=False)))
        if running_var is not None:
            running_var.copy_(Tensor._make((running_var.array * (1 - momentum) + batch_var * momentum)
                                           .astype(running_var.dtype, copy=False)))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` dimensions, then scale and shift."""
    _tensor(input, "input", "layer_norm")
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(int(n) for n in normalized_shape)
    if len(shape) > input.ndim or tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ShapeError(f"layer_norm: normalized_shape {shape} does not match the trailing dimensions of the "
                         f"input of shape {tuple(input.shape)}")
    if weight is None:
        weight = _constant(np.ones(shape), input)
    if bias is None:
        bias = _constant(np.zeros(shape), input)
    return nn_ops.layer_norm(input, weight, bias, normalized_ndim=len(shape), eps=float(eps))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero elements with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The mask comes from ``gg.manual_seed``'s generator for the input's device
    and is kept bit-packed for backward.
    """
    _inplace_unsupported(inplace, "dropout")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p={p} must be in [0, 1]")
    if not training or p == 0.0:
        return input
    y, mask = kernels.dropout_forward(input.array, p, backend.generator(input.device))
    params = dict(p=p, mask=mask)
    if (input._tangents is not None and state.forward_levels) or state.anomaly:
        return apply_op(nn_ops.dropout.op, (input,), params)
    if input.requires_grad and state.grad_enabled:
        return act._record(nn_ops.dropout.op, input, params, y)
    return Tensor._make(y)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` picked by the integer ``input``; ``padding_idx``'s row gets no gradient."""
    _tensor(input, "input", "embedding")
    if input.dtype.kind not in "iu":
        raise DTypeError(f"embedding: indices must be an integer tensor, got {input.dtype}; use input.long()")
    num = weight.shape[0]
    if input.array.size and (int(input.array.max()) >= num or int(input.array.min()) < 0):
        raise IndexError(f"embedding: index out of range: got indices in [{int(input.array.min())}, "
                         f"{int(input.array.max())}] for an embedding of {num} rows")
    if scale_grad_by_freq or sparse:
        raise ValueError("embedding: scale_grad_by_freq and sparse are not supported")
    if max_norm is not None:
        _renormalize(weight, input, max_norm, norm_type)
    flat = sh.reshape(input, shape=(-1,))
    rows = ix.index_select(weight, flat, axis=0)
    out = sh.reshape(rows, shape=tuple(input.shape) + (weight.shape[1],))
    if padding_idx is not None:
        pad = padding_idx + num if padding_idx < 0 else padding_idx
        is_pad = sh.unsqueeze(Tensor._make(input.array == pad), axis=-1)
        out = ew.where(is_pad, out.detach(), out)   # same values; no gradient reaches the padding row
    return out


def _renormalize(weight, input, max_norm, norm_type):
    xp = backend.xp_of(weight.array)
    rows = xp.unique(input.array.reshape(-1))
    with no_grad():
        selected = weight.array[rows]
        norms = xp.sum(xp.abs(selected) ** norm_type, axis=1) ** (1.0 / norm_type)
        scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(weight.dtype)
        weight.array[rows] = selected * scale[:, None]
        if hasattr(weight, "_bump_version"):
            weight._bump_version()


def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding along a new last dimension (``num_classes=-1``: max + 1)."""
    _tensor(tensor, "tensor", "one_hot")
    if tensor.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: expected an integer tensor of class indices, got {tensor.dtype}; use .long()")
    data = tensor.array
    xp = backend.xp_of(data)
    if data.size and int(data.min()) < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {int(data.min())}")
    if num_classes == -1:
        num_classes = int(data.max()) + 1 if data.size else 0
    if data.size and int(data.max()) >= num_classes:
        raise ValueError(f"one_hot: class value {int(data.max())} is out of range for num_classes={num_classes}")
    return Tensor._make((data[..., None] == xp.arange(num_classes)).astype(np.int64))


def pad(input, pad, mode="constant", value=None):
    """Pad with PyTorch's convention: ``pad=(left, right, top, bottom, ...)`` from the last dim."""
    return methods.pad(input, pad, mode=mode, value=0.0 if value is None else value)


# --------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """``softmax(q @ k^T * scale + mask) @ v``; a bool mask marks positions that take part."""
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: query {tuple(query.shape)}, key {tuple(key.shape)} and "
                         f"value {tuple(value.shape)} do not fit: query and key need the same last dimension, key "
                         "and value the same sequence length (dim -2)")
    length, source = query.shape[-2], key.shape[-2]
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = la.matmul(query, sh.swapaxes(key, -1, -2)) * factor
    xp = backend.xp_of(scores.array)
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal=True, not both")
        scores = ew.where(Tensor._make(xp.tril(xp.ones((length, source), dtype=bool))), scores, -math.inf)
    if attn_mask is not None:
        if attn_mask.dtype == np.bool_:
            scores = ew.where(attn_mask, scores, -math.inf)
        else:
            scores = scores + attn_mask
    weights = softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True)
    return la.matmul(weights, value)


# --------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------
def _legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return rd.mean(loss)
    if reduction == "sum":
        return rd.sum_(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction={reduction!r} is not valid; use 'mean', 'sum' or 'none'")


def _check_class_target(input, target, ignore_index, op):
    input_shape = input.array.shape
    if not input_shape:
        raise ShapeError(f"{op}: input must have a class dimension, got a 0-d tensor")
    classes = input_shape[1] if len(input_shape) > 1 else input_shape[0]
    expected = (input_shape[:1] + input_shape[2:]) if len(input_shape) > 1 else ()
    if target.array.dtype.kind not in "iu":
        raise DTypeError(f"{op}: target of dtype {target.dtype} and shape {tuple(target.shape)}: expected class "
                         f"indices (an integer tensor of shape {expected}) or, for cross_entropy, class "
                         f"probabilities of the input's shape {tuple(input.shape)}; use target.long() for indices")
    if target.array.shape != expected:
        raise ShapeError(f"{op}: target of shape {tuple(target.shape)} does not fit input of shape "
                         f"{tuple(input.shape)}; class indices need shape {expected}")
    data = target.array
    # Whether every index is in [0, classes), in one reduction: read as unsigned,
    # a negative index is huge, so max() < classes rules out both ends.
    if data.size == 0:
        in_range = True
    else:
        unsigned = data.view(data.dtype.str.replace("i", "u")) if data.dtype.kind == "i" else data
        largest = np.maximum.reduce(unsigned, axis=None) if unsigned.__class__ is np.ndarray else unsigned.max()
        in_range = int(largest) < classes
    if not in_range:
        bad = (data != ignore_index) & ((data < 0) | (data >= classes))
        if bool(bad.any()):
            value = int(data[bad].reshape(-1)[0])
            raise ValueError(f"{op}: target class {value} is out of range for {classes} classes; targets must be "
                             f"in [0, {classes - 1}] or equal ignore_index={ignore_index}")
    return in_range


def _nll(logp, target, weight, ignore_index, reduction, op):
    """Negative log-likelihood of class indices; (loss, per-element weights or None)."""
    if logp.ndim == 1:
        logp, target = sh.unsqueeze(logp, axis=0), sh.unsqueeze(target, axis=0)
    data = target.array
    xp = backend.xp_of(data)
    valid = data != ignore_index
    all_valid = bool(valid.all())
    safe = data if all_valid else xp.where(valid, data, 0)
    picked = ix.gather(logp, Tensor._make(xp.expand_dims(safe, 1)), axis=1)
    picked = sh.squeeze(picked, axis=(1,))
    weights = None
    if weight is not None:
        weights = weight.array[safe] * valid
    elif not all_valid:
        weights = valid.astype(logp.dtype)
    loss = -picked if weights is None else -picked * Tensor._make(weights.astype(logp.dtype, copy=False))
    if reduction == "mean" and weights is not None:
        return rd.sum_(loss) / Tensor._make(xp.asarray(weights.sum(), dtype=logp.dtype)), weights
    return _reduce(loss, reduction, op), weights


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """``-input[n, target[n]]`` (times ``weight[target[n]]``); mean divides by the summed weights."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_class_target(input, target, ignore_index, "nll_loss")
    return _nll(input, target, weight, ignore_index, reduction, "nll_loss")[0]


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy of logits ``(N, C)`` or ``(N, C, d1, ...)`` against class indices or probabilities.

    Same formulas as PyTorch, including ``weight`` with ``ignore_index`` and
    ``label_smoothing`` (mean divides by the summed weights of counted targets).

    >>> import gpugrad as gg
    >>> round(cross_entropy(gg.tensor([[0.0, 0.0]]), gg.tensor([1])).item(), 4)
    0.6931
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        _tensor(input, "input", "cross_entropy")
        _tensor(target, "target", "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing={label_smoothing} must be in [0, 1]")
    input_shape = input.array.shape
    class_dim = 1 if len(input_shape) > 1 else 0
    classes = input_shape[class_dim]
    if weight is not None and tuple(weight.shape) != (classes,):
        raise ShapeError(f"cross_entropy: weight of shape {tuple(weight.shape)} does not fit {classes} classes")
    if target.array.dtype.kind == "f" and target.array.shape == input_shape:
        logp = rd.log_softmax(input, axis=class_dim)
        return _cross_entropy_probabilities(logp, target, weight, reduction, label_smoothing, class_dim)
    all_class_indices = _check_class_target(input, target, ignore_index, "cross_entropy")
    if (len(input_shape) == 2 and weight is None and label_smoothing == 0.0
            and reduction in ("mean", "sum", "none") and all_class_indices):
        # The fused common case, straight to the op (it does no type promotion).
        return apply_promoted(nn_ops.cross_entropy.op, (input, target), {"reduction": reduction})
    logp = rd.log_softmax(input, axis=class_dim)
    loss, weights = _nll(logp, target, weight, ignore_index, reduction, "cross_entropy")
    if label_smoothing == 0.0:
        return loss
    shape = [1] * input.ndim
    shape[class_dim] = classes
    weighted = logp if weight is None else logp * sh.reshape(weight, shape=tuple(shape))
    smooth = -rd.sum_(weighted, axis=class_dim)
    valid = target.array != ignore_index
    if not bool(valid.all()):
        smooth = ew.where(Tensor._make(valid), smooth, 0.0)
    if reduction == "mean":
        xp = backend.xp_of(valid)
        if weight is not None:
            denominator = weights.sum()
        else:
            denominator = valid.sum()
        smooth = rd.sum_(smooth) / Tensor._make(xp.asarray(denominator, dtype=input.dtype))
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return loss * (1.0 - label_smoothing) + smooth * (label_smoothing / classes)


def _cross_entropy_probabilities(logp, target, weight, reduction, label_smoothing, class_dim):
    classes = logp.shape[class_dim]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / classes
    if weight is not None:
        shape = [1] * logp.ndim
        shape[class_dim] = classes
        logp = logp * sh.reshape(weight, shape=tuple(shape))
    per_element = -rd.sum_(logp * target, axis=class_dim)
    if reduction == "mean":
        count = logp.array.size // classes if logp.ndim > 1 else 1
        return rd.sum_(per_element) / float(count)
    return _reduce(per_element, reduction, "cross_entropy")


def _check_same_shape(input, target, op):
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"{op}: input of shape {tuple(input.shape)} and target of shape {tuple(target.shape)} "
                         "must have the same shape")


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``(input - target) ** 2``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_same_shape(input, target, "mse_loss")
    diff = input - target
    loss = diff * diff
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error ``|input - target|``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_same_shape(input, target, "l1_loss")
    loss = ew.abs_(input - target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "l1_loss")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """``-(t * log(p) + (1 - t) * log(1 - p))`` of probabilities ``p``, logs clamped at -100;
    the gradient is PyTorch's, ``(p - t) / max(p (1 - p), 1e-12)``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_same_shape(input, target, "binary_cross_entropy")
    data = input.array
    if data.size and (bool((data < 0).any()) or bool((data > 1).any())):
        raise ValueError("binary_cross_entropy: input values must be probabilities in [0, 1]; apply sigmoid "
                         "first, or use binary_cross_entropy_with_logits on the logits")
    # One op: PyTorch's loss (logs clamped at -100) and its gradient, which stays
    # large (not 0) at p = 0 or 1 with the wrong target.
    loss = nn_ops.binary_cross_entropy(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """BCE of ``sigmoid(input)`` in the stable form ``(1 - t) * x + (1 + (pw - 1) * t) * softplus(-x)``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    # NOTE: softplus(-x) is log(1 + exp(-x)) computed without overflow (linear past the threshold),
    # so |x| ~ 1e4 stays finite in float32, and its derivative is sigmoid(-x), smooth at 0.
    log_sigmoid_neg = act.softplus(-input)
    if pos_weight is not None:
        loss = (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * log_sigmoid_neg
    else:
        loss = (1.0 - target) * input + log_sigmoid_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")

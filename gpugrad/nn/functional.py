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

from .. import backend
from ..amp.autocast_mode import autocast_composite  # PyTorch's autocast lists name these
from ..autograd.tape import no_grad
from ..errors import DTypeError, ShapeError
from ..ops import activation as act
from ..ops import conv as cv
from ..ops import dropout as ops_dropout
from ..ops import elementwise as ew
from ..ops import index as ix
from ..ops import linalg as la
from ..ops import methods, nn_ops
from ..ops import reduce as rd
from ..ops import shape as sh
from ..ops.registry import apply_promoted
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
    tensor([0., 2.], device='cpu')
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
    """``input @ weight.T + bias`` (weight is ``(out_features, in_features)``): ``ops.linear``.

    >>> import gpugrad as gg
    >>> linear(gg.ones(2, 3), gg.ones(4, 3), gg.zeros(4)).shape
    Size([2, 4])
    """
    return act.linear(input, weight, bias)


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
    if not backend.is_floating(input.dtype) or not backend.is_floating(weight.dtype):
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
        out = cv.max_pool2d_keeping_winner(x, **params)
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
              [13., 15.]]]], device='cpu')
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
        return nn_ops.batch_norm_training(input, weight, bias, running_mean, running_var, momentum, eps)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: eval mode (training=False) needs running_mean and running_var; pass them "
                         "or use training=True")
    shape = (1, channels) + (1,) * (input.ndim - 2)
    scale = weight * ew.rsqrt(running_var + eps)
    return (input - sh.reshape(running_mean, shape=shape)) * sh.reshape(scale, shape=shape) \
        + sh.reshape(bias, shape=shape)


@autocast_composite("layer_norm")
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
    """Zero elements with probability ``p`` and scale the rest by ``1 / (1 - p)``: ``ops.dropout``.

    The mask comes from ``gg.manual_seed``'s generator for the input's device
    and is kept bit-packed for backward.
    """
    _inplace_unsupported(inplace, "dropout")
    return ops_dropout.dropout(input, p, training)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` picked by the integer ``input``; ``padding_idx``'s row gets no gradient."""
    _tensor(input, "input", "embedding")
    if input.dtype.kind not in "iu":
        raise DTypeError(f"embedding: indices must be an integer tensor, got {input.dtype}; use input.long()")
    num = weight.shape[0]
    ix.check_index_range("embedding", input.array, num, 0)   # PyTorch refuses negative indices too
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
        # A row that masks every position attends to nothing: PyTorch gives it zeros and a zero
        # gradient, where a plain softmax would give NaN (0/0). The row's scores are zeroed before
        # the softmax (no NaN in its backward) and its weights after.
        attends = Tensor._make((scores.array != -math.inf).any(axis=-1, keepdims=True))
        scores = ew.where(attends, scores, 0.0)
        weights = ew.where(attends, nn_ops.fused_softmax(scores, axis=-1), 0.0)
    else:
        weights = nn_ops.fused_softmax(scores, axis=-1)
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
        return rd.reduce_sum(loss)
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


def _divide_by_total_weight(total_loss, total_weight, dtype):
    """``total_loss / total_weight``, PyTorch's mean over weights: when every target is ignored
    (total weight 0) the loss is NaN but its gradient is zero, not the NaN of a 0/0 in backward.
    Decided on the device (no host read of the total)."""
    xp = backend.xp_of(total_weight)
    total_weight = xp.asarray(total_weight, dtype=dtype)
    nothing_counted = total_weight == 0
    safe = xp.where(nothing_counted, xp.asarray(1, dtype=dtype), total_weight)
    undefined = xp.where(nothing_counted, xp.asarray(np.nan, dtype=dtype), xp.asarray(0, dtype=dtype))
    return total_loss / Tensor._make(safe) + Tensor._make(undefined)


def _nll(logp, target, weight, ignore_index, reduction, op):
    """Negative log-likelihood of class indices; (loss, per-element weights or None)."""
    if logp.ndim == 1:
        # One unbatched sample: computed as a batch of one, given back without the batch dimension.
        loss, weights = _nll(sh.unsqueeze(logp, axis=0), sh.unsqueeze(target, axis=0), weight, ignore_index,
                             reduction, op)
        if reduction == "none":
            loss, weights = sh.squeeze(loss, axis=(0,)), weights if weights is None else weights[0]
        return loss, weights
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
        return _divide_by_total_weight(rd.reduce_sum(loss), weights.sum(), logp.dtype), weights
    return _reduce(loss, reduction, op), weights


@autocast_composite("nll_loss")
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """``-input[n, target[n]]`` (times ``weight[target[n]]``); mean divides by the summed weights."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_class_target(input, target, ignore_index, "nll_loss")
    return _nll(input, target, weight, ignore_index, reduction, "nll_loss")[0]


@autocast_composite("cross_entropy")
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
    if backend.is_floating(target.array.dtype) and target.array.shape == input_shape:
        logp = rd.log_softmax(input, axis=class_dim)
        return _cross_entropy_probabilities(logp, target, weight, reduction, label_smoothing, class_dim)
    all_class_indices = _check_class_target(input, target, ignore_index, "cross_entropy")
    if all_class_indices and 0 <= ignore_index < classes:
        # ignore_index is a real class id: targets equal to it must still be left out.
        all_class_indices = not bool((target.array == ignore_index).any())
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
    smooth = -rd.reduce_sum(weighted, axis=class_dim)
    valid = target.array != ignore_index
    if not bool(valid.all()):
        smooth = ew.where(Tensor._make(valid), smooth, 0.0)
    if reduction == "mean":
        denominator = weights.sum() if weight is not None else valid.sum()
        smooth = _divide_by_total_weight(rd.reduce_sum(smooth), denominator, input.dtype)
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
    per_element = -rd.reduce_sum(logp * target, axis=class_dim)
    if reduction == "mean":
        count = logp.array.size // classes if logp.ndim > 1 else 1
        return rd.reduce_sum(per_element) / float(count)
    return _reduce(per_element, reduction, "cross_entropy")


def _check_same_shape(input, target, op):
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"{op}: input of shape {tuple(input.shape)} and target of shape {tuple(target.shape)} "
                         "must have the same shape")


@autocast_composite("mse_loss")
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``(input - target) ** 2``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_same_shape(input, target, "mse_loss")
    diff = input - target
    loss = diff * diff
    if weight is not None:
        return _weighted_mean_of(loss, weight, reduction, "mse_loss")
    return _reduce(loss, reduction, "mse_loss")


def _weighted_mean_of(loss, weight, reduction, op):
    """PyTorch's weighted mse/l1: ``weight`` of the input's shape, and mean divides by the summed weights."""
    if tuple(weight.shape) != tuple(loss.shape):
        raise ShapeError(f"{op}: weight of shape {tuple(weight.shape)} must have the input's shape {tuple(loss.shape)} "
                         "(PyTorch's rule); expand it first, e.g. weight.expand_as(input)")
    loss = loss * weight
    if reduction == "mean":
        return rd.reduce_sum(loss) / rd.reduce_sum(weight)
    return _reduce(loss, reduction, op)


@autocast_composite("l1_loss")
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error ``|input - target|``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_same_shape(input, target, "l1_loss")
    loss = ew.absolute(input - target)
    if weight is not None:
        return _weighted_mean_of(loss, weight, reduction, "l1_loss")
    return _reduce(loss, reduction, "l1_loss")


@autocast_composite("binary_cross_entropy")
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


@autocast_composite("binary_cross_entropy_with_logits")
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


# --------------------------------------------------------------------------
# more of torch.nn.functional (issue 16): compositions of differentiable ops
# --------------------------------------------------------------------------
def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6``.

    >>> import gpugrad as gg
    >>> hardswish(gg.tensor([-4.0, 0.0, 4.0])).tolist()
    [-0.0, 0.0, 4.0]
    """
    _inplace_unsupported(inplace, "hardswish")
    # Written piecewise so the gradient at the kinks is PyTorch's: 0 at x = -3, 1 at x = 3.
    inner = input * (input + 3.0) / 6.0
    return ew.where(ew.le(input, -3.0), 0.0, ew.where(ew.lt(input, 3.0), inner, input))


def prelu(input, weight):
    """``max(0, x) + weight * min(0, x)``, ``weight`` per channel (dim 1) or one for all.

    >>> import gpugrad as gg
    >>> prelu(gg.tensor([[-2.0, 3.0]]), gg.tensor([0.25])).tolist()
    [[-0.5, 3.0]]
    """
    if weight.ndim != 1:
        raise ShapeError(f"prelu: weight must be 1-D, got shape {tuple(weight.shape)}")
    if weight.shape[0] != 1:
        channels = input.shape[1] if input.ndim >= 2 else input.shape[0]
        if weight.shape[0] != channels:
            raise ShapeError(f"prelu: weight has {weight.shape[0]} values but the input of shape "
                             f"{tuple(input.shape)} has {channels} channels")
        if input.ndim >= 2:
            weight = sh.reshape(weight, shape=(weight.shape[0],) + (1,) * (input.ndim - 2))
    return ew.where(ew.gt(input, 0.0), input, weight * input)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels (dim 1 of ``(N, C, H, W)``; a 3-D input is read as ``(N, C, L)``, as PyTorch
    does) with probability ``p``, scaling the rest by ``1 / (1 - p)``.

    >>> import gpugrad as gg
    >>> dropout2d(gg.ones(1, 2, 2, 2), 0.5, training=False).sum().item()
    8.0
    """
    _inplace_unsupported(inplace, "dropout2d")
    return ops_dropout.dropout2d(input, p, training)


@autocast_composite("normalize")
def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input / max(||input||_p, eps)`` along ``dim``.

    >>> import gpugrad as gg
    >>> normalize(gg.tensor([[3.0, 4.0]], dtype=gg.float64)).tolist()
    [[0.6, 0.8]]
    """
    if out is not None:
        raise TypeError("normalize: out= is not supported; assign the result")
    norms = rd.norm(input, ord=float(p), axis=int(dim), keepdims=True)
    return input / ew.clamp(norms, min=float(eps))


@autocast_composite("cosine_similarity")
def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim`` (PyTorch 2's form:
    each normalised by ``max(||x||, eps)`` first, then the dot product).

    >>> import gpugrad as gg
    >>> cosine_similarity(gg.tensor([[1.0, 0.0]]), gg.tensor([[1.0, 1.0]])).tolist()[0] > 0.707
    True
    """
    dim = int(dim)
    n1 = ew.clamp(rd.norm(x1, ord=2.0, axis=dim, keepdims=True), min=float(eps))
    n2 = ew.clamp(rd.norm(x2, ord=2.0, axis=dim, keepdims=True), min=float(eps))
    return rd.reduce_sum((x1 / n1) * (x2 / n2), axis=dim)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: every ``kernel_size`` block of a ``(N, C, H, W)`` input as a column, ``(N, C*kh*kw, L)``.

    >>> import gpugrad as gg
    >>> unfold(gg.ones(1, 2, 4, 4), 2).shape
    Size([1, 8, 9])
    """
    unbatched = input.ndim == 3
    if unbatched:
        input = sh.unsqueeze(input, axis=0)
    if input.ndim != 4:
        raise ShapeError(f"unfold: expected a 3-D or 4-D input (N, C, H, W), got shape {tuple(input.shape)}")
    kh, kw = _tuple(kernel_size, 2, "kernel_size", "unfold")
    dh, dw = _tuple(dilation, 2, "dilation", "unfold")
    ph, pw = _tuple(padding, 2, "padding", "unfold")
    sh_, sw = _tuple(stride, 2, "stride", "unfold")
    n, c, h, w = input.shape
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh_ + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if out_h <= 0 or out_w <= 0:
        raise ShapeError(f"unfold: kernel {(kh, kw)} (dilation {(dh, dw)}) does not fit the padded input "
                         f"{(h + 2 * ph, w + 2 * pw)}")
    if ph or pw:
        input = sh.pad_constant(input, pad_width=((0, 0), (0, 0), (ph, ph), (pw, pw)))
    rows = (np.arange(kh) * dh)[:, None, None, None] + (np.arange(out_h) * sh_)[None, None, :, None]
    cols = (np.arange(kw) * dw)[None, :, None, None] + (np.arange(out_w) * sw)[None, None, None, :]
    index = (slice(None), slice(None), backend.to_device(np.broadcast_to(rows, (kh, kw, out_h, out_w)).copy(),
                                                         input.device),
             backend.to_device(np.broadcast_to(cols, (kh, kw, out_h, out_w)).copy(), input.device))
    blocks = ix.take(input, index=index)                  # (N, C, kh, kw, out_h, out_w)
    out = sh.reshape(blocks, shape=(n, c * kh * kw, out_h * out_w))
    return sh.squeeze(out, axis=(0,)) if unbatched else out


def _source_positions(in_size, out_size, scale, align_corners):
    """Linear interpolation's source coordinate of every output position (PyTorch's formula)."""
    positions = np.arange(out_size, dtype=np.float64)
    if align_corners:
        if out_size == 1:
            return np.zeros(out_size)
        return positions * ((in_size - 1) / (out_size - 1))
    source = (positions + 0.5) * scale - 0.5
    return np.maximum(source, 0.0)


def _interpolate_axis(x, axis, out_size, scale, mode, align_corners):
    in_size = x.shape[axis]
    if mode == "nearest":
        source = np.minimum(np.floor(np.arange(out_size) * scale).astype(np.int64), in_size - 1)
        return ix.index_select(x, Tensor._make(backend.to_device(source, x.device)), axis=axis)
    source = _source_positions(in_size, out_size, scale, align_corners)
    low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = (source - low).astype(np.float64)
    shape = [1] * x.ndim
    shape[axis] = out_size
    weight = _constant(frac.reshape(shape), x)
    low_values = ix.index_select(x, Tensor._make(backend.to_device(low, x.device)), axis=axis)
    high_values = ix.index_select(x, Tensor._make(backend.to_device(high, x.device)), axis=axis)
    return low_values + (high_values - low_values) * weight


_INTERPOLATE_DIMS = {"nearest": None, "linear": 1, "bilinear": 2}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dims of ``(N, C, L)`` / ``(N, C, H, W)`` inputs: ``nearest``, ``linear``, ``bilinear``.

    Exactly one of ``size`` and ``scale_factor``; ``align_corners`` as PyTorch
    (only for the linear modes; ``False`` when not given).

    >>> import gpugrad as gg
    >>> interpolate(gg.ones(1, 1, 2, 2), scale_factor=2).shape
    Size([1, 1, 4, 4])
    """
    if mode not in _INTERPOLATE_DIMS:
        raise ValueError(f"interpolate: mode={mode!r} is not supported; use 'nearest', 'linear' or 'bilinear'")
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with the linear modes (linear, bilinear)")
    spatial = input.ndim - 2
    if spatial < 1 or spatial > 2 or (_INTERPOLATE_DIMS[mode] not in (None, spatial)):
        needed = "3-D or 4-D" if mode == "nearest" else f"{2 + _INTERPOLATE_DIMS[mode]}-D"
        raise ShapeError(f"interpolate: mode {mode!r} needs a {needed} input (N, C, ...), got shape "
                         f"{tuple(input.shape)}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    in_sizes = input.shape[2:]
    if size is not None:
        sizes = _tuple(size, spatial, "size", "interpolate")
        scales = [i / o for i, o in zip(in_sizes, sizes)]
    else:
        factors = (float(scale_factor),) * spatial if isinstance(scale_factor, (int, float)) \
            else tuple(float(f) for f in scale_factor)
        if len(factors) != spatial:
            raise ShapeError(f"interpolate: scale_factor needs {spatial} values, got {scale_factor}")
        sizes = tuple(int(math.floor(i * f)) for i, f in zip(in_sizes, factors))
        # PyTorch indexes with 1 / scale_factor unless asked to recompute it from the sizes.
        scales = [i / o for i, o in zip(in_sizes, sizes)] if recompute_scale_factor else [1.0 / f for f in factors]
    if any(s <= 0 for s in sizes):
        raise ShapeError(f"interpolate: output size {sizes} must be positive")
    out = input
    for offset, (out_size, scale) in enumerate(zip(sizes, scales)):
        out = _interpolate_axis(out, 2 + offset, out_size, scale, mode, bool(align_corners))
    return out


@autocast_composite("smooth_l1_loss")
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``0.5 d^2 / beta`` where ``|d| < beta``, ``|d| - 0.5 beta`` elsewhere (``d = input - target``)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_same_shape(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    diff = input - target
    magnitude = ew.absolute(diff)
    if beta == 0:
        return _reduce(magnitude, reduction, "smooth_l1_loss")
    loss = ew.where(ew.lt(magnitude, float(beta)), diff * diff * (0.5 / beta), magnitude - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


@autocast_composite("huber_loss")
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 d^2`` where ``|d| < delta``, ``delta (|d| - 0.5 delta)`` elsewhere."""
    _check_same_shape(input, target, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    diff = input - target
    magnitude = ew.absolute(diff)
    loss = ew.where(ew.lt(magnitude, float(delta)), diff * diff * 0.5, (magnitude - 0.5 * delta) * float(delta))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "huber_loss")


@autocast_composite("kl_div")
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL divergence with log-probabilities ``input``: ``target * (log(target) - input)``
    (``exp(target) * (target - input)`` with ``log_target``); 0 where target is 0.

    ``reduction='batchmean'`` divides the sum by the batch size (the true KL);
    ``'mean'`` divides by the number of elements, as PyTorch does.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if log_target:
        loss = ew.exp(target) * (target - input)
    else:
        positive = ew.gt(target, 0.0)
        safe = ew.where(positive, target, 1.0)
        loss = ew.where(positive, target * ew.log(safe), 0.0) - target * input
    if reduction == "batchmean":
        return rd.reduce_sum(loss) / float(input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution (the gradient of conv2d with respect to its input).

    ``weight`` has PyTorch's layout ``(in_channels, out_channels / groups, kh, kw)``; the output size is
    ``(H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``.

    >>> import gpugrad as gg
    >>> conv_transpose2d(gg.ones(1, 4, 3, 3), gg.ones(4, 2, 4, 4), stride=2, padding=1).shape
    Size([1, 2, 6, 6])
    """
    _tensor(input, "input", "conv_transpose2d")
    _tensor(weight, "weight", "conv_transpose2d")
    _check_float_operands("conv_transpose2d", input, weight)
    unbatched = input.ndim == 3
    if unbatched:
        input = sh.unsqueeze(input, axis=0)
    if input.ndim != 4 or weight.ndim != 4:
        raise ShapeError(f"conv_transpose2d: expected a 3-D or 4-D input (N, C, H, W) and a 4-D weight "
                         f"(in_channels, out_channels/groups, kh, kw), got {tuple(input.shape)} and "
                         f"{tuple(weight.shape)}")
    groups = int(groups)
    if input.shape[1] != weight.shape[0] or groups < 1 or weight.shape[0] % groups:
        raise ShapeError(f"conv_transpose2d: input of shape {tuple(input.shape)} has {input.shape[1]} channels; "
                         f"weight of shape {tuple(weight.shape)} expects {weight.shape[0]} (divisible by "
                         f"groups={groups})")
    stride = _tuple(stride, 2, "stride", "conv_transpose2d")
    padding = _tuple(padding, 2, "padding", "conv_transpose2d")
    output_padding = _tuple(output_padding, 2, "output_padding", "conv_transpose2d")
    dilation = _tuple(dilation, 2, "dilation", "conv_transpose2d")
    for o, s, d in zip(output_padding, stride, dilation):
        if not 0 <= o < max(s, d):
            raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be smaller than stride "
                             f"{stride} or dilation {dilation}")
    sizes = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in
                  zip(input.shape[2:], stride, padding, dilation, weight.shape[2:], output_padding))
    if any(n <= 0 for n in sizes):
        raise ShapeError(f"conv_transpose2d: the output size {sizes} is not positive (input {tuple(input.shape)}, "
                         f"padding {padding})")
    out_shape = (input.shape[0], weight.shape[1] * groups) + sizes
    out = cv.conv2d_input_grad(input, weight, input_shape=out_shape, stride=stride,
                               padding=tuple((p, p) for p in padding), dilation=dilation, groups=groups)
    if bias is not None:
        if tuple(bias.shape) != (out_shape[1],):
            raise ShapeError(f"conv_transpose2d: bias of shape {tuple(bias.shape)} does not fit {out_shape[1]} "
                             "output channels")
        out = out + sh.reshape(bias, shape=(out_shape[1], 1, 1))
    return sh.squeeze(out, axis=(0,)) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 1-D convolution of ``(N, C, L)`` inputs (a conv_transpose2d with height 1)."""
    _tensor(input, "input", "conv_transpose1d")
    unbatched = input.ndim == 2
    if unbatched:
        input = sh.unsqueeze(input, axis=0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ShapeError(f"conv_transpose1d: expected a 2-D or 3-D input (N, C, L) and a 3-D weight, got "
                         f"{tuple(input.shape)} and {tuple(weight.shape)}")
    one = lambda value, name: (1,) + _tuple(value, 1, name, "conv_transpose1d")  # noqa: E731
    out = conv_transpose2d(sh.unsqueeze(input, axis=2), sh.unsqueeze(weight, axis=2), bias, one(stride, "stride"),
                           (0,) + _tuple(padding, 1, "padding", "conv_transpose1d"),
                           (0,) + _tuple(output_padding, 1, "output_padding", "conv_transpose1d"), groups,
                           one(dilation, "dilation"))
    out = sh.squeeze(out, axis=(2,))
    return sh.squeeze(out, axis=(0,)) if unbatched else out


@autocast_composite("group_norm")
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise ``(N, C, ...)`` over each group of ``C / num_groups`` channels and the spatial dims."""
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise ShapeError(f"group_norm: {num_groups} groups must divide the channels of the input of shape "
                         f"{tuple(input.shape)}")
    n, c = input.shape[:2]
    grouped = sh.reshape(input, shape=(n, num_groups, -1))
    mean = rd.mean(grouped, axis=2, keepdims=True)
    centered = grouped - mean
    variance = rd.mean(centered * centered, axis=2, keepdims=True)
    out = sh.reshape(centered / ew.sqrt(variance + float(eps)), shape=tuple(input.shape))
    channel_shape = (c,) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * sh.reshape(weight, shape=channel_shape)
    if bias is not None:
        out = out + sh.reshape(bias, shape=channel_shape)
    return out


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalise each channel of each sample over its spatial dims (``(N, C, ...)``)."""
    axes = tuple(range(2, input.ndim))
    c = input.shape[1]
    channel_shape = (c,) + (1,) * (input.ndim - 2)
    if use_input_stats:
        mean = rd.mean(input, axis=axes, keepdims=True)
        centered = input - mean
        variance = rd.mean(centered * centered, axis=axes, keepdims=True)
        if running_mean is not None and running_var is not None:
            with no_grad():
                count = int(np.prod(input.shape[2:]))
                batch_mean = rd.mean(sh.reshape(mean, shape=(input.shape[0], c)), axis=0)
                unbiased = variance * (count / max(count - 1, 1))
                batch_var = rd.mean(sh.reshape(unbiased, shape=(input.shape[0], c)), axis=0)
                running_mean.array[...] = ((1 - momentum) * running_mean.array + momentum * batch_mean.array)
                running_var.array[...] = ((1 - momentum) * running_var.array + momentum * batch_var.array)
                running_mean._bump_version()
                running_var._bump_version()
        out = centered / ew.sqrt(variance + float(eps))
    else:
        out = (input - sh.reshape(running_mean, shape=channel_shape)) / ew.sqrt(
            sh.reshape(running_var, shape=channel_shape) + float(eps))
    if weight is not None:
        out = out * sh.reshape(weight, shape=channel_shape)
    if bias is not None:
        out = out + sh.reshape(bias, shape=channel_shape)
    return out


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the trailing ``normalized_shape`` dims
    (``eps`` defaults to the dtype's machine epsilon, as PyTorch)."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(int(n) for n in normalized_shape)
    if len(shape) > input.ndim or tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ShapeError(f"rms_norm: normalized_shape {shape} does not match the trailing dimensions of the input "
                         f"of shape {tuple(input.shape)}")
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * ew.rsqrt(rd.mean(input * input, axis=axes, keepdims=True) + float(eps))
    return out * weight if weight is not None else out


__all__ += ["hardswish", "prelu", "dropout2d", "normalize", "cosine_similarity", "unfold", "interpolate",
            "smooth_l1_loss", "huber_loss", "kl_div", "conv_transpose1d", "conv_transpose2d", "group_norm",
            "instance_norm", "rms_norm"]

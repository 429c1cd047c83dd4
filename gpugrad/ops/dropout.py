"""``dropout``: zero elements at random, drawing the mask itself.

The forward draws one uniform per element from the gpugrad generator of the
input's device (``gg.manual_seed`` governs it) and runs the dropout kernel
(CuPy) or its NumPy twin, which applies the mask and packs it (1 bit per
element).  The node it leaves is the deterministic op ``dropout`` of
:mod:`gpugrad.ops.nn_ops` (``x * keep / (1 - p)`` for a given mask), with the
packed mask in its parameters: that is all backward keeps, and its VJP (and
JVP) multiply by the same mask, so gradients of every order see the mask the
forward drew.
"""

from __future__ import annotations

from .. import backend, kernels
from ..autograd.tape import state
from ..errors import ShapeError
from ..tensor import Tensor
from .nn_ops import dropout as _dropout_with_mask
from .registry import apply_op, record

_WITH_MASK = _dropout_with_mask.op

__all__ = ["dropout", "dropout2d"]


def _check_probability(p, op="dropout"):
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: probability p={p} must be in [0, 1]")
    return p


def dropout(input, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Parameters
    ----------
    input : Tensor
        float16, float32 or float64.
    p : float
        Drop probability in ``[0, 1]``; ``p == 1`` gives zeros.
    training : bool
        False (or ``p == 0``) returns ``input`` itself.

    Returns
    -------
    Tensor
        Same shape, dtype and device as ``input``.  Backward keeps only the
        bit-packed mask.

    Examples
    --------
    >>> import gpugrad as gg
    >>> _ = gg.manual_seed(0)
    >>> x = gg.ones(8, requires_grad=True)
    >>> y = dropout(x, 0.5)
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    >>> y.sum().backward()
    >>> bool((x.grad == y).all())
    True
    """
    p = _check_probability(p)
    if not training or p == 0.0:
        return input
    if not isinstance(input, Tensor):
        raise TypeError(f"dropout: input must be a gg.Tensor, got {type(input).__name__}; wrap it with gg.tensor(...)")
    y, mask = kernels.dropout_forward(input.array, p, backend.generator(input.device))
    params = {"p": p, "mask": mask}
    if (input._tangents is not None and state.forward_levels) or state.anomaly:
        # Forward mode and anomaly mode go through the op's own dispatch (the
        # tangent is masked by the same rule; anomaly checks see the op).
        return apply_op(_WITH_MASK, (input,), params)
    result = Tensor._make(y)
    if input.requires_grad and state.grad_enabled:
        record(_WITH_MASK, (input,), [input.array], params, result, save=())
    return result


def dropout2d(input, p=0.5, training=True):
    """Zero whole channels (dim 1) with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    ``input`` is ``(N, C, H, W)``, or ``(N, C, L)`` read as PyTorch reads a 3-D
    input: one draw per sample and channel, from the generator of the input's
    device.  The node is an ordinary product with the drawn channel mask.

    Examples
    --------
    >>> import gpugrad as gg
    >>> dropout2d(gg.ones(1, 2, 2, 2), 0.5, training=False).sum().item()
    8.0
    >>> y = dropout2d(gg.ones(4, 3, 2, 2), 0.5)
    >>> sorted(set(y.tolist()[0][0][0])) in ([0.0], [2.0])
    True
    """
    p = _check_probability(p, "dropout2d")
    if input.ndim not in (3, 4):
        raise ShapeError(f"dropout2d: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    channel_shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    keep = backend.generator(input.device).random(channel_shape) >= p
    mask = Tensor._make(backend.xp_of(input.array).asarray(keep, dtype=input.dtype) / (1.0 - p))
    return input * mask

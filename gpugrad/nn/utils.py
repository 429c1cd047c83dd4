"""Gradient clipping and parameter/vector conversion (PyTorch's ``torch.nn.utils``).

These act on ``.grad`` outside the graph.  A clipped gradient gets a new array
(the Tensor in ``p.grad`` stays the same object): the engine may hand two
leaves the same gradient array, and an in-place write would scale it twice.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import tape
from ..errors import AutogradError, ShapeError
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]


def _parameter_list(parameters):
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def _unique_grads(parameters):
    grads, seen = [], set()
    for param in parameters:
        grad = param.grad
        if grad is not None and id(grad) not in seen:
            seen.add(id(grad))
            grads.append(grad)
    return grads


def _vector_norm(xp, array, norm_type):
    if norm_type == math.inf:
        return xp.abs(array).max() if array.size else xp.zeros((), array.dtype)
    if norm_type == -math.inf:
        return xp.abs(array).min() if array.size else xp.full((), math.inf, array.dtype)
    if norm_type == 0:
        return (array != 0).sum().astype(array.dtype)
    if norm_type == 1:
        return xp.abs(array).sum()
    if norm_type == 2:
        flat = array.reshape(-1)
        return xp.sqrt(xp.dot(flat, flat)) if flat.dtype.kind == "f" else xp.sqrt((flat * flat).sum())
    return (xp.abs(array) ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients so that their combined norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one
    vector; ``norm_type`` may be ``float('inf')``.  Returns that total norm (a
    0-d tensor, before clipping).

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([3.0, 4.0], requires_grad=True)
    >>> (w * w / 2).sum().backward()          # grad = w, norm 5
    >>> gg.nn.utils.clip_grad_norm_([w], max_norm=1.0)
    tensor(5., device='cpu')
    >>> w.grad
    tensor([0.6, 0.8], device='cpu')
    """
    del foreach  # one fused path here
    parameters = _parameter_list(parameters)
    norm_type = float(norm_type)
    max_norm = float(max_norm)
    grads = _unique_grads(parameters)
    if not grads:
        return Tensor._make(np.zeros((), dtype=backend.get_default_dtype()))
    first = grads[0].array
    xp = backend.xp_of(first)
    device = backend.device_of(first)
    dtype = first.dtype
    norms = [backend.to_device(_vector_norm(backend.xp_of(g.array), g.array, norm_type), device).astype(dtype)
             for g in grads]
    total = xp.asarray(_vector_norm(xp, xp.stack(norms), norm_type), dtype=dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise AutogradError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite ({float(total)}), "
            "so they cannot be clipped; pass error_if_nonfinite=False to clip anyway (the gradients become NaN)")
    coefficient = xp.minimum(max_norm / (total + 1e-6), 1.0).astype(dtype)
    with tape.no_grad():
        for grad in grads:
            data = grad.array
            scaled = data * backend.to_device(coefficient, backend.device_of(data)).astype(data.dtype)
            grad.array = backend.xp_of(data).asarray(scaled)     # NumPy gives 0-d results as scalars
            grad.grad_fn = None
            grad._bump_version()
    return Tensor._make(total)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into ``[-clip_value, clip_value]``."""
    del foreach
    clip_value = float(clip_value)
    with tape.no_grad():
        for grad in _unique_grads(_parameter_list(parameters)):
            xp = backend.xp_of(grad.array)
            grad.array = xp.asarray(xp.clip(grad.array, -clip_value, clip_value))
            grad.grad_fn = None
            grad._bump_version()


def parameters_to_vector(parameters):
    """All parameters flattened and concatenated into one 1-d tensor (differentiable)."""
    from ..ops.methods import cat
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-d ``vec`` into the parameters, in place."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise ShapeError(f"vector_to_parameters: expected a 1-d tensor, got {type(vec).__name__} "
                         f"{tuple(getattr(vec, 'shape', ()))}")
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    if total != vec.numel():
        raise ShapeError(f"vector_to_parameters: the vector has {vec.numel()} elements but the parameters "
                         f"have {total}")
    offset = 0
    with tape.no_grad():
        for param in parameters:
            n = param.numel()
            piece = vec.array[offset:offset + n].reshape(param.shape)
            param.array[...] = backend.to_device(piece, param.device).astype(param.dtype, copy=False)
            param._bump_version()
            offset += n

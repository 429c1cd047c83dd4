"""Forward mode: tangents carried alongside primals through one forward pass.

``gg.jvp(f, primals, tangents)`` opens a new *level*, attaches each tangent to
its primal, runs ``f`` once, and reads the output tangents off the results.
Every op propagates tangents with its JVP rule (see
:mod:`gpugrad.ops.registry`), so Python control flow inside ``f`` is followed
as it runs.  Levels nest (forward-over-forward), and a backward pass run
inside a level carries tangents too (forward-over-reverse, used by
``gg.hessian`` and ``gg.hvp``).
"""

from __future__ import annotations

from .. import backend
from ..errors import DeviceError, ShapeError
from ..tensor import Tensor
from .tape import graph_alias, state


def make_dual(primal, tangent, level):
    """An alias of ``primal`` (same graph edge) carrying ``tangent`` at ``level``."""
    if not isinstance(tangent, Tensor):
        tangent = Tensor(tangent, dtype=primal.dtype, device=primal.device)
    if tuple(tangent.shape) != tuple(primal.shape):
        raise ShapeError(f"jvp: tangent of shape {tuple(tangent.shape)} given for a primal of shape "
                         f"{tuple(primal.shape)}; each tangent must have its primal's shape")
    if tangent.device != primal.device:
        raise DeviceError(f"jvp: tangent on {tangent.device} for a primal on {primal.device}; move one of them")
    if tangent.dtype != primal.dtype:
        tangent = tangent.to(primal.dtype)
    tangents = dict(primal._tangents) if primal._tangents else {}
    tangents[level] = tangent
    return graph_alias(primal, tangents=tangents)


def unpack_dual(value, level):
    """``(primal, tangent)`` of ``value`` at ``level`` (zeros if it has none there)."""
    from ..ops.registry import strip_level
    tangent = value._tangents.get(level) if value._tangents else None
    if tangent is None:
        tangent = Tensor._make(backend.xp_of(value.array).zeros_like(value.array))
    return strip_level(value, level), tangent


def jvp(f, primals, tangents):
    """Jacobian-vector product by forward mode: ``(f(*primals), J_f(primals) @ tangents)``.

    Parameters
    ----------
    f : callable
        Takes the primals as positional tensors; returns a tensor or a tuple of tensors.
    primals, tangents : Tensor or tuple of Tensor
        Points and directions, one tangent per primal (same shapes).

    Examples
    --------
    >>> import gpugrad as gg
    >>> out, tangent = gg.jvp(lambda x: (x * x).sum(), (gg.tensor([1.0, 2.0]),), (gg.tensor([1.0, 0.0]),))
    >>> float(out), float(tangent)
    (5.0, 2.0)
    """
    primals = (primals,) if isinstance(primals, Tensor) else tuple(primals)
    tangents = (tangents,) if isinstance(tangents, Tensor) else tuple(tangents)
    if len(primals) != len(tangents):
        raise ShapeError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; give one tangent per primal")
    state.forward_levels += 1
    state.refresh()
    level = state.forward_levels
    try:
        duals = tuple(make_dual(p, t, level) for p, t in zip(primals, tangents))
        outputs = f(*duals)
    finally:
        state.forward_levels -= 1
        state.refresh()
    single = isinstance(outputs, Tensor)
    pairs = [unpack_dual(o, level) for o in ((outputs,) if single else outputs)]
    if single:
        return pairs[0]
    return tuple(p for p, _ in pairs), tuple(t for _, t in pairs)

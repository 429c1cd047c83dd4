"""Forward mode in dispatch: nested dual numbers, one level per active ``gg.jvp``.

An op applied to a tensor carrying tangents runs as usual on the tangent-free
stand-ins of its arguments, then its JVP rule gives the output's tangent.
"""

from __future__ import annotations

from .. import backend
from ..autograd import tape
from ..autograd.op_node import OpNode, _cast, structural
from ..autograd.tape import state
from ..errors import AutogradError
from ..tensor import Tensor
from . import dispatch
from .views import link_view


def strip_level(tensor, level):
    """An alias of ``tensor`` without its level-``level`` tangent (same graph edge)."""
    tangents = tensor._tangents
    if tangents is None or level not in tangents:
        return tensor
    return tape.graph_alias(tensor, tangents={key: value for key, value in tangents.items() if key != level})


def _tangent_at(arg, level):
    """The level-``level`` tangent of an argument (zeros, or 0.0 for a scalar, when it has none)."""
    if not isinstance(arg, Tensor):
        return 0.0
    tangent = arg._tangents.get(level) if arg._tangents else None
    return tangent if tangent is not None else _zero_tangent(arg)


def _zero_tangent(arg):
    if isinstance(arg, Tensor):
        xp = backend.xp_of(arg.array)
        return Tensor._make(xp.zeros_like(arg.array))
    return 0.0


def apply_with_tangents(op, args, params):
    level = max(max(arg._tangents) for arg in args if isinstance(arg, Tensor) and arg._tangents)
    stripped = tuple(strip_level(arg, level) if isinstance(arg, Tensor) else arg for arg in args)
    result = dispatch.apply_op(op, stripped, params)
    if op.view and result._base is not None:
        # A view of the caller's tensor, not of the stripped stand-in: in-place
        # changes through it must reach (and remake the views of) the real base.
        link_view(result, args[0], op, params)
    node = result.grad_fn
    if isinstance(node, OpNode) and node.op is op and node.saved is not None:
        # The node saved the stripped aliases; give it the originals so that a
        # backward pass run inside this forward level (forward-over-reverse,
        # e.g. hessian) differentiates through the saved inputs too.
        node.saved = [original if isinstance(saved, Tensor) and isinstance(original, Tensor)
                      and saved.array is original.array else saved
                      for original, saved in zip(args, node.saved)]
    if not op.differentiable:
        return result
    if op.jvp is None:
        raise AutogradError(f"jvp: op '{op.name}' has no forward-mode (JVP) rule; use reverse mode "
                            "(gg.vjp / gg.jacrev) for functions that use it")
    tangents_in = tuple(_tangent_at(arg, level) for arg in args)
    tangent = op.jvp(tangents_in, result, *stripped, **params)
    if not isinstance(tangent, Tensor):
        tangent = Tensor._make(backend.xp_of(result.array).broadcast_to(
            backend.xp_of(result.array).asarray(tangent, dtype=result.dtype), result.shape).copy())
    if tangent.shape != result.shape:
        tangent = structural("broadcast_to")(tangent, result.shape)
    if tangent.dtype != result.dtype:
        tangent = _cast(tangent, result.dtype)
    if state.anomaly:
        tape.check_anomaly_forward(op.name, tangent.array, what="forward-mode tangent")
    tangents = dict(result._tangents) if result._tangents else {}
    tangents[level] = tangent
    result._tangents = tangents
    if isinstance(node, OpNode) and node.op is op:
        node.out_tangents = tangents
    return result


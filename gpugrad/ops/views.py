"""Views: a result sharing its input's memory knows its base and how to remake itself from it."""

from __future__ import annotations

import weakref

import numpy as np

from .. import backend
from ..autograd import tape
from ..autograd.tape import state

_ndarray = np.ndarray


def link_view(result, source, op, params):
    """``result`` is a view of ``source`` (made by ``op`` with ``params``): share
    its memory's version counter and remember its base and how to remake it.

    Every view knows its *base*, the tensor that owns the memory (a view of a
    view points at the first tensor), and ``_view_chain``, the view ops that
    take the base to the view.  An in-place change through a view is recorded
    on the base (CopySlices, see :func:`gpugrad.ops.methods.inplace`) and
    every live view of that base then remakes its ``grad_fn`` from the base's
    new history by replaying its chain: what PyTorch does.
    """
    out = result.array
    data = source.array
    if out.__class__ is _ndarray and data.__class__ is _ndarray:
        # NumPy points every view at the array that owns the memory (cheaper than may_share_memory).
        owner = out.base if out.base is not None else out
        shares = owner is (data.base if data.base is not None else data)
    else:
        shares = not out.size or backend.xp_of(out).may_share_memory(out, data)
    if not shares:
        # NumPy had to copy (a reshape of a transposed array): an independent
        # tensor, not a view, as PyTorch's reshape gives.
        return
    result._version_box = source._shared_version_box()
    base = source._base
    step = ((op.function, params),)
    if base is None:
        base = source
        result._view_chain = step
    else:
        result._view_chain = source._view_chain + step
    result._base = base
    if not state.grad_enabled or source._view_without_grad:
        # Made under no_grad: not a differentiable view (it is never remade, and an
        # in-place change through it while recording raises, as in PyTorch).
        result._view_without_grad = True
    elif not (base.requires_grad and base.grad_fn is None):
        # A leaf that requires grad never changes in place in a graph: its views
        # never need remaking, so a parameter's ``W.T`` every step costs nothing here.
        views = base._views
        if views is None:
            base._views = [_weak_reference(result)]
        else:       # runs for every view op: kept inline, no helper call
            views.append(_weak_reference(result))
            count = len(views)
            if count >= 16 and not count & (count - 1):
                views[:] = [ref for ref in views if ref() is not None]


_weak_reference = weakref.ref


def live_views(base):
    """The views of ``base`` still alive (and the list trimmed to them)."""
    views = base._views
    if not views:
        return []
    alive = []
    refs = []
    for ref in views:
        view = ref()
        if view is not None:
            alive.append(view)
            refs.append(ref)
    views[:] = refs
    return alive


def replay_view(view, base):
    """Remake ``view``'s ``grad_fn`` (and tangents) from ``base``'s current history
    by applying its view ops to the base again (the values are already shared)."""
    fresh = base
    # NOTE: the replayed intermediates register as views of the base too; they
    # die at once and are dropped with the other dead references (no flag to
    # share between threads).
    with tape.enable_grad():
        for function, params in view._view_chain:
            fresh = function(fresh, **params)
    old_grad_fn, old_output_nr = view.grad_fn, view._output_nr
    view.grad_fn = fresh.grad_fn
    view._output_nr = fresh._output_nr
    view.requires_grad = fresh.requires_grad
    view._tangents = fresh._tangents
    tape.move_retained_grad(view, old_grad_fn, old_output_nr)   # the hook lives on the node: it moves along


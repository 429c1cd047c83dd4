"""Ordering and sampling: ``argsort`` (a registered primitive, no gradient), ``sort`` and
``topk`` (argsort, then a differentiable ``gather``), and ``multinomial``.

Values are gathered through the index, so their gradient is the gather's:
each output position passes its gradient back to the element it came from.

>>> import gpugrad as gg
>>> gg.tensor([3.0, 1.0, 2.0]).sort().values.tolist()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

import collections

import numpy as np

from .. import backend
from ..backend import xp_of as _xp
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from . import index as ix
from . import shape as sh
from .registry import defop
from .samples import Distinct, Sample

__all__ = ["argsort", "sort", "topk", "multinomial"]

SortResult = collections.namedtuple("sort", ["values", "indices"])
TopKResult = collections.namedtuple("topk", ["values", "indices"])


def _stable_argsort(x, axis):
    """Indices sorting ``x`` stably along ``axis`` (CuPy's sort is always stable and takes no kind)."""
    if isinstance(x, np.ndarray):
        return np.argsort(x, axis=axis, kind="stable")
    return _xp(x).argsort(x, axis=axis)


def _argsort_forward(x, axis=-1, descending=False):
    if descending:
        # Negating keeps a stable sort stable: ties stay in their original order
        # (PyTorch's stable=True); bools and unsigned ints are widened first.
        x = -(x.astype(np.int64) if x.dtype.kind in "bu" else x)
    return _stable_argsort(x, axis).astype(np.int64)


def _check_axis(x, axis=-1, descending=False):
    if not -max(x.ndim, 1) <= axis < max(x.ndim, 1):
        raise ShapeError(f"argsort: dim {axis} is out of range for shape {tuple(x.shape)}")


_argsort = defop(
    "argsort", _argsort_forward, differentiable=False, check=_check_axis,
    samples=[Sample(Distinct((3, 4))), Sample(Distinct((3, 4)), axis=0, descending=True)],
    reference=lambda x, axis=-1, descending=False: np.argsort(-x if descending else x, axis=axis, kind="stable"),
    doc="""Indices that sort ``input`` along ``axis`` (last by default).

    PyTorch: ``torch.argsort(input, dim, descending=descending)``.

    Parameters
    ----------
    input : Tensor
    axis : int
    descending : bool
    """)


def argsort(input, dim=-1, descending=False, stable=False):
    """The indices that sort ``input`` along ``dim`` (stable: ties keep their order).

    >>> import gpugrad as gg
    >>> gg.argsort(gg.tensor([3.0, 1.0, 2.0])).tolist()
    [1, 2, 0]
    """
    if input.ndim == 0:
        return Tensor._make(_xp(input.array).zeros((), dtype=np.int64))
    return _argsort(input, axis=int(dim), descending=bool(descending))


def sort(input, dim=-1, descending=False, stable=False):
    """Sorted values and their indices along ``dim``: a ``(values, indices)`` named tuple.

    >>> import gpugrad as gg
    >>> gg.sort(gg.tensor([3.0, 1.0, 2.0]), descending=True).indices.tolist()
    [0, 2, 1]
    """
    if input.ndim == 0:
        return SortResult(sh.reshape(input, shape=()), argsort(input))
    order = argsort(input, dim, descending)
    return SortResult(ix.gather(input, order, axis=int(dim) % input.ndim), order)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, largest first.

    >>> import gpugrad as gg
    >>> gg.topk(gg.tensor([1.0, 5.0, 3.0]), 2).values.tolist()
    [5.0, 3.0]
    """
    ndim = max(input.ndim, 1)
    dim = int(dim) % ndim
    size = input.shape[dim] if input.ndim else 1
    if not 0 <= k <= size:
        raise ShapeError(f"topk: k={k} is out of range for dim {dim} of size {size} (shape {tuple(input.shape)})")
    if input.ndim == 0:
        return TopKResult(sh.reshape(input, shape=()), argsort(input))
    order = argsort(input, dim, descending=largest)
    keep = (slice(None),) * dim + (slice(0, int(k)),)
    indices = Tensor._make(order.array[keep].copy())
    return TopKResult(ix.gather(input, indices, axis=dim), indices)


def _random_source(device, generator):
    """The NumPy/CuPy generator multinomial draws from: ``generator``'s (a gg.Generator on the
    input's device) or the device's global one."""
    from ..generator import rng_for
    return rng_for(device, generator, "multinomial")


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Draw ``num_samples`` category indices per row from the (unnormalised) weights ``input``.

    Without ``replacement`` each category is drawn at most once (weights of
    zero never); with it, draws are independent.  ``input`` is ``(C,)`` or
    ``(N, C)``; the result is int64 ``(num_samples,)`` or ``(N, num_samples)``.

    >>> import gpugrad as gg
    >>> gg.multinomial(gg.tensor([0.0, 1.0, 0.0]), 2, replacement=True).tolist()
    [1, 1]
    """
    if input.ndim not in (1, 2):
        raise ShapeError(f"multinomial: input must be 1-D or 2-D, got shape {tuple(input.shape)}")
    if not backend.is_floating(input.dtype):
        raise DTypeError(f"multinomial: input must be floating point, got {input.dtype}; use input.float()")
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be positive, got {num_samples}")
    xp = _xp(input.array)
    weights = input.array.reshape(-1, input.shape[-1]).astype(np.float64)
    if bool((weights < 0).any()) or not bool(xp.isfinite(weights).all()):
        raise ValueError("multinomial: weights must be finite and non-negative")
    totals = weights.sum(axis=1, keepdims=True)
    if bool((totals <= 0).any()):
        raise ValueError("multinomial: every row of weights must have a positive sum")
    categories = weights.shape[1]
    if not replacement:
        if num_samples > categories:
            raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from "
                             f"{categories} categories")
        if bool(((weights > 0).sum(axis=1) < num_samples).any()):
            raise ValueError(f"multinomial: a row has fewer than {num_samples} non-zero weights, so {num_samples} "
                             "samples cannot be drawn without replacement")
    source = _random_source(input.device, generator)
    uniform = xp.asarray(source.random(weights.shape if not replacement else (weights.shape[0], num_samples)))
    if replacement:
        # Inverse CDF: the first category whose cumulative probability exceeds u.
        cumulative = xp.cumsum(weights / totals, axis=1)
        cumulative[:, -1] = 1.0
        picks = xp.stack([xp.searchsorted(row, u, side="right") for row, u in zip(cumulative, uniform, strict=True)])
        picks = xp.minimum(picks, categories - 1)
    else:
        # Exponential race (equivalent to the Gumbel top-k trick): the k smallest
        # Exp(1)/w keys are a draw without replacement; zero weights never win.
        with np.errstate(divide="ignore"):
            keys = -xp.log1p(-uniform) / weights
        picks = _stable_argsort(keys, 1)[:, :num_samples]
    picks = picks.astype(np.int64)
    return Tensor._make(picks.reshape(-1) if input.ndim == 1 else picks)


Tensor.argsort = lambda self, dim=-1, descending=False, stable=False: argsort(self, dim, descending, stable)
Tensor.sort = lambda self, dim=-1, descending=False, stable=False: sort(self, dim, descending, stable)
Tensor.topk = lambda self, k, dim=-1, largest=True, sorted=True: topk(self, k, dim, largest, sorted)
Tensor.multinomial = lambda self, num_samples, replacement=False, *, generator=None: multinomial(
    self, num_samples, replacement, generator=generator)

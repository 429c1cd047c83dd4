"""Deterministic mode: ``gg.use_deterministic_algorithms(True)``, as ``torch.use_deterministic_algorithms``.

On a GPU, a backward pass that scatters gradients into repeated indices
(``index_add``, ``scatter_add``, embedding, gather, ``t[idx]`` with repeated
``idx``, ``index_put(accumulate=True)``) adds them with atomics, in whatever
order the threads arrive: two runs can differ in the last bits.  Likewise
``t[idx] = v`` and ``scatter`` with repeated indices leave whichever write
came last.  In deterministic mode gpugrad does these on CuPy with a
*fixed-order* reduction instead (:func:`gpugrad.ops.index.scatter_add_into`):
a stable sort of the target positions, then a pairwise sum within each run of
equal positions whose pairing depends only on the positions, never on thread
timing; assignments keep the last of repeated positions, as NumPy does.  So
two runs on the same card give identical bits.  (It costs a sort and a few
host synchronisations per call: leave the mode off when speed matters more.)
On the CPU NumPy is deterministic already and nothing changes.

An op with no deterministic implementation calls :func:`alert_not_deterministic`,
which in this mode raises ``RuntimeError`` naming the op (a ``UserWarning``
with ``warn_only=True``), as PyTorch does.  Every gpugrad op that used atomics
on CuPy has a deterministic path today, so the alert is the contract for new
ops, not a list of existing ones.  Other GPU work is deterministic run to run
already: CuPy's reductions and scans have a fixed order, and cuBLAS gives the
same bits on the same card and stream (gpugrad queues its math on one stream;
PyTorch's ``CUBLAS_WORKSPACE_CONFIG`` concerns several).

Examples
--------
>>> import gpugrad as gg
>>> gg.are_deterministic_algorithms_enabled()
False
>>> gg.use_deterministic_algorithms(True)
>>> gg.are_deterministic_algorithms_enabled(), gg.is_deterministic_algorithms_warn_only_enabled()
(True, False)
>>> gg.use_deterministic_algorithms(False)
"""

from __future__ import annotations

import warnings

__all__ = ["use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
           "is_deterministic_algorithms_warn_only_enabled", "alert_not_deterministic"]

# [enabled, warn_only]: process-wide, as PyTorch's flag is (not per thread).
_MODE = [False, False]


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Turn deterministic mode on or off (see the module docstring).

    Parameters
    ----------
    mode : bool
        True: ops use fixed-order implementations; ops without one raise.
    warn_only : bool, default False
        With ``mode=True``: ops without a deterministic implementation warn instead of raising.

    Raises
    ------
    TypeError
        ``mode`` or ``warn_only`` is not a bool.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.use_deterministic_algorithms(True, warn_only=True)
    >>> gg.is_deterministic_algorithms_warn_only_enabled()
    True
    >>> gg.use_deterministic_algorithms(False)
    """
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms: mode must be a bool, got {type(mode).__name__}")
    if not isinstance(warn_only, bool):
        raise TypeError(f"use_deterministic_algorithms: warn_only must be a bool, got {type(warn_only).__name__}")
    _MODE[0], _MODE[1] = mode, warn_only


def are_deterministic_algorithms_enabled():
    """Whether :func:`use_deterministic_algorithms` turned the mode on.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.are_deterministic_algorithms_enabled()
    False
    """
    return _MODE[0]


def is_deterministic_algorithms_warn_only_enabled():
    """Whether the mode only warns about ops without a deterministic implementation.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.is_deterministic_algorithms_warn_only_enabled()
    False
    """
    return _MODE[1]


def alert_not_deterministic(op, device="cuda"):
    """Call from an op that has no deterministic implementation on ``device`` (nothing outside the mode).

    Raises
    ------
    RuntimeError
        In deterministic mode without ``warn_only`` (a ``UserWarning`` with it).

    Examples
    --------
    >>> import gpugrad as gg
    >>> from gpugrad.determinism import alert_not_deterministic
    >>> alert_not_deterministic("my_op")          # mode off: nothing
    >>> gg.use_deterministic_algorithms(True)
    >>> alert_not_deterministic("my_op")
    Traceback (most recent call last):
    ...
    RuntimeError: my_op does not have a deterministic implementation on cuda, but you set ...
    >>> gg.use_deterministic_algorithms(False)
    """
    if not _MODE[0]:
        return
    message = (f"{op} does not have a deterministic implementation on {device}, but you set "
               "'gg.use_deterministic_algorithms(True)'. Turn it off for this op "
               "(gg.use_deterministic_algorithms(False)), or pass warn_only=True to be warned instead")
    if _MODE[1]:
        warnings.warn(message, UserWarning, stacklevel=3)
        return
    raise RuntimeError(message)

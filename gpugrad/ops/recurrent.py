"""Recurrent cells as single ops.

A GRU step written with elementwise ops records about fifteen nodes; over a
40-step sequence the per-node bookkeeping, not the arithmetic, dominates a
small model's training step.  ``gru_cell`` is one primitive per step: its
forward is plain array code, and its VJP and JVP are written with the
differentiable ops, so they run as raw NumPy/CuPy in an ordinary backward and
as a recorded graph under ``create_graph=True``.

PyTorch's gate equations, gates stacked (r, z, n)::

    gh = h @ W_hh.T + b_hh
    r  = sigmoid(gx_r + gh_r)
    z  = sigmoid(gx_z + gh_z)
    n  = tanh(gx_n + r * gh_n)
    h' = n + z * (h - n)            # = (1 - z) * n + z * h

``gx`` is the step's input projection ``x_t @ W_ih.T + b_ih``, computed for
all steps at once by the caller.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import ShapeError
from .elementwise import sigmoid, tanh
from .index import getitem
from .linalg import matmul
from .reduce import reduce_sum
from .registry import defop
from .samples import Sample
from .shape import concatenate, swapaxes


def _gates_raw(gx, h, w_hh, b_hh):
    xp = backend.xp_of(gx)
    size = h.shape[-1]
    gh = h @ w_hh.T
    gh += b_hh
    reset_update = gx[:, :2 * size] + gh[:, :2 * size]
    # sigmoid as 1 / (1 + exp(-a)): exp overflows to inf only where the sigmoid is 0
    # (1 / inf = 0, exactly right), so no select is needed (NumPy's where runs branchy and
    # slow on irregular masks).
    with np.errstate(over="ignore"):
        xp.negative(reset_update, out=reset_update)
        xp.exp(reset_update, out=reset_update)
    reset_update += 1
    xp.reciprocal(reset_update, out=reset_update)
    r, z = reset_update[:, :size], reset_update[:, size:]
    n = r * gh[:, 2 * size:]
    n += gx[:, 2 * size:]
    xp.tanh(n, out=n)
    return gh, r, z, n


def _gru_cell_forward(gx, h, w_hh, b_hh):
    gh, r, z, n = _gates_raw(gx, h, w_hh, b_hh)
    # The gates a plain backward needs (r, z, n and gh's candidate block, 4H values
    # per row): kept, so backward does not redo the step's matmul and nonlinearities.
    return n + z * (h - n), (r, z, n, gh[:, 2 * h.shape[-1]:].copy())


def _columns(value, start, stop):
    return getitem(value, index=(slice(None), slice(start, stop)))


def _gates(gx, h, w_hh, b_hh):
    """The gates, recomputed with differentiable ops (cheaper than saving them)."""
    size = h.shape[-1]
    gh = matmul(h, swapaxes(w_hh, -1, -2)) + b_hh
    r = sigmoid(_columns(gx, 0, size) + _columns(gh, 0, size))
    z = sigmoid(_columns(gx, size, 2 * size) + _columns(gh, size, 2 * size))
    n = tanh(_columns(gx, 2 * size, 3 * size) + r * _columns(gh, 2 * size, 3 * size))
    return gh, r, z, n


def _gru_cell_vjp_raw(g, gx, h, w_hh, b_hh, gates):
    """The VJP on raw arrays (a plain backward) from the forward's gates: the same formulas
    without op dispatch."""
    size = h.shape[-1]
    r, z, n, gh_n = gates
    xp = backend.xp_of(g)
    grad_gh = xp.empty((g.shape[0], 3 * size), dtype=g.dtype)
    grad_r, grad_z, grad_n = grad_gh[:, :size], grad_gh[:, size:2 * size], grad_gh[:, 2 * size:]
    xp.multiply(g, 1 - z, out=grad_n)
    grad_n *= 1 - n * n
    xp.multiply(grad_n, gh_n, out=grad_r)
    grad_r *= r * (1 - r)
    xp.multiply(g, h - n, out=grad_z)
    grad_z *= z * (1 - z)
    grad_gx = grad_gh.copy()
    grad_n *= r                      # grad_gh's last block is grad_n * r; grad_gx keeps grad_n
    grad_h = grad_gh @ w_hh
    grad_h += g * z
    return grad_gx, grad_h, grad_gh.T @ h, xp.add.reduce(grad_gh, axis=0)


def _gru_cell_vjp(g, out, gx, h, w_hh, b_hh, residual=None):
    size = h.shape[-1]
    if residual is not None and g.dtype == gx.dtype == h.dtype:
        return _gru_cell_vjp_raw(g, gx, h, w_hh, b_hh, residual)
    gh, r, z, n = _gates(gx, h, w_hh, b_hh)
    grad_n = g * (1 - z) * (1 - n * n)
    grad_r = grad_n * _columns(gh, 2 * size, 3 * size) * r * (1 - r)
    grad_z = g * (h - n) * z * (1 - z)
    grad_gx = concatenate(grad_r, grad_z, grad_n, axis=1)
    grad_gh = concatenate(grad_r, grad_z, grad_n * r, axis=1)
    grad_h = g * z + matmul(grad_gh, w_hh)
    grad_w = matmul(swapaxes(grad_gh, -1, -2), h)
    grad_b = reduce_sum(grad_gh, axis=0)
    return grad_gx, grad_h, grad_w, grad_b


def _gru_cell_jvp(t, out, gx, h, w_hh, b_hh):
    size = h.shape[-1]
    t_gx, t_h, t_w, t_b = t
    gh, r, z, n = _gates(gx, h, w_hh, b_hh)
    t_gh = matmul(t_h, swapaxes(w_hh, -1, -2)) + matmul(h, swapaxes(t_w, -1, -2)) + t_b
    t_r = r * (1 - r) * (_columns(t_gx, 0, size) + _columns(t_gh, 0, size))
    t_z = z * (1 - z) * (_columns(t_gx, size, 2 * size) + _columns(t_gh, size, 2 * size))
    t_n = (1 - n * n) * (_columns(t_gx, 2 * size, 3 * size) + t_r * _columns(gh, 2 * size, 3 * size)
                         + r * _columns(t_gh, 2 * size, 3 * size))
    return t_n + t_z * (h - n) + z * (t_h - t_n)


def _check_gru_cell(gx, h, w_hh, b_hh):
    size = h.shape[-1]
    if (gx.ndim != 2 or h.ndim != 2 or gx.shape[0] != h.shape[0] or gx.shape[1] != 3 * size
            or tuple(w_hh.shape) != (3 * size, size) or tuple(b_hh.shape) != (3 * size,)):
        raise ShapeError(f"gru_cell: shapes gx {tuple(gx.shape)}, h {tuple(h.shape)}, w_hh {tuple(w_hh.shape)}, "
                         f"b_hh {tuple(b_hh.shape)} do not fit; expected (N, 3H), (N, H), (3H, H), (3H,)")


def _reference(gx, h, w_hh, b_hh):
    size = h.shape[-1]
    gh = h @ w_hh.T + b_hh
    r = 1 / (1 + np.exp(-(gx[:, :size] + gh[:, :size])))
    z = 1 / (1 + np.exp(-(gx[:, size:2 * size] + gh[:, size:2 * size])))
    n = np.tanh(gx[:, 2 * size:] + r * gh[:, 2 * size:])
    return (1 - z) * n + z * h


gru_cell = defop(
    "gru_cell", _gru_cell_forward, vjp=_gru_cell_vjp, jvp=_gru_cell_jvp, check=_check_gru_cell, residual=True,
    samples=[Sample((3, 6), (3, 2), (6, 2), (6,)), Sample((1, 9), (1, 3), (9, 3), (9,))],
    reference=_reference,
    doc="""One GRU step from precomputed input gates: the next hidden state ``h'``.

    PyTorch: ``torch.nn.GRUCell`` with ``gates_x = x @ W_ih.T + b_ih`` given (gate order r, z, n).

    Parameters
    ----------
    gates_x : Tensor, (batch, 3 * hidden)
    h : Tensor, (batch, hidden)
    w_hh : Tensor, (3 * hidden, hidden)
    b_hh : Tensor, (3 * hidden,)
    """)

"""The LSTM step as one op, as ``gru_cell`` is for the GRU (see :mod:`gpugrad.ops.recurrent`).

Written with elementwise ops a step records about fourteen nodes; here it is one
primitive whose forward is plain array code and whose VJP and JVP are written
with the differentiable ops (so ``create_graph=True`` differentiates them again).
The two results share one output, ``[h', c']`` side by side, ``(N, 2H)``; callers
take the halves as views.

PyTorch's equations, gates stacked (i, f, g, o)::

    gates = gx + h @ W_hh.T + b_hh
    i, f, o = sigmoid(gates_i), sigmoid(gates_f), sigmoid(gates_o);  g = tanh(gates_g)
    c' = f * c + i * g
    h' = o * tanh(c')
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


def _stable_sigmoid(xp, value):
    # NOTE: exp(-|a|) never overflows.
    e = xp.exp(-xp.abs(value))
    return xp.where(value >= 0, 1 / (1 + e), e / (1 + e)).astype(value.dtype, copy=False)


def _lstm_cell_forward(gx, h, c, w_hh, b_hh):
    xp = backend.xp_of(gx)
    size = h.shape[-1]
    gates = gx + h @ w_hh.T + b_hh
    i = _stable_sigmoid(xp, gates[:, :size])
    f = _stable_sigmoid(xp, gates[:, size:2 * size])
    g = xp.tanh(gates[:, 2 * size:3 * size])
    o = _stable_sigmoid(xp, gates[:, 3 * size:])
    c_next = f * c + i * g
    return xp.concatenate([o * xp.tanh(c_next), c_next], axis=1)


def _columns(value, start, stop):
    return getitem(value, index=(slice(None), slice(start, stop)))


def _gates(gx, h, c, w_hh, b_hh):
    """The gates and the new cell state, recomputed with differentiable ops (cheaper than saving them)."""
    size = h.shape[-1]
    gates = gx + matmul(h, swapaxes(w_hh, -1, -2)) + b_hh
    i = sigmoid(_columns(gates, 0, size))
    f = sigmoid(_columns(gates, size, 2 * size))
    g = tanh(_columns(gates, 2 * size, 3 * size))
    o = sigmoid(_columns(gates, 3 * size, 4 * size))
    c_next = f * c + i * g
    return i, f, g, o, c_next


def _lstm_cell_vjp(grad, out, gx, h, c, w_hh, b_hh):
    size = h.shape[-1]
    i, f, g, o, c_next = _gates(gx, h, c, w_hh, b_hh)
    grad_h_next, grad_c_next = _columns(grad, 0, size), _columns(grad, size, 2 * size)
    tanh_c = tanh(c_next)
    grad_c_total = grad_c_next + grad_h_next * o * (1 - tanh_c * tanh_c)
    grad_gates = concatenate(grad_c_total * g * i * (1 - i), grad_c_total * c * f * (1 - f),
                             grad_c_total * i * (1 - g * g), grad_h_next * tanh_c * o * (1 - o), axis=1)
    grad_h = matmul(grad_gates, w_hh)
    grad_c = grad_c_total * f
    grad_w = matmul(swapaxes(grad_gates, -1, -2), h)
    grad_b = reduce_sum(grad_gates, axis=0)
    return grad_gates, grad_h, grad_c, grad_w, grad_b


def _lstm_cell_jvp(t, out, gx, h, c, w_hh, b_hh):
    size = h.shape[-1]
    t_gx, t_h, t_c, t_w, t_b = t
    i, f, g, o, c_next = _gates(gx, h, c, w_hh, b_hh)
    t_gates = t_gx + matmul(t_h, swapaxes(w_hh, -1, -2)) + matmul(h, swapaxes(t_w, -1, -2)) + t_b
    t_i = i * (1 - i) * _columns(t_gates, 0, size)
    t_f = f * (1 - f) * _columns(t_gates, size, 2 * size)
    t_g = (1 - g * g) * _columns(t_gates, 2 * size, 3 * size)
    t_o = o * (1 - o) * _columns(t_gates, 3 * size, 4 * size)
    t_c_next = t_f * c + f * t_c + t_i * g + i * t_g
    tanh_c = tanh(c_next)
    t_h_next = t_o * tanh_c + o * (1 - tanh_c * tanh_c) * t_c_next
    return concatenate(t_h_next, t_c_next, axis=1)


def _check_lstm_cell(gx, h, c, w_hh, b_hh):
    size = h.shape[-1]
    if (gx.ndim != 2 or h.ndim != 2 or tuple(c.shape) != tuple(h.shape) or gx.shape[0] != h.shape[0]
            or gx.shape[1] != 4 * size or tuple(w_hh.shape) != (4 * size, size) or tuple(b_hh.shape) != (4 * size,)):
        raise ShapeError(f"lstm_cell: shapes gx {tuple(gx.shape)}, h {tuple(h.shape)}, c {tuple(c.shape)}, w_hh "
                         f"{tuple(w_hh.shape)}, b_hh {tuple(b_hh.shape)} do not fit; expected (N, 4H), (N, H), "
                         "(N, H), (4H, H), (4H,)")


def _reference(gx, h, c, w_hh, b_hh):
    size = h.shape[-1]
    gates = gx + h @ w_hh.T + b_hh
    i, f, o = (1 / (1 + np.exp(-gates[:, k * size:(k + 1) * size])) for k in (0, 1, 3))
    g = np.tanh(gates[:, 2 * size:3 * size])
    c_next = f * c + i * g
    return np.concatenate([o * np.tanh(c_next), c_next], axis=1)


lstm_cell = defop(
    "lstm_cell", _lstm_cell_forward, vjp=_lstm_cell_vjp, jvp=_lstm_cell_jvp, check=_check_lstm_cell,
    samples=[Sample((3, 8), (3, 2), (3, 2), (8, 2), (8,)), Sample((1, 12), (1, 3), (1, 3), (12, 3), (12,))],
    reference=_reference,
    doc="""One LSTM step from precomputed input gates: ``h'`` and ``c'`` side by side, shape ``(batch, 2 *
    hidden)``.

    PyTorch: ``torch.nn.LSTMCell`` with ``gates_x = x @ W_ih.T + b_ih`` given (gate order i, f, g, o).

    Parameters
    ----------
    gates_x : Tensor, (batch, 4 * hidden)
    h, c : Tensor, (batch, hidden)
    w_hh : Tensor, (4 * hidden, hidden)
    b_hh : Tensor, (4 * hidden,)
    """)

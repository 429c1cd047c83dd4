"""``LSTM``, ``RNN`` and the single-step cells ``LSTMCell``, ``GRUCell``, ``RNNCell``:
PyTorch's parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), shapes,
gate order and initialisation (every parameter uniform in ``(-1/sqrt(H), 1/sqrt(H))``).

LSTM, gates stacked (i, f, g, o)::

    i, f, o = sigmoid(...), g = tanh(...)     of  W_i* x + b_i* + W_h* h + b_h*
    c' = f * c + i * g
    h' = o * tanh(c')

RNN: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu).  As in ``GRU``, the
input projection of all steps is one matmul per layer and direction; only the
recurrence runs step by step, written with differentiable ops.
"""

from __future__ import annotations

import math

from ...errors import ShapeError
from ...ops.creation import zeros
from ...ops.lstm import lstm_cell
from ...ops.methods import cat, stack
from ...ops.recurrent import gru_cell
from .. import functional as F
from .. import init
from ..module import Module
from ._common import new_parameter
from .recurrent import _Unbind

__all__ = ["LSTM", "RNN", "LSTMCell", "GRUCell", "RNNCell"]


def _lstm_step(gates_x, h, c, w_hh, b_hh):
    # One op per step (gpugrad.ops.lstm), its two results side by side: a step
    # written with elementwise ops records ~14 nodes, whose bookkeeping dominates.
    if b_hh is None:
        b_hh = zeros(w_hh.shape[0], dtype=w_hh.dtype, device=w_hh.device)
    size = h.shape[-1]
    both = lstm_cell(gates_x, h, c, w_hh, b_hh)
    return both[:, :size], both[:, size:]


def _rnn_step(gates_x, h, w_hh, b_hh, nonlinearity):
    pre = gates_x + h @ w_hh.T
    if b_hh is not None:
        pre = pre + b_hh
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


class _StackedRecurrent(Module):
    """What LSTM and RNN share: the parameters per layer and direction, shapes, the layer loop."""

    _gates = 1
    _name = "RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__()
        name = self._name
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: hidden_size ({hidden_size}) and num_layers ({num_layers}) must be positive")
        if isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be a probability in [0, 1], got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        directions = 2 if bidirectional else 1
        gate_size = self._gates * hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for kind, shape in shapes:
                    setattr(self, kind + suffix, new_parameter(*shape, device=device, dtype=dtype))
                    self._flat_weights_names.append(kind + suffix)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def flatten_parameters(self):
        """Nothing to do here (PyTorch compacts cuDNN weights); kept so PyTorch code runs unchanged."""

    @property
    def all_weights(self):
        per_direction = 4 if self.bias else 2
        params = [getattr(self, name) for name in self._flat_weights_names]
        return [params[i:i + per_direction] for i in range(0, len(params), per_direction)]

    def _weights(self, suffix):
        w_ih = getattr(self, "weight_ih" + suffix)
        w_hh = getattr(self, "weight_hh" + suffix)
        b_ih = getattr(self, "bias_ih" + suffix) if self.bias else None
        b_hh = getattr(self, "bias_hh" + suffix) if self.bias else None
        return w_ih, w_hh, b_ih, b_hh

    def _prepare(self, input, states):
        """Check shapes; return (input as (T, N, I), states as lists of (layers * D, N, H), batched)."""
        name = self._name
        if input.ndim not in (2, 3):
            raise ShapeError(f"{name}: expected a 2-d (unbatched) or 3-d input, got shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input has {input.shape[-1]} features in its last dim (shape "
                             f"{tuple(input.shape)}), expected input_size={self.input_size}")
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        directions = 2 if self.bidirectional else 1
        expected = (self.num_layers * directions, input.shape[1], self.hidden_size)
        prepared = []
        for state in states:
            if state is None:
                state = zeros(expected, dtype=input.dtype, device=input.device)
            else:
                if state.ndim != (3 if batched else 2):
                    raise ShapeError(f"{name}: for {'batched' if batched else 'unbatched'} input the hidden state "
                                     f"must be {3 if batched else 2}-d, got shape {tuple(state.shape)}")
                if not batched:
                    state = state.unsqueeze(1)
                if tuple(state.shape) != expected:
                    raise ShapeError(f"{name}: expected hidden state of shape {expected}, got {tuple(state.shape)}")
            prepared.append(state)
        return input, prepared, batched

    def _layers(self, input, states):
        """Run every layer and direction; ``states`` is a list of (layers * D, N, H) tensors."""
        directions = 2 if self.bidirectional else 1
        layer_input = input
        finals = [[] for _ in states]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                index = layer * directions + direction
                out, last = self._run_direction(layer_input, [s[index] for s in states], suffix, bool(direction))
                outputs.append(out)
                for final, value in zip(finals, last):
                    final.append(value)
            layer_input = outputs[0] if directions == 1 else cat(outputs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        return layer_input, [stack(final, 0) for final in finals]

    def _run_direction(self, x, state, suffix, reverse):
        w_ih, w_hh, b_ih, b_hh = self._weights(suffix)
        gates_x = x @ w_ih.T
        if b_ih is not None:
            gates_x = gates_x + b_ih
        rows = _Unbind.apply(gates_x) if x.shape[0] > 1 else (gates_x[0],)
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        outputs = [None] * x.shape[0]
        for t in steps:
            state = self._step(rows[t], state, w_hh, b_hh)
            outputs[t] = state[0]
        return stack(outputs, 0), state

    def _finish(self, output, finals, batched):
        if not batched:
            return output.squeeze(1), [f.squeeze(1) for f in finals]
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, finals

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity!r}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class LSTM(_StackedRecurrent):
    """Multi-layer LSTM over ``(L, N, H_in)`` inputs (``(N, L, H_in)`` with ``batch_first``).

    Returns ``(output, (h_n, c_n))``: ``output`` is the last layer's hidden state
    at every step, ``(L, N, D * H)``; ``h_n`` and ``c_n`` the final states of
    every layer and direction, ``(num_layers * D, N, H)``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> lstm = gg.nn.LSTM(3, 8, num_layers=2, batch_first=True)
    >>> output, (h_n, c_n) = lstm(gg.randn(4, 10, 3))
    >>> output.shape, h_n.shape, c_n.shape
    (Size([4, 10, 8]), Size([2, 4, 8]), Size([2, 4, 8]))
    """

    _gates = 4
    _name = "LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        if proj_size:
            raise ValueError("LSTM: proj_size is not supported; add a Linear layer on the output instead")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype)
        self.proj_size = 0

    def _step(self, gates_x, state, w_hh, b_hh):
        return _lstm_step(gates_x, state[0], state[1], w_hh, b_hh)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTM: hx must be a tuple (h_0, c_0)")
        input, states, batched = self._prepare(input, list(hx) if hx is not None else [None, None])
        output, finals = self._layers(input, states)
        output, (h_n, c_n) = self._finish(output, finals, batched)
        return output, (h_n, c_n)


class RNN(_StackedRecurrent):
    """Multi-layer Elman RNN, ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (``nonlinearity='relu'``: relu).

    Returns ``(output, h_n)`` with GRU's shapes.

    Examples
    --------
    >>> import gpugrad as gg
    >>> rnn = gg.nn.RNN(3, 5, nonlinearity="relu")
    >>> output, h_n = rnn(gg.randn(7, 2, 3))
    >>> output.shape, h_n.shape
    (Size([7, 2, 5]), Size([1, 2, 5]))
    """

    _name = "RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype)
        self.nonlinearity = nonlinearity

    def _step(self, gates_x, state, w_hh, b_hh):
        return (_rnn_step(gates_x, state[0], w_hh, b_hh, self.nonlinearity),)

    def forward(self, input, hx=None):
        input, states, batched = self._prepare(input, [hx])
        output, finals = self._layers(input, states)
        output, (h_n,) = self._finish(output, finals, batched)
        return output, h_n


class _Cell(Module):
    _gates = 1
    _name = "RNNCell"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        if hidden_size <= 0:
            raise ValueError(f"{self._name}: hidden_size must be positive, got {hidden_size}")
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bool(bias)
        gate_size = self._gates * hidden_size
        self.weight_ih = new_parameter(gate_size, input_size, device=device, dtype=dtype)
        self.weight_hh = new_parameter(gate_size, hidden_size, device=device, dtype=dtype)
        if bias:
            self.bias_ih = new_parameter(gate_size, device=device, dtype=dtype)
            self.bias_hh = new_parameter(gate_size, device=device, dtype=dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def _input(self, input, states):
        """``input`` as (N, I) and the states as (N, H) (zeros when None); whether it was batched."""
        if input.ndim not in (1, 2):
            raise ShapeError(f"{self._name}: expected a 1-d (unbatched) or 2-d input, got shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{self._name}: input has {input.shape[-1]} features (shape {tuple(input.shape)}), "
                             f"expected input_size={self.input_size}")
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
        prepared = []
        for state in states:
            if state is None:
                state = zeros((input.shape[0], self.hidden_size), dtype=input.dtype, device=input.device)
            else:
                if not batched:
                    state = state.unsqueeze(0)
                if tuple(state.shape) != (input.shape[0], self.hidden_size):
                    raise ShapeError(f"{self._name}: hidden state of shape {tuple(state.shape)} does not fit an input "
                                     f"batch of {input.shape[0]} and hidden_size={self.hidden_size}")
            prepared.append(state)
        gates_x = input @ self.weight_ih.T
        if self.bias_ih is not None:
            gates_x = gates_x + self.bias_ih
        return gates_x, prepared, batched

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity!r}"
        return text


class LSTMCell(_Cell):
    """One LSTM step: ``(h', c') = cell(x, (h, c))``, inputs ``(N, I)`` or ``(I,)``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> cell = gg.nn.LSTMCell(3, 4)
    >>> h, c = cell(gg.randn(2, 3))
    >>> h.shape, c.shape
    (Size([2, 4]), Size([2, 4]))
    """

    _gates = 4
    _name = "LSTMCell"

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTMCell: hx must be a tuple (h, c)")
        gates_x, (h, c), batched = self._input(input, list(hx) if hx is not None else [None, None])
        h, c = _lstm_step(gates_x, h, c, self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_Cell):
    """One GRU step: ``h' = cell(x, h)`` (gates r, z, n as in ``GRU``).

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.GRUCell(3, 4)(gg.randn(2, 3)).shape
    Size([2, 4])
    """

    _gates = 3
    _name = "GRUCell"

    def forward(self, input, hx=None):
        gates_x, (h,), batched = self._input(input, [hx])
        b_hh = self.bias_hh if self.bias_hh is not None else zeros(3 * self.hidden_size, dtype=h.dtype,
                                                                     device=h.device)
        h = gru_cell(gates_x, h, self.weight_hh, b_hh)
        return h if batched else h.squeeze(0)


class RNNCell(_Cell):
    """One Elman RNN step: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu).

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.RNNCell(3, 4)(gg.randn(2, 3)).shape
    Size([2, 4])
    """

    _name = "RNNCell"

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        gates_x, (h,), batched = self._input(input, [hx])
        h = _rnn_step(gates_x, h, self.weight_hh, self.bias_hh, self.nonlinearity)
        return h if batched else h.squeeze(0)

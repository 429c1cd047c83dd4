"""``GRU``: PyTorch's gated recurrent unit, parameter names, shapes and gate equations.

For each time step, with the gates stacked in the order (r, z, n) inside
``weight_ih_l{k}`` / ``weight_hh_l{k}``::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

The input projections of all time steps are one matmul per layer and
direction; only the hidden-state recurrence runs step by step.
"""

from __future__ import annotations

import math

from ...autograd.function import Function
from ...errors import ShapeError
from ...ops.creation import zeros
from ...ops.methods import cat, stack
from ...ops.recurrent import gru_cell
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ._common import new_parameter

__all__ = ["GRU"]


class _Unbind(Function):
    """Split ``x`` along dim 0 into its rows, as one op.

    NOTE: indexing ``x[t]`` once per time step would give every step's backward
    a full-size zero array to scatter into (quadratic in the sequence length);
    here backward stacks the row gradients once.
    """

    @staticmethod
    def forward(ctx, x):
        return tuple(Tensor._make(x.array[t]) for t in range(x.shape[0]))

    @staticmethod
    def backward(ctx, *grads):
        return stack(grads, 0)

    @staticmethod
    def jvp(ctx, tangent):
        return tuple(tangent[t] for t in range(tangent.shape[0]))


class GRU(Module):
    """Multi-layer GRU over ``(L, N, H_in)`` inputs (``(N, L, H_in)`` with ``batch_first``).

    Returns ``(output, h_n)``: ``output`` holds the last layer's hidden state
    at every step, ``(L, N, D * H_out)``; ``h_n`` the final hidden state of every
    layer and direction, ``(num_layers * D, N, H_out)``.  Unbatched ``(L, H_in)``
    input works too.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gru = gg.nn.GRU(1, 8, batch_first=True)
    >>> output, h_n = gru(gg.randn(4, 40, 1))
    >>> output.shape, h_n.shape
    (Size([4, 40, 8]), Size([1, 4, 8]))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__()
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"GRU: hidden_size ({hidden_size}) and num_layers ({num_layers}) must be positive")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"GRU: dropout must be a probability in [0, 1], got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        gate_size = 3 * hidden_size
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
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def flatten_parameters(self):
        """Nothing to do here (PyTorch compacts cuDNN weights); kept so PyTorch code runs unchanged."""

    @property
    def all_weights(self):
        per_direction = 4 if self.bias else 2
        params = [getattr(self, name) for name in self._flat_weights_names]
        return [params[i:i + per_direction] for i in range(0, len(params), per_direction)]

    def _run_direction(self, x, h, suffix, reverse):
        """One layer, one direction: ``x`` (T, N, I) and ``h`` (N, H) to outputs (T, N, H) and the last h."""
        w_ih = getattr(self, "weight_ih" + suffix)
        w_hh = getattr(self, "weight_hh" + suffix)
        gates_x = x @ w_ih.T
        if self.bias:
            gates_x = gates_x + getattr(self, "bias_ih" + suffix)
            b_hh = getattr(self, "bias_hh" + suffix)
        else:
            b_hh = zeros(w_hh.shape[0], dtype=w_hh.dtype, device=w_hh.device)
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        rows = _Unbind.apply(gates_x) if x.shape[0] > 1 else (gates_x[0],)
        outputs = [None] * x.shape[0]
        for t in steps:
            # One op per step (gpugrad.ops.recurrent): a step written with
            # elementwise ops records ~15 nodes, whose bookkeeping dominated.
            h = gru_cell(rows[t], h, w_hh, b_hh)
            outputs[t] = h
        return stack(outputs, 0), h

    def forward(self, input, hx=None):
        directions = 2 if self.bidirectional else 1
        if input.ndim not in (2, 3):
            raise ShapeError(f"GRU: expected a 2-d (unbatched) or 3-d input, got shape {tuple(input.shape)}")
        batched = input.ndim == 3
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"GRU: input has {input.shape[-1]} features in its last dim (shape "
                             f"{tuple(input.shape)}), expected input_size={self.input_size}")
        if not batched:
            input = input.unsqueeze(1)
            if hx is not None:
                if hx.ndim != 2:
                    raise ShapeError(f"GRU: for unbatched input hx must be 2-d, got shape {tuple(hx.shape)}")
                hx = hx.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        batch = input.shape[1]
        expected = (self.num_layers * directions, batch, self.hidden_size)
        if hx is None:
            hx = zeros(expected, dtype=input.dtype, device=input.device)
        elif tuple(hx.shape) != expected:
            raise ShapeError(f"GRU: expected hidden size {expected}, got {tuple(hx.shape)}")
        layer_input = input
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                out, h_last = self._run_direction(layer_input, hx[layer * directions + direction], suffix,
                                                  reverse=bool(direction))
                outputs.append(out)
                finals.append(h_last)
            layer_input = outputs[0] if directions == 1 else cat(outputs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        output, h_n = layer_input, stack(finals, 0)
        if not batched:
            return output.squeeze(1), h_n.squeeze(1)
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, h_n

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text

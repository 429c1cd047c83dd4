"""``MultiheadAttention``: PyTorch's parameters (``in_proj_weight``, ``out_proj``), masks and outputs."""

from __future__ import annotations

import math

from ... import backend
from ...errors import DTypeError, ShapeError
from ...ops.creation import zeros
from ...ops.methods import cat, pad
from ...ops.nn_ops import fused_softmax
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ._common import new_parameter
from .linear import Linear

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """PyTorch's name for the output projection of attention (a plain Linear; kept for identical reprs)."""


def _additive_mask(mask, dtype, name):
    """A float mask to add to the attention scores: bool True (masked) becomes -inf."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        mask = Tensor(mask)
    data = mask.array
    xp = backend.xp_of(data)
    if data.dtype == backend.bool_:
        return Tensor._make(xp.where(data, xp.asarray(-math.inf, dtype=dtype), xp.asarray(0, dtype=dtype)))
    if not backend.is_floating(data.dtype):
        raise DTypeError(f"MultiheadAttention: {name} must be bool (True = masked) or floating (added to the "
                         f"scores), got {data.dtype}")
    return mask if data.dtype == dtype else mask.to(dtype)


class MultiheadAttention(Module):
    """Attention from ``query`` to ``key``/``value`` with ``num_heads`` heads, as in PyTorch.

    Inputs are ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``) or unbatched ``(L, E)``.
    Returns ``(attn_output, attn_weights)``; the weights are averaged over heads
    unless ``average_attn_weights=False``, and None when ``need_weights=False``.
    ``key_padding_mask`` ``(N, S)`` and ``attn_mask`` ``(L, S)`` or ``(N * num_heads, L, S)``
    are bool (True = may not attend) or float (added to the scores).

    Examples
    --------
    >>> import gpugrad as gg
    >>> mha = gg.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = gg.randn(3, 5, 8)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    (Size([3, 5, 8]), Size([3, 5, 5]))
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) and num_heads ({num_heads}) must be "
                             "positive")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = float(dropout), batch_first
        self.head_dim = embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = new_parameter(3 * embed_dim, embed_dim, device=device, dtype=dtype)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = new_parameter(embed_dim, embed_dim, device=device, dtype=dtype)
            self.k_proj_weight = new_parameter(embed_dim, self.kdim, device=device, dtype=dtype)
            self.v_proj_weight = new_parameter(embed_dim, self.vdim, device=device, dtype=dtype)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = new_parameter(3 * embed_dim, device=device, dtype=dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = new_parameter(1, 1, embed_dim, device=device, dtype=dtype)
            self.bias_v = new_parameter(1, 1, embed_dim, device=device, dtype=dtype)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _projections(self):
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            weights = (w[:E], w[E:2 * E], w[2 * E:])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        biases = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        return weights, biases

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ShapeError(f"MultiheadAttention: query, key and value must all be 3-d (batched) or 2-d "
                             f"(unbatched), got shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        if batched and not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        elif not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        # now (N, L, E) and (N, S, kdim/vdim)
        batch, target_len, embed = query.shape
        source_len = key.shape[1]
        if embed != self.embed_dim:
            raise ShapeError(f"MultiheadAttention: query has embedding size {embed}, expected {self.embed_dim}")
        if key.shape[-1] != self.kdim or value.shape[-1] != self.vdim or key.shape[:2] != value.shape[:2]:
            raise ShapeError(f"MultiheadAttention: key {tuple(key.shape)} and value {tuple(value.shape)} must share "
                             f"batch and length and have kdim={self.kdim}, vdim={self.vdim} features")
        heads, head_dim = self.num_heads, self.head_dim
        (w_q, w_k, w_v), (b_q, b_k, b_v) = self._projections()

        def split_heads(projected):
            return projected.reshape(batch, projected.shape[1], heads, head_dim).transpose(1, 2)  # (N, heads, len, hd)

        q = split_heads(F.linear(query, w_q, b_q))
        k, v = F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
        extra = 0                                   # key positions added beyond the given source_len
        if self.bias_k is not None:                 # one learned key/value appended to every sequence
            k = cat([k, self.bias_k.expand(batch, 1, embed)], 1)
            v = cat([v, self.bias_v.expand(batch, 1, embed)], 1)
            extra += 1
        k, v = split_heads(k), split_heads(v)
        if self.add_zero_attn:                      # one all-zero key/value after projection
            zero = zeros((batch, heads, 1, head_dim), dtype=k.dtype, device=k.device)
            k, v = cat([k, zero], 2), cat([v, zero], 2)
            extra += 1
        scores = (q * (1.0 / math.sqrt(head_dim))) @ k.transpose(-2, -1)    # (N, heads, L, S)

        mask = _additive_mask(attn_mask, scores.dtype, "attn_mask")
        if mask is None and is_causal:
            xp = backend.xp_of(scores.array)
            upper = xp.triu(xp.ones((target_len, source_len), dtype=bool), 1)
            mask = _additive_mask(Tensor._make(upper), scores.dtype, "attn_mask")
        if mask is not None:
            if mask.ndim == 2:
                if tuple(mask.shape) != (target_len, source_len):
                    raise ShapeError(f"MultiheadAttention: a 2-d attn_mask must have shape "
                                     f"{(target_len, source_len)}, got {tuple(mask.shape)}")
            elif mask.ndim == 3:
                if tuple(mask.shape) != (batch * heads, target_len, source_len):
                    raise ShapeError(f"MultiheadAttention: a 3-d attn_mask must have shape "
                                     f"{(batch * heads, target_len, source_len)}, got {tuple(mask.shape)}")
                mask = mask.reshape(batch, heads, target_len, source_len)
            else:
                raise ShapeError(f"MultiheadAttention: attn_mask must be 2-d or 3-d, got shape {tuple(mask.shape)}")
            scores = scores + (pad(mask, (0, extra)) if extra else mask)
        padding = _additive_mask(key_padding_mask, scores.dtype, "key_padding_mask")
        if padding is not None:
            if tuple(padding.shape) != (batch, source_len):
                raise ShapeError(f"MultiheadAttention: key_padding_mask must have shape {(batch, source_len)}, "
                                 f"got {tuple(padding.shape)}")
            if extra:
                padding = pad(padding, (0, extra))
            scores = scores + padding.reshape(batch, 1, 1, source_len + extra)

        weights = fused_softmax(scores, axis=-1)      # one node; its VJP reads only the weights
        if self.dropout > 0.0 and self.training:
            weights = F.dropout(weights, self.dropout, True)
        attended = (weights @ v).transpose(1, 2).reshape(batch, target_len, embed)
        output = self.out_proj(attended)

        if batched and not self.batch_first:
            output = output.transpose(0, 1)
        elif not batched:
            output = output.squeeze(0)
        if not need_weights:
            return output, None
        if average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            weights = weights.squeeze(0)
        return output, weights


"""``Conv1d`` and ``Conv2d`` with PyTorch's arguments, padding modes and initialisation."""

from __future__ import annotations

import math

from ...ops.methods import cat, flip
from .. import functional as F
from .. import init
from ..module import Module
from ._common import new_parameter, pair, single

__all__ = ["Conv1d", "Conv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _slice_dim(x, dim, start, stop):
    index = (slice(None),) * dim + (slice(start, stop),)
    return x[index]


def pad_by_mode(x, pads, mode):
    """Pad the trailing dimensions by ``pads`` (PyTorch order: last dim's (left, right) first)
    copying values from the tensor itself: ``'reflect'``, ``'replicate'`` or ``'circular'``."""
    for i in range(len(pads) // 2):
        dim = x.ndim - 1 - i
        left, right = pads[2 * i], pads[2 * i + 1]
        if not left and not right:
            continue
        size = x.shape[dim]
        if mode == "circular":
            if left > size or right > size:
                raise ValueError(f"conv: circular padding {left, right} is larger than the input size {size}")
            parts = [_slice_dim(x, dim, size - left, size)] if left else []
            parts += [x] + ([_slice_dim(x, dim, 0, right)] if right else [])
        elif mode == "replicate":
            parts = [_slice_dim(x, dim, 0, 1)] * left + [x] + [_slice_dim(x, dim, size - 1, size)] * right
        elif mode == "reflect":
            if left >= size or right >= size:
                raise ValueError(f"conv: reflect padding {left, right} must be smaller than the input size {size}")
            parts = [flip(_slice_dim(x, dim, 1, left + 1), dim)] if left else []
            parts += [x] + ([flip(_slice_dim(x, dim, size - 1 - right, size - 1), dim)] if right else [])
        else:
            raise ValueError(f"conv: padding_mode {mode!r} is not one of {_PADDING_MODES}")
        x = cat(parts, dim)
    return x


class _ConvNd(Module):
    _dims = 0
    _tuple = staticmethod(single)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = self._tuple(kernel_size)
        self.stride = self._tuple(stride)
        self.dilation = self._tuple(dilation)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be 'same', 'valid' or int(s), got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions "
                                 f"(stride={self.stride})")
            self.padding = padding
        else:
            self.padding = self._tuple(padding)
        self.groups, self.padding_mode = int(groups), padding_mode
        # (left, right) per dimension, last dimension first: F.pad's order
        if self.padding == "valid":
            pads = [0, 0] * self._dims
        elif self.padding == "same":
            pads = []
            for d, k in zip(reversed(self.dilation), reversed(self.kernel_size)):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
        else:
            pads = [p for p in reversed(self.padding) for _ in range(2)]
        self._reversed_padding_repeated_twice = pads
        self.weight = new_parameter(out_channels, in_channels // groups, *self.kernel_size, device=device, dtype=dtype)
        if bias:
            self.bias = new_parameter(out_channels, device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.weight.shape[2:])
            if fan_in:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _conv(self, input, padding):
        raise NotImplementedError

    def forward(self, input):
        pads = self._reversed_padding_repeated_twice
        if self.padding_mode != "zeros":
            return self._conv(pad_by_mode(input, pads, self.padding_mode), self._tuple(0))
        symmetric = all(pads[2 * i] == pads[2 * i + 1] for i in range(self._dims))
        if symmetric:
            return self._conv(input, tuple(reversed(pads[::2])))
        return self._conv(F.pad(input, pads), self._tuple(0))

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != self._tuple(0):
            text += f", padding={self.padding}"
        if self.dilation != self._tuple(1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class Conv1d(_ConvNd):
    """1-d convolution over ``(N, C_in, L)`` (or unbatched ``(C_in, L)``) inputs.

    Examples
    --------
    >>> import gpugrad as gg
    >>> conv = gg.nn.Conv1d(1, 4, kernel_size=5, padding="same")
    >>> conv(gg.randn(2, 1, 40)).shape
    Size([2, 4, 40])
    """

    _dims = 1
    _tuple = staticmethod(single)

    def _conv(self, input, padding):
        return F.conv1d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-d convolution over ``(N, C_in, H, W)`` (or unbatched ``(C_in, H, W)``) inputs."""

    _dims = 2
    _tuple = staticmethod(pair)

    def _conv(self, input, padding):
        return F.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

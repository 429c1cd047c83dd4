"""``ConvTranspose1d`` and ``ConvTranspose2d``: PyTorch's arguments, weight layout
``(in_channels, out_channels / groups, *kernel_size)`` and initialisation."""

from __future__ import annotations

import math

from ...errors import ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ._common import new_parameter, pair, single

__all__ = ["ConvTranspose1d", "ConvTranspose2d"]


class _ConvTransposeNd(Module):
    _dims = 0
    _tuple = staticmethod(single)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups}), a positive integer")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported for transposed convolutions "
                             f"(as in PyTorch), got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding must be int(s) for transposed convolutions, got {padding!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = self._tuple(kernel_size)
        self.stride = self._tuple(stride)
        self.padding = self._tuple(padding)
        self.output_padding = self._tuple(output_padding)
        self.dilation = self._tuple(dilation)
        self.groups, self.padding_mode = int(groups), padding_mode
        for o, s, d in zip(self.output_padding, self.stride, self.dilation):
            if not 0 <= o < max(s, d):
                raise ValueError(f"{name}: output_padding {self.output_padding} must be smaller than stride "
                                 f"{self.stride} or dilation {self.dilation}")
        self.weight = new_parameter(in_channels, out_channels // groups, *self.kernel_size, device=device,
                                    dtype=dtype)
        if bias:
            self.bias = new_parameter(out_channels, device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's: fan_in is weight.size(1) * kernel elements ((out/groups) * k), as for Conv.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.weight.shape[2:])
            if fan_in:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _output_padding(self, input, output_size):
        """PyTorch's: the output_padding that makes the output ``output_size`` (within one stride)."""
        if output_size is None:
            return self.output_padding
        sizes = tuple(int(s) for s in output_size)[-self._dims:]
        if len(sizes) != self._dims:
            raise ShapeError(f"{type(self).__name__}: output_size needs {self._dims} spatial sizes, got {output_size}")
        padding = []
        for i, size in enumerate(sizes):
            smallest = ((input.shape[input.ndim - self._dims + i] - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            if not smallest <= size < smallest + self.stride[i]:
                raise ShapeError(f"{type(self).__name__}: requested output size {sizes} is not reachable; each size "
                                 f"must lie in [{smallest}, {smallest + self.stride[i] - 1}] for dim {i}")
            padding.append(size - smallest)
        return tuple(padding)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != self._tuple(0):
            text += f", padding={self.padding}"
        if self.dilation != self._tuple(1):
            text += f", dilation={self.dilation}"
        if self.output_padding != self._tuple(0):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-d convolution over ``(N, C_in, L)`` (or ``(C_in, L)``) inputs.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.ConvTranspose1d(4, 2, kernel_size=4, stride=2, padding=1)(gg.randn(1, 4, 8)).shape
    Size([1, 2, 16])
    """

    _dims = 1
    _tuple = staticmethod(single)

    def forward(self, input, output_size=None):
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-d convolution over ``(N, C_in, H, W)`` (or ``(C_in, H, W)``) inputs (DCGAN's generator).

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.ConvTranspose2d(8, 3, kernel_size=4, stride=2, padding=1)(gg.randn(2, 8, 5, 5)).shape
    Size([2, 3, 10, 10])
    """

    _dims = 2
    _tuple = staticmethod(pair)

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)

"""Pooling layers: thin modules over the ``F.*_pool*`` functions, with PyTorch's arguments."""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool2d"]


class _MaxPoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def _options(self):
        # Only what differs from the defaults: F keeps PyTorch's defaults for the rest.
        options = {}
        if self.dilation not in (1, (1,), (1, 1)):
            options["dilation"] = self.dilation
        if self.ceil_mode:
            options["ceil_mode"] = True
        if self.return_indices:
            options["return_indices"] = True
        return options

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max over sliding windows of ``(N, C, L)`` inputs; ``stride`` defaults to ``kernel_size``."""

    def forward(self, input):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, **self._options())


class MaxPool2d(_MaxPoolNd):
    """Max over sliding windows of ``(N, C, H, W)`` inputs; ``stride`` defaults to ``kernel_size``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.MaxPool2d(2)(gg.randn(1, 3, 8, 6)).shape
    Size([1, 3, 4, 3])
    """

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, **self._options())


class _AvgPoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, count_include_pad

    def _options(self):
        options = {}
        if self.ceil_mode:
            options["ceil_mode"] = True
        if not self.count_include_pad:
            options["count_include_pad"] = False
        return options

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Mean over sliding windows of ``(N, C, L)`` inputs."""

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, **self._options())


class AvgPool2d(_AvgPoolNd):
    """Mean over sliding windows of ``(N, C, H, W)`` inputs."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = divisor_override

    def _options(self):
        options = super()._options()
        if self.divisor_override is not None:
            options["divisor_override"] = self.divisor_override
        return options

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, **self._options())


class AdaptiveAvgPool2d(Module):
    """Average-pool ``(N, C, H, W)`` to ``output_size`` (an int, a pair, None keeps a size)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"

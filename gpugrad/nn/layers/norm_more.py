"""``GroupNorm``, ``InstanceNorm1d/2d`` and ``RMSNorm`` with PyTorch's arguments, defaults and parameter names."""

from __future__ import annotations

import numbers

from ... import backend
from ...errors import ShapeError
from ...ops.creation import ones, zeros
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ._common import new_parameter

__all__ = ["GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "RMSNorm"]


class GroupNorm(Module):
    """Normalise ``(N, C, ...)`` over groups of ``C / num_groups`` channels; per-channel ``weight``/``bias``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.GroupNorm(2, 4)(gg.randn(3, 4, 5, 5)).shape
    Size([3, 4, 5, 5])
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = int(num_groups), int(num_channels), eps, affine
        if affine:
            self.weight = new_parameter(num_channels, device=device, dtype=dtype)
            self.bias = new_parameter(num_channels, device=device, dtype=dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ShapeError(f"GroupNorm: expected input (N, {self.num_channels}, ...), got shape "
                             f"{tuple(input.shape)}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(Module):
    _spatial = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = new_parameter(num_features, device=device, dtype=dtype)
            self.bias = new_parameter(num_features, device=device, dtype=dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        dtype = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", Tensor(0, dtype=backend.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, input):
        name = type(self).__name__
        if input.ndim not in (self._spatial + 1, self._spatial + 2):
            raise ShapeError(f"{name}: expected a {self._spatial + 1}-d or {self._spatial + 2}-d input, got shape "
                             f"{tuple(input.shape)}")
        unbatched = input.ndim == self._spatial + 1
        if unbatched:
            input = input.unsqueeze(0)
        if input.shape[1] != self.num_features and self.affine:
            raise ShapeError(f"{name}: expected {self.num_features} channels, got input of shape "
                             f"{tuple(input.shape)}")
        use_input_stats = self.training or not self.track_running_stats
        update = self.training and self.track_running_stats
        # NOTE: PyTorch's instance norm never advances num_batches_tracked (the buffer exists for
        # state-dict compatibility with BatchNorm); the running averages always use ``momentum``.
        out = F.instance_norm(input, self.running_mean if update or not use_input_stats else None,
                              self.running_var if update or not use_input_stats else None, self.weight, self.bias,
                              use_input_stats, self.momentum, self.eps)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Normalise each channel of each sample of ``(N, C, L)`` over ``L`` (no affine, no running stats by default)."""

    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """Normalise each channel of each sample of ``(N, C, H, W)`` over ``H, W`` (PyTorch's defaults:
    ``affine=False``, ``track_running_stats=False``).

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.InstanceNorm2d(3)(gg.randn(2, 3, 4, 4)).shape
    Size([2, 3, 4, 4])
    """

    _spatial = 2


class RMSNorm(Module):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the trailing ``normalized_shape`` dims.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.RMSNorm(8)(gg.randn(2, 8)).shape
    Size([2, 8])
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = new_parameter(*self.normalized_shape, device=device, dtype=dtype)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"

"""``PReLU``, ``Hardswish``, ``Dropout2d`` and ``Upsample`` with PyTorch's arguments."""

from __future__ import annotations

from .. import functional as F
from .. import init
from ..module import Module
from ._common import new_parameter

__all__ = ["PReLU", "Hardswish", "Dropout2d", "Upsample"]


class PReLU(Module):
    """``max(0, x) + a * min(0, x)`` with a learned ``a`` (one, or one per channel), initialised to ``init``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.PReLU()(gg.tensor([-1.0, 2.0])).tolist()
    [-0.25, 2.0]
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = int(num_parameters), float(init)
        self.weight = new_parameter(self.num_parameters, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Hardswish(Module):
    """``x * relu6(x + 3) / 6``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.Hardswish()(gg.tensor([4.0])).tolist()
    [4.0]
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardswish(input)


class Dropout2d(Module):
    """Zero whole channels with probability ``p`` while training (scaling the rest by 1/(1-p)).

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.Dropout2d(0.5).eval()(gg.ones(1, 2, 3, 3)).sum().item()
    18.0
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout2d: p must be a probability in [0, 1], got {p}")
        self.p, self.inplace = float(p), inplace

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Upsample(Module):
    """Resize with :func:`gpugrad.nn.functional.interpolate` (``nearest``, ``linear``, ``bilinear``).

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.nn.Upsample(scale_factor=2, mode="nearest")(gg.ones(1, 1, 2, 2)).shape
    Size([1, 1, 4, 4])
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size, self.mode, self.align_corners = size, mode, align_corners
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) else scale_factor
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        text = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return text + f", mode={self.mode!r}"

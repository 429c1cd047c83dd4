"""``Linear``: y = x W^T + b, PyTorch's layout and initialisation."""

from __future__ import annotations

import math

from .. import functional as F
from .. import init
from ..module import Module
from ._common import new_parameter

__all__ = ["Linear"]


class Linear(Module):
    """Affine map of the last dimension: ``y = x @ weight.T + bias``.

    ``weight`` has shape ``(out_features, in_features)``; both it and ``bias``
    start as in PyTorch: kaiming_uniform_(a=sqrt(5)) and U(-1/sqrt(in), 1/sqrt(in)).

    Examples
    --------
    >>> import gpugrad as gg
    >>> layer = gg.nn.Linear(3, 2)
    >>> layer(gg.ones(5, 3)).shape
    Size([5, 2])
    >>> layer
    Linear(in_features=3, out_features=2, bias=True)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = new_parameter(out_features, in_features, device=device, dtype=dtype)
        if bias:
            self.bias = new_parameter(out_features, device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        # The registry directly: self.weight would miss the instance dict and go
        # through Module.__getattr__ (twice per call, in every step).
        parameters = self._parameters
        return F.linear(input, parameters["weight"], parameters["bias"])

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

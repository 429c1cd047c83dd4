"""Activation modules: each holds its options and calls the matching ``F`` function.

``inplace=True`` is accepted for PyTorch compatibility and computes out of
place (the result is the same; only memory differs).

The activations with a fused ``linear_<name>`` op say so with
``linear_activation()``: the activation's name and parameters for
``ops.linear(..., activation=name, **parameters)``, which ``nn.Sequential``
runs for a ``Linear`` followed by one of them (see :data:`FUSABLE`).
"""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = ["ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softplus", "Mish", "Softmax",
           "LogSoftmax"]


class ReLU(Module):
    """max(x, 0)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input)

    def linear_activation(self):
        """``("relu", {})``: what ``nn.Sequential`` fuses into a preceding Linear."""
        return "relu", {}

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x for x >= 0, ``negative_slope * x`` otherwise."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def linear_activation(self):
        return "leaky_relu", {"negative_slope": float(self.negative_slope)}

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """x for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha)

    def linear_activation(self):
        return "elu", {"alpha": float(self.alpha)}

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x * Phi(x); ``approximate='tanh'`` uses the tanh formula."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def linear_activation(self):
        return "gelu", ({} if self.approximate == "none" else {"approximate": self.approximate})

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x) (swish)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input)

    def linear_activation(self):
        return "silu", {}


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)

    def linear_activation(self):
        return "sigmoid", {}


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)

    def linear_activation(self):
        return "tanh", {}


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (in units of beta x)."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def linear_activation(self):
        return "softplus", {"beta": float(self.beta), "threshold": float(self.threshold)}

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Mish(Module):
    """x * tanh(softplus(x))."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.mish(input)

    def linear_activation(self):
        return "mish", {}


#: The activation modules a preceding Linear may fuse with (exactly these classes: a
#: subclass may compute something else in ``forward``), each with its
#: ``linear_activation`` method, or for those without parameters what that returns
#: (read once here, not once per layer and step).
FUSABLE = {ReLU: ("relu", {}), SiLU: ("silu", {}), Sigmoid: ("sigmoid", {}), Tanh: ("tanh", {}),
           Mish: ("mish", {}), LeakyReLU: LeakyReLU.linear_activation, ELU: ELU.linear_activation,
           GELU: GELU.linear_activation, Softplus: Softplus.linear_activation}


def _implicit_dim(ndim):
    # PyTorch's legacy rule for Softmax(dim=None)
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """Softmax along ``dim`` (PyTorch's legacy implicit choice when ``dim`` is None)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim if self.dim is not None else _implicit_dim(input.ndim))

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``, computed stably."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim if self.dim is not None else _implicit_dim(input.ndim))

    def extra_repr(self):
        return f"dim={self.dim}"

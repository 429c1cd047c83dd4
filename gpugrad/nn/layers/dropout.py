"""``Dropout``: zero elements with probability ``p`` in training, scale the rest by 1/(1-p)."""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Randomly zero elements with probability ``p`` while training; identity after ``eval()``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> drop = gg.nn.Dropout(0.5).eval()
    >>> x = gg.ones(4)
    >>> drop(x) is x or bool((drop(x) == x).all())
    True
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p, self.inplace = float(p), inplace

    def forward(self, input):
        if not self.training or self.p == 0.0:
            return input
        return F.dropout(input, self.p, True)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"

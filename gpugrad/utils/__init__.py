"""``gg.utils``: PyTorch's ``torch.utils`` layout; ``gg.utils.data`` is the data package."""

from . import data

__all__ = ["data"]

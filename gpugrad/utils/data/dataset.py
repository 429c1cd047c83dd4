"""Datasets and their combinations (``torch.utils.data.dataset``): Subset, ConcatDataset, random_split.

Examples
--------
>>> import gpugrad as gg
>>> from gpugrad.utils.data import ConcatDataset, Subset
>>> both = ConcatDataset([[1, 2, 3], [4, 5]])
>>> len(both), both[3], Subset(both, [4, 0])[0]
(5, 4, 5)
"""

from __future__ import annotations

import bisect
import math
import numbers

from ...data import Dataset, TensorDataset
from .sampler import _stream

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split"]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Parameters
    ----------
    dataset : Dataset
    indices : sequence of int

    Examples
    --------
    >>> from gpugrad.utils.data import Subset
    >>> s = Subset(["a", "b", "c", "d"], [3, 1])
    >>> len(s), s[0], s[[0, 1]]
    (2, 'd', ['d', 'b'])
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several datasets one after another (index ``len(a)`` is ``b[0]``).

    Parameters
    ----------
    datasets : iterable of Dataset
        At least one.

    Examples
    --------
    >>> from gpugrad.utils.data import ConcatDataset
    >>> d = ConcatDataset([[0, 1], [2], [3, 4]])
    >>> d.cumulative_sizes, d[-1], d[2]
    ([2, 3, 5], 4, 2)
    """

    @staticmethod
    def cumsum(sequence):
        sizes, total = [], 0
        for dataset in sequence:
            total += len(dataset)
            sizes.append(total)
        return sizes

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for position, dataset in enumerate(self.datasets):
            if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
                raise TypeError(f"ConcatDataset: datasets[{position}] ({type(dataset).__name__}) needs __len__ and "
                                "__getitem__")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if isinstance(idx, bool) or not isinstance(idx, numbers.Integral):
            raise TypeError(f"ConcatDataset: index must be an integer, got {type(idx).__name__}")
        if idx < 0:
            if -idx > len(self):
                raise IndexError(f"ConcatDataset: index {idx} is out of range for length {len(self)}")
            idx = len(self) + idx
        if idx >= len(self):
            raise IndexError(f"ConcatDataset: index {idx} is out of range for length {len(self)}")
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        offset = idx if which == 0 else idx - self.cumulative_sizes[which - 1]
        return self.datasets[which][offset]


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random :class:`Subset` s of the given lengths.

    Parameters
    ----------
    dataset : Dataset
    lengths : sequence of int, or of fractions summing to 1
        Fractions are turned into lengths as PyTorch does: each is floored,
        and the remainder is handed out one by one from the first split on.
    generator : gg.Generator, optional
        Default: a stream seeded from the global one (``gg.manual_seed``).

    Examples
    --------
    >>> import gpugrad as gg
    >>> from gpugrad.utils.data import random_split
    >>> train, val = random_split(range(10), [0.75, 0.25], generator=gg.Generator().manual_seed(42))
    >>> len(train), len(val), sorted(list(train) + list(val)) == list(range(10))
    (8, 2, True)
    """
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths must not be empty")
    total = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for position, fraction in enumerate(lengths):
            if fraction < 0 or fraction > 1:
                raise ValueError(f"random_split: fraction at index {position} is {fraction}, not between 0 and 1")
        counts = [int(math.floor(total * fraction)) for fraction in lengths]
        for position in range(total - sum(counts)):
            counts[position % len(counts)] += 1
        lengths = counts
    for position, length in enumerate(lengths):
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
            raise ValueError(f"random_split: lengths[{position}]={length!r} must be a non-negative integer "
                             "(or give fractions summing to 1)")
    if sum(lengths) != total:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, but the dataset has "
                         f"{total} samples; they must be equal (or give fractions summing to 1)")
    order = _stream(generator, "random_split").permutation(sum(lengths)).tolist()
    splits, start = [], 0
    for length in lengths:
        splits.append(Subset(dataset, order[start:start + length]))
        start += length
    return splits

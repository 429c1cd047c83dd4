"""Samplers: which dataset indices a DataLoader visits, and in which order (``torch.utils.data.sampler``).

Random samplers draw from a ``gg.Generator`` when given one, else from a seed
taken from gpugrad's global CPU stream at the start of each pass, so
``gg.manual_seed`` makes every epoch's order reproducible.

Examples
--------
>>> import gpugrad as gg
>>> from gpugrad.utils.data import BatchSampler, SequentialSampler
>>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
[[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

import numbers

import numpy as np

from ... import backend
from ...errors import DeviceError

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


def _stream(generator, op):
    """A NumPy generator for one pass: ``generator``'s own stream, or one seeded from the global CPU stream."""
    if generator is None:
        seed = int(backend.generator(backend.CPU).integers(0, 2 ** 63 - 1))
        return np.random.default_rng(seed)
    from ...generator import Generator
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator must be a gg.Generator, got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise DeviceError(f"{op}: samplers draw indices on the CPU; give a CPU gg.Generator, "
                                  f"not one on {generator.device}")
    return generator._rng


def _positive_int(op, name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (0 if allow_zero else 1):
        raise ValueError(f"{op}: {name}={value!r} must be a {'non-negative' if allow_zero else 'positive'} integer")
    return int(value)


class Sampler:
    """Base class: subclasses define ``__iter__`` (indices) and usually ``__len__``.

    Parameters
    ----------
    data_source : optional
        Accepted for PyTorch's signature; unused by the base class.
    """

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise TypeError(f"{type(self).__name__} is a Sampler without __iter__; define __iter__ to yield indices")


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``, in order.

    Examples
    --------
    >>> from gpugrad.utils.data import SequentialSampler
    >>> list(SequentialSampler([10, 20, 30]))
    [0, 1, 2]
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """Indices in random order: a permutation per ``len(data_source)`` samples, or draws with replacement.

    Parameters
    ----------
    data_source : sized
    replacement : bool, default False
        Draw each index independently (so repeats happen).
    num_samples : int, optional
        How many indices one pass yields (default ``len(data_source)``); without
        replacement, more than the length chains fresh permutations, as PyTorch does.
    generator : gg.Generator, optional

    Examples
    --------
    >>> import gpugrad as gg
    >>> from gpugrad.utils.data import RandomSampler
    >>> sorted(RandomSampler(range(4), generator=gg.Generator().manual_seed(0)))
    [0, 1, 2, 3]
    >>> len(list(RandomSampler(range(4), replacement=True, num_samples=10)))
    10
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean, got {replacement!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = None if num_samples is None else _positive_int("RandomSampler", "num_samples",
                                                                           num_samples)
        self.generator = generator
        if len(data_source) == 0 and (self._num_samples or 0) > 0:
            raise ValueError("RandomSampler: cannot draw samples from an empty data source")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        rng = _stream(self.generator, "RandomSampler")
        if self.replacement:
            yield from rng.integers(0, n, size=self.num_samples).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from rng.permutation(n).tolist()
        yield from rng.permutation(n)[:self.num_samples % n].tolist()

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order, without replacement.

    Examples
    --------
    >>> from gpugrad.utils.data import SubsetRandomSampler
    >>> sorted(SubsetRandomSampler([5, 7, 9]))
    [5, 7, 9]
    """

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        rng = _stream(self.generator, "SubsetRandomSampler")
        for position in rng.permutation(len(self.indices)).tolist():
            yield self.indices[position]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``.

    Examples
    --------
    >>> from gpugrad.utils.data import WeightedRandomSampler
    >>> set(WeightedRandomSampler([0.0, 1.0, 0.0], num_samples=5))
    {1}
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        self.num_samples = _positive_int("WeightedRandomSampler", "num_samples", num_samples)
        if not isinstance(replacement, bool):
            raise TypeError(f"WeightedRandomSampler: replacement should be a boolean, got {replacement!r}")
        array = backend.to_numpy(getattr(weights, "array", weights)) if hasattr(weights, "array") else np.asarray(
            weights, dtype=np.float64)
        weights = np.asarray(array, dtype=np.float64).reshape(-1)
        if weights.size == 0 or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative and not all zero")
        if not replacement and self.num_samples > np.count_nonzero(weights):
            raise ValueError(f"WeightedRandomSampler: cannot draw {self.num_samples} samples without replacement "
                             f"from {np.count_nonzero(weights)} non-zero weights")
        self.weights = weights
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        rng = _stream(self.generator, "WeightedRandomSampler")
        drawn = rng.choice(self.weights.size, size=self.num_samples, replace=self.replacement,
                           p=self.weights / self.weights.sum())
        return iter(drawn.tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Group the indices of ``sampler`` into lists of ``batch_size`` (the last may be smaller).

    Examples
    --------
    >>> from gpugrad.utils.data import BatchSampler
    >>> list(BatchSampler(range(7), batch_size=3, drop_last=True))
    [[0, 1, 2], [3, 4, 5]]
    """

    def __init__(self, sampler, batch_size, drop_last):
        self.batch_size = _positive_int("BatchSampler", "batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a boolean, got {drop_last!r}")
        self.sampler = sampler
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size

"""``gg.utils.data``: PyTorch's ``torch.utils.data`` (``gg.data`` is the same package's core).

Examples
--------
>>> import gpugrad as gg
>>> from gpugrad.utils.data import DataLoader, TensorDataset, random_split
>>> ds = TensorDataset(gg.arange(10.0).reshape(10, 1), gg.arange(10))
>>> train, val = random_split(ds, [8, 2], generator=gg.Generator().manual_seed(0))
>>> [len(batch[0]) for batch in DataLoader(train, batch_size=3)]
[3, 3, 2]
"""

from . import dataloader, dataset, sampler
from .dataloader import DataLoader, default_collate, get_worker_info
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)

__all__ = ["DataLoader", "default_collate", "get_worker_info", "Dataset", "TensorDataset", "Subset",
           "ConcatDataset", "random_split", "Sampler", "SequentialSampler", "RandomSampler",
           "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler", "dataloader", "dataset", "sampler"]

"""Datasets and a batching, shuffling ``DataLoader`` (``gg.data``).

With ``num_workers=N`` batches are built in N worker processes and handed
back through shared memory (:mod:`gpugrad.utils.data._worker` says how, and
which start method is used when); the batches and their order are those of
``num_workers=0``.  What the loader does carefully is *reproducibility* (the order of epoch ``e`` is a pure function
of ``(seed, e)``, so ``set_epoch`` and ``state_dict`` resume exactly) and
*speed on tensor data* (a :class:`TensorDataset` is batched by indexing the
underlying NumPy/CuPy arrays with a whole batch of indices at once, not by
a Python loop over items).

Examples
--------
>>> import gpugrad as gg
>>> xs = gg.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])
>>> ys = gg.tensor([0, 1, 0, 1, 0])
>>> loader = gg.data.DataLoader(gg.data.TensorDataset(xs, ys), batch_size=2)
>>> len(loader)
3
>>> [y.numpy().tolist() for _, y in loader]
[[0, 1], [0, 1], [0]]
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from . import backend
from .errors import DeviceError, ShapeError

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate", "get_worker_info"]


def _tensor_class():
    from .tensor import Tensor  # lazy: gpugrad/__init__ imports this module
    return Tensor


def _wrap(array, device=None):
    """A Tensor sharing ``array`` (moved to ``device`` when one is given).

    Only for arrays the loader made itself (gathers, stacks, transfers), so
    sharing instead of copying is safe.
    """
    import gpugrad
    if device is not None:
        array = backend.to_device(array, device)
    if type(array) is np.ndarray:
        return gpugrad.from_numpy(array)       # the very array: a pinned one stays pinned
    return gpugrad.as_tensor(array, device=backend.device_of(array))


class Dataset(abc.ABC):
    """A collection of samples: implement ``__getitem__`` (and ``__len__``, which a DataLoader needs).

    Examples
    --------
    >>> import gpugrad as gg
    >>> class Squares(gg.data.Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, index):
    ...         return float(index), float(index) ** 2
    >>> next(iter(gg.data.DataLoader(Squares(), batch_size=4)))[1].numpy().tolist()
    [0.0, 1.0, 4.0, 9.0]
    """

    @abc.abstractmethod
    def __getitem__(self, index):
        """Return sample ``index`` (``0 <= index < len(self)``)."""

    # NOTE: no __len__ here, as in PyTorch: a dataset may leave it out (a
    # DataLoader then says it needs one), and hasattr(ds, "__len__") stays honest.

    def __add__(self, other):
        """``a + b`` is ``ConcatDataset([a, b])``, as in PyTorch."""
        from .utils.data.dataset import ConcatDataset
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the rows of one or more tensors with the same first dimension.

    Sample ``i`` is the tuple ``(t0[i], t1[i], ...)``.

    Parameters
    ----------
    *tensors : Tensor
        At least one tensor, each with at least one dimension, all with the same
        length along dimension 0.

    Raises
    ------
    gpugrad.errors.ShapeError
        If the first dimensions differ (the message lists every shape).

    Examples
    --------
    >>> import gpugrad as gg
    >>> ds = gg.data.TensorDataset(gg.zeros(3, 2), gg.tensor([1, 2, 3]))
    >>> len(ds), ds[2][1].item()
    (3, 3)
    """

    def __init__(self, *tensors):
        tensor_class = _tensor_class()
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor, e.g. TensorDataset(inputs, targets)")
        for position, tensor in enumerate(tensors):
            if not isinstance(tensor, tensor_class):
                raise TypeError(f"TensorDataset: argument {position} is a {type(tensor).__name__}, not a "
                                "gg.Tensor; wrap arrays with gg.tensor(...) or gg.from_numpy(...)")
            if len(tensor.shape) == 0:
                raise ShapeError(f"TensorDataset: argument {position} is a 0-d tensor; samples are taken along "
                                 "dimension 0, so every tensor needs at least one dimension")
        lengths = [tensor.shape[0] for tensor in tensors]
        if len(set(lengths)) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ShapeError(f"TensorDataset: tensors must have the same size along dimension 0 (one row per "
                             f"sample), got shapes {shapes}; trim or fix the tensors so the first dimensions agree")
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(tensor[index] for tensor in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


def default_collate(samples):
    """Stack a list of samples into one batch, keeping the sample's structure.

    Tensors and arrays are stacked along a new first dimension; Python
    numbers become a 1-d tensor (``int64`` for ints, ``bool`` for bools,
    the default float dtype for floats); strings stay a list; tuples,
    lists and dicts are collated field by field.

    Examples
    --------
    >>> import gpugrad as gg
    >>> batch = gg.data.default_collate([(gg.tensor([1.0, 2.0]), 0), (gg.tensor([3.0, 4.0]), 1)])
    >>> batch[0].shape, batch[1].numpy().tolist()
    (Size([2, 2]), [0, 1])
    """
    tensor_class = _tensor_class()
    first = samples[0]
    if isinstance(first, tensor_class) or isinstance(first, np.ndarray) or backend.is_gpu_array(first):
        arrays = [sample.array if isinstance(sample, tensor_class) else sample for sample in samples]
        shapes = {tuple(array.shape) for array in arrays}
        if len(shapes) != 1:
            raise ShapeError(f"default_collate: samples in one batch have different shapes {sorted(shapes)}; "
                             "pad them to one shape, or pass a collate_fn that does")
        devices = {backend.device_of(array) for array in arrays}
        if len(devices) != 1:
            raise DeviceError(f"default_collate: samples in one batch live on different devices "
                              f"{sorted(str(d) for d in devices)}; keep the dataset on one device")
        return _wrap(backend.xp_of(arrays[0]).stack(arrays))
    if isinstance(first, (bool, np.bool_)):
        return _wrap(np.asarray(samples, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return _wrap(np.asarray(samples, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return _wrap(np.asarray(samples, dtype=backend.get_default_dtype()))
    if isinstance(first, (str, bytes)):
        return list(samples)
    if isinstance(first, Mapping):
        return {key: default_collate([sample[key] for sample in samples]) for key in first}
    if isinstance(first, Sequence):
        lengths = {len(sample) for sample in samples}
        if len(lengths) != 1:
            raise ShapeError(f"default_collate: samples have different numbers of fields {sorted(lengths)}; "
                             "every sample must have the same structure")
        fields = [default_collate(list(column)) for column in zip(*samples)]
        return fields if isinstance(first, list) else tuple(fields)
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; return tensors, "
                    "arrays, numbers, strings, or tuples/lists/dicts of them, or pass collate_fn=")


class WorkerInfo:
    """What :func:`get_worker_info` returns inside a worker: ``id``, ``num_workers``, ``seed``, ``dataset``."""

    def __init__(self, id, num_workers, seed, dataset):  # noqa: A002 - PyTorch's field name
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


_CURRENT_WORKER = [None]


def get_worker_info():
    """Inside a DataLoader worker (e.g. in ``worker_init_fn``): its :class:`WorkerInfo`; elsewhere None."""
    return _CURRENT_WORKER[0]


class _Fetcher:
    """Builds one batch from its indices; the same code in the main process and in workers.

    ``current`` is the sample index being read (None outside ``__getitem__``),
    so a worker's error can name it.
    """

    def __init__(self, dataset, collate_fn):
        self.dataset, self.collate_fn, self.current = dataset, collate_fn, None
        # The gather shortcut only when __getitem__ is TensorDataset's own: a
        # subclass that transforms samples must see every index.
        self.gathers = (isinstance(dataset, TensorDataset) and type(dataset).__getitem__ is TensorDataset.__getitem__
                        and collate_fn is None)

    def __getstate__(self):
        # For spawned workers: a TensorDataset travels as its arrays (a Tensor's
        # autograd bookkeeping need not, and cannot always, be pickled).
        state = dict(self.__dict__)
        if self.gathers and type(self.dataset) is TensorDataset:
            state["dataset"] = ("TensorDataset", [backend.to_numpy(t.array) for t in self.dataset.tensors])
        return state

    def __setstate__(self, state):
        dataset = state["dataset"]
        if isinstance(dataset, tuple) and dataset[0] == "TensorDataset":
            import gpugrad
            state["dataset"] = TensorDataset(*(gpugrad.from_numpy(array) for array in dataset[1]))
        self.__dict__.update(state)

    def fetch(self, indices, contiguous, device=None):
        self.current = None
        if self.gathers:
            return tuple(_take(tensor.array, indices, contiguous, device) for tensor in self.dataset.tensors)
        samples = []
        for index in indices:
            self.current = int(index)
            samples.append(self.dataset[self.current])
        self.current = None
        batch = (self.collate_fn or default_collate)(samples)
        return batch if device is None else _move(batch, device)


def _take(array, indices, contiguous, device):
    if contiguous:
        # A slice instead of a gather; copied, since a view would let
        # in-place changes to the batch write into the dataset.
        rows = array[int(indices[0]):int(indices[-1]) + 1]
        rows = rows.copy() if device is None or backend.device_of(rows) == device else rows
    else:
        xp = backend.xp_of(array)
        rows = array[indices if xp is np else xp.asarray(indices)]
    return _wrap(rows, device)


class _Delivery:
    """What the main process does to each batch a worker built: pin it, move it to ``device``."""

    def __init__(self, pin_memory, device):
        from . import cuda
        self.device = device
        self.pin = cuda.pin_array if pin_memory and cuda.is_available() else None
        self.non_blocking = self.pin is not None and device is not None and device.type == "cuda"

    def __call__(self, batch):
        if self.device is None:
            return batch
        return _move(batch, self.device, self.non_blocking)


class DataLoader:
    """Iterate over a dataset in (optionally shuffled) batches, with PyTorch's arguments.

    With ``num_workers > 0`` the batches are built by that many worker
    processes (see :mod:`gpugrad.utils.data._worker`): the main process
    decides every batch's indices, so the batches and their order are the
    same as with ``num_workers=0`` (as in PyTorch with its default
    ``in_order=True``); ``worker_init_fn(i)`` runs in worker ``i`` when it
    starts (every epoch, or once with ``persistent_workers``), with
    :func:`get_worker_info` describing the worker.

    Parameters
    ----------
    dataset : Dataset
        Anything with ``__len__`` and ``__getitem__``.
    batch_size : int, default 1
    shuffle : bool, default False
        Visit samples in a new random order every epoch.
    sampler : iterable of int, optional
        Decides which indices are visited, in which order (a :class:`~gpugrad.utils.data.RandomSampler`,
        a :class:`gpugrad.distributed.DistributedSampler`...).  Excludes ``shuffle=True``.
    batch_sampler : iterable of lists of int, optional
        Yields whole batches of indices; excludes ``batch_size``, ``shuffle``,
        ``sampler`` and ``drop_last``.
    num_workers : int, default 0
        Worker processes building batches (0: in the main process).  Workers
        produce CPU (NumPy) data: a dataset on the GPU needs ``num_workers=0``.
    collate_fn : callable, optional
        Turns a list of samples into a batch; default :func:`default_collate`.
        (A :class:`TensorDataset` without ``collate_fn`` skips per-sample work:
        its arrays are indexed with the whole batch of indices.)
    pin_memory : bool, default False
        With CuPy, copy each batch's arrays into page-locked host memory (so a
        copy to the GPU can run asynchronously, ``device=`` then copies with
        ``non_blocking=True``); without a GPU nothing to do.  Values never change.
    drop_last : bool, default False
        Skip the final batch when it is smaller than ``batch_size``.
    timeout : float, default 0
        With workers: seconds to wait for one batch before raising RuntimeError (0: wait forever).
    worker_init_fn : callable, optional
        ``worker_init_fn(worker_id)``, run only when there are workers (``num_workers > 0``), as in PyTorch.
    multiprocessing_context : str or multiprocessing context, optional
        Needs ``num_workers > 0``.  Default ``"fork"`` where there is one and
        CUDA is not initialised in this process, else ``"spawn"`` (which needs
        a picklable dataset, ``collate_fn`` and ``worker_init_fn``).
    generator : gg.Generator, optional
        The stream ``shuffle=True`` draws each epoch's order from (the
        workers' base seed is derived from its state, without drawing from it).
        Without it, epoch ``e`` uses ``numpy.random.default_rng([seed, e])``.
    prefetch_factor : int, optional
        Needs ``num_workers > 0``: batches in flight per worker (default 2).
    persistent_workers : bool, default False
        Needs ``num_workers > 0``; the workers (and ``worker_init_fn``) start
        once and serve every epoch (their seeds are the first epoch's).
    seed : int, optional
        gpugrad's replayable shuffle: epoch ``e`` uses ``numpy.random.default_rng([seed, e])``,
        so every epoch differs yet any epoch can be replayed (``set_epoch``).  With
        neither ``seed`` nor ``generator`` the seed is drawn once, at the first shuffled
        epoch (or the first with workers), from gpugrad's CPU generator, so
        ``gg.manual_seed`` makes the run reproducible.  Workers' base seed for
        epoch ``e`` is a function of ``(seed, e)``, so a resumed epoch gets the
        same worker seeds, and no extra number is drawn from the global stream.
    device : str or gg.Device, optional
        Move each batch there (e.g. ``"cuda"``); default: leave it where the data is.

    Raises
    ------
    ValueError
        An empty dataset, a batch size that is not a positive integer, or
        options that exclude each other (as PyTorch reports them).

    Examples
    --------
    >>> import gpugrad as gg
    >>> ds = gg.data.TensorDataset(gg.tensor(list(range(6))))
    >>> loader = gg.data.DataLoader(ds, batch_size=4, shuffle=True, seed=0, drop_last=True)
    >>> epoch0 = [b[0].numpy().tolist() for b in loader]
    >>> epoch1 = [b[0].numpy().tolist() for b in loader]
    >>> len(epoch0), len(epoch0[0]), epoch0 != epoch1
    (1, 4, True)
    >>> loader.set_epoch(0)          # replay epoch 0
    >>> [b[0].numpy().tolist() for b in loader] == epoch0
    True
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,  # noqa: C901, PLR0912, PLR0913
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *, prefetch_factor=None,
                 persistent_workers=False, pin_memory_device="", in_order=True, seed=None, device=None):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: dataset must define __len__ and __getitem__, got "
                            f"{type(dataset).__name__}; wrap tensors in gg.data.TensorDataset")
        size = len(dataset)
        if size == 0:
            raise ValueError(f"DataLoader: the dataset ({type(dataset).__name__}) has length 0, so there is "
                             "nothing to load; check the data path or the filtering that built it")
        shuffle = bool(shuffle) if shuffle is not None else False
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size={batch_size!r} must be a positive integer")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"DataLoader: seed={seed!r} must be a non-negative integer or None")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers={num_workers!r} must be a non-negative integer "
                             "(0 loads in the main process)")
        if not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"DataLoader: timeout={timeout!r} must be a non-negative number")
        if num_workers == 0:
            for name, value, unset in (("prefetch_factor", prefetch_factor, None),
                                       ("persistent_workers", persistent_workers, False),
                                       ("multiprocessing_context", multiprocessing_context, None)):
                if value is not unset and value != unset:
                    raise ValueError(f"DataLoader: {name}= needs num_workers > 0 (it configures worker processes); "
                                     f"pass num_workers=N or drop {name}")
        if prefetch_factor is not None and (isinstance(prefetch_factor, bool) or not isinstance(
                prefetch_factor, numbers.Integral) or prefetch_factor < 1):
            raise ValueError(f"DataLoader: prefetch_factor={prefetch_factor!r} must be a positive integer")
        if worker_init_fn is not None and not callable(worker_init_fn):
            raise TypeError(f"DataLoader: worker_init_fn must be callable, got {type(worker_init_fn).__name__}")
        if generator is not None:
            from .generator import Generator
            if not isinstance(generator, Generator):
                raise TypeError(f"DataLoader: generator must be a gg.Generator, got {type(generator).__name__}")
            if seed is not None:
                raise ValueError("DataLoader: seed= and generator= both decide the shuffle; pass only one")
        if sampler is not None:
            if not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
                raise TypeError(f"DataLoader: sampler must be a sized iterable of indices, got "
                                f"{type(sampler).__name__}")
            if shuffle:
                raise ValueError("DataLoader: sampler= and shuffle=True both decide the order; pass only the "
                                 "sampler (DistributedSampler shuffles itself: shuffle=True is its default)")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler= is mutually exclusive with batch_size, shuffle, "
                                 "sampler and drop_last (the batch sampler decides all of them)")
            if not (hasattr(batch_sampler, "__iter__") and hasattr(batch_sampler, "__len__")):
                raise TypeError(f"DataLoader: batch_sampler must be a sized iterable of index lists, got "
                                f"{type(batch_sampler).__name__}")
        if shuffle and generator is not None:
            from .utils.data.sampler import RandomSampler
            sampler = RandomSampler(dataset, generator=generator)
            shuffle = False
            self._generator_shuffle = True
        else:
            self._generator_shuffle = False
        self.dataset = dataset
        self.batch_size = None if batch_sampler is not None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.device = None if device is None else backend.as_device(device)
        self.collate_fn = collate_fn
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = bool(persistent_workers)
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order
        self._pool = None               # the persistent workers, once started
        self.epoch = 0                  # the epoch the next iteration will produce
        self._drawn_seed = seed         # base seed actually in use (drawn lazily when seed is None)

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        size = len(self.dataset) if self.sampler is None else len(self.sampler)
        return size // self.batch_size if self.drop_last else math.ceil(size / self.batch_size)

    def set_epoch(self, epoch):
        """Make the next iteration produce epoch ``epoch``'s order (resume, or replay)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch={epoch!r} must be a non-negative integer")
        self.epoch = int(epoch)

    def _base_seed(self):
        if self._drawn_seed is None:
            # Drawn from the global CPU generator so gg.manual_seed governs it.
            self._drawn_seed = int(backend.generator(backend.CPU).integers(0, 2**63 - 1))
        return self._drawn_seed

    def order(self, epoch):
        """The sample indices of ``epoch`` in visiting order (a NumPy int64 array).

        With a ``sampler`` they are the sampler's current indices, whatever ``epoch``.
        """
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        size = len(self.dataset)
        if not self.shuffle:
            return np.arange(size, dtype=np.int64)
        generator = np.random.default_rng([self._base_seed(), int(epoch)])
        return generator.permutation(size).astype(np.int64, copy=False)

    def __iter__(self):
        # Fix the order now (not at the first next()) so the epoch counter is
        # advanced as soon as an epoch starts, as state_dict documents.
        epoch = self.epoch
        self.epoch += 1
        if self.num_workers == 0:
            return self._main_process_batches(epoch)
        return self._worker_batches(epoch)

    def _main_process_batches(self, epoch):
        fetcher = _Fetcher(self.dataset, self.collate_fn)
        delivery = _Delivery(self.pin_memory, self.device)
        for indices, contiguous in self._tasks(epoch):
            if delivery.pin is None:
                yield fetcher.fetch(indices, contiguous, self.device)
            else:       # pinned on the host first, then (with device=) copied asynchronously
                yield delivery(_pin_batch(fetcher.fetch(indices, contiguous)))

    def _tasks(self, epoch):
        """``(indices, contiguous)`` of every batch of ``epoch``, in order (computed in this process only)."""
        if self.batch_sampler is not None:
            for indices in self.batch_sampler:
                yield np.asarray(list(indices), dtype=np.int64), False
            return
        order = self.order(epoch)
        size = len(order)
        stop = size - size % self.batch_size if self.drop_last else size
        contiguous = not self.shuffle and self.sampler is None
        for start in range(0, stop, self.batch_size):
            yield order[start:start + self.batch_size], contiguous

    def _worker_batches(self, epoch):
        from .utils.data import _worker
        if isinstance(self.dataset, TensorDataset) and any(
                backend.is_gpu_array(tensor.array) for tensor in self.dataset.tensors):
            raise DeviceError(f"DataLoader: num_workers={self.num_workers} builds batches in CPU worker "
                              f"processes, but the TensorDataset lives on {self.dataset.tensors[0].device}; use "
                              "num_workers=0 (a gather on the GPU needs no workers), or keep the dataset on the "
                              "CPU and pass device='cuda' (with pin_memory=True)")
        pool = self._pool
        if pool is None or not pool.alive:
            pool = _worker.WorkerPool(_Fetcher(self.dataset, self.collate_fn), self.num_workers,
                                      self._worker_base_seed(epoch), self.worker_init_fn,
                                      self.multiprocessing_context)
            self._pool = pool if self.persistent_workers else None
        return _worker.MultiProcessIterator(pool, self._tasks(epoch), self.prefetch_factor or 2, self.in_order,
                                            self.timeout, _Delivery(self.pin_memory, self.device),
                                            owns_pool=not self.persistent_workers)

    def _worker_base_seed(self, epoch):
        """Workers' base seed for ``epoch``: a function of the loader's seed (or generator state) and the epoch.

        Nothing is drawn from the generator or the global stream for it, so
        the order and every later random number are those of ``num_workers=0``.
        """
        if self.generator is not None:
            words = _state_words(self.generator.get_state())
            sequence = np.random.SeedSequence([*words, int(epoch)])
        else:
            sequence = np.random.SeedSequence([self._base_seed(), int(epoch), 0x6767])
        return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

    def shutdown_workers(self):
        """Stop persistent workers now (they also stop when the loader is garbage-collected, and at exit)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def state_dict(self):
        """``{"epoch", "seed", "shuffle", "batch_size"}``: enough to resume the exact order.

        ``epoch`` is the epoch the next iteration will produce (an epoch in
        progress counts as started), and ``seed`` the base seed of the
        shuffle, which with the epoch fixes the order completely.
        """
        state = {"epoch": self.epoch, "seed": self._base_seed() if self.shuffle else self._drawn_seed,
                 "shuffle": self.shuffle, "batch_size": self.batch_size}
        if self.generator is not None:
            # With generator=, the order comes from the generator's stream: its state resumes it.
            state["generator_state"] = self.generator.get_state()
        return state

    def load_state_dict(self, state_dict):
        """Resume from :meth:`state_dict`: the next iteration replays from that epoch."""
        missing = {"epoch", "seed"} - set(state_dict)
        if missing:
            raise ValueError(f"DataLoader.load_state_dict: missing keys {sorted(missing)}; pass the dict "
                             "returned by loader.state_dict()")
        seed = state_dict["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"DataLoader.load_state_dict: seed={seed!r} must be a non-negative integer or None")
        generator_state = state_dict.get("generator_state")
        if generator_state is not None and self.generator is None:
            raise ValueError("DataLoader.load_state_dict: the state holds a generator's stream, but this loader "
                             "has no generator=; build it with generator=gg.Generator() to resume")
        if generator_state is not None:
            self.generator.set_state(generator_state)      # validates before anything else changes
        self.set_epoch(state_dict["epoch"])
        self._drawn_seed = None if seed is None else int(seed)

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, batches={len(self)})")


def _move(batch, device, non_blocking=False):
    tensor_class = _tensor_class()
    if isinstance(batch, tensor_class):
        if batch.device == device:
            return batch
        return batch.to(device, non_blocking=True) if non_blocking else _wrap(batch.array, device)
    if isinstance(batch, Mapping):
        return {key: _move(value, device, non_blocking) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [_move(value, device, non_blocking) for value in batch]
        return moved if isinstance(batch, list) else tuple(moved)
    return batch


def _pin_batch(batch):
    """``batch`` with every CPU tensor's array copied into page-locked memory (``pin_memory=True``)."""
    from . import cuda
    tensor_class = _tensor_class()
    if isinstance(batch, tensor_class):
        return _wrap(cuda.pin_array(batch.array)) if isinstance(batch.array, np.ndarray) else batch
    if isinstance(batch, np.ndarray):
        return cuda.pin_array(batch)
    if isinstance(batch, Mapping):
        return {key: _pin_batch(value) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        pinned = [_pin_batch(value) for value in batch]
        return pinned if isinstance(batch, list) else tuple(pinned)
    return batch


def _state_words(state):
    """A generator state as a list of 32-bit words (for seeding from it without drawing)."""
    if isinstance(state, Mapping):
        return [word for key in sorted(state, key=str) for word in _state_words(state[key])]
    if isinstance(state, (list, tuple)):
        return [word for item in state for word in _state_words(item)]
    if isinstance(state, bool):
        return [int(state)]
    if isinstance(state, numbers.Integral):
        value, words = int(state), []
        value = value if value >= 0 else -value * 2 + 1
        while True:
            words.append(value & 0xFFFFFFFF)
            value >>= 32
            if not value:
                return words
    if isinstance(state, (str, bytes)):
        return list((state.encode() if isinstance(state, str) else state)[:64])
    if hasattr(state, "array") or isinstance(state, np.ndarray):
        array = np.ascontiguousarray(backend.to_numpy(getattr(state, "array", state)))
        return array.reshape(-1).view(np.uint8).astype(np.uint32).tolist()
    return []

"""DataLoader worker processes: batches built in other processes, handed back through shared memory.

How a batch travels
-------------------
The parent decides every batch's indices (the sampler runs in the parent only,
so the order is the ``num_workers=0`` order) and sends ``(tag, number,
indices)`` to worker ``number % num_workers``, keeping ``prefetch_factor``
batches in flight per worker.  The worker builds the batch with the same
fetch code as the main process, then pickles it with every NumPy array (and
the array of every CPU Tensor) *replaced by a descriptor* of where it lies in
one shared-memory block per batch: a file in ``/dev/shm`` (POSIX shared
memory; the temporary directory where there is none).  The parent maps the
block, unlinks its name at once (the mapping lives as long as the arrays
viewing it) and rebuilds the batch around zero-copy views.  Batches are handed
out in order of ``number`` (``in_order=False``: as they arrive).

Start method
------------
``fork`` where the platform has it and CUDA has not been initialised in this
process (a forked child of a process with a CUDA context cannot use the GPU
and may hang in the driver); otherwise ``spawn``, which pickles the dataset,
``collate_fn`` and ``worker_init_fn`` into each worker (so they must be
importable, not lambdas or local functions).  Fork shares the parent's
dataset pages copy-on-write: NumPy buffers are never written by reading them,
so a :class:`~gpugrad.data.TensorDataset` on the CPU is not copied into the
workers (Python objects are: their reference counts dirty their pages, so
keep big datasets in arrays).  ``multiprocessing_context=`` overrides the choice.

Seeds, errors, shutdown
-----------------------
Worker ``i`` seeds Python's ``random``, gpugrad's streams (``gg.manual_seed``)
and NumPy's global stream from ``base_seed + i`` (:func:`get_worker_info`'s
``seed``), as PyTorch does.  An exception in a worker is re-raised in the
parent as the same type, naming the worker, the batch and the sample index,
with the worker's traceback.  Workers stop when the epoch ends (unless
``persistent_workers``), when the iterator is garbage-collected or raises,
at interpreter exit, and on their own when the parent process disappears.
"""

from __future__ import annotations

import io
import itertools
import mmap
import multiprocessing
import os
import pickle
import queue
import random
import sys
import tempfile
import threading
import time
import traceback
import weakref

import numpy as np

_POLL_SECONDS = 1.0          # how often a waiting parent checks on its workers (and a worker on its parent)
_ALIGN = 64                  # array offsets inside a block, in bytes
_SHM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
_block_counter = itertools.count()


def cuda_initialised():
    """Whether CUDA may hold a context in this process (then forking workers is unsafe)."""
    from ... import backend
    return backend._cupy is not None or "cupy" in sys.modules


def resolve_context(context):
    """The multiprocessing context workers start with (see the module docstring for the default)."""
    if context is None:
        fork_ok = "fork" in multiprocessing.get_all_start_methods() and not cuda_initialised()
        return multiprocessing.get_context("fork" if fork_ok else "spawn")
    if isinstance(context, str):
        if context not in multiprocessing.get_all_start_methods():
            raise ValueError(f"DataLoader: multiprocessing_context={context!r} is not a start method here; "
                             f"use one of {multiprocessing.get_all_start_methods()}")
        return multiprocessing.get_context(context)
    if not hasattr(context, "Process"):
        raise TypeError(f"DataLoader: multiprocessing_context must be a start method name or a multiprocessing "
                        f"context, got {type(context).__name__}")
    return context


# --------------------------------------------------------------------------
# Shared-memory transport of a batch.
# --------------------------------------------------------------------------
class _Packer(pickle.Pickler):
    """Pickles a batch, laying every NumPy array (and CPU Tensor's array) out in one block."""

    def __init__(self, file, tensor_class):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.tensor_class = tensor_class
        self.arrays, self.size = [], 0

    def persistent_id(self, obj):
        is_tensor = isinstance(obj, self.tensor_class)
        array = obj.array if is_tensor else obj
        if not isinstance(array, np.ndarray) or type(array) is not np.ndarray or array.dtype.hasobject:
            return None
        if is_tensor and (obj.requires_grad or obj.grad_fn is not None):
            return None
        offset = -(-self.size // _ALIGN) * _ALIGN
        self.arrays.append((offset, array))
        self.size = offset + array.nbytes
        return ("tensor" if is_tensor else "array", offset, array.dtype, array.shape)


def pack(batch, prefix):
    """``(pickled bytes, block name or None)`` for ``batch``; the block is written and closed."""
    from ...tensor import Tensor
    buffer = io.BytesIO()
    packer = _Packer(buffer, Tensor)
    packer.dump(batch)
    name = None
    if packer.size:
        name = f"{prefix}-{os.getpid()}-{next(_block_counter)}"
        path = os.path.join(_SHM_DIR, name)
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(descriptor, packer.size)
            with mmap.mmap(descriptor, packer.size) as block:
                for offset, array in packer.arrays:
                    view = np.frombuffer(block, dtype=array.dtype, count=array.size, offset=offset)
                    view[...] = array.reshape(-1)
                    del view
        except BaseException:
            os.unlink(path)
            raise
        finally:
            os.close(descriptor)
    return buffer.getvalue(), name


class _Unpacker(pickle.Unpickler):
    def __init__(self, data, block, pin):
        super().__init__(io.BytesIO(data))
        self.block, self.pin = block, pin

    def persistent_load(self, descriptor):
        kind, offset, dtype, shape = descriptor
        count = int(np.prod(shape, dtype=np.int64))
        array = np.frombuffer(self.block, dtype=dtype, count=count, offset=offset).reshape(shape)
        if self.pin is not None:
            array = self.pin(array)
        if kind == "array":
            return array
        import gpugrad
        return gpugrad.from_numpy(array)


def unpack(data, name, pin=None):
    """Rebuild a batch from :func:`pack`'s output; the block's name is unlinked before this returns."""
    block = None
    if name is not None:
        path = os.path.join(_SHM_DIR, name)
        descriptor = os.open(path, os.O_RDWR)
        try:
            os.unlink(path)              # the mapping outlives the name: nothing left to clean up
            block = mmap.mmap(descriptor, os.fstat(descriptor).st_size)
        finally:
            os.close(descriptor)
    return _Unpacker(data, block, pin).load()


def discard(name):
    if name is not None:
        try:
            os.unlink(os.path.join(_SHM_DIR, name))
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------
# The worker process.
# --------------------------------------------------------------------------
class WorkerFailure:
    """An exception raised in a worker, carried to the parent (PyTorch's ExceptionWrapper)."""

    def __init__(self, error, worker_id, where):
        self.type = type(error)
        self.worker_id, self.where = worker_id, where
        self.text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        try:
            pickle.dumps(self.type)
        except Exception:  # noqa: BLE001 - an exception class that cannot travel: say RuntimeError
            self.type = RuntimeError

    def reraise(self):
        message = (f"Caught {self.type.__name__} in DataLoader worker process {self.worker_id} {self.where}.\n"
                   f"Original {self.text}")
        try:
            error = self.type(message)
        except Exception:  # noqa: BLE001 - a constructor with other arguments: PyTorch falls back likewise
            raise RuntimeError(message) from None
        raise error


def _seed_worker(seed, worker_id, base_seed):
    import gpugrad
    random.seed(seed)
    gpugrad.manual_seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))


def worker_loop(fetcher, index_queue, result_queue, worker_id, num_workers, base_seed, init_fn, prefix,
                parent_pid):
    """Body of worker ``worker_id``: fetch the batches asked for until told to stop (``None``)."""
    from ... import data
    try:
        seed = base_seed + worker_id
        _seed_worker(seed, worker_id, base_seed)
        data._CURRENT_WORKER[0] = data.WorkerInfo(worker_id, num_workers, seed, fetcher.dataset)
        if init_fn is not None:
            init_fn(worker_id)
    except Exception as error:  # noqa: BLE001 - reported to the parent, which re-raises it
        result_queue.put((None, None, WorkerFailure(error, worker_id, "in worker_init_fn"), None))
        return
    while True:
        try:
            task = index_queue.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != parent_pid:       # the parent died without telling us: stop
                return
            continue
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if task is None:
            return
        tag, number, indices, contiguous = task
        try:
            batch = fetcher.fetch(indices, contiguous)
            data_bytes, name = pack(batch, prefix)
            result = (tag, number, data_bytes, name)
        except Exception as error:  # noqa: BLE001 - reported to the parent, which re-raises it
            if fetcher.current is not None:
                where = f"while loading batch {number} (sample index {fetcher.current})"
            else:
                where = f"while loading batch {number} (indices {_short(indices)})"
            result = (tag, number, WorkerFailure(error, worker_id, where), None)
        try:
            result_queue.put(result)
        except Exception as error:  # noqa: BLE001 - e.g. an unpicklable collate result
            discard(result[3])
            result_queue.put((tag, number, WorkerFailure(error, worker_id, f"while sending batch {number}"), None))


def _short(indices):
    items = [int(i) for i in list(indices)[:8]]
    return f"{items}{'...' if len(indices) > 8 else ''}"


# --------------------------------------------------------------------------
# The parent's side: a pool of workers and the iterator over one epoch.
# --------------------------------------------------------------------------
class WorkerPool:
    """``num_workers`` processes with one task queue each and a shared result queue."""

    _tags = itertools.count(1)

    def __init__(self, fetcher, num_workers, base_seed, init_fn, context):
        self.context = resolve_context(context)
        self.prefix = f"gpugrad-loader-{os.getpid()}-{id(self)}"
        self.num_workers = num_workers
        self.result_queue = self.context.Queue()
        self.index_queues, self.processes = [], []
        self.base_seed = base_seed
        try:
            for worker_id in range(num_workers):
                index_queue = self.context.Queue()
                process = self.context.Process(
                    target=worker_loop, daemon=True,
                    args=(fetcher, index_queue, self.result_queue, worker_id, num_workers, base_seed, init_fn,
                          self.prefix, os.getpid()))
                process.start()
                self.index_queues.append(index_queue)
                self.processes.append(process)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            self.shutdown()
            method = self.context.get_start_method()
            raise TypeError(f"DataLoader: the '{method}' start method pickles the dataset, collate_fn and "
                            f"worker_init_fn into every worker, and that failed ({error}); define them at module "
                            "level (no lambdas or local functions)"
                            + (", or pass multiprocessing_context='fork' (only safe before CUDA is initialised)"
                               if "fork" in multiprocessing.get_all_start_methods() else "")) from error
        except BaseException:
            self.shutdown()
            raise
        self._finalizer = weakref.finalize(self, _shutdown, self.processes, self.index_queues, self.result_queue,
                                           self.prefix)

    def shutdown(self):
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        else:
            _shutdown(self.processes, self.index_queues, self.result_queue, self.prefix)

    @property
    def alive(self):
        finalizer = getattr(self, "_finalizer", None)
        return finalizer is not None and finalizer.alive


def _shutdown(processes, index_queues, result_queue, prefix):
    """Stop the workers (politely, then by force), then remove any block no one will read."""
    for index_queue, process in zip(index_queues, processes):
        if process.is_alive():
            try:
                index_queue.put(None)
            except (OSError, ValueError):
                pass
    deadline = time.monotonic() + 5.0
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join(timeout=1.0)
    while True:                                 # results nobody will read: free their blocks
        try:
            item = result_queue.get(timeout=0.05)
        except (queue.Empty, OSError, EOFError, ValueError):
            break
        if item and len(item) == 4 and isinstance(item[3], str):
            discard(item[3])
    for q in [*index_queues, result_queue]:
        q.cancel_join_thread()          # never block exit on a pipe whose reader is gone
        q.close()
    try:
        leftovers = [name for name in os.listdir(_SHM_DIR) if name.startswith(prefix + "-")]
    except OSError:
        leftovers = []
    for name in leftovers:                       # a worker stopped between writing a block and sending it
        discard(name)


class MultiProcessIterator:
    """One epoch's batches from a :class:`WorkerPool`, in order (or as they come with ``in_order=False``)."""

    def __init__(self, pool, tasks, prefetch_factor, in_order, timeout, deliver, owns_pool):
        self.pool, self.tasks = pool, iter(tasks)
        self.tag = next(WorkerPool._tags)
        self.in_order, self.timeout, self.deliver = in_order, timeout, deliver
        self.owns_pool = owns_pool
        self.next_number, self.sent, self.ready = 0, 0, {}
        self.outstanding = set()
        self.finished = False
        self._lock = threading.Lock()
        for _ in range(prefetch_factor * pool.num_workers):
            if not self._send_one():
                break

    def _send_one(self):
        task = next(self.tasks, None)
        if task is None:
            return False
        indices, contiguous = task
        number = self.sent
        self.pool.index_queues[number % self.pool.num_workers].put((self.tag, number, indices, contiguous))
        self.outstanding.add(number)
        self.sent += 1
        return True

    def __iter__(self):
        return self

    def __next__(self):
        with self._lock:
            if self.finished:
                raise StopIteration
            try:
                if not self.outstanding and not self.ready:
                    self._finish()
                    raise StopIteration
                _number, data_bytes, name = self._receive()
                self._send_one()
                batch = unpack(data_bytes, name, self.deliver.pin)
                return self.deliver(batch)
            except StopIteration:
                raise
            except BaseException:
                self._finish()
                raise

    def _receive(self):
        if self.in_order:
            while self.next_number not in self.ready:
                self._wait_for_result()
            number = self.next_number
            self.next_number += 1
        else:
            if not self.ready:
                self._wait_for_result()
            number = min(self.ready)
        return (number, *self.ready.pop(number))

    def _wait_for_result(self):
        started = time.monotonic()
        while True:
            try:
                tag, number, payload, name = self.pool.result_queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                dead = [p for p in self.pool.processes if not p.is_alive()]
                if dead:
                    codes = ", ".join(f"pid {p.pid} exit code {p.exitcode}" for p in dead)
                    raise RuntimeError(f"DataLoader worker ({codes}) exited unexpectedly; if it was killed for "
                                       "memory (exit code -9), lower num_workers, batch_size or "
                                       "prefetch_factor") from None
                if self.timeout and time.monotonic() - started > self.timeout:
                    raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds waiting for batch "
                                       f"{self.next_number} from a worker (timeout={self.timeout})") from None
                continue
            if isinstance(payload, WorkerFailure) and number is None:
                payload.reraise()                   # worker_init_fn failed
            if tag != self.tag:                     # left over from an abandoned epoch of persistent workers
                discard(name)
                continue
            self.outstanding.discard(number)
            if isinstance(payload, WorkerFailure):
                payload.reraise()
            self.ready[number] = (payload, name)
            return

    def _finish(self):
        if self.finished:
            return
        self.finished = True
        for _payload, name in self.ready.values():
            discard(name)
        self.ready.clear()
        if self.owns_pool:
            self.pool.shutdown()

    def __del__(self):
        try:
            self._finish()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: the pool's finalizer still runs
            pass

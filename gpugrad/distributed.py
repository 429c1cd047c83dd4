"""Data-parallel training over several processes (``gg.distributed``), PyTorch's names.

Launch one process per replica with MPI::

    mpiexec -n 4 python train.py

and in ``train.py``::

    import gpugrad as gg
    import gpugrad.distributed as dist

    dist.init()                                   # MPI (+ NCCL on GPUs); rank 0 of 1 without mpiexec
    model = dist.DistributedDataParallel(make_model())       # same start on every rank
    sampler = dist.DistributedSampler(dataset, shuffle=True, seed=0)
    loader = gg.data.DataLoader(dataset, batch_size=32, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)                  # a new shuffle per epoch, the same on every rank
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()       # gradients averaged across ranks here
            optimizer.step()                      # so every replica takes the same step

Transports
----------
* **MPI** through mpi4py (``MPI.COMM_WORLD``) for NumPy arrays: ``Allreduce``
  with ``MPI.IN_PLACE`` on the tensor's own buffer.
* **NCCL** through CuPy (``cupy.cuda.nccl``) for CuPy arrays, on the current
  stream; the NCCL unique id is made on rank 0 and broadcast over MPI, and
  each rank uses GPU ``local_rank % device_count``.  GPU tensors without NCCL
  are staged through host memory and MPI.

Without mpi4py, or when the script was not started by an MPI launcher, the
process is rank 0 of a world of 1: every collective is the identity and
``python train.py`` runs unchanged.

Examples
--------
>>> import gpugrad as gg
>>> import gpugrad.distributed as dist
>>> dist.init()
>>> dist.get_rank(), dist.get_world_size()
(0, 1)
>>> t = gg.tensor([1.0, 2.0])
>>> dist.all_reduce(t, op="mean")
tensor([1., 2.], device='cpu')
"""

from __future__ import annotations

import contextlib
import itertools
import math
import numbers
import os
import warnings
import weakref

import numpy as np

from . import backend
from .autograd import tape
from .errors import DeviceError, DTypeError, GpugradError, ShapeError
from .nn.module import Module
from .tensor import Tensor

__all__ = ["init", "init_process_group", "is_initialized", "is_available", "get_rank", "get_world_size",
           "get_local_rank", "get_backend", "barrier", "finalize", "all_reduce", "broadcast", "all_gather",
           "ReduceOp", "DistributedDataParallel", "DistributedSampler", "DistributedError"]


class DistributedError(GpugradError, RuntimeError):
    """Misuse of data-parallel training (e.g. a backward pass that left some gradients unaveraged)."""


class ReduceOp:
    """Names of the reductions, for ``all_reduce(t, op=ReduceOp.SUM)`` as in PyTorch (plain strings work too)."""

    SUM = "sum"
    AVG = "mean"
    MEAN = "mean"
    MAX = "max"
    MIN = "min"
    PRODUCT = "prod"


_OPS = {"sum": "sum", "mean": "mean", "avg": "mean", "max": "max", "min": "min", "prod": "prod", "product": "prod"}

# Variables set by the common MPI launchers (Open MPI, MPICH/Hydra, Intel MPI,
# MVAPICH, Slurm's PMI/PMIx).  Without one of them the process was started by
# hand, so it is a world of one and MPI is not even imported (importing it
# would make a "singleton" MPI job: slow to start, and useless).
_LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS",
                       "MV2_COMM_WORLD_SIZE")


class _World:
    """The process group: who we are, and the communicators to talk through."""

    initialized = False
    backend = None          # "mpi", "mpi+nccl", "nccl" or "single"
    rank = 0
    world_size = 1
    local_rank = 0
    mpi = None              # the mpi4py.MPI module, when in use
    comm = None             # MPI.COMM_WORLD
    nccl = None             # cupy.cuda.nccl.NcclCommunicator
    nccl_device = None      # the gg.Device NCCL works on


_world = _World()


def _launched_by_mpi():
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def _launcher_size():
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def is_available():
    """Whether mpi4py can be imported (so ``mpiexec -n N`` gives N cooperating ranks)."""
    try:
        import mpi4py  # noqa: F401 - optional dependency
    except ImportError:
        return False
    return True


def init(backend="auto"):
    """Join the process group: MPI through mpi4py, plus NCCL through CuPy on GPUs.

    Parameters
    ----------
    backend : {"auto", "mpi", "nccl"}
        ``"auto"``: MPI when launched by ``mpiexec`` (a world of one otherwise),
        and NCCL for GPU tensors when a GPU and CuPy's NCCL are present.
        ``"mpi"``: MPI only (GPU tensors are staged through host memory).
        ``"nccl"``: NCCL required (raises without a GPU).

    Calling it again does nothing.  On a GPU machine each rank makes
    ``cuda:(local_rank % device_count)`` its current and default device
    (unless the default device was set to the CPU).

    Raises
    ------
    ValueError
        An unknown backend name.
    ImportError
        ``backend="mpi"``/``"nccl"`` under ``mpiexec`` without mpi4py.
    gpugrad.DeviceError
        ``backend="nccl"`` without a usable GPU or without CuPy's NCCL.

    Examples
    --------
    >>> import gpugrad.distributed as dist
    >>> dist.init()
    >>> dist.is_initialized(), dist.get_world_size()
    (True, 1)
    """
    if not isinstance(backend, str) or backend.lower() not in ("auto", "mpi", "nccl"):
        raise ValueError(f"distributed.init: backend={backend!r} is not one of 'auto', 'mpi', 'nccl'; use "
                         "'auto' to get MPI for CPU tensors and NCCL for GPU tensors when available")
    requested = backend.lower()
    if _world.initialized:
        return
    nccl_module = None
    if requested == "nccl":
        nccl_module = _require_nccl()
    launched = _launched_by_mpi()
    if launched or requested != "auto":
        try:
            from mpi4py import MPI
        except (ImportError, OSError) as error:     # no mpi4py, or mpi4py without an MPI library
            size = _launcher_size()
            if requested != "auto" and (launched and (size or 2) > 1):
                raise ImportError(f"distributed.init(backend={requested!r}): the script was started by an MPI "
                                  f"launcher ({size or 'several'} processes) but mpi4py cannot be used ({error}); "
                                  "run `pip install mpi4py` (needs an MPI library, e.g. "
                                  "`apt-get install openmpi-bin libopenmpi-dev`)") from None
            if launched and (size is None or size > 1):
                warnings.warn(f"gg.distributed.init: started by an MPI launcher ({size or 'several'} processes) "
                              f"but mpi4py cannot be used ({error}), so every process runs alone as rank 0 of 1 "
                              "and they do not cooperate; `pip install mpi4py` to train data-parallel",
                              RuntimeWarning, stacklevel=2)
            MPI = None
        if MPI is not None:
            _world.mpi = MPI
            _world.comm = MPI.COMM_WORLD
            _world.rank = _world.comm.Get_rank()
            _world.world_size = _world.comm.Get_size()
            local = _world.comm.Split_type(MPI.COMM_TYPE_SHARED, key=_world.rank)
            _world.local_rank = local.Get_rank()
            local.Free()
    _world.backend = "mpi" if _world.comm is not None else "single"
    if requested != "mpi" and _backend_cuda_ready():
        _pick_local_gpu()
        if nccl_module is None and requested == "auto" and _world.world_size > 1:
            nccl_module = _optional_nccl()
        if nccl_module is not None:
            _start_nccl(nccl_module)
    _world.initialized = True


init_process_group = init


def _backend_cuda_ready():
    return backend.cuda_is_available()


def _optional_nccl():
    try:
        from cupy.cuda import nccl
    except ImportError:
        return None
    return nccl if getattr(nccl, "available", True) else None


def _require_nccl():
    if not backend.cuda_is_available():
        raise DeviceError("distributed.init(backend='nccl'): NCCL needs a GPU, but CUDA is not available here (no "
                          "CuPy, no driver or no GPU); use backend='auto' or 'mpi' on CPU machines")
    nccl = _optional_nccl()
    if nccl is None:
        raise DeviceError("distributed.init(backend='nccl'): CuPy was built without NCCL support "
                          "(cupy.cuda.nccl is unavailable); install NCCL for CuPy (`pip install nvidia-nccl-cu12` "
                          "with cupy-cuda12x) or use backend='mpi'")
    return nccl


def _pick_local_gpu():
    cupy = backend.cupy_module()
    index = _world.local_rank % backend.cuda_device_count()
    cupy.cuda.Device(index).use()
    _world.nccl_device = backend.Device("cuda", index)
    if backend.get_default_device().type == "cuda":
        backend.set_default_device(_world.nccl_device)


def _start_nccl(nccl):
    unique_id = nccl.get_unique_id() if _world.rank == 0 else None
    if _world.comm is not None:
        unique_id = _world.comm.bcast(unique_id, root=0)
    cupy = backend.cupy_module()
    with cupy.cuda.Device(_world.nccl_device.index):
        _world.nccl = nccl.NcclCommunicator(_world.world_size, unique_id, _world.rank)
    _world.backend = "nccl" if _world.comm is None else "mpi+nccl"


def is_initialized():
    """Whether :func:`init` has run (collectives and DDP call it for you)."""
    return _world.initialized


def _ensure():
    if not _world.initialized:
        init()
    return _world


def get_rank():
    """This process's rank, ``0 <= rank < get_world_size()``."""
    return _ensure().rank


def get_world_size():
    """The number of processes (1 without ``mpiexec``)."""
    return _ensure().world_size


def get_local_rank():
    """This process's rank among the processes on the same machine (picks the GPU)."""
    return _ensure().local_rank


def get_backend():
    """``"single"``, ``"mpi"``, ``"mpi+nccl"`` or ``"nccl"``."""
    return _ensure().backend


def barrier():
    """Wait until every rank reaches this point (and, with NCCL, until this GPU has finished its work)."""
    world = _ensure()
    if world.nccl is not None:
        backend.cuda_synchronize()
    if world.comm is not None:
        world.comm.Barrier()


def finalize():
    """Release the NCCL communicator and forget the group (MPI itself is finalized by mpi4py at exit)."""
    if _world.nccl is not None:
        backend.cuda_synchronize()
        with contextlib.suppress(Exception):
            _world.nccl.destroy()
    for name in ("initialized", "backend", "rank", "world_size", "local_rank", "mpi", "comm", "nccl",
                 "nccl_device"):
        _world.__dict__.pop(name, None)


# --------------------------------------------------------------------------
# Collectives on raw arrays (the tensor-level functions and DDP share these).
# --------------------------------------------------------------------------
def _normalise_op(call, op):
    name = _OPS.get(op.lower()) if isinstance(op, str) else None
    if name is None:
        raise ValueError(f"{call}: op={op!r} is not a reduction; use 'sum', 'mean', 'max', 'min' or 'prod' "
                         "(or gg.distributed.ReduceOp.SUM, ...)")
    return name


def _check_op_dtype(call, op, dtype):
    if op == "mean" and dtype.kind not in "fc":
        raise DTypeError(f"{call}: op='mean' on a {dtype} tensor would have to round; convert it first "
                         "(t.float()) or use op='sum' and divide yourself")
    if dtype.kind == "b" and op not in ("sum", "max", "min", "prod"):
        raise DTypeError(f"{call}: op={op!r} is not defined for bool tensors")


def _nccl_types(nccl):
    return {np.dtype("float16"): nccl.NCCL_FLOAT16, np.dtype("float32"): nccl.NCCL_FLOAT32,
            np.dtype("float64"): nccl.NCCL_FLOAT64, np.dtype("int32"): nccl.NCCL_INT32,
            np.dtype("int64"): nccl.NCCL_INT64, np.dtype("int8"): nccl.NCCL_INT8,
            np.dtype("uint8"): nccl.NCCL_UINT8}


def _as_reducible(array, op):
    """A view the transports can reduce, and the op to use on it.

    Bools travel as uint8: sum (logical or) becomes max, prod (logical and) min.
    """
    if array.dtype.kind == "b":
        return array.view(np.uint8), {"sum": "max", "prod": "min"}.get(op, op)
    return array, op


def _check_nccl_device(call, array):
    if array.device.id != _world.nccl_device.index:
        raise DeviceError(f"{call}: the tensor is on cuda:{array.device.id} but this rank's NCCL communicator "
                          f"works on {_world.nccl_device} (local rank {_world.local_rank}); move it with "
                          f".to('{_world.nccl_device}'), or create the model after gg.distributed.init()")


def _all_reduce_array(array, op, call="all_reduce"):
    """Reduce ``array`` across ranks in place (``op`` already normalised)."""
    world = _world
    if world.world_size == 1:
        return
    xp = backend.xp_of(array)
    contiguous = array if array.flags.c_contiguous else xp.ascontiguousarray(array)
    buffer, wire_op = _as_reducible(contiguous, op)
    if backend.is_gpu_array(buffer) and world.nccl is not None:
        _check_nccl_device(call, buffer)
        nccl = _optional_nccl()
        nccl_op = {"sum": nccl.NCCL_SUM, "mean": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN,
                   "prod": nccl.NCCL_PROD}[wire_op]
        cupy = backend.cupy_module()
        with cupy.cuda.Device(buffer.device.id):
            world.nccl.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, _nccl_types(nccl)[buffer.dtype],
                                 nccl_op, cupy.cuda.get_current_stream().ptr)
    else:
        host = backend.to_numpy(buffer) if backend.is_gpu_array(buffer) else buffer
        # NOTE: MPI libraries have no float16 arithmetic; sum in float32 and round once.
        wide = host.astype(np.float32) if host.dtype == np.float16 else host
        mpi = world.mpi
        world.comm.Allreduce(mpi.IN_PLACE, wide, op={"sum": mpi.SUM, "mean": mpi.SUM, "max": mpi.MAX,
                                                     "min": mpi.MIN, "prod": mpi.PROD}[wire_op])
        if wide is not host:
            host[...] = wide
        if host is not buffer:
            buffer[...] = xp.asarray(host)
    if op == "mean":
        buffer /= buffer.dtype.type(world.world_size)
    if contiguous is not array:
        array[...] = contiguous


def _broadcast_array(array, src, call="broadcast"):
    world = _world
    if world.world_size == 1:
        return
    xp = backend.xp_of(array)
    contiguous = array if array.flags.c_contiguous else xp.ascontiguousarray(array)
    raw = contiguous.reshape(-1).view(np.uint8)     # bytes: every dtype travels the same way
    if backend.is_gpu_array(raw) and world.nccl is not None:
        _check_nccl_device(call, raw)
        nccl = _optional_nccl()
        cupy = backend.cupy_module()
        with cupy.cuda.Device(raw.device.id):
            world.nccl.bcast(raw.data.ptr, raw.size, nccl.NCCL_UINT8, src, cupy.cuda.get_current_stream().ptr)
    else:
        host = backend.to_numpy(raw) if backend.is_gpu_array(raw) else raw
        world.comm.Bcast(host, root=src)
        if host is not raw:
            raw[...] = xp.asarray(host)
    if contiguous is not array:
        array[...] = contiguous


def _all_gather_array(array, call="all_gather"):
    """An array of shape ``(world_size, *array.shape)`` holding every rank's ``array``."""
    world = _world
    xp = backend.xp_of(array)
    source = xp.ascontiguousarray(array)
    gathered = xp.empty((world.world_size,) + tuple(array.shape), dtype=array.dtype)
    if world.world_size == 1:
        gathered[0] = source
        return gathered
    send, receive = source.reshape(-1).view(np.uint8), gathered.reshape(-1).view(np.uint8)
    if backend.is_gpu_array(send) and world.nccl is not None:
        _check_nccl_device(call, send)
        nccl = _optional_nccl()
        cupy = backend.cupy_module()
        with cupy.cuda.Device(send.device.id):
            world.nccl.allGather(send.data.ptr, receive.data.ptr, send.size, nccl.NCCL_UINT8,
                                 cupy.cuda.get_current_stream().ptr)
    else:
        host_send = backend.to_numpy(send)
        host_receive = np.empty(receive.shape, dtype=np.uint8)
        world.comm.Allgather(host_send, host_receive)
        receive[...] = xp.asarray(host_receive)
    return gathered


# --------------------------------------------------------------------------
# Collectives on tensors.
# --------------------------------------------------------------------------
def _check_tensor(call, tensor):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{call}: expected a gg.Tensor, got {type(tensor).__name__}; wrap arrays with gg.tensor(...)")


def _check_src(call, src):
    world = _ensure()
    if isinstance(src, bool) or not isinstance(src, numbers.Integral) or not 0 <= src < world.world_size:
        raise ValueError(f"{call}: src={src!r} is not a rank of this world of {world.world_size} process(es); "
                         f"use an integer from 0 to {world.world_size - 1}")
    return int(src)


def all_reduce(tensor, op="sum"):
    """Reduce ``tensor`` across all ranks, in place; every rank ends with the result.

    Parameters
    ----------
    tensor : Tensor
        Same shape and dtype on every rank.  Its data is overwritten (its
        version counter is bumped, so a graph that saved it refuses to
        backpropagate through stale values); no graph is recorded.
    op : {"sum", "mean", "max", "min", "prod"}
        ``"mean"`` (alias ``"avg"``) is the sum divided by the world size and
        needs a floating tensor.

    Returns
    -------
    Tensor
        ``tensor`` itself, for chaining.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.distributed.all_reduce(gg.tensor([3.0, 4.0]), op="sum")   # a world of one: unchanged
    tensor([3., 4.], device='cpu')
    """
    _check_tensor("all_reduce", tensor)
    op = _normalise_op("all_reduce", op)
    _check_op_dtype("all_reduce", op, tensor.dtype)
    if _ensure().world_size > 1:
        _all_reduce_array(tensor.array, op)
        tensor._bump_version()
    return tensor


def broadcast(tensor, src=0):
    """Overwrite ``tensor`` on every rank with rank ``src``'s values, in place.

    Raises
    ------
    ValueError
        ``src`` is not a rank of the world.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.distributed.broadcast(gg.tensor([1, 2]), src=0)
    tensor([1, 2], device='cpu')
    """
    _check_tensor("broadcast", tensor)
    src = _check_src("broadcast", src)
    if _world.world_size > 1:
        _broadcast_array(tensor.array, src)
        tensor._bump_version()
    return tensor


def all_gather(tensor_list, tensor):
    """Fill ``tensor_list[r]`` with rank ``r``'s ``tensor``, on every rank (PyTorch's signature).

    ``tensor_list`` holds ``get_world_size()`` tensors shaped like ``tensor``,
    on its device and with its dtype; they are written in place.

    Examples
    --------
    >>> import gpugrad as gg
    >>> out = [gg.zeros(2)]
    >>> gg.distributed.all_gather(out, gg.tensor([5.0, 6.0]))
    >>> out
    [tensor([5., 6.], device='cpu')]
    """
    _check_tensor("all_gather", tensor)
    world = _ensure()
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != world.world_size:
        count = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else type(tensor_list).__name__
        raise ValueError(f"all_gather: tensor_list must be a list of world_size={world.world_size} tensors, got "
                         f"{count}; make it with [gg.empty_like(t) for _ in range(gg.distributed.get_world_size())]")
    for index, target in enumerate(tensor_list):
        _check_tensor("all_gather", target)
        if tuple(target.shape) != tuple(tensor.shape):
            raise ShapeError(f"all_gather: tensor_list[{index}] has shape {tuple(target.shape)} but the tensor to "
                             f"gather has shape {tuple(tensor.shape)}; every entry must have the tensor's shape")
        if target.dtype != tensor.dtype:
            raise DTypeError(f"all_gather: tensor_list[{index}] is {target.dtype} but the tensor is "
                             f"{tensor.dtype}; make the entries with gg.empty_like(tensor)")
        if target.device != tensor.device:
            raise DeviceError(f"all_gather: tensor_list[{index}] is on {target.device} but the tensor is on "
                              f"{tensor.device}; keep them on one device (gg.empty_like(tensor))")
    gathered = _all_gather_array(tensor.array)
    for index, target in enumerate(tensor_list):
        target.array[...] = gathered[index]
        target._bump_version()


# --------------------------------------------------------------------------
# DistributedDataParallel
# --------------------------------------------------------------------------
def _flat_groups(arrays):
    """Group arrays by (device, dtype), in first-seen order (the same on every rank)."""
    groups = {}
    for position, array in enumerate(arrays):
        groups.setdefault((backend.device_of(array), array.dtype), []).append(position)
    return groups


class _GradientHook:
    """Post-accumulate hook on one parameter: tells the DDP wrapper its ``.grad``
    is complete (the wrapper is held weakly: no cycle)."""

    def __init__(self, ddp, index):
        self.ddp = weakref.ref(ddp)
        self.index = index

    def __call__(self, param):
        ddp = self.ddp()
        if ddp is not None and ddp._armed:
            ddp._gradient_ready(self.index)


class DistributedDataParallel(Module):
    """Wrap a model so that ``loss.backward()`` averages its gradients over all ranks.

    Every rank runs the same model on its own share of the batch; after
    ``backward`` each parameter's ``.grad`` is the mean over ranks of the
    local gradients, so identical optimizers keep the replicas identical.

    Parameters
    ----------
    module : gg.nn.Module
        The model, on one device (with NCCL: this rank's GPU).
    broadcast_parameters : bool, default True
        Copy rank 0's parameters and buffers to every rank now, so all
        replicas start equal whatever their random initialisation.
    broadcast_buffers : bool, default True
        Copy rank 0's buffers (BatchNorm's running statistics) to every rank
        at the start of each forward that records a graph (not under
        ``gg.no_grad()`` or :meth:`no_sync`), as PyTorch does.
    find_unused_parameters : bool, default False
        Allow forward passes that leave some parameters out of the graph: the
        graph behind the output is searched for the parameters it uses, and
        the others count as a zero local gradient.  Costs a graph walk per
        forward.
    device_ids : list of int, optional
        PyTorch's spelling; when given it must name the module's GPU.

    How gradients are averaged
    --------------------------
    A hook on each parameter notes that its gradient has arrived.  When the
    last expected parameter reports, all gradients are averaged at once, in
    a fixed order: one flat buffer per (device, dtype), one ``Allreduce``
    (or NCCL allReduce) each.  Why not one all-reduce per hook: the engine
    reaches leaves in an order that depends on object addresses, which differ
    between processes, and collectives must be called in the same order on
    every rank; and one big message costs one latency instead of one per
    parameter.  What is averaged is the *accumulated* ``.grad`` (like
    PyTorch), so gradients accumulated under :meth:`no_sync` are averaged by
    the first synchronised backward.  Gradients of the backward pass are not
    differentiable through the average (no double backward through DDP);
    The hooks are post-accumulate hooks
    (``Tensor.register_post_accumulate_grad_hook``): they see the finished
    ``.grad``.  ``gg.grad`` through the wrapper accumulates nothing, so it
    returns local, unaveraged gradients and leaves ``.grad`` alone.

    Examples
    --------
    >>> import gpugrad as gg
    >>> model = gg.distributed.DistributedDataParallel(gg.nn.Linear(3, 1))
    >>> model(gg.ones(2, 3)).sum().backward()
    >>> model.module.weight.grad.shape, list(model.state_dict())
    (Size([1, 3]), ['module.weight', 'module.bias'])
    """

    def __init__(self, module, broadcast_parameters=True, broadcast_buffers=True, find_unused_parameters=False,
                 device_ids=None):
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a gg.nn.Module, got {type(module).__name__}")
        super().__init__()
        world = _ensure()
        devices = {tensor.device for tensor in itertools.chain(module.parameters(), module.buffers())}
        if len(devices) > 1:
            raise DeviceError(f"DistributedDataParallel: the module's parameters and buffers live on several "
                              f"devices ({', '.join(sorted(str(d) for d in devices))}); move the whole model to "
                              "one device first, e.g. model.to(device)")
        device = devices.pop() if devices else backend.get_default_device()
        if device.type == "cuda" and world.nccl is not None and device != world.nccl_device:
            raise DeviceError(f"DistributedDataParallel: the module is on {device} but this rank (local rank "
                              f"{world.local_rank}) communicates on {world.nccl_device}; move it there with "
                              f"model.to('{world.nccl_device}')")
        if device_ids is not None:
            wanted = [backend.Device("cuda", i) if isinstance(i, int) else backend.as_device(i) for i in device_ids]
            if wanted != [device]:
                raise DeviceError(f"DistributedDataParallel: device_ids={list(device_ids)!r} but the module is on "
                                  f"{device}; move the model with model.to(...) or pass device_ids=[its index]")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.require_backward_grad_sync = True
        named = [(name, param) for name, param in module.named_parameters() if param.requires_grad]
        self._param_names = [name for name, _ in named]
        self._params = [param for _, param in named]
        self._armed = False             # the last forward asked for averaged gradients
        self._expected = frozenset()    # indices of the parameters whose gradients this pass awaits
        self._arrived = set()           # ... and those that have arrived
        if broadcast_parameters:
            self._broadcast_tensors(list(module.parameters()) + list(module.buffers()))
        handles = [param.register_post_accumulate_grad_hook(_GradientHook(self, index))
                   for index, param in enumerate(self._params)]
        weakref.finalize(self, _remove_handles, handles)

    # ------------------------------------------------------------- forward
    def forward(self, *inputs, **kwargs):
        grad_enabled = tape.is_grad_enabled()
        if grad_enabled:
            self._check_previous_pass()
        # Like PyTorch, only training forwards (grad enabled, not under no_sync) copy rank 0's buffers:
        # a collective in forward must run on every rank, and evaluating on rank 0 alone is common.
        if grad_enabled and self.require_backward_grad_sync and self.broadcast_buffers and _world.world_size > 1:
            self._broadcast_tensors(list(self.module.buffers()))
        output = self.module(*inputs, **kwargs)
        if grad_enabled:
            self._armed = self.require_backward_grad_sync
            self._arrived = set()
            expected = [i for i, param in enumerate(self._params) if param.requires_grad]
            if self.find_unused_parameters and self._armed:
                used = _leaves_reached(output)
                expected = [i for i in expected if self._params[i]._accumulator in used]
            self._expected = frozenset(expected)
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes after forwards inside this block only accumulate local gradients.

        The first synchronised backward afterwards averages the whole
        accumulated ``.grad``, so ``k`` micro-batches under ``no_sync`` plus
        one outside give the same step as one large batch, with one
        all-reduce instead of ``k + 1``.
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # ---------------------------------------------------------- reduction
    def _check_previous_pass(self):
        if self._armed and 0 < len(self._arrived) < len(self._expected):
            missing = [self._param_names[i] for i in sorted(self._expected - self._arrived)]
            raise DistributedError(
                f"DistributedDataParallel: the previous backward pass produced no gradient for "
                f"{len(missing)} parameter(s) ({', '.join(missing[:8])}{', ...' if len(missing) > 8 else ''}), "
                "so no gradient of that pass was averaged across ranks and the replicas may now differ. If "
                "some parameters are not used in every forward, pass find_unused_parameters=True; if they "
                "are frozen, set requires_grad=False on them before wrapping the model")

    def _gradient_ready(self, index):
        if index not in self._expected or index in self._arrived:
            return
        self._arrived.add(index)
        if len(self._arrived) < len(self._expected):
            return
        # The last gradient of the pass: every parameter's .grad is complete.
        self._arrived = set()
        self._average_gradients()

    def _average_gradients(self):
        order = [i for i, param in enumerate(self._params) if param.requires_grad]
        locals_ = []
        for i in order:
            param = self._params[i]
            local = None if param.grad is None else param.grad.array
            if local is None:
                local = backend.xp_of(param.array).zeros(param.shape, dtype=param.dtype)
            locals_.append(local.astype(param.dtype, copy=False))
        used_anywhere = None
        if self.find_unused_parameters:
            flags = np.array([i in self._expected for i in order], dtype=np.uint8)
            _all_reduce_array(flags, "max")
            used_anywhere = flags.astype(bool)
        for positions in _flat_groups(locals_).values():
            xp = backend.xp_of(locals_[positions[0]])
            flat = xp.concatenate([locals_[p].reshape(-1) for p in positions])
            _all_reduce_array(flat, "mean", call="DistributedDataParallel backward")
            offset = 0
            for position in positions:
                param = self._params[order[position]]
                size = param.numel()
                if used_anywhere is None or used_anywhere[position]:
                    # Views of the flat buffer: each parameter gets its own slice, so in-place
                    # changes to one gradient (clipping, say) touch no other.
                    param.grad = Tensor._make(flat[offset:offset + size].reshape(param.shape))
                offset += size

    def _broadcast_tensors(self, tensors):
        if _world.world_size == 1 or not tensors:
            return
        arrays = [tensor.array for tensor in tensors]
        for positions in _flat_groups(arrays).values():
            xp = backend.xp_of(arrays[positions[0]])
            flat = xp.concatenate([arrays[p].reshape(-1) for p in positions])
            _broadcast_array(flat, 0, call="DistributedDataParallel")
            offset = 0
            for position in positions:
                tensor = tensors[position]
                tensor.array[...] = flat[offset:offset + tensor.numel()].reshape(tensor.shape)
                tensor._bump_version()
                offset += tensor.numel()


def _remove_handles(handles):
    for handle in handles:
        handle.remove()


def _leaves_reached(output):
    """The AccumulateGrad nodes reachable from the tensors in ``output`` (any nesting)."""
    roots = []
    stack = [output]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            if item.grad_fn is not None:
                roots.append(item.grad_fn)
            elif item._accumulator is not None and item.requires_grad:
                roots.append(item._accumulator)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return {node for node in tape._graph_nodes(roots) if type(node) is tape.AccumulateGrad}


# --------------------------------------------------------------------------
# DistributedSampler
# --------------------------------------------------------------------------
class DistributedSampler:
    """Give each rank its own share of a dataset's indices (PyTorch's semantics).

    Every epoch one permutation of ``range(len(dataset))`` is drawn from
    ``numpy.random.default_rng(seed + epoch)`` (the same on every rank);
    unless ``drop_last``, it is padded by repeating its start until its
    length is a multiple of ``num_replicas``, and rank ``r`` takes positions
    ``r, r + num_replicas, ...``.  The shares are disjoint up to that padding
    and have equal lengths, so every rank runs the same number of steps.

    Parameters
    ----------
    dataset : sized
    num_replicas, rank : int, optional
        Default: ``get_world_size()`` and ``get_rank()``.
    shuffle : bool, default True
    seed : int, default 0
        Must be the same on every rank.
    drop_last : bool, default False
        Drop the tail instead of padding, so no sample is seen twice.

    Examples
    --------
    >>> import gpugrad as gg
    >>> list(gg.distributed.DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
    [1, 3, 0]
    >>> sampler = gg.distributed.DistributedSampler(range(6), num_replicas=2, rank=0, seed=1)
    >>> len(sampler), sorted(sampler) == sorted(set(sampler))
    (3, True)
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DistributedSampler: the dataset ({type(dataset).__name__}) has no length")
        if num_replicas is None:
            num_replicas = get_world_size()
        if rank is None:
            rank = get_rank()
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, numbers.Integral) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas={num_replicas!r} must be a positive integer "
                             "(the number of processes; default gg.distributed.get_world_size())")
        if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank!r}, rank should be in the interval "
                             f"[0, {num_replicas - 1}] (default gg.distributed.get_rank())")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"DistributedSampler: seed={seed!r} must be a non-negative integer, the same on "
                             "every rank")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        size = len(dataset)
        if self.drop_last and size % self.num_replicas != 0:
            self.num_samples = max(0, math.ceil((size - self.num_replicas) / self.num_replicas))
        else:
            self.num_samples = math.ceil(size / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Use epoch ``epoch``'s permutation next (call it with the same value on every rank)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"DistributedSampler.set_epoch: epoch={epoch!r} must be a non-negative integer")
        self.epoch = int(epoch)

    def indices(self):
        """This rank's indices for the current epoch, as a NumPy int64 array."""
        size = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(size).astype(np.int64)
        else:
            order = np.arange(size, dtype=np.int64)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > size:
            order = np.resize(order, self.total_size)   # repeats the start as often as needed
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples

    def __repr__(self):
        return (f"DistributedSampler({len(self.dataset)} samples, rank {self.rank} of {self.num_replicas}, "
                f"shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch}, drop_last={self.drop_last})")

"""gg.distributed: collectives, DistributedDataParallel, DistributedSampler, DataLoader(sampler=).

Everything runs in one process (a world of one) everywhere; the multi-process
half runs ``mpiexec -n 2`` on tests/distributed_worker.py and examples/train_ddp.py
where ``mpiexec`` and mpi4py are installed, and skips cleanly elsewhere.
"""
import contextlib
import copy
import gc
import os
import pathlib
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn
import gpugrad.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[1]

try:
    import torch
    import torch.utils.data
except ImportError:  # the oracle is optional
    torch = None


@pytest.fixture(autouse=True)
def _world_of_one():
    if dist._launched_by_mpi():
        pytest.skip("these tests expect a plain process; the MPI half runs its own mpiexec")
    dist.init()
    yield


# --------------------------------------------------------------------------
# The process group in a plain process.
# --------------------------------------------------------------------------
def test_plain_process_is_rank_zero_of_one_without_mpi():
    assert dist.is_initialized()
    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    assert dist.get_backend() == "single"
    assert "mpi4py.MPI" not in sys.modules or dist._world.comm is None   # MPI not started for nothing
    dist.barrier()
    dist.init()                                      # again: a no-op
    assert dist.get_world_size() == 1


def test_init_rejects_unknown_backend_and_nccl_without_gpu():
    with pytest.raises(ValueError, match="backend='gloo'.*'auto'"):
        dist.init(backend="gloo")
    if gg.cuda.is_available():
        pytest.skip("a GPU is present: NCCL may well work here")
    dist.finalize()
    try:
        with pytest.raises(gg.DeviceError, match=r"init\(backend='nccl'\).*NCCL needs a GPU.*backend='auto'"):
            dist.init(backend="nccl")
        assert not dist.is_initialized()
    finally:
        dist.init()


def test_launched_by_mpiexec_without_mpi4py_warns_and_runs_alone(monkeypatch):
    dist.finalize()
    monkeypatch.setitem(sys.modules, "mpi4py", None)          # import mpi4py -> ImportError
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    try:
        with pytest.raises(ImportError, match="pip install mpi4py"):
            dist.init(backend="mpi")
        with pytest.warns(RuntimeWarning, match=r"2 processes.*rank 0 of 1.*pip install mpi4py"):
            dist.init()
        assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
        assert dist.is_available() is False
    finally:
        monkeypatch.undo()
        dist.finalize()
        dist.init()


# --------------------------------------------------------------------------
# Collectives in a world of one.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["sum", "mean", "avg", "max", "min", "prod", dist.ReduceOp.SUM, "MEAN"])
def test_all_reduce_is_the_identity_in_a_world_of_one(op, device):
    t = gg.tensor([[1.5, -2.0], [3.0, 4.0]], device=device)
    before = t.numpy().copy()
    assert dist.all_reduce(t, op=op) is t
    assert np.array_equal(t.numpy(), before)


def test_broadcast_and_all_gather_in_a_world_of_one(device):
    t = gg.tensor([1, 2, 3], device=device)
    assert dist.broadcast(t, src=0) is t and t.tolist() == [1, 2, 3]
    out = [gg.zeros(3, dtype=gg.int64, device=device)]
    assert dist.all_gather(out, t) is None
    assert out[0].tolist() == [1, 2, 3]


def test_collectives_reject_bad_input_with_typed_errors():
    t = gg.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="all_reduce: op='average'.*'sum', 'mean'"):
        dist.all_reduce(t, op="average")
    with pytest.raises(gg.DTypeError, match="all_reduce: op='mean' on a int64.*t.float()"):
        dist.all_reduce(gg.tensor([1, 2]), op="mean")
    with pytest.raises(TypeError, match="all_reduce: expected a gg.Tensor, got ndarray"):
        dist.all_reduce(np.ones(2))
    for src in (1, -1, True, 0.0):
        with pytest.raises(ValueError, match=r"broadcast: src=.* world of 1 process\(es\); use an integer from 0 to 0"):
            dist.broadcast(t, src=src)
    with pytest.raises(ValueError, match="all_gather: tensor_list must be a list of world_size=1"):
        dist.all_gather([gg.zeros(2), gg.zeros(2)], t)
    with pytest.raises(gg.ShapeError, match=r"all_gather: tensor_list\[0\] has shape \(3,\).*\(2,\)"):
        dist.all_gather([gg.zeros(3)], t)
    with pytest.raises(gg.DTypeError, match=r"all_gather: tensor_list\[0\] is int64.*float32"):
        dist.all_gather([gg.zeros(2, dtype=gg.int64)], t)
    assert t.tolist() == [1.0, 2.0]                   # nothing half-done


# --------------------------------------------------------------------------
# DistributedDataParallel in a world of one: exactly the plain model.
# --------------------------------------------------------------------------
def _model(seed=0):
    gg.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _data(n=12, seed=1):
    rng = np.random.default_rng(seed)
    return gg.tensor(rng.standard_normal((n, 4)).astype(np.float32)), gg.tensor(rng.integers(0, 3, n))


def test_ddp_trains_exactly_like_the_plain_model():
    plain = _model()
    ddp = dist.DistributedDataParallel(copy.deepcopy(plain))
    inputs, labels = _data()
    plain_optimizer = gg.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    ddp_optimizer = gg.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        for model, optimizer in ((plain, plain_optimizer), (ddp, ddp_optimizer)):
            optimizer.zero_grad()
            F.cross_entropy(model(inputs), labels).backward()
            optimizer.step()
    for (name, a), b in zip(ddp.module.state_dict().items(), plain.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy()), name
    for a, b in zip(ddp.module.parameters(), plain.parameters(), strict=True):
        assert np.array_equal(a.grad.numpy(), b.grad.numpy())


def test_ddp_is_a_module_wrapper_with_torch_names():
    inner = _model()
    ddp = dist.DistributedDataParallel(inner)
    assert isinstance(ddp, nn.Module) and ddp.module is inner
    assert list(ddp.state_dict()) == ["module." + key for key in inner.state_dict()]
    assert [id(p) for p in ddp.parameters()] == [id(p) for p in inner.parameters()]
    inputs, _ = _data()
    ddp.eval()
    assert not inner.training
    assert np.array_equal(ddp(inputs).numpy(), inner(inputs).numpy())
    other = dist.DistributedDataParallel(_model(seed=5))
    other.load_state_dict(ddp.state_dict())
    other.eval()
    assert np.array_equal(other(inputs).numpy(), ddp(inputs).numpy())
    assert repr(ddp).startswith("DistributedDataParallel(\n  (module): Sequential(")


def test_ddp_no_sync_accumulates_like_the_plain_model():
    plain = _model()
    ddp = dist.DistributedDataParallel(copy.deepcopy(plain))
    inputs, labels = _data()
    for model in (plain, ddp):
        with ddp.no_sync():
            F.cross_entropy(model(inputs[:6]), labels[:6]).backward()
        F.cross_entropy(model(inputs[6:]), labels[6:]).backward()
    assert ddp.require_backward_grad_sync
    for a, b in zip(ddp.parameters(), plain.parameters(), strict=True):
        assert np.allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_ddp_gradients_that_share_one_array_are_not_reduced_twice():
    class Sum(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(gg.ones(3))
            self.b = nn.Parameter(gg.ones(3))

        def forward(self, x):
            return (self.a + self.b) * x           # add's VJP hands both leaves one array

    ddp = dist.DistributedDataParallel(Sum())
    ddp(gg.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert ddp.module.a.grad.tolist() == [1.0, 2.0, 3.0] == ddp.module.b.grad.tolist()
    ddp.module.a.grad.mul_(0.0)                    # separate buffers: clipping one leaves the other
    assert ddp.module.b.grad.tolist() == [1.0, 2.0, 3.0]


def test_ddp_second_backward_with_retained_graph_accumulates():
    plain = _model()
    ddp = dist.DistributedDataParallel(copy.deepcopy(plain))
    inputs, labels = _data()
    for model in (plain, ddp):
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward(retain_graph=True)
        loss.backward()
    for a, b in zip(ddp.parameters(), plain.parameters(), strict=True):
        assert np.allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_ddp_gg_grad_returns_local_gradients_and_leaves_dot_grad_alone():
    plain = _model()
    ddp = dist.DistributedDataParallel(copy.deepcopy(plain))
    inputs, labels = _data()
    expected = gg.grad(F.cross_entropy(plain(inputs), labels), list(plain.parameters()))
    got = gg.grad(F.cross_entropy(ddp(inputs), labels), list(ddp.parameters()))
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a.numpy(), b.numpy())
    assert all(p.grad is None for p in ddp.parameters())
    F.cross_entropy(ddp(inputs), labels).backward()      # and the next backward still works
    assert all(p.grad is not None for p in ddp.parameters())


class _TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(2, 2)
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        return self.used(x)


def test_ddp_unused_parameter_is_an_error_naming_it_at_the_next_forward():
    ddp = dist.DistributedDataParallel(_TwoHeads())
    ddp(gg.ones(1, 2)).sum().backward()
    with pytest.raises(dist.DistributedError, match=r"2 parameter\(s\) \(unused.weight, unused.bias\).*"
                                                    r"find_unused_parameters=True"):
        ddp(gg.ones(1, 2))
    with gg.no_grad():
        ddp(gg.ones(1, 2))                        # evaluation is not a training step: no complaint


def test_ddp_find_unused_parameters_and_frozen_parameters():
    ddp = dist.DistributedDataParallel(_TwoHeads(), find_unused_parameters=True)
    for _ in range(2):
        ddp(gg.ones(1, 2)).sum().backward()
    assert ddp.module.unused.weight.grad is None
    assert ddp.module.used.bias.grad.tolist() == [2.0, 2.0]
    frozen = _TwoHeads()
    frozen.unused.requires_grad_(False)
    ddp = dist.DistributedDataParallel(frozen)
    for _ in range(2):
        ddp(gg.ones(1, 2)).sum().backward()
    assert frozen.used.bias.grad.tolist() == [2.0, 2.0]


def test_ddp_rejects_bad_arguments():
    with pytest.raises(TypeError, match="DistributedDataParallel: expected a gg.nn.Module, got function"):
        dist.DistributedDataParallel(lambda x: x)
    with pytest.raises(gg.DeviceError, match=r"device_ids=\[0\] but the module is on cpu"):
        dist.DistributedDataParallel(_model(), device_ids=[0])


def test_ddp_hooks_go_away_with_the_wrapper():
    inner = _model()
    ddp = dist.DistributedDataParallel(inner)
    del ddp
    gc.collect()
    for param in inner.parameters():
        assert not param._accumulator.post_hooks, "a dead wrapper's hooks must be removed"
    inputs, labels = _data()
    F.cross_entropy(inner(inputs), labels).backward()
    assert all(p.grad is not None for p in inner.parameters())


# --------------------------------------------------------------------------
# DistributedSampler and DataLoader(sampler=).
# --------------------------------------------------------------------------
PARTITIONS = [(10, 3, False), (10, 3, True), (9, 3, False), (9, 3, True), (2, 4, False), (2, 4, True),
              (1, 1, False), (7, 2, True), (5, 8, False)]


@pytest.mark.parametrize("size,replicas,drop_last", PARTITIONS)
def test_sampler_partitions_like_torch(size, replicas, drop_last):
    for rank in range(replicas):
        ours = dist.DistributedSampler(range(size), num_replicas=replicas, rank=rank, shuffle=False,
                                       drop_last=drop_last)
        if torch is not None:
            theirs = torch.utils.data.DistributedSampler(range(size), num_replicas=replicas, rank=rank,
                                                         shuffle=False, drop_last=drop_last)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
        else:
            total = len(ours) * replicas
            padded = (list(range(size)) * (total // max(size, 1) + 1))[:total]
            assert list(ours) == padded[rank:total:replicas]


@pytest.mark.parametrize("size,replicas,drop_last", PARTITIONS)
def test_shuffled_sampler_splits_one_permutation_per_epoch(size, replicas, drop_last):
    def shares(epoch, seed=7):
        samplers = [dist.DistributedSampler(range(size), num_replicas=replicas, rank=r, seed=seed,
                                            drop_last=drop_last) for r in range(replicas)]
        for sampler in samplers:
            sampler.set_epoch(epoch)
        return [list(sampler) for sampler in samplers]

    first = shares(0)
    lengths = {len(share) for share in first}
    assert len(lengths) == 1                                   # every rank runs the same number of steps
    if torch is not None:
        theirs = torch.utils.data.DistributedSampler(range(size), num_replicas=replicas, rank=0,
                                                     drop_last=drop_last)
        assert lengths == {len(theirs)}
    together = sorted(i for share in first for i in share)
    if drop_last:
        assert len(set(together)) == len(together)             # disjoint, nothing repeated
    else:
        assert set(together) == set(range(size))              # everything seen, padding repeats only
        assert len(together) - len(set(together)) < replicas
    assert shares(0) == first                                  # a pure function of (seed, epoch)
    if size >= 5:
        assert shares(1) != first and shares(0, seed=8) != first
    # The permutation is default_rng(seed + epoch)'s: interleaving the shares gives it back.
    permutation = np.random.default_rng(7 + 0).permutation(size).tolist()
    interleaved = [share[i] for i in range(len(first[0])) for share in first]
    assert interleaved[:min(size, len(interleaved))] == permutation[:min(size, len(interleaved))]


def test_sampler_defaults_come_from_the_process_group_and_bad_ranks_raise():
    sampler = dist.DistributedSampler(range(4))
    assert (sampler.num_replicas, sampler.rank, sampler.shuffle, sampler.seed) == (1, 0, True, 0)
    assert sorted(sampler) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"invalid rank 2, rank should be in the interval \[0, 1\]"):
        dist.DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="invalid rank -1"):
        dist.DistributedSampler(range(4), num_replicas=2, rank=-1)
    with pytest.raises(ValueError, match="num_replicas=0 must be a positive integer"):
        dist.DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(ValueError, match="set_epoch: epoch=-1"):
        sampler.set_epoch(-1)


def test_dataloader_follows_a_sampler():
    dataset = gg.data.TensorDataset(gg.arange(10) * 10, gg.arange(10))
    sampler = dist.DistributedSampler(dataset, num_replicas=3, rank=1, shuffle=False)
    loader = gg.data.DataLoader(dataset, batch_size=2, sampler=sampler)
    assert len(loader) == 2 and loader.sampler is sampler
    batches = [ys.tolist() for _, ys in loader]
    assert batches == [[1, 4], [7, 0]]                         # a gather, not a contiguous slice
    assert [xs.tolist() for xs, _ in loader] == [[10, 40], [70, 0]]
    shuffled = dist.DistributedSampler(dataset, num_replicas=2, rank=0, seed=4)
    loader = gg.data.DataLoader(dataset, batch_size=3, sampler=shuffled, drop_last=True)
    epoch0 = [ys.tolist() for _, ys in loader]
    assert sum(epoch0, []) == list(shuffled)[:3] and len(loader) == 1
    shuffled.set_epoch(1)
    assert [ys.tolist() for _, ys in loader] != epoch0
    # A plain list of indices is a sampler too, and so is it for the per-sample path.
    loader = gg.data.DataLoader(dataset, batch_size=2, sampler=[3, 3, 9], collate_fn=gg.data.default_collate)
    assert [ys.tolist() for _, ys in loader] == [[3, 3], [9]]


def test_dataloader_sampler_excludes_shuffle():
    dataset = gg.data.TensorDataset(gg.arange(4))
    with pytest.raises(ValueError, match="sampler= and shuffle=True both decide the order"):
        gg.data.DataLoader(dataset, shuffle=True, sampler=[0, 1])
    with pytest.raises(TypeError, match="sampler must be a sized iterable of indices, got int"):
        gg.data.DataLoader(dataset, sampler=3)


# --------------------------------------------------------------------------
# Several processes, where MPI is installed.
# --------------------------------------------------------------------------
def _mpiexec(script, *args, ranks=2, timeout=120):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not found (apt-get install openmpi-bin libopenmpi-dev)")
    if not dist.is_available():
        pytest.skip("mpi4py not installed (pip install mpi4py)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               GPUGRAD_DEVICE=os.environ.get("GPUGRAD_DEVICE", "cpu"), OMP_NUM_THREADS="1")
    command = [mpiexec, "-n", str(ranks)]
    version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, check=False)
    if "Open MPI" in version.stdout + version.stderr or "OpenRTE" in version.stdout + version.stderr:
        # CI runs as root on machines with fewer cores than ranks; Open MPI refuses both by default.
        command[1:1] = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    result = subprocess.run(command + [sys.executable, str(script), *args], capture_output=True, text=True,
                            env=env, timeout=timeout, cwd=ROOT, check=False)
    assert result.returncode == 0, f"mpiexec failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_two_ranks_collectives_ddp_and_sampler():
    out = _mpiexec(ROOT / "tests" / "distributed_worker.py", "2")
    assert "rank 0 of 2: ok" in out and "rank 1 of 2: ok" in out, out


@pytest.mark.slow
def test_train_ddp_example_two_ranks():
    out = _mpiexec(ROOT / "examples" / "train_ddp.py", "--epochs", "2")
    assert "rank 1/2 epoch 1" in out and "replicas identical across 2 ranks" in out, out


def test_train_ddp_example_runs_as_a_plain_process():
    alone = subprocess.run([sys.executable, str(ROOT / "examples" / "train_ddp.py"), "--epochs", "1"],
                           capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert alone.returncode == 0, alone.stderr
    assert "world of 1" in alone.stdout, alone.stdout


def test_no_warnings_from_a_plain_wrapped_step():
    ddp = dist.DistributedDataParallel(_model())
    inputs, labels = _data()
    optimizer = gg.optim.SGD(ddp.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(ddp(inputs), labels).backward()
            optimizer.step()


# --------------------------------------------------------------------------
# The NCCL path, against a stand-in communicator (CI has no GPU; the real one
# runs where CuPy, NCCL and GPUs are).  Checks what reaches NCCL: the buffer
# pointer, count, dtype and op codes, the stream; and what comes back.
# --------------------------------------------------------------------------
class _FakeGpuArray(np.ndarray):
    """A NumPy array that the backend is told to treat as a CuPy array on cuda:0."""

    @property
    def data(self):
        return type("Pointer", (), {"ptr": self.ctypes.data})()

    @property
    def device(self):
        return type("Device", (), {"id": 0})()


class _FakeNccl:
    NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT32, NCCL_INT64, NCCL_INT8, NCCL_UINT8 = range(7)
    NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = range(4)


class _FakeCommunicator:
    """Two ranks, the other one holding the same values as this one."""

    def __init__(self):
        self.calls = []
        self.arrays = {}

    def _array(self, ptr):
        return self.arrays[ptr]

    def allReduce(self, send, receive, count, dtype, op, stream):  # CuPy's name
        self.calls.append(("allReduce", send == receive, count, dtype, op, stream))
        array = self._array(receive).reshape(-1)
        if op == _FakeNccl.NCCL_SUM:
            array += array
        # max/min of two equal arrays: unchanged

    def bcast(self, buffer, count, dtype, root, stream):
        self.calls.append(("bcast", count, dtype, root, stream))
        self._array(buffer).reshape(-1)[...] = 7


@pytest.fixture
def fake_nccl(monkeypatch):
    from gpugrad import backend
    communicator = _FakeCommunicator()
    cuda = type("cuda", (), {"Device": lambda index: contextlib.nullcontext(),
                             "get_current_stream": staticmethod(lambda: type("S", (), {"ptr": 1234})())})
    monkeypatch.setattr(backend, "is_gpu_array", lambda array: isinstance(array, _FakeGpuArray))
    monkeypatch.setattr(backend, "cupy_module", lambda: type("cupy", (), {"cuda": cuda}))
    monkeypatch.setattr(dist, "_optional_nccl", lambda: _FakeNccl)
    monkeypatch.setattr(dist._world, "world_size", 2)
    monkeypatch.setattr(dist._world, "nccl", communicator)
    monkeypatch.setattr(dist._world, "nccl_device", gg.Device("cuda:0"))

    def make(values, dtype):
        array = np.array(values, dtype=dtype).view(_FakeGpuArray)
        communicator.arrays[array.ctypes.data] = array
        return array
    communicator.make = make
    return communicator


def test_nccl_all_reduce_passes_the_buffer_in_place_on_the_current_stream(fake_nccl):
    array = fake_nccl.make([1.0, 2.0, 3.0], np.float32)
    dist._all_reduce_array(array, "mean")
    assert fake_nccl.calls == [("allReduce", True, 3, _FakeNccl.NCCL_FLOAT32, _FakeNccl.NCCL_SUM, 1234)]
    assert array.tolist() == [1.0, 2.0, 3.0]            # (x + x) / 2
    halves = fake_nccl.make([1.5, -2.0], np.float16)
    dist._all_reduce_array(halves, "sum")
    assert fake_nccl.calls[-1][3] == _FakeNccl.NCCL_FLOAT16 and halves.tolist() == [3.0, -4.0]
    flags = fake_nccl.make([True, False], np.bool_)
    dist._all_reduce_array(flags, "sum")                # bools travel as uint8, sum as max (logical or)
    assert fake_nccl.calls[-1][3:5] == (_FakeNccl.NCCL_UINT8, _FakeNccl.NCCL_MAX)
    assert flags.tolist() == [True, False]
    counts = fake_nccl.make([[1, 2], [3, 4]], np.int64)
    dist._all_reduce_array(counts, "min")
    assert fake_nccl.calls[-1][2:5] == (4, _FakeNccl.NCCL_INT64, _FakeNccl.NCCL_MIN)


def test_nccl_broadcast_sends_bytes_and_checks_the_device(fake_nccl):
    array = fake_nccl.make([1.0, 2.0], np.float64)
    dist._broadcast_array(array, 1)
    assert fake_nccl.calls[-1] == ("bcast", 16, _FakeNccl.NCCL_UINT8, 1, 1234)
    dist._world.nccl_device = gg.Device("cuda:1")
    with pytest.raises(gg.DeviceError, match=r"all_reduce: the tensor is on cuda:0 but this rank's NCCL "
                                             r"communicator works on cuda:1.*\.to\('cuda:1'\)"):
        dist._all_reduce_array(fake_nccl.make([1.0], np.float32), "sum")

"""DataLoader worker processes: order, values, seeds, errors, shutdown, memory, pinning, fit's resume."""

import gc
import os
import random
import sys
import time

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn
from gpugrad.utils.data import _worker


@pytest.fixture(autouse=True)
def _fork_where_it_is_safe(request, monkeypatch):
    """These tests' workers never touch CUDA, so fork is safe even after CUDA is initialised (the CuPy
    stand-in, or a card in gpu_check.sh), and far quicker than spawn; the tests of the start method
    itself (and of pinning) keep the library's own choice."""
    if not any(word in request.node.name for word in ("start_method", "spawn", "pin_memory")):
        monkeypatch.setattr(_worker, "cuda_initialised", lambda: False)


def _tensor_dataset(n=23):
    x = gg.from_numpy(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = gg.from_numpy(np.arange(n, dtype=np.int64) % 4)
    return gg.data.TensorDataset(x, y)


def _values(loader):
    return [_plain(batch) for batch in loader]


def _plain(batch):
    if isinstance(batch, gg.Tensor):
        return (str(batch.dtype), batch.numpy().tolist())
    if isinstance(batch, np.ndarray):
        return ("ndarray", str(batch.dtype), batch.tolist())
    if isinstance(batch, dict):
        return {key: _plain(value) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [_plain(value) for value in batch]
    return batch


class Records(gg.data.Dataset):
    """Samples of several kinds (array, number, string, dict) so collation runs in the worker."""

    def __len__(self):
        return 17

    def __getitem__(self, index):
        return {"x": np.full((2,), index, dtype=np.float64), "label": index % 3, "name": f"s{index}"}


class Seeds(gg.data.Dataset):
    """Each sample reports the worker's seed and a draw from every seeded stream."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        info = gg.data.get_worker_info()
        return (index, -1 if info is None else info.id, -1 if info is None else info.seed,
                random.random(), float(np.random.random()), float(gg.rand(1).item()))


class FailsAt(gg.data.Dataset):
    def __init__(self, bad):
        self.bad = bad

    def __len__(self):
        return 12

    def __getitem__(self, index):
        if index == self.bad:
            raise ValueError(f"corrupt record {index}")
        return np.float32(index)


class Slow(gg.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        time.sleep(30)
        return np.float32(index)


def bad_init(worker_id):
    raise OSError("no such file")


def _shm_leftovers():
    return [name for name in os.listdir(_worker._SHM_DIR) if name.startswith(f"gpugrad-loader-{os.getpid()}-")]


@pytest.mark.parametrize("options", [dict(), dict(shuffle=True, seed=5), dict(shuffle=True, drop_last=True, seed=1),
                                     dict(batch_size=4, prefetch_factor=1), dict(persistent_workers=True)])
@pytest.mark.parametrize("workers", [1, 3])
def test_workers_give_the_batches_of_num_workers_0(options, workers):
    options = {"batch_size": 5, **options}
    dataset = _tensor_dataset()
    expected = _values(gg.data.DataLoader(dataset, **{k: v for k, v in options.items()
                                                     if k not in ("prefetch_factor", "persistent_workers")}))
    loader = gg.data.DataLoader(dataset, num_workers=workers, **options)
    assert _values(loader) == expected
    second = _values(loader)              # epoch 1: a new order when shuffled, the same otherwise
    loader.set_epoch(0)
    assert _values(loader) == expected
    plain = gg.data.DataLoader(dataset, **{k: v for k, v in options.items()
                                           if k not in ("prefetch_factor", "persistent_workers")})
    plain.set_epoch(1)
    assert second == _values(plain)
    loader.shutdown_workers()
    assert _shm_leftovers() == []


def test_generator_sampler_batch_sampler_and_collation_match_num_workers_0():
    dataset = _tensor_dataset()
    for make in (lambda **kw: gg.data.DataLoader(dataset, batch_size=4, shuffle=True,
                                                 generator=gg.Generator().manual_seed(3), **kw),
                 lambda **kw: gg.data.DataLoader(dataset, batch_sampler=[[3, 1], [0, 0, 22], [5]], **kw),
                 lambda **kw: gg.data.DataLoader(Records(), batch_size=4, **kw),
                 lambda **kw: gg.data.DataLoader(Records(), batch_size=3, collate_fn=list, **kw)):
        expected = [_values(make()) for _ in range(1)]
        loader_values = [_values(make(num_workers=2))]
        assert loader_values == expected
    first = _values(gg.data.DataLoader(Records(), batch_size=4, num_workers=2))
    assert first[0]["name"] == ["s0", "s1", "s2", "s3"] and first[0]["label"][0] == "int64"
    # in_order=False: every batch exactly once, whatever the arrival order
    unordered = _values(gg.data.DataLoader(dataset, batch_size=3, num_workers=3, in_order=False))
    assert sorted(map(str, unordered)) == sorted(map(str, _values(gg.data.DataLoader(dataset, batch_size=3))))


def test_a_generator_loader_draws_the_same_numbers_as_num_workers_0():
    dataset = _tensor_dataset()
    g0, g2 = gg.Generator().manual_seed(11), gg.Generator().manual_seed(11)
    zero = gg.data.DataLoader(dataset, batch_size=4, shuffle=True, generator=g0)
    two = gg.data.DataLoader(dataset, batch_size=4, shuffle=True, generator=g2, num_workers=2)
    for _ in range(2):
        assert _values(zero) == _values(two)
    assert np.array_equal(g0.get_state().numpy(), g2.get_state().numpy())   # the workers' seed drew nothing


def test_worker_seeds_are_base_seed_plus_id_and_reproducible():
    gg.manual_seed(0)
    first = _values(gg.data.DataLoader(Seeds(), batch_size=2, num_workers=2, shuffle=True))
    after_first = gg.rand(1).item()
    gg.manual_seed(0)
    again = _values(gg.data.DataLoader(Seeds(), batch_size=2, num_workers=2, shuffle=True))
    assert again == first and gg.rand(1).item() == after_first
    for workers in (0, 2):
        gg.manual_seed(0)
        _values(gg.data.DataLoader(_tensor_dataset(), batch_size=2, shuffle=True, num_workers=workers))
        assert gg.rand(1).item() == after_first    # workers drew nothing from the global stream
    rows = [tuple(column[1][i] for column in batch) for batch in first for i in range(2)]
    seeds = {worker: seed for _, worker, seed, *_ in rows}
    assert sorted(seeds) == [0, 1] and seeds[1] == seeds[0] + 1
    draws = {worker: [row[3:] for row in rows if row[1] == worker] for worker in (0, 1)}
    assert draws[0] != draws[1]                     # each stream differs per worker
    assert len({row[3] for row in rows}) == len(rows)


def test_a_worker_error_names_the_worker_the_batch_and_the_sample():
    loader = gg.data.DataLoader(FailsAt(7), batch_size=2, num_workers=2)
    with pytest.raises(ValueError, match=r"worker process 1 while loading batch 3 \(sample index 7\)") as caught:
        _values(loader)
    assert "corrupt record 7" in str(caught.value) and "Original Traceback" in str(caught.value)
    gc.collect()
    assert _shm_leftovers() == []
    with pytest.raises(OSError, match="worker process 0 in worker_init_fn"):
        _values(gg.data.DataLoader(_tensor_dataset(), num_workers=1, worker_init_fn=bad_init))


def _workers_of(iterator):
    return list(iterator.pool.processes)


def test_workers_stop_at_epoch_end_on_garbage_collection_and_on_error():
    dataset = _tensor_dataset()
    iterator = iter(gg.data.DataLoader(dataset, batch_size=2, num_workers=2))
    processes = _workers_of(iterator)
    assert all(p.is_alive() for p in processes)
    list(iterator)
    assert not any(p.is_alive() for p in processes)          # the epoch ended
    iterator = iter(gg.data.DataLoader(dataset, batch_size=2, num_workers=2))
    next(iterator)
    processes = _workers_of(iterator)
    del iterator                                              # abandoned mid-epoch
    gc.collect()
    assert not any(p.is_alive() for p in processes)
    iterator = iter(gg.data.DataLoader(FailsAt(0), batch_size=2, num_workers=2))
    processes = _workers_of(iterator)
    with pytest.raises(ValueError):
        next(iterator)
    assert not any(p.is_alive() for p in processes)
    assert _shm_leftovers() == []


def test_persistent_workers_survive_an_abandoned_epoch():
    dataset = _tensor_dataset()
    loader = gg.data.DataLoader(dataset, batch_size=2, num_workers=2, persistent_workers=True, shuffle=True, seed=4)
    plain = gg.data.DataLoader(dataset, batch_size=2, shuffle=True, seed=4)
    iterator = iter(loader)
    next(iterator)
    iter(plain)                                               # plain skips epoch 0 as well
    del iterator
    processes = list(loader._pool.processes)
    assert _values(loader) == _values(plain)                  # stale results of epoch 0 are dropped
    assert loader._pool.processes == processes and all(p.is_alive() for p in processes)
    loader.shutdown_workers()
    assert not any(p.is_alive() for p in processes)
    assert _shm_leftovers() == []


def test_timeout_and_a_killed_worker_raise():
    iterator = iter(gg.data.DataLoader(Slow(), batch_size=2, num_workers=1, timeout=1))
    with pytest.raises(RuntimeError, match="timed out after 1 seconds"):
        next(iterator)
    iterator = iter(gg.data.DataLoader(Slow(), batch_size=2, num_workers=1))
    _workers_of(iterator)[0].kill()
    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        next(iterator)


def test_fork_shares_the_dataset_instead_of_copying_it():
    """A 64 MiB TensorDataset read in full by a forked worker dirties almost none of its pages."""
    if _worker.resolve_context(None).get_start_method() != "fork" or not os.path.exists("/proc/self/smaps_rollup"):
        pytest.skip("needs fork and Linux's /proc")
    rows = 1 << 14
    dataset = gg.data.TensorDataset(gg.from_numpy(np.ones((rows, 1024), dtype=np.float32)))
    loader = gg.data.DataLoader(dataset, batch_size=rows // 64, num_workers=1, persistent_workers=True,
                                shuffle=True, seed=0)

    def private_dirty_kib(pid):
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            return sum(int(line.split()[1]) for line in rollup if line.startswith("Private_Dirty"))
    iterator = iter(loader)
    next(iterator)
    pid = loader._pool.processes[0].pid
    before = private_dirty_kib(pid)
    for _ in iterator:
        pass
    grown = private_dirty_kib(pid) - before
    loader.shutdown_workers()
    assert grown < 64 * 1024 // 8, f"the worker's private memory grew by {grown} KiB reading a 65536 KiB dataset"


def test_default_start_method_avoids_fork_after_cuda(monkeypatch):
    if "fork" not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip("no fork here")
    monkeypatch.setattr(gg.backend, "_cupy", None)
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    assert _worker.resolve_context(None).get_start_method() == "fork"
    monkeypatch.setitem(sys.modules, "cupy", object())
    assert _worker.resolve_context(None).get_start_method() == "spawn"
    with pytest.raises(ValueError, match="start method"):
        gg.data.DataLoader(_tensor_dataset(), num_workers=1, multiprocessing_context="no-such")._worker_batches(0)


def test_spawned_workers_give_the_same_batches():
    dataset = _tensor_dataset()
    expected = _values(gg.data.DataLoader(dataset, batch_size=6, shuffle=True, seed=2))
    assert _values(gg.data.DataLoader(dataset, batch_size=6, shuffle=True, seed=2, num_workers=2,
                                      multiprocessing_context="spawn")) == expected
    with pytest.raises(TypeError, match="pickles the dataset"):
        _values(gg.data.DataLoader(dataset, num_workers=1, multiprocessing_context="spawn",
                                   worker_init_fn=lambda worker_id: None))


def test_pin_memory_and_non_blocking_copies(device):
    dataset = _tensor_dataset()
    batches = list(gg.data.DataLoader(dataset, batch_size=5, pin_memory=True, num_workers=2))
    expected = _values(gg.data.DataLoader(dataset, batch_size=5))
    assert _values(batches) == expected
    assert all(gg.cuda.is_pinned(t) == gg.cuda.is_available() for batch in batches for t in batch)
    moved = list(gg.data.DataLoader(dataset, batch_size=5, pin_memory=True, num_workers=2, device=device))
    assert all(t.device.type == device for batch in moved for t in batch) and _values(moved) == expected
    moved0 = list(gg.data.DataLoader(dataset, batch_size=5, pin_memory=True, device=device))
    assert _values(moved0) == expected
    host = gg.from_numpy(gg.cuda.pin_array(np.arange(6.0)))
    copied = host.to(device, non_blocking=True)
    assert copied.device.type == device and copied.numpy().tolist() == list(range(6))
    if device == "cuda":
        assert gg.cuda.is_pinned(host) and gg.cuda._in_flight[-1][1] is host.array   # kept alive until copied
        with pytest.raises(gg.DeviceError, match="CPU worker"):
            iter(gg.data.DataLoader(gg.data.TensorDataset(gg.zeros(4, device="cuda")), num_workers=1))


def _mlp_run(workers, checkpoint=None, max_steps=None, epochs=3):
    gg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = gg.from_numpy(rng.standard_normal((96, 4)).astype(np.float32))
    y = gg.from_numpy(rng.integers(0, 3, 96).astype(np.int64))
    loader = gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=16, shuffle=True, num_workers=workers)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
    optimizer = gg.optim.Adam(model.parameters(), lr=1e-2)
    gg.train.fit(model, optimizer, nn.CrossEntropyLoss(), loader, epochs=epochs, progress=False,
                 checkpoint=checkpoint, max_steps=max_steps)
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_fit_resumes_mid_epoch_with_workers_exactly(tmp_path):
    expected = _mlp_run(workers=0)
    path = str(tmp_path / "run.safetensors")
    _mlp_run(workers=2, checkpoint=path, max_steps=6 + 2)         # stops inside epoch 1
    assert gg.load(path)["epoch"] == 1
    resumed = _mlp_run(workers=2, checkpoint=path)
    assert resumed.keys() == expected.keys()
    for key in expected:
        assert np.array_equal(resumed[key], expected[key]), key


def test_a_non_blocking_copy_is_ordered_by_events(device, monkeypatch):
    """The copy runs on a side stream after the current stream's work, and the current stream waits for it."""
    if device != "cuda":
        pytest.skip("the stream choreography exists on CUDA only (the stand-in records it)")
    import cupy
    calls = []
    monkeypatch.setattr(cupy.cuda.Stream, "wait_event", lambda self, event: calls.append(("wait", self.ptr, event)))
    original_record = cupy.cuda.Stream.record

    def record(self, event=None):
        made = original_record(self, event)
        calls.append(("record", self.ptr, made))
        return made
    monkeypatch.setattr(cupy.cuda.Stream, "record", record)
    host = gg.from_numpy(gg.cuda.pin_array(np.arange(4.0)))
    copied = host.to(device, non_blocking=True)
    side = gg.cuda._side_streams[0].ptr
    current = cupy.cuda.get_current_stream().ptr
    assert side != current
    assert [(kind, ptr) for kind, ptr, _ in calls] == [("record", current), ("wait", side), ("record", side),
                                                       ("wait", current)]
    assert calls[0][2] is calls[1][2] and calls[2][2] is calls[3][2]        # each wait is on the event recorded
    assert copied.numpy().tolist() == [0.0, 1.0, 2.0, 3.0]
    plain = gg.ones(2).to(device, non_blocking=True)                         # not pinned: the ordinary copy
    assert plain.numpy().tolist() == [1.0, 1.0] and len(calls) == 4

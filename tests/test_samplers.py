"""gg.utils.data: samplers, Subset, ConcatDataset, random_split and DataLoader's PyTorch arguments,
against torch.utils.data wherever the semantics are deterministic (issue 16 point 1)."""

import os

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.utils import data as gdata

torch = pytest.importorskip("torch")
tdata = torch.utils.data


def _datasets(n=10):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n, dtype=np.int64) % 3
    return gdata.TensorDataset(gg.tensor(x), gg.tensor(y)), tdata.TensorDataset(torch.tensor(x), torch.tensor(y))


def _batches(loader):
    return [[part.numpy().tolist() for part in batch] for batch in loader]


def test_namespaces():
    import gpugrad.utils.data.dataloader as dataloader
    import gpugrad.utils.data.dataset as dataset
    import gpugrad.utils.data.sampler as sampler
    assert gg.utils.data.DataLoader is gg.data.DataLoader is dataloader.DataLoader
    assert dataset.Subset is gdata.Subset and sampler.BatchSampler is gdata.BatchSampler
    assert gdata.TensorDataset is gg.data.TensorDataset and gdata.Dataset is gg.data.Dataset


def test_sequential_and_batch_samplers_match_torch():
    source = list(range(7))
    assert list(gdata.SequentialSampler(source)) == list(tdata.SequentialSampler(source))
    assert len(gdata.SequentialSampler(source)) == 7
    for batch_size in (1, 2, 3, 7, 10):
        for drop_last in (False, True):
            ours = gdata.BatchSampler(gdata.SequentialSampler(source), batch_size, drop_last)
            theirs = tdata.BatchSampler(tdata.SequentialSampler(source), batch_size, drop_last)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
    assert list(gdata.BatchSampler([4, 1, 3], 2, False)) == list(tdata.BatchSampler([4, 1, 3], 2, False))
    with pytest.raises(ValueError, match="batch_size"):
        gdata.BatchSampler(source, 0, False)
    with pytest.raises(ValueError, match="drop_last"):
        gdata.BatchSampler(source, 2, "no")


@pytest.mark.parametrize("replacement, num_samples", [(False, None), (False, 25), (False, 4), (True, None),
                                                      (True, 13)])
def test_random_sampler_semantics(replacement, num_samples):
    source = list(range(10))
    ours = gdata.RandomSampler(source, replacement=replacement, num_samples=num_samples,
                               generator=gg.Generator().manual_seed(1))
    theirs = tdata.RandomSampler(source, replacement=replacement, num_samples=num_samples,
                                 generator=torch.Generator().manual_seed(1))
    drawn, reference = list(ours), list(theirs)
    assert len(ours) == len(theirs) == len(drawn) == len(reference)
    assert all(0 <= i < 10 for i in drawn)
    if not replacement:
        # Whole permutations first, then part of one: each index appears the
        # floor or the ceiling of num_samples / n times, in ours as in torch's.
        total = num_samples or 10
        for counts in (np.bincount(drawn, minlength=10), np.bincount(reference, minlength=10)):
            assert set(counts.tolist()) <= {total // 10, total // 10 + 1} and counts.sum() == total
    again = gdata.RandomSampler(source, replacement=replacement, num_samples=num_samples,
                                generator=gg.Generator().manual_seed(1))
    assert list(again) == drawn
    with pytest.raises(TypeError, match="replacement"):
        gdata.RandomSampler(source, replacement=1)
    with pytest.raises(ValueError, match="num_samples"):
        gdata.RandomSampler(source, num_samples=0)


def test_random_sampler_without_generator_follows_manual_seed():
    gg.manual_seed(4)
    first = list(gdata.RandomSampler(range(20)))
    second = list(gdata.RandomSampler(range(20)))
    gg.manual_seed(4)
    assert list(gdata.RandomSampler(range(20))) == first and first != second
    assert sorted(first) == list(range(20))


def test_subset_random_and_weighted_samplers():
    indices = [3, 9, 4, 7]
    drawn = list(gdata.SubsetRandomSampler(indices, generator=gg.Generator().manual_seed(0)))
    assert sorted(drawn) == sorted(indices) == sorted(tdata.SubsetRandomSampler(indices))
    assert len(gdata.SubsetRandomSampler(indices)) == len(tdata.SubsetRandomSampler(indices))
    weighted = list(gdata.WeightedRandomSampler([0.0, 2.0, 0.0, 1.0], 50, generator=gg.Generator().manual_seed(0)))
    assert len(weighted) == 50 and set(weighted) <= {1, 3}
    with pytest.raises(ValueError, match="weights"):
        gdata.WeightedRandomSampler([0.0, 0.0], 3)
    with pytest.raises(ValueError, match="without replacement"):
        gdata.WeightedRandomSampler([1.0, 0.0], 2, replacement=False)


def test_subset_and_concat_match_torch():
    ours, theirs = _datasets(6)
    indices = [5, 0, 3]
    s_ours, s_theirs = gdata.Subset(ours, indices), tdata.Subset(theirs, indices)
    assert len(s_ours) == len(s_theirs)
    for i in range(len(indices)):
        assert [t.tolist() for t in s_ours[i]] == [t.tolist() for t in s_theirs[i]]
    lists = [[1, 2, 3], [4], [5, 6]]
    c_ours, c_theirs = gdata.ConcatDataset(lists), tdata.ConcatDataset(lists)
    assert len(c_ours) == len(c_theirs) and c_ours.cumulative_sizes == c_theirs.cumulative_sizes
    assert [c_ours[i] for i in range(-6, 6)] == [c_theirs[i] for i in range(-6, 6)]
    with pytest.raises(IndexError):
        c_ours[6]
    with pytest.raises(IndexError):
        c_ours[-7]
    with pytest.raises(ValueError, match="empty"):
        gdata.ConcatDataset([])
    both = gdata.ConcatDataset([ours, gdata.Subset(ours, [1])])
    assert len(both) == 7 and both[6][1].item() == ours[1][1].item()


@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.5, 0.25, 0.25], [0.33, 0.33, 0.34], [1.0], [0.1] * 10,
                                     [0.6, 0.4]])
@pytest.mark.parametrize("n", [10, 11, 7])
def test_random_split_sizes_match_torch(lengths, n):
    if sum(lengths) > 1.5 and sum(lengths) != n:
        pytest.skip("integer lengths only for n=10")
    ours = gdata.random_split(range(n), lengths, generator=gg.Generator().manual_seed(0))
    theirs = tdata.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    flat = [i for s in ours for i in s]
    assert sorted(flat) == list(range(n))
    again = gdata.random_split(range(n), lengths, generator=gg.Generator().manual_seed(0))
    assert [list(s) for s in again] == [list(s) for s in ours]


def test_random_split_rejects_bad_lengths():
    with pytest.raises(ValueError, match="sum to"):
        gdata.random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="fraction"):
        gdata.random_split(range(10), [1.5, -0.5])


# --------------------------------------------------------------------------
# DataLoader arguments
# --------------------------------------------------------------------------
def test_dataloader_with_sampler_and_batch_sampler_matches_torch():
    ours, theirs = _datasets(10)
    order = [9, 2, 4, 4, 0, 7]
    assert _batches(gg.utils.data.DataLoader(ours, batch_size=4, sampler=order)) == \
        _batches(tdata.DataLoader(theirs, batch_size=4, sampler=order))
    batches = [[0, 1, 2], [9], [5, 5]]
    ours_loader = gdata.DataLoader(ours, batch_sampler=batches)
    theirs_loader = tdata.DataLoader(theirs, batch_sampler=batches)
    assert len(ours_loader) == len(theirs_loader) == 3
    assert _batches(ours_loader) == _batches(theirs_loader)
    sampler = gdata.BatchSampler(gdata.SequentialSampler(ours), 3, drop_last=True)
    assert _batches(gdata.DataLoader(ours, batch_sampler=sampler)) == _batches(
        tdata.DataLoader(theirs, batch_sampler=tdata.BatchSampler(tdata.SequentialSampler(theirs), 3, True)))
    subset_ours = gdata.Subset(ours, [8, 1, 6])
    subset_theirs = tdata.Subset(theirs, [8, 1, 6])
    assert _batches(gdata.DataLoader(subset_ours, batch_size=2)) == _batches(tdata.DataLoader(subset_theirs,
                                                                                             batch_size=2))


@pytest.mark.parametrize("options", [dict(batch_sampler=[[0]], batch_size=2), dict(batch_sampler=[[0]], shuffle=True),
                                     dict(batch_sampler=[[0]], drop_last=True),
                                     dict(batch_sampler=[[0]], sampler=[0]),
                                     dict(persistent_workers=True), dict(prefetch_factor=2),
                                     dict(num_workers=-1), dict(timeout=-1), dict(shuffle=True, sampler=[0, 1])])
def test_dataloader_rejects_what_torch_rejects(options):
    ours, theirs = _datasets(4)
    with pytest.raises(ValueError):
        tdata.DataLoader(theirs, **options)
    with pytest.raises(ValueError):
        gdata.DataLoader(ours, **options)


def test_workers_keep_their_meaning_and_results(tmp_path):
    # Workers are processes now: worker_init_fn reports through files, not a list.  It is a
    # closure, so fork (spawn, the default once CUDA is initialised, pickles it and cannot).
    if "fork" not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip("a closure as worker_init_fn needs the fork start method")
    fork = {"multiprocessing_context": "fork"}
    ours, _ = _datasets(10)

    def init(worker_id):
        info = gdata.get_worker_info()
        record = f"{worker_id} {info.id} {info.num_workers} {info.dataset.tensors[0].shape[0]} {os.getpid()}"
        (tmp_path / f"{os.getpid()}-{worker_id}").write_text(record)

    def calls():
        found = sorted(tuple(int(v) for v in f.read_text().split()) for f in tmp_path.iterdir())
        for f in tmp_path.iterdir():
            f.unlink()
        return found
    plain = _batches(gdata.DataLoader(ours, batch_size=3))
    loader = gdata.DataLoader(ours, batch_size=3, num_workers=2, worker_init_fn=init, pin_memory=True,
                              prefetch_factor=2, timeout=5, **fork)
    assert _batches(loader) == plain
    first = calls()
    assert [c[:4] for c in first] == [(0, 0, 2, 10), (1, 1, 2, 10)] and os.getpid() not in {c[4] for c in first}
    assert _batches(loader) == plain and len(calls()) == 2          # workers restart every epoch
    assert gdata.get_worker_info() is None
    persistent = gdata.DataLoader(ours, batch_size=3, num_workers=3, worker_init_fn=init, persistent_workers=True,
                                  **fork)
    for _ in range(3):
        assert _batches(persistent) == plain
    assert [c[0] for c in calls()] == [0, 1, 2]                     # started once
    persistent.shutdown_workers()
    _batches(gdata.DataLoader(ours, batch_size=3, worker_init_fn=init))
    assert calls() == []                # no workers, no worker_init_fn: as in PyTorch


def test_generator_drives_the_shuffle():
    ours, _ = _datasets(12)
    first = _batches(gdata.DataLoader(ours, batch_size=5, shuffle=True, generator=gg.Generator().manual_seed(7)))
    again = _batches(gdata.DataLoader(ours, batch_size=5, shuffle=True, generator=gg.Generator().manual_seed(7)))
    other = _batches(gdata.DataLoader(ours, batch_size=5, shuffle=True, generator=gg.Generator().manual_seed(8)))
    assert first == again and first != other
    labels = sorted(v for batch in first for v in batch[1])
    assert labels == sorted(ours.tensors[1].tolist())
    loader = gdata.DataLoader(ours, batch_size=12, shuffle=True, generator=gg.Generator().manual_seed(7))
    assert _batches(loader) != _batches(loader)                   # a new order every epoch
    with pytest.raises(ValueError, match="seed"):
        gdata.DataLoader(ours, shuffle=True, seed=1, generator=gg.Generator())
    with pytest.raises(TypeError, match="Generator"):
        gdata.DataLoader(ours, shuffle=True, generator=torch.Generator())


def test_torch_positional_order():
    ours, theirs = _datasets(5)
    order = [4, 3, 2, 1, 0]
    assert _batches(gdata.DataLoader(ours, 2, False, order)) == _batches(tdata.DataLoader(theirs, 2, False, order))


def test_generator_loader_resumes_from_state_dict():
    ours, _ = _datasets(9)
    loader = gdata.DataLoader(ours, batch_size=4, shuffle=True, generator=gg.Generator().manual_seed(3))
    _batches(loader)
    state = loader.state_dict()
    expected = [_batches(loader) for _ in range(2)]
    resumed = gdata.DataLoader(ours, batch_size=4, shuffle=True, generator=gg.Generator())
    resumed.load_state_dict(state)
    assert [_batches(resumed) for _ in range(2)] == expected
    with pytest.raises(ValueError, match="generator"):
        gdata.DataLoader(ours, batch_size=4).load_state_dict(state)


def test_dataset_without_len_and_concatenation_by_plus():
    class Items(gdata.Dataset):
        def __getitem__(self, index):
            return index * 2
    items = Items()                    # PyTorch allows a dataset without __len__
    assert items[3] == 6
    with pytest.raises(TypeError, match="__len__"):
        gdata.DataLoader(items)

    class Sized(gdata.Dataset):
        def __init__(self, n):
            self.n = n

        def __getitem__(self, index):
            if index >= self.n:
                raise IndexError(index)
            return index

        def __len__(self):
            return self.n
    both = Sized(2) + Sized(3)
    assert isinstance(both, gdata.ConcatDataset) and [both[i] for i in range(5)] == [0, 1, 0, 1, 2]

"""gg.data: datasets, batching, reproducible shuffling, resume, devices."""
import numpy as np
import pytest

import gpugrad as gg
from gpugrad import backend
from gpugrad.data import DataLoader, Dataset, TensorDataset, default_collate
from gpugrad.errors import ShapeError


def _dataset(size=10, device="cpu"):
    features = gg.tensor(np.arange(size * 2, dtype=np.float32).reshape(size, 2), device=device)
    labels = gg.tensor(np.arange(size, dtype=np.int64), device=device)
    return TensorDataset(features, labels)


def _labels(loader):
    return [labels.numpy().tolist() for _, labels in loader]


def test_tensor_dataset_items_and_length():
    dataset = _dataset(4)
    assert len(dataset) == 4
    features, label = dataset[2]
    assert features.numpy().tolist() == [4.0, 5.0] and label.item() == 2


def test_tensor_dataset_rejects_mismatched_first_dimensions():
    with pytest.raises(ShapeError, match=r"\(3, 2\), \(4,\)"):
        TensorDataset(gg.zeros(3, 2), gg.zeros(4))
    with pytest.raises(ValueError):
        TensorDataset()
    with pytest.raises(ShapeError, match="0-d"):
        TensorDataset(gg.tensor(1.0))
    with pytest.raises(TypeError, match="gg.tensor"):
        TensorDataset(np.zeros(3))


def test_dataset_is_abstract():
    with pytest.raises(TypeError):
        Dataset()

    class OnlyLength(Dataset):
        def __len__(self):
            return 1

    with pytest.raises(TypeError):
        OnlyLength()


def test_batches_in_order_with_last_partial_batch(device):
    loader = DataLoader(_dataset(10, device), batch_size=4)
    assert len(loader) == 3
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    features, labels = next(iter(loader))
    assert features.shape == (4, 2) and features.dtype == np.float32 and labels.dtype == np.int64
    assert features.device == backend.as_device(device)


def test_drop_last(device):
    loader = DataLoader(_dataset(10, device), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(_dataset(3), batch_size=4, drop_last=True)) == 0
    assert list(DataLoader(_dataset(3), batch_size=4, drop_last=True)) == []


def test_shuffle_covers_every_sample_once_and_changes_each_epoch(device):
    loader = DataLoader(_dataset(50, device), batch_size=8, shuffle=True, seed=3)
    epochs = [sum(_labels(loader), []) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(50))
    assert epochs[0] != epochs[1] != epochs[2]
    assert epochs[0] != list(range(50))


def test_shuffled_batches_keep_features_and_labels_paired(device):
    loader = DataLoader(_dataset(20, device), batch_size=6, shuffle=True, seed=1)
    for features, labels in loader:
        np.testing.assert_array_equal(features.numpy()[:, 0], 2 * labels.numpy())


def test_same_seed_same_orders_and_set_epoch_replays():
    first = DataLoader(_dataset(30), batch_size=7, shuffle=True, seed=11)
    second = DataLoader(_dataset(30), batch_size=7, shuffle=True, seed=11)
    other = DataLoader(_dataset(30), batch_size=7, shuffle=True, seed=12)
    runs = [[_labels(first) for _ in range(3)], [_labels(second) for _ in range(3)]]
    assert runs[0] == runs[1]
    assert _labels(other) != runs[0][0]
    first.set_epoch(1)
    assert _labels(first) == runs[0][1]
    assert first.epoch == 2


def test_seed_none_follows_manual_seed():
    def two_epochs():
        loader = DataLoader(_dataset(30), batch_size=5, shuffle=True)
        return [_labels(loader), _labels(loader)]

    gg.manual_seed(123)
    first = two_epochs()
    gg.manual_seed(123)
    again = two_epochs()
    gg.manual_seed(124)
    different = two_epochs()
    assert first == again
    assert first[0] != first[1]
    assert first != different


def test_state_dict_resumes_the_exact_order():
    straight = DataLoader(_dataset(25), batch_size=4, shuffle=True)
    expected = [_labels(straight) for _ in range(4)]
    interrupted = DataLoader(_dataset(25), batch_size=4, shuffle=True,
                             seed=straight.state_dict()["seed"])
    for _ in range(2):
        _labels(interrupted)
    state = interrupted.state_dict()
    assert state["epoch"] == 2
    resumed = DataLoader(_dataset(25), batch_size=4, shuffle=True)
    resumed.load_state_dict(state)
    assert [_labels(resumed) for _ in range(2)] == expected[2:]


def test_state_dict_survives_save_and_load(tmp_path):
    loader = DataLoader(_dataset(12), batch_size=5, shuffle=True, seed=2**62 + 5)
    _labels(loader)
    gg.save({"loader": loader.state_dict()}, tmp_path / "loader.safetensors")
    resumed = DataLoader(_dataset(12), batch_size=5, shuffle=True)
    resumed.load_state_dict(gg.load(tmp_path / "loader.safetensors")["loader"])
    assert _labels(resumed) == _labels(loader)


def test_empty_dataset_is_rejected_with_its_length():
    class Empty(Dataset):
        def __len__(self):
            return 0

        def __getitem__(self, index):
            raise IndexError(index)

    with pytest.raises(ValueError, match="length 0"):
        DataLoader(Empty())


@pytest.mark.parametrize("options, pattern", [
    (dict(batch_size=0), "batch_size"), (dict(batch_size=2.5), "batch_size"),
    (dict(batch_size=True), "batch_size"), (dict(seed=-1), "seed"),
])
def test_invalid_options(options, pattern):
    with pytest.raises(ValueError, match=pattern):
        DataLoader(_dataset(3), **options)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(object())
    with pytest.raises(ValueError, match="epoch"):
        DataLoader(_dataset(3)).set_epoch(-1)


def test_tensor_dataset_batches_without_per_item_calls(monkeypatch):
    def refuse(self, index):
        raise AssertionError("TensorDataset batches must index the arrays, not loop over items")

    monkeypatch.setattr(TensorDataset, "__getitem__", refuse)
    assert _labels(DataLoader(_dataset(9), batch_size=4, shuffle=True, seed=0))[0] != []


def test_tensor_dataset_subclass_with_its_own_getitem_is_honoured():
    class Doubled(TensorDataset):
        def __getitem__(self, index):
            features, labels = super().__getitem__(index)
            return features, labels * 2

    assert _labels(DataLoader(Doubled(*_dataset(4).tensors), batch_size=4)) == [[0, 2, 4, 6]]


def test_custom_dataset_is_collated(device):
    class Samples(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, index):
            return {"x": np.full(3, index, dtype=np.float32), "y": index, "w": 0.5 * index,
                    "flag": index % 2 == 0, "name": f"s{index}"}

    batches = list(DataLoader(Samples(), batch_size=2, device=device))
    assert len(batches) == 3
    first = batches[0]
    assert first["x"].shape == (2, 3) and first["x"].device == backend.as_device(device)
    assert first["y"].numpy().tolist() == [0, 1] and first["y"].dtype == np.int64
    assert first["w"].dtype == backend.get_default_dtype()
    assert first["flag"].numpy().tolist() == [True, False]
    assert first["name"] == ["s0", "s1"]
    assert batches[2]["y"].numpy().tolist() == [4]


def test_collate_fn_is_used():
    loader = DataLoader(_dataset(6), batch_size=3, collate_fn=lambda samples: len(samples))
    assert list(loader) == [3, 3]


def test_default_collate_errors():
    with pytest.raises(ShapeError, match="different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="collate_fn"):
        default_collate([object(), object()])
    nested = default_collate([(np.zeros(2), [1, 2.0]), (np.ones(2), [3, 4.0])])
    assert isinstance(nested, tuple) and isinstance(nested[1], list)
    assert nested[1][0].numpy().tolist() == [1, 3]


def test_batches_move_to_the_requested_device(device):
    loader = DataLoader(_dataset(6, "cpu"), batch_size=4, shuffle=True, seed=0, device=device)
    for features, labels in loader:
        assert features.device == backend.as_device(device) and labels.device == backend.as_device(device)


def test_in_order_batches_are_copies_not_views_of_the_dataset():
    dataset = _dataset(4)
    features, _ = next(iter(DataLoader(dataset, batch_size=2)))
    features.array[...] = -1
    assert dataset.tensors[0].numpy()[0].tolist() == [0.0, 1.0]

"""gg.save / gg.load: round trips, safetensors compatibility, crash safety, hostile files."""
import json
import math
import os
import pickle
import random
import signal
import struct
import time
import tracemalloc

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import backend
from gpugrad.errors import CheckpointError, DTypeError

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]


def _values(dtype, shape, rng):
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape).astype(dtype)


# ---------------------------------------------------------------------------
# Round trips.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_exactly(dtype, device, tmp_path, rng):
    values = _values(dtype, (3, 5), rng)
    gg.save({"t": gg.tensor(values, dtype=dtype, device=device)}, tmp_path / "x.safetensors")
    loaded = gg.load(tmp_path / "x.safetensors")["t"]
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.device == backend.as_device("cpu")         # default: cpu, wherever it was saved from
    np.testing.assert_array_equal(loaded.numpy(), values)


def test_nested_structure_round_trips(device, tmp_path, rng):
    shared = gg.tensor(rng.standard_normal(4).astype(np.float32), device=device)
    obj = {
        "model": {"layer.weight": gg.tensor(rng.standard_normal((2, 3)), dtype="float32", device=device),
                  "layer.bias": shared},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": shared}, 1: {}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "nesterov": False}]},
        "scalars": [0, -1, 2**70, 1.5, -0.0, math.inf, -math.inf, None, True, "text ✓", ""],
        "nan": math.nan,
        "empty": {"list": [], "dict": {}, "tuple": ()},
        "zero_d": gg.tensor(3.5, device=device),
        "no_rows": gg.zeros(0, 3, device=device),
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "looks_like_marker": {"__tensor__": "model.layer.weight"},
        "marker_pair": {"__tensor__": "x", "requires_grad": True},
        "odd_keys": {None: 1, 2.5: "f", True: "b", (1, "a"): "t"},
        "numpy_scalars": [np.float32(0.25), np.int64(7), np.bool_(True)],
    }
    path = tmp_path / "nested.safetensors"
    gg.save(obj, path)
    loaded = gg.load(path, device=device)
    assert loaded["optimizer"]["state"][0]["step"] == 3
    assert loaded["optimizer"]["state"][1] == {}
    assert loaded["optimizer"]["param_groups"] == obj["optimizer"]["param_groups"]
    assert isinstance(loaded["optimizer"]["param_groups"][0]["betas"], tuple)
    assert loaded["scalars"][:5] == [0, -1, 2**70, 1.5, -0.0] and math.copysign(1, loaded["scalars"][4]) == -1
    assert loaded["scalars"][5:] == [math.inf, -math.inf, None, True, "text ✓", ""]
    assert math.isnan(loaded["nan"])
    assert loaded["empty"] == {"list": [], "dict": {}, "tuple": ()}
    assert loaded["looks_like_marker"] == {"__tensor__": "model.layer.weight"}
    assert loaded["marker_pair"] == {"__tensor__": "x", "requires_grad": True}
    assert loaded["odd_keys"] == {None: 1, 2.5: "f", True: "b", (1, "a"): "t"}
    assert loaded["numpy_scalars"] == [0.25, 7, True]
    assert loaded["zero_d"].shape == () and loaded["zero_d"].item() == 3.5
    assert loaded["no_rows"].shape == (0, 3)
    assert isinstance(loaded["array"], np.ndarray) and loaded["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    np.testing.assert_array_equal(loaded["model"]["layer.weight"].numpy(), obj["model"]["layer.weight"].numpy())
    # a tensor saved twice is stored once and comes back as one shared tensor
    assert loaded["model"]["layer.bias"] is loaded["optimizer"]["state"][0]["exp_avg"]
    for tensor in (loaded["model"]["layer.weight"], loaded["zero_d"]):
        assert tensor.device == backend.as_device(device)


def test_requires_grad_is_kept(tmp_path):
    gg.save({"w": gg.tensor([1.0], requires_grad=True), "b": gg.tensor([1.0])}, tmp_path / "g.safetensors")
    loaded = gg.load(tmp_path / "g.safetensors")
    assert loaded["w"].requires_grad and not loaded["b"].requires_grad


def test_top_level_tensor_and_list(tmp_path):
    gg.save(gg.tensor([1, 2, 3]), tmp_path / "t.safetensors")
    assert gg.load(tmp_path / "t.safetensors").numpy().tolist() == [1, 2, 3]
    gg.save([gg.tensor([1.0]), 2], str(tmp_path / "l.safetensors"))
    loaded = gg.load(str(tmp_path / "l.safetensors"))
    assert loaded[0].numpy().tolist() == [1.0] and loaded[1] == 2


def test_file_is_readable_by_the_safetensors_library(tmp_path, rng):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    weight = rng.standard_normal((3, 4)).astype(np.float32)
    flags = np.array([True, False])
    gg.save({"encoder": {"weight": gg.tensor(weight), "flags": gg.tensor(flags)}, "step": 7},
            tmp_path / "m.safetensors")
    tensors = safetensors_numpy.load_file(str(tmp_path / "m.safetensors"))
    assert set(tensors) == {"encoder.weight", "encoder.flags"}
    np.testing.assert_array_equal(tensors["encoder.weight"], weight)
    np.testing.assert_array_equal(tensors["encoder.flags"], flags)


def test_files_written_by_the_safetensors_library_load_as_a_flat_dict(tmp_path, rng):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {"a.weight": rng.standard_normal((2, 2)).astype(np.float64),
               "a.index": np.arange(5, dtype=np.int32), "mask": np.zeros((0,), dtype=np.uint8)}
    safetensors_numpy.save_file(tensors, str(tmp_path / "foreign.safetensors"), metadata={"format": "np"})
    loaded = gg.load(tmp_path / "foreign.safetensors")
    assert set(loaded) == set(tensors)
    for name, value in tensors.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name].numpy(), value)


def test_header_is_padded_and_data_aligned(tmp_path):
    gg.save({"x": gg.tensor([1.0, 2.0], dtype="float64")}, tmp_path / "a.safetensors")
    raw = (tmp_path / "a.safetensors").read_bytes()
    (header_length,) = struct.unpack("<Q", raw[:8])
    assert header_length % 8 == 0
    header = json.loads(raw[8:8 + header_length])
    assert header["x"] == {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}
    assert all(isinstance(value, str) for value in header["__metadata__"].values())
    assert np.frombuffer(raw[8 + header_length:], dtype="<f8").tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------
# Saving never damages the previous file.
# ---------------------------------------------------------------------------
def _no_temporaries(directory):
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_unsupported_objects_are_refused_before_touching_the_file(tmp_path):
    path = tmp_path / "keep.safetensors"
    gg.save({"v": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"cannot store a function at \['fn'\]"):
        gg.save({"ok": gg.tensor([1.0]), "fn": lambda: None}, path)
    with pytest.raises(TypeError, match="set"):
        gg.save({"s": {1, 2}}, path)
    with pytest.raises(DTypeError, match="complex128"):
        gg.save({"z": np.zeros(2, dtype=np.complex128)}, path)
    cyclic = {"a": []}
    cyclic["a"].append(cyclic)
    with pytest.raises(ValueError, match="contains itself"):
        gg.save(cyclic, path)
    assert path.read_bytes() == before
    assert _no_temporaries(tmp_path) == []


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "keep.safetensors"
    gg.save({"version": 1, "w": gg.tensor([1.0])}, path)
    before = path.read_bytes()

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        gg.save({"version": 2, "w": gg.tensor([2.0])}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert gg.load(path)["version"] == 1
    assert _no_temporaries(tmp_path) == []


def test_new_file_gets_ordinary_permissions(tmp_path):
    gg.save({"v": 1}, tmp_path / "p.safetensors")
    assert os.stat(tmp_path / "p.safetensors").st_mode & 0o777 == 0o644


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_at_random_points_leaves_the_old_or_the_new_file(tmp_path):
    """Kill a process that saves in a loop, 36 times at random moments (issue 7)."""
    path = tmp_path / "ckpt.safetensors"
    # ~2 MB per save, so most kills land inside a write.
    versions = {tag: {"tag": tag, "weights": gg.tensor(np.full((512, 1024), fill, dtype=np.float32)),
                      "extra": [gg.tensor(np.full(1000, fill, dtype=np.float64)), {"fill": fill}]}
                for tag, fill in (("old", 1.0), ("new", 2.0))}
    gg.save(versions["old"], path)
    chooser = random.Random(7)
    interrupted_writes = 0
    started = time.monotonic()
    for _ in range(36):
        child = os.fork()
        if child == 0:      # the child saves forever, alternating versions, until killed
            code = 0
            try:
                for i in range(10**9):
                    gg.save(versions["new" if i % 2 == 0 else "old"], path)
            except BaseException:   # noqa: BLE001 - report through the exit code, never return to pytest
                code = 3
            finally:
                os._exit(code)
        time.sleep(chooser.uniform(0.0, 0.03))
        os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
        assert os.WIFSIGNALED(status), f"the saving child died on its own (status {status})"
        loaded = gg.load(path)
        fill = loaded["extra"][1]["fill"]
        assert (loaded["tag"], fill) in (("old", 1.0), ("new", 2.0))
        assert np.all(loaded["weights"].numpy() == fill) and np.all(loaded["extra"][0].numpy() == fill)
        leftovers = _no_temporaries(tmp_path)
        interrupted_writes += bool(leftovers)
        for name in leftovers:      # a killed save leaves its temporary; that is all it leaves
            os.unlink(tmp_path / name)
    assert interrupted_writes >= 1, "no kill landed inside a write; the test exercised nothing"
    assert time.monotonic() - started < 30


# ---------------------------------------------------------------------------
# Damaged, foreign and malicious files.
# ---------------------------------------------------------------------------
def _craft(path, header=None, data=b"", raw_header=None, claimed_length=None):
    raw = raw_header if raw_header is not None else json.dumps(header).encode()
    length = len(raw) if claimed_length is None else claimed_length
    path.write_bytes(struct.pack("<Q", length) + raw + data)
    return path


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


CRAFTED = {
    "header longer than file": dict(header={"a": _entry()}, data=bytes(8), claimed_length=10**6),
    "header length 2**63": dict(header={}, claimed_length=2**63),
    "offsets past end": dict(header={"a": _entry(shape=(4,), offsets=(0, 16))}, data=bytes(8)),
    "offsets reversed": dict(header={"a": _entry(offsets=(8, 0))}, data=bytes(8)),
    "negative offset": dict(header={"a": _entry(offsets=(-8, 0))}, data=bytes(8)),
    "overlapping tensors": dict(header={"a": _entry(offsets=(0, 8)), "b": _entry(offsets=(4, 12))}, data=bytes(12)),
    "aliased tensors": dict(header={"a": _entry(offsets=(0, 8)), "b": _entry(offsets=(0, 8))}, data=bytes(8)),
    "gap between tensors": dict(header={"a": _entry(offsets=(0, 8)), "b": _entry(offsets=(12, 20))},
                                data=bytes(20)),
    "trailing bytes": dict(header={"a": _entry()}, data=bytes(9)),
    "unknown dtype": dict(header={"a": _entry(dtype="F8_E4M3", offsets=(0, 2))}, data=bytes(2)),
    "dtype not a string": dict(header={"a": _entry(dtype=["F32"])}, data=bytes(8)),
    "shape does not match bytes": dict(header={"a": _entry(shape=(3,))}, data=bytes(8)),
    "huge shape small offsets": dict(header={"a": _entry(shape=(2**62, 2**62), offsets=(0, 8))}, data=bytes(8)),
    "huge shape huge offsets": dict(header={"a": _entry(dtype="U8", shape=(2**40,), offsets=(0, 2**40))},
                                    data=bytes(8)),
    "negative dimension": dict(header={"a": _entry(shape=(-2, -1))}, data=bytes(8)),
    "boolean dimension": dict(header={"a": _entry(shape=(True, 2))}, data=bytes(8)),
    "float dimension": dict(header={"a": _entry(shape=(2.0,))}, data=bytes(8)),
    "too many dimensions": dict(header={"a": _entry(shape=(1,) * 65 + (2,))}, data=bytes(8)),
    "missing field": dict(header={"a": {"dtype": "F32", "shape": [2]}}, data=bytes(8)),
    "entry not an object": dict(header={"a": [1, 2]}, data=bytes(8)),
    "header is a list": dict(raw_header=b"[1, 2, 3]"),
    "not json": dict(raw_header=b"{this is not json}"),
    "not utf-8": dict(raw_header=b'{"\xff\xfe": 1}'),
    "NaN constant": dict(raw_header=b'{"__metadata__": {"a": NaN}}'),
    "deeply nested header": dict(raw_header=b"{" + b'"a":[' * 1 + b"[" * 100000 + b"]" * 100000 + b"]}"),
    "duplicate names": dict(raw_header=f'{{"a": {json.dumps(_entry())}, "a": {json.dumps(_entry())}}}'.encode(),
                            data=bytes(8)),
    "metadata not strings": dict(header={"__metadata__": {"gpugrad.structure": {"__tensor__": "a"}}}),
    "structure not json": dict(header={"__metadata__": {"gpugrad.structure": "{oops"}}),
    "structure names a missing tensor": dict(header={"__metadata__": {"gpugrad.structure": '{"__tensor__": "ghost"}'}}),
    "structure deeply nested": dict(header={"__metadata__": {"gpugrad.structure": "[" * 100000 + "]" * 100000}}),
    "malformed escaped dict": dict(header={"__metadata__": {"gpugrad.structure": '{"__dict__": [[1]]}'}}),
    "unhashable escaped key": dict(header={"__metadata__": {"gpugrad.structure": '{"__dict__": [[[1], 2]]}'}}),
    "bad float escape": dict(header={"__metadata__": {"gpugrad.structure": '{"__float__": "1e999999"}'}}),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_files_are_rejected_cleanly(case, tmp_path):
    path = _craft(tmp_path / "bad.safetensors", **CRAFTED[case])
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as caught:
            gg.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(path) in str(caught.value) or "gg.load" in str(caught.value)
    # Never allocate on the file's word: a few MB at most for a header parse.
    assert peak < max(8 * os.path.getsize(path), 1) + 4_000_000, f"{case}: peak {peak} bytes"


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_is_rejected_without_running(tmp_path):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = marker
    payload = pickle.dumps({"weights": exploit})
    (tmp_path / "evil.safetensors").write_bytes(payload)
    with pytest.raises(CheckpointError):
        gg.load(tmp_path / "evil.safetensors")
    # The same bytes behind a plausible 8-byte length still fail, as a header.
    _craft(tmp_path / "evil2.safetensors", raw_header=payload)
    with pytest.raises(CheckpointError, match="pickle"):
        gg.load(tmp_path / "evil2.safetensors")
    assert not marker.exists()


def test_torch_checkpoint_is_rejected(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(3)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError):
        gg.load(tmp_path / "model.pt")


def test_every_truncation_of_a_valid_file_is_rejected(tmp_path):
    gg.save({"a": gg.tensor([1.0, 2.0]), "b": [gg.tensor([3], dtype="int64"), "x"]}, tmp_path / "ok.safetensors")
    raw = (tmp_path / "ok.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    for length in range(len(raw)):
        cut.write_bytes(raw[:length])
        with pytest.raises(CheckpointError):
            gg.load(cut)


def test_random_byte_flips_never_escape_as_other_errors(tmp_path):
    gg.save({"a": gg.tensor([1.0, 2.0]), "meta": {"k": [1, None, "s"]}}, tmp_path / "ok.safetensors")
    raw = bytearray((tmp_path / "ok.safetensors").read_bytes())
    chooser = random.Random(1)
    damaged = tmp_path / "flip.safetensors"
    for _ in range(300):
        copy = bytearray(raw)
        for _ in range(chooser.randint(1, 3)):
            copy[chooser.randrange(len(copy))] = chooser.randrange(256)
        damaged.write_bytes(bytes(copy))
        try:
            gg.load(damaged)        # a flip inside tensor data is legitimately undetectable
        except CheckpointError:
            pass


def test_boolean_bytes_other_than_0_and_1_load_as_true(tmp_path):
    path = _craft(tmp_path / "b.safetensors", {"m": _entry(dtype="BOOL", shape=(3,), offsets=(0, 3))},
                  data=bytes([0, 1, 7]))
    loaded = gg.load(path)["m"]
    assert loaded.dtype == np.bool_ and loaded.numpy().tolist() == [False, True, True]
    assert loaded.numpy().view(np.uint8).tolist() == [0, 1, 1]


def test_loaded_tensors_do_not_share_memory(tmp_path):
    gg.save({"a": gg.tensor([1.0, 2.0]), "b": gg.tensor([3.0, 4.0])}, tmp_path / "s.safetensors")
    loaded = gg.load(tmp_path / "s.safetensors")
    loaded["a"].array[...] = 0
    assert loaded["b"].numpy().tolist() == [3.0, 4.0]
    assert not np.shares_memory(loaded["a"].numpy(), loaded["b"].numpy())


def test_empty_and_tiny_files(tmp_path):
    for content in (b"", b"\x00" * 7, struct.pack("<Q", 0), struct.pack("<Q", 1) + b"{"):
        (tmp_path / "tiny").write_bytes(content)
        with pytest.raises(CheckpointError):
            gg.load(tmp_path / "tiny")
    with pytest.raises(FileNotFoundError):
        gg.load(tmp_path / "does-not-exist.safetensors")

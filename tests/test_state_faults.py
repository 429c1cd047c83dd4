"""Training state that survives faults (issue 13): safe checkpoint files, validated
state loading, exact mid-epoch resume.  The table-driven rows of the same promises
are in tests/test_bad_input.py (STATE_CASES); these are the tests that need loops,
signals or whole training runs."""

import json
import os
import random
import signal
import struct
import sys

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn
from gpugrad.train import Callback, EarlyStopping, fit


# ---------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------
def test_a_new_checkpoint_gets_the_umask_permissions_and_a_replaced_one_keeps_its_own(tmp_path):
    previous = os.umask(0o077)
    try:
        gg.save({"w": gg.ones(2)}, tmp_path / "private.safetensors")
        assert os.stat(tmp_path / "private.safetensors").st_mode & 0o777 == 0o600
        os.umask(0o002)
        gg.save({"w": gg.ones(2)}, tmp_path / "group.safetensors")
        assert os.stat(tmp_path / "group.safetensors").st_mode & 0o777 == 0o664
        # As open() would: the reference is a file created by open() under the same umask.
        with open(tmp_path / "reference", "wb"):
            pass
        assert os.stat(tmp_path / "reference").st_mode & 0o777 == 0o664
        os.chmod(tmp_path / "group.safetensors", 0o640)
        gg.save({"w": gg.zeros(2)}, tmp_path / "group.safetensors")
        assert os.stat(tmp_path / "group.safetensors").st_mode & 0o777 == 0o640
    finally:
        os.umask(previous)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_saving_to_a_symbolic_link_writes_through_to_its_target(tmp_path):
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "epoch-3.safetensors"
    gg.save({"w": gg.ones(2)}, target)
    link = tmp_path / "latest.safetensors"
    link.symlink_to(os.path.join("runs", "epoch-3.safetensors"))
    gg.save({"w": gg.full((2,), 7.0)}, link)
    assert link.is_symlink(), "the link was replaced by a plain file"
    assert gg.load(target)["w"].numpy().tolist() == [7.0, 7.0]
    dangling = tmp_path / "dangling.safetensors"
    dangling.symlink_to("runs/new.safetensors")
    gg.save({"w": gg.ones(1)}, dangling)
    assert dangling.is_symlink() and gg.load(tmp_path / "runs" / "new.safetensors")["w"].numpy().tolist() == [1.0]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["epoch-3.safetensors", "new.safetensors"]


def _open_descriptors():
    return sorted(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(signal, "setitimer")),
                    reason="needs /proc/self/fd and interval timers")
@pytest.mark.parametrize("how", ["keyboard_interrupt", "sigterm_handler", "sigint_via_kill"])
def test_an_interrupt_at_any_point_of_save_leaves_no_temporary_file_and_no_descriptor(tmp_path, how):
    """Hundreds of small saves, each hit by a signal after a random tiny delay."""
    generator = random.Random(0)
    path = tmp_path / "ckpt.safetensors"
    state = {"w": gg.arange(64, dtype=gg.float32), "step": 1, "nested": [gg.ones(3, 3), (1.5, "x")]}
    gg.save(state, path)
    descriptors = _open_descriptors()
    interrupted = completed = 0

    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    def send_sigint(signum, frame):
        os.kill(os.getpid(), signal.SIGINT)         # a real Ctrl-C, at a random point

    def exit_on_term(signum, frame):
        raise SystemExit(143)

    previous_alarm = signal.getsignal(signal.SIGALRM)
    previous_term = signal.getsignal(signal.SIGTERM)
    try:
        if how == "keyboard_interrupt":
            signal.signal(signal.SIGALRM, raise_interrupt)
        elif how == "sigint_via_kill":
            signal.signal(signal.SIGALRM, send_sigint)
        else:
            signal.signal(signal.SIGTERM, exit_on_term)
            signal.signal(signal.SIGALRM, lambda s, f: os.kill(os.getpid(), signal.SIGTERM))
        for attempt in range(200):
            state["step"] = attempt
            try:
                signal.setitimer(signal.ITIMER_REAL, generator.uniform(1e-6, 4e-4))
                gg.save(state, path)
                completed += 1
                # Let a timer that has not fired yet fire here, outside the save.
                while signal.getitimer(signal.ITIMER_REAL)[0] > 0:
                    pass
            except (KeyboardInterrupt, SystemExit):
                interrupted += 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"], attempt
            assert _open_descriptors() == descriptors, attempt
            loaded = gg.load(path)      # always a whole checkpoint, the old one or the new one
            assert loaded["w"].numpy().tolist() == list(range(64))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGTERM, previous_term)
    assert interrupted > 20, (interrupted, completed)       # the signals did land inside saves
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    assert signal.SIGINT not in blocked and signal.SIGTERM not in blocked, "save left signals blocked"


# ---------------------------------------------------------------------------
# Crafted structures: always gg.CheckpointError.
# ---------------------------------------------------------------------------
def _craft(path, structure, tensors=(("t", b"\0" * 8, "I64", [1]), ("f", b"\0" * 4, "F32", [1]))):
    header = {"__metadata__": {"format": "gpugrad", "gpugrad.format_version": "1",
                               "gpugrad.structure": json.dumps(structure)}}
    offset, data = 0, b""
    for name, raw, dtype, shape in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path


@pytest.mark.parametrize("structure, fact", [
    ({"__tensor__": ["t"]}, "tensor reference of type list"),
    ({"__tensor__": {"a": 1}}, "tensor reference of type dict"),
    ({"__tensor__": 3}, "tensor reference of type int"),
    ({"__ndarray__": None}, "tensor reference of type NoneType"),
    ({"__tensor__": "t", "requires_grad": True}, "requires_grad=True on tensor 't' of dtype int64"),
    ({"__tensor__": "f", "requires_grad": "yes"}, "not a boolean"),
    ({"__tensor__": "f", "extra": 1}, "extra keys"),
    ({"__tuple__": [1], "__float__": "nan"}, "extra keys"),
    ({"__ndarray__": "t", "requires_grad": True}, "extra keys"),
    ({"__tuple__": {"a": 1}}, "tuple node holding a dict"),
    ({"__float__": ["nan"]}, "float node"),
    ({"__float__": "1e999"}, "float node"),
    ({"__dict__": {"a": 1}}, "malformed dict"),
    ({"__dict__": [[1, 2, 3]]}, "malformed dict"),
    ({"__dict__": [[[1], 2]]}, "unusable dict key"),
    ({"__dict__": [[{"__tensor__": "t"}, 2]]}, "unusable dict key"),
    ({"__dict__": [[{"__tuple__": [[1]]}, 2]]}, "unusable dict key"),
    ([{"__tensor__": "missing"}], "does not contain"),
])
def test_crafted_structures_are_refused_with_checkpoint_error(tmp_path, structure, fact):
    path = _craft(tmp_path / "crafted.safetensors", structure)
    with pytest.raises(gg.CheckpointError, match="crafted.safetensors") as info:
        gg.load(path)
    assert fact in str(info.value)


def _random_node(generator, depth=0):
    choice = generator.randrange(12 if depth < 4 else 5)
    leaves = [None, True, 1, -2.5, "t", "f", "missing", "nan", [], {}]
    if choice < 5:
        return generator.choice(leaves)
    if choice == 5:
        return [_random_node(generator, depth + 1) for _ in range(generator.randrange(3))]
    if choice == 6:
        return {generator.choice(["a", "requires_grad", "__tensor__"]): _random_node(generator, depth + 1)}
    marker = generator.choice(["__tensor__", "__ndarray__", "__tuple__", "__float__", "__dict__"])
    node = {marker: _random_node(generator, depth + 1)}
    if generator.random() < 0.3:
        node[generator.choice(["requires_grad", "x", "__tuple__"])] = _random_node(generator, depth + 1)
    if marker == "__dict__" and generator.random() < 0.5:
        node[marker] = [[_random_node(generator, depth + 1), _random_node(generator, depth + 1)]]
    return node


def test_fuzzed_structures_load_or_raise_checkpoint_error_only(tmp_path):
    generator = random.Random(13)
    path = tmp_path / "fuzz.safetensors"
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(300):
        _craft(path, _random_node(generator))
        try:
            gg.load(path)
            outcomes["loaded"] += 1
        except gg.CheckpointError:
            outcomes["refused"] += 1
    assert outcomes["loaded"] > 25 and outcomes["refused"] > 25, outcomes


# ---------------------------------------------------------------------------
# Exact resume from max_steps chunks.
# ---------------------------------------------------------------------------
def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], dtype=np.float32)
    labels = rng.integers(0, 3, n)
    points = centres[labels] + 0.7 * rng.standard_normal((n, 2)).astype(np.float32)
    return gg.tensor(points), gg.tensor(labels.astype(np.int64))


class NoisyBlobs(gg.data.Dataset):
    """Augmentation from the global generator at fetch time: the resume must not replay it."""

    def __init__(self, n=200, seed=0):
        self.x, self.y = _blobs(n, seed)

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, index):
        return self.x[index] + 0.05 * gg.randn(2), self.y[index]


def _run(checkpoint=None, max_steps=None, seed=0, epochs=6, patience=1):
    """Shuffle (seed drawn from the global RNG), augmentation, dropout, BatchNorm, AdamW, a
    per-batch schedule, early stopping with restore_best_weights and a second stateful callback."""
    gg.manual_seed(seed)
    train = gg.data.DataLoader(NoisyBlobs(), batch_size=32, shuffle=True)      # 7 batches, the last of 8
    xv, yv = _blobs(90, 1)
    val = gg.data.DataLoader(gg.data.TensorDataset(xv, yv), batch_size=30)
    model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    optimizer = gg.optim.AdamW(model.parameters(), lr=2e-2, weight_decay=0.05)
    scheduler = gg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train))
    stopper = EarlyStopping(monitor="val_loss", patience=patience, min_delta=0.02, restore_best_weights=True)
    counter = EarlyStopping(monitor="loss", patience=100)
    history = fit(model, optimizer, nn.CrossEntropyLoss(), train, val, epochs=epochs, scheduler=scheduler,
                  scheduler_step="batch", callbacks=[stopper, counter], checkpoint=checkpoint, max_steps=max_steps,
                  progress=False)
    return model, optimizer, history, stopper


def _arrays(model, optimizer):
    params = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    moments = {(i, k): (v.numpy().copy() if hasattr(v, "numpy") else v)
               for i, s in optimizer.state_dict()["state"].items() for k, v in s.items()}
    return params, moments


@pytest.mark.parametrize("chunk", [3, 5, 8])
def test_a_job_split_into_max_steps_chunks_ends_bit_for_bit_as_one_run(tmp_path, chunk):
    model, optimizer, history, stopper = _run()
    expected_params, expected_moments = _arrays(model, optimizer)
    assert stopper.stopped_epoch is not None, "the run should stop early (restore_best_weights is exercised)"

    path = str(tmp_path / "job.safetensors")
    calls, steps, mid_epoch = 0, 0, 0
    while True:
        calls += 1
        # A new process each time (the first starts the job with its seed; later ones start from
        # other random states, which the checkpoint must replace).
        model_c, optimizer_c, history_c, stopper_c = _run(path, max_steps=steps + chunk,
                                                          seed=0 if calls == 1 else 1000 + calls)
        saved = gg.load(path)
        if saved["step"] == steps or calls > 60:        # no progress: the job is over
            break
        assert saved["step"] == steps + chunk or saved["position"] is None
        steps = saved["step"]
        mid_epoch += saved["position"] is not None
    assert mid_epoch >= 2, "the chunks should stop inside epochs"
    params, moments = _arrays(model_c, optimizer_c)
    assert params.keys() == expected_params.keys()
    for key in expected_params:
        assert np.array_equal(params[key], expected_params[key]), key
    assert moments.keys() == expected_moments.keys()
    for key in expected_moments:
        assert np.array_equal(np.asarray(moments[key]), np.asarray(expected_moments[key])), key
    assert history_c.epochs == history.epochs
    for key in history:
        if key != "time":
            assert history_c[key] == history[key], key
    assert (stopper_c.best, stopper_c.best_epoch, stopper_c.wait, stopper_c.stopped_epoch) == \
        (stopper.best, stopper.best_epoch, stopper.wait, stopper.stopped_epoch)


def _small_fit(callbacks=(), checkpoint=None, **options):
    gg.manual_seed(0)
    x, y = _blobs(64, 0)
    loader = gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = gg.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = options.pop("scheduler", lambda o: gg.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5))(optimizer)
    fit_call = lambda **more: fit(model, optimizer, nn.CrossEntropyLoss(), loader, callbacks=list(callbacks),  # noqa: E731
                                  checkpoint=checkpoint, scheduler=scheduler, progress=False, **dict(options, **more))
    return model, optimizer, scheduler, loader, fit_call


def _everything(model, optimizer, scheduler, loader):
    return (
        {k: v.numpy().copy() for k, v in model.state_dict().items()},
        repr(optimizer.param_groups), {i: {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v).tolist()
                                           for k, v in s.items()} for i, s in optimizer.state_dict()["state"].items()},
        repr(scheduler.state_dict()), repr(loader.state_dict()), repr(gg.backend.get_rng_state()),
    )


def _assert_same(before, after):
    for b, a in zip(before, after, strict=True):
        if isinstance(b, dict) and b and isinstance(next(iter(b.values())), np.ndarray):
            assert b.keys() == a.keys()
            for key in b:
                assert np.array_equal(b[key], a[key]), key
        else:
            assert b == a


def test_a_checkpoint_with_other_callbacks_is_refused_and_nothing_changes(tmp_path):
    path = str(tmp_path / "c.safetensors")
    _, _, _, _, run = _small_fit([EarlyStopping(monitor="loss", patience=5)], checkpoint=path)
    run(epochs=2)
    model, optimizer, scheduler, loader, run = _small_fit([], checkpoint=path)
    before = _everything(model, optimizer, scheduler, loader)
    with pytest.raises(ValueError, match=r"callbacks \['EarlyStopping'\] but this run has \[\]") as info:
        run(epochs=4)
    assert "same callbacks" in str(info.value) and "c.safetensors" in str(info.value)
    _assert_same(before, _everything(model, optimizer, scheduler, loader))
    # Stateless callbacks (LambdaCallback) do not count; the same stateful ones resume.
    _, _, _, _, run = _small_fit([gg.train.LambdaCallback(on_epoch_end=lambda epoch, logs: None),
                                  EarlyStopping(monitor="loss", patience=5)], checkpoint=path)
    assert len(run(epochs=4)) == 4


def test_a_resume_that_fails_half_way_puts_everything_back(tmp_path):
    path = str(tmp_path / "c.safetensors")
    _, _, _, _, run = _small_fit(checkpoint=path)
    run(epochs=2)
    saved = gg.load(path)
    saved["scheduler"]["gamma"] = float("nan")      # model and optimizer load, then the scheduler refuses
    gg.save(saved, path)
    model, optimizer, scheduler, loader, run = _small_fit(checkpoint=path)
    before = _everything(model, optimizer, scheduler, loader)
    with pytest.raises(ValueError, match="gamma") as info:
        run(epochs=4)
    assert "nothing was changed" in str(info.value)
    _assert_same(before, _everything(model, optimizer, scheduler, loader))


def test_fit_on_a_loader_without_batches_is_an_error():
    x, y = _blobs(5, 0)
    loader = gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=8, drop_last=True)
    model = nn.Linear(2, 3)
    before = model.weight.numpy().copy()
    with pytest.raises(ValueError, match=r"no batch.*5 sample\(s\), batch_size=8, drop_last=True"):
        fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), loader, progress=False)

    class Empty:        # an iterable without len()
        def __iter__(self):
            return iter(())
    with pytest.raises(ValueError, match="yielded no batch in epoch 0"):
        fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), Empty(), progress=False)
    assert np.array_equal(model.weight.numpy(), before)


class Counting(Callback):
    """A callback whose state counts its hooks: a chunked run must see each hook once."""

    def __init__(self):
        self.counts = {"epoch_begin": 0, "batch_begin": 0, "batch_end": 0, "epoch_end": 0}

    def on_epoch_begin(self, epoch, logs=None):
        self.counts["epoch_begin"] += 1

    def on_batch_begin(self, step, logs=None):
        self.counts["batch_begin"] += 1

    def on_batch_end(self, step, logs=None):
        self.counts["batch_end"] += 1

    def on_epoch_end(self, epoch, logs=None):
        self.counts["epoch_end"] += 1

    def state_dict(self):
        return dict(self.counts)

    def load_state_dict(self, state):
        self.counts = dict(state)


def test_a_resumed_epoch_does_not_begin_twice(tmp_path):
    whole = Counting()
    _, _, _, _, run = _small_fit([whole], scheduler=lambda o: None)
    run(epochs=3)
    assert whole.counts == {"epoch_begin": 3, "batch_begin": 12, "batch_end": 12, "epoch_end": 3}
    path = str(tmp_path / "c.safetensors")
    for stop in (3, 6, 9, 12):
        chunked = Counting()
        _, _, _, _, run = _small_fit([chunked], checkpoint=path, scheduler=lambda o: None)
        run(epochs=3, max_steps=stop)
    assert gg.load(path)["callbacks"][0]["state"] == whole.counts

"""gg.train: fit, evaluate, History, callbacks, exact resume, and the graph-leak warning."""

import math
import os
import sys
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn
from gpugrad.train import (
    Callback,
    EarlyStopping,
    GraphLeakGuard,
    GraphRetainedWarning,
    History,
    LambdaCallback,
    ModelCheckpoint,
    evaluate,
    fit,
)


# ---------------------------------------------------------------------------
# A small, learnable task: which of three Gaussian blobs a 2-D point came from.
# ---------------------------------------------------------------------------
def blobs(n=240, seed=0, device="cpu"):
    rng = np.random.default_rng(seed)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], dtype=np.float32)
    labels = rng.integers(0, 3, n)
    points = centres[labels] + 0.7 * rng.standard_normal((n, 2)).astype(np.float32)
    return gg.tensor(points, device=device), gg.tensor(labels.astype(np.int64), device=device)


def loaders(batch_size=32, seed=0, device="cpu", shuffle_seed=0):
    x, y = blobs(seed=seed, device=device)
    xv, yv = blobs(n=100, seed=seed + 1, device=device)
    train = gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True, seed=shuffle_seed)
    val = gg.data.DataLoader(gg.data.TensorDataset(xv, yv), batch_size=40)
    return train, val


def mlp(dropout=0.0, batchnorm=False):
    layers = [nn.Linear(2, 16)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3)]
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------
# fit and History.
# ---------------------------------------------------------------------------
def test_fit_trains_and_records_every_epoch(device):
    gg.manual_seed(0)
    train, val = loaders(device=device)
    model = mlp().to(device)
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(model, optimizer, nn.CrossEntropyLoss(), train, val_loader=val, epochs=6, progress=False)
    assert isinstance(history, History) and len(history) == 6 and history.epochs == list(range(6))
    assert set(history.keys()) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "step"}
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert history["step"] == [8 * (e + 1) for e in range(6)]          # 240 / 32 -> 8 batches
    assert all(t > 0 for t in history["time"]) and history["lr"] == [0.1] * 6
    assert "val_accuracy" in repr(history)


def test_fit_gives_a_distributed_sampler_each_epoch(device):
    """fit calls sampler.set_epoch(epoch) (as a DDP loop must), so a
    DistributedSampler shuffles each epoch anew instead of repeating epoch 0."""
    x, y = blobs(n=64, device=device)
    dataset = gg.data.TensorDataset(x, y)
    seen = []

    class Recording(gg.distributed.DistributedSampler):
        def __iter__(self):
            order = list(super().__iter__())
            seen.append((self.epoch, order))
            return iter(order)

    sampler = Recording(dataset, num_replicas=2, rank=0, seed=3)
    loader = gg.data.DataLoader(dataset, batch_size=16, sampler=sampler)
    model = mlp().to(device)
    fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), loader, epochs=3, progress=False)
    assert [epoch for epoch, _ in seen] == [0, 1, 2]
    assert seen[0][1] != seen[1][1] != seen[2][1]


def test_fit_training_loss_is_the_sample_mean_of_the_steps():
    gg.manual_seed(0)
    train, _ = loaders(batch_size=100)       # 240 = 100 + 100 + 40: an uneven last batch
    model = mlp()
    seen = []

    def loss_fn(output, target):
        loss = nn.functional.cross_entropy(output, target)
        seen.append((loss.item(), target.shape[0]))
        return loss

    history = fit(model, gg.optim.SGD(model.parameters(), lr=0.0), loss_fn, train, epochs=1, progress=False)
    expected = sum(v * n for v, n in seen) / sum(n for _, n in seen)
    assert history["loss"][0] == pytest.approx(expected, rel=1e-12)


def test_evaluate_matches_a_hand_computed_loss_and_accuracy():
    gg.manual_seed(0)
    train, val = loaders()
    model = mlp(dropout=0.5, batchnorm=True)
    fit(model, gg.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(), train, epochs=2, progress=False)
    model.train()
    results = evaluate(model, val, nn.CrossEntropyLoss(), metrics=("accuracy", "top5"))
    assert model.training, "evaluate must restore training mode"
    x, y = val.dataset.tensors
    model.eval()
    with gg.no_grad():
        logits = model(x)
    expected_loss = nn.functional.cross_entropy(logits, y).item()
    expected_accuracy = float((logits.numpy().argmax(1) == y.numpy()).mean())
    assert results["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert results["accuracy"] == pytest.approx(expected_accuracy)
    assert results["top5"] == 1.0                       # three classes: always in the top five
    assert set(results) == {"loss", "accuracy", "top5"}


def test_accuracy_metric_multiclass_binary_and_probability_targets():
    logits = gg.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    assert gg.train.accuracy(logits, gg.tensor([0, 1, 0, 0])) == 0.75
    probabilities = gg.tensor([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0], [0.2, 0.7, 0.1]])
    assert gg.train.accuracy(logits, probabilities) == 0.5
    binary = gg.tensor([0.3, -2.0, 1.0, -0.1])
    assert gg.train.accuracy(binary, gg.tensor([1.0, 0.0, 0.0, 1.0])) == 0.5
    assert gg.train.accuracy(binary.reshape(4, 1), gg.tensor([1, 0, 1, 0])) == 1.0
    many = gg.tensor(np.arange(70, dtype=np.float32).reshape(7, 10))
    assert gg.train.top5_accuracy(many, gg.tensor([9, 8, 7, 6, 5, 4, 0])) == pytest.approx(5 / 7)


def test_callable_and_named_metrics():
    gg.manual_seed(0)
    train, val = loaders()
    model = mlp()

    def error_rate(output, target):
        return 1.0 - gg.train.accuracy(output, target)

    history = fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train, val, epochs=2,
                  metrics={"acc": "accuracy", "err": error_rate}, progress=False)
    for prefix in ("", "val_"):
        for a, e in zip(history[prefix + "acc"], history[prefix + "err"], strict=True):
            assert a + e == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown metric"):
        fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train, metrics=("f1",),
            progress=False)


def test_history_round_trips_through_gg_save_and_plots(tmp_path):
    gg.manual_seed(0)
    train, val = loaders()
    model = mlp()
    history = fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train, val, epochs=3,
                  progress=False)
    path = tmp_path / "history.safetensors"
    gg.save(history.to_dict(), path)
    again = History.from_dict(gg.load(path))
    assert again.to_dict() == history.to_dict()
    png = history.plot(str(tmp_path / "sub" / "curves.png"))
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    svg = gg.train.plot_histories({"a": history, "b": again}, str(tmp_path / "both.svg"), title="two runs")
    with open(svg) as handle:
        assert "<svg" in handle.read(2000)


def test_max_steps_stops_mid_epoch_and_scheduler_steps_per_batch():
    gg.manual_seed(0)
    train, _ = loaders()
    model = mlp()
    optimizer = gg.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = gg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=20)
    history = fit(model, optimizer, nn.CrossEntropyLoss(), train, epochs=100, max_steps=20, scheduler=scheduler,
                  scheduler_step="batch", progress=False)
    assert history["step"] == [8, 16, 20] and len(history) == 3
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert history["lr"][0] == pytest.approx(1e-2 * (1 + math.cos(math.pi * 7 / 20)) / 2)


def test_epoch_schedulers_and_reduce_on_plateau_get_the_validation_loss():
    gg.manual_seed(0)
    train, val = loaders()
    model = mlp()
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    step_lr = gg.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    history = fit(model, optimizer, nn.CrossEntropyLoss(), train, epochs=5, scheduler=step_lr, progress=False)
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])

    seen = []
    plateau = gg.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    original = plateau.step
    plateau.step = lambda metric: (seen.append(metric), original(metric))[1]
    history = fit(model, optimizer, nn.CrossEntropyLoss(), train, val, epochs=2, scheduler=plateau, progress=False)
    assert seen == history["val_loss"]
    with pytest.raises(ValueError, match="scheduler_step"):
        fit(model, optimizer, nn.CrossEntropyLoss(), train, scheduler=plateau, scheduler_step="step")


def test_bad_batches_get_a_clear_error():
    model = mlp()
    triples = [(gg.zeros(4, 2), gg.zeros(4, dtype=gg.int64), gg.zeros(4))]
    with pytest.raises(ValueError, match=r"\(inputs, targets\)"):
        fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), triples, progress=False)
    dicts = [{"input": gg.zeros(4, 2), "target": gg.zeros(4, dtype=gg.int64)}]
    history = fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), dicts, progress=False)
    assert len(history) == 1


# ---------------------------------------------------------------------------
# Progress reporting.
# ---------------------------------------------------------------------------
def test_progress_is_quiet_off_a_terminal_and_lines_on_request(capsys):
    gg.manual_seed(0)
    train, _ = loaders()
    model = mlp()
    fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train, epochs=2, progress=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""       # pytest's stderr is not a terminal
    fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train, epochs=2,
        progress="lines")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: loss ")


def test_progress_bar_uses_tqdm_and_falls_back_to_lines_without_it(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    gg.manual_seed(0)
    train, _ = loaders()
    model = mlp()
    fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train, epochs=2, progress="bar")
    err = capsys.readouterr().err
    assert "16/16" in err and "step" in err
    monkeypatch.setitem(sys.modules, "tqdm", None)          # import tqdm now fails
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train, epochs=2, progress="bar")
    assert capsys.readouterr().err.count("epoch ") == 2


# ---------------------------------------------------------------------------
# Callbacks.
# ---------------------------------------------------------------------------
def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    gg.manual_seed(0)
    train, val = loaders()
    model = mlp()
    # lr 0: the validation loss never improves after the first epoch.
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    history = fit(model, gg.optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(), train, val, epochs=20,
                  callbacks=[stopper], progress=False)
    assert len(history) == 4 and stopper.stopped_epoch == 3 and stopper.best_epoch == 0

    # Maximising accuracy with a rate so large training diverges: the best epoch's weights come back.
    gg.manual_seed(0)
    model = mlp()
    stopper = EarlyStopping(monitor="val_accuracy", patience=1, restore_best_weights=True)
    snapshots = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(
        {k: v.numpy().copy() for k, v in model.state_dict().items()}))
    history = fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train, val, epochs=30,
                  callbacks=[stopper, record], progress=False)
    if stopper.stopped_epoch is not None:
        best = snapshots[stopper.best_epoch]
        assert all(np.array_equal(best[k], v.numpy()) for k, v in model.state_dict().items())
        assert history["val_accuracy"][stopper.best_epoch] == max(history["val_accuracy"])


def test_early_stopping_names_a_missing_monitor():
    train, _ = loaders()
    model = mlp()
    with pytest.raises(KeyError, match="val_loader"):
        fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train,
            callbacks=[EarlyStopping()], progress=False)


def test_model_checkpoint_saves_the_best_model(tmp_path):
    gg.manual_seed(0)
    train, val = loaders()
    model = mlp()
    best_path = tmp_path / "best.safetensors"
    best = ModelCheckpoint(best_path, monitor="val_accuracy", save_best_only=True)
    every = ModelCheckpoint(str(tmp_path / "every" / "model-{epoch:02d}-{loss:.3f}.safetensors"),
                            save_best_only=False)
    history = fit(model, gg.optim.SGD(model.parameters(), lr=0.2), nn.CrossEntropyLoss(), train, val, epochs=4,
                  callbacks=[best, every], progress=False)
    assert len(every.saved) == 4 and os.path.basename(every.saved[0]).startswith("model-01-")
    assert all(os.path.exists(p) for p in every.saved)
    accuracy = history["val_accuracy"]
    improvements = [i for i, a in enumerate(accuracy) if a > max(accuracy[:i], default=-1)]
    assert len(best.saved) == len(improvements)
    restored = mlp()
    restored.load_state_dict(gg.load(best_path))
    assert best.best == max(history["val_accuracy"])
    assert evaluate(restored, val)["accuracy"] == best.best


def test_callback_hooks_run_in_order_and_can_stop_training():
    gg.manual_seed(0)
    train, _ = loaders()
    model = mlp()
    events = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_batch_end(self, step, logs=None):
            events.append("batch")

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end {epoch}")
            if epoch == 1:
                self.trainer.stop_training = True

        def on_train_end(self, logs=None):
            events.append("train_end")

    fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train, epochs=5,
        callbacks=[Recorder()], progress=False)
    assert events == (["train_begin", "epoch_begin 0"] + ["batch"] * 8 + ["epoch_end 0", "epoch_begin 1"]
                      + ["batch"] * 8 + ["epoch_end 1", "train_end"])


# ---------------------------------------------------------------------------
# Checkpoints and exact resume.
# ---------------------------------------------------------------------------
class Interrupt(Callback):
    """Raises KeyboardInterrupt at a given optimizer step, as a crash would."""

    def __init__(self, at_step):
        self.at_step = at_step

    def on_batch_end(self, step, logs=None):
        if step == self.at_step:
            raise KeyboardInterrupt


def _resumable_run(checkpoint=None, epochs=5, seed=0, interrupt_at=None, resume=None):
    """Everything that can break an exact resume: dropout and shuffles from the global RNG
    (loader seed drawn from it), BatchNorm buffers, AdamW moments, a per-batch cosine
    schedule, and an early-stopping callback with state."""
    gg.manual_seed(seed)
    x, y = blobs()
    xv, yv = blobs(n=100, seed=1)
    train = gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    val = gg.data.DataLoader(gg.data.TensorDataset(xv, yv), batch_size=50)
    model = mlp(dropout=0.3, batchnorm=True)
    optimizer = gg.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)
    scheduler = gg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train))
    callbacks = [EarlyStopping(monitor="val_loss", patience=100)]
    if interrupt_at is not None:
        callbacks.append(Interrupt(interrupt_at))
    history = fit(model, optimizer, nn.CrossEntropyLoss(), train, val, epochs=epochs, scheduler=scheduler,
                  scheduler_step="batch", callbacks=callbacks, checkpoint=checkpoint, resume=resume, progress=False)
    return model, optimizer, history, callbacks[0]


def _state(model, optimizer):
    params = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    moments = {(i, k): v.numpy().copy() for i, s in optimizer.state_dict()["state"].items()
               for k, v in s.items() if hasattr(v, "numpy")}
    return params, moments


def test_an_interrupted_and_resumed_run_equals_an_uninterrupted_one_bit_for_bit(tmp_path):
    model, optimizer, history, stopper = _resumable_run()
    expected_params, expected_moments = _state(model, optimizer)

    path = str(tmp_path / "run.safetensors")
    with pytest.raises(KeyboardInterrupt):
        _resumable_run(checkpoint=path, interrupt_at=8 * 2 + 3)    # dies in the third epoch
    saved = gg.load(path)
    assert saved["epoch"] == 2 and saved["step"] == 16 and saved["format"] == "gpugrad.train/1"
    # A fresh process would start from other random states: resuming must restore them.
    resumed_model, resumed_optimizer, resumed_history, resumed_stopper = _resumable_run(checkpoint=path, seed=123)
    params, moments = _state(resumed_model, resumed_optimizer)

    assert params.keys() == expected_params.keys()
    for key in expected_params:
        assert np.array_equal(params[key], expected_params[key]), key          # bit for bit, buffers included
    for key in expected_moments:
        assert np.array_equal(moments[key], expected_moments[key]), key
    assert resumed_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    for key in history:
        if key != "time":
            assert resumed_history[key] == history[key], key
    assert resumed_history.epochs == list(range(5))
    assert (resumed_stopper.best, resumed_stopper.wait) == (stopper.best, stopper.wait)
    assert gg.load(path)["epoch"] == 5

    # Resuming a finished run does nothing; resume=False starts afresh and overwrites.
    again_model, _, again_history, _ = _resumable_run(checkpoint=path, seed=7)
    assert np.array_equal(again_model.state_dict()["0.weight"].numpy(), expected_params["0.weight"])
    assert again_history.to_dict() == gg.load(path)["history"]
    _resumable_run(checkpoint=path, epochs=1, resume=False)
    assert gg.load(path)["epoch"] == 1


def test_resume_errors(tmp_path):
    model = mlp()
    train, _ = loaders()
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fit(model, optimizer, nn.CrossEntropyLoss(), train, checkpoint=str(tmp_path / "none.safetensors"),
            resume=True, progress=False)
    with pytest.raises(ValueError, match="checkpoint"):
        fit(model, optimizer, nn.CrossEntropyLoss(), train, resume=True, progress=False)
    foreign = str(tmp_path / "weights.safetensors")
    gg.save(model.state_dict(), foreign)
    with pytest.raises(ValueError, match="not a fit"):
        fit(model, optimizer, nn.CrossEntropyLoss(), train, checkpoint=foreign, progress=False)


# ---------------------------------------------------------------------------
# The graph-leak guard (issue 7).
# ---------------------------------------------------------------------------
def test_fit_warns_when_the_loss_function_keeps_old_losses():
    gg.manual_seed(0)
    train, _ = loaders()
    model = mlp()
    kept = []

    def hoarding_loss(output, target):
        loss = nn.functional.cross_entropy(output, target)
        kept.append(loss)                        # keeps every step's graph alive
        return loss

    with pytest.warns(GraphRetainedWarning, match=r"loss\.item\(\)") as caught:
        fit(model, gg.optim.SGD(model.parameters(), lr=0.1), hoarding_loss, train, epochs=2, progress=False)
    assert len([w for w in caught if w.category is GraphRetainedWarning]) == 1      # once per run
    assert caught[0].filename == __file__                                             # points at the caller


def test_fit_is_silent_for_a_correct_loop():
    gg.manual_seed(0)
    train, val = loaders()
    model = mlp(dropout=0.2, batchnorm=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphRetainedWarning)
        fit(model, gg.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(), train, val, epochs=2,
            progress=False)


def _source_line(lineno):
    with open(__file__) as handle:
        return handle.read().splitlines()[lineno - 1]


def _user_loop(model, optimizer, loader, mistake, in_place=False):
    """A hand-written training loop, as users write it, with the classic mistake optional."""
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if not mistake:
            total += loss.item()
        elif in_place:
            total += loss                                # the mistake as usually written
        else:
            total = total + loss                         # the same mistake, out of place
    return float(total)


def test_a_user_loop_that_sums_losses_with_their_graphs_is_warned_about():
    # gg.optim's step() checks for it (the engine's detector; the same warning class).
    assert gg.train.GraphRetainedWarning is gg.GraphRetainedWarning
    gg.manual_seed(0)
    train, _ = loaders()
    model = mlp()
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(GraphRetainedWarning, match="total") as caught:
        _user_loop(model, optimizer, train, mistake=True)
    assert caught[0].filename == __file__
    assert "optimizer.step()" in _source_line(caught[0].lineno)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphRetainedWarning)
        _user_loop(model, optimizer, train, mistake=False)


def test_total_loss_plus_equals_loss_in_place_warns_rather_than_crashes():
    # Once crashed: a reduction's 0-d result held a NumPy scalar, which in-place ops cannot write.
    gg.manual_seed(0)
    train, _ = loaders()
    model = mlp()
    with pytest.warns(GraphRetainedWarning):
        _user_loop(model, gg.optim.SGD(model.parameters(), lr=0.1), train, mistake=True, in_place=True)


def _manual_sgd_loop(params, loader, guard, mistake):
    """No optimizer object: parameters updated by hand, watched by a GraphLeakGuard."""
    w, b = params
    losses = []
    for x, y in loader:
        loss = nn.functional.cross_entropy(x @ w + b, y)
        loss.backward()
        with gg.no_grad():
            for p in params:
                p -= 0.1 * p.grad
                p.grad = None
        losses.append(loss if mistake else loss.item())     # the mistake: keeping the graph
        guard.watch(loss)
    return losses


def test_the_guard_catches_kept_losses_in_a_loop_without_an_optimizer():
    gg.manual_seed(0)
    train, _ = loaders()
    params = [gg.zeros(2, 3, requires_grad=True), gg.zeros(3, requires_grad=True)]
    with pytest.warns(GraphRetainedWarning, match=r"loss\.item\(\)") as caught:
        _manual_sgd_loop(params, train, GraphLeakGuard(), mistake=True)
    assert len(caught) == 1 and caught[0].filename == __file__
    assert "guard.watch" in _source_line(caught[0].lineno)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphRetainedWarning)
        _manual_sgd_loop(params, train, GraphLeakGuard(), mistake=False)

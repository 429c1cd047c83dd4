"""fit/evaluate keep batch losses and metrics on the device between progress refreshes.

The sync counts run through the strict CuPy stand-in (``GPUGRAD_TEST_CUPY=standin
GPUGRAD_TEST_DEVICES=cuda``), which counts every device-to-host read (``.get()``,
``asnumpy``, ``float()``/``int()``/``bool()``/``.item()`` of a device array); the
equal-results tests run on every device.
"""
import warnings

import cupy_standin as standin
import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn as nn
from gpugrad import backend


def _on_standin(device):
    if device != "cuda" or not getattr(backend.cupy_module(), "STANDIN", False):
        pytest.skip("counts device-to-host syncs through the CuPy stand-in (GPUGRAD_TEST_CUPY=standin)")


def _loader(batches=12, batch_size=4, seed=0):
    data = np.random.default_rng(seed)
    x = gg.tensor(data.standard_normal((batches * batch_size, 6)), dtype=gg.float32)
    y = gg.tensor(data.standard_normal((batches * batch_size, 3)), dtype=gg.float32)
    return gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True, seed=seed)


def _model(device="cpu"):
    gg.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3)).to(device)


class _SyncsPerStep(gg.train.Callback):
    """Device-to-host syncs counted between the starts of consecutive steps (on_batch_begin only:
    a callback overriding on_batch_end asks for every batch's loss, which reads it every step)."""

    def __init__(self):
        self.marks = []

    def on_batch_begin(self, step, logs=None):
        self.marks.append((step, sum(standin.syncs.values())))

    def per_step(self):
        return {later_step: count - earlier for (_, earlier), (later_step, count) in zip(self.marks, self.marks[1:])}


@pytest.mark.parametrize("log_every", [1, 5, 50])
def test_fit_reads_the_device_once_per_refresh_and_never_in_between(device, log_every):
    _on_standin(device)
    model = _model(device)
    recorder = _SyncsPerStep()
    gg.train.fit(model, gg.optim.Adam(model.parameters(), lr=1e-3, fused=True), nn.MSELoss(), _loader(),
                 epochs=1, metrics={"mae": lambda output, target: (output - target).abs().mean(), "acc": "accuracy"},
                 callbacks=[recorder], progress=False, device=device, log_every=log_every)
    per_step = recorder.per_step()          # syncs during step s (s = 1 .. 11; step 12 ends the epoch)
    assert len(per_step) == 11
    for step, syncs in per_step.items():
        expected = 1 if step % log_every == 0 else 0      # one stacked copy of the pending losses and metrics
        assert syncs == expected, (step, syncs, per_step)


def test_evaluate_reads_the_device_once(device):
    _on_standin(device)
    model = _model(device)
    with standin.count_syncs() as counted:
        results = gg.train.evaluate(model, _loader(), nn.MSELoss(), metrics={"mae": nn.L1Loss()}, device=device)
    assert sum(counted.values()) == 1 and set(results) == {"loss", "mae"}


def test_a_callback_reading_each_batch_loss_still_gets_a_float_every_step(device):
    losses = []
    model = _model(device)
    callback = gg.train.LambdaCallback(on_batch_end=lambda step, logs: losses.append(logs["loss"]))
    history = gg.train.fit(model, gg.optim.SGD(model.parameters(), lr=0.05), nn.MSELoss(), _loader(), epochs=1,
                           metrics=None, callbacks=[callback], progress=False, device=device, log_every=50)
    assert len(losses) == 12 and all(isinstance(value, float) for value in losses)
    assert history["loss"][0] == pytest.approx(sum(losses) / 12, rel=1e-6)


def _history(device, log_every, metrics=("accuracy",)):
    model = _model(device)
    data = np.random.default_rng(5)
    x = gg.tensor(data.standard_normal((40, 6)), dtype=gg.float32)
    y = gg.tensor(data.integers(0, 3, 40))
    loader = gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=8, shuffle=True, seed=1)
    history = gg.train.fit(model, gg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), nn.CrossEntropyLoss(),
                           loader, val_loader=loader, epochs=3, metrics=metrics, progress=False, device=device,
                           log_every=log_every)
    return {key: values for key, values in history.history.items() if key != "time"}


def test_the_history_is_the_same_for_every_log_every(device):
    expected = _history(device, log_every=1)
    for log_every in (2, 3, 1000):
        assert _history(device, log_every) == expected          # the same floats, bit for bit


def test_a_non_finite_loss_is_still_reported_with_its_step():
    model = _model()
    calls = []

    def exploding(output, target):
        calls.append(None)
        loss = nn.functional.mse_loss(output, target)
        return loss * float("inf") if len(calls) == 4 else loss

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(invalid="ignore"):
            gg.train.fit(model, gg.optim.SGD(model.parameters(), lr=0.0), exploding, _loader(), epochs=1,
                         metrics=None, progress=False, log_every=10)
    reported = [w for w in caught if "training loss is" in str(w.message)]
    assert len(reported) == 1 and "training loss is inf at step 4" in str(reported[0].message)
    assert reported[0].filename == __file__        # points at the caller of fit


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None])
def test_log_every_must_be_a_positive_integer(bad):
    model = _model()
    with pytest.raises(ValueError, match="log_every"):
        gg.train.fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss(), _loader(), log_every=bad,
                     progress=False)


def test_the_progress_bar_still_counts_every_step(capsys):
    pytest.importorskip("tqdm")
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gg.train.fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss(), _loader(), epochs=2,
                     metrics=None, progress="bar", log_every=5)
    err = capsys.readouterr().err
    assert "24/24" in err and "loss" in err

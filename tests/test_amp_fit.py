"""fit(..., amp=...): autocast in the step, the GradScaler for float16, its state in checkpoints."""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn


def _task(seed=0, device="cpu"):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int64) + 2 * (x[:, 3] > 0)
    data = gg.data.TensorDataset(gg.tensor(x, device=device), gg.tensor(y, device=device))
    return gg.data.DataLoader(data, batch_size=32, shuffle=True, seed=seed)


def _model(device="cpu"):
    gg.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4)).to(device)


class _Spy(gg.train.Callback):
    """Records what the step saw: the output dtype and the scale after each batch."""

    def __init__(self):
        self.scales, self.parameter_dtypes = [], set()

    def on_batch_end(self, step, logs=None):
        mixed = self.trainer.mixed_precision
        self.scales.append(None if mixed.scaler is None else mixed.scaler.get_scale())
        self.parameter_dtypes |= {p.dtype for p in self.trainer.model.parameters()}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_fit_trains_in_mixed_precision_with_float32_master_weights(amp, device):
    loader, model = _task(device=device), _model(device)
    float32_model = _model(device)
    spy = _Spy()
    history = gg.train.fit(model, gg.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(), loader,
                           epochs=6, progress=False, amp=amp, callbacks=[spy])
    reference = gg.train.fit(float32_model, gg.optim.Adam(float32_model.parameters(), lr=1e-2),
                             nn.CrossEntropyLoss(), _task(device=device), epochs=6, progress=False)
    assert spy.parameter_dtypes == {gg.float32}
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert abs(history["accuracy"][-1] - reference["accuracy"][-1]) < 0.05
    assert (spy.scales[0] is None) == (amp == "bf16")
    if amp == "fp16":
        assert spy.scales[0] == 2.0 ** 16


def test_the_step_runs_under_autocast():
    seen = []

    def loss_fn(output, target):
        seen.append((output.dtype, gg.is_autocast_enabled("cpu")))
        return nn.functional.cross_entropy(output, target)

    model = _model()
    gg.train.fit(model, gg.optim.SGD(model.parameters(), lr=0.1), loss_fn, _task(), epochs=1, progress=False,
                 amp="bf16", max_steps=2)
    assert seen == [(gg.bfloat16, True)] * 2
    assert not gg.is_autocast_enabled("cpu")


def test_scaler_state_is_checkpointed_and_resumed(tmp_path):
    path = tmp_path / "run.safetensors"
    model = _model()
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    spy = _Spy()
    gg.train.fit(model, optimizer, nn.CrossEntropyLoss(), _task(), epochs=2, progress=False, amp="fp16",
                 checkpoint=path, max_steps=3, callbacks=[spy])
    saved = gg.load(path)["grad_scaler"]
    assert saved["scale"] == spy.scales[-1] and saved["_growth_tracker"] == 3

    class Resumed(gg.train.Callback):
        def on_train_begin(self, logs=None):
            self.state = self.trainer.mixed_precision.state_dict()

    resumed = Resumed()
    model = _model()
    gg.train.fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), _task(), epochs=2,
                 progress=False, amp="fp16", checkpoint=path, max_steps=5, callbacks=[resumed])
    assert resumed.state == saved
    assert gg.load(path)["grad_scaler"]["_growth_tracker"] == 5


def test_bad_amp_is_a_value_error_before_anything_runs():
    model = _model()
    before = [p.numpy().copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="amp='int8'"):
        gg.train.fit(model, gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), _task(),
                     epochs=1, progress=False, amp="int8")
    for old, parameter in zip(before, model.parameters()):
        np.testing.assert_array_equal(old, parameter.numpy())

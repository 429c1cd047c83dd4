"""gg.amp.GradScaler against torch.amp.GradScaler("cpu"): scales, skipped steps, states."""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(0)
INPUTS = RNG.standard_normal((8, 4)).astype(np.float32)
LABELS = RNG.integers(0, 3, 8)


def _models(device):
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    ours = gg.nn.Sequential(gg.nn.Linear(4, 6), gg.nn.ReLU(), gg.nn.Linear(6, 3))
    ours.load_state_dict({k: gg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return ours.to(device), theirs


OPTIMIZERS = {
    "SGD": (lambda p: gg.optim.SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "Adam": (lambda p: gg.optim.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "AdamW": (lambda p: gg.optim.AdamW(p, lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01)),
    "RMSprop": (lambda p: gg.optim.RMSprop(p, lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    "Adagrad": (lambda p: gg.optim.Adagrad(p, lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
}
# Steps whose gradients get an inf or a NaN (injected after backward, as an overflow would).
POISONED = {2: np.inf, 3: np.nan, 7: -np.inf}


def _run(library, model, optimizer, scaler, steps, device="cpu", clip=None):
    scales, stepped = [], []
    for step in range(steps):
        optimizer.zero_grad()
        if library is torch:
            loss = TF.cross_entropy(model(torch.tensor(INPUTS)), torch.tensor(LABELS))
        else:
            loss = F.cross_entropy(model(gg.tensor(INPUTS, device=device)), gg.tensor(LABELS, device=device))
        scaler.scale(loss).backward()
        first = next(iter(model.parameters()))
        if step in POISONED:
            with (torch.no_grad() if library is torch else gg.no_grad()):
                first.grad[0, 0] = POISONED[step]
        if clip is not None:
            scaler.unscale_(optimizer)
            (torch.nn.utils if library is torch else gg.nn.utils).clip_grad_norm_(model.parameters(), clip)
        before = first.detach().clone()
        scaler.step(optimizer)
        scaler.update()
        scales.append(scaler.get_scale())
        changed = not np.array_equal(np.asarray(before.cpu().numpy() if library is gg else before.numpy()),
                                     first.detach().cpu().numpy() if library is gg else first.detach().numpy())
        stepped.append(changed)
    return scales, stepped


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_scale_sequence_and_skipped_steps_equal_pytorch(name, device):
    make_ours, make_theirs = OPTIMIZERS[name]
    ours_model, theirs_model = _models(device)
    ours_opt, theirs_opt = make_ours(ours_model.parameters()), make_theirs(theirs_model.parameters())
    settings = {"init_scale": 2.0 ** 10, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 3}
    ours = gg.amp.GradScaler(device, **settings)
    theirs = torch.amp.GradScaler("cpu", **settings)
    got = _run(gg, ours_model, ours_opt, ours, 12, device)
    expected = _run(torch, theirs_model, theirs_opt, theirs, 12)
    assert got == expected
    assert expected[1][2] is False and expected[1][3] is False and expected[0][2] == 2.0 ** 9
    for (key, value), (_, reference) in zip(ours_model.state_dict().items(), theirs_model.state_dict().items()):
        np.testing.assert_allclose(value.cpu().numpy(), reference.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    assert ours.state_dict() == theirs.state_dict()


def test_unscale_before_clip_grad_norm_matches_pytorch(device):
    ours_model, theirs_model = _models(device)
    ours_opt = gg.optim.SGD(ours_model.parameters(), lr=0.1)
    theirs_opt = torch.optim.SGD(theirs_model.parameters(), lr=0.1)
    ours = gg.amp.GradScaler(device, init_scale=2.0 ** 12, growth_interval=2)
    theirs = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, growth_interval=2)
    assert _run(gg, ours_model, ours_opt, ours, 6, device, clip=0.5) == _run(torch, theirs_model, theirs_opt,
                                                                              theirs, 6, clip=0.5)
    for value, reference in zip(ours_model.parameters(), theirs_model.parameters()):
        np.testing.assert_allclose(value.detach().cpu().numpy(), reference.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_scaled_float16_gradients_do_not_underflow():
    # The float16 product's output gradient, 1e-8, is below float16's smallest subnormal (6e-8).
    w = gg.tensor([[1.0]], requires_grad=True)
    x = gg.tensor([[1.0]])
    with gg.autocast("cpu", dtype=gg.float16):
        loss = (x @ w).float().sum() * 1e-8
    plain = gg.grad(loss, w, retain_graph=True)[0]
    assert plain.item() == 0.0                    # underflowed in float16
    scaler = gg.amp.GradScaler("cpu", init_scale=2.0 ** 24)
    (scaled,) = gg.grad(scaler.scale(loss), w)
    assert scaled.item() / 2.0 ** 24 == pytest.approx(1e-8, rel=1e-2)


def test_float16_overflow_is_detected_and_the_step_skipped():
    w = gg.nn.Parameter(gg.tensor([1.0, 2.0]))
    optimizer = gg.optim.SGD([w], lr=1.0)
    scaler = gg.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    with gg.autocast("cpu", dtype=gg.float16):
        loss = (gg.tensor([[3e4], [1.0]]) * w.half()).float().sum()    # 3e4 * 65536 overflows float16
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    assert w.tolist() == [1.0, 2.0] and scaler.get_scale() == 2.0 ** 15


def test_the_check_is_exact_for_huge_finite_gradients():
    from gpugrad.amp.grad_scaler import non_finite_check_and_unscale_
    huge = [np.full(4, 3e38, np.float32)]           # finite, but its float32 sum overflows
    assert float(non_finite_check_and_unscale_(huge, np.float32(1.0))) == 0.0
    assert float(non_finite_check_and_unscale_([np.array([1.0, np.nan], np.float32)], np.float32(1.0))) == 1.0


def test_state_dict_round_trip_and_pytorch_keys():
    ours = gg.amp.GradScaler("cpu", init_scale=8.0, growth_interval=5)
    theirs = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=5)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    restored = gg.amp.GradScaler("cpu")
    restored.load_state_dict(theirs.state_dict())
    assert restored.state_dict() == theirs.state_dict() and restored.get_scale() == 8.0
    with pytest.raises(ValueError, match="empty"):
        restored.load_state_dict({})
    with pytest.raises(KeyError, match="scale"):
        restored.load_state_dict({"growth_factor": 2.0})
    assert restored.get_scale() == 8.0               # bad input changed nothing


def test_disabled_scaler_is_a_pass_through():
    model = gg.nn.Linear(2, 1)
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    scaler = gg.amp.GradScaler("cpu", enabled=False)
    loss = model(gg.ones(1, 2)).sum()
    assert scaler.scale(loss) is loss and not scaler.is_enabled() and scaler.get_scale() == 1.0
    loss.backward()
    scaler.step(optimizer)
    scaler.update()
    assert scaler.state_dict() == {}


def test_misuse_raises_as_pytorch():
    model = gg.nn.Linear(2, 1)
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    scaler = gg.amp.GradScaler("cpu")
    with pytest.raises(RuntimeError, match="No inf checks"):
        scaler.update()
    scaler.scale(model(gg.ones(1, 2)).sum()).backward()
    scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(optimizer)
    scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="Closure"):
        gg.amp.GradScaler("cpu").step(optimizer, closure=lambda: 0.0)
    half = gg.nn.Linear(2, 1).half()
    half_scaler = gg.amp.GradScaler("cpu")
    half_scaler.scale(half(gg.ones(1, 2, dtype=gg.float16)).float().sum()).backward()
    with pytest.raises(gg.DTypeError, match="float16 gradients"):
        half_scaler.unscale_(gg.optim.SGD(half.parameters(), lr=0.1))


def test_the_inf_flag_is_agreed_across_ranks(monkeypatch):
    # A two-rank world where the other rank overflowed: this rank's gradients are finite,
    # yet it must skip the step too (max over ranks), or the replicas would drift apart.
    from gpugrad import distributed
    calls = []

    def all_reduce(tensor, op="sum"):
        calls.append((tuple(tensor.shape), op))
        tensor.array[...] = 1.0                 # the other rank's flag
        return tensor

    monkeypatch.setattr(distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(distributed, "all_reduce", all_reduce)
    model = gg.nn.Linear(2, 1)
    before = [p.numpy().copy() for p in model.parameters()]
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    scaler = gg.amp.GradScaler("cpu", init_scale=4.0)
    scaler.scale(model(gg.ones(3, 2)).sum()).backward()
    assert scaler.step(optimizer) is None
    scaler.update()
    assert calls == [((1,), "max")] and scaler.get_scale() == 2.0
    for old, parameter in zip(before, model.parameters()):
        np.testing.assert_array_equal(old, parameter.numpy())

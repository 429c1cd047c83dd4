"""gg.optim.lr_scheduler: learning-rate sequences equal PyTorch's, state dicts resume."""
import math
import os
import tempfile
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.optim import lr_scheduler as sched

STEPS = 40
LRS = (0.1, 0.03)       # two parameter groups with different rates


def _our_optimizer(kind="SGD", **options):
    groups = [{"params": [gg.tensor([1.0], requires_grad=True)], "lr": LRS[0]},
              {"params": [gg.tensor([2.0], requires_grad=True)], "lr": LRS[1]}]
    return getattr(gg.optim, kind)(groups, **options)


def _torch_optimizer(torch, kind="SGD", **options):
    groups = [{"params": [torch.tensor([1.0], requires_grad=True)], "lr": LRS[0]},
              {"params": [torch.tensor([2.0], requires_grad=True)], "lr": LRS[1]}]
    return getattr(torch.optim, kind)(groups, **options)


CASES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("StepLR", dict(step_size=1, gamma=0.9)),
    ("MultiStepLR", dict(milestones=[3, 10, 10, 25], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=10)),                # several full cycles in 40 steps
    ("CosineAnnealingLR", dict(T_max=13, eta_min=0.001)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.7, total_iters=12)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.0, total_iters=30)),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=STEPS)),
    ("OneCycleLR", dict(max_lr=[1.0, 0.4], total_steps=STEPS, anneal_strategy="linear")),
    ("OneCycleLR", dict(max_lr=0.5, epochs=4, steps_per_epoch=10, three_phase=True)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=STEPS, pct_start=0.25, three_phase=True,
                        anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=STEPS, cycle_momentum=False)),
]


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_sequence_matches_torch(name, options, kind):
    torch = pytest.importorskip("torch")
    optimizer_options = dict(momentum=0.9) if kind == "SGD" else {}
    ours_opt = _our_optimizer(kind, **optimizer_options)
    theirs_opt = _torch_optimizer(torch, kind, **optimizer_options)
    ours = getattr(sched, name)(ours_opt, **options)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **options)
    # OneCycleLR may not step past total_steps; the others run the full 40.
    steps = options.get("total_steps", STEPS) - 1 if name == "OneCycleLR" else STEPS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(steps + 1):
            np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-13, atol=1e-16,
                                       err_msg=f"{name} step {step}")
            assert [g["lr"] for g in ours_opt.param_groups] == pytest.approx(
                [g["lr"] for g in theirs_opt.param_groups], rel=1e-13)
            if name == "OneCycleLR" and options.get("cycle_momentum", True):
                key = "momentum" if kind == "SGD" else "betas"
                for ours_group, theirs_group in zip(ours_opt.param_groups, theirs_opt.param_groups, strict=True):
                    np.testing.assert_allclose(np.ravel(ours_group[key]), np.ravel(theirs_group[key]), rtol=1e-13)
            if step < steps:
                ours_opt.step()
                theirs_opt.step()
                ours.step()
                theirs.step()


def _metrics(rng, count):
    """A noisy loss that improves, plateaus, improves a little, then plateaus."""
    trend = np.concatenate([np.linspace(1.0, 0.5, 10), np.full(12, 0.5), np.linspace(0.5, 0.49, 6),
                            np.full(count, 0.49)])[:count]
    return trend + rng.normal(0, 0.002, count)


PLATEAU_CASES = [
    dict(),
    dict(patience=2),
    dict(patience=0, factor=0.5),
    dict(mode="max", patience=3, factor=0.5),
    dict(patience=1, threshold=0.05, threshold_mode="rel"),
    dict(patience=1, threshold=0.01, threshold_mode="abs"),
    dict(mode="max", patience=1, threshold=0.01, threshold_mode="abs"),
    dict(patience=1, cooldown=4, factor=0.5),
    dict(patience=0, factor=0.5, min_lr=0.01),
    dict(patience=0, factor=0.5, min_lr=[0.02, 0.001]),
    dict(patience=0, factor=0.9, eps=0.005),
]


@pytest.mark.parametrize("options", PLATEAU_CASES, ids=[str(i) for i in range(len(PLATEAU_CASES))])
def test_reduce_on_plateau_matches_torch(options, rng):
    torch = pytest.importorskip("torch")
    metrics = _metrics(rng, 60)
    if options.get("mode") == "max":
        metrics = -metrics
    ours_opt, theirs_opt = _our_optimizer(), _torch_optimizer(torch)
    ours = sched.ReduceLROnPlateau(ours_opt, **options)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **options)
    reductions = 0
    for step, metric in enumerate(metrics):
        before = ours.get_last_lr()
        ours.step(float(metric))
        theirs.step(float(metric))
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15), f"step {step}"
        assert ours.num_bad_epochs == theirs.num_bad_epochs and ours.cooldown_counter == theirs.cooldown_counter
        reductions += ours.get_last_lr() != before
    assert reductions > 0, "the metric sequence should trigger at least one reduction"


def test_reduce_on_plateau_accepts_a_tensor_metric():
    optimizer = _our_optimizer()
    scheduler = sched.ReduceLROnPlateau(optimizer, patience=0)
    scheduler.step(gg.tensor(1.0))
    scheduler.step(gg.tensor([2.0]))
    assert scheduler.get_last_lr() == pytest.approx([LRS[0] * 0.1, LRS[1] * 0.1])


@pytest.mark.parametrize("name, options", [
    ("StepLR", dict(step_size=4, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 9])),
    ("CosineAnnealingLR", dict(T_max=6, eta_min=0.001)),
    ("LinearLR", dict(start_factor=0.2, total_iters=8)),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=20, three_phase=True)),
    ("ExponentialLR", dict(gamma=0.8)),
])
def test_state_dict_through_a_file_resumes_the_sequence(name, options):
    straight_opt = _our_optimizer(momentum=0.9)
    straight = getattr(sched, name)(straight_opt, **options)
    expected = []
    for _ in range(15):
        straight_opt.step()
        straight.step()
        expected.append(straight.get_last_lr())

    first_opt = _our_optimizer(momentum=0.9)
    first = getattr(sched, name)(first_opt, **options)
    for _ in range(7):
        first_opt.step()
        first.step()
    path = os.path.join(tempfile.mkdtemp(), "sched.safetensors")
    gg.save({"optimizer": first_opt.state_dict(), "scheduler": first.state_dict()}, path)
    saved = gg.load(path)

    resumed_opt = _our_optimizer(momentum=0.9)
    resumed = getattr(sched, name)(resumed_opt, **options)     # before the optimizer's state, as in PyTorch
    resumed_opt.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["scheduler"])
    got = []
    for _ in range(8):
        resumed_opt.step()
        resumed.step()
        got.append(resumed.get_last_lr())
    np.testing.assert_allclose(got, expected[7:], rtol=1e-15)


def test_reduce_on_plateau_state_dict_resumes(rng):
    metrics = _metrics(rng, 40)
    straight = sched.ReduceLROnPlateau(_our_optimizer(), patience=1, cooldown=2)
    expected = []
    for metric in metrics:
        straight.step(metric)
        expected.append(straight.get_last_lr())
    first_opt = _our_optimizer()
    first = sched.ReduceLROnPlateau(first_opt, patience=1, cooldown=2)
    for metric in metrics[:20]:
        first.step(metric)
    path = os.path.join(tempfile.mkdtemp(), "plateau.safetensors")
    gg.save({"optimizer": first_opt.state_dict(), "scheduler": first.state_dict()}, path)
    saved = gg.load(path)
    resumed_opt = _our_optimizer()
    resumed = sched.ReduceLROnPlateau(resumed_opt)
    resumed_opt.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["scheduler"])
    assert resumed.patience == 1 and resumed.best == first.best
    got = []
    for metric in metrics[20:]:
        resumed.step(metric)
        got.append(resumed.get_last_lr())
    assert got == expected[20:]


def test_scheduler_drives_the_optimizer_update():
    w = gg.tensor([0.0], requires_grad=True)
    optimizer = gg.optim.SGD([w], lr=1.0)
    scheduler = sched.StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(3):
        w.grad = gg.tensor([-1.0])
        optimizer.step()
        scheduler.step()
    assert w.numpy().tolist() == [1.75]     # 1 + 0.5 + 0.25


def test_onecycle_refuses_to_step_past_total_steps():
    optimizer = _our_optimizer(momentum=0.9)
    scheduler = sched.OneCycleLR(optimizer, max_lr=1.0, total_steps=3)
    scheduler.step()
    scheduler.step()
    scheduler.step()
    with pytest.raises(ValueError, match="total_steps=3"):
        scheduler.step()


@pytest.mark.parametrize("build, pattern", [
    (lambda o: sched.StepLR(o, step_size=0), "step_size"),
    (lambda o: sched.MultiStepLR(o, milestones=[5, 2]), "increasing"),
    (lambda o: sched.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: sched.LinearLR(o, start_factor=0.0), "start_factor"),
    (lambda o: sched.LinearLR(o, end_factor=1.5), "end_factor"),
    (lambda o: sched.OneCycleLR(o, max_lr=1.0), "total_steps"),
    (lambda o: sched.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
    (lambda o: sched.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5), "pct_start"),
    (lambda o: sched.OneCycleLR(o, max_lr=[1.0, 2.0, 3.0], total_steps=10), "2 parameter group"),
    (lambda o: sched.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: sched.ReduceLROnPlateau(o, mode="up"), "mode"),
    (lambda o: sched.ReduceLROnPlateau(o, threshold_mode="pct"), "threshold_mode"),
    (lambda o: sched.ReduceLROnPlateau(o, min_lr=[0.1]), "min_lr"),
])
def test_invalid_arguments_raise_value_error(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build(_our_optimizer(momentum=0.9))


def test_onecycle_needs_momentum_when_cycling_it():
    with pytest.raises(ValueError, match="cycle_momentum=False"):
        sched.OneCycleLR(_our_optimizer("Adagrad"), max_lr=1.0, total_steps=10)


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="optimizer"):
        sched.StepLR(object(), step_size=2)


def test_cosine_closed_form_after_one_half_cycle():
    optimizer = _our_optimizer()
    scheduler = sched.CosineAnnealingLR(optimizer, T_max=8, eta_min=0.0)
    for t in range(1, 9):
        optimizer.step()
        scheduler.step()
        assert scheduler.get_last_lr()[0] == pytest.approx(LRS[0] * (1 + math.cos(math.pi * t / 8)) / 2, abs=1e-15)

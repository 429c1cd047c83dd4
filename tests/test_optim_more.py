"""The optimizers and schedulers added for PyTorch programs, step for step against torch."""

import math

import numpy as np
import pytest

import gpugrad as gg

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (4,)]


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]
    ours = [gg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def _run_pair(make_ours, make_theirs, steps=12, seed=0):
    """The same parameters and the same gradients for ``steps`` steps; compare every step."""
    ours, theirs = _pair(seed)
    opt_ours, opt_theirs = make_ours(ours), make_theirs(theirs)
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        for p, q in zip(ours, theirs, strict=True):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad = gg.tensor(g)
            q.grad = torch.tensor(g)
        opt_ours.step()
        opt_theirs.step()
        for p, q in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    return opt_ours, opt_theirs, ours


CASES = {
    "Adadelta": dict(),
    "Adadelta-options": dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1),
    "Adadelta-maximize": dict(maximize=True),
    "Adamax": dict(),
    "Adamax-options": dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.05),
    "NAdam": dict(),
    "NAdam-options": dict(lr=0.01, betas=(0.85, 0.99), weight_decay=0.1, momentum_decay=1e-2),
    "NAdam-decoupled": dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "RAdam": dict(),
    "RAdam-options": dict(lr=0.01, betas=(0.9, 0.9), weight_decay=0.1),   # rho_t > 5 early
    "RAdam-decoupled": dict(lr=0.01, betas=(0.9, 0.9), weight_decay=0.1, decoupled_weight_decay=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_matches_torch(case):
    name = case.split("-")[0]
    kwargs = CASES[case]
    _run_pair(lambda ps: getattr(gg.optim, name)(ps, **kwargs), lambda ps: getattr(torch.optim, name)(ps, **kwargs),
              steps=15)


@pytest.mark.parametrize("name", ["Adadelta", "Adamax", "NAdam", "RAdam"])
def test_param_groups_and_state_dict_resume(name, tmp_path):
    """Two groups with different lr; a copy resumed from the state dict continues identically."""
    ours, theirs = _pair(3)
    groups = lambda ps: [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.05}]  # noqa: E731
    opt = getattr(gg.optim, name)(groups(ours), lr=0.01)
    ref = getattr(torch.optim, name)(groups(theirs), lr=0.01)
    rng = np.random.default_rng(5)

    def feed():
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in ours]
        for p, q, g in zip(ours, theirs, grads, strict=True):
            p.grad, q.grad = gg.tensor(g), torch.tensor(g)
    for _ in range(4):
        feed()
        opt.step()
        ref.step()
    saved = opt.state_dict()
    assert sorted(saved["state"][0]) == sorted(ref.state_dict()["state"][0])
    clones = [gg.tensor(p.numpy().copy(), requires_grad=True) for p in ours]
    resumed = getattr(gg.optim, name)(groups(clones), lr=0.01)
    gg.save(saved, tmp_path / "opt.ggz")
    resumed.load_state_dict(gg.load(tmp_path / "opt.ggz"))
    for _ in range(4):
        feed()
        for c, p in zip(clones, ours, strict=True):
            c.grad = gg.tensor(p.grad.numpy().copy())
        opt.step()
        ref.step()
        resumed.step()
    for p, q, c in zip(ours, theirs, clones, strict=True):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(c.numpy(), p.numpy())


@pytest.mark.parametrize("name, bad", [("Adadelta", dict(rho=1.5)), ("Adamax", dict(betas=(1.0, 0.9))),
                                       ("NAdam", dict(lr=-1.0)), ("RAdam", dict(eps=float("nan"))),
                                       ("LBFGS", dict(line_search_fn="armijo")), ("LBFGS", dict(max_iter=0))])
def test_bad_options_rejected(name, bad):
    with pytest.raises(ValueError, match=name):
        getattr(gg.optim, name)([gg.zeros(2, requires_grad=True)], **bad)


def _rosenbrock_pair(line_search_fn, history_size=100, max_iter=20):
    start = np.array([-1.5, 2.0, 0.5, -0.3], dtype=np.float32)
    w = gg.tensor(start, requires_grad=True)
    v = torch.tensor(start, requires_grad=True)
    opt = gg.optim.LBFGS([w], lr=1, max_iter=max_iter, history_size=history_size, line_search_fn=line_search_fn)
    ref = torch.optim.LBFGS([v], lr=1, max_iter=max_iter, history_size=history_size, line_search_fn=line_search_fn)

    def loss_of(x, lib):
        return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()

    def closure_ours():
        opt.zero_grad()
        loss = loss_of(w, gg)
        loss.backward()
        return loss

    def closure_theirs():
        ref.zero_grad()
        loss = loss_of(v, torch)
        loss.backward()
        return loss
    return w, v, opt, ref, closure_ours, closure_theirs


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_matches_torch(line_search_fn):
    lr_small = line_search_fn is None
    w, v, opt, ref, closure_ours, closure_theirs = _rosenbrock_pair(line_search_fn, history_size=5, max_iter=8)
    if lr_small:
        for o in (opt, ref):
            o.param_groups[0]["lr"] = 0.05
    for _ in range(3):
        loss_ours = opt.step(closure_ours)
        loss_theirs = ref.step(closure_theirs)
        assert math.isclose(loss_ours.item(), loss_theirs.item(), rel_tol=1e-4, abs_tol=1e-6)
        np.testing.assert_allclose(w.numpy(), v.detach().numpy(), rtol=2e-4, atol=1e-5)
    assert opt.state[w]["func_evals"] == ref.state[v]["func_evals"]
    assert opt.state[w]["n_iter"] == ref.state[v]["n_iter"]


def test_lbfgs_converges_and_needs_a_closure():
    target = gg.tensor([1.0, -2.0, 3.0])
    w = gg.zeros(3, requires_grad=True)
    opt = gg.optim.LBFGS([w], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((w - target) ** 2 * gg.tensor([1.0, 10.0, 100.0])).sum()
        loss.backward()
        return loss
    opt.step(closure)
    np.testing.assert_allclose(w.numpy(), target.numpy(), atol=1e-4)
    with pytest.raises(TypeError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="one parameter group"):
        gg.optim.LBFGS([{"params": [gg.zeros(1, requires_grad=True)]},
                        {"params": [gg.zeros(1, requires_grad=True)]}])


# --------------------------------------------------------------------------
# Schedulers: the same rate (and momentum) sequence as torch's.
# --------------------------------------------------------------------------
def _optimizers(kind="SGD", **options):
    rates = (0.1, 0.03)
    ours = getattr(gg.optim, kind)([{"params": [gg.zeros(1, requires_grad=True)], "lr": lr} for lr in rates],
                                   **options)
    theirs = getattr(torch.optim, kind)([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr}
                                         for lr in rates], **options)
    return ours, theirs


class Halving:
    """A callable object: its attributes are saved in LambdaLR's state dict."""

    def __init__(self):
        self.base = 0.5

    def __call__(self, epoch):
        return self.base ** (epoch // 3)


SCHEDULES = {
    "LambdaLR": (lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.9 ** e), "SGD", {}),
    "LambdaLR-per-group": (lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(
        opt, [lambda e: 1 / (e + 1), Halving()]), "SGD", {}),
    "CyclicLR": (lambda lib, opt: lib.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=4),
                 "SGD", dict(momentum=0.9)),
    "CyclicLR-triangular2": (lambda lib, opt: lib.optim.lr_scheduler.CyclicLR(
        opt, [0.01, 0.001], [0.1, 0.05], step_size_up=3, step_size_down=5, mode="triangular2"),
        "SGD", dict(momentum=0.9)),
    "CyclicLR-exp_range-adam": (lambda lib, opt: lib.optim.lr_scheduler.CyclicLR(
        opt, 0.001, 0.01, step_size_up=5, mode="exp_range", gamma=0.97), "Adam", {}),
    "CyclicLR-no-momentum": (lambda lib, opt: lib.optim.lr_scheduler.CyclicLR(
        opt, 0.01, 0.1, step_size_up=2, cycle_momentum=False, scale_fn=lambda x: 0.8 ** x,
        scale_mode="iterations"), "SGD", {}),
    "CosineAnnealingWarmRestarts": (lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=5), "SGD", {}),
    "CosineAnnealingWarmRestarts-mult": (lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=3, T_mult=2, eta_min=0.001), "SGD", {}),
    "SequentialLR": (lambda lib, opt: lib.optim.lr_scheduler.SequentialLR(
        opt, [lib.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5),
              lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)], milestones=[5]), "SGD", {}),
    "SequentialLR-three": (lambda lib, opt: lib.optim.lr_scheduler.SequentialLR(
        opt, [lib.optim.lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=8),
              lib.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
              lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7)], milestones=[4, 12]), "SGD", {}),
    "ChainedScheduler": (lambda lib, opt: lib.optim.lr_scheduler.ChainedScheduler(
        [lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95),
         lib.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)]), "SGD", {}),
    "ChainedScheduler-warmup": (lambda lib, opt: lib.optim.lr_scheduler.ChainedScheduler(
        [lib.optim.lr_scheduler.LinearLR(opt, start_factor=0.3, total_iters=6),
         lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=9)]), "SGD", {}),
}


@pytest.mark.parametrize("case", sorted(SCHEDULES))
def test_scheduler_matches_torch(case):
    make, kind, options = SCHEDULES[case]
    ours_opt, theirs_opt = _optimizers(kind, **options)
    ours, theirs = make(gg, ours_opt), make(torch, theirs_opt)
    for step in range(30):
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12, atol=1e-15,
                                   err_msg=f"step {step}")
        for g, h in zip(ours_opt.param_groups, theirs_opt.param_groups, strict=True):
            assert math.isclose(g["lr"], h["lr"], rel_tol=1e-12, abs_tol=1e-15)
            for key in ("momentum", "betas"):
                if key in h:
                    np.testing.assert_allclose(np.asarray(g[key]), np.asarray(h[key]), rtol=1e-12)
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


def test_warm_restarts_fractional_epochs_match_torch():
    ours_opt, theirs_opt = _optimizers()
    ours = gg.optim.lr_scheduler.CosineAnnealingWarmRestarts(ours_opt, T_0=4, T_mult=2)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(theirs_opt, T_0=4, T_mult=2)
    for epoch in np.arange(0, 20, 0.35):
        ours.step(float(epoch))
        theirs.step(float(epoch))
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
    with pytest.raises(ValueError, match="non-negative"):
        ours.step(-1.0)


@pytest.mark.parametrize("case", ["LambdaLR-per-group", "CyclicLR", "CosineAnnealingWarmRestarts-mult",
                                  "SequentialLR-three", "ChainedScheduler"])
def test_scheduler_state_dict_resumes(case, tmp_path):
    make, kind, options = SCHEDULES[case]
    opt, _ = _optimizers(kind, **options)
    sched = make(gg, opt)
    for _ in range(7):
        opt.step()
        sched.step()
    if case.startswith("LambdaLR"):
        sched.lr_lambdas[1].base = 0.25
    gg.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, tmp_path / "s.ggz")
    expected = []
    for _ in range(10):
        opt.step()
        sched.step()
        expected.append(sched.get_last_lr())
    opt2, _ = _optimizers(kind, **options)
    sched2 = make(gg, opt2)
    saved = gg.load(tmp_path / "s.ggz")
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    if case.startswith("LambdaLR"):
        assert sched2.lr_lambdas[1].base == 0.25
    got = []
    for _ in range(10):
        opt2.step()
        sched2.step()
        got.append(sched2.get_last_lr())
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_scheduler_combinations_reject_bad_input():
    opt, _ = _optimizers()
    other, _ = _optimizers()
    s1 = gg.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    s2 = gg.optim.lr_scheduler.ExponentialLR(other, gamma=0.9)
    with pytest.raises(ValueError, match="different optimizer"):
        gg.optim.lr_scheduler.ChainedScheduler([s1, s2])
    with pytest.raises(ValueError, match="milestones"):
        gg.optim.lr_scheduler.SequentialLR(opt, [s1], milestones=[3])
    plateau = gg.optim.lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        gg.optim.lr_scheduler.SequentialLR(opt, [s1, plateau], milestones=[3])
    with pytest.raises(ValueError, match="cycle_momentum"):
        gg.optim.lr_scheduler.CyclicLR(gg.optim.Adagrad([gg.zeros(1, requires_grad=True)]), 0.1, 1.0)
    with pytest.raises(ValueError, match="T_0"):
        gg.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(TypeError, match="callable"):
        gg.optim.lr_scheduler.LambdaLR(opt, 0.5)


def test_lbfgs_state_dict_resumes_exactly(tmp_path):
    def build():
        w = gg.tensor([-1.5, 2.0], requires_grad=True)
        b = gg.tensor([0.5], requires_grad=True)
        opt = gg.optim.LBFGS([w, b], max_iter=3, history_size=4, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = (100 * (w[1] - w[0] ** 2) ** 2 + (1 - w[0]) ** 2 + (b ** 4).sum()).sum()
            loss.backward()
            return loss
        return w, b, opt, closure
    w, b, opt, closure = build()
    for _ in range(3):
        opt.step(closure)
    gg.save({"opt": opt.state_dict(), "w": w.detach(), "b": b.detach()}, tmp_path / "lbfgs.ggz")
    for _ in range(3):
        opt.step(closure)
    w2, b2, opt2, closure2 = build()
    saved = gg.load(tmp_path / "lbfgs.ggz")
    with gg.no_grad():
        w2.copy_(saved["w"])
        b2.copy_(saved["b"])
    opt2.load_state_dict(saved["opt"])
    for _ in range(3):
        opt2.step(closure2)
    np.testing.assert_array_equal(w2.numpy(), w.numpy())
    np.testing.assert_array_equal(b2.numpy(), b.numpy())
    bad = saved["opt"]
    bad["state"][0]["d"] = gg.zeros(5)
    with pytest.raises(ValueError, match="different model"):
        opt2.load_state_dict(bad)


def test_combined_scheduler_load_is_all_or_nothing():
    opt, _ = _optimizers()
    chained = gg.optim.lr_scheduler.ChainedScheduler([gg.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
                                                      gg.optim.lr_scheduler.StepLR(opt, step_size=2)])
    for _ in range(3):
        chained.step()
    state = chained.state_dict()
    before = [dict(s.__dict__) for s in chained._schedulers]
    broken = dict(state)
    broken["_schedulers"] = [dict(state["_schedulers"][0], last_epoch=99), {"not_a_key": 1}]
    with pytest.raises(ValueError, match="unknown keys"):
        chained.load_state_dict(broken)
    assert [s.__dict__ for s in chained._schedulers] == before


@pytest.mark.parametrize("key, bad, error", [("mu_product", float("nan"), ValueError),
                                              ("mu_product", "x", TypeError),
                                              ("step", -1, ValueError)])
def test_nadam_refuses_bad_scalar_state_and_changes_nothing(key, bad, error):
    w = gg.ones(3, requires_grad=True)
    opt = gg.optim.NAdam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    good = opt.state_dict()
    before = {k: (v.numpy().copy() if hasattr(v, "numpy") else v) for k, v in opt.state[w].items()}
    broken = {"state": {0: dict(good["state"][0], **{key: bad})}, "param_groups": good["param_groups"]}
    with pytest.raises(error, match=key):
        opt.load_state_dict(broken)
    after = {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in opt.state[w].items()}
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_lbfgs_refuses_a_negative_iteration_count():
    w = gg.ones(2, requires_grad=True)
    opt = gg.optim.LBFGS([w], max_iter=2)

    def closure():
        opt.zero_grad()
        loss = ((w - 3) ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    state = opt.state_dict()
    state["state"][0]["n_iter"] = -2
    with pytest.raises(ValueError, match="n_iter"):
        opt.load_state_dict(state)

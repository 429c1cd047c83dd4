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
        for p, q in zip(ours, theirs):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad = gg.tensor(g)
            q.grad = torch.tensor(g)
        opt_ours.step()
        opt_theirs.step()
        for p, q in zip(ours, theirs):
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
        for p, q, g in zip(ours, theirs, grads):
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
        for c, p in zip(clones, ours):
            c.grad = gg.tensor(p.grad.numpy().copy())
        opt.step()
        ref.step()
        resumed.step()
    for p, q, c in zip(ours, theirs, clones):
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

"""GraphRetainedWarning warns about graphs that pile up, not about correct code (issue 16 point 4).

``optimizer.step()`` warns when the freed graphs of earlier steps that are
still alive grow in number step after step (``total += loss``,
``losses.append(loss)``).  A bounded number of alive graphs is what correct
programs have: the other model's loss in a GAN's alternating steps, the
``loss`` variable of a loop that has finished.  The correct programs below
run with the warning turned into an error.
"""

import warnings

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn


def _strict():
    """Context: a GraphRetainedWarning raises."""
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("error", gg.GraphRetainedWarning)
    return context


def _bce_with_logits(logits, target):
    """Binary cross-entropy on logits, written out (stable for the small logits here)."""
    return (F.softplus(logits) - logits * target).mean()


def test_a_gan_loop_with_two_models_and_two_optimizers_does_not_warn(device):
    gg.manual_seed(0)
    generator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)).to(device)
    discriminator = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)).to(device)
    optimizer_g = gg.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    optimizer_d = gg.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)
    real_label = gg.ones(32, 1, device=device)
    fake_label = gg.zeros(32, 1, device=device)
    losses_d, losses_g = [], []
    context = _strict()
    try:
        for _ in range(30):
            real = gg.tensor(rng.normal(3.0, 0.5, (32, 2)).astype(np.float32), device=device)
            noise = gg.tensor(rng.standard_normal((32, 4)).astype(np.float32), device=device)
            # (1) the discriminator: real batch, then a detached fake batch (DCGAN tutorial style)
            discriminator.zero_grad()
            err_d_real = _bce_with_logits(discriminator(real), real_label)
            err_d_real.backward()
            fake = generator(noise)
            err_d_fake = _bce_with_logits(discriminator(fake.detach()), fake_label)
            err_d_fake.backward()
            err_d = err_d_real + err_d_fake
            optimizer_d.step()
            # (2) the generator, through the discriminator
            generator.zero_grad()
            err_g = _bce_with_logits(discriminator(fake), real_label)
            err_g.backward()
            optimizer_g.step()
            losses_d.append(err_d.item())
            losses_g.append(err_g.item())
    finally:
        context.__exit__(None, None, None)
    assert all(np.isfinite(losses_d + losses_g))


def test_a_loss_left_over_from_a_finished_loop_does_not_warn_when_a_new_model_trains(device):
    gg.manual_seed(0)
    x = gg.randn(16, 3, device=device)
    y = gg.randn(16, 1, device=device)
    context = _strict()
    try:
        first = nn.Linear(3, 1).to(device)
        optimizer = gg.optim.SGD(first.parameters(), lr=0.1)
        for _ in range(10):
            optimizer.zero_grad()
            loss = F.mse_loss(first(x), y)
            loss.backward()
            optimizer.step()
        print_me = loss            # the last loss stays alive, with its (freed) graph, as in any script

        second = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).to(device)
        optimizer2 = gg.optim.SGD(second.parameters(), lr=0.1, momentum=0.9)
        for _ in range(20):
            optimizer2.zero_grad()
            loss2 = F.mse_loss(second(x), y)
            loss2.backward()
            optimizer2.step()
    finally:
        context.__exit__(None, None, None)
    assert print_me.item() > 0


def test_keeping_only_the_best_loss_with_its_graph_does_not_warn(device):
    w = gg.tensor([3.0, -2.0], device=device, requires_grad=True)
    optimizer = gg.optim.SGD([w], lr=0.1)
    best = None
    context = _strict()
    try:
        for _ in range(20):
            optimizer.zero_grad()
            loss = (w * w).sum()
            loss.backward()
            optimizer.step()
            if best is None or loss.item() < best.item():
                best = loss            # one kept graph at a time: bounded, not a leak
    finally:
        context.__exit__(None, None, None)


@pytest.mark.parametrize("mistake", ["total", "list"])
def test_graphs_that_pile_up_step_after_step_are_reported(device, mistake):
    w = gg.tensor([3.0, -2.0], device=device, requires_grad=True)
    optimizer = gg.optim.SGD([w], lr=0.01)
    total, kept = 0.0, []
    with pytest.warns(gg.GraphRetainedWarning, match=r"loss\.item\(\)") as caught:
        for _ in range(5):
            optimizer.zero_grad()
            loss = (w * w).sum()
            loss.backward()
            optimizer.step()               # the warning points here
            if mistake == "total":
                total = total + loss
            else:
                kept.append(loss)
    assert caught[0].filename == __file__
    assert "piling up" in str(caught[0].message)

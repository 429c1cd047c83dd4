"""On a real card: a captured training step (forward + backward + optimizer step) replays to the eager numbers.

Skips on the CPU and on the CuPy stand-in (which cannot capture); benchmarks/gpu_check.sh runs it.
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn


@pytest.fixture
def card(device, real_gpu):
    if device != "cuda":
        pytest.skip("CUDA graphs need CUDA")
    return device


def _setup(device):
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).to(device)
    optimizer = gg.optim.SGD(model.parameters(), lr=0.05)
    rng = np.random.default_rng(0)
    batches = [(gg.tensor(rng.standard_normal((32, 8)).astype(np.float32), device=device),
                gg.tensor(rng.standard_normal((32, 4)).astype(np.float32), device=device)) for _ in range(6)]
    return model, optimizer, batches


def _step(model, optimizer, x, y):
    optimizer.zero_grad(set_to_none=False)
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    optimizer.step()
    return loss.detach()


def test_a_captured_training_step_equals_the_eager_one(card):
    model, optimizer, batches = _setup(card)
    eager = [_step(model, optimizer, x, y).item() for x, y in batches]
    eager_params = [p.numpy().copy() for p in model.parameters()]

    model, optimizer, batches = _setup(card)
    _step(model, optimizer, *batches[0])                  # warm-up: the same first step, eagerly
    static_x, static_y = batches[1][0].clone(), batches[1][1].clone()
    graph = gg.cuda.CUDAGraph()
    with gg.cuda.graph(graph):                            # capture queues nothing for execution
        static_loss = _step(model, optimizer, static_x, static_y)
    captured = []
    for x, y in batches[1:]:
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
        captured.append(static_loss.item())
    np.testing.assert_allclose(captured, eager[1:], rtol=1e-5)
    for p, expected in zip(model.parameters(), eager_params):
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_make_graphed_callables_equals_eager_on_the_card(card):
    def run(graphed):
        gg.manual_seed(3)
        model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4)).to(card)
        optimizer = gg.optim.SGD(model.parameters(), lr=0.05)
        _, _, batches = _setup(card)
        forward = gg.cuda.make_graphed_callables(model, (batches[0][0].clone(),)) if graphed else model
        losses = []
        for x, y in batches:
            optimizer.zero_grad()
            loss = ((forward(x) - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses, [p.numpy().copy() for p in model.parameters()]
    eager, graphed = run(False), run(True)
    np.testing.assert_allclose(graphed[0], eager[0], rtol=1e-5)
    for a, b in zip(graphed[1], eager[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_an_adam_step_inside_a_real_capture_is_refused_and_changes_nothing(card):
    """Adam's bias corrections come from a host-side step count: a replay would repeat them, so it refuses."""
    model, _, batches = _setup(card)
    optimizer = gg.optim.Adam(model.parameters(), lr=1e-2)
    _step(model, optimizer, *batches[0])                  # warm-up: state exists, so only the step count is at issue
    before = [p.numpy().copy() for p in model.parameters()]
    graph = gg.cuda.CUDAGraph()
    with pytest.raises(gg.DeviceError, match=r"Adam\.step\(\).*step count"):
        with gg.cuda.graph(graph):
            _step(model, optimizer, *batches[1])
    assert not gg.cuda.is_current_stream_capturing()
    for p, expected in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), expected)
    assert all(int(optimizer.state[p]["step"]) == 1 for p in model.parameters())


def test_a_replay_after_an_lr_scheduler_step_is_refused_on_the_card(card):
    """The captured SGD update has lr baked in: once a scheduler changes it, replay refuses
    (PyTorch replays the old lr)."""
    model, optimizer, batches = _setup(card)
    scheduler = gg.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    _step(model, optimizer, *batches[0])
    static_x, static_y = batches[1][0].clone(), batches[1][1].clone()
    graph = gg.cuda.CUDAGraph()
    with gg.cuda.graph(graph):
        _step(model, optimizer, static_x, static_y)
    graph.replay()
    scheduler.step()
    before = [p.numpy().copy() for p in model.parameters()]
    with pytest.raises(gg.DeviceError, match=r"\['lr'\] is 0\.025 but was 0\.05"):
        graph.replay()
    for p, expected in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), expected)

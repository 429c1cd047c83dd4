"""gg.cuda capture and replay: capture_check finds each planted problem; graphed callables equal eager ones.

Real capture needs a card (tests/test_cuda_graphs_gpu.py, run by
benchmarks/gpu_check.sh); here the graphed callables run eagerly on the CPU
with the same static-shape rules.
"""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import cuda_graphs, nn

HERE = __file__


def _problems(report, kind):
    return [p for p in report.problems if p.kind == kind]


def _line_of(text):
    with open(HERE) as source:
        for number, line in enumerate(source, start=1):
            if text in line and "_line_of" not in line:
                return f"{HERE}:{number}"
    raise AssertionError(text)


def _model_and_step(extra=None, device="cpu"):
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).to(device)
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        if extra is not None:
            extra(loss, x)
        return loss.detach()
    return step


def test_a_clean_training_step_passes(device):
    x, y = gg.ones(5, 3, device=device), gg.zeros(5, 1, device=device)
    report = gg.cuda.capture_check(_model_and_step(device=device), x, y)
    assert report.ok, str(report)
    assert "nothing found" in str(report)


@pytest.mark.parametrize("plant, label", [
    (lambda loss, x: loss.item(), ".item()"),
    (lambda loss, x: float(loss), "float(tensor)"),
    (lambda loss, x: loss.tolist(), ".tolist()"),
    (lambda loss, x: loss.detach().numpy(), ".numpy()"),
    (lambda loss, x: np.asarray(x.detach()), "numpy.asarray(tensor)"),
    (lambda loss, x: print(loss), "print / str(tensor)"),
    (lambda loss, x: f"{loss}", "format(tensor) / f-string"),
    (lambda loss, x: bool(loss > 0), "bool(tensor) / if tensor"),
])
def test_host_synchronisations_are_named_with_the_users_line(plant, label, capsys):
    report = gg.cuda.capture_check(_model_and_step(plant), gg.ones(5, 3), gg.zeros(5, 1))
    syncs = _problems(report, "host-sync")
    assert [p.op for p in syncs] == [label], str(report)
    assert syncs[0].where == _line_of(f'"{label}")')              # the planted lambda's line


def test_ops_that_read_device_values_on_the_host_are_named():
    weight = gg.randn(10, 4, requires_grad=True)

    def step(index):
        return nn.functional.embedding(index, weight).sum()       # range check: a host read on CUDA
    report = gg.cuda.capture_check(step, gg.tensor([1, 2, 3]))
    assert {(p.kind, p.op) for p in report.problems} == {("host-sync", "embedding"), ("host-sync", "index_select")}
    assert {p.where for p in report.problems} == {_line_of("range check: a host read")}


def test_shapes_that_change_between_steps_are_named():
    lengths = iter([4, 4, 5, 6, 7])

    def step(x):
        n = next(lengths)
        return (x[:n] * 2).sum()                                   # the slice grows every step
    report = gg.cuda.capture_check(step, gg.ones(10), steps=3)
    changes = _problems(report, "shape-change")
    assert changes and changes[0].where == _line_of("the slice grows every step")
    assert "(5,)" in changes[0].message and "(4,)" in changes[0].message

    flips = iter([True, False, True, True])

    def branching(x):
        return (x * 2).sum() if next(flips) else x.sum()           # data-dependent control flow
    report = gg.cuda.capture_check(branching, gg.ones(3), warmup=0, steps=2)
    assert _problems(report, "shape-change")


def test_allocations_after_warm_up_are_named():
    kept = []
    model = nn.Linear(3, 1)

    def leaks(x):
        out = model(x).sum()
        kept.append(out * 1.0)                                     # kept after the step: replay rewrites it
        return out
    report = gg.cuda.capture_check(leaks, gg.ones(2, 3))
    allocations = _problems(report, "allocation")
    assert allocations and allocations[0].where == _line_of("kept after the step: replay rewrites it")

    def host_data(x):
        return (x * gg.tensor([1.0, 2.0, 3.0])).sum()              # host data copied in every step
    report = gg.cuda.capture_check(host_data, gg.ones(3))
    assert [(p.kind, p.where) for p in report.problems] == [("host-data", _line_of("host data copied in every"))]

    def wraps(x):
        return (x * gg.from_numpy(np.ones(3, dtype=np.float32))).sum()   # wraps a host array
    assert [p.op for p in gg.cuda.capture_check(wraps, gg.ones(3)).problems] == ["from_numpy"]

    def returned(x):
        y = x * 2
        return y, y.sum()                     # returned values and a kept graph are fine
    assert gg.cuda.capture_check(returned, gg.ones(3, requires_grad=True)).ok


def test_random_numbers_not_from_a_captured_generator_are_named():
    def host_draws(x):
        noise = np.random.randn(3).astype(np.float32)              # NumPy's global stream
        return x.sum() + float(noise[0])
    report = gg.cuda.capture_check(host_draws, gg.ones(3))
    assert ("random", "numpy.random.randn", _line_of("NumPy's global stream")) in {
        (p.kind, p.op, p.where) for p in report.problems}

    def reseeds(x):
        gg.manual_seed(0)                                          # reseed inside the step
        return (x * gg.rand(3)).sum()
    report = gg.cuda.capture_check(reseeds, gg.ones(3))
    assert [(p.kind, p.op) for p in report.problems] == [("random", "gg.manual_seed")]

    def device_draws(x):
        return nn.functional.dropout(x, 0.5, training=True).sum()  # the step device's generator: captured
    assert gg.cuda.capture_check(device_draws, gg.ones(8)).ok


def test_a_draw_on_another_device_than_the_steps(device):
    if device != "cuda":
        pytest.skip("needs a step on CUDA (the stand-in) drawing on the CPU")

    def step(x):
        return x * gg.rand(3).to(device)                           # drawn on the CPU, then moved
    report = gg.cuda.capture_check(step, gg.ones(3, device=device))
    assert "random" in report.kinds()


def test_capture_check_argument_errors_and_patches_undone():
    original = gg.Tensor.item
    with pytest.raises(ValueError, match="steps"):
        gg.cuda.capture_check(lambda: None, steps=1)
    with pytest.raises(TypeError, match="callable"):
        gg.cuda.capture_check(3)

    def fails(x):
        raise KeyError("boom")
    with pytest.raises(KeyError):
        gg.cuda.capture_check(fails, gg.ones(1), warmup=0)
    assert gg.Tensor.item is original and np.random.randn.__module__ != cuda_graphs.__name__


# ---------------------------------------------------------------------------
# Graphed callables
# ---------------------------------------------------------------------------
def _train(graphed_or_model, model, x, y, steps=3):
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for i in range(steps):
        optimizer.zero_grad()
        loss = ((graphed_or_model(x * (i + 1)) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, [p.numpy().copy() for p in model.parameters()]


def test_graphed_callables_equal_eager_on_the_cpu():
    def make():
        gg.manual_seed(1)
        return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    x, y = gg.randn(4, 3), gg.randn(4, 2)
    eager_model = make()
    expected = _train(eager_model, eager_model, x, y)
    model = make()
    static_x = x.clone()
    graphed = gg.cuda.make_graphed_callables(model, (static_x,))
    got = _train(graphed, model, x, y)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
    for a, b in zip(got[1], expected[1]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    with pytest.raises(gg.ShapeError, match="graphed with"):
        graphed(gg.ones(5, 3))


def test_graphed_callables_take_tuples_and_functions():
    def double(a, b):
        return a * 2, b + 1
    a, b = gg.ones(2, requires_grad=True), gg.zeros(3)
    graphed_double, graphed_linear = gg.cuda.make_graphed_callables(
        (double, nn.Linear(2, 2)), ((a, b), (gg.ones(1, 2),)))
    out = graphed_double(a, b)
    assert out[0].tolist() == [2.0, 2.0] and out[1].tolist() == [1.0, 1.0, 1.0]
    assert graphed_linear(gg.ones(1, 2)).shape == (1, 2)
    with pytest.raises(ValueError, match="sample_args"):
        gg.cuda.make_graphed_callables((double,), ((a, b), (a,)))
    with pytest.raises(TypeError, match="tuple of tensors"):
        gg.cuda.make_graphed_callables(double, [a, b])


def test_cuda_graphs_say_what_to_do_without_a_gpu():
    if gg.cuda.is_available():
        pytest.skip("a GPU (or the stand-in) is present")
    with pytest.raises(gg.DeviceError, match="make_graphed_callables runs the callables eagerly"), \
            gg.cuda.graph(gg.cuda.CUDAGraph()):
        pass
    with pytest.raises(RuntimeError, match="nothing captured"):
        gg.cuda.CUDAGraph().replay()


def test_a_failed_capture_on_the_standin_cleans_up(device):
    if device != "cuda":
        pytest.skip("needs CuPy (the stand-in refuses to capture)")
    import cupy
    cupy_standin = pytest.importorskip("cupy_standin")
    if cupy is not cupy_standin:
        pytest.skip("a real GPU captures: tests/test_cuda_graphs_gpu.py")
    before = cupy.cuda.get_current_stream()
    g = gg.cuda.CUDAGraph()
    with pytest.raises(cupy_standin.StandinLimitation, match="stream capture"), gg.cuda.graph(g):
        pass
    assert cupy.cuda.get_current_stream() == before and g._contexts is None
    with pytest.raises(RuntimeError, match="nothing captured"):
        g.replay()


# Optimizer steps whose update reads host-side values: what a replay would freeze.
_STEP_COUNT_OPTIMIZERS = [
    ("Adam", lambda params: gg.optim.Adam(params, lr=0.01)),
    ("AdamW", lambda params: gg.optim.AdamW(params, lr=0.01)),
    ("NAdam", lambda params: gg.optim.NAdam(params, lr=0.01)),
    ("RAdam", lambda params: gg.optim.RAdam(params, lr=0.01)),
    ("Adamax", lambda params: gg.optim.Adamax(params, lr=0.01)),
    ("Adagrad", lambda params: gg.optim.Adagrad(params, lr=0.01, lr_decay=0.1)),
]
_STEP_FREE_OPTIMIZERS = [
    ("SGD", lambda params: gg.optim.SGD(params, lr=0.1)),
    ("SGD", lambda params: gg.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)),
    ("RMSprop", lambda params: gg.optim.RMSprop(params, lr=0.01, momentum=0.5)),
    ("Adadelta", lambda params: gg.optim.Adadelta(params)),
    ("Adagrad", lambda params: gg.optim.Adagrad(params, lr=0.01)),
]


def _optimizer_step(make_optimizer):
    gg.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = make_optimizer(model.parameters())

    def step(x):
        optimizer.zero_grad(set_to_none=False)
        loss = model(x).square().mean()
        loss.backward()
        optimizer.step()
        return loss.detach()
    return model, optimizer, step


@pytest.mark.parametrize("name, make_optimizer", _STEP_COUNT_OPTIMIZERS)
def test_optimizers_that_read_the_step_count_are_named(name, make_optimizer):
    _, _, step = _optimizer_step(make_optimizer)
    report = gg.cuda.capture_check(step, gg.ones(4, 3))
    problems = _problems(report, "host-state")
    assert [p.op for p in problems] == [f"{name}.step()"], str(report)
    assert "step count" in problems[0].message and "make_graphed_callables" in problems[0].message


@pytest.mark.parametrize("name, make_optimizer", _STEP_FREE_OPTIMIZERS)
def test_step_free_optimizers_pass_after_warm_up_and_are_named_without(name, make_optimizer):
    _, _, step = _optimizer_step(make_optimizer)
    assert gg.cuda.capture_check(step, gg.ones(4, 3), warmup=1).ok
    _, optimizer, step = _optimizer_step(make_optimizer)
    report = gg.cuda.capture_check(step, gg.ones(4, 3), warmup=0)
    if optimizer.state_keys and (name != "SGD" or optimizer.param_groups[0]["momentum"] != 0):
        problems = _problems(report, "host-state")
        assert [p.op for p in problems] == [f"{name}.step()"], str(report)
        assert "warm-up" in problems[0].message
    else:                                  # plain SGD keeps no state: nothing to warm up
        assert report.ok, str(report)


@pytest.fixture
def capturing(monkeypatch):
    """This thread inside a capture, as CUDAGraph.capture_begin leaves it (no card needed)."""
    gg.cuda._note_capture(+1)
    yield
    gg.cuda._note_capture(-1)


@pytest.mark.parametrize("name, make_optimizer", _STEP_COUNT_OPTIMIZERS)
def test_a_step_count_optimizer_refuses_inside_a_capture_and_changes_nothing(name, make_optimizer, capturing):
    model, optimizer, _ = _optimizer_step(make_optimizer)
    with gg.no_grad():
        pass
    loss = model(gg.ones(4, 3)).square().mean()
    loss.backward()
    with capturing_off():
        optimizer.step()                   # warm-up, eager: state exists, parameters moved once
    before = [p.numpy().copy() for p in model.parameters()]
    state_before = {key: value for key, value in optimizer.state_dict()["state"][0].items() if key == "step"}
    assert gg.cuda.is_current_stream_capturing()
    with pytest.raises(gg.DeviceError, match=rf"{name}\.step\(\): cannot be captured in a CUDA graph"):
        optimizer.step()
    for p, expected in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), expected)
    assert {key: value for key, value in optimizer.state_dict()["state"][0].items() if key == "step"} == state_before


def capturing_off():
    """A block outside the capture the ``capturing`` fixture opened."""
    class _Off:
        def __enter__(self):
            gg.cuda._note_capture(-1)

        def __exit__(self, *exc):
            gg.cuda._note_capture(+1)
    return _Off()


def test_lbfgs_refuses_inside_a_capture(capturing):
    weight = gg.tensor([1.0, 2.0], requires_grad=True)
    optimizer = gg.optim.LBFGS([weight])

    def closure():
        optimizer.zero_grad()
        loss = (weight * weight).sum()
        loss.backward()
        return loss
    with pytest.raises(gg.DeviceError, match=r"LBFGS\.step\(\): cannot be captured"):
        optimizer.step(closure)
    assert weight.tolist() == [1.0, 2.0]


def test_capture_state_is_per_thread(capturing):
    import threading
    seen = []
    worker = threading.Thread(target=lambda: seen.append(gg.cuda.is_current_stream_capturing()))
    worker.start()
    worker.join()
    assert gg.cuda.is_current_stream_capturing() and seen == [False]


# --------------------------------------------------------------------------
# A replay refuses once a captured optimizer changed (the card-free half: the
# capture is simulated as capture_begin/capture_end leave it, launch is a fake).
# --------------------------------------------------------------------------
class _FakeLaunches:
    def __init__(self):
        self.count = 0

    def launch(self, stream=None):
        self.count += 1


class _FakeCupy:
    class cuda:  # noqa: N801 - CuPy's layout
        @staticmethod
        def get_current_stream():
            return None


def _graph_after_capturing(make_optimizer, monkeypatch):
    """(model, optimizer, graph, launches): one eager warm-up step, then a step "inside a capture"."""
    model, optimizer, step = _optimizer_step(make_optimizer)
    x = gg.ones(4, 3)
    step(x)
    gg.cuda._note_capture(+1)
    try:
        step(x)
    finally:
        stepped = gg.cuda._note_capture(-1)
    assert stepped == [optimizer]
    graph = gg.cuda.CUDAGraph()
    graph._graph = launches = _FakeLaunches()
    graph._bake(stepped)
    monkeypatch.setattr(cuda_graphs, "_require_cupy", lambda op: _FakeCupy)
    return model, optimizer, graph, launches


def test_an_unchanged_optimizer_replays(monkeypatch):
    model, optimizer, graph, launches = _graph_after_capturing(
        lambda p: gg.optim.SGD(p, lr=0.1, momentum=0.9), monkeypatch)
    graph.replay()
    with gg.no_grad():                      # in-place writes keep the memory the graph reads
        model.weight.mul_(0.5)
    model.load_state_dict(model.state_dict())
    graph.replay()
    assert launches.count == 2


def _lr_scheduler_step(model, optimizer):
    gg.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5).step()


def _set_momentum(model, optimizer):
    optimizer.param_groups[0]["momentum"] = 0.5


def _rebind_a_parameter(model, optimizer):
    model.weight.data = model.weight.detach() * 1.0


def _reload_optimizer_state(model, optimizer):
    optimizer.load_state_dict(optimizer.state_dict())


def _add_a_group(model, optimizer):
    optimizer.add_param_group({"params": [gg.zeros(2, requires_grad=True)]})


@pytest.mark.parametrize("change, wanted", [
    (_lr_scheduler_step, r"SGD\.param_groups\[0\]\['lr'\] is 0\.05 but was 0\.1 when the graph was captured"),
    (_set_momentum, r"\['momentum'\] is 0\.5 but was 0\.9"),
    (_rebind_a_parameter, r"other memory than at capture"),
    (_reload_optimizer_state, r"other memory than at capture"),
    (_add_a_group, r"has 2 parameter groups but had 1"),
])
def test_a_replay_after_the_optimizer_changed_is_refused_and_launches_nothing(change, wanted, monkeypatch):
    """A captured step bakes in lr and the memory it updates: replaying after a change would be silently stale."""
    model, optimizer, graph, launches = _graph_after_capturing(
        lambda p: gg.optim.SGD(p, lr=0.1, momentum=0.9), monkeypatch)
    change(model, optimizer)
    with pytest.raises(gg.DeviceError, match=wanted) as refused:
        graph.replay()
    assert "Capture again" in str(refused.value) and launches.count == 0
    graph.reset()
    assert graph._baked == []


def test_every_optimizer_that_steps_in_a_capture_is_baked(monkeypatch):
    first = gg.optim.SGD([gg.ones(2, requires_grad=True)], lr=0.1)
    second = gg.optim.SGD([gg.ones(2, requires_grad=True)], lr=0.2)
    gg.cuda._note_capture(+1)
    try:
        for optimizer in (first, second, first):
            for group in optimizer.param_groups:
                for param in group["params"]:
                    param.grad = gg.ones(2)
            optimizer.step()
    finally:
        stepped = gg.cuda._note_capture(-1)
    assert stepped == [first, second]
    assert not gg.cuda.is_current_stream_capturing()

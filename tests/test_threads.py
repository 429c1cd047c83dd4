"""Grad mode, anomaly mode and the engine's state are per thread (issue 11 point 2).

As in PyTorch: every thread has its own grad mode (a new thread starts with
grad enabled, whatever its parent was doing), its own anomaly mode and its
own "inside backward" state, so two threads training their own models at the
same time get exactly what they get one after the other.  Where the order of
events between threads matters, the tests force it with events instead of
hoping the scheduler interleaves them.
"""

import threading
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn
from gpugrad.autograd.tape import state

TIMEOUT = 30.0     # seconds any thread may wait for the other before the test fails


def run_in_thread(function, *args):
    """Run ``function(*args)`` in a new thread; return its result or re-raise its error."""
    outcome = {}

    def body():
        try:
            outcome["result"] = function(*args)
        except BaseException as error:   # noqa: BLE001 - handed to the test thread
            outcome["error"] = error

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the thread did not finish"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class Worker:
    """A thread that runs the steps it is handed one at a time, so a test
    decides exactly how two threads' actions interleave."""

    def __init__(self):
        self._requests = []
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while True:
            with self._ready:
                while not self._requests:
                    self._ready.wait()
                function, done, outcome = self._requests.pop(0)
            if function is None:
                return
            try:
                outcome["result"] = function()
            except BaseException as error:   # noqa: BLE001
                outcome["error"] = error
            done.set()

    def submit(self, function):
        """Start ``function`` in the worker; returns a callable that waits for its result."""
        done, outcome = threading.Event(), {}
        with self._ready:
            self._requests.append((function, done, outcome))
            self._ready.notify()

        def result():
            assert done.wait(TIMEOUT), "the worker did not finish its step"
            if "error" in outcome:
                raise outcome["error"]
            return outcome.get("result")
        return result

    def run(self, function):
        return self.submit(function)()

    def stop(self):
        with self._ready:
            self._requests.append((None, None, None))
            self._ready.notify()
        self._thread.join(TIMEOUT)


@pytest.fixture
def worker():
    thread = Worker()
    yield thread
    thread.stop()


# ----------------------------------------------------------------- grad mode
def test_a_new_thread_starts_with_grad_enabled_whatever_its_parent_does():
    with gg.no_grad():
        assert run_in_thread(gg.is_grad_enabled) is True
        assert not gg.is_grad_enabled()
    assert gg.is_grad_enabled()


def test_overlapping_no_grad_blocks_leave_both_threads_as_they_were(worker, device):
    w = gg.ones(3, device=device, requires_grad=True)
    outer = gg.no_grad()
    outer.__enter__()                                        # main: no_grad opens
    assert worker.run(lambda: (w * 2).requires_grad)         # the worker still records
    inner = worker.run(lambda: gg.no_grad().__enter__())     # worker: no_grad opens
    assert not gg.is_grad_enabled() and not worker.run(gg.is_grad_enabled)
    outer.__exit__(None, None, None)                         # main closes first
    assert gg.is_grad_enabled() and (w * 2).requires_grad
    assert not worker.run(gg.is_grad_enabled)                # the worker is still inside its block
    assert not worker.run(lambda: (w * 2).requires_grad)
    worker.run(lambda: inner.__exit__(None, None, None))
    assert worker.run(gg.is_grad_enabled) and gg.is_grad_enabled()


def test_set_grad_enabled_as_a_call_changes_only_the_calling_thread(worker, device):
    w = gg.ones(2, device=device, requires_grad=True)
    worker.run(lambda: gg.set_grad_enabled(False))
    try:
        assert gg.is_grad_enabled() and (w * 3).requires_grad
        assert not worker.run(lambda: (w * 3).requires_grad)
    finally:
        worker.run(lambda: gg.set_grad_enabled(True))
    assert worker.run(lambda: (w * 3).requires_grad)


def test_set_grad_enabled_is_a_function_context_manager_and_decorator(device):
    w = gg.ones(2, device=device, requires_grad=True)
    with gg.set_grad_enabled(False):
        assert not (w * 2).requires_grad
    assert gg.is_grad_enabled()

    @gg.set_grad_enabled(False)
    def doubled(x):
        return x * 2

    assert gg.is_grad_enabled()                              # decorating does not switch it off
    assert not doubled(w).requires_grad and gg.is_grad_enabled()
    gg.set_grad_enabled(False)
    try:
        assert not gg.is_grad_enabled() and not (w * 2).requires_grad
    finally:
        gg.set_grad_enabled(True)
    assert (w * 2).requires_grad


def test_one_threads_backward_never_stops_another_from_recording(worker, device):
    x = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    inside_backward, release = threading.Event(), threading.Event()
    seen = {}

    def hook(grad):
        seen["mode inside backward"] = gg.is_grad_enabled()
        inside_backward.set()
        assert release.wait(TIMEOUT)
        return None

    y = x * 3
    y.register_hook(hook)
    finished = worker.submit(lambda: (y * y).sum().backward())
    assert inside_backward.wait(TIMEOUT)
    # The worker is parked inside its backward pass (its grad mode off): this thread records as usual.
    w = gg.tensor([1.0, 1.0], device=device, requires_grad=True)
    z = (w * w).sum()
    assert gg.is_grad_enabled() and state.backward_depth == 0
    assert z.requires_grad and z.grad_fn is not None
    release.set()
    finished()
    assert seen["mode inside backward"] is False
    z.backward()
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])


# ------------------------------------------------------ generator decorators
def test_no_grad_on_a_generator_applies_to_its_body_not_to_the_caller(device):
    w = gg.ones(2, device=device, requires_grad=True)

    @gg.no_grad()
    def doubled(items):
        received = yield "ready"
        assert received == "go"
        for item in items:
            yield item * 2, gg.is_grad_enabled()

    generator = doubled([w, w])
    assert gg.is_grad_enabled()                  # creating it runs nothing
    assert next(generator) == "ready"
    assert gg.is_grad_enabled()                  # the caller's mode between resumptions
    first, mode = generator.send("go")
    assert not first.requires_grad and mode is False
    assert gg.is_grad_enabled() and (w * 2).requires_grad
    second, mode = next(generator)
    assert not second.requires_grad and mode is False
    with pytest.raises(StopIteration):
        next(generator)
    assert gg.is_grad_enabled()


def test_enable_grad_on_a_generator_inside_no_grad(device):
    w = gg.ones(2, device=device, requires_grad=True)

    @gg.enable_grad()
    def recorded():
        yield w * 2
        yield w * 3

    with gg.no_grad():
        values = []
        for value in recorded():
            values.append(value.requires_grad)
            assert not gg.is_grad_enabled()       # back in the caller's no_grad between yields
    assert values == [True, True]


def test_a_decorated_generator_sees_throw_and_close_under_its_mode():
    seen = []

    @gg.no_grad()
    def guarded():
        try:
            yield 1
        except ValueError:
            seen.append(("throw", gg.is_grad_enabled()))
            yield 2
        finally:
            seen.append(("finally", gg.is_grad_enabled()))

    generator = guarded()
    assert next(generator) == 1
    assert generator.throw(ValueError("x")) == 2
    generator.close()
    assert seen == [("throw", False), ("finally", False)]
    assert gg.is_grad_enabled()


def test_a_decorated_generator_returns_its_value_through_yield_from():
    @gg.no_grad()
    def inner():
        yield 1
        return gg.is_grad_enabled()

    def outer():
        result = yield from inner()
        yield result

    assert list(outer()) == [1, False]


def test_generator_decorators_match_pytorch():
    torch = pytest.importorskip("torch")

    def trace(library):
        log = []

        @library.no_grad()
        def body():
            log.append(("body", library.is_grad_enabled()))
            yield
            log.append(("body", library.is_grad_enabled()))
            yield

        generator = body()
        log.append(("caller", library.is_grad_enabled()))
        next(generator)
        log.append(("caller", library.is_grad_enabled()))
        with library.no_grad():
            next(generator)
            log.append(("caller", library.is_grad_enabled()))
        log.append(("caller", library.is_grad_enabled()))
        return log

    assert trace(gg) == trace(torch)


# ------------------------------------------------------------ anomaly mode
def test_anomaly_mode_is_per_thread(worker, device):
    def nan_in_forward():
        return gg.log(gg.tensor([-1.0], device=device)).numpy()

    with gg.detect_anomaly():
        assert state.anomaly
        assert not worker.run(lambda: state.anomaly)
        assert np.isnan(worker.run(nan_in_forward)).all()       # not in anomaly mode there
        with pytest.raises(gg.AnomalyError):
            nan_in_forward()
    assert not state.anomaly and not state.capture_sites
    opened = worker.run(lambda: gg.detect_anomaly().__enter__())
    try:
        assert np.isnan(nan_in_forward()).all()                 # the worker's mode is not ours
        with pytest.raises(gg.AnomalyError):
            worker.run(nan_in_forward)
    finally:
        worker.run(lambda: opened.__exit__(None, None, None))
    assert not worker.run(lambda: state.anomaly)


def test_detect_anomaly_on_a_generator_applies_to_its_body(device):
    @gg.detect_anomaly()
    def logs():
        yield state.anomaly
        yield gg.log(gg.tensor([-1.0], device=device))

    generator = logs()
    assert next(generator) is True
    assert not state.anomaly
    with pytest.raises(gg.AnomalyError):
        next(generator)
    assert not state.anomaly


# ------------------------------------------------------ concurrent training
def _problem(seed):
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((64, 6)).astype(np.float32)
    labels = rng.integers(0, 3, size=64)
    return inputs, labels


def _model(seed, device):
    gg.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).to(device)


class Baton:
    """Two threads take turns: :meth:`handoff` lets the other thread run until
    it hands back.  The GIL alone does not interleave two threads reliably (on
    a busy machine one can run thousands of ops before the other gets a turn),
    so the training test decides where each thread stops: in the middle of its
    backward pass, inside its no_grad block, between forward and backward."""

    def __init__(self):
        self.turn = 0
        self.finished = set()
        self.handoffs = 0
        self.condition = threading.Condition()

    def _wait_for_turn(self, me):
        other = 1 - me
        assert self.condition.wait_for(lambda: self.turn == me or other in self.finished, TIMEOUT), \
            "the other thread did not hand back"

    def start(self, me):
        with self.condition:
            self._wait_for_turn(me)

    def handoff(self, me):
        with self.condition:
            self.turn = 1 - me
            self.handoffs += 1
            self.condition.notify_all()
            self._wait_for_turn(me)

    def finish(self, me):
        with self.condition:
            self.finished.add(me)
            self.turn = 1 - me
            self.condition.notify_all()


def _train(model, problem, device, steps, baton=None, me=0):
    """SGD with momentum, a retained intermediate gradient and a no_grad evaluation
    every step.  With a ``baton``, the thread hands over between forward and
    backward, inside backward (a tensor hook) and inside the no_grad block."""
    inputs, labels = problem
    x = gg.tensor(inputs, device=device)
    y = gg.tensor(labels, device=device)
    optimizer = gg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def pause(grad=None):
        if baton is not None:
            baton.handoff(me)
        return None

    history = []
    if me == 1:
        pause()          # one step out of phase: this thread's forward meets the other's backward
    for _ in range(steps):
        optimizer.zero_grad()
        logits = model(x)
        logits.retain_grad()
        logits.register_hook(pause)                # runs inside backward, grad mode off in this thread
        loss = gg.nn.functional.cross_entropy(logits, y)
        pause()
        loss.backward()
        optimizer.step()
        assert logits.grad is not None and logits.grad.shape == logits.shape
        with gg.no_grad():
            evaluation = gg.nn.functional.cross_entropy(model(x), y)
            pause()
            assert not evaluation.requires_grad and not gg.is_grad_enabled()
        assert gg.is_grad_enabled()
        history.append((loss.item(), evaluation.item()))
    return history


def _weights(model):
    return {name: value.numpy().copy() for name, value in model.state_dict().items()}


def test_two_threads_training_at_once_end_with_the_weights_of_one_run_after_the_other(device):
    steps = 12
    problems = [_problem(1), _problem(2)]
    sequential = []
    for index in range(2):
        model = _model(10 + index, device)
        history = _train(model, problems[index], device, steps)
        sequential.append((_weights(model), history))

    models = [_model(10 + index, device) for index in range(2)]
    baton = Baton()
    results = [None, None]
    errors = []

    def train(index):
        try:
            baton.start(index)
            results[index] = _train(models[index], problems[index], device, steps, baton, index)
        except BaseException as error:   # noqa: BLE001 - reported by the test thread
            errors.append(error)
        finally:
            baton.finish(index)

    threads = [threading.Thread(target=train, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    assert baton.handoffs >= 2 * 3 * steps                    # the threads really took turns mid-step
    for index in range(2):
        weights, history = sequential[index]
        assert results[index] == history                       # every loss, bit for bit
        concurrent = _weights(models[index])
        assert concurrent.keys() == weights.keys()
        for name in weights:
            np.testing.assert_array_equal(concurrent[name], weights[name], err_msg=name)


def test_the_graph_leak_warning_does_not_judge_another_threads_graphs(worker, device):
    # The worker keeps every graph it backpropagates (and never steps); this
    # thread trains correctly.  Neither thread's check may see the other's graphs.
    w = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    kept = []

    def hoarding_backward():
        loss = (w * w).sum()
        loss.backward()
        kept.append(loss)

    optimizer = gg.optim.SGD([w], lr=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error", gg.GraphRetainedWarning)
        for _ in range(8):
            worker.run(hoarding_backward)
            optimizer.zero_grad()
            loss = (w * 3).sum()
            loss.backward()
            optimizer.step()
    # The same hoarding in this thread is reported.
    with pytest.warns(gg.GraphRetainedWarning, match="total"):
        total = 0.0
        for _ in range(6):
            optimizer.zero_grad()
            loss = (w * w).sum()
            loss.backward()
            optimizer.step()
            total = total + loss

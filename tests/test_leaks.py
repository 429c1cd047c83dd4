"""Memory does not grow with training steps (issue 7).

A training loop rebuilds the graph every step; each graph must be freed when
its loss goes away, by reference counting alone (no reference cycles left for
the garbage collector), and no cache may grow per step.  The checks:

* 10,000 steps of a tiny MLP keep the Python heap flat (tracemalloc);
* dropping a loss frees its graph with the collector disabled;
* a step leaves no gpugrad objects in reference cycles;
* on a GPU, CuPy's pool holds the same bytes after 10,000 steps as after warm-up.
"""

import gc
import tracemalloc
import weakref

import pytest

import gpugrad as gg
from gpugrad import backend

STEPS = 10_000
WARMUP = 300
DRIFT_BYTES = 1_000_000      # a leak of 100 bytes per step already crosses this


class TinyMLP:
    """A 4-8-2 MLP from raw tensors and gg.optim.SGD: the graph is rebuilt each step."""

    def __init__(self, device="cpu"):
        gg.manual_seed(0)
        self.x = gg.randn(1, 4, device=device)
        self.y = gg.randn(1, 2, device=device)
        self.params = [(gg.randn(4, 8, device=device) * 0.5).requires_grad_(),
                       gg.zeros(8, device=device, requires_grad=True),
                       (gg.randn(8, 2, device=device) * 0.5).requires_grad_(),
                       gg.zeros(2, device=device, requires_grad=True)]
        self.optimizer = gg.optim.SGD(self.params, lr=1e-3, momentum=0.9)

    def loss(self):
        w1, b1, w2, b2 = self.params
        hidden = (self.x @ w1 + b1).tanh()
        return ((hidden @ w2 + b2 - self.y) ** 2).mean()

    def step(self):
        self.optimizer.zero_grad()
        loss = self.loss()
        loss.backward()
        self.optimizer.step()
        return loss.item()


def test_ten_thousand_steps_keep_host_memory_flat():
    model = TinyMLP()
    for _ in range(WARMUP):          # fill caches (scalar constants, op dispatch, optimizer state)
        model.step()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(100):         # allocations made while tracing settle
            model.step()
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        samples = []
        for index in range(STEPS):
            model.step()
            if index % 2000 == 1999:
                samples.append(tracemalloc.get_traced_memory()[0] - baseline)
        gc.collect()
        drift = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert drift < DRIFT_BYTES, f"heap grew by {drift} bytes over {STEPS} steps (every 2000 steps: {samples})"
    # And the loop really trained (the steps were not no-ops).
    assert model.step() < TinyMLP().step()


def test_dropping_a_loss_frees_its_graph_without_the_collector():
    model = TinyMLP()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        loss = model.loss()
        node = weakref.ref(loss.grad_fn)
        del loss                                    # never backpropagated
        assert node() is None, "an unused graph survived its loss: a reference cycle keeps it"

        loss = model.loss()
        node = weakref.ref(loss.grad_fn)
        loss.backward()
        model.optimizer.step()
        del loss
        assert node() is None, "a backpropagated graph survived its loss: a reference cycle keeps it"
    finally:
        if was_enabled:
            gc.enable()


def test_a_training_step_leaves_no_gpugrad_objects_in_cycles():
    model = TinyMLP()
    for _ in range(5):
        model.step()
    gc.collect()
    flags = gc.get_debug()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)       # keep what the collector would free, to look at it
    try:
        for _ in range(50):
            model.step()
        gc.collect()
        cyclic = [obj for obj in gc.garbage if type(obj).__module__.startswith("gpugrad")]
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    assert not cyclic, f"training steps left gpugrad objects in reference cycles: {cyclic[:5]}"


def test_holding_one_loss_does_not_keep_later_graphs():
    # The guard in gg.train relies on this: a live graph is only one you hold.
    model = TinyMLP()
    kept = model.loss()
    nodes = []
    for _ in range(3):
        loss = model.loss()
        nodes.append(weakref.ref(loss.grad_fn))
        loss.backward()
        del loss
    assert [n() is None for n in nodes] == [True, True, True]
    assert kept.grad_fn is not None


def test_a_detached_loss_does_not_keep_its_graph():
    model = TinyMLP()
    loss = model.loss()
    node = weakref.ref(loss.grad_fn)
    kept = loss.detach()                 # what the leak warnings recommend keeping
    loss.backward()
    del loss
    assert node() is None, "keeping loss.detach() kept the loss's graph alive"
    assert kept.grad_fn is None


@pytest.mark.skipif(not backend.cuda_is_available(), reason="CUDA not available (no CuPy or no GPU)")
def test_ten_thousand_steps_keep_the_cupy_pool_flat():
    model = TinyMLP(device="cuda")
    for _ in range(WARMUP):
        model.step()
    gg.cuda.synchronize()
    baseline = gg.cuda.memory_stats()["used_bytes"]
    for _ in range(STEPS):
        model.step()
    gg.cuda.synchronize()
    used = gg.cuda.memory_stats()["used_bytes"]
    # Live arrays only: parameters, momenta, grads, inputs; a leak of one 512-byte block per step shows.
    assert used - baseline <= 64 * 1024, f"CuPy pool used bytes grew from {baseline} to {used}"

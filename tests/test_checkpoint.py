"""gg.checkpoint: no intermediates kept, gradients identical to the plain call, random
ops replayed, lower peak memory on a deep network."""

import gc
import tracemalloc

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd import tape
from gpugrad.autograd.transforms import CheckpointNode


def t64(values, device, requires_grad=False):
    return gg.tensor(np.asarray(values, dtype=np.float64), device=device, requires_grad=requires_grad)


class Block:
    """A Module-like block (anything with ``parameters()``): two tanh layers and a dropout mask."""

    def __init__(self, rng, width, device, drop=0.3):
        self.w1 = t64(rng.standard_normal((width, width)) / np.sqrt(width), device, requires_grad=True)
        self.w2 = t64(rng.standard_normal((width, width)) / np.sqrt(width), device, requires_grad=True)
        self.drop = drop

    def parameters(self):
        return [self.w1, self.w2]

    def __call__(self, h):
        h = (h @ self.w1).tanh()
        keep = (gg.rand(*h.shape, device=h.device, dtype=gg.float64) > self.drop).double()
        h = h * keep / (1 - self.drop)          # dropout: its mask must be the same when recomputed
        return (h @ self.w2).tanh() + h


def _network(device, depth=3, width=6, seed=0):
    rng = np.random.default_rng(seed)
    return [Block(rng, width, device) for _ in range(depth)], t64(rng.standard_normal((4, width)), device)


def _loss(blocks, x, use_checkpoint, seed=7):
    gg.manual_seed(seed)
    h = x
    for block in blocks:
        h = gg.checkpoint(block, h) if use_checkpoint else block(h)
    return (h ** 2).mean()


def _params(blocks):
    return [p for block in blocks for p in block.parameters()]


def test_gradients_identical_to_the_plain_run_with_dropout(device):
    blocks, x = _network(device)
    x.requires_grad_()
    plain = _loss(blocks, x, False)
    plain.backward()
    expected = [p.grad.numpy().copy() for p in _params(blocks)] + [x.grad.numpy().copy()]
    for p in _params(blocks) + [x]:
        p.grad = None
    checkpointed = _loss(blocks, x, True)
    assert float(checkpointed) == float(plain)
    checkpointed.backward()
    got = [p.grad.numpy() for p in _params(blocks)] + [x.grad.numpy()]
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(have, want)


def test_random_stream_after_backward_is_that_of_the_plain_run(device):
    blocks, x = _network(device)
    _loss(blocks, x, False).backward()
    after_plain = gg.rand(5, dtype=gg.float64).numpy()
    _loss(blocks, x, True).backward()       # the recomputation replays, then restores, the generators
    after_checkpoint = gg.rand(5, dtype=gg.float64).numpy()
    np.testing.assert_array_equal(after_checkpoint, after_plain)


def test_without_rng_preservation_masks_differ(device):
    blocks, x = _network(device)
    _loss(blocks, x, False).backward()
    expected = blocks[0].w1.grad.numpy().copy()
    for p in _params(blocks):
        p.grad = None
    gg.manual_seed(7)
    h = x
    for block in blocks:
        h = gg.checkpoint(block, h, preserve_rng_state=False)
    (h ** 2).mean().backward()
    assert not np.array_equal(blocks[0].w1.grad.numpy(), expected)


def test_no_intermediates_are_kept(device):
    blocks, x = _network(device, depth=1)
    x.requires_grad_()
    out = gg.checkpoint(blocks[0], x)
    node = out.grad_fn
    assert isinstance(node, CheckpointNode) and node.name == "Checkpoint"
    # The graph behind the output is the checkpoint node and the leaves it reads: no op nodes of fn.
    reachable = tape._graph_nodes([node])
    assert {type(n).__name__ for n in reachable} == {"CheckpointNode", "AccumulateGrad"}
    assert {id(n.leaf) for n in reachable if isinstance(n, tape.AccumulateGrad)} == \
        {id(x), id(blocks[0].w1), id(blocks[0].w2)}


def test_closure_parameters_get_gradients_through_backward(device):
    rng = np.random.default_rng(1)
    w = t64(rng.standard_normal((3, 3)), device, requires_grad=True)
    x = t64(rng.standard_normal((2, 3)), device)          # the input itself needs no gradient

    def layer(h):
        return (h @ w).sin()

    gg.checkpoint(layer, x).sum().backward()
    expected = x.numpy().T @ np.cos(x.numpy() @ w.numpy())
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-12)
    assert x.grad is None


def test_gg_grad_through_checkpoint_for_arguments_and_module_parameters(device):
    blocks, x = _network(device, depth=2)
    x.requires_grad_()
    plain = gg.grad(_loss(blocks, x, False), [x] + _params(blocks))
    checkpointed = gg.grad(_loss(blocks, x, True), [x] + _params(blocks))
    for want, have in zip(plain, checkpointed, strict=True):
        np.testing.assert_array_equal(have.numpy(), want.numpy())
    assert all(p.grad is None for p in _params(blocks))   # gg.grad accumulates nothing


def test_hooks_on_closure_leaves_run_once(device):
    w = t64([1.0, 2.0], device, requires_grad=True)
    calls = []

    def hook(grad):
        calls.append(1)
        return grad * 10

    w.register_hook(hook)
    x = t64([3.0, 4.0], device)
    gg.checkpoint(lambda h: h * w, x).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(w.grad.numpy(), [30.0, 40.0])


def test_several_outputs_and_keyword_arguments(device):
    x = t64([0.5, -1.0], device, requires_grad=True)

    def fn(h, scale=1.0):
        return h.exp() * scale, (h * h).sum()

    first, second = gg.checkpoint(fn, x, scale=3.0)
    (first.sum() + 2 * second).backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp([0.5, -1.0]) + 4 * np.array([0.5, -1.0]))


def test_backward_twice_needs_retain_graph(device):
    x = t64([1.0, 2.0], device, requires_grad=True)
    y = gg.checkpoint(lambda h: (h ** 3).sum(), x)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 3 * np.array([1.0, 4.0]))
    with pytest.raises(gg.AutogradError, match="second time"):
        y.backward()


def test_tensor_from_outside_that_requires_grad_must_be_an_argument(device):
    w = t64([1.0, 2.0], device, requires_grad=True)
    hidden = w * 2          # a non-leaf built outside the checkpointed function
    y = gg.checkpoint(lambda h: (h * hidden).sum(), t64([1.0, 1.0], device))
    with pytest.raises(gg.AutogradError, match="pass it to gg.checkpoint"):
        y.backward()


def test_double_backward_is_refused_clearly(device):
    x = t64([1.0, 2.0], device, requires_grad=True)
    y = gg.checkpoint(lambda h: (h ** 3).sum(), x)
    with pytest.raises(gg.AutogradError, match="create_graph=True"):
        gg.grad(y, x, create_graph=True)


def test_under_no_grad_it_just_runs(device):
    x = t64([1.0, 2.0], device, requires_grad=True)
    with gg.no_grad():
        y = gg.checkpoint(lambda h: h * 2, x)
    assert y.grad_fn is None and not y.requires_grad


def _deep_mlp(depth, width, batch, seed=0):
    rng = np.random.default_rng(seed)
    weights = [gg.tensor(rng.standard_normal((width, width)) / np.sqrt(width), requires_grad=True)
               for _ in range(depth)]
    x = gg.tensor(rng.standard_normal((batch, width)))
    return weights, x


def _segment(weights):
    def run(h):
        for w in weights:
            h = (h @ w).tanh()
        return h
    return run


def _peak_bytes(weights, x, segment_length):
    """tracemalloc peak of one forward + backward (float64, CPU)."""
    for w in weights:
        w.grad = None
    gc.collect()
    tracemalloc.start()
    try:
        h = x
        for start in range(0, len(weights), segment_length):
            segment = _segment(weights[start:start + segment_length])
            h = gg.checkpoint(segment, h) if segment_length < len(weights) else segment(h)
        (h ** 2).mean().backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, [w.grad.numpy().copy() for w in weights]


def test_checkpointing_lowers_peak_memory_of_a_deep_mlp():
    depth, width, batch = 36, 32, 1024
    weights, x = _deep_mlp(depth, width, batch)
    plain_peak, plain_grads = _peak_bytes(weights, x, depth)
    checkpointed_peak, checkpointed_grads = _peak_bytes(weights, x, 6)
    for want, have in zip(plain_grads, checkpointed_grads, strict=True):
        np.testing.assert_array_equal(have, want)
    ratio = checkpointed_peak / plain_peak
    print(f"\ncheckpoint memory (depth {depth}, width {width}, batch {batch}, float64, segments of 6): "
          f"peak {plain_peak / 2**20:.2f} MiB plain vs {checkpointed_peak / 2**20:.2f} MiB checkpointed "
          f"(ratio {ratio:.2f})")
    assert ratio < 0.5


def test_a_gg_nn_module_with_dropout(device):
    nn = gg.nn
    gg.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 2)).to(device).double()
    x = gg.randn(5, 4, dtype=gg.float64, device=device)
    gg.manual_seed(11)
    plain = gg.grad(model(x).pow(2).sum(), list(model.parameters()))
    gg.manual_seed(11)
    checkpointed = gg.grad(gg.checkpoint(model, x).pow(2).sum(), list(model.parameters()))
    for want, have in zip(plain, checkpointed, strict=True):
        np.testing.assert_array_equal(have.numpy(), want.numpy())


def test_grad_reaches_closure_parameters_through_checkpoint():
    w = gg.tensor([1.5, -0.5], dtype=gg.float64, requires_grad=True)
    x = gg.tensor([0.3, 0.7], dtype=gg.float64, requires_grad=True)

    def block(t):
        return (t * w).tanh()          # w is reached only through the closure

    plain = gg.grad(block(x).sum(), [x, w])
    checkpointed = gg.grad(gg.checkpoint(block, x).sum(), [x, w])
    for a, b in zip(plain, checkpointed, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_set_rng_state_leaves_other_device_streams_alone():
    from gpugrad import backend
    marker = object()
    fake = gg.Device("cuda:5")
    backend._generators[fake] = marker
    try:
        backend.set_rng_state(backend.get_rng_state())
        assert backend._generators[fake] is marker
    finally:
        backend._generators.pop(fake, None)

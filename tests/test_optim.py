"""gg.optim: updates equal PyTorch's step for step; groups, state dicts, errors."""
import os
import tempfile

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import backend
from gpugrad.errors import ShapeError

STEPS = 6

# (optimizer name, options): every option of every optimizer is exercised.
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.02, betas=(0.6, 0.7))),       # beta1 < 0.5: the other lerp branch
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.5, 0.99), weight_decay=0.0)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.01, maximize=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True)),   # 1 - alpha >= 0.5 lerp branch
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
]


def _ids(case):
    name, options = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in options.items())


def _grads(rng, shapes, steps):
    return [[rng.standard_normal(shape) for shape in shapes] for _ in range(steps)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_updates_match_torch(case, dtype, device, rng):
    torch = pytest.importorskip("torch")
    name, options = case
    shapes = [(3, 4), (5,), ()]
    initial = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    grads = _grads(rng, shapes, STEPS)
    ours = [gg.tensor(value, dtype=dtype, device=device, requires_grad=True) for value in initial]
    theirs = [torch.tensor(value, requires_grad=True) for value in initial]
    optimizer = getattr(gg.optim, name)(ours, **options)
    reference = getattr(torch.optim, name)(theirs, **options)
    for step in range(STEPS):
        for param, grad in zip(ours, grads[step], strict=True):
            param.grad = gg.tensor(grad.astype(dtype), dtype=dtype, device=device)
        for param, grad in zip(theirs, grads[step], strict=True):
            param.grad = torch.tensor(grad.astype(dtype))
        optimizer.step()
        reference.step()
        tolerance = dict(rtol=1e-12, atol=1e-13) if dtype == "float64" else dict(rtol=2e-5, atol=2e-6)
        for param, expected in zip(ours, theirs, strict=True):
            assert param.device == backend.as_device(device)
            assert param.dtype == np.dtype(dtype)
            np.testing.assert_allclose(param.numpy(), expected.detach().numpy(), **tolerance,
                                       err_msg=f"{name} {options} step {step}")


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_param_groups_and_skipped_params_match_torch(name, device, rng):
    torch = pytest.importorskip("torch")
    initial = [rng.standard_normal((4,)) for _ in range(3)]
    ours = [gg.tensor(v, dtype="float64", device=device, requires_grad=True) for v in initial]
    theirs = [torch.tensor(v, requires_grad=True) for v in initial]
    group_options = {"SGD": dict(momentum=0.9), "Adam": dict(betas=(0.5, 0.6)), "AdamW": dict(weight_decay=0.5),
                     "RMSprop": dict(centered=True), "Adagrad": dict(lr_decay=0.1)}[name]

    def build(module, params):
        groups = [{"params": params[:2]}, {"params": [params[2]], "lr": 0.5, **group_options}]
        return getattr(module, name)(groups, lr=0.01)

    optimizer, reference = build(gg.optim, ours), build(torch.optim, theirs)
    for step in range(STEPS):
        grads = [rng.standard_normal((4,)) for _ in range(3)]
        for i in range(3):
            # parameter 1 gets no gradient on even steps: it must be skipped, not zero-updated
            skip = i == 1 and step % 2 == 0
            ours[i].grad = None if skip else gg.tensor(grads[i], dtype="float64", device=device)
            theirs[i].grad = None if skip else torch.tensor(grads[i])
        optimizer.step()
        reference.step()
        for param, expected in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(param.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-13)
    ours_state, theirs_state = optimizer.state_dict(), reference.state_dict()
    assert [g["params"] for g in ours_state["param_groups"]] == [g["params"] for g in theirs_state["param_groups"]]
    assert sorted(ours_state["state"]) == sorted(theirs_state["state"])
    for index, entries in theirs_state["state"].items():
        for key, value in entries.items():
            if key == "step":
                assert ours_state["state"][index]["step"] == int(value)
            else:
                np.testing.assert_allclose(ours_state["state"][index][key].numpy(), value.numpy(), rtol=1e-12)


def test_parameter_without_grad_keeps_its_value_and_gets_no_state(device):
    used = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    unused = gg.tensor([3.0, 4.0], device=device, requires_grad=True)
    optimizer = gg.optim.Adam([used, unused], lr=0.1)
    used.grad = gg.tensor([1.0, 1.0], device=device)
    optimizer.step()
    assert unused.numpy().tolist() == [3.0, 4.0]
    assert unused not in optimizer.state and used in optimizer.state
    assert optimizer.state[used]["step"] == 1
    assert len(optimizer.state) == 1 and next(iter(optimizer.state)) is used    # keyed by the parameter itself
    assert not np.allclose(used.numpy(), [1.0, 2.0])


def test_step_does_not_modify_the_gradient(device):
    w = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    w.grad = gg.tensor([0.5, -0.5], device=device)
    optimizer = gg.optim.SGD([w], lr=0.1, weight_decay=0.1, momentum=0.9, maximize=True)
    optimizer.step()
    optimizer.step()
    assert w.grad.numpy().tolist() == [0.5, -0.5]


def test_zero_grad(device):
    a = gg.tensor([1.0], device=device, requires_grad=True)
    b = gg.tensor([1.0], device=device, requires_grad=True)
    optimizer = gg.optim.SGD([a, b], lr=0.1)
    a.grad = gg.tensor([2.0], device=device)
    b.grad = gg.tensor([3.0], device=device)
    optimizer.zero_grad(set_to_none=False)
    assert a.grad is not None and a.grad.numpy().tolist() == [0.0]
    optimizer.zero_grad()
    assert a.grad is None and b.grad is None


def test_training_with_autograd_reduces_the_loss(device):
    target = gg.tensor([1.0, -2.0, 0.5], device=device)
    for name in ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]:
        w = gg.zeros(3, device=device, requires_grad=True)
        optimizer = getattr(gg.optim, name)([w], lr=0.1)
        losses = []
        for _ in range(30):
            optimizer.zero_grad()
            loss = ((w - target) ** 2).sum()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0], f"{name}: {losses[0]} -> {losses[-1]}"


def test_closure_is_called_and_its_loss_returned(device):
    w = gg.tensor([2.0], device=device, requires_grad=True)
    optimizer = gg.optim.SGD([w], lr=0.25)
    calls = []

    def closure():
        optimizer.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        calls.append(loss.item())
        return loss

    loss = optimizer.step(closure)
    assert calls == [4.0] and loss.item() == 4.0
    assert w.numpy().tolist() == [1.0]      # 2 - 0.25 * (2 * 2)


def test_step_invalidates_graphs_that_saved_the_parameter(device):
    w = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = (w * w).sum()          # the product saved w
    w.grad = gg.tensor([1.0, 1.0], device=device)
    gg.optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError):
        y.backward()


# ---------------------------------------------------------------------------
# Errors: clear, typed, and leaving everything untouched.
# ---------------------------------------------------------------------------
def test_empty_parameter_list_is_rejected():
    with pytest.raises(ValueError, match="empty parameter list"):
        gg.optim.Adam([])
    with pytest.raises(ValueError, match="empty parameter list"):
        gg.optim.SGD(iter([]), lr=0.1)


def test_tensor_without_requires_grad_is_rejected():
    with pytest.raises(ValueError, match=r"requires_grad=False.*requires_grad=True"):
        gg.optim.SGD([gg.tensor([1.0])], lr=0.1)


def test_non_leaf_tensor_is_rejected():
    w = gg.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="not a leaf"):
        gg.optim.Adam([w * 2])


def test_non_tensor_and_set_params_are_rejected():
    with pytest.raises(TypeError, match="not a gg.Tensor"):
        gg.optim.SGD([np.zeros(2)], lr=0.1)
    try:
        unordered = {gg.tensor([1.0], requires_grad=True)}
    except TypeError:       # unhashable tensors cannot even form a set
        unordered = None
    if unordered is not None:
        with pytest.raises(TypeError, match="set"):
            gg.optim.SGD(unordered, lr=0.1)
    with pytest.raises(TypeError):
        gg.optim.SGD(gg.tensor([1.0], requires_grad=True), lr=0.1)


@pytest.mark.parametrize("name, options, pattern", [
    ("SGD", dict(lr=-0.1), "lr"),
    ("SGD", dict(lr=0.1, momentum=-1), "momentum"),
    ("SGD", dict(lr=0.1, nesterov=True), "nesterov"),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
    ("SGD", dict(lr=float("nan")), "NaN"),
    ("Adam", dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    ("Adam", dict(betas=(0.9, -0.1)), r"betas\[1\]"),
    ("Adam", dict(betas=0.9), "pair"),
    ("Adam", dict(eps=-1e-8), "eps"),
    ("AdamW", dict(weight_decay=-0.1), "weight_decay"),
    ("RMSprop", dict(alpha=-0.5), "alpha"),
    ("Adagrad", dict(lr_decay=-1.0), "lr_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
])
def test_invalid_options_are_rejected(name, options, pattern):
    with pytest.raises(ValueError, match=pattern):
        getattr(gg.optim, name)([gg.tensor([1.0], requires_grad=True)], **options)


def test_a_parameter_in_two_groups_is_rejected_and_add_param_group_changes_nothing():
    a = gg.tensor([1.0], requires_grad=True)
    b = gg.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="more than once"):
        gg.optim.SGD([{"params": [a]}, {"params": [a, b]}], lr=0.1)
    optimizer = gg.optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optimizer.add_param_group({"params": [b, a]})
    assert len(optimizer.param_groups) == 1
    with pytest.raises(ValueError, match="lr"):
        optimizer.add_param_group({"params": [b], "lr": -1.0})
    assert len(optimizer.param_groups) == 1
    optimizer.add_param_group({"params": b, "lr": 0.5})
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.5]
    assert optimizer.param_groups[1]["momentum"] == 0      # defaults filled in


def test_bad_gradient_leaves_every_parameter_and_the_state_untouched(device):
    first = gg.tensor([1.0, 2.0], device=device, requires_grad=True)
    second = gg.tensor([3.0, 4.0], device=device, requires_grad=True)
    optimizer = gg.optim.Adam([first, second], lr=0.1)
    first.grad = gg.tensor([1.0, 1.0], device=device)
    second.grad = gg.tensor([1.0, 1.0], device=device)
    optimizer.step()
    before = [first.numpy(), second.numpy(), optimizer.state[first]["exp_avg"].numpy()]
    second.grad = gg.tensor([1.0, 1.0, 1.0], device=device)     # wrong shape, on the *second* parameter
    with pytest.raises(ShapeError, match=r"\(2,\).*\(3,\)"):
        optimizer.step()
    assert np.array_equal(first.numpy(), before[0]) and np.array_equal(second.numpy(), before[1])
    assert np.array_equal(optimizer.state[first]["exp_avg"].numpy(), before[2])
    assert optimizer.state[first]["step"] == 1


# ---------------------------------------------------------------------------
# State dicts.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, options", [
    ("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05)), ("RMSprop", dict(centered=True, momentum=0.5)), ("Adagrad", dict(lr=0.1)),
])
def test_state_dict_round_trip_through_a_file_resumes_exactly(name, options, device, rng):
    values = [rng.standard_normal((3,)), rng.standard_normal((2, 2))]
    grads = _grads(rng, [(3,), (2, 2)], 6)

    def make():
        params = [gg.tensor(v, dtype="float64", device=device, requires_grad=True) for v in values]
        return params, getattr(gg.optim, name)([{"params": params[:1]}, {"params": params[1:], "lr": 0.01}],
                                               **options)

    def run(params, optimizer, steps):
        for step_grads in steps:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = gg.tensor(g, dtype="float64", device=device)
            optimizer.step()

    straight_params, straight = make()
    run(straight_params, straight, grads)

    params, optimizer = make()
    run(params, optimizer, grads[:3])
    path = os.path.join(tempfile.mkdtemp(), "optimizer.safetensors")
    gg.save({"optimizer": optimizer.state_dict(), "params": params}, path)
    saved = gg.load(path, device=device)
    resumed_params = [gg.tensor(p.numpy(), dtype="float64", device=device, requires_grad=True) for p in saved["params"]]
    resumed = getattr(gg.optim, name)([{"params": resumed_params[:1]}, {"params": resumed_params[1:]}], lr=0.5)
    resumed.load_state_dict(saved["optimizer"])
    assert [g["lr"] for g in resumed.param_groups] == [g["lr"] for g in straight.param_groups]
    run(resumed_params, resumed, grads[3:])
    for got, expected in zip(resumed_params, straight_params, strict=True):
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    for state in resumed.state.values():
        for key, value in state.items():
            if key != "step":
                assert value.device == backend.as_device(device)


def test_state_dict_layout_matches_torch():
    torch = pytest.importorskip("torch")
    ours = gg.tensor([1.0, 2.0], requires_grad=True)
    theirs = torch.tensor([1.0, 2.0], requires_grad=True)
    optimizer, reference = gg.optim.Adam([ours]), torch.optim.Adam([theirs])
    ours.grad, theirs.grad = gg.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0])
    optimizer.step()
    reference.step()
    state, expected = optimizer.state_dict(), reference.state_dict()
    assert set(state) == set(expected) == {"state", "param_groups"}
    assert set(state["state"][0]) == set(expected["state"][0])
    assert state["param_groups"][0]["params"] == expected["param_groups"][0]["params"] == [0]
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"):
        assert state["param_groups"][0][key] == expected["param_groups"][0][key]


def test_load_state_dict_with_other_groups_changes_nothing():
    a = gg.tensor([1.0], requires_grad=True)
    b = gg.tensor([1.0], requires_grad=True)
    one_group = gg.optim.SGD([a, b], lr=0.1, momentum=0.9)
    a.grad, b.grad = gg.tensor([1.0]), gg.tensor([1.0])
    one_group.step()
    two_groups = gg.optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.3)
    with pytest.raises(ValueError, match="1 parameter group"):
        two_groups.load_state_dict(one_group.state_dict())
    single = gg.optim.SGD([a], lr=0.3)
    with pytest.raises(ValueError, match=r"\[2\].*\[1\]"):
        single.load_state_dict(one_group.state_dict())
    assert single.param_groups[0]["lr"] == 0.3 and len(single.state) == 0
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        single.load_state_dict({"param_groups": []})


def test_load_state_dict_validates_options_and_fills_missing_ones():
    w = gg.tensor([1.0], requires_grad=True)
    optimizer = gg.optim.Adam([w], lr=0.1)
    state = optimizer.state_dict()
    bad = {"state": {}, "param_groups": [dict(state["param_groups"][0], lr=-1.0)]}
    with pytest.raises(ValueError, match="lr"):
        optimizer.load_state_dict(bad)
    assert optimizer.param_groups[0]["lr"] == 0.1
    old = {"state": {}, "param_groups": [{k: v for k, v in state["param_groups"][0].items() if k != "maximize"}]}
    optimizer.load_state_dict(old)
    assert optimizer.param_groups[0]["maximize"] is False


def test_load_state_dict_copies_instead_of_aliasing():
    w = gg.tensor([1.0], requires_grad=True)
    optimizer = gg.optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = gg.tensor([1.0])
    optimizer.step()
    snapshot = optimizer.state_dict()
    other = gg.optim.SGD([w], lr=0.1, momentum=0.9)
    other.load_state_dict(snapshot)
    other.step()
    assert snapshot["state"][0]["momentum_buffer"].numpy().tolist() == [1.0]

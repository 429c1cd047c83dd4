"""gg.nn.Module machinery: registration, iteration, modes, devices/dtypes, state dicts, hooks,
containers, clip_grad_*; PyTorch is the oracle where there is one (skipped when absent)."""
import copy
import math

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.register_buffer("scale", gg.ones(4))
        self.register_buffer("cache", gg.zeros(2), persistent=False)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.fc(x)) * self.scale)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
        self.shared = self.head[0]            # the same module twice
        self.extra = nn.Parameter(gg.zeros(2))

    def forward(self, x):
        return self.head(self.block(x)) + self.extra


# --------------------------------------------------------------------------- Parameter
def test_parameter_is_a_leaf_tensor_that_requires_grad():
    base = gg.ones(2, 3)
    p = nn.Parameter(base)
    assert isinstance(p, gg.Tensor) and p.is_leaf and p.requires_grad and p.grad_fn is None
    assert p.array is base.array                      # shares memory, like torch
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not nn.Parameter(gg.ones(2), requires_grad=False).requires_grad
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(gg.tensor([1, 2]))
    y = (p * 2).sum()                               # ops give plain tensors
    assert type(p * 2) is gg.Tensor
    y.backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full((2, 3), 2.0))


def test_parameter_works_with_core_ops_and_optimizer():
    p = nn.Parameter(gg.tensor([1.0, -2.0]))
    loss = (gg.stack([p, p.exp()]).sum() + p @ p + gg.where(p > 0, p, -p).sum())
    loss.backward()
    opt = gg.optim.SGD([p], lr=0.1)
    before = p.numpy().copy()
    opt.step()
    assert not np.allclose(before, p.numpy())
    assert isinstance(p, nn.Parameter)


# --------------------------------------------------------------------------- registration
def test_registration_and_iteration_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["extra", "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
                     "head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"]
    assert len(list(net.parameters())) == len(names)       # the shared Linear is counted once
    assert [n for n, _ in net.named_buffers()] == ["block.scale", "block.cache", "block.bn.running_mean",
                                                    "block.bn.running_var", "block.bn.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["block", "head", "shared"]
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.bn", "block.act", "head",
                                                   "head.0", "head.1", "head.2"]
    assert [n for n, _ in net.named_parameters(prefix="model", recurse=False)] == ["model.extra"]
    assert net.num_parameters() == sum(p.numel() for p in net.parameters())
    assert net.get_submodule("head.2") is net.head[2]
    assert net.get_parameter("block.fc.bias") is net.block.fc.bias


def test_named_parameters_no_duplicates_for_shared_parameter():
    a = nn.Linear(2, 2)
    b = nn.Linear(2, 2)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert sum(1 for _ in model.named_parameters(remove_duplicate=False)) == 4


def test_setattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(gg.ones(1))
    assert "w" in m._parameters
    with pytest.raises(TypeError, match="Parameter or None"):
        m.w = gg.ones(1)                         # plain tensor onto a parameter slot
    m.w = None
    assert m.w is None and list(m.parameters()) == []
    m.register_buffer("b", gg.zeros(2))
    m.b = gg.ones(2)                             # buffers accept tensors
    assert m._buffers["b"] is m.b
    m.child = nn.Linear(1, 1)
    assert "child" in m._modules
    del m.child
    assert "child" not in m._modules
    with pytest.raises(KeyError):
        m.register_buffer("a.b", gg.ones(1))
    with pytest.raises(TypeError):
        m.register_buffer("x", np.ones(2))

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(gg.ones(1))     # before super().__init__()
    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError):
        nn.Module()(gg.ones(1))


def test_train_eval_propagate_and_zero_grad():
    net = Net()
    assert net.training and net.block.bn.training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net(gg.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_apply_visits_children_first():
    order = []
    Net().apply(lambda m: order.append(type(m).__name__))
    assert order[-1] == "Net" and order.index("Linear") < order.index("Block")


def test_forward_hooks():
    layer = nn.Linear(2, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = layer(gg.ones(3, 2))
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(layer.bias.numpy() + 1, (3, 2)), rtol=1e-6)
    assert calls == [(3, 2)]
    pre.remove()
    post.remove()
    x = gg.ones(3, 2)
    np.testing.assert_allclose(layer(x).numpy(), (x @ layer.weight.T + layer.bias).numpy(), rtol=1e-6)


def test_repr_like_torch():
    torch = pytest.importorskip("torch")

    def build(lib):
        n = lib.nn
        return n.Sequential(
            n.Linear(3, 4), n.ReLU(), n.Conv2d(1, 2, 3, padding=1), n.BatchNorm1d(4), n.Dropout(0.2), n.Flatten(),
            n.GELU(approximate="tanh"), n.LayerNorm(4), n.MaxPool2d(2), n.Embedding(5, 2, padding_idx=0),
            n.BatchNorm2d(3, affine=False), n.Conv1d(2, 4, 3, padding="same", padding_mode="circular"),
            n.AvgPool2d(2), n.AdaptiveAvgPool2d(1), n.GRU(2, 3), n.MultiheadAttention(4, 2), n.Softmax(-1),
            n.LeakyReLU(), n.ELU(), n.Softplus(), n.CrossEntropyLoss(), n.LayerNorm(4, bias=False),
            n.MaxPool1d(3, 2), n.Conv1d(2, 4, 3, stride=2, dilation=2, groups=2, bias=False),
            n.GRU(2, 3, num_layers=2, batch_first=True, bidirectional=True), n.Identity())
    assert repr(build(gg)) == repr(build(torch))


# --------------------------------------------------------------------------- containers
def test_sequential_indexing_slicing_append():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[0] is layers[0] and seq[-1] is layers[2]
    assert list(seq) == layers
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == layers[:2]
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    x = gg.randn(4, 2)
    expected = layers[2](layers[1](layers[0](x))).sigmoid()
    np.testing.assert_allclose(seq(x).numpy(), expected.numpy(), rtol=1e-6)
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    with pytest.raises(IndexError):
        seq[5]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("enc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert list(named.state_dict()) == ["enc.weight", "enc.bias"]


def test_modulelist_and_moduledict():
    items = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    items.append(nn.Linear(2, 1))
    assert len(items) == 4 and len(list(items.parameters())) == 8
    assert isinstance(items[1:3], nn.ModuleList) and items[-1].out_features == 1
    items += [nn.ReLU()]
    assert len(items) == 5
    table = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    table["c"] = nn.Tanh()
    assert list(table.keys()) == ["a", "b", "c"] and "b" in table and len(table) == 3
    assert list(table.state_dict()) == ["a.weight", "a.bias"]
    table.pop("a")
    assert list(table) == ["b", "c"]


def test_parameterlist_and_parameterdict_match_torch_keys():
    torch = pytest.importorskip("torch")

    def build(lib):
        model = lib.nn.Module()
        model.weights = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2, 3)), lib.zeros(4)])
        model.table = lib.nn.ParameterDict({"a": lib.nn.Parameter(lib.ones(1)), "b": lib.zeros(2)})
        return model
    ours, theirs = build(gg), build(torch)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.parameters())
    assert ours.weights[1].shape == (4,) and len(ours.weights) == 2 and "b" in ours.table
    ours.weights.append(gg.ones(1))
    assert len(list(ours.parameters())) == 5
    assert list(ours.table.keys()) == ["a", "b"] and ours.table.pop("a").shape == (1,)


def test_identity_flatten_unflatten():
    x = gg.randn(2, 3, 4, 5)
    assert nn.Identity(54, unused=True)(x) is x
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)


# --------------------------------------------------------------------------- devices / dtypes
def test_to_float64_keeps_parameter_identity_and_optimizer_works(device):
    net = Net()
    params = list(net.parameters())
    opt = gg.optim.SGD(net.parameters(), lr=0.1)
    assert net.to(device) is net
    assert net.to(gg.float64) is net
    assert all(a is b for a, b in zip(params, net.parameters(), strict=True))
    assert all(p.dtype == gg.float64 and str(p.device).startswith(device) for p in net.parameters())
    assert net.block.bn.running_mean.dtype == gg.float64
    assert net.block.bn.num_batches_tracked.dtype == gg.int64      # integers keep their dtype
    net(gg.randn(4, 3, dtype=gg.float64, device=device)).sum().backward()
    before = net.block.fc.weight.numpy().copy()
    opt.step()
    assert not np.allclose(before, net.block.fc.weight.numpy())
    net.float()
    assert net.block.fc.weight.dtype == gg.float32 and net.block.fc.weight is params[1]
    net.double()
    assert net.block.fc.weight.dtype == gg.float64 and net.block.fc.weight.grad.dtype == gg.float64
    net.cpu()
    assert str(net.block.fc.weight.device) == "cpu"
    if not gg.cuda.is_available():
        with pytest.raises(gg.DeviceError):
            net.cuda()
        assert str(net.block.fc.weight.device) == "cpu"
    with pytest.raises(TypeError):
        net.to(gg.int64)


def test_to_that_fails_midway_moves_nothing(monkeypatch):
    net = Net()
    arrays = {name: p.array for name, p in net.named_parameters()}
    calls = []
    real = gg.backend.to_device

    def flaky(array, device):
        calls.append(1)
        if len(calls) == 3:
            raise gg.OutOfMemoryError("simulated: out of device memory")
        return real(array, device).copy()
    monkeypatch.setattr(gg.backend, "to_device", flaky)
    monkeypatch.setattr(gg.backend, "device_of", lambda array: gg.Device("cuda", 0))   # everything must move
    with pytest.raises(gg.OutOfMemoryError):
        net.to("cpu")
    assert all(p.array is arrays[name] for name, p in net.named_parameters())


def test_deepcopy_gives_independent_module():
    net = Net()
    twin = copy.deepcopy(net)
    with gg.no_grad():
        twin.block.fc.weight.array[...] = 0
    assert net.block.fc.weight.numpy().any()
    assert twin.shared is twin.head[0]             # sharing preserved inside the copy
    assert isinstance(twin.block.fc.weight, nn.Parameter)


# --------------------------------------------------------------------------- state dict
def test_state_dict_keys_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv1d(1, 4, 5), nn.BatchNorm1d(4), nn.GELU(), nn.Flatten(), nn.Linear(8, 2))
    theirs = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 5), torch.nn.BatchNorm1d(4), torch.nn.GELU(),
                                 torch.nn.Flatten(), torch.nn.Linear(8, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [tuple(v.shape) for v in ours.state_dict().values()] == [tuple(v.shape) for v in
                                                                    theirs.state_dict().values()]


def test_state_dict_round_trip_and_sharing(tmp_path):
    net, other = Net(), Net()
    state = net.state_dict()
    assert "block.cache" not in state and "block.scale" in state
    assert state["shared.weight"].array is state["head.0.weight"].array       # both names, like torch
    assert state["block.fc.weight"].array is net.block.fc.weight.array        # shares memory
    assert not state["block.fc.weight"].requires_grad
    weight = other.block.fc.weight
    result = other.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert other.block.fc.weight is weight                                   # copied in place
    for (name, a), (_, b) in zip(net.state_dict().items(), other.state_dict().items(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    gg.save(net.state_dict(), str(tmp_path / "net.gg"))
    fresh = Net()
    fresh.load_state_dict(gg.load(str(tmp_path / "net.gg")))
    x = gg.randn(3, 3)
    np.testing.assert_allclose(fresh.eval()(x).numpy(), net.eval()(x).numpy(), rtol=1e-6)


def test_load_state_dict_bumps_versions_so_stale_graphs_refuse_backward():
    layer = nn.Linear(2, 2)
    out = (layer(gg.ones(1, 2)) * layer.weight.sum()).sum()
    layer.load_state_dict(nn.Linear(2, 2).state_dict())
    with pytest.raises(gg.AutogradError):
        out.backward()


def _snapshot(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


def test_load_state_dict_strict_errors_leave_module_untouched():
    net = Net()
    before = _snapshot(net)
    good = {k: v.numpy() + 1 for k, v in net.state_dict().items()}

    missing = dict(good)
    del missing["block.fc.bias"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "block.fc.bias"'):
        net.load_state_dict(missing)

    unexpected = dict(good, **{"block.fc.gamma": np.ones(1)})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "block.fc.gamma"') as info:
        net.load_state_dict(unexpected)
    assert isinstance(info.value, nn.StateDictError)

    wrong_shape = dict(good, **{"head.2.weight": np.ones((3, 4), np.float32)})
    with pytest.raises(RuntimeError, match=r"size mismatch for head.2.weight: .*\(3, 4\).*\(2, 4\)"):
        net.load_state_dict(wrong_shape)
    with pytest.raises(RuntimeError, match="size mismatch"):             # even when not strict
        net.load_state_dict(wrong_shape, strict=False)
    for key, value in _snapshot(net).items():                            # nothing changed anywhere
        np.testing.assert_array_equal(value, before[key], err_msg=key)

    result = net.load_state_dict(unexpected, strict=False)
    assert result.unexpected_keys == ["block.fc.gamma"] and result.missing_keys == []
    np.testing.assert_allclose(net.block.fc.bias.numpy(), before["block.fc.bias"] + 1)
    result = net.load_state_dict({"extra": np.ones(2)}, strict=False)
    assert "block.fc.weight" in result.missing_keys
    np.testing.assert_array_equal(net.extra.numpy(), np.ones(2))


def test_load_state_dict_from_torch_and_back():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    theirs.train()
    theirs(torch.randn(6, 3))                   # move the running statistics
    ours = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    ours.load_state_dict(theirs.state_dict())    # torch tensors accepted as values
    assert int(ours[1].num_batches_tracked) == 1
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(gg.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    back = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    back.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})


# --------------------------------------------------------------------------- clip_grad_*
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s) for s in [(3, 4), (5,), ()]]
    grads = [rng.standard_normal(s) for s in [(3, 4), (5,), ()]]
    ours = [gg.tensor(v, device=device, requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    for p, g in zip(ours, grads, strict=True):
        p.grad = gg.tensor(g, device=device)
    for p, g in zip(theirs, grads, strict=True):
        p.grad = torch.tensor(g)
    handles = [p.grad for p in ours]
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, gg.Tensor) and total.ndim == 0
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-10)
    for p, t, h in zip(ours, theirs, handles, strict=True):
        assert p.grad is h                                    # the grad tensor object stays
        assert p.grad.array.shape == tuple(t.grad.shape) and type(p.grad.array).__name__ == "ndarray"  # 0-d too
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-10)


def test_clip_grad_norm_shared_gradient_array_scaled_once():
    a = gg.ones(3, requires_grad=True)
    b = gg.ones(3, requires_grad=True)
    (a + b).sum().backward()                    # add's VJP may hand both leaves one array
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    np.testing.assert_allclose(total.item(), math.sqrt(6), rtol=1e-6)
    expected = np.full(3, 1 / math.sqrt(6))
    np.testing.assert_allclose(a.grad.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), expected, rtol=1e-5)


def test_clip_grad_norm_nonfinite_and_empty():
    p = gg.ones(2, requires_grad=True)
    p.grad = gg.tensor([float("nan"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert np.isnan(p.grad.numpy()[0]) and p.grad.numpy()[1] == 1.0     # untouched after the error
    q = gg.ones(2, requires_grad=True)
    assert nn.utils.clip_grad_norm_([q], 1.0).item() == 0.0
    assert nn.utils.clip_grad_norm_(q, 1.0).item() == 0.0


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    grads = np.random.default_rng(2).standard_normal((4, 5))
    p = gg.zeros(4, 5, requires_grad=True)
    p.grad = gg.tensor(grads)
    t = torch.zeros(4, 5, requires_grad=True)
    t.grad = torch.tensor(grads, dtype=torch.float32)
    nn.utils.clip_grad_value_([p], 0.5)
    torch.nn.utils.clip_grad_value_([t], 0.5)
    np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-6)
    scalar = gg.zeros((), requires_grad=True)
    scalar.grad = gg.tensor(3.0)
    nn.utils.clip_grad_value_(scalar, 1.0)
    assert scalar.grad.item() == 1.0 and scalar.grad.array.shape == () and isinstance(scalar.grad.array, np.ndarray)


def test_parameters_to_vector_round_trip():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(net.parameters())
    assert vec.shape == (net.num_parameters(),)
    nn.utils.vector_to_parameters(vec * 0 + 1, net.parameters())
    assert all(np.all(p.numpy() == 1) for p in net.parameters())


def _unfused(modules, x):
    for module in modules:
        x = module(x)
    return x


def test_sequential_fuses_linear_relu_with_identical_values_and_gradients(device):
    """Linear -> ReLU runs as one linear_relu node; outputs and every gradient
    are bit-for-bit those of calling the modules one by one."""
    gg.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).to(device)
    x = gg.randn(5, 6, device=device, requires_grad=True)
    fused = net(x)
    assert fused.grad_fn.name == "linear" and fused.grad_fn.next_edges[0][0].name == "linear_relu"
    fused.sum().backward()
    fused_grads = [p.grad.numpy().copy() for p in net.parameters()] + [x.grad.numpy().copy()]
    net.zero_grad()
    x.grad = None
    plain = _unfused(list(net), x)
    plain.sum().backward()
    plain_grads = [p.grad.numpy() for p in net.parameters()] + [x.grad.numpy()]
    np.testing.assert_array_equal(fused.detach().numpy(), plain.detach().numpy())
    for a, b in zip(fused_grads, plain_grads, strict=True):
        np.testing.assert_array_equal(a, b)


def test_sequential_does_not_fuse_what_someone_can_observe(device):
    """A hook on either module, a Linear subclass or a bias-free Linear keeps the modules apart."""
    seen = []

    class MyLinear(nn.Linear):
        pass

    for first, second in [(nn.Linear(4, 3), nn.ReLU()), (MyLinear(4, 3), nn.ReLU()),
                          (nn.Linear(4, 3, bias=False), nn.ReLU())]:
        net = nn.Sequential(first, second).to(device)
        if type(first) is nn.Linear and first.bias is not None:
            handle = second.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
        out = net(gg.randn(2, 4, device=device, requires_grad=True))
        assert out.grad_fn.name == "relu"
        if type(first) is nn.Linear and first.bias is not None:
            handle.remove()
            assert seen == [(2, 3)]
            assert net(gg.randn(2, 4, device=device)).grad_fn.name == "linear_relu"


def test_relu_backward_keeps_a_bit_mask_or_its_output_not_the_input(device):
    """CUDA keeps the kernel's 1-bit mask; NumPy keeps relu's output (no extra
    pass, and the next layer holds it anyway).  Neither keeps x."""
    x = gg.randn(64, 32, device=device, requires_grad=True)
    y = F.relu(x)
    node = y.grad_fn
    assert not any(isinstance(saved, gg.Tensor) or hasattr(saved, '__array__')   # x itself is not kept
                   for saved in list(node.saved) + list(node.saved_raw))
    if device == "cuda":
        mask = node.params["saved"]
        assert mask.dtype == np.uint8 and mask.size == 64 * 32 // 8
    else:
        assert "saved" not in node.params and node.out_data is y.array
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (x.detach().numpy() > 0).astype(np.float32))


def test_relu_output_changed_in_place_refuses_backward(device):
    x = gg.randn(8, device=device, requires_grad=True)
    y = F.relu(x)
    y.add_(1.0)
    with pytest.raises(gg.AutogradError, match="output of op 'relu' was modified in place"):
        y.sum().backward()


def test_relu_gradient_at_zero_negative_zero_and_nan(device):
    """The gradient passes where !(x <= 0), the CUDA kernel's bit: not at 0 or -0,
    but at NaN; the same through a fused Linear -> ReLU."""
    x = gg.tensor([-1.0, -0.0, 0.0, 2.0, float("nan")], device=device, requires_grad=True)
    F.relu(x).backward(gg.ones(5, device=device))
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 1.0, 1.0])
    net = nn.Sequential(nn.Linear(5, 5), nn.ReLU()).to(device)
    with gg.no_grad():
        net[0].weight.copy_(gg.eye(5, device=device))
        net[0].bias.copy_(gg.tensor([0.0, 0.0, 0.0, 0.0, float("nan")], device=device))
    out = net(gg.tensor([-1.0, -0.0, 0.0, 2.0, -5.0], device=device))
    assert out.grad_fn.name == "linear_relu"
    out.backward(gg.ones(5, device=device))
    np.testing.assert_array_equal(net[0].bias.grad.numpy(), [0.0, 0.0, 0.0, 1.0, 1.0])

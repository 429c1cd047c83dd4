"""PyTorch's names and spellings on gpugrad, checked against torch where torch has them (issue 16 point 1)."""

import io

import numpy as np
import pytest

import gpugrad as gg

torch = pytest.importorskip("torch")


# --------------------------------------------------------------------------
# dtypes and typed constructors
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name, numpy_name", [("float", "float32"), ("double", "float64"), ("half", "float16"),
                                              ("long", "int64"), ("int", "int32"), ("short", "int16")])
def test_dtype_aliases(name, numpy_name):
    dtype = getattr(gg, name)
    assert dtype == np.dtype(numpy_name)
    assert gg.zeros(2, dtype=dtype).dtype == np.dtype(numpy_name)
    assert str(getattr(torch, name)).endswith(numpy_name)


def test_bfloat16_is_a_dtype_like_torch():
    # Values and gradients against torch.bfloat16: tests/test_bfloat16.py.
    assert "bfloat16" in repr(gg.bfloat16) and str(torch.bfloat16).endswith("bfloat16")
    assert gg.zeros(2, dtype=gg.bfloat16).dtype == gg.bfloat16
    assert gg.ones(2).to(gg.bfloat16).dtype == gg.bfloat16
    assert gg.ones(2).bfloat16().is_floating_point()


@pytest.mark.parametrize("name", ["FloatTensor", "LongTensor", "DoubleTensor", "IntTensor", "BoolTensor"])
def test_typed_constructors_match_torch(name):
    data = [[1, 0], [3, 4]]
    ours, theirs = getattr(gg, name)(data), getattr(torch, name)(data)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.numpy().dtype == theirs.numpy().dtype
    assert tuple(getattr(gg, name)(2, 3).shape) == tuple(getattr(torch, name)(2, 3).shape)
    assert isinstance(ours, getattr(gg, name)) and not isinstance(ours.to(gg.float16), getattr(gg, name))
    assert ours.type() == theirs.type()


def test_type_converts_and_names():
    x = gg.tensor([1.5, 2.5])
    assert x.type() == torch.tensor([1.5, 2.5]).type() == "torch.FloatTensor"
    assert x.type(gg.int64).dtype == np.int64
    assert x.type("torch.DoubleTensor").dtype == np.float64
    assert x.type(gg.LongTensor).tolist() == torch.tensor([1.5, 2.5]).type(torch.LongTensor).tolist()


# --------------------------------------------------------------------------
# Size, format, counts
# --------------------------------------------------------------------------
def test_size_behaves_like_torch_size():
    x, y = gg.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    assert x.size() == y.size() and x.shape == tuple(y.shape)
    assert isinstance(x.size(), gg.Size) and isinstance(x.shape, tuple)
    assert repr(x.shape) == "Size([2, 3, 4])" == repr(y.shape).replace("torch.", "")
    assert x.size(1) == y.size(1) and x.size(-1) == y.size(-1)
    assert x.shape[1:] == y.shape[1:] and isinstance(x.shape[1:], gg.Size)
    assert x.shape.numel() == y.shape.numel() == x.nelement() == y.nelement()
    assert x.shape + (5,) == y.shape + (5,)
    assert gg.zeros(x.shape[0], 7).shape == (2, 7)
    assert list(gg.Size([2, 3])) == [2, 3]
    with pytest.raises(IndexError, match="out of range"):
        x.size(3)
    with pytest.raises(IndexError):
        torch.tensor(1.0).size(0)
    with pytest.raises(IndexError, match="0-d"):
        gg.tensor(1.0).size(0)


def test_format_spec_on_0d_tensors():
    loss, ref = gg.tensor(0.123456), torch.tensor(0.123456)
    assert f"{loss:.4f}" == f"{ref:.4f}" == "0.1235"
    assert f"{gg.tensor(7):>5d}" == f"{torch.tensor(7):>5d}"
    assert f"{gg.tensor([1.0, 2.0])}" == str(gg.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="0-d"):
        f"{gg.tensor([1.0, 2.0]):.2f}"


# --------------------------------------------------------------------------
# new_*, t, mm, bmm, addmm, narrow (values and gradients vs torch)
# --------------------------------------------------------------------------
def test_new_constructors_follow_self():
    x = gg.tensor([1, 2], dtype=gg.int32)
    y = torch.tensor([1, 2], dtype=torch.int32)
    for name, args in [("new_zeros", (2, 3)), ("new_ones", ((4,),)), ("new_empty", (3,))]:
        ours, theirs = getattr(x, name)(*args), getattr(y, name)(*args)
        assert ours.shape == tuple(theirs.shape) and ours.numpy().dtype == theirs.numpy().dtype
        if name != "new_empty":
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(x.new_full((2, 2), 7).numpy(), y.new_full((2, 2), 7).numpy())
    data = [0.5, 1.5]
    assert x.new_tensor(data).tolist() == y.new_tensor(data).tolist()
    f = gg.ones(1, dtype=gg.float64).new_zeros(2, requires_grad=True)
    assert f.requires_grad and f.dtype == np.float64
    source = np.arange(3.0)
    copied = gg.ones(1).new_tensor(source)
    source[0] = 99
    assert copied.tolist() == [0.0, 1.0, 2.0]


def _pair(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    return ([gg.tensor(a, dtype=gg.float64, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("case", ["t", "mm", "bmm", "addmm", "addmm-beta-alpha", "narrow", "narrow-negative"])
def test_matrix_conveniences_match_torch(case):
    if case == "t":
        (a,), (b,) = _pair((3, 4))
        ours, theirs = a.t(), b.t()
    elif case == "mm":
        (a, c), (b, d) = _pair((3, 4), (4, 2))
        ours, theirs = gg.mm(a, c), torch.mm(b, d)
    elif case == "bmm":
        (a, c), (b, d) = _pair((5, 3, 4), (5, 4, 2))
        ours, theirs = a.bmm(c), b.bmm(d)
    elif case == "addmm":
        (i, a, c), (j, b, d) = _pair((3, 2), (3, 4), (4, 2))
        ours, theirs = gg.addmm(i, a, c), torch.addmm(j, b, d)
    elif case == "addmm-beta-alpha":
        (i, a, c), (j, b, d) = _pair((2,), (3, 4), (4, 2))
        ours, theirs = i.addmm(a, c, beta=0.5, alpha=-2.0), j.addmm(b, d, beta=0.5, alpha=-2.0)
    elif case == "narrow":
        (a,), (b,) = _pair((4, 6))
        ours, theirs = a.narrow(1, 2, 3), b.narrow(1, 2, 3)
    else:
        (a,), (b,) = _pair((4, 6))
        ours, theirs = gg.narrow(a, -1, -4, 2), torch.narrow(b, -1, -4, 2)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
    weights = np.random.default_rng(9).standard_normal(tuple(theirs.shape))
    (ours * gg.tensor(weights)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    leaves_ours = [v for v in locals().values() if isinstance(v, gg.Tensor) and v.is_leaf and v.requires_grad]
    leaves_theirs = [v for v in locals().values() if isinstance(v, torch.Tensor) and v.is_leaf and v.requires_grad]
    assert len(leaves_ours) == len(leaves_theirs) > 0
    for p, q in zip(leaves_ours, leaves_theirs, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)


def test_matrix_conveniences_reject_wrong_shapes():
    with pytest.raises(gg.ShapeError, match="mm"):
        gg.mm(gg.ones(2, 3), gg.ones(2, 3))
    with pytest.raises(gg.ShapeError, match="2-D"):
        gg.mm(gg.ones(2, 3, 4), gg.ones(4, 3))
    with pytest.raises(gg.ShapeError, match="bmm"):
        gg.bmm(gg.ones(2, 3, 4), gg.ones(3, 4, 2))
    with pytest.raises(gg.ShapeError, match="addmm"):
        gg.addmm(gg.ones(5, 5), gg.ones(2, 3), gg.ones(3, 2))
    with pytest.raises(gg.ShapeError, match="at most 2"):
        gg.ones(2, 3, 4).t()
    with pytest.raises(IndexError, match="narrow"):
        gg.ones(4).narrow(0, 3, 2)
    assert gg.ones(3).t().shape == (3,)


# --------------------------------------------------------------------------
# keywords: input=, other=, out=
# --------------------------------------------------------------------------
def test_input_other_keywords():
    a, b = gg.tensor([1.0, 2.0]), gg.tensor([3.0, 5.0])
    np.testing.assert_array_equal(gg.add(input=a, other=b).numpy(),
                                  torch.add(input=torch.tensor([1.0, 2.0]), other=torch.tensor([3.0, 5.0])).numpy())
    assert gg.mul(a, other=b).tolist() == [3.0, 10.0]
    assert gg.exp(input=gg.tensor([0.0])).tolist() == [1.0]
    m, tm = gg.tensor([[1.0, 5.0], [3.0, 2.0]]), torch.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert gg.sum(input=m, dim=0).tolist() == torch.sum(input=tm, dim=0).tolist()
    assert gg.max(input=m, dim=1).values.tolist() == torch.max(input=tm, dim=1).values.tolist()
    assert gg.mean(input=m).item() == torch.mean(input=tm).item()
    assert m.mul(other=m).tolist() == tm.mul(other=tm).tolist()


def test_out_writes_into_the_given_tensor():
    a, b = gg.tensor([1.0, 2.0]), gg.tensor([3.0, 5.0])
    out = gg.empty(2)
    result = gg.add(a, b, out=out)
    assert result is out and out.tolist() == [4.0, 7.0]
    version = out._version
    gg.mul(a, b, out=out)
    assert out.tolist() == [3.0, 10.0] and out._version > version
    grown = gg.empty(0)
    gg.mm(gg.ones(2, 3), gg.ones(3, 2), out=grown)
    assert grown.shape == (2, 2) and grown.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    product = gg.empty(2, 2)
    assert gg.matmul(gg.ones(2, 3), gg.ones(3, 2), out=product) is product and product.tolist() == [[3.0] * 2] * 2
    joined, t_joined = gg.empty(0), torch.empty(0)
    gg.cat([gg.ones(2), gg.zeros(1)], out=joined)
    torch.cat([torch.ones(2), torch.zeros(1)], out=t_joined)
    assert joined.tolist() == t_joined.tolist()
    stacked = gg.empty(2, 2)
    gg.stack([gg.ones(2), gg.zeros(2)], dim=1, out=stacked)
    assert stacked.tolist() == torch.stack([torch.ones(2), torch.zeros(2)], dim=1).tolist()
    t_out = torch.empty(2)
    torch.add(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 5.0]), out=t_out)
    assert t_out.tolist() == [4.0, 7.0]
    with pytest.warns(UserWarning, match="was resized"):   # PyTorch's rule (tests/test_out_argument.py)
        assert gg.add(a, b, out=gg.empty(3)).tolist() == [4.0, 7.0]
    with pytest.raises(gg.DTypeError, match="cast"):
        gg.add(a, b, out=gg.zeros(2, dtype=gg.int64))
    with pytest.raises(gg.AutogradError, match="out="):
        gg.add(gg.ones(2, requires_grad=True), b, out=gg.empty(2))
    with gg.no_grad():
        gg.add(gg.ones(2, requires_grad=True), b, out=out)
    assert out.tolist() == [4.0, 6.0]


# --------------------------------------------------------------------------
# grad_fn.next_functions and grad_fn.name()
# --------------------------------------------------------------------------
def test_grad_fn_names_and_next_functions_match_torch():
    a, b = gg.tensor([1.0, 2.0], requires_grad=True), gg.tensor([3.0, 4.0])
    ta, tb = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([3.0, 4.0])
    y, ty = (a * b).exp().sum(), (ta * tb).exp().sum()
    assert y.grad_fn.name() == ty.grad_fn.name() == "SumBackward0"
    (exp_node, nr), = y.grad_fn.next_functions
    (texp_node, tnr), = ty.grad_fn.next_functions
    assert nr == tnr == 0 and exp_node.name() == texp_node.name() == "ExpBackward0"
    (mul_node, _), = exp_node.next_functions
    (tmul_node, _), = texp_node.next_functions
    assert mul_node.name() == tmul_node.name() == "MulBackward0"
    ours_edges = [(None if n is None else n.name(), i) for n, i in mul_node.next_functions]
    theirs_edges = [(None if n is None else n.name(), i) for n, i in tmul_node.next_functions]
    assert ours_edges == theirs_edges == [("torch::autograd::AccumulateGrad", 0), (None, 0)]
    assert mul_node.next_functions[0][0].variable is a
    assert str(y.grad_fn.name) == "sum"       # gpugrad's own spelling still prints


def test_custom_function_node_name():
    class Square(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    class TorchSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad
    y = Square.apply(gg.tensor([3.0], requires_grad=True))
    assert y.grad_fn.name() == "SquareBackward"
    assert TorchSquare.apply(torch.tensor([3.0], requires_grad=True)).grad_fn.name() == "TorchSquareBackward"


# --------------------------------------------------------------------------
# namespaces
# --------------------------------------------------------------------------
def test_autograd_namespace():
    assert gg.autograd.Function is gg.Function
    x = gg.tensor(2.0, requires_grad=True)
    (g,) = gg.autograd.grad(x ** 3, x)
    assert g.item() == 12.0
    gg.autograd.backward([(x * x)], grad_tensors=[gg.tensor(1.0)])
    assert x.grad.item() == 4.0
    gg.autograd.backward(x * 3)
    assert x.grad.item() == 7.0


def _f(x, y):
    return x ** 2 * y.sin() + x * y.sum()


def _scalar(x, y):
    return (x ** 2 * y.sin()).sum() + (x * y).prod()


@pytest.mark.parametrize("name", ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"])
def test_autograd_functional_matches_torch(name):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(3), rng.standard_normal(3)]
    ours_in = tuple(gg.tensor(v, dtype=gg.float64) for v in xs)
    theirs_in = tuple(torch.tensor(v) for v in xs)
    v_out = rng.standard_normal(3)
    v_in = (rng.standard_normal(3), rng.standard_normal(3))
    ours_fn, theirs_fn = getattr(gg.autograd.functional, name), getattr(torch.autograd.functional, name)
    if name in ("jacobian", "hessian"):
        func = _f if name == "jacobian" else _scalar
        ours, theirs = ours_fn(func, ours_in), theirs_fn(func, theirs_in)
        for i in range(len(theirs)):
            for j in range(len(theirs[i])):
                np.testing.assert_allclose(ours[i][j].numpy(), theirs[i][j].numpy(), rtol=1e-10)
        single_ours = ours_fn(lambda x: _scalar(x, ours_in[1]) if name == "hessian" else x ** 3, ours_in[0])
        single_theirs = theirs_fn(lambda x: _scalar(x, theirs_in[1]) if name == "hessian" else x ** 3, theirs_in[0])
        assert isinstance(single_ours, gg.Tensor)
        np.testing.assert_allclose(single_ours.numpy(), single_theirs.numpy(), rtol=1e-10)
        return
    if name == "vjp":
        args_o, args_t = (gg.tensor(v_out),), (torch.tensor(v_out),)
        func = _f
    elif name == "jvp":
        args_o, args_t = (tuple(gg.tensor(v) for v in v_in),), (tuple(torch.tensor(v) for v in v_in),)
        func = _f
    else:
        args_o, args_t = (tuple(gg.tensor(v) for v in v_in),), (tuple(torch.tensor(v) for v in v_in),)
        func = _scalar
    (out_o, prod_o), (out_t, prod_t) = ours_fn(func, ours_in, *args_o), theirs_fn(func, theirs_in, *args_t)
    np.testing.assert_allclose(out_o.numpy(), out_t.numpy(), rtol=1e-12)
    prod_o = prod_o if isinstance(prod_o, tuple) else (prod_o,)
    prod_t = prod_t if isinstance(prod_t, tuple) else (prod_t,)
    assert len(prod_o) == len(prod_t)
    for p, q in zip(prod_o, prod_t, strict=True):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-10)
        assert not p.requires_grad


def test_autograd_functional_create_graph_and_strict():
    x = gg.tensor([1.0, 2.0], dtype=gg.float64, requires_grad=True)
    tx = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    _, g = gg.autograd.functional.vjp(lambda v: (v ** 3).sum(), x, create_graph=True)
    _, tg = torch.autograd.functional.vjp(lambda v: (v ** 3).sum(), tx, create_graph=True)
    g.sum().backward()
    tg.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    _, jv = gg.autograd.functional.jvp(lambda v: v ** 3, x.detach(), gg.tensor([1.0, 1.0], dtype=gg.float64),
                                       create_graph=True)
    np.testing.assert_allclose(jv.numpy(), [3.0, 12.0])
    with pytest.raises(gg.AutogradError, match="independent"):
        gg.autograd.functional.jacobian(lambda a, b: a * 2, (gg.ones(2), gg.ones(2)), strict=True)
    zero = gg.autograd.functional.jacobian(lambda a, b: a * 2, (gg.ones(2), gg.ones(2)))
    assert zero[1].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(gg.ShapeError, match="v can be omitted"):
        gg.autograd.functional.vjp(lambda v: v * 2, gg.ones(2))


def test_inference_mode_and_device_queries():
    w = gg.ones(2, requires_grad=True)
    with gg.inference_mode():
        assert not (w * 2).requires_grad
    with gg.inference_mode(False):
        assert (w * 2).requires_grad

    @gg.inference_mode()
    def called(x):
        return x * 2

    @gg.inference_mode
    def bare(x):
        return x * 2
    assert not called(w).requires_grad and not bare(w).requires_grad and (w * 2).requires_grad
    assert gg.accelerator.is_available() == gg.cuda.is_available()
    current = gg.accelerator.current_accelerator()
    assert (current is None) == (not gg.cuda.is_available())
    gg.cuda.manual_seed(0)          # harmless without a GPU, as in PyTorch
    gg.cuda.manual_seed_all(0)
    if not gg.cuda.is_available():
        with pytest.raises(gg.DeviceError, match="get_device_name"):
            gg.cuda.get_device_name()
    else:
        assert isinstance(gg.cuda.get_device_name(0), str)
    gg.backends.cudnn.benchmark = True
    gg.backends.cudnn.deterministic = True
    assert gg.backends.cudnn.benchmark and gg.backends.cudnn.enabled
    assert not gg.backends.mps.is_available()


# --------------------------------------------------------------------------
# Generator and generator=
# --------------------------------------------------------------------------
def test_generator_streams_are_independent_and_reproducible():
    g = gg.Generator().manual_seed(3)
    assert g.initial_seed() == 3
    assert gg.Generator().initial_seed() == torch.Generator().initial_seed()
    gg.manual_seed(0)
    a = gg.rand(4, generator=g)
    b = gg.randn(2, 2, generator=g)
    c = gg.randint(0, 10, (5,), generator=g)
    d = gg.randperm(6, generator=g)
    e = gg.empty(3).normal_(generator=g)
    f = gg.empty(3).uniform_(-1, 1, generator=g)
    after = gg.rand(3)
    gg.manual_seed(0)
    assert gg.rand(3).tolist() == after.tolist()       # the global stream was not touched
    g.manual_seed(3)
    for expected, again in [(a, gg.rand(4, generator=g)), (b, gg.randn(2, 2, generator=g)),
                            (c, gg.randint(0, 10, (5,), generator=g)), (d, gg.randperm(6, generator=g)),
                            (e, gg.empty(3).normal_(generator=g)), (f, gg.empty(3).uniform_(-1, 1, generator=g))]:
        assert expected.tolist() == again.tolist()
    state = g.get_state()
    first = gg.rand(5, generator=g)
    g.set_state(state)
    assert gg.rand(5, generator=g).tolist() == first.tolist()
    assert isinstance(g.seed(), int)
    with pytest.raises(ValueError, match="set_state"):
        g.set_state(gg.tensor([1, 2, 3], dtype=gg.uint8))
    with pytest.raises(TypeError, match="Generator"):
        gg.rand(2, generator=np.random.default_rng(0))


def test_default_generator_is_the_global_stream():
    gg.default_generator.manual_seed(5)
    a = gg.rand(3)
    gg.manual_seed(5)
    assert gg.rand(3).tolist() == a.tolist()
    state = gg.default_generator.get_state()
    b = gg.rand(3)
    gg.default_generator.set_state(state)
    assert gg.rand(3).tolist() == b.tolist()


# --------------------------------------------------------------------------
# whole-module saving (point 5) and file objects
# --------------------------------------------------------------------------
class TinyNet(gg.nn.Module):
    def __init__(self, hidden, activation="relu", dropout=0.0):
        super().__init__()
        self.activation = activation
        self.body = gg.nn.Sequential(gg.nn.Linear(3, hidden), gg.nn.ReLU(), gg.nn.Dropout(dropout),
                                     gg.nn.Linear(hidden, 2))
        self.register_buffer("steps", gg.zeros(1))

    def forward(self, x):
        return self.body(x)


def test_save_whole_module_and_rebuild_with_allow_list(tmp_path):
    gg.manual_seed(0)
    net = TinyNet(5, dropout=0.25)
    net.steps += 3
    net.eval()
    net.body[3].train()
    path = tmp_path / "net.ggz"
    gg.save(net, path)
    with pytest.raises(gg.CheckpointError, match=r"allowed_modules=\[TinyNet\]"):
        gg.load(path)
    again = gg.load(path, allowed_modules=[TinyNet])
    assert isinstance(again, TinyNet) and not again.training and again.body[3].training
    x = gg.randn(4, 3)
    np.testing.assert_array_equal(again(x).numpy(), net(x).numpy())
    assert again.steps.tolist() == [3.0] and again.body[2].p == 0.25
    plain = gg.nn.Sequential(gg.nn.Linear(2, 2), gg.nn.Tanh())
    buffer = io.BytesIO()
    gg.save(plain, buffer)
    buffer.seek(0)
    rebuilt = gg.load(buffer, allowed_modules=[])        # gpugrad.nn's own layers need no permission
    np.testing.assert_array_equal(rebuilt[0].weight.numpy(), plain[0].weight.numpy())


def test_save_module_refuses_what_it_cannot_rebuild(tmp_path):
    net = TinyNet(4)
    net.body[0] = gg.nn.Linear(3, 4, bias=False)           # changed after construction
    gg.save(net, tmp_path / "changed.ggz")
    with pytest.raises(gg.CheckpointError, match="state_dict"):
        gg.load(tmp_path / "changed.ggz", allowed_modules=[TinyNet])
    edited = TinyNet(4)
    edited.body[2].p = 0.5
    gg.save(edited, tmp_path / "edited.ggz")
    with pytest.raises(gg.CheckpointError, match="changed after construction"):
        gg.load(tmp_path / "edited.ggz", allowed_modules=[TinyNet])
    with pytest.raises(TypeError, match="state_dict"):
        gg.save(TinyNet(4, activation=len), tmp_path / "fn.ggz")
    assert not (tmp_path / "fn.ggz").exists()

    class Local(gg.nn.Module):
        pass
    with pytest.raises(TypeError, match="module level"):
        gg.save(Local(), tmp_path / "local.ggz")


def test_load_state_dict_from_file_object():
    model = gg.nn.Linear(3, 2)
    buffer = io.BytesIO()
    gg.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = gg.load(buffer)
    assert sorted(state) == ["bias", "weight"]
    np.testing.assert_array_equal(state["weight"].numpy(), model.weight.numpy())
    with pytest.raises(TypeError, match="file object"):
        gg.load(12)


def test_bernoulli_and_normal_with_generators():
    p = gg.tensor([0.0, 1.0, 0.3, 0.7] * 250)
    g = gg.Generator().manual_seed(2)
    draws = gg.bernoulli(p, generator=g)
    assert draws.dtype == p.dtype and set(draws.tolist()) <= {0.0, 1.0}
    assert draws[0::4].sum().item() == 0 and draws[1::4].sum().item() == 250
    assert 40 < draws[2::4].sum().item() < 110
    g.manual_seed(2)
    assert gg.bernoulli(p, generator=g).tolist() == draws.tolist()
    filled = gg.empty(1000).bernoulli_(0.25, generator=g)
    assert 180 < filled.sum().item() < 320
    assert torch.bernoulli(torch.tensor([0.0, 1.0])).tolist() == gg.bernoulli(gg.tensor([0.0, 1.0])).tolist()
    with pytest.raises(ValueError, match="0, 1"):
        gg.bernoulli(gg.tensor([1.5]))
    g.manual_seed(9)
    sample = gg.normal(3.0, 0.5, size=(4000,), generator=g)
    assert abs(sample.mean().item() - 3.0) < 0.05 and abs(sample.std().item() - 0.5) < 0.05
    elementwise = gg.normal(gg.tensor([0.0, 100.0]), gg.tensor([0.0, 0.0]))
    assert elementwise.tolist() == torch.normal(torch.tensor([0.0, 100.0]), torch.tensor([0.0, 0.0])).tolist()
    with pytest.raises(gg.AutogradError, match="randn_like"):
        gg.normal(gg.zeros(2, requires_grad=True), 1.0)
    g.manual_seed(1)
    a = gg.randn_like(gg.zeros(3), generator=g)
    g.manual_seed(1)
    assert gg.randn(3, generator=g).tolist() == a.tolist()


def test_small_top_level_functions_match_torch(tmp_path):
    a, b = [1.0, 2.0, float("nan")], [1.0 + 1e-7, 2.1, float("nan")]
    assert gg.isclose(gg.tensor(a), gg.tensor(b)).tolist() == torch.isclose(torch.tensor(a), torch.tensor(b)).tolist()
    assert gg.isclose(gg.tensor(a), gg.tensor(b), equal_nan=True).tolist() == \
        torch.isclose(torch.tensor(a), torch.tensor(b), equal_nan=True).tolist()
    assert gg.allclose(gg.tensor(a[:1]), gg.tensor(b[:1])) == torch.allclose(torch.tensor(a[:1]), torch.tensor(b[:1]))
    assert gg.equal(gg.tensor([1, 2]), gg.tensor([1, 2])) and not gg.equal(gg.tensor([1, 2]), gg.tensor([[1, 2]]))
    assert gg.all(gg.tensor([True, False])).item() is False and gg.any(gg.tensor([True, False])).item() is True
    assert gg.relu(gg.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]
    assert gg.is_floating_point(gg.ones(1)) and not gg.is_floating_point(gg.ones(1, dtype=gg.int64))
    assert gg.manual_seed(3) is gg.default_generator and gg.initial_seed() == 3
    state = gg.get_rng_state()
    first = gg.rand(3)
    gg.set_rng_state(state)
    assert gg.rand(3).tolist() == first.tolist()
    gg.set_num_threads(2)
    assert gg.get_num_threads() == 2
    gg.save({"w": gg.ones(2)}, tmp_path / "w.pt")
    assert gg.load(tmp_path / "w.pt", map_location="cpu", weights_only=True)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="map_location"):
        gg.load(tmp_path / "w.pt", map_location={"cuda:0": "cpu"})


def test_generator_on_each_device(device):
    g = gg.Generator(device=device).manual_seed(11)
    a = gg.rand(5, device=device, generator=g)
    b = gg.bernoulli(gg.full((5,), 0.5, device=device), generator=g)
    c = gg.normal(gg.zeros(5, device=device), gg.ones(5, device=device), generator=g)
    g.manual_seed(11)
    assert gg.rand(5, device=device, generator=g).tolist() == a.tolist()
    assert gg.bernoulli(gg.full((5,), 0.5, device=device), generator=g).tolist() == b.tolist()
    assert gg.normal(gg.zeros(5, device=device), gg.ones(5, device=device), generator=g).tolist() == c.tolist()
    other = "cpu" if gg.device(device).type == "cuda" else None
    if other is None:
        assert a.device == gg.device("cpu")
    else:
        with pytest.raises(gg.DeviceError, match="generator"):
            gg.rand(2, device=other, generator=g)

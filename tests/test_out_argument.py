"""PyTorch's ``out=`` keyword on every public function that has it in PyTorch (issue 16).

The table below is the list: :func:`test_table_is_pytorchs_list` rebuilds it from torch
itself (the ATen schemas with an ``out`` argument, less the functions whose Python
binding refuses ``out=``, each of those checked) and fails when a gg function PyTorch
gives ``out=`` is missing.  Each semantic rule of ``gpugrad.ops.out_argument`` is then
tested against torch 2.13 on both devices.
"""

import inspect
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.ops import out_argument
from gpugrad.ops.out_argument import OUT_RULES

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4)).astype(np.float32)
Y = rng.standard_normal((3, 4)).astype(np.float32)
P = (rng.random((3, 4)) + 0.5).astype(np.float32)
INTS = rng.integers(-5, 5, (3, 4)).astype(np.int64)
B = X > 0
M = rng.standard_normal((4, 5)).astype(np.float32)
S = rng.standard_normal((3, 3)).astype(np.float32)
B1 = rng.standard_normal((2, 3, 4)).astype(np.float32)
B2 = rng.standard_normal((2, 4, 5)).astype(np.float32)
B0 = rng.standard_normal((2, 3, 5)).astype(np.float32)
V = rng.standard_normal(4).astype(np.float32)
W = rng.standard_normal(5).astype(np.float32)
IDX = np.array([[0, 2, 1, 0]], dtype=np.int64)
ROWS = np.array([2, 0], dtype=np.int64)
PROB = np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]], dtype=np.float32)
H = np.array([0.2, 0.9, 0.5], dtype=np.float32)
NANS = np.array([1.0, np.nan, np.inf, -np.inf], dtype=np.float32)

# The checked-in table: every public gg function that takes out= because PyTorch's does,
# with a small call.  name -> (sample, kind); sample(t) gives (args, kwargs), t making a tensor
# from an array (torch.tensor, or gg.tensor on the test's device).  kind: "values" and
# "creation" are compared with torch; "random" with the same gg call without out= (same seed);
# "empty" only by shape and dtype.
SAMPLES = {
    "abs": (lambda t: ((t(X),), {}), "values"),
    "add": (lambda t: ((t(X), t(Y)), {}), "values"),
    "addmm": (lambda t: ((t(S), t(X), t(X.T.copy())), {}), "values"),
    "all": (lambda t: ((t(B),), {}), "values"),
    "amax": (lambda t: ((t(X),), {"dim": 1}), "values"),
    "amin": (lambda t: ((t(X),), {"dim": 0}), "values"),
    "any": (lambda t: ((t(B),), {}), "values"),
    "arange": (lambda t: ((5,), {}), "creation"),
    "argmax": (lambda t: ((t(X),), {"dim": 1}), "values"),
    "argmin": (lambda t: ((t(X),), {}), "values"),
    "argsort": (lambda t: ((t(X),), {"dim": 1, "stable": True}), "values"),
    "baddbmm": (lambda t: ((t(B0), t(B1), t(B2)), {}), "values"),
    "bernoulli": (lambda t: ((t(P / 2),), {}), "random"),
    "bmm": (lambda t: ((t(B1), t(B2)), {}), "values"),
    "cat": (lambda t: (([t(X), t(Y)],), {"dim": 1}), "values"),
    "ceil": (lambda t: ((t(X),), {}), "values"),
    "clamp": (lambda t: ((t(X),), {"min": -0.5, "max": 0.5}), "values"),
    "clip": (lambda t: ((t(X), -0.5, 0.5), {}), "values"),
    "concat": (lambda t: (([t(X), t(Y)],), {}), "values"),
    "concatenate": (lambda t: (([t(X), t(Y)],), {}), "values"),
    "cos": (lambda t: ((t(X),), {}), "values"),
    "cumsum": (lambda t: ((t(X), 1), {}), "values"),
    "div": (lambda t: ((t(X), t(P)), {}), "values"),
    "divide": (lambda t: ((t(X), t(P)), {}), "values"),
    "dot": (lambda t: ((t(V), t(V)), {}), "values"),
    "empty": (lambda t: ((2, 3), {}), "empty"),
    "eq": (lambda t: ((t(INTS), t(INTS.T.copy().T)), {}), "values"),
    "erf": (lambda t: ((t(X),), {}), "values"),
    "exp": (lambda t: ((t(X),), {}), "values"),
    "expm1": (lambda t: ((t(X),), {}), "values"),
    "eye": (lambda t: ((3,), {}), "creation"),
    "floor": (lambda t: ((t(X),), {}), "values"),
    "full": (lambda t: (((2, 3), 1.5), {}), "creation"),
    "gather": (lambda t: ((t(X), 0, t(IDX)), {}), "values"),
    "ge": (lambda t: ((t(X), t(Y)), {}), "values"),
    "gt": (lambda t: ((t(X), 0.0), {}), "values"),
    "index_add": (lambda t: ((t(X), 0, t(ROWS), t(Y[:2].copy())), {}), "values"),
    "index_select": (lambda t: ((t(X), 0, t(ROWS)), {}), "values"),
    "le": (lambda t: ((t(X), t(Y)), {}), "values"),
    "lerp": (lambda t: ((t(X), t(Y), 0.25), {}), "values"),
    "linspace": (lambda t: ((0.0, 1.0, 5), {}), "creation"),
    "log": (lambda t: ((t(P),), {}), "values"),
    "log1p": (lambda t: ((t(P),), {}), "values"),
    "log_softmax": (lambda t: ((t(X), 1), {}), "values"),
    "logical_and": (lambda t: ((t(B), t(X > 0.5)), {}), "values"),
    "logical_not": (lambda t: ((t(B),), {}), "values"),
    "logical_or": (lambda t: ((t(B), t(X > 0.5)), {}), "values"),
    "logsumexp": (lambda t: ((t(X), 1), {}), "values"),
    "lt": (lambda t: ((t(X), t(Y)), {}), "values"),
    "matmul": (lambda t: ((t(X), t(M)), {}), "values"),
    "max": (lambda t: ((t(X), 1), {}), "values"),
    "maximum": (lambda t: ((t(X), t(Y)), {}), "values"),
    "mean": (lambda t: ((t(X), 0), {}), "values"),
    "min": (lambda t: ((t(X),), {"dim": 0}), "values"),
    "minimum": (lambda t: ((t(X), t(Y)), {}), "values"),
    "mm": (lambda t: ((t(X), t(M)), {}), "values"),
    "mul": (lambda t: ((t(X), t(Y)), {}), "values"),
    "multinomial": (lambda t: ((t(PROB), 2), {}), "random"),
    "multiply": (lambda t: ((t(X), 3.0), {}), "values"),
    "nan_to_num": (lambda t: ((t(NANS),), {"posinf": 9.0}), "values"),
    "ne": (lambda t: ((t(X), t(Y)), {}), "values"),
    "neg": (lambda t: ((t(X),), {}), "values"),
    "negative": (lambda t: ((t(X),), {}), "values"),
    "norm": (lambda t: ((t(X),), {"dim": 1}), "values"),
    "normal": (lambda t: ((t(X), t(P)), {}), "random"),
    "ones": (lambda t: ((2, 3), {}), "creation"),
    "outer": (lambda t: ((t(V), t(W)), {}), "values"),
    "pow": (lambda t: ((t(P), 2.5), {}), "values"),
    "prod": (lambda t: ((t(P), 1), {}), "values"),
    "rand": (lambda t: ((2, 3), {}), "random"),
    "randint": (lambda t: ((0, 10, (2, 3)), {}), "random"),
    "randn": (lambda t: ((2, 3), {}), "random"),
    "randperm": (lambda t: ((6,), {}), "random"),
    "reciprocal": (lambda t: ((t(P),), {}), "values"),
    "rsqrt": (lambda t: ((t(P),), {}), "values"),
    "scatter": (lambda t: ((t(X), 0, t(IDX), t(Y[:1].copy())), {}), "values"),
    "scatter_add": (lambda t: ((t(X), 0, t(IDX), t(Y[:1].copy())), {}), "values"),
    "sigmoid": (lambda t: ((t(X),), {}), "values"),
    "sign": (lambda t: ((t(X),), {}), "values"),
    "sin": (lambda t: ((t(X),), {}), "values"),
    "softmax": (lambda t: ((t(X), 0), {}), "values"),
    "sort": (lambda t: ((t(X),), {"dim": 1}), "values"),
    "sqrt": (lambda t: ((t(P),), {}), "values"),
    "square": (lambda t: ((t(X),), {}), "values"),
    "stack": (lambda t: (([t(X), t(Y)],), {"dim": 1}), "values"),
    "std": (lambda t: ((t(X),), {"dim": 1}), "values"),
    "sub": (lambda t: ((t(X), t(Y)), {}), "values"),
    "subtract": (lambda t: ((t(X), t(Y)), {}), "values"),
    "sum": (lambda t: ((t(X),), {"dim": 0}), "values"),
    "take_along_dim": (lambda t: ((t(X), t(IDX)), {"dim": 0}), "values"),
    "tan": (lambda t: ((t(X),), {}), "values"),
    "tanh": (lambda t: ((t(X),), {}), "values"),
    "topk": (lambda t: ((t(X), 2), {}), "values"),
    "tril": (lambda t: ((t(X),), {}), "values"),
    "triu": (lambda t: ((t(X), 1), {}), "values"),
    "true_divide": (lambda t: ((t(X), t(P)), {}), "values"),
    "var": (lambda t: ((t(X),), {"dim": 0, "keepdim": True}), "values"),
    "where": (lambda t: ((t(B), t(X), t(Y)), {}), "values"),
    "zeros": (lambda t: ((2, 3), {}), "creation"),
}

# Functions whose ATen schema has an out overload that torch's Python function does not
# expose (``torch.flip(x, [0], out=y)`` is a TypeError): gpugrad follows the Python API.
# Each entry's call is checked to be refused by torch, so the list cannot go stale silently.
PYTHON_REFUSES_OUT = {
    "clone": lambda t: ((t(X),), {}),
    "flip": lambda t: ((t(X), [0]), {}),
    "roll": lambda t: ((t(X), 1), {}),
    "relu": lambda t: ((t(X),), {}),
    "isinf": lambda t: ((t(X),), {}),
    "isnan": lambda t: ((t(X),), {}),
    "masked_fill": lambda t: ((t(X), t(B), 0.0), {}),
    "index_put": lambda t: ((t(X), (t(ROWS),), t(np.float32(1.0))), {}),
    "repeat_interleave": lambda t: ((t(X), 2), {}),
    "empty_like": lambda t: ((t(X),), {}),
    "ones_like": lambda t: ((t(X),), {}),
    "zeros_like": lambda t: ((t(X),), {}),
    "full_like": lambda t: ((t(X), 2.0), {}),
    "rand_like": lambda t: ((t(X),), {}),
    "randn_like": lambda t: ((t(X),), {}),
}

NAMESPACES = ("", "linalg", "special", "fft")
"""gg.<name> and, where gpugrad has them, gg.linalg.<name> etc. (PyTorch's namespaces with out=)."""


def _public_functions(namespace):
    module = getattr(gg, namespace) if namespace else gg
    names = getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")])
    for name in names:
        value = getattr(module, name)
        if callable(value) and not inspect.isclass(value) and not inspect.ismodule(value):
            yield (f"{namespace}.{name}" if namespace else name), name


def _torch_function(qualified):
    owner = torch
    for part in qualified.split("."):
        owner = getattr(owner, part, None)
    return owner


def _torch_has_out(qualified):
    """An ``out`` keyword in one of the ATen schemas, or in the signature torch's docstring shows."""
    aten = "aten::" + qualified.replace(".", "_")
    try:
        schemas = torch._C._jit_get_schemas_for_operator(aten)
    except RuntimeError:
        schemas = []
    if any(argument.name == "out" and argument.kwarg_only for schema in schemas for argument in schema.arguments):
        return True
    signature = (_torch_function(qualified).__doc__ or "").split("Args:")[0]
    return "out=None" in signature


def test_table_is_pytorchs_list():
    expected = set()
    for namespace in NAMESPACES:
        if namespace and not hasattr(gg, namespace):
            continue
        for qualified, _ in _public_functions(namespace):
            if _torch_function(qualified) is not None and _torch_has_out(qualified):
                expected.add(qualified)
    expected -= set(PYTHON_REFUSES_OUT)
    assert sorted(expected - set(SAMPLES)) == [], "gg functions PyTorch gives out= that the table lacks"
    assert sorted(set(SAMPLES) - expected) == [], "table entries PyTorch does not give out="
    assert set(OUT_RULES) == set(SAMPLES), "gpugrad.ops.out_argument.OUT_RULES must list the same functions"


@pytest.mark.parametrize("name", sorted(PYTHON_REFUSES_OUT))
def test_torch_python_api_refuses_out(name):
    args, kwargs = PYTHON_REFUSES_OUT[name](torch.tensor)
    getattr(torch, name)(*args, **kwargs)                       # the call itself is fine...
    with pytest.raises(TypeError):
        getattr(torch, name)(*args, **kwargs, out=torch.empty(0))   # ...out= is what torch refuses


def _maker(device):
    return lambda array: gg.tensor(array, device=device)


def _empties(module, result, device=None, dtype=None):
    """Zero-element out tensors of ``result``'s dtypes (``dtype`` replaces the first one's)."""
    def empty(t, first):
        chosen = dtype if first and dtype is not None else t.dtype
        return module.empty(0, dtype=chosen, device=device) if device else module.empty(0, dtype=chosen)
    if isinstance(result, tuple):
        return tuple(empty(t, i == 0) for i, t in enumerate(result))
    return empty(result, True)



def _gg_numpy(t):
    if isinstance(t, gg.Tensor):
        return np.asarray(t.cpu().numpy())
    return t.detach().numpy()


def _same_outs(returned, out):
    if isinstance(out, tuple):
        assert isinstance(returned, tuple) and len(returned) == len(out)
        assert all(r is o for r, o in zip(returned, out))
    else:
        assert returned is out


def _assert_close(got, want, name):
    got, want = _gg_numpy(got), _gg_numpy(want)
    assert got.shape == want.shape, name
    assert str(got.dtype) == str(want.dtype), (name, got.dtype, want.dtype)
    if got.dtype == np.float16:
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=2e-3, atol=2e-3,
                                   err_msg=name)
    elif got.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=name, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_out_matches_torch(name, device):
    sample, kind = SAMPLES[name]
    targs, tkwargs = sample(torch.tensor)
    tresult = getattr(torch, name)(*targs, **tkwargs)
    tout = _empties(torch, tresult)
    _same_outs(getattr(torch, name)(*targs, **tkwargs, out=tout), tout)  # torch takes out= here

    args, kwargs = sample(_maker(device))
    if kind == "random":
        gg.manual_seed(0)
    factory = OUT_RULES[name] in (out_argument.FACTORY, out_argument.NUMERIC_FACTORY, out_argument.FLOAT_FACTORY)
    reference = getattr(gg, name)(*args, **kwargs, **({"device": device} if factory else {}))
    out = _empties(gg, reference, device)
    if kind == "random":
        gg.manual_seed(0)
    returned = getattr(gg, name)(*args, **kwargs, out=out)
    _same_outs(returned, out)
    outs = out if isinstance(out, tuple) else (out,)
    assert all(o.device == gg.device(device) for o in outs)
    wanted = (reference if kind == "random" else tresult)
    wanted = wanted if isinstance(wanted, tuple) else (wanted,)
    for got, want in zip(outs, wanted):
        if kind == "empty":
            assert tuple(got.shape) == tuple(want.shape) and str(got.dtype) == str(want.dtype).replace("torch.", "")
        else:
            _assert_close(got, want, name)
    assert all(o._version >= 1 for o in outs)


_OTHER_DTYPES = {"float32": ("float64", "float16", "int64", "bool"),
                 "int64": ("float32", "int32", "uint8", "bool"),
                 "bool": ("float32", "int64")}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_dtype_rule_matches_torch(name, device):
    """Each op's rule for an out of another dtype is PyTorch's: the same calls work (with
    the same values) and the same calls raise (gg.DTypeError, also a RuntimeError)."""
    sample, kind = SAMPLES[name]
    targs, tkwargs = sample(torch.tensor)
    tresult = getattr(torch, name)(*targs, **tkwargs)
    first = tresult[0] if isinstance(tresult, tuple) else tresult
    args, kwargs = sample(_maker(device))
    for dtype in _OTHER_DTYPES[str(first.dtype).replace("torch.", "")]:
        tout = tuple(torch.empty(t.shape, dtype=getattr(torch, dtype) if i == 0 else t.dtype)
                     for i, t in enumerate(tresult if isinstance(tresult, tuple) else (tresult,)))
        tout = tout if isinstance(tresult, tuple) else tout[0]
        try:
            getattr(torch, name)(*targs, **tkwargs, out=tout)
            torch_error = None
        except (RuntimeError, ValueError, TypeError) as error:   # torch.cat raises TypeError here
            torch_error = error
        reference = getattr(gg, name)(*args, **kwargs)
        out = tuple(gg.empty(*t.shape, dtype=getattr(gg, dtype) if i == 0 else t.dtype, device=device)
                    for i, t in enumerate(reference if isinstance(reference, tuple) else (reference,)))
        out = out if isinstance(reference, tuple) else out[0]
        if torch_error is not None:
            with pytest.raises(gg.DTypeError) as caught:
                getattr(gg, name)(*args, **kwargs, out=out)
            # An alias (gg.divide is gg.div) names the op it is.
            assert isinstance(caught.value, RuntimeError), caught.value
            assert name in str(caught.value) or getattr(gg, name).__name__ in str(caught.value), caught.value
            continue
        _same_outs(getattr(gg, name)(*args, **kwargs, out=out), out)
        got = out[0] if isinstance(out, tuple) else out
        assert str(got.dtype) == dtype
        if kind in ("values", "creation"):
            _assert_close(got, tout[0] if isinstance(tout, tuple) else tout, f"{name} into {dtype}")


# ---------------------------------------------------------------------------------------
# The rules one by one, against torch
# ---------------------------------------------------------------------------------------
def test_returns_out_writes_in_place_and_bumps_the_version(device):
    a, b = gg.tensor(X, device=device), gg.tensor(Y, device=device)
    out = gg.zeros(3, 4, device=device)
    array_before, version_before = out.array, out._version
    assert gg.add(a, b, out=out) is out
    assert out.array is array_before, "out= must write into out's memory, not replace it"
    assert out._version == version_before + 1
    tout = torch.zeros(3, 4)
    tversion = tout._version
    torch.add(torch.tensor(X), torch.tensor(Y), out=tout)
    assert tout._version == tversion + 1
    _assert_close(out, tout, "add")


def test_empty_out_is_resized_silently(device):
    out = gg.empty(0, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gg.mul(gg.tensor(X, device=device), 2.0, out=out)
    assert tuple(out.shape) == (3, 4)
    _assert_close(out, torch.tensor(X) * 2.0, "mul")


def test_non_empty_out_of_another_shape_is_resized_with_pytorchs_warning(device):
    with pytest.warns(UserWarning) as torch_warnings:
        tout = torch.add(torch.tensor(X), 1.0, out=torch.zeros(5))
    with pytest.warns(UserWarning) as gg_warnings:
        out = gg.add(gg.tensor(X, device=device), 1.0, out=gg.zeros(5, device=device))
    torch_text = str(torch_warnings[0].message)
    gg_text = str(gg_warnings[0].message)
    assert torch_text.startswith(gg_text), (gg_text, torch_text)   # torch appends "(Triggered internally at ...)"
    assert gg_warnings[0].filename == __file__, "the warning points at the caller's line"
    _assert_close(out, tout, "add")


def test_same_shape_out_does_not_warn(device):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gg.exp(gg.tensor(X, device=device), out=gg.zeros(3, 4, device=device))


def test_a_view_out_of_another_shape_is_a_shape_error_not_a_silent_copy(device):
    base = gg.zeros(4, 4, device=device)
    with pytest.raises(gg.ShapeError, match="view"):
        gg.add(gg.tensor(X, device=device), 1.0, out=base[:2])
    assert not base.numpy().any(), "nothing written"


def test_float_result_into_an_integer_out_raises_a_dtype_error(device):
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        torch.add(torch.tensor(X), torch.tensor(Y), out=torch.empty(3, 4, dtype=torch.int64))
    out = gg.zeros(3, 4, dtype=gg.int64, device=device)
    with pytest.raises(gg.DTypeError) as caught:
        gg.add(gg.tensor(X, device=device), gg.tensor(Y, device=device), out=out)
    message = str(caught.value)
    assert isinstance(caught.value, RuntimeError)
    assert "add" in message and "float32" in message and "int64" in message
    assert not out.numpy().any() and out._version == 0, "nothing written"


def test_integer_result_into_a_float_out_is_cast(device):
    tout = torch.empty(3, 4)
    torch.add(torch.tensor(INTS), torch.tensor(INTS), out=tout)
    out = gg.empty(3, 4, device=device)
    gg.add(gg.tensor(INTS, device=device), gg.tensor(INTS, device=device), out=out)
    _assert_close(out, tout, "add")


def test_signed_into_unsigned_out_is_allowed_as_in_pytorch(device):
    # NumPy's same_kind refuses int64 -> uint8; PyTorch's can_cast allows it (wrapping).
    tout = torch.empty(3, 4, dtype=torch.uint8)
    torch.add(torch.tensor(INTS), 300, out=tout)
    out = gg.empty(3, 4, dtype=gg.uint8, device=device)
    gg.add(gg.tensor(INTS, device=device), 300, out=out)
    _assert_close(out, tout, "add")


def test_reductions_compute_in_outs_dtype(device):
    big = (np.arange(12, dtype=np.float32).reshape(3, 4) * 1000.3).astype(np.float32)
    for dtype in ("float64", "int64"):
        tout = torch.sum(torch.tensor(big), 0, out=torch.empty(0, dtype=getattr(torch, dtype)))
        out = gg.sum(gg.tensor(big, device=device), 0, out=gg.empty(0, dtype=getattr(gg, dtype), device=device))
        np.testing.assert_array_equal(out.numpy(), tout.numpy())   # int64: the input truncated first, as torch


def test_factories_take_outs_dtype_and_refuse_another(device):
    out = gg.empty(0, dtype=gg.int64, device=device)
    assert gg.full((2, 3), 1.7, out=out) is out
    _assert_close(out, torch.full((2, 3), 1.7, out=torch.empty(0, dtype=torch.int64)), "full")
    with pytest.raises(RuntimeError, match="does not match"):
        torch.zeros(3, dtype=torch.float64, out=torch.empty(0))
    with pytest.raises(gg.DTypeError, match="zeros"):
        gg.zeros(3, dtype=gg.float64, out=gg.empty(0, device=device))
    with pytest.raises(gg.DTypeError, match="rand"):
        gg.rand(3, out=gg.empty(0, dtype=gg.int64, device=device))


def test_device_mismatch_is_a_device_error(device):
    if device != "cuda":
        pytest.skip("needs a second device: runs on the cuda half")
    with pytest.raises(gg.DeviceError, match="add"):
        gg.add(gg.tensor(X, device="cuda"), 1.0, out=gg.empty(3, 4))
    cpu_out = gg.zeros(3, 4)
    with pytest.raises(gg.DeviceError):
        gg.exp(gg.tensor(X), out=gg.zeros(3, 4, device="cuda"))
    assert not cpu_out.numpy().any()


@pytest.mark.parametrize("which", ["input", "out"])
def test_out_refuses_autograd_as_pytorch(which, device):
    def call(module, make):
        x = make(X)
        out = module.empty(3, 4) if module is torch else module.empty(3, 4, device=device)
        (x if which == "input" else out).requires_grad_(True)
        return module.add(x, 1.0, out=out)
    with pytest.raises(RuntimeError) as torch_error:
        call(torch, torch.tensor)
    with pytest.raises(gg.AutogradError) as gg_error:
        call(gg, _maker(device))
    assert isinstance(gg_error.value, RuntimeError)
    assert str(gg_error.value).startswith(str(torch_error.value).rstrip(".")), (gg_error.value, torch_error.value)


def test_out_works_under_no_grad(device):
    x = gg.tensor(X, device=device, requires_grad=True)
    out = gg.empty(0, device=device)
    with gg.no_grad():
        assert gg.mul(x, 2.0, out=out) is out
    assert not out.requires_grad and out.grad_fn is None
    _assert_close(out, torch.tensor(X) * 2, "mul")


@pytest.mark.parametrize("name", ["add", "mul", "maximum", "addmm", "cumsum", "sort"])
def test_an_input_as_out_gives_pytorchs_result(name, device):
    def run(module, make):
        a = make(S if name == "addmm" else X)
        b = make(S.T.copy() if name == "addmm" else Y)
        if name == "addmm":
            return module.addmm(a, b, b, out=a)      # the added term as out
        if name == "cumsum":
            return module.cumsum(a, 1, out=a)
        if name == "sort":
            return module.sort(a, 1, out=(a, module.empty(0, dtype=module.int64) if module is torch
                                          else module.empty(0, dtype=module.int64, device=device)))[0]
        return getattr(module, name)(a, b, out=a)
    want = run(torch, torch.tensor)
    got = run(gg, _maker(device))
    _assert_close(got, want, name)


def test_a_view_out_writes_through_to_its_base(device):
    tbase = torch.zeros(3, 6)
    torch.add(torch.tensor(X), 1.0, out=tbase[:, ::2][:, :4] if False else tbase[:, 1:5])
    base = gg.zeros(3, 6, device=device)
    view = base[:, 1:5]
    version = base._version
    assert gg.add(gg.tensor(X, device=device), 1.0, out=view) is view
    _assert_close(base, tbase, "add into a view")
    assert base._version == version + 1, "the base shares the view's version counter"
    column = base[:, 0]                                    # a strided (non-contiguous) view
    gg.mul(gg.tensor(X[:, 0].copy(), device=device), 3.0, out=column)
    torch.mul(torch.tensor(X[:, 0].copy()), 3.0, out=tbase[:, 0])
    _assert_close(base, tbase, "mul into a column")


def test_a_saved_tensor_overwritten_by_out_fails_backward_as_in_pytorch(device):
    def run(module, make):
        w = make(X).requires_grad_(True)
        buffer = make(Y)
        loss = (w * buffer).sum()
        with module.no_grad():
            module.exp(make(X), out=buffer)
        loss.backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        run(torch, torch.tensor)
    with pytest.raises(gg.AutogradError):
        run(gg, _maker(device))


TUPLE_OPS = {
    "max": lambda t: ((t(X), 1), {}),
    "min": lambda t: ((t(X),), {"dim": 0, "keepdim": True}),
    "sort": lambda t: ((t(X),), {"dim": 0, "descending": True}),
    "topk": lambda t: ((t(X), 3), {"largest": False}),
}


@pytest.mark.parametrize("name", sorted(TUPLE_OPS))
def test_tuple_results_take_a_tuple_out(name, device):
    targs, tkwargs = TUPLE_OPS[name](torch.tensor)
    tvalues, tindices = torch.empty(0), torch.empty(0, dtype=torch.int64)
    tresult = getattr(torch, name)(*targs, **tkwargs, out=(tvalues, tindices))
    args, kwargs = TUPLE_OPS[name](_maker(device))
    values, indices = gg.empty(0, device=device), gg.empty(0, dtype=gg.int64, device=device)
    result = getattr(gg, name)(*args, **kwargs, out=(values, indices))
    assert result.values is values and result.indices is indices and result[0] is values
    assert tresult.values is tvalues
    _assert_close(values, tvalues, name)
    _assert_close(indices, tindices, name)
    with pytest.raises(TypeError):
        getattr(torch, name)(*targs, **tkwargs, out=torch.empty(0))
    with pytest.raises(TypeError, match=name):
        getattr(gg, name)(*args, **kwargs, out=gg.empty(0, device=device))
    with pytest.raises(RuntimeError):
        getattr(torch, name)(*targs, **tkwargs, out=(torch.empty(0), torch.empty(0)))
    with pytest.raises(gg.DTypeError, match="int64"):
        getattr(gg, name)(*args, **kwargs, out=(gg.empty(0, device=device), gg.empty(0, device=device)))


def test_out_must_be_a_tensor():
    with pytest.raises(TypeError):
        torch.add(torch.tensor(X), 1.0, out=np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="out= must be a Tensor"):
        gg.add(gg.tensor(X), 1.0, out=np.zeros((3, 4), np.float32))


def test_without_out_no_second_wrapper():
    """The fast path: gg.exp and gg.sum check ``out`` inside the wrapper they had anyway
    (no extra call); the others are wrapped once, by accepts_out, directly around the op."""
    from gpugrad.ops import elementwise, methods
    assert gg.exp.__wrapped__ is elementwise.exp
    assert gg.sum.__wrapped__ is methods.sum
    assert gg.cumsum.__wrapped__ is methods.cumsum
    from gpugrad import pytorch_names
    assert gg.mm is pytorch_names.mm, "mm's own out= goes to out_argument through write_out"
    for name in OUT_RULES:
        inner = getattr(getattr(gg, name), "__wrapped__", None)
        # A composite's own autocast rule (baddbmm) is the one wrapper allowed under accepts_out.
        assert not hasattr(inner, "__wrapped__") or hasattr(inner, "autocast_rule") or name in ("matmul",), name


@pytest.mark.parametrize("case", ["mm_operand", "outer_operand", "cat_input", "shifted_view", "gather_input"])
def test_other_overlaps_are_typed_errors(case, device):
    """Where PyTorch gives order-dependent values (``torch.mm(a, b, out=a)`` is zeros, a
    shifted view reads what it already wrote) or raises, gpugrad raises OutOverlapError."""
    def run(module, make):
        a = make(np.arange(12, dtype=np.float32).reshape(3, 4))
        if case == "mm_operand":
            return module.mm(a[:, :3], make(S), out=a[:, :3]), a
        if case == "outer_operand":
            return module.outer(a[0, :3], a[0, :3], out=a[:3, :3]), a
        if case == "cat_input":
            return module.cat([a[:1], a[1:]], 0, out=a), a
        if case == "gather_input":
            return module.gather(a, 0, make(IDX.repeat(3, 0)), out=a), a
        return module.add(a[:, :2], a[:, 1:3], out=a[:, 2:4]), a     # writes land where later reads look
    try:
        _, ta = run(torch, torch.tensor)
        natural = np.arange(12, dtype=np.float32).reshape(3, 4)
        torch_is_natural = case == "shifted_view" and np.array_equal(ta.numpy()[:, 2:4],
                                                                     natural[:, :2] + natural[:, 1:3])
        assert not torch_is_natural
    except RuntimeError:
        pass                                         # torch refuses too
    with pytest.raises(out_argument.OutOverlapError) as caught:
        run(gg, _maker(device))
    assert isinstance(caught.value, (gg.ShapeError, RuntimeError))

"""The bad-input battery: every wrong call gets a typed error that says what is
wrong, and leaves everything as it was.

Each case builds its own fresh objects on the device under test, lists the
things it must not change (tensors, gradients, optimizer state, files), makes
one bad call, and checks

* the exception type (and that it is a gpugrad error or the built-in a user
  would catch),
* that the message names the op or class and the offending shapes / dtypes /
  devices / keys (one regex per fact),
* that every watched thing is unchanged, byte for byte.
"""

import hashlib
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import gpugrad as gg


@dataclass
class Case:
    name: str
    build: Callable          # build(device, tmp_path) -> (call, watched)
    error: type
    patterns: list = field(default_factory=list)


def _snapshot(watched):
    state = []
    for item in watched:
        if isinstance(item, gg.Tensor):
            state.append(("tensor", item.numpy().copy(), item._version,
                          None if item.grad is None else item.grad.numpy().copy()))
        elif isinstance(item, (str, os.PathLike)):
            path = os.fspath(item)
            state.append(("file", hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None,
                          sorted(os.listdir(os.path.dirname(path)))))
        elif isinstance(item, dict):
            state.append(("dict", repr(sorted(item.keys()))))
        else:
            raise TypeError(item)
    return state


def _same(before, after):
    assert len(before) == len(after)
    for b, a in zip(before, after):
        assert b[0] == a[0]
        if b[0] == "tensor":
            np.testing.assert_array_equal(b[1], a[1])
            assert b[2] == a[2], "version counter moved"
            if b[3] is None:
                assert a[3] is None, "a gradient appeared"
            else:
                np.testing.assert_array_equal(b[3], a[3])
        else:
            assert b[1:] == a[1:]


def t(*shape, device, dtype=gg.float32, grad=False):
    return gg.randn(*shape, dtype=dtype, device=device, requires_grad=grad)


# --------------------------------------------------------------------------
# ops
# --------------------------------------------------------------------------
def _binary_case(name, make):
    def build(device, tmp_path):
        a, b = t(2, 3, device=device, grad=True), t(4, device=device)
        return (lambda: make(a, b)), [a, b]
    return Case(f"{name}_broadcast", build, gg.ShapeError, [name, r"\(2, 3\)", r"\(4,\)"])


OP_CASES = [
    _binary_case("add", lambda a, b: a + b),
    _binary_case("sub", lambda a, b: a - b),
    _binary_case("mul", lambda a, b: a * b),
    _binary_case("div", lambda a, b: a / b),
    _binary_case("pow", lambda a, b: a ** b),
    _binary_case("maximum", lambda a, b: gg.maximum(a, b)),
    _binary_case("minimum", lambda a, b: gg.minimum(a, b)),
    _binary_case("eq", lambda a, b: a == b),
    _binary_case("lt", lambda a, b: a < b),
    Case("where_broadcast", lambda d, p: ((lambda m, a, b: (lambda: gg.where(m, a, b), [a, b]))(
        gg.ones(2, 3, device=d) > 0, t(2, 3, device=d, grad=True), t(5, device=d))), gg.ShapeError, ["where", r"\(5,\)"]),
    Case("matmul_inner", lambda d, p: ((lambda a, b: (lambda: a @ b, [a, b]))(t(2, 3, device=d, grad=True), t(4, 5, device=d))),
         gg.ShapeError, ["matmul", r"\(2, 3\)", r"\(4, 5\)", "transpose or reshape"]),
    Case("matmul_scalar", lambda d, p: ((lambda a: (lambda: a @ gg.tensor(2.0, device=d), [a]))(t(2, 3, device=d))),
         gg.ShapeError, ["matmul", "at least one dimension"]),
    Case("matmul_batch", lambda d, p: ((lambda a, b: (lambda: a @ b, [a, b]))(t(2, 3, 4, device=d), t(3, 4, 5, device=d))),
         gg.ShapeError, ["matmul", r"\(2, 3, 4\)"]),
    Case("reshape_size", lambda d, p: ((lambda a: (lambda: a.reshape(4, 2), [a]))(t(6, device=d, grad=True))),
         gg.ShapeError, ["reshape", r"\(6,\)", r"\(4, 2\)", "number of elements"]),
    Case("reshape_two_unknowns", lambda d, p: ((lambda a: (lambda: a.reshape(-1, -1), [a]))(t(6, device=d))),
         gg.ShapeError, ["reshape", "only one dimension can be -1"]),
    Case("reshape_negative", lambda d, p: ((lambda a: (lambda: a.reshape(-2, 3), [a]))(t(6, device=d))),
         gg.ShapeError, ["reshape", "invalid size -2"]),
    Case("sum_dim_range", lambda d, p: ((lambda a: (lambda: a.sum(dim=2), [a]))(t(2, 3, device=d))),
         gg.ShapeError, ["dim 2 is out of range", "2 dimension"]),
    Case("mean_dim_repeat", lambda d, p: ((lambda a: (lambda: a.mean(dim=(0, 0)), [a]))(t(2, 3, device=d))),
         gg.ShapeError, ["repeats a dimension"]),
    Case("mean_integer", lambda d, p: ((lambda a: (lambda: a.mean(), [a]))(gg.arange(4, device=d))),
         gg.DTypeError, ["mean", "int64", "float"]),
    Case("amax_empty", lambda d, p: ((lambda a: (lambda: a.amax(), [a]))(gg.zeros(0, 3, device=d))),
         gg.ShapeError, ["amax", "empty", r"\(0, 3\)"]),
    Case("argmax_empty", lambda d, p: ((lambda a: (lambda: a.argmax(), [a]))(gg.zeros(0, device=d))),
         gg.ShapeError, ["argmax", "empty"]),
    Case("norm_order", lambda d, p: ((lambda a: (lambda: a.norm(p=-1), [a]))(t(3, device=d))),
         ValueError, ["norm", "ord=-1"]),
    Case("cumsum_no_dim", lambda d, p: ((lambda a: (lambda: a.cumsum(), [a]))(t(3, device=d))),
         gg.ShapeError, ["cumsum", "dim"]),
    Case("cat_mismatch", lambda d, p: ((lambda a, b: (lambda: gg.cat([a, b]), [a, b]))(t(2, 3, device=d), t(2, 4, device=d))),
         gg.ShapeError, ["cat", r"tensor 1 has shape \(2, 4\)", r"\(2, 3\)"]),
    Case("cat_empty_list", lambda d, p: ((lambda: gg.cat([])), []), gg.ShapeError, ["cat", "non-empty"]),
    Case("cat_scalars", lambda d, p: ((lambda a: (lambda: gg.cat([a, a]), [a]))(gg.tensor(1.0, device=d))),
         gg.ShapeError, ["cat", "zero-dimensional", "stack"]),
    Case("stack_mismatch", lambda d, p: ((lambda a, b: (lambda: gg.stack([a, b]), [a, b]))(t(2, device=d), t(3, device=d))),
         gg.ShapeError, ["stack", r"\(3,\)", "equal shape"]),
    Case("permute_not_permutation", lambda d, p: ((lambda a: (lambda: a.permute(0, 0, 1), [a]))(t(2, 3, 4, device=d))),
         gg.ShapeError, ["permute", "not a permutation"]),
    Case("expand_bad", lambda d, p: ((lambda a: (lambda: a.expand(4, 5), [a]))(t(2, 3, device=d))),
         gg.ShapeError, ["broadcast_to", r"\(2, 3\)", r"\(4, 5\)"]),
    Case("expand_too_few", lambda d, p: ((lambda a: (lambda: a.expand(3), [a]))(t(2, 3, device=d))),
         gg.ShapeError, ["expand", "number of sizes"]),
    Case("squeeze_range", lambda d, p: ((lambda a: (lambda: a.squeeze(5), [a]))(t(2, 1, device=d))),
         gg.ShapeError, ["squeeze", "dim 5"]),
    Case("unsqueeze_range", lambda d, p: ((lambda a: (lambda: a.unsqueeze(4), [a]))(t(2, 1, device=d))),
         gg.ShapeError, ["unsqueeze", "dim 4"]),
    Case("split_sizes", lambda d, p: ((lambda a: (lambda: a.split([1, 1]), [a]))(t(3, device=d))),
         gg.ShapeError, ["split", "add up to 2", "size 3"]),
    Case("chunk_zero", lambda d, p: ((lambda a: (lambda: a.chunk(0), [a]))(t(3, device=d))),
         gg.ShapeError, ["chunk", "positive"]),
    Case("repeat_too_few", lambda d, p: ((lambda a: (lambda: a.repeat(2), [a]))(t(2, 3, device=d))),
         gg.ShapeError, ["repeat", "one count per dimension"]),
    Case("pad_odd", lambda d, p: ((lambda a: (lambda: gg.pad(a, (1,)), [a]))(t(2, 3, device=d))),
         gg.ShapeError, ["pad", "even length"]),
    Case("index_out_of_range", lambda d, p: ((lambda a: (lambda: a[5], [a]))(t(3, device=d))),
         IndexError, ["5 is out of range", "size 3"]),
    Case("too_many_indices", lambda d, p: ((lambda a: (lambda: a[0, 0], [a]))(t(3, device=d))),
         IndexError, ["too many indices", r"\(3,\)"]),
    Case("float_index", lambda d, p: ((lambda a: (lambda: a[gg.tensor([0.5], device=d)], [a]))(t(3, device=d))),
         IndexError, ["integer or bool", "float32"]),
    Case("gather_dims", lambda d, p: ((lambda a: (lambda: a.gather(1, gg.zeros(3, dtype=gg.int64, device=d)), [a]))(t(2, 3, device=d))),
         gg.ShapeError, ["gather", r"\(3,\)", r"\(2, 3\)"]),
    Case("gather_range", lambda d, p: ((lambda a: (lambda: a.gather(1, gg.full((2, 1), 7, device=d)), [a]))(t(2, 3, device=d))),
         IndexError, ["gather", "out of range", "size 3"]),
    Case("gather_float_index", lambda d, p: ((lambda a: (lambda: a.gather(1, gg.zeros(2, 1, device=d)), [a]))(t(2, 3, device=d))),
         gg.DTypeError, ["gather", "integer", "float32"]),
    Case("index_add_shape", lambda d, p: ((lambda a: (lambda: a.index_add(0, gg.tensor([0, 1], device=d), t(3, 3, device=d)), [a]))(t(4, 3, device=d))),
         gg.ShapeError, ["index_add", r"\(3, 3\)", r"\(2, 3\)"]),
    Case("einsum_operands", lambda d, p: ((lambda a: (lambda: gg.einsum("ij,jk->ik", a), [a]))(t(2, 3, device=d))),
         gg.ShapeError, ["einsum", "2 operands", "1 tensors"]),
    Case("clamp_bounds", lambda d, p: ((lambda a: (lambda: a.clamp(min=2, max=1), [a]))(t(3, device=d))),
         ValueError, ["clamp", "min=2", "max=1"]),
    Case("outer_rank", lambda d, p: ((lambda a: (lambda: gg.outer(a, a), [a]))(t(2, 2, device=d))),
         gg.ShapeError, ["outer", "1-D", r"\(2, 2\)"]),
]

# --------------------------------------------------------------------------
# tensors, dtypes, devices, autograd
# --------------------------------------------------------------------------
def _freed_graph(d, p):
    x = t(3, device=d, grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    x.grad.numpy().copy()
    return (lambda: y.backward()), [x]


def _modified_saved(d, p):
    x = t(3, device=d, grad=True)
    h = x * 2
    y = (h * h).sum()
    with gg.no_grad():
        h.add_(1)
    return (lambda: y.backward()), [x]


AUTOGRAD_CASES = [
    Case("requires_grad_int", lambda d, p: ((lambda: gg.arange(3, device=d).requires_grad_()), []),
         gg.DTypeError, ["requires_grad", "int64", r"t\.float\(\)"]),
    Case("tensor_int_requires_grad", lambda d, p: ((lambda: gg.tensor([1, 2], device=d, requires_grad=True)), []),
         gg.DTypeError, ["only floating tensors"]),
    Case("backward_nonscalar", lambda d, p: ((lambda x: (lambda: (x * 2).backward(), [x]))(t(3, device=d, grad=True))),
         gg.AutogradError, ["one-element outputs", r"\(3,\)", "sum"]),
    Case("backward_twice", _freed_graph, gg.AutogradError, ["second time", "mul|sum|exp", "retain_graph=True"]),
    Case("modified_saved_tensor", _modified_saved, gg.AutogradError, ["op 'mul'", "modified in place", "clone"]),
    Case("backward_no_graph", lambda d, p: ((lambda x: (lambda: x.sum().backward(), [x]))(t(3, device=d))),
         gg.AutogradError, ["does not require grad"]),
    Case("backward_gradient_shape", lambda d, p: ((lambda x: (lambda: (x * 2).backward(gg.ones(4, device=d)), [x]))(t(3, device=d, grad=True))),
         gg.ShapeError, ["gradient has shape", r"\(4,\)", r"\(3,\)"]),
    Case("grad_unused", lambda d, p: ((lambda x, u: (lambda: gg.grad((x * 2).sum(), [x, u]), [x, u]))(t(3, device=d, grad=True), t(2, device=d, grad=True))),
         gg.AutogradError, ["input 1", "allow_unused=True"]),
    Case("grad_input_no_grad", lambda d, p: ((lambda x, c: (lambda: gg.grad((x * c).sum(), [c]), [x, c]))(t(3, device=d, grad=True), t(3, device=d))),
         gg.AutogradError, ["input 0", "does not require grad"]),
    Case("inplace_leaf", lambda d, p: ((lambda x: (lambda: x.mul_(2), [x]))(t(3, device=d, grad=True))),
         gg.AutogradError, ["mul_", "leaf", "no_grad"]),
    Case("inplace_shape", lambda d, p: ((lambda x: (lambda: x.add_(gg.ones(2, 3, device=d)), [x]))(t(3, device=d))),
         gg.ShapeError, ["add_", r"\(2, 3\)", r"\(3,\)"]),
    Case("inplace_float_into_int", lambda d, p: ((lambda x: (lambda: x.add_(0.5), [x]))(gg.arange(3, device=d))),
         gg.DTypeError, ["add_", "float", "int64"]),
    Case("inplace_expanded", lambda d, p: ((lambda x: (lambda: x.expand(3, 2).add_(1), [x]))(t(1, 2, device=d))),
         gg.AutogradError, ["add_", "broadcast", "clone"]),
    Case("hook_wrong_shape", lambda d, p: ((lambda x: (x.register_hook(lambda g: g.sum()), (lambda: (x * 2).sum().backward(), [x]))[1])(t(3, device=d, grad=True))),
         gg.ShapeError, ["hook", r"\(3,\)"]),
    Case("negative_size", lambda d, p: ((lambda: gg.zeros(2, -3, device=d)), []), gg.ShapeError, ["zeros", "negative size"]),
    Case("randint_range", lambda d, p: ((lambda: gg.randint(5, 5, (2,), device=d)), []), ValueError, ["randint", "high"]),
    Case("rand_int_dtype", lambda d, p: ((lambda: gg.rand(2, dtype=gg.int64, device=d)), []), gg.DTypeError, ["rand", "int64"]),
    Case("bad_dtype_name", lambda d, p: ((lambda: gg.zeros(2, dtype="float33", device=d)), []), gg.DTypeError, ["float33"]),
    Case("bad_device_name", lambda d, p: ((lambda: gg.zeros(2, device="gpu")), []), gg.DeviceError, ["gpu", "cuda"]),
    Case("item_many", lambda d, p: ((lambda x: (lambda: x.item(), [x]))(t(3, device=d))),
         gg.ShapeError, ["item", r"\(3,\)"]),
    Case("bool_many", lambda d, p: ((lambda x: (lambda: bool(x), [x]))(t(3, device=d))),
         ValueError, ["ambiguous", "any"]),
    Case("cuda_missing", lambda d, p: ((lambda x: (lambda: x.to("cuda:9") if gg.cuda.is_available() else x.cuda(), [x]))(t(3, device=d))),
         gg.DeviceError, ["cuda"]),
]


def _two_devices(d, p):
    if not gg.cuda.is_available():
        pytest.skip("needs a GPU for a second device")
    a, b = t(3, device="cpu", grad=True), t(3, device="cuda")
    return (lambda: a + b), [a]


AUTOGRAD_CASES.append(Case("mixed_devices", _two_devices, gg.DeviceError, ["add", "cpu", "cuda", r"\.to\(device\)"]))

# --------------------------------------------------------------------------
# optim
# --------------------------------------------------------------------------
def _optimizer_with_bad_grad(d, p):
    w = t(3, device=d, grad=True)
    optimizer = gg.optim.Adam([w], lr=0.1)
    w.grad = gg.ones(3, device=d)
    optimizer.step()
    w.grad = gg.ones(4, device=d)
    state = optimizer.state[w]
    return (lambda: optimizer.step()), [w, state["exp_avg"], state["exp_avg_sq"]]


OPTIM_CASES = [
    Case("sgd_non_leaf", lambda d, p: ((lambda w: (lambda: gg.optim.SGD([w * 2], lr=0.1), [w]))(t(3, device=d, grad=True))),
         ValueError, ["SGD", "not a leaf", r"\(3,\)"]),
    Case("sgd_empty", lambda d, p: ((lambda: gg.optim.SGD([], lr=0.1)), []), ValueError, ["SGD", "empty parameter list"]),
    Case("sgd_negative_lr", lambda d, p: ((lambda w: (lambda: gg.optim.SGD([w], lr=-1.0), [w]))(t(3, device=d, grad=True))),
         ValueError, ["SGD", "lr=-1"]),
    Case("sgd_nesterov_without_momentum", lambda d, p: ((lambda w: (lambda: gg.optim.SGD([w], lr=0.1, nesterov=True), [w]))(t(3, device=d, grad=True))),
         ValueError, ["SGD", "[Nn]esterov", "momentum"]),
    Case("adam_betas", lambda d, p: ((lambda w: (lambda: gg.optim.Adam([w], betas=(1.5, 0.9)), [w]))(t(3, device=d, grad=True))),
         ValueError, ["Adam", "betas"]),
    Case("adam_gradient_shape", _optimizer_with_bad_grad, gg.ShapeError, ["Adam", r"\(3,\)", r"\(4,\)"]),
    Case("optimizer_bad_state_dict", lambda d, p: ((lambda w: (lambda o: (lambda: o.load_state_dict({"state": {}, "param_groups": []}), [w]))(gg.optim.SGD([w], lr=0.1)))(t(3, device=d, grad=True))),
         ValueError, ["load_state_dict", "0 parameter group", "1"]),
    Case("no_grad_parameter", lambda d, p: ((lambda w: (lambda: gg.optim.SGD([w], lr=0.1), [w]))(t(3, device=d))),
         ValueError, ["SGD", "requires_grad"]),
]

# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
DATA_CASES = [
    Case("dataset_lengths", lambda d, p: ((lambda a, b: (lambda: gg.data.TensorDataset(a, b), [a, b]))(t(3, device=d), t(4, device=d))),
         gg.ShapeError, ["TensorDataset", r"\(3,\)", r"\(4,\)"]),
    Case("loader_empty", lambda d, p: ((lambda: gg.data.DataLoader(gg.data.TensorDataset(gg.zeros(0, 2, device=d)), batch_size=2)), []),
         ValueError, ["DataLoader", "length 0"]),
    Case("loader_batch_zero", lambda d, p: ((lambda: gg.data.DataLoader(gg.data.TensorDataset(gg.zeros(3, 2, device=d)), batch_size=0)), []),
         ValueError, ["DataLoader", "batch_size=0"]),
]

# --------------------------------------------------------------------------
# io
# --------------------------------------------------------------------------
def _checkpoint(d, p):
    path = p / "model.safetensors"
    gg.save({"w": gg.ones(3, device=d)}, path)
    return path


IO_CASES = [
    Case("load_missing", lambda d, p: ((lambda: gg.load(p / "absent.safetensors")), []), FileNotFoundError, ["absent"]),
    Case("load_junk", lambda d, p: ((lambda path: (path.write_bytes(b"hello world, not a checkpoint"),
                                                    (lambda: gg.load(path), [path]))[1])(p / "junk.bin")),
         gg.CheckpointError, ["junk.bin", "header"]),
    Case("load_truncated", lambda d, p: ((lambda path: (path.write_bytes(path.read_bytes()[:-5]), (lambda: gg.load(path), [path]))[1])(_checkpoint(d, p))),
         gg.CheckpointError, ["model.safetensors", "truncated|past the end|bytes"]),
    Case("save_unsupported_object", lambda d, p: ((lambda path: (lambda: gg.save({"a": object()}, path), [path]))(_checkpoint(d, p))),
         TypeError, ["gg.save", "object", r"\['a'\]"]),
]

ALL_CASES = OP_CASES + AUTOGRAD_CASES + OPTIM_CASES + DATA_CASES + IO_CASES


def test_battery_is_large_enough():
    assert len(ALL_CASES) >= 60, len(ALL_CASES)
    assert len({case.name for case in ALL_CASES}) == len(ALL_CASES)


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.name for case in ALL_CASES])
def test_bad_input(case, device, tmp_path):
    call, watched = case.build(device, tmp_path)
    before = _snapshot(watched)
    with pytest.raises(case.error) as info:
        call()
    message = str(info.value)
    for pattern in case.patterns:
        assert __import__("re").search(pattern, message), f"message lacks {pattern!r}: {message}"
    assert isinstance(info.value, (gg.GpugradError, ValueError, TypeError, IndexError, RuntimeError, OSError))
    _same(before, _snapshot(watched))

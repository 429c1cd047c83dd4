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
from collections.abc import Callable
from dataclasses import dataclass, field

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
        elif isinstance(item, gg.optim.Optimizer):
            packed = item.state_dict()
            state.append(("optimizer", repr(packed["param_groups"]),
                          repr({index: {key: (value.numpy().tolist() if isinstance(value, gg.Tensor) else value)
                                        for key, value in entries.items()}
                                for index, entries in packed["state"].items()})))
        elif isinstance(item, (gg.optim.lr_scheduler.LRScheduler, gg.optim.lr_scheduler.ReduceLROnPlateau)):
            state.append(("scheduler", repr(sorted(item.state_dict().items(), key=lambda pair: pair[0]))))
        elif isinstance(item, gg.data.DataLoader):
            state.append(("loader", repr(item.state_dict())))
        elif isinstance(item, _Directory):
            state.append(("directory", sorted(os.listdir(item.path)),
                          {name: oct(os.stat(os.path.join(item.path, name)).st_mode)
                           for name in os.listdir(item.path)}))
        elif isinstance(item, _RandomState):
            state.append(("rng", repr(gg.backend.get_rng_state())))
        else:
            raise TypeError(item)
    return state


class _RandomState:
    """Watch the global random state."""


@dataclass
class _Directory:
    """Watch a whole directory: no file appears, disappears or changes mode (temporary files)."""
    path: str


def _same(before, after):
    assert len(before) == len(after)
    for b, a in zip(before, after, strict=True):
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

# --------------------------------------------------------------------------
# training state (issue 13): validated loading, fit's resume, crafted files
# --------------------------------------------------------------------------
def _trained(optimizer_class=gg.optim.Adam, device="cpu", **options):
    w = gg.tensor([1.0, -2.0, 0.5], device=device, requires_grad=True)
    optimizer = optimizer_class([w], lr=0.1, **options)
    w.grad = gg.ones(3, device=device)
    optimizer.step()
    w.grad = gg.ones(3, device=device)
    return w, optimizer


def _load_into(make_state, optimizer_class=gg.optim.Adam, **options):
    """load_state_dict of a crafted state into a stepped optimizer; watch it all."""
    def build(d, p):
        w, optimizer = _trained(optimizer_class, d, **options)
        state = make_state(d, optimizer)
        return (lambda: optimizer.load_state_dict(state)), [w, optimizer]
    return build


def _adam_state(d, optimizer, **entry):
    packed = optimizer.state_dict()
    base = {"step": 1, "exp_avg": gg.zeros(3, device=d), "exp_avg_sq": gg.zeros(3, device=d)}
    base.update(entry)
    return {"state": {0: {k: v for k, v in base.items() if v is not _DROP}}, "param_groups": packed["param_groups"]}


_DROP = object()


def _read_only_step(d, p):
    if d != "cpu":
        pytest.skip("device memory has no read-only flag")
    writable = gg.tensor([1.0, 2.0], requires_grad=True)
    frozen = gg.from_numpy(np.frombuffer(np.array([3.0, 4.0], dtype=np.float32).tobytes(), dtype=np.float32))
    frozen.requires_grad_()
    optimizer = gg.optim.SGD([writable, frozen], lr=0.1, momentum=0.9)
    writable.grad, frozen.grad = gg.ones(2), gg.ones(2)
    return (lambda: optimizer.step()), [writable, frozen, optimizer]


def _scheduler_case(name, make, error_facts):
    def build(d, p):
        w, optimizer = _trained(gg.optim.SGD, d, momentum=0.9)
        return (lambda: make(optimizer)), [w, optimizer]
    return Case(f"scheduler_{name}", build, ValueError, error_facts)


def _scheduler_load(name, make, key, value, facts):
    def build(d, p):
        w, optimizer = _trained(gg.optim.SGD, d, momentum=0.9)
        scheduler = make(optimizer)
        state = dict(scheduler.state_dict(), **{key: value})
        return (lambda: scheduler.load_state_dict(state)), [w, optimizer, scheduler]
    return Case(f"scheduler_load_{name}", build, ValueError, facts)


S = gg.optim.lr_scheduler
NAN, INF = float("nan"), float("inf")


def _fit_setup(d, p, callbacks=(), samples=48, batch_size=16, drop_last=False):
    gg.manual_seed(0)
    x = gg.randn(samples, 2, device=d)
    y = (x[:, 0] > 0).long()
    loader = gg.data.DataLoader(gg.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True, seed=0,
                                drop_last=drop_last)
    model = gg.nn.Linear(2, 2).to(d)
    optimizer = gg.optim.Adam(model.parameters(), lr=0.01)
    scheduler = S.StepLR(optimizer, step_size=1, gamma=0.5)
    path = p / "run.safetensors"

    def run(**options):
        return gg.train.fit(model, optimizer, gg.nn.CrossEntropyLoss(), loader, scheduler=scheduler,
                            callbacks=list(callbacks), checkpoint=path, progress=False, **options)
    watched = [model.weight, model.bias, optimizer, scheduler, loader, path, _Directory(str(p)), _RandomState()]
    return run, path, watched


def _resume_with(edit=None, callbacks_then=(), callbacks_now=()):
    """A fit checkpoint (optionally edited), then a resume that must refuse it and change nothing."""
    def build(d, p):
        first, path, _ = _fit_setup(d, p, callbacks_then)
        first(epochs=1)
        if edit is not None:
            state = gg.load(path)
            edit(state)
            gg.save(state, path)
        run, _, watched = _fit_setup(d, p, callbacks_now)
        return (lambda: run(epochs=3)), watched
    return build


def _set(path, value):
    def edit(state):
        node = state
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _crafted_file(structure, facts_name="crafted.safetensors"):
    def build(d, p):
        import json
        import struct
        header = {"__metadata__": {"format": "gpugrad", "gpugrad.structure": json.dumps(structure)},
                  "t": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}
        encoded = json.dumps(header).encode()
        path = p / facts_name
        path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"\0" * 8)
        return (lambda: gg.load(path)), [path, _Directory(str(p))]
    return build


STATE_CASES = [
    # Optimizer.load_state_dict: validate everything, then apply.
    Case("optimizer_load_other_algorithm", _load_into(lambda d, o: _trained(gg.optim.SGD, d, momentum=0.9)[1].state_dict()
                                                       | {"param_groups": o.state_dict()["param_groups"]}),
         ValueError, ["Adam.load_state_dict", "momentum_buffer", "another optimizer", "exp_avg"]),
    Case("optimizer_load_step_nan", _load_into(lambda d, o: _adam_state(d, o, step=NAN)),
         ValueError, ["Adam.load_state_dict", "'step' of parameter 0 is nan", "finite integer >= 0"]),
    Case("optimizer_load_step_negative", _load_into(lambda d, o: _adam_state(d, o, step=-3)),
         ValueError, ["'step' of parameter 0 is -3", "finite integer >= 0"]),
    Case("optimizer_load_step_fraction", _load_into(lambda d, o: _adam_state(d, o, step=2.5)),
         ValueError, ["'step' of parameter 0 is 2.5"]),
    Case("optimizer_load_step_string", _load_into(lambda d, o: _adam_state(d, o, step="3")),
         ValueError, ["'step' of parameter 0", "str"]),
    Case("optimizer_load_step_inf", _load_into(lambda d, o: _adam_state(d, o, step=INF)),
         ValueError, ["'step' of parameter 0 is inf"]),
    Case("optimizer_load_moment_shape", _load_into(lambda d, o: _adam_state(d, o, exp_avg=gg.zeros(4, device=d))),
         gg.ShapeError, ["'exp_avg' of parameter 0", r"\(4,\)", r"\(3,\)"]),
    Case("optimizer_load_moment_0d", _load_into(lambda d, o: _adam_state(d, o, exp_avg_sq=gg.tensor(0.0, device=d))),
         gg.ShapeError, ["'exp_avg_sq' of parameter 0", r"shape \(\)", r"\(3,\)"]),
    Case("optimizer_load_moment_dtype", _load_into(lambda d, o: _adam_state(d, o, exp_avg=gg.zeros(3, dtype=gg.float64, device=d))),
         gg.DTypeError, ["'exp_avg' of parameter 0", "float64", "float32"]),
    Case("optimizer_load_moment_not_tensor", _load_into(lambda d, o: _adam_state(d, o, exp_avg=[0.0, 0.0, 0.0])),
         TypeError, ["'exp_avg' of parameter 0", "list", "tensor"]),
    Case("optimizer_load_incomplete", _load_into(lambda d, o: _adam_state(d, o, exp_avg_sq=_DROP)),
         ValueError, ["lacks", "exp_avg_sq"]),
    Case("optimizer_load_sgd_momentum_shape", _load_into(
        lambda d, o: {"state": {0: {"momentum_buffer": gg.zeros(2, device=d)}}, "param_groups": o.state_dict()["param_groups"]},
        gg.optim.SGD, momentum=0.9), gg.ShapeError, ["SGD.load_state_dict", "momentum_buffer", r"\(2,\)", r"\(3,\)"]),
    Case("optimizer_load_group_lr_nan", _load_into(
        lambda d, o: {"state": {}, "param_groups": [dict(o.state_dict()["param_groups"][0], lr=NAN)]}),
         ValueError, ["Adam", "lr", "NaN"]),
    Case("optimizer_lr_inf", lambda d, p: ((lambda w: (lambda: gg.optim.Adam([w], lr=INF), [w]))(t(3, device=d, grad=True))),
         ValueError, ["Adam", "lr=inf", "infinite"]),
    Case("optimizer_step_read_only", _read_only_step, ValueError, ["SGD.step", "read-only", r"\(2,\)", "no parameter was changed"]),
    # Schedulers: every constructor refuses NaN / infinite / out-of-range settings.
    _scheduler_case("steplr_gamma_nan", lambda o: S.StepLR(o, 2, gamma=NAN), ["StepLR", "gamma=nan", "finite"]),
    _scheduler_case("steplr_gamma_negative", lambda o: S.StepLR(o, 2, gamma=-0.5), ["StepLR", "gamma=-0.5", "range"]),
    _scheduler_case("steplr_step_size", lambda o: S.StepLR(o, 0), ["StepLR", "step_size=0"]),
    _scheduler_case("multistep_gamma_inf", lambda o: S.MultiStepLR(o, [1, 2], gamma=INF), ["MultiStepLR", "gamma=inf"]),
    _scheduler_case("multistep_negative_milestone", lambda o: S.MultiStepLR(o, [-1, 2]), ["MultiStepLR", r"milestones\[0\]=-1"]),
    _scheduler_case("multistep_unsorted", lambda o: S.MultiStepLR(o, [3, 1]), ["MultiStepLR", "increasing"]),
    _scheduler_case("exponential_gamma_nan", lambda o: S.ExponentialLR(o, NAN), ["ExponentialLR", "gamma=nan"]),
    _scheduler_case("exponential_gamma_zero", lambda o: S.ExponentialLR(o, 0.0), ["ExponentialLR", "gamma=0.0", "range"]),
    _scheduler_case("cosine_eta_min_nan", lambda o: S.CosineAnnealingLR(o, 5, eta_min=NAN), ["CosineAnnealingLR", "eta_min=nan"]),
    _scheduler_case("cosine_t_max", lambda o: S.CosineAnnealingLR(o, 0), ["CosineAnnealingLR", "T_max=0"]),
    _scheduler_case("linear_start_nan", lambda o: S.LinearLR(o, start_factor=NAN), ["LinearLR", "start_factor=nan"]),
    _scheduler_case("linear_end_nan", lambda o: S.LinearLR(o, end_factor=NAN), ["LinearLR", "end_factor=nan"]),
    _scheduler_case("onecycle_div_factor_zero", lambda o: S.OneCycleLR(o, 1.0, total_steps=10, div_factor=0),
                    ["OneCycleLR", "div_factor=0", "range"]),
    _scheduler_case("onecycle_final_div_inf", lambda o: S.OneCycleLR(o, 1.0, total_steps=10, final_div_factor=INF),
                    ["OneCycleLR", "final_div_factor=inf"]),
    _scheduler_case("onecycle_max_lr_nan", lambda o: S.OneCycleLR(o, NAN, total_steps=10), ["OneCycleLR", r"max_lr\[0\]=nan"]),
    _scheduler_case("onecycle_momentum_nan", lambda o: S.OneCycleLR(o, 1.0, total_steps=10, base_momentum=NAN),
                    ["OneCycleLR", r"base_momentum\[0\]=nan"]),
    _scheduler_case("onecycle_zero_step_phase", lambda o: S.OneCycleLR(o, 1.0, total_steps=10, pct_start=0.1),
                    ["OneCycleLR", "pct_start=0.1", "total_steps=10", "zero steps"]),
    _scheduler_case("plateau_factor_nan", lambda o: S.ReduceLROnPlateau(o, factor=NAN), ["ReduceLROnPlateau", "factor=nan"]),
    _scheduler_case("plateau_factor_negative", lambda o: S.ReduceLROnPlateau(o, factor=-0.5), ["ReduceLROnPlateau", "factor=-0.5"]),
    _scheduler_case("plateau_patience", lambda o: S.ReduceLROnPlateau(o, patience=-1), ["ReduceLROnPlateau", "patience=-1"]),
    _scheduler_case("plateau_threshold_inf", lambda o: S.ReduceLROnPlateau(o, threshold=INF), ["ReduceLROnPlateau", "threshold=inf"]),
    _scheduler_case("plateau_min_lr_nan", lambda o: S.ReduceLROnPlateau(o, min_lr=NAN), ["ReduceLROnPlateau", r"min_lr\[0\]=nan"]),
    _scheduler_case("plateau_eps_nan", lambda o: S.ReduceLROnPlateau(o, eps=NAN), ["ReduceLROnPlateau", "eps=nan"]),
    _scheduler_case("plateau_cooldown", lambda o: S.ReduceLROnPlateau(o, cooldown=0.5), ["ReduceLROnPlateau", "cooldown=0.5"]),
    _scheduler_case("last_epoch", lambda o: S.ExponentialLR(o, 0.9, last_epoch=-7), ["ExponentialLR", "last_epoch=-7"]),
    # ... and load_state_dict refuses the same values before changing anything.
    _scheduler_load("steplr_gamma", lambda o: S.StepLR(o, 2), "gamma", NAN, ["StepLR.load_state_dict", "gamma=nan"]),
    _scheduler_load("cosine_last_epoch", lambda o: S.CosineAnnealingLR(o, 4), "last_epoch", 1.5,
                    ["CosineAnnealingLR.load_state_dict", "last_epoch=1.5"]),
    _scheduler_load("base_lrs", lambda o: S.LinearLR(o), "base_lrs", [INF], ["LinearLR.load_state_dict", r"base_lrs\[0\]=inf"]),
    _scheduler_load("onecycle_total_steps", lambda o: S.OneCycleLR(o, 1.0, total_steps=10), "total_steps", 0,
                    ["OneCycleLR.load_state_dict", "total_steps=0"]),
    _scheduler_load("plateau_factor", lambda o: S.ReduceLROnPlateau(o), "factor", 2.0, ["ReduceLROnPlateau.load_state_dict", "factor=2.0"]),
    _scheduler_load("plateau_best_nan", lambda o: S.ReduceLROnPlateau(o), "best", NAN, ["ReduceLROnPlateau.load_state_dict", "best=nan"]),
    _scheduler_load("unknown_key", lambda o: S.StepLR(o, 2), "T_max", 3, ["StepLR.load_state_dict", "unknown keys", "T_max"]),
    # fit: resume is all or nothing; callbacks must match; a loader must yield batches.
    Case("fit_resume_callbacks_mismatch", _resume_with(callbacks_then=[gg.train.EarlyStopping(monitor="loss")]),
         ValueError, ["cannot resume", "run.safetensors", r"\['EarlyStopping'\]", r"this run has \[\]", "same callbacks"]),
    Case("fit_resume_callbacks_extra", _resume_with(callbacks_now=[gg.train.EarlyStopping(monitor="loss")]),
         ValueError, ["cannot resume", r"callbacks \[\]", r"\['EarlyStopping'\]"]),
    Case("fit_resume_scheduler_bad", _resume_with(_set(("scheduler", "gamma"), NAN)),
         ValueError, ["cannot resume", "StepLR.load_state_dict", "gamma=nan", "nothing was changed"]),
    Case("fit_resume_optimizer_bad", _resume_with(_set(("optimizer", "state", 0, "step"), -1)),
         ValueError, ["cannot resume", "Adam.load_state_dict", "'step' of parameter 0 is -1"]),
    Case("fit_resume_optimizer_dtype", _resume_with(lambda st: st["optimizer"]["state"][0].update(
        exp_avg=st["optimizer"]["state"][0]["exp_avg"].double())),
         gg.DTypeError, ["cannot resume", "exp_avg", "float64", "float32"]),
    Case("fit_resume_model_shape", _resume_with(_set(("model", "weight"), gg.zeros(3, 2))),
         gg.nn.module.StateDictError, ["cannot resume", "size mismatch for weight", r"\(3, 2\)", r"\(2, 2\)"]),
    Case("fit_resume_rng_bad", _resume_with(_set(("rng", "cpu"), {"bit_generator": "PCG64", "state": "junk"})),
         ValueError, ["cannot resume", "random state"]),
    Case("fit_resume_step_negative", _resume_with(_set(("step",), -4)),
         ValueError, ["cannot resume", "'step' is -4"]),
    Case("fit_resume_position_bad", _resume_with(_set(("position",), {"batches_done": 0})),
         ValueError, ["cannot resume", "mid-epoch position"]),
    Case("fit_resume_scheduler_dropped", _resume_with(_set(("scheduler",), None)),
         ValueError, ["cannot resume", "without a scheduler"]),
    Case("fit_empty_loader", lambda d, p: (lambda run, path, watched: (lambda: run(epochs=2), watched))(
        *_fit_setup(d, p, samples=5, batch_size=8, drop_last=True)),
         ValueError, ["fit", "no batch", r"5 sample\(s\)", "batch_size=8", "drop_last=True"]),
    # Files: crafted checkpoint structures are CheckpointErrors, never a bare TypeError.
    Case("load_reference_list", _crafted_file({"__tensor__": ["t"]}), gg.CheckpointError,
         ["crafted.safetensors", "tensor reference of type list"]),
    Case("load_reference_dict", _crafted_file({"w": {"__ndarray__": {"x": 1}}}), gg.CheckpointError,
         ["crafted.safetensors", "tensor reference of type dict"]),
    Case("load_requires_grad_integer", _crafted_file({"__tensor__": "t", "requires_grad": True}), gg.CheckpointError,
         ["crafted.safetensors", "requires_grad=True", "int64"]),
    Case("load_requires_grad_not_bool", _crafted_file({"__tensor__": "t", "requires_grad": 1}), gg.CheckpointError,
         ["crafted.safetensors", "not a boolean"]),
    Case("load_unknown_node", _crafted_file({"__tuple__": [], "__float__": "nan"}), gg.CheckpointError,
         ["crafted.safetensors", "extra keys"]),
    Case("load_unhashable_key", _crafted_file({"__dict__": [[[1, 2], 0]]}), gg.CheckpointError,
         ["crafted.safetensors", "unusable dict key"]),
    Case("load_tensor_key", _crafted_file({"__dict__": [[{"__tensor__": "t"}, 0]]}), gg.CheckpointError,
         ["crafted.safetensors", "unusable dict key"]),
]

ALL_CASES = OP_CASES + AUTOGRAD_CASES + OPTIM_CASES + DATA_CASES + IO_CASES + STATE_CASES


def test_battery_is_large_enough():
    assert len(ALL_CASES) >= 60, len(ALL_CASES)
    assert len(STATE_CASES) >= 60, len(STATE_CASES)
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

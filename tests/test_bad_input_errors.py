"""Issue 13 point 4, the documented error types: each row makes one bad call and
checks the error type, the facts its message names, and that every tensor,
parameter and gradient it was given is unchanged (values, version counter,
gradient, device, dtype).

A sibling of ``test_bad_input.py`` (its battery is extended elsewhere); the
rows here are the device-string, index_add/scatter_add, setitem, cat/stack,
integer-power and GPUGRAD_DEVICE errors.
"""

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import gpugrad as gg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPELLINGS = [r"'cpu'", r"'cuda'", r"'cuda:N'"]


@dataclass
class Row:
    name: str
    build: Callable          # build(device) -> (call, watched tensors / modules)
    error: type
    patterns: list = field(default_factory=list)


def _tensors(watched):
    for item in watched:
        if isinstance(item, gg.nn.Module):
            yield from item.parameters()
            yield from item.buffers()
        else:
            yield item


def _snapshot(watched):
    return [(t.numpy().copy(), t._version, str(t.device), t.dtype, t.grad_fn,
             None if t.grad is None else t.grad.numpy().copy()) for t in _tensors(watched)]


def _assert_unchanged(before, after):
    assert len(before) == len(after)
    for (value, version, device, dtype, grad_fn, grad), (value2, version2, device2, dtype2, grad_fn2, grad2) in zip(
            before, after, strict=True):
        np.testing.assert_array_equal(value, value2)
        assert (version, device, dtype) == (version2, device2, dtype2)
        assert grad_fn is grad_fn2, "the tensor's history changed"
        if grad is None:
            assert grad2 is None, "a gradient appeared"
        else:
            np.testing.assert_array_equal(grad, grad2)


def _model(device):
    model = gg.nn.Sequential(gg.nn.Linear(3, 2), gg.nn.BatchNorm1d(2)).to(device)
    model(gg.randn(4, 3, device=device)).sum().backward()      # gradients to watch too
    return model


def _with_grad(device, *shape):
    return gg.randn(*shape, device=device, requires_grad=True)


def _graph_tensor(device):
    """A non-leaf (it has a grad_fn) to assign into, inside the graph."""
    return _with_grad(device, 3, 4) * 2


ROWS = [
    # ---- device strings -------------------------------------------------------------------------------------
    Row("module_to_gpu", lambda d: ((lambda m: (lambda: m.to("gpu"), [m]))(_model(d))),
        gg.DeviceError, ["Module.to", "'gpu'", *SPELLINGS]),
    Row("module_to_cuda_x", lambda d: ((lambda m: (lambda: m.to("cuda:x"), [m]))(_model(d))),
        gg.DeviceError, ["Module.to", "'cuda:x'", *SPELLINGS]),
    Row("module_to_negative_index", lambda d: ((lambda m: (lambda: m.to("cuda:-1"), [m]))(_model(d))),
        gg.DeviceError, ["'cuda:-1'", *SPELLINGS]),
    Row("module_to_device_keyword", lambda d: ((lambda m: (lambda: m.to(device="GPU"), [m]))(_model(d))),
        gg.DeviceError, ["'GPU'", *SPELLINGS]),
    Row("tensor_to_gpu", lambda d: ((lambda x: (lambda: x.to("gpu"), [x]))(_with_grad(d, 2))),
        gg.DeviceError, [r"^to: 'gpu'", *SPELLINGS]),
    Row("tensor_factory_device", lambda d: ((lambda: gg.ones(2, device="tpu")), []),
        gg.DeviceError, ["'tpu'", *SPELLINGS]),
    # ---- index_add / scatter_add name themselves -------------------------------------------------------------
    Row("index_add_source_shape", lambda d: ((lambda x, s: (lambda: x.index_add(0, gg.tensor([0, 1], device=d), s),
                                                            [x, s]))(_with_grad(d, 3, 4), _with_grad(d, 2, 5))),
        gg.ShapeError, [r"^index_add:", r"\(2, 5\)", r"\(3, 4\)", r"\(2, 4\)"]),
    Row("index_add_index_2d", lambda d: ((lambda x, s: (lambda: x.index_add(0, gg.tensor([[0]], device=d), s),
                                                        [x, s]))(_with_grad(d, 3, 4), _with_grad(d, 1, 4))),
        gg.ShapeError, [r"^index_add:", "1-D integer", r"\(1, 1\)"]),
    Row("index_add_out_of_range", lambda d: ((lambda x, s: (lambda: x.index_add(1, gg.tensor([4], device=d), s),
                                                            [x, s]))(_with_grad(d, 3, 4), _with_grad(d, 3, 1))),
        IndexError, [r"^index_add:", "index 4", "dim 1 of size 4", r"\[0, 3\]"]),
    Row("index_add_negative", lambda d: ((lambda x, s: (lambda: x.index_add(0, gg.tensor([-1], device=d), s),
                                                        [x, s]))(_with_grad(d, 3, 4), _with_grad(d, 1, 4))),
        IndexError, [r"^index_add:", "index -1", r"\[0, 2\]"]),
    Row("scatter_add_index_rank", lambda d: ((lambda x, s: (lambda: x.scatter_add(0, gg.tensor([0], device=d), s),
                                                            [x, s]))(_with_grad(d, 3, 4), _with_grad(d, 1, 4))),
        gg.ShapeError, [r"^scatter_add:", "1 dimensions", r"\(3, 4\)"]),
    Row("scatter_add_index_larger_than_src", lambda d: (
        (lambda x, s: (lambda: x.scatter_add(1, gg.zeros(3, 3, dtype=gg.int64, device=d), s), [x, s]))(
            _with_grad(d, 3, 4), _with_grad(d, 3, 2))),
        gg.ShapeError, [r"^scatter_add:", r"\(3, 3\)", r"\(3, 2\)"]),
    Row("scatter_add_float_index", lambda d: ((lambda x, s: (lambda: x.scatter_add(1, gg.zeros(3, 1, device=d), s),
                                                             [x, s]))(_with_grad(d, 3, 4), _with_grad(d, 3, 1))),
        gg.DTypeError, [r"^scatter_add:", "integer", "float32"]),
    Row("scatter_add_out_of_range", lambda d: (
        (lambda x, s: (lambda: x.scatter_add(0, gg.tensor([[3, 0, 0, 0]], device=d), s), [x, s]))(
            _with_grad(d, 3, 4), _with_grad(d, 1, 4))),
        IndexError, [r"^scatter_add:", "index 3", "dim 0 of size 3", r"\[0, 2\]"]),
    # ---- t[idx] = v with a value that does not fit ----------------------------------------------------------
    Row("setitem_slice_shape", lambda d: ((lambda x, v: (lambda: x.__setitem__(slice(0, 2), v), [x, v]))(
        gg.randn(3, 4, device=d), gg.randn(3, device=d))),
        gg.ShapeError, ["__setitem__", r"\(3,\)", r"\(2, 4\)"]),
    Row("setitem_advanced_shape", lambda d: ((lambda x, v: (lambda: x.__setitem__(gg.tensor([0, 2], device=d), v),
                                                            [x, v]))(gg.randn(3, 4, device=d),
                                                                     gg.randn(3, 4, device=d))),
        gg.ShapeError, ["__setitem__", r"\(3, 4\)", r"\(2, 4\)"]),
    Row("setitem_in_graph_shape", lambda d: ((lambda y, v: (lambda: y.__setitem__((0, slice(None)), v), [y, v]))(
        _graph_tensor(d), _with_grad(d, 5))),
        gg.ShapeError, ["__setitem__", r"\(5,\)", r"\(4,\)"]),
    Row("setitem_mask_shape", lambda d: ((lambda x: (lambda: x.__setitem__(gg.tensor([True, False], device=d), 0.0),
                                                     [x]))(gg.randn(3, 4, device=d))),
        IndexError, ["__setitem__", r"mask \[2\]", r"\[3, 4\]"]),
    Row("setitem_numpy_value_shape", lambda d: ((lambda x: (lambda: x.__setitem__(1, np.ones(3)), [x]))(
        gg.randn(3, 4, device=d))),
        gg.ShapeError, ["__setitem__", r"\(3,\)", r"\(4,\)"]),
    # ---- cat / stack of something that is not a tensor ------------------------------------------------------
    Row("cat_list_element", lambda d: ((lambda a: (lambda: gg.cat([a, [1, 2]]), [a]))(_with_grad(d, 2))),
        TypeError, [r"^cat:", "element 1", "list", r"\[1, 2\]"]),
    Row("cat_number_element", lambda d: ((lambda a: (lambda: gg.cat([3.0, a]), [a]))(_with_grad(d, 2))),
        TypeError, [r"^cat:", "element 0", "float"]),
    Row("stack_numpy_element", lambda d: ((lambda a: (lambda: gg.stack([a, a, np.ones(2)]), [a]))(_with_grad(d, 2))),
        TypeError, [r"^stack:", "element 2", "ndarray"]),
    Row("cat_a_tensor", lambda d: ((lambda a: (lambda: gg.cat(a), [a]))(_with_grad(d, 2))),
        TypeError, [r"^cat:", "sequence of tensors", "Tensor"]),
    # ---- integer tensors to negative integer powers ---------------------------------------------------------
    Row("int_pow_minus_one", lambda d: ((lambda x: (lambda: x ** -1, [x]))(gg.tensor([1, 2, 3], device=d))),
        gg.DTypeError, [r"Integers to negative integer powers are not allowed\.", "int64", r"-1"]),
    Row("gg_pow_int_negative", lambda d: ((lambda x: (lambda: gg.pow(x, -2), [x]))(gg.tensor([1, 2], device=d))),
        gg.DTypeError, [r"Integers to negative integer powers are not allowed\.", r"-2"]),
    Row("int32_pow_method", lambda d: ((lambda x: (lambda: x.pow(-3), [x]))(gg.tensor([2], dtype=gg.int32, device=d))),
        gg.DTypeError, [r"Integers to negative integer powers are not allowed\.", "int32"]),
    Row("int_pow_in_place", lambda d: ((lambda x: (lambda: x.pow_(-1), [x]))(gg.tensor([1, 2], device=d))),
        gg.DTypeError, [r"Integers to negative integer powers are not allowed\."]),
]


def test_rows_are_unique():
    assert len({row.name for row in ROWS}) == len(ROWS) >= 25


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_bad_call_is_a_typed_error_and_changes_nothing(row, device):
    call, watched = row.build(device)
    before = _snapshot(watched)
    with pytest.raises(row.error) as raised:
        call()
    message = str(raised.value)
    for pattern in row.patterns:
        assert __import__("re").search(pattern, message), f"{pattern!r} not in {message!r}"
    _assert_unchanged(before, _snapshot(watched))


# --------------------------------------------------------------------------
# what is accepted: any letter case, and PyTorch's integer pow
# --------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["CPU", "Cpu", " cpu "])
def test_cpu_spellings_are_case_insensitive(spelling):
    assert gg.Device(spelling) == gg.Device("cpu")
    assert gg.ones(2, device=spelling).device == gg.Device("cpu")
    assert gg.ones(2).to(spelling).device == gg.Device("cpu")
    model = gg.nn.Linear(2, 2)
    weight = model.weight
    assert model.to(spelling).weight is weight and weight.device == gg.Device("cpu")


def test_cuda_spellings_are_case_insensitive():
    assert gg.Device("Cuda:1") == gg.Device("cuda:1") and gg.Device("CUDA") == gg.Device("cuda:0")
    if not gg.cuda.is_available():
        model = _model("cpu")
        before = _snapshot([model])
        with pytest.raises(gg.DeviceError, match="CUDA is not available"):
            model.to("Cuda:0")               # a device after all, just not here
        _assert_unchanged(before, _snapshot([model]))


def test_module_to_still_takes_dtype_names():
    model = gg.nn.Linear(2, 2)
    assert model.to("float64").weight.dtype == gg.float64
    assert gg.ones(2).to("float64").dtype == gg.float64


def test_integer_tensor_exponents_follow_torch(device):
    base = gg.tensor([0, 1, -1, 2, -2, 3, -1, 0], device=device)
    exponent = gg.tensor([-1, -3, -3, -1, -2, -5, -2, 0], device=device)
    expected = [0, 1, -1, 0, 0, 0, 1, 1]                 # torch.pow on the same int64 tensors, PyTorch 2.13
    assert (base ** exponent).tolist() == expected
    assert (2 ** gg.tensor([-1, 2], device=device)).tolist() == [0, 4]
    assert (gg.tensor([2, 3], device=device) ** 2).tolist() == [4, 9]
    assert (gg.tensor([2.0], device=device) ** -1).tolist() == [0.5]
    try:
        import torch
    except ImportError:
        return
    assert (torch.tensor([0, 1, -1, 2, -2, 3, -1, 0]) ** torch.tensor([-1, -3, -3, -1, -2, -5, -2, 0])).tolist() \
        == expected
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed."):
        torch.tensor([1, 2]) ** -1


# --------------------------------------------------------------------------
# GPUGRAD_DEVICE
# --------------------------------------------------------------------------
_REPORT = ("import gpugrad as gg\n"
           "try:\n"
           "    gg.ones(1)\n"
           "    print('no error', gg.get_default_device())\n"
           "except Exception as error:\n"
           "    print(type(error).__name__, '|', error)\n")


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "tpu:0"])
def test_invalid_gpugrad_device_names_the_variable_and_valid_values(value):
    env = dict(os.environ, GPUGRAD_DEVICE=value, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", _REPORT], env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert output.startswith("DeviceError |"), output
    assert f"GPUGRAD_DEVICE={value!r}" in output and "'auto'" in output
    for spelling in ("'cpu'", "'cuda'", "'cuda:N'"):
        assert spelling in output


@pytest.mark.parametrize("value", ["CPU", " cpu ", "auto"])
def test_valid_gpugrad_device_spellings_are_accepted(value):
    env = dict(os.environ, GPUGRAD_DEVICE=value, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", _REPORT], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("no error"), result.stdout + result.stderr

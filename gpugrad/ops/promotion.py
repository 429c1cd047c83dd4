"""PyTorch's type promotion (which differs from NumPy's for int + float), applied before an op runs."""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor


def result_dtype(a, b):
    """Dtype of ``a op b`` for two tensor dtypes, following PyTorch."""
    if a == b:
        return a
    a_float, b_float = a.kind == "f" or a == backend.bfloat16, b.kind == "f" or b == backend.bfloat16
    if a_float and b_float and a.itemsize == b.itemsize == 2:
        return backend.float32     # float16 with bfloat16: neither holds the other (PyTorch's rule)
    if a_float and not b_float:
        return a
    if b_float and not a_float:
        return b
    if a.kind == "b":
        return b
    if b.kind == "b":
        return a
    return np.promote_types(a, b)


_SCALARS = {}


def scalar_array(value, dtype):
    """A cached read-only 0-d NumPy array holding ``value`` as ``dtype``."""
    key = (value, dtype)
    array = _SCALARS.get(key)
    if array is None:
        if len(_SCALARS) > 4096:   # bounded: learning rates and the like vary per step
            _SCALARS.clear()
        array = np.array(value, dtype=dtype)
        array.flags.writeable = False
        _SCALARS[key] = array
    return array


def promote_arguments(op, args):
    """Cast Tensor arguments to a common dtype; Python scalars never upcast a float tensor."""
    if len(args) > 2:
        # Fast exit: tensors that all share one dtype (linear's x, weight and bias).
        first = args[0]
        if isinstance(first, Tensor):
            dtype = first.array.dtype
            for arg in args:
                if not isinstance(arg, Tensor) or arg.array.dtype != dtype:
                    break
            else:
                return args
    elif len(args) == 2:
        # Fast exits for the common cases: equal dtypes, or a float tensor and a Python number.
        first, second = args
        first_is_tensor, second_is_tensor = isinstance(first, Tensor), isinstance(second, Tensor)
        if first_is_tensor and second_is_tensor:
            if first.array.dtype == second.array.dtype:
                return args
        elif first_is_tensor or second_is_tensor:
            tensor, other = (first, second) if first_is_tensor else (second, first)
            data = tensor.array
            if data.dtype.kind == "f" and type(other) in (float, int):
                if type(data) is not np.ndarray:
                    return args       # CuPy takes Python scalars natively
                # NOTE: NumPy multiplies by a 0-d array of the same dtype about twice as
                # fast as by a Python float, in forward and again in backward.
                constant = scalar_array(other, data.dtype)
                return (tensor, constant) if first_is_tensor else (constant, tensor)
    if any(isinstance(arg, np.generic) for arg in args):
        # NumPy scalars act like Python numbers (PyTorch's rule), not like float64 arrays.
        args = tuple(arg.item() if isinstance(arg, np.generic) else arg for arg in args)
    dtype = None
    scalar_kind = None
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype if dtype is None else result_dtype(dtype, arg.dtype)
        elif isinstance(arg, bool):
            scalar_kind = scalar_kind or "b"
        elif isinstance(arg, int):
            scalar_kind = "i" if scalar_kind in (None, "b") else scalar_kind
        elif isinstance(arg, float):
            scalar_kind = "f"
    if dtype is None:
        return args
    if scalar_kind == "f" and dtype.kind != "f" and dtype != backend.bfloat16:
        dtype = backend.get_default_dtype()
    elif scalar_kind == "i" and dtype.kind == "b":
        dtype = backend.int64
    if all(not isinstance(arg, Tensor) or arg.dtype == dtype for arg in args):
        return args
    from ..autograd.op_node import structural
    cast = structural("cast")
    return tuple(cast(arg, dtype) if isinstance(arg, Tensor) and arg.dtype != dtype else arg
                 for arg in args)



def promote_to_float(op, args):
    """PyTorch's promotion for ops whose result is always floating (true division, exp,
    sqrt, sigmoid, ...): the usual promotion, then integer and bool inputs compute in the
    default float dtype (``torch.tensor([1, 2]) / 2`` is float32, not NumPy's float64)."""
    args = promote_arguments(op, args)
    default = None
    for arg in args:
        if isinstance(arg, Tensor) and not backend.is_floating(arg.array.dtype):
            default = backend.get_default_dtype()
            break
    if default is None:
        return args
    from ..autograd.op_node import structural
    cast = structural("cast")
    return tuple(cast(arg, default) if isinstance(arg, Tensor) and not backend.is_floating(arg.array.dtype)
                 else arg for arg in args)

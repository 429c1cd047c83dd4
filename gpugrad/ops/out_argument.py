"""PyTorch's ``out=`` keyword, once, for every public function that has it in PyTorch.

``gg.add(a, b, out=c)`` computes the result as ``gg.add(a, b)`` would and then
writes it into ``c``, with PyTorch's rules (checked against torch 2.13 in
``tests/test_out_argument.py``):

* it returns ``out`` itself (a tuple of the given tensors, in the op's result
  type, for ops returning ``(values, indices)``: ``gg.sort(x, out=(v, i))``);
* it writes in place, so a view ``out`` writes through to its base, and bumps
  ``out``'s version counter (a graph that saved ``out`` notices);
* an ``out`` of another shape is resized: silently when it has no elements,
  with PyTorch's deprecation ``UserWarning`` otherwise;
* dtypes follow the op's PyTorch rule (:data:`OUT_RULES`);
* the device must be the result's (:class:`~gpugrad.DeviceError`);
* ``out`` may be one of the inputs exactly (``gg.add(a, b, out=a)``), where
  PyTorch gives the natural result; any other overlap of ``out`` with an
  input (a shifted view, or any overlap with a matrix product's operands, or
  with ``cat``/``gather``/``index_select``/``take_along_dim``'s inputs) raises
  :class:`OutOverlapError`, where PyTorch raises or gives order-dependent values;
* it is not differentiable: with grad mode on and an input or ``out`` that
  requires grad it raises :class:`~gpugrad.AutogradError` (under
  ``gg.no_grad()`` it works), as PyTorch does.

The functions get it from :func:`accepts_out`, applied where the ``gg.``
functions are bound (``gpugrad/__init__.py``); wrappers that exist there anyway
(``gg.exp``'s, ``gg.sum``'s) call :func:`call_with_out` themselves, so those
pay one ``out is None`` check and no extra call.
"""

from __future__ import annotations

import functools
import warnings

from .. import backend
from ..autograd import tape
from ..errors import AutogradError, DeviceError, DTypeError, ShapeError
from ..tensor import Tensor


class OutDTypeError(DTypeError, RuntimeError):
    """``out=`` of a dtype the op cannot write: a :class:`~gpugrad.DTypeError` that
    ``except RuntimeError`` (what PyTorch raises here) also catches."""


class OutOverlapError(ShapeError, RuntimeError):
    """``out=`` overlapping an input in a way whose result would depend on the order
    of reads and writes (PyTorch raises or returns such values); a
    :class:`~gpugrad.ShapeError` that ``except RuntimeError`` also catches."""


NO_ALIAS_OPERANDS = {"mm": 0, "bmm": 0, "matmul": 0, "outer": 0, "dot": 0, "addmm": 1, "baddbmm": 1,
                     "cat": 0, "concat": 0, "concatenate": 0, "stack": 0, "gather": 0, "index_select": 0,
                     "take_along_dim": 0}
"""Ops whose out may not share memory with their inputs from this position on, not even
exactly: PyTorch's BLAS path zeroes out before reading (``torch.mm(a, b, out=a)`` gives
zeros) and its cat/gather/index_select refuse any overlap.  (addmm's ``input``, the term
added, may be out: PyTorch gives the right sum.)"""

# How each op treats out's dtype, measured on torch 2.13 (see the test's table):
CAST = "cast"            # computed as without out=, then cast if PyTorch's can_cast allows (elementwise ops, cat)
EXACT = "exact"          # out must have the result's dtype (matmul, indexing, sort, reductions to a value)
REDUCE = "reduce"        # computed in out's dtype (sum(x, 0, out=f64) sums in float64, as PyTorch)
FLOAT_REDUCE = "float_reduce"   # as REDUCE, and out must be floating (mean, std, var, logsumexp)
FACTORY = "factory"      # a creation op: out's dtype and device are the defaults of dtype= and device=
NUMERIC_FACTORY = "numeric_factory"  # as FACTORY, not bool (arange, linspace, randint, randperm)
FLOAT_FACTORY = "float_factory"  # as FACTORY, floating dtypes only (rand, randn)
FLOAT_CAST = "float_cast"        # as CAST, floating out only (normal)
ANY = "any"              # any out dtype, values converted (bernoulli draws 0/1)

OUT_RULES = {
    **dict.fromkeys(
        ("add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "pow", "maximum", "minimum",
         "exp", "expm1", "log", "log1p", "sin", "cos", "tan", "tanh", "sigmoid", "sqrt", "rsqrt", "reciprocal",
         "erf", "square", "lerp", "outer", "cat", "concat", "concatenate", "stack", "eq", "ne", "lt", "le", "gt",
         "ge", "logical_and", "logical_or", "logical_not"), CAST),
    **dict.fromkeys(
        ("abs", "neg", "negative", "sign", "ceil", "floor", "clamp", "clip", "addmm", "baddbmm", "bmm", "mm",
         "matmul", "dot", "gather", "index_add", "index_select", "scatter", "scatter_add", "take_along_dim", "tril",
         "triu", "where", "nan_to_num", "softmax", "log_softmax", "norm", "amax", "amin", "all", "any", "argmax",
         "argmin", "argsort", "max", "min", "sort", "topk", "multinomial"), EXACT),
    **dict.fromkeys(("sum", "prod", "cumsum"), REDUCE),
    **dict.fromkeys(("mean", "std", "var", "logsumexp"), FLOAT_REDUCE),
    **dict.fromkeys(("zeros", "ones", "full", "empty", "eye"), FACTORY),
    **dict.fromkeys(("arange", "linspace", "randint", "randperm"), NUMERIC_FACTORY),
    **dict.fromkeys(("rand", "randn"), FLOAT_FACTORY),
    "normal": FLOAT_CAST,
    "bernoulli": ANY,
}
"""Every public ``gg.`` function that takes ``out=`` (PyTorch's list, see the
test), with its dtype rule."""

RESIZE_WARNING = (
    "An output with one or more elements was resized since it had shape {old}, which does not match the required "
    "output shape {new}. This behavior is deprecated, and in a future PyTorch release outputs will not be resized "
    "unless they have zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, to zero "
    "elements with t.resize_(0).")
"""PyTorch's warning text (``aten/src/ATen/native/Resize.cpp``)."""


def accepts_out(function, name):
    """``function`` with PyTorch's ``out=`` keyword (see the module docstring).

    Without ``out`` the wrapper costs one keyword check and calls ``function``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> buffer = gg.empty(0)
    >>> gg.cumsum(gg.tensor([1.0, 2.0, 3.0]), 0, out=buffer) is buffer
    True
    >>> buffer
    tensor([1., 3., 6.], device='cpu')
    """
    if name not in OUT_RULES:
        raise KeyError(f"accepts_out: {name!r} has no out= rule in OUT_RULES")

    @functools.wraps(function)
    def public(*args, out=None, **kwargs):
        if out is None:
            return function(*args, **kwargs)
        return call_with_out(function, name, args, kwargs, out)
    return public


def call_with_out(function, name, args, kwargs, out):
    """``function(*args, **kwargs)`` written into ``out`` by the rules of ``name`` (:data:`OUT_RULES`)."""
    rule = OUT_RULES[name]
    outs = _out_tensors(name, out)
    _refuse_autograd(name, args, kwargs, outs)
    _refuse_overlap(name, args, kwargs, outs)
    first = outs[0]
    if rule in (FACTORY, NUMERIC_FACTORY, FLOAT_FACTORY):
        given = kwargs.get("dtype")
        if given is not None and backend.as_dtype(given) != first.array.dtype:
            raise OutDTypeError(f"{name}: dtype={backend.as_dtype(given)} does not match the dtype of out "
                                f"({first.array.dtype}); drop dtype= (out's dtype is used) or give a matching out")
        if rule == FLOAT_FACTORY and first.array.dtype.kind != "f":
            raise OutDTypeError(f"{name}: draws floating-point values, but out has dtype {first.array.dtype}; "
                                "give a floating out (float16/32/64)")
        if rule == NUMERIC_FACTORY and first.array.dtype.kind == "b":
            raise OutDTypeError(f"{name}: makes numbers, but out has dtype bool (PyTorch has no bool {name}); "
                                "give a numeric out")
        kwargs = {**kwargs, "dtype": first.array.dtype}
        if kwargs.get("device") is None:
            kwargs["device"] = first.device
    elif rule in (REDUCE, FLOAT_REDUCE) and first.array.dtype.kind != "b":
        if rule == FLOAT_REDUCE and first.array.dtype.kind != "f":
            raise OutDTypeError(f"{name}: result type {_input_dtype(args)} can't be cast to the desired output "
                                f"type {first.array.dtype} (out=); {name} gives floating values, give a floating out")
        if isinstance(args[0], Tensor) and args[0].array.dtype != first.array.dtype:
            # PyTorch computes the reduction in out's dtype: the input is converted first.
            args = (args[0].to(first.array.dtype),) + tuple(args[1:])
    elif rule == REDUCE and name == "cumsum":
        raise OutDTypeError("cumsum: out of dtype bool is not supported (PyTorch has no bool cumsum); "
                            "give a numeric out")
    elif rule == FLOAT_REDUCE:
        raise OutDTypeError(f"{name}: result type {_input_dtype(args)} can't be cast to the desired output type "
                            f"bool (out=); {name} gives floating values, give a floating out")
    result = function(*args, **kwargs)
    results = tuple(result) if isinstance(result, tuple) else (result,)
    if len(results) != len(outs):
        raise TypeError(f"{name}: returns {len(results)} tensor(s) but out= gives {len(outs)}; "
                        + (f"pass out=({', '.join(['t'] * len(results))})" if len(results) > 1
                           else "pass one tensor as out="))
    for given, computed in zip(outs, results):
        _check_writable(name, rule, given, computed)
    for given, computed in zip(outs, results):
        _write(given, computed)
    if isinstance(result, tuple):
        return type(result)(*outs) if hasattr(result, "_fields") else type(result)(outs)
    return out


def _out_tensors(name, out):
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    for given in outs:
        if not isinstance(given, Tensor):
            raise TypeError(f"{name}: out= must be a Tensor (or a tuple of Tensors for ops returning several), "
                            f"got {type(given).__name__}")
    return outs


def _refuse_autograd(name, args, kwargs, outs):
    if not tape.is_grad_enabled():
        return
    if any(t.requires_grad for t in outs) or any(
            isinstance(t, Tensor) and t.requires_grad for t in _flat_tensors(args, kwargs)):
        raise AutogradError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                            "but one of the arguments requires grad. Use the returned tensor (drop out=), or run "
                            "under gg.no_grad() if no gradient is wanted")


def _flat_tensors(args, kwargs):
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, (list, tuple)):
            yield from arg
        else:
            yield arg


def _refuse_overlap(name, args, kwargs, outs):
    strict_from = NO_ALIAS_OPERANDS.get(name)
    for position, arg in enumerate((*args, *kwargs.values())):
        for tensor in (arg if isinstance(arg, (list, tuple)) else (arg,)):
            if not isinstance(tensor, Tensor):
                continue
            for given in outs:
                if not _may_overlap(given.array, tensor.array):
                    continue
                exact_allowed = strict_from is None or position < strict_from
                if exact_allowed and _same_elements(given.array, tensor.array):
                    continue              # out is this input exactly: computed first, then written
                raise OutOverlapError(
                    f"{name}: out= shares memory with an input (shape {tuple(tensor.shape)})"
                    + (" other than as that exact tensor" if exact_allowed else "")
                    + "; the result would depend on the order of reads and writes (PyTorch raises or gives "
                    "such values here). Give a separate out tensor, or .clone() the input")


def _may_overlap(a, b):
    if a.__class__ is not b.__class__ or not a.size or not b.size:
        return False
    return bool(backend.xp_of(a).may_share_memory(a, b))


def _same_elements(a, b):
    return a.shape == b.shape and a.strides == b.strides and _address(a) == _address(b)


def _address(array):
    interface = getattr(array, "__array_interface__", None)
    return interface["data"][0] if interface is not None else array.data.ptr


def _input_dtype(args):
    return args[0].array.dtype if args and isinstance(args[0], Tensor) else "the input's"


def can_cast(source, target):
    """PyTorch's ``c10::canCast``: no float -> integer, no complex -> real, no non-bool -> bool.

    (NumPy's ``same_kind`` differs: it refuses int64 -> uint8, which PyTorch allows.)
    """
    if source.kind == "c" and target.kind != "c":
        return False
    if source.kind == "f" and target.kind in "iu":
        return False
    return not (source.kind != "b" and target.kind == "b")


def _check_writable(name, rule, out, result):
    if not isinstance(result, Tensor):
        raise TypeError(f"{name}: out= needs a tensor result, but {name} returned {type(result).__name__}")
    if out.device != result.device:
        raise DeviceError(f"{name}: out= is on {out.device} but the result is on {result.device}; "
                          "give an out tensor on the inputs' device")
    source, target = result.array.dtype, out.array.dtype
    if source != target:
        if rule == EXACT:
            raise OutDTypeError(f"{name}: expected out tensor to have dtype {source}, but got {target} instead; "
                                f"give out= of dtype {source}")
        if rule in (CAST, FLOAT_CAST) and not can_cast(source, target) or rule == FLOAT_CAST and target.kind != "f":
            raise OutDTypeError(f"{name}: result type {source} can't be cast to the desired output type {target} "
                                "(out=); give out a dtype of the same kind or wider")
    if out.array.shape != result.array.shape:
        if out._base is not None:
            raise ShapeError(f"{name}: out= is a view of another tensor with shape {tuple(out.array.shape)}, but "
                             f"the result has shape {tuple(result.array.shape)}; PyTorch would resize it inside "
                             "its base's memory, which gpugrad does not do: give an out of the result's shape")
        if out.array.size != 0:
            warnings.warn(RESIZE_WARNING.format(old=list(out.array.shape), new=list(result.array.shape)),
                          UserWarning, stacklevel=4)


def _write(out, result):
    if out.array.shape != result.array.shape:
        # Resizing gives out new memory of the new shape (out is not a view, see _check_writable).
        out.array = result.array.astype(out.array.dtype, copy=True)
    else:
        out.array[...] = result.array      # casts; a view writes through to its base
    out._bump_version()

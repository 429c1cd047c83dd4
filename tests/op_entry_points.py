"""Every way a user reaches an op, as a table the op battery runs each sample through.

A *route* takes a sample's inputs (Tensors and constants, in the op's order)
and the op's keyword parameters (NumPy spellings: ``axis=``, ``keepdims=``)
and calls one entry point with the spellings that entry point takes: the
``gg.`` function, the Tensor method, the Python operator, ``gg.nn.functional``
or an ``nn`` layer whose weights are loaded from the sample's inputs.

Entry points whose underlying object *is* the op (``gg.exp`` wraps ``exp``;
``Tensor.exp`` and ``Tensor.__mul__`` are made by ``tensor_method`` over the
op) are found by introspection (:func:`discovered_entry_points`) and called
with the op's own signature.  The rest (PyTorch spellings, operators, layers)
are written out in :data:`EXPLICIT`.  :func:`public_entry_points` lists what a
user can reach by name; the battery fails when one of those has no route.
"""

from __future__ import annotations

import inspect
import operator

import numpy as np

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn
from gpugrad.ops import OPS
from gpugrad.ops.registry import Op

NAMESPACES = {"gg": gg, "F": F, "Tensor": gg.Tensor}


class Route:
    """One entry point of an op.

    ``call(inputs, params)`` returns the result, or ``(result, sources)``
    where ``sources`` maps an input position to the tensor that plays its part
    (a layer's loaded ``weight``): its gradient is compared with that input's.
    ``applies(inputs, params, expected)`` says whether this entry point can
    express the sample (an in-place operator needs a first operand of the
    result's shape).  ``own_params``: the entry point draws its own random
    parameters (dropout's mask); the general path is then run with those.
    """

    def __init__(self, label, call, applies=None, own_params=False, method=None):
        self.label = label
        self.call = call
        self.applies = applies
        self.own_params = own_params
        self.method = method      # (name, translate) of a Tensor method route: its in-place twin is derived

    def __repr__(self):
        return f"Route({self.label})"


# --------------------------------------------------------------------------
# Introspection: entry points whose object is the op itself.
# --------------------------------------------------------------------------
def _closure_value(function, name):
    code = getattr(function, "__code__", None)
    if code is None or name not in code.co_freevars:
        return None
    return function.__closure__[code.co_freevars.index(name)].cell_contents


def op_behind(entry):
    """``(op, kind)`` when ``entry`` is an op's function (kind ``"function"``)
    or a ``tensor_method`` over it (``"method"``, ``"binary"``, ``"rbinary"``)."""
    for _ in range(4):
        if entry is None:
            break
        op = getattr(entry, "op", None)
        if isinstance(op, Op):
            return op, "function"
        op = _closure_value(entry, "op")
        if isinstance(op, Op):
            return op, {None: "method", False: "binary", True: "rbinary"}[_closure_value(entry, "swap")]
        entry = getattr(entry, "__wrapped__", None)
    return None, None


def _attributes(namespace_name):
    namespace = NAMESPACES[namespace_name]
    for attribute in dir(namespace):
        if namespace is not gg.Tensor and attribute.startswith("_"):
            continue
        if namespace is gg.Tensor:
            entry = inspect.getattr_static(namespace, attribute)
        else:
            entry = getattr(namespace, attribute)
        yield attribute, entry


def discovered_entry_points():
    """``{op name: {label: kind}}`` for every entry point whose object is the op."""
    found = {}
    for namespace_name in NAMESPACES:
        for attribute, entry in _attributes(namespace_name):
            op, kind = op_behind(entry)
            if op is not None and OPS.get(op.name) is op:
                found.setdefault(op.name, {})[f"{namespace_name}.{attribute}"] = kind
    return found


def _layer_key(class_name):
    return class_name.lower().rstrip("123").rstrip("d") if class_name[-2:] in ("1d", "2d", "3d") else class_name.lower()


# PyTorch's other names for an op, reached like its own name (``gg.clip`` is ``gg.clamp``).
ALIASES = {"clamp": ("clip",), "cat": ("concat", "concatenate")}


def public_entry_points():
    """``{op name: set of labels}``: what a user reaches by the op's name or by its object.

    By name: ``gg.<op>``, ``Tensor.<op>``, ``F.<op>``, and ``nn.<Layer>``
    whose name is the op's without underscores (``LayerNorm`` for
    ``layer_norm``, ``BatchNorm2d`` for ``batch_norm``, ``MaxPool2d`` for
    ``max_pool2d``).  By object: :func:`discovered_entry_points`.
    """
    public = {name: set(labels) for name, labels in discovered_entry_points().items()}
    layers = {}
    for attribute in dir(nn):
        value = getattr(nn, attribute)
        if isinstance(value, type) and issubclass(value, nn.Module):
            for key in {attribute.lower(), _layer_key(attribute)}:
                layers.setdefault(key, []).append(attribute)
    for name in OPS:
        for namespace_name, namespace in NAMESPACES.items():
            for spelling in (name, *ALIASES.get(name, ())):
                if hasattr(namespace, spelling):
                    public.setdefault(name, set()).add(f"{namespace_name}.{spelling}")
        for layer in layers.get(name.replace("_", ""), ()):
            public.setdefault(name, set()).add(f"nn.{layer}")
    for labels in public.values():
        # The in-place twin of every method (``x.exp_()`` beside ``x.exp()``).
        labels.update({label + "_" for label in labels if label.startswith("Tensor.") and not label.endswith("_")
                       and not label.startswith("Tensor.__") and hasattr(gg.Tensor, label[len("Tensor."):] + "_")})
    return public


def _discovered_route(label, kind):
    namespace_name, attribute = label.split(".", 1)
    if kind == "function":
        function = getattr(NAMESPACES[namespace_name], attribute)
        return Route(label, lambda xs, p: function(*xs, **p))
    if kind == "method":
        return Route(label, lambda xs, p: getattr(xs[0], attribute)(**p), applies=_unary_method,
                     method=(attribute, lambda xs, p: ((), p)))
    if kind == "binary":
        return Route(label, lambda xs, p: getattr(xs[0], attribute)(xs[1]), applies=_binary_method,
                     method=(attribute, lambda xs, p: ((xs[1],), {})))
    return Route(label, lambda xs, p: getattr(xs[1], attribute)(xs[0]), applies=_reflected_method)


def _unary_method(xs, p, expected):
    return len(xs) == 1 and isinstance(xs[0], gg.Tensor)


def _binary_method(xs, p, expected):
    return len(xs) == 2 and not p and isinstance(xs[0], gg.Tensor)


def _reflected_method(xs, p, expected):
    return len(xs) == 2 and not p and isinstance(xs[1], gg.Tensor)


def _first_is_tensor(xs, p, expected):
    return isinstance(xs[0], gg.Tensor)


def _writable_first(xs, expected):
    """An in-place change writes into the first input: a float Tensor of the result's shape and dtype."""
    first = xs[0]
    return (isinstance(first, gg.Tensor) and first.dtype.kind == "f" and tuple(first.shape) == tuple(expected.shape)
            and first.dtype == expected.dtype)


def _in_place_fits(xs, p, expected):
    return len(xs) == 2 and not p and _writable_first(xs, expected)


def in_place_twin(route):
    """``x.clone().name_(...)`` for a method route ``x.name(...)`` whose in-place method exists."""
    name, translate = route.method
    in_place = name + "_" if not name.startswith("__") else None
    if in_place is None or not hasattr(gg.Tensor, in_place):
        return None

    def call(xs, p):
        args, kwargs = translate(xs, p)
        target = xs[0].clone()
        returned = getattr(target, in_place)(*args, **kwargs)
        assert returned is target, f"Tensor.{in_place} must return the tensor it changed"
        return target

    def applies(xs, p, expected):
        return (route.applies is None or route.applies(xs, p, expected)) and _writable_first(xs, expected)
    return Route(f"Tensor.{in_place}", call, applies=applies)


# --------------------------------------------------------------------------
# The explicit table: PyTorch spellings, operators, layers.
# --------------------------------------------------------------------------
def _torch_dims(p, **rename):
    """The op's NumPy keywords in PyTorch's spelling (``axis`` -> ``dim``, ``keepdims`` -> ``keepdim``)."""
    rename = {"axis": "dim", "keepdims": "keepdim", **rename}
    return {rename.get(key, key): value for key, value in p.items()}


def _operator(symbol, function):
    return Route(f"operator {symbol}", lambda xs, p: function(*xs), applies=lambda xs, p, e: len(xs) == 2 and not p)


def _in_place(symbol, function):
    """``a op= b`` on a copy of ``a`` (the sample's ``a`` is a leaf, which PyTorch refuses to change)."""
    def call(xs, p):
        target = xs[0].clone()
        target = function(target, xs[1])
        return target
    return Route(f"operator {symbol}", call, applies=_in_place_fits)


def _in_place_method(name):
    def call(xs, p):
        target = xs[0].clone()
        getattr(target, name)(xs[1])
        return target
    return Route(f"Tensor.{name}", call, applies=_in_place_fits)


def _method(name, translate=lambda xs, p: ((), p), applies=_first_is_tensor):
    def call(xs, p):
        args, kwargs = translate(xs, p)
        return getattr(xs[0], name)(*args, **kwargs)
    return Route(f"Tensor.{name}", call, applies=applies, method=(name, translate))


def _function(label, function, translate=lambda xs, p: (xs, p), applies=None):
    def call(xs, p):
        args, kwargs = translate(xs, p)
        return function(*args, **kwargs)
    return Route(label, call, applies=applies)


def _both(name, translate_function, translate_method, applies=_first_is_tensor):
    """``gg.<name>`` and ``Tensor.<name>`` with one translation (the method drops the first input)."""
    return [_function(f"gg.{name}", getattr(gg, name), translate_function),
            _method(name, translate_method, applies)]


def _reduction(name):
    return _both(name, lambda xs, p: (xs, _torch_dims(p)), lambda xs, p: ((), _torch_dims(p)))


def _keywords(xs, p):
    return xs, p


def _rest(xs, p):
    return xs[1:], p


def _symmetric_padding(xs, p, expected):
    return all(before == after for before, after in p["padding"])


def _layer(label, make, inputs_of=lambda layer, xs: (xs[0],), applies=None, own_params=False, output=None):
    """A layer made by ``make(xs, p) -> (layer, {position: parameter})``, called on ``inputs_of(layer, xs)``."""
    def call(xs, p):
        layer, sources = make(xs, p)
        result = layer(*inputs_of(layer, xs))
        return (output(result) if output else result), sources
    return Route(label, call, applies=applies, own_params=own_params)


def _load(parameter, value):
    """A layer's parameter set to a sample's input (same dtype and device)."""
    with gg.no_grad():
        parameter.copy_(value.detach() if isinstance(value, gg.Tensor) else gg.tensor(value))
    return parameter


def _on(layer, xs):
    reference = next(x for x in xs if isinstance(x, gg.Tensor))
    return layer.to(reference.device).to(reference.dtype)


def _linear_layer(xs, p):
    x, weight, bias = xs
    layer = _on(nn.Linear(weight.shape[1], weight.shape[0]), xs)
    return layer, {1: _load(layer.weight, weight), 2: _load(layer.bias, bias)}


def _conv_layer(xs, p):
    x, weight = xs
    out_channels, per_group, kh, kw = weight.shape
    layer = _on(nn.Conv2d(per_group * p["groups"], out_channels, (kh, kw), stride=p["stride"],
                          padding=tuple(before for before, _ in p["padding"]), dilation=p["dilation"],
                          groups=p["groups"], bias=False), xs)
    return layer, {1: _load(layer.weight, weight)}


def _layer_norm_layer(xs, p):
    x, weight, bias = xs
    layer = _on(nn.LayerNorm(tuple(weight.shape), eps=p["eps"]), xs)
    return layer, {1: _load(layer.weight, weight), 2: _load(layer.bias, bias)}


def _batch_norm_layer(xs, p):
    x, weight, bias = xs
    kind = nn.BatchNorm2d if x.ndim == 4 else nn.BatchNorm1d
    layer = _on(kind(weight.shape[0], eps=p["eps"]), xs).train()
    return layer, {1: _load(layer.weight, weight), 2: _load(layer.bias, bias)}


def _cell_layer(kind):
    """An RNN cell whose input weights are the identity and input bias zero, so that
    ``cell(x, h)`` is the op on precomputed gates ``x`` (the op's first input)."""
    def make(xs, p):
        gates, h, *rest = xs
        w_hh, b_hh = rest[-2:]
        layer = _on(kind(gates.shape[1], h.shape[1]), xs)
        with gg.no_grad():
            layer.weight_ih.copy_(gg.eye(gates.shape[1], dtype=gates.dtype, device=gates.device))
            layer.bias_ih.zero_()
        position = len(xs) - 2
        return layer, {position: _load(layer.weight_hh, w_hh), position + 1: _load(layer.bias_hh, b_hh)}
    return make


def _linear_relu_layers(xs, p):
    layer, sources = _linear_layer(xs, p)
    return nn.Sequential(layer, nn.ReLU()), sources


def _moves(xs, p, expected):
    return xs[0].device != p["device"]


def _set_item(xs, p):
    target = xs[0].clone()
    target[p["index"]] = xs[1]
    return target


def _pool_kwargs(p, *names):
    kwargs = {"kernel_size": p["kernel"]}
    kwargs.update({name: p[name] for name in names if name in p})
    return kwargs


def _activation_layers():
    return {"relu": [_layer("nn.ReLU", lambda xs, p: (nn.ReLU(), {}))],
            "gelu": [_layer("nn.GELU", lambda xs, p: (nn.GELU(**p), {}))],
            "elu": [_layer("nn.ELU", lambda xs, p: (nn.ELU(**p), {}))],
            "leaky_relu": [_layer("nn.LeakyReLU", lambda xs, p: (nn.LeakyReLU(**p), {}))],
            "silu": [_layer("nn.SiLU", lambda xs, p: (nn.SiLU(), {}))],
            "mish": [_layer("nn.Mish", lambda xs, p: (nn.Mish(), {}))],
            "softplus": [_layer("nn.Softplus", lambda xs, p: (nn.Softplus(**p), {}))],
            "sigmoid": [_layer("nn.Sigmoid", lambda xs, p: (nn.Sigmoid(), {}))],
            "tanh": [_layer("nn.Tanh", lambda xs, p: (nn.Tanh(), {}))]}


def _activation_functions():
    routes = {}
    for name in ("relu", "gelu", "elu", "leaky_relu", "silu", "mish", "softplus"):
        routes[name] = [_function(f"F.{name}", getattr(F, name)), _method(name)]
    routes["relu"].append(_function("gg.relu", gg.relu))
    routes["sigmoid"] = [_function("F.sigmoid", F.sigmoid)]
    routes["tanh"] = [_function("F.tanh", F.tanh)]
    return routes


def _torch_pad(pad_width):
    """NumPy's ``pad_width`` as PyTorch's flat ``pad`` (last dimension first)."""
    flat = []
    for before, after in reversed(pad_width):
        flat += [before, after]
    while flat[-2:] == [0, 0] and len(flat) > 2:
        flat = flat[:-2]
    return tuple(flat)


def _explicit():
    table = {
        "add": [_operator("+", operator.add), _in_place("+=", operator.iadd), _method("add", _rest),
                _in_place_method("add_")],
        "sub": [_operator("-", operator.sub), _in_place("-=", operator.isub), _method("sub", _rest),
                _in_place_method("sub_")],
        "mul": [_operator("*", operator.mul), _in_place("*=", operator.imul), _in_place_method("mul_")],
        "div": [_operator("/", operator.truediv), _in_place("/=", operator.itruediv), _in_place_method("div_")],
        "pow": [_operator("**", operator.pow), _in_place("**=", operator.ipow), _in_place_method("pow_")],
        "matmul": [_operator("@", operator.matmul), _function("gg.matmul", gg.matmul)],
        "floor_divide": [_operator("//", operator.floordiv)],
        "remainder": [_operator("%", operator.mod)],
        "eq": [_operator("==", operator.eq)], "ne": [_operator("!=", operator.ne)],
        "lt": [_operator("<", operator.lt)], "le": [_operator("<=", operator.le)],
        "gt": [_operator(">", operator.gt)], "ge": [_operator(">=", operator.ge)],
        "logical_and": [_operator("&", operator.and_)], "logical_or": [_operator("|", operator.or_)],
        "logical_xor": [_operator("^", operator.xor)],
        "logical_not": [Route("operator ~", lambda xs, p: ~xs[0])],
        "neg": [Route("operator -x", lambda xs, p: -xs[0]), _method("neg")],
        "abs": [Route("builtin abs", lambda xs, p: abs(xs[0]))],
        "clone": _both("clone", _keywords, _rest),
        "sum": _reduction("sum"), "mean": _reduction("mean"), "prod": _reduction("prod"),
        "amax": _reduction("amax"), "amin": _reduction("amin"), "logsumexp": _reduction("logsumexp"),
        "argmax": _reduction("argmax"), "argmin": _reduction("argmin"), "var": _reduction("var"),
        "cumsum": _reduction("cumsum"),
        "argsort": _reduction("argsort"),
        "norm": _both("norm", lambda xs, p: (xs, _torch_dims(p, ord="p")),
                      lambda xs, p: ((), _torch_dims(p, ord="p"))),
        "unsqueeze": _reduction("unsqueeze"), "squeeze": _reduction("squeeze"),
        "broadcast_to": _both("broadcast_to", lambda xs, p: ((*xs, p["shape"]), {}),
                              lambda xs, p: ((p["shape"],), {})) + [_method("expand", lambda xs, p: (p["shape"], {}))],
        "reshape": _both("reshape", lambda xs, p: ((*xs, *p["shape"]), {}), lambda xs, p: (p["shape"], {}))
        + [_method("view", lambda xs, p: (p["shape"], {}))],
        "permute": _both("permute", lambda xs, p: ((*xs, *p["axes"]), {}), lambda xs, p: (p["axes"], {})),
        "repeat": _both("repeat", lambda xs, p: ((*xs, *p["reps"]), {}), lambda xs, p: (p["reps"], {})),
        "flip": _both("flip", lambda xs, p: ((*xs, *p["axis"]), {}), lambda xs, p: (p["axis"], {})),
        "roll": _both("roll", lambda xs, p: ((*xs, p["shifts"]), {"dims": p.get("axis")}),
                      lambda xs, p: ((p["shifts"],), {"dims": p.get("axis")})),
        "tril": _both("tril", _keywords, lambda xs, p: ((), p)),
        "triu": _both("triu", _keywords, lambda xs, p: ((), p)),
        "clamp": _both("clamp", _keywords, lambda xs, p: ((), p)) + _both("clip", _keywords, lambda xs, p: ((), p)),
        "nan_to_num": _both("nan_to_num", _keywords, lambda xs, p: ((), p)),
        "gather": _both("gather", lambda xs, p: ((xs[0], p["axis"], xs[1]), {}),
                        lambda xs, p: ((p["axis"], xs[1]), {})),
        "index_select": _both("index_select", lambda xs, p: ((xs[0], p["axis"], xs[1]), {}),
                              lambda xs, p: ((p["axis"], xs[1]), {})),
        "index_add": _both("index_add", lambda xs, p: ((xs[0], p["axis"], *xs[1:]), {"alpha": p.get("alpha", 1)}),
                           lambda xs, p: ((p["axis"], *xs[1:]), {"alpha": p.get("alpha", 1)})),
        "scatter": _both("scatter", lambda xs, p: ((xs[0], p["axis"], *xs[1:]), {}),
                         lambda xs, p: ((p["axis"], *xs[1:]), {})),
        "scatter_add": _both("scatter_add", lambda xs, p: ((xs[0], p["axis"], *xs[1:]), {}),
                             lambda xs, p: ((p["axis"], *xs[1:]), {})),
        "index_put": _both("index_put", lambda xs, p: ((xs[0], p["index"], xs[1]), {}),
                           lambda xs, p: ((p["index"], xs[1]), {})) + [
            Route("operator []=", _set_item, applies=lambda xs, p, e: _writable_first(xs, e))],
        "masked_fill": _both("masked_fill", lambda xs, p: ((*xs, p["value"]), {}),
                             lambda xs, p: ((xs[1], p["value"]), {})),
        "where": [_function("gg.where", gg.where),
                  Route("Tensor.where", lambda xs, p: xs[1].where(xs[0], xs[2]),
                        applies=lambda xs, p, e: isinstance(xs[1], gg.Tensor))],
        "cat": [_function(f"gg.{spelling}", getattr(gg, spelling), lambda xs, p: ((list(xs),), {"dim": p["axis"]}))
                for spelling in ("cat", "concat", "concatenate")],
        "stack": [_function("gg.stack", gg.stack, lambda xs, p: ((list(xs),), {"dim": p["axis"]}))],
        "einsum": [_function("gg.einsum", gg.einsum, lambda xs, p: ((p["equation"], *xs), {}))],
        "pad": [_function("gg.pad", gg.pad, lambda xs, p: ((xs[0], _torch_pad(p["pad_width"])),
                                                           {"value": p.get("value", 0.0)})),
                _function("F.pad", F.pad, lambda xs, p: ((xs[0], _torch_pad(p["pad_width"])),
                                                         {"value": p.get("value", 0.0)}))],
        "linear": [_function("F.linear", F.linear), _layer("nn.Linear", _linear_layer)],
        # Sequential runs a hook-free Linear followed by ReLU as the one fused op.
        "linear_relu": [_layer("nn.Sequential(Linear, ReLU)", _linear_relu_layers)],
        "cast": [Route("Tensor.to", lambda xs, p: xs[0].to(p["dtype"])),
                 Route("Tensor.float", lambda xs, p: xs[0].float(), applies=lambda xs, p, e: e.dtype == gg.float32),
                 Route("Tensor.type_as", lambda xs, p: xs[0].type_as(gg.zeros(1, dtype=p["dtype"])))],
        # ``to`` returns the tensor itself when it is already there (as PyTorch's): only a real move is the op.
        "to_device": [Route("Tensor.to", lambda xs, p: xs[0].to(p["device"]), applies=_moves),
                      Route("Tensor.cpu", lambda xs, p: xs[0].cpu(),
                            applies=lambda xs, p, e: _moves(xs, p, e) and p["device"].type == "cpu")],
        "getitem": [Route("operator []", lambda xs, p: xs[0][p["index"]])],
        "index": [Route("operator []", lambda xs, p: xs[0][p["index"]])],
        "scatter_value": _both("scatter", lambda xs, p: ((xs[0], p["axis"], xs[1]), {"value": p["value"]}),
                               lambda xs, p: ((p["axis"], xs[1]), {"value": p["value"]})),
        "conv2d": [_function("F.conv2d", F.conv2d, lambda xs, p: (xs, dict(
                       p, padding=tuple(before for before, _ in p["padding"]))),
                             applies=_symmetric_padding),
                   _layer("nn.Conv2d", _conv_layer, applies=_symmetric_padding)],
        "layer_norm": [_function("F.layer_norm", F.layer_norm, lambda xs, p: (
                           (xs[0], tuple(xs[1].shape), xs[1], xs[2]), {"eps": p["eps"]})),
                       _layer("nn.LayerNorm", _layer_norm_layer)],
        "batch_norm": [_function("F.batch_norm", F.batch_norm, lambda xs, p: (
                           (xs[0], None, None, xs[1], xs[2]), {"training": True, "eps": p["eps"]})),
                       _layer("nn.BatchNorm1d", _batch_norm_layer, applies=lambda xs, p, e: xs[0].ndim in (2, 3)),
                       _layer("nn.BatchNorm2d", _batch_norm_layer, applies=lambda xs, p, e: xs[0].ndim == 4)],
        "max_pool2d": [_function("F.max_pool2d", F.max_pool2d, lambda xs, p: (
                           xs, _pool_kwargs(p, "stride", "padding", "dilation", "ceil_mode"))),
                       _layer("nn.MaxPool2d", lambda xs, p: (nn.MaxPool2d(
                           **_pool_kwargs(p, "stride", "padding", "dilation", "ceil_mode")), {}))],
        "avg_pool2d": [_function("F.avg_pool2d", F.avg_pool2d, lambda xs, p: (
                           xs, _pool_kwargs(p, "stride", "padding", "ceil_mode", "count_include_pad",
                                            "divisor_override"))),
                       _layer("nn.AvgPool2d", lambda xs, p: (nn.AvgPool2d(
                           **_pool_kwargs(p, "stride", "padding", "ceil_mode", "count_include_pad",
                                          "divisor_override")), {}))],
        "cross_entropy": [_function("F.cross_entropy", F.cross_entropy),
                          _layer("nn.CrossEntropyLoss", lambda xs, p: (nn.CrossEntropyLoss(**p), {}),
                                 inputs_of=lambda layer, xs: xs)],
        "binary_cross_entropy": [
            _function("F.binary_cross_entropy", F.binary_cross_entropy,
                      lambda xs, p: (xs, {"reduction": "none"})),
            _layer("nn.BCELoss", lambda xs, p: (nn.BCELoss(reduction="none"), {}), inputs_of=lambda layer, xs: xs)],
        "dropout": [Route("F.dropout", lambda xs, p: F.dropout(xs[0], p=p["p"], training=True), own_params=True),
                    _layer("nn.Dropout", lambda xs, p: (nn.Dropout(p["p"]).train(), {}), own_params=True)],
        "gru_cell": [_layer("nn.GRUCell", _cell_layer(nn.GRUCell), inputs_of=lambda layer, xs: xs[:2])],
        "lstm_cell": [_layer("nn.LSTMCell", _cell_layer(nn.LSTMCell),
                             inputs_of=lambda layer, xs: (xs[0], (xs[1], xs[2])),
                             output=lambda hc: gg.cat(list(hc), dim=1))],
    }
    for name, routes in _activation_functions().items():
        table.setdefault(name, []).extend(routes)
    for name, routes in _activation_layers().items():
        table.setdefault(name, []).extend(routes)
    return table


EXPLICIT = _explicit()

# Public names matched to an op by name that are not routes of it, and why.
NOT_ROUTES = {}

# Samples no public entry point can express, and why (the op itself is still run by the battery).
INEXPRESSIBLE = {
    ("conv2d", 1): (("cpu", "cuda"), "asymmetric padding ((1, 1), (2, 0)): F.conv2d and nn.Conv2d pad both sides "
                                     "alike, as PyTorch's"),
    ("to_device", 0): (("cpu",), "a move to the CPU of a CPU tensor: x.to('cpu') returns x itself, as PyTorch's"),
}


def inexpressible(name, k, device):
    devices, _ = INEXPRESSIBLE.get((name, k), ((), None))
    return str(device).split(":")[0] in devices


def entry_points():
    """``{op name: [Route, ...]}``: the discovered entry points, then the explicit ones."""
    table = {}
    for name, labels in discovered_entry_points().items():
        table[name] = [_discovered_route(label, kind) for label, kind in sorted(labels.items())]
    for name, routes in EXPLICIT.items():
        known = {route.label for route in table.get(name, ())}
        table.setdefault(name, []).extend(route for route in routes if route.label not in known)
    for routes in table.values():
        known = {route.label for route in routes}
        twins = [in_place_twin(route) for route in routes if route.method is not None]
        routes.extend(twin for twin in twins if twin is not None and twin.label not in known)
    return table


def as_array(value):
    return np.asarray(value.numpy() if isinstance(value, gg.Tensor) else value)

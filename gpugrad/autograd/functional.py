"""``gg.autograd.functional``: PyTorch's higher-level derivative functions, same signatures.

``jacobian``, ``hessian``, ``vjp``, ``jvp``, ``hvp`` and ``vhp`` take
``func`` and ``inputs`` (a tensor or a tuple of tensors) and return results
shaped as ``torch.autograd.functional`` returns them: ``vjp``/``jvp``/``hvp``
give ``(func(inputs), product)``, ``jacobian`` blocks of shape
``output.shape + input.shape``.  Note that ``jvp`` here takes ``(func, inputs, v)``
and returns ``(outputs, J v)``, PyTorch's convention for this namespace, which
differs from :func:`gpugrad.jvp` (``torch.func.jvp``'s) only in ``v`` being
optional and the keyword options.

Results are detached unless ``create_graph=True``.  ``strict=True`` raises
:class:`gpugrad.AutogradError` when an output does not depend on an input
(the result would be zero by independence, not by computation).

Examples
--------
>>> import gpugrad as gg
>>> from gpugrad.autograd.functional import jacobian, hessian
>>> jacobian(lambda x: x ** 2, gg.tensor([1.0, 2.0]))
tensor([[2., 0.],
        [0., 4.]], device='cpu')
>>> hessian(lambda x: (x ** 3).sum(), gg.tensor([1.0, 2.0]))
tensor([[ 6.,  0.],
        [ 0., 12.]], device='cpu')
"""

from __future__ import annotations

from .. import backend
from ..errors import AutogradError, ShapeError
from ..tensor import Tensor
from . import tape
from .forward import jvp as _forward_jvp

__all__ = ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"]


def _as_tuple(value, what, op):
    single = isinstance(value, Tensor)
    values = (value,) if single else tuple(value)
    for position, item in enumerate(values):
        if not isinstance(item, Tensor):
            raise TypeError(f"{op}: {what}[{position}] is a {type(item).__name__}, not a gg.Tensor")
    return single, values


def _prepared(inputs, create_graph):
    """Inputs the function is differentiated at: fresh leaves (or graph-connected aliases
    with create_graph, so the results stay differentiable in the caller's inputs)."""
    prepared = []
    for x in inputs:
        if create_graph and x.requires_grad:
            prepared.append(x.view_as(x))
        else:
            prepared.append(x.detach().requires_grad_(x.dtype.kind in "fc" or x.dtype == backend.bfloat16))
    return tuple(prepared)


def _grads(outputs, inputs, grad_outputs, create_graph, strict, op, what="output"):
    connected = [o for o in outputs if o.requires_grad]
    given = [g for o, g in zip(outputs, grad_outputs) if o.requires_grad] if grad_outputs is not None else None
    if not connected:
        results = [None] * len(inputs)
    else:
        results = list(tape.grad(connected, inputs, grad_outputs=given, retain_graph=True,
                                 create_graph=create_graph, allow_unused=True))
    filled = []
    for position, (x, g) in enumerate(zip(inputs, results)):
        if g is None:
            if strict:
                raise AutogradError(f"{op}: the {what} is independent of input {position} (shape "
                                    f"{tuple(x.shape)}), which strict=True forbids; pass strict=False to get zeros")
            from ..ops.creation import zeros_like
            g = zeros_like(x)
        filled.append(g)
    return tuple(filled)


def _finish(values, create_graph):
    return tuple(v if create_graph else v.detach() for v in values)


def _check_v(v, outputs, op, what):
    """``v``: one tensor per output, each of its output's shape (may be None for one one-element output)."""
    if v is None:
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise ShapeError(f"{op}: v can be omitted only when {what} is a single one-element tensor; got shapes "
                             f"{[tuple(o.shape) for o in outputs]}")
        from ..ops.creation import ones_like
        return (ones_like(outputs[0]),)
    _, v = _as_tuple(v, "v", op)
    if len(v) != len(outputs):
        raise ShapeError(f"{op}: v has {len(v)} tensors but {what} has {len(outputs)}; give one per entry")
    for position, (vi, o) in enumerate(zip(v, outputs)):
        if tuple(vi.shape) != tuple(o.shape):
            raise ShapeError(f"{op}: v[{position}] has shape {tuple(vi.shape)} but {what}[{position}] has shape "
                             f"{tuple(o.shape)}")
    return v


def _call(func, inputs, op):
    outputs = func(*inputs)
    single, outputs = _as_tuple(outputs, "the output of func", op)
    return single, outputs


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T J)``: the vector-Jacobian product, one block per input.

    Examples
    --------
    >>> import gpugrad as gg
    >>> out, g = gg.autograd.functional.vjp(lambda x: x ** 2, gg.tensor([1.0, 3.0]), gg.tensor([1.0, 1.0]))
    >>> g
    tensor([2., 6.], device='cpu')
    """
    single_in, inputs = _as_tuple(inputs, "inputs", "vjp")
    with tape.enable_grad():
        xs = _prepared(inputs, create_graph)
        single_out, outputs = _call(func, xs, "vjp")
        v = _check_v(v, outputs, "vjp", "the output")
        grads = _grads(outputs, xs, v, create_graph, strict, "vjp")
    outputs, grads = _finish(outputs, create_graph), _finish(grads, create_graph)
    return (outputs[0] if single_out else outputs), (grads[0] if single_in else grads)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J v)``: the Jacobian-vector product, one block per output (PyTorch's signature).

    Examples
    --------
    >>> import gpugrad as gg
    >>> out, t = gg.autograd.functional.jvp(lambda x: x ** 2, gg.tensor([1.0, 3.0]), gg.tensor([1.0, 0.0]))
    >>> t
    tensor([2., 0.], device='cpu')
    """
    single_in, inputs = _as_tuple(inputs, "inputs", "jvp")
    v = _check_v(v, inputs, "jvp", "inputs")
    if not create_graph and not strict:
        # Forward mode: one pass, exact, nothing recorded.
        with tape.no_grad():
            outputs, tangents = _forward_jvp(func, tuple(x.detach() for x in inputs), tuple(v))
        return outputs, tangents
    # With create_graph (or strict checks): the double-backward construction PyTorch uses,
    # J v = d/du (u^T J) v, so the result is differentiable.
    with tape.enable_grad():
        xs = _prepared(inputs, create_graph)
        single_out, outputs = _call(func, xs, "jvp")
        from ..ops.creation import zeros_like
        dummies = tuple(zeros_like(o).requires_grad_(o.dtype.kind in "fc" or o.dtype == backend.bfloat16)
                        for o in outputs)
        vjps = _grads(outputs, xs, dummies, True, strict, "jvp")
        tangents = _grads(vjps, dummies, v, create_graph, strict, "jvp", what="vector-Jacobian product")
    outputs, tangents = _finish(outputs, create_graph), _finish(tangents, create_graph)
    return (outputs[0] if single_out else outputs), (tangents[0] if single_out else tangents)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: block ``[i][j]`` has shape ``outputs[i].shape + inputs[j].shape``.

    A tensor input and a tensor output give one tensor; tuples give tuples,
    as PyTorch does.  ``vectorize`` and ``strategy`` are accepted for
    PyTorch's signature; the values do not depend on them (rows are computed
    one backward pass each).

    Examples
    --------
    >>> import gpugrad as gg
    >>> J = gg.autograd.functional.jacobian(lambda a, b: a * b, (gg.tensor([1.0, 2.0]), gg.tensor([3.0, 4.0])))
    >>> J[1]
    tensor([[1., 0.],
            [0., 2.]], device='cpu')
    """
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"jacobian: strategy={strategy!r} must be 'reverse-mode' or 'forward-mode'")
    if strategy == "forward-mode" and not vectorize:
        raise ValueError("jacobian: strategy='forward-mode' requires vectorize=True (as in PyTorch)")
    from ..ops.methods import stack
    single_in, inputs = _as_tuple(inputs, "inputs", "jacobian")
    with tape.enable_grad():
        xs = _prepared(inputs, create_graph)
        single_out, outputs = _call(func, xs, "jacobian")
        blocks = []
        for out_index, out in enumerate(outputs):
            flat = out.reshape(-1)
            rows = [[] for _ in xs]
            for element in range(flat.shape[0]):
                grads = _grads((flat[element],), xs, None, create_graph, strict, "jacobian",
                               what=f"output {out_index}")
                for position, g in enumerate(grads):
                    rows[position].append(g)
            per_input = []
            for x, row in zip(xs, rows):
                if row:
                    block = stack(row, 0).reshape(tuple(out.shape) + tuple(x.shape))
                else:
                    from ..ops.creation import zeros
                    block = zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype, device=x.device)
                per_input.append(block if create_graph else block.detach())
            blocks.append(per_input[0] if single_in else tuple(per_input))
    return blocks[0] if single_out else tuple(blocks)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar ``func``: block ``[i][j]`` of shape ``inputs[i].shape + inputs[j].shape``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.autograd.functional.hessian(lambda x: (x[0] * x[1]) ** 2, gg.tensor([1.0, 2.0]))
    tensor([[8., 8.],
            [8., 2.]], device='cpu')
    """
    single_in, inputs = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs):
        _, outputs = _call(func, xs, "hessian")
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise ShapeError(f"hessian: func must return a single one-element tensor, got shapes "
                             f"{[tuple(o.shape) for o in outputs]}")
        return _grads(outputs, xs, None, True, strict, "hessian")
    if outer_jacobian_strategy == "forward-mode" and not vectorize:
        raise ValueError("hessian: outer_jacobian_strategy='forward-mode' requires vectorize=True (as in PyTorch)")
    blocks = jacobian(gradient, inputs, create_graph=create_graph, strict=strict)
    return blocks[0][0] if single_in else blocks


def _second_order(op, func, inputs, v, create_graph, strict):
    single_in, inputs = _as_tuple(inputs, "inputs", op)
    with tape.enable_grad():
        xs = _prepared(inputs, create_graph)
        _, outputs = _call(func, xs, op)
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise ShapeError(f"{op}: func must return a single one-element tensor, got shapes "
                             f"{[tuple(o.shape) for o in outputs]}")
        v = _check_v(v, xs, op, "inputs")
        grads = _grads(outputs, xs, None, True, strict, op)
        products = _grads(grads, xs, v, create_graph, strict, op, what="gradient")
    output = _finish(outputs, create_graph)[0]
    products = _finish(products, create_graph)
    return output, (products[0] if single_in else products)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H v)`` for a scalar ``func`` (the Hessian is never formed).

    Examples
    --------
    >>> import gpugrad as gg
    >>> _, hv = gg.autograd.functional.hvp(lambda x: (x ** 3).sum(), gg.tensor([1.0, 2.0]), gg.tensor([1.0, 1.0]))
    >>> hv
    tensor([ 6., 12.], device='cpu')
    """
    return _second_order("hvp", func, inputs, v, create_graph, strict)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T H)`` for a scalar ``func``; equals :func:`hvp` since H is symmetric."""
    return _second_order("vhp", func, inputs, v, create_graph, strict)

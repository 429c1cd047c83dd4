"""Numerical differentiation, the reference every derivative is checked against.

Central differences ``(f(x + eps) - f(x - eps)) / (2 eps)`` in float64,
whatever the dtype of the inputs: the check is about the derivative rules,
not about float32 rounding.

* :func:`numerical_grad` - gradient of ``sum(grad_output * f(*inputs))``.
* :func:`gradcheck` - reverse mode (one backward with a random cotangent,
  compared per input element) and forward mode (one ``gg.jvp`` with a random
  tangent, compared per output element) against central differences.
* :func:`gradgradcheck` - the same for the gradient function itself
  (second order, through ``create_graph=True``).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import GradcheckError
from ..tensor import Tensor
from . import tape
from .forward import jvp


def _as_float64(inputs):
    converted = []
    for value in inputs:
        if isinstance(value, Tensor) and value.dtype.kind == "f":
            leaf = Tensor._make(value.array.astype(np.float64, copy=True))
            leaf.requires_grad = value.requires_grad
            converted.append(leaf)
        else:
            converted.append(value)
    return converted


def _differentiable(inputs):
    """Indices of the inputs to differentiate: floating tensors that require
    grad, or every floating tensor when none does."""
    floating = [i for i, v in enumerate(inputs) if isinstance(v, Tensor) and v.dtype.kind == "f"]
    chosen = [i for i in floating if inputs[i].requires_grad]
    return chosen or floating


def _outputs(f, inputs):
    result = f(*inputs)
    return [result] if isinstance(result, Tensor) else [r for r in result if isinstance(r, Tensor)]


def _weighted_sum(outputs, weights):
    """``sum_k <w_k, out_k>`` as a float64 number (the scalar central differences probe)."""
    total = 0.0
    for out, weight in zip(outputs, weights):
        if out.dtype.kind != "f":
            continue
        total += float(backend.xp_of(out.array).sum(out.array.astype(np.float64) * weight))
    return total


def numerical_grad(f, inputs, eps=1e-6, grad_outputs=None):
    """Central-difference gradient of ``sum(grad_outputs * f(*inputs))``.

    Parameters
    ----------
    f : callable
        Takes ``inputs`` as positional arguments, returns a tensor (or tuple).
    inputs : sequence
        Tensors (and other arguments passed through unchanged).
    eps : float
        Step of the central difference.
    grad_outputs : sequence of arrays, optional
        Weights of the outputs (ones by default: the gradient of the sum).

    Returns
    -------
    tuple of Tensor
        One float64 gradient per floating input tensor (``None`` for others).

    Examples
    --------
    >>> import gpugrad as gg
    >>> (g,) = gg.numerical_grad(lambda x: (x ** 3).sum(), [gg.tensor([1.0, 2.0])])
    >>> [round(v, 4) for v in g.tolist()]
    [3.0, 12.0]
    """
    inputs = _as_float64(list(inputs) if not isinstance(inputs, Tensor) else [inputs])
    # NOTE: f runs in the caller's grad mode: f may itself call gg.grad (gradgradcheck).
    outputs = _outputs(f, inputs)
    if grad_outputs is None:
        weights = [backend.xp_of(o.array).ones(o.shape) for o in outputs]
    else:
        weights = [backend.to_device(w.array if isinstance(w, Tensor) else np.asarray(w), o.device).astype(np.float64)
                   for w, o in zip(grad_outputs, outputs)]
    grads = []
    for value in inputs:
        if not (isinstance(value, Tensor) and value.dtype.kind == "f"):
            grads.append(None)
            continue
        flat = value.array.reshape(-1)   # a view: perturbations land in value.array
        grad = np.zeros(flat.shape[0])
        for i in range(flat.shape[0]):
            original = float(flat[i])
            flat[i] = original + eps
            plus = _weighted_sum(_outputs(f, inputs), weights)
            flat[i] = original - eps
            minus = _weighted_sum(_outputs(f, inputs), weights)
            flat[i] = original
            grad[i] = (plus - minus) / (2 * eps)
        grads.append(Tensor._make(backend.to_device(grad.reshape(value.shape), value.device)))
    return tuple(grads)


def _close(analytic, numeric, atol, rtol):
    return np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric)


def _first_mismatch(analytic, numeric, atol, rtol):
    bad = ~_close(analytic, numeric, atol, rtol)
    bad |= np.isnan(analytic) != np.isnan(numeric)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.argwhere(bad)[0])


def gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, check_forward=True, check_backward=True, seed=0,
              raise_exception=True):
    """Check the reverse-mode and forward-mode derivatives of ``f`` at ``inputs``
    against central differences, in float64.

    Raises :class:`gpugrad.GradcheckError` naming the input (or output), the
    index, the analytic and the numeric value at the first mismatch; returns
    ``True`` when everything agrees.

    Examples
    --------
    >>> import gpugrad as gg
    >>> gg.gradcheck(lambda x: x.sin() * x, [gg.randn(3, dtype=gg.float64)])
    True
    """
    inputs = _as_float64(list(inputs) if not isinstance(inputs, Tensor) else [inputs])
    chosen = _differentiable(inputs)
    rng = np.random.default_rng(seed)
    for i in chosen:
        inputs[i].requires_grad = True
        inputs[i].grad = None
    outputs = _outputs(f, inputs)
    outputs = [o for o in outputs if o.dtype.kind == "f"]
    try:
        if check_backward:
            cotangents = [rng.standard_normal(o.shape) for o in outputs]
            numeric = numerical_grad(f, inputs, eps, grad_outputs=cotangents)
            live = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
            if live:
                analytic = tape.grad([o for o, _ in live],
                                     [inputs[i] for i in chosen],
                                     grad_outputs=[Tensor._make(backend.to_device(c, o.device)) for o, c in live],
                                     allow_unused=True)
            else:
                analytic = [None] * len(chosen)
            for position, i in enumerate(chosen):
                got = analytic[position]
                got = np.zeros(inputs[i].shape) if got is None else backend.to_numpy(got.array)
                want = backend.to_numpy(numeric[i].array)
                index = _first_mismatch(got, want, atol, rtol)
                if index is not None:
                    raise GradcheckError(
                        f"gradcheck (reverse mode): gradient of input {i} (shape {tuple(inputs[i].shape)}) at index "
                        f"{index}: analytic {float(got[index])!r} vs numeric {float(want[index])!r} "
                        f"(atol={atol}, rtol={rtol})")
        if check_forward:
            directions = [rng.standard_normal(inputs[i].shape) for i in chosen]

            def restricted(*chosen_values):
                values = list(inputs)
                for i, v in zip(chosen, chosen_values):
                    values[i] = v
                return tuple(_outputs(f, values))

            primal_values = [inputs[i] for i in chosen]
            tangent_values = [Tensor._make(backend.to_device(d, inputs[i].device)) for d, i in zip(directions, chosen)]
            _, analytic_tangents = jvp(restricted, primal_values, tangent_values)
            plus = list(inputs)
            minus = list(inputs)
            for i, d in zip(chosen, directions):
                step = backend.to_device(d * eps, inputs[i].device)
                plus[i] = Tensor._make(inputs[i].array + step).requires_grad_()
                minus[i] = Tensor._make(inputs[i].array - step).requires_grad_()
            outs_plus, outs_minus = _outputs(f, plus), _outputs(f, minus)
            floating = [k for k, o in enumerate(_outputs(f, inputs)) if o.dtype.kind == "f"]
            for k in floating:
                want = (backend.to_numpy(outs_plus[k].array).astype(np.float64)
                        - backend.to_numpy(outs_minus[k].array).astype(np.float64)) / (2 * eps)
                got = backend.to_numpy(analytic_tangents[k].array)
                index = _first_mismatch(np.broadcast_to(got, want.shape), want, atol, rtol)
                if index is not None:
                    raise GradcheckError(
                        f"gradcheck (forward mode): tangent of output {k} (shape {tuple(want.shape)}) at index "
                        f"{index}: analytic {float(np.broadcast_to(got, want.shape)[index])!r} "
                        f"vs numeric {float(want[index])!r} "
                        f"(atol={atol}, rtol={rtol})")
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(f, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, check_forward=True, seed=0,
                  raise_exception=True):
    """Check second derivatives: gradcheck of ``x -> grad(f(x), x, v, create_graph=True)``.

    The cotangent ``v`` is random (or ``grad_outputs``) and held fixed.
    """
    inputs = _as_float64(list(inputs) if not isinstance(inputs, Tensor) else [inputs])
    chosen = _differentiable(inputs)
    rng = np.random.default_rng(seed + 1)
    with tape.no_grad():
        probe = _outputs(f, inputs)
    if grad_outputs is None:
        cotangents = [Tensor._make(backend.to_device(rng.standard_normal(o.shape), o.device)) for o in probe]
    else:
        cotangents = [g if isinstance(g, Tensor) else Tensor(g) for g in grad_outputs]

    def first_derivative(*chosen_values):
        values = list(inputs)
        leaves = []
        for i, v in zip(chosen, chosen_values):
            values[i] = v
            leaves.append(v)
        outputs = _outputs(f, values)
        live = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
        if not live:
            return tuple(Tensor._make(backend.xp_of(v.array).zeros_like(v.array)) for v in leaves)
        grads = tape.grad([o for o, _ in live], leaves, grad_outputs=[c for _, c in live],
                          create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor._make(backend.xp_of(v.array).zeros_like(v.array)) * v
                     for g, v in zip(grads, leaves))

    return gradcheck(first_derivative, [inputs[i] for i in chosen], eps=eps, atol=atol, rtol=rtol,
                     check_forward=check_forward, seed=seed + 2, raise_exception=raise_exception)

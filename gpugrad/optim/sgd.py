"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

import numpy as np

from ..ops.registry import scalar_array
from .optimizer import Optimizer, _check_number, wrap_array

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, matching ``torch.optim.SGD`` step for step.

    For each parameter with gradient ``g`` (negated when ``maximize``)::

        g = g + weight_decay * p
        buf = g                                   (first step)
        buf = momentum * buf + (1 - dampening) * g (later steps)
        g = g + momentum * buf   if nesterov else   buf
        p = p - lr * g

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters or parameter groups.
    lr : float, default 1e-3
        Learning rate.
    momentum : float, default 0
    dampening : float, default 0
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    nesterov : bool, default False
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    maximize : bool, default False
        Ascend the objective instead of descending it.

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0, -2.0], requires_grad=True)
    >>> w.grad = gg.tensor([0.5, 0.5])
    >>> opt = gg.optim.SGD([w], lr=0.1)
    >>> _ = opt.step()
    >>> w.numpy().tolist()
    [0.949999988079071, -2.049999952316284]
    """

    state_keys = {"momentum_buffer": False}

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_number("SGD", "lr", group["lr"])
        _check_number("SGD", "momentum", group["momentum"])
        _check_number("SGD", "dampening", group["dampening"], low=float("-inf"))
        _check_number("SGD", "weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening == 0, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}; "
                             "set momentum (e.g. 0.9) and dampening=0, or nesterov=False")

    def _update_group(self, group, params):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        step_dtype = step = None            # lr as a 0-d array of the parameters' dtype (see below)
        for param in params:
            values = param.array
            # Never write into .grad: it belongs to the user (and may be shared).
            grad = -param.grad.array if maximize else param.grad.array
            if weight_decay != 0:
                grad = grad + weight_decay * values
            if momentum != 0:
                state = self.state.setdefault_for(param)
                buffer = state.get("momentum_buffer")
                if buffer is None:
                    buffer = state["momentum_buffer"] = wrap_array(grad.astype(values.dtype, copy=True))
                else:
                    buffer.array *= momentum
                    buffer.array += (1 - dampening) * grad
                grad = grad + momentum * buffer.array if nesterov else buffer.array
            # lr as a cached 0-d array of the parameter's dtype: the same float32
            # product as lr * grad (NumPy casts a Python float to the array's
            # dtype anyway), at half the cost per small parameter.
            if values.__class__ is not np.ndarray:
                values -= lr * grad
                continue
            if values.dtype is not step_dtype:
                step_dtype, step = values.dtype, scalar_array(lr, values.dtype)
            values -= grad * step

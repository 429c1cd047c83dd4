"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from ..ops.optim_steps import sgd_step_
from .optimizer import Optimizer, _check_foreach_fused, _check_number

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
    foreach : bool or None, default None
        Accepted as in PyTorch; the update is always one "foreach" op over
        the group's parameters (:func:`gpugrad.ops.optim_steps.sgd_step_`).
    fused : bool or None, default None
        ``True``: one CUDA kernel per parameter on CuPy (equal to the unfused
        step within rounding); on the CPU the same in-place arithmetic as the
        default, bit for bit.  ``fused`` and ``foreach`` cannot both be True.

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
    _steps_bump_versions = True

    def _keeps_state(self, group):
        return group["momentum"] != 0       # the only state: momentum buffers

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, maximize=False, *, foreach=None, fused=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_number("SGD", "lr", group["lr"])
        _check_number("SGD", "momentum", group["momentum"])
        _check_number("SGD", "dampening", group["dampening"], low=float("-inf"))
        _check_number("SGD", "weight_decay", group["weight_decay"])
        _check_foreach_fused("SGD", group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening == 0, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}; "
                             "set momentum (e.g. 0.9) and dampening=0, or nesterov=False")

    def _update_group(self, group, params):
        momentum = group["momentum"]
        states = buffers = None
        if momentum != 0:
            states = self._states(params)
            buffers = [state.get("momentum_buffer") for state in states]
        buffers = sgd_step_(params, [param.grad for param in params], buffers, lr=group["lr"], momentum=momentum,
                            dampening=group["dampening"], weight_decay=group["weight_decay"],
                            nesterov=group["nesterov"], maximize=group["maximize"], fused=bool(group["fused"]))
        if states is not None:
            for state, buffer in zip(states, buffers):
                state["momentum_buffer"] = buffer

"""Adadelta (Zeiler 2012)."""

from __future__ import annotations

from ..ops.optim_steps import adadelta_step_
from .optimizer import Optimizer, _check_number, zeros_state

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta, matching ``torch.optim.Adadelta`` step for step::

        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 1.0
        Scales the update (Adadelta's own step size is ``delta``).
    rho : float, default 0.9
        Decay of both running averages, in [0, 1].
    eps : float, default 1e-6
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    maximize : bool, default False

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> w.grad = gg.tensor([2.0])
    >>> _ = gg.optim.Adadelta([w], lr=1.0).step()
    >>> round(w.item(), 6)    # 1 - sqrt(1e-6) / sqrt(0.4 + 1e-6) * 2
    0.996838
    """

    state_keys = {"step": True, "square_avg": True, "acc_delta": True}
    _steps_bump_versions = True

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key in ("lr", "eps", "weight_decay"):
            _check_number("Adadelta", key, group[key])
        _check_number("Adadelta", "rho", group["rho"], 0.0, 1.0, high_inclusive=True)

    def _update_group(self, group, params):
        states = self._states(params)
        for param, state in zip(params, states):
            if not state:
                state["step"] = 0
                state["square_avg"] = zeros_state(param)
                state["acc_delta"] = zeros_state(param)
            state["step"] += 1
        adadelta_step_(params, [param.grad for param in params], [state["square_avg"] for state in states],
                       [state["acc_delta"] for state in states], lr=group["lr"], rho=group["rho"], eps=group["eps"],
                       weight_decay=group["weight_decay"], maximize=group["maximize"])

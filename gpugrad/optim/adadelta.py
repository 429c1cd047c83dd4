"""Adadelta (Zeiler 2012)."""

from __future__ import annotations

from .optimizer import Optimizer, _check_number, wrap_array

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

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key in ("lr", "eps", "weight_decay"):
            _check_number("Adadelta", key, group[key])
        _check_number("Adadelta", "rho", group["rho"], 0.0, 1.0, high_inclusive=True)

    def _update_group(self, group, params):
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        for values, xp, grad, state in self._parameter_states(params, maximize):
            if not state:
                state["step"] = 0
                state["square_avg"] = wrap_array(xp.zeros_like(values))
                state["acc_delta"] = wrap_array(xp.zeros_like(values))
            state["step"] += 1
            if weight_decay != 0:
                grad = grad + weight_decay * values
            square_avg, acc_delta = state["square_avg"].array, state["acc_delta"].array
            square_avg *= rho
            square_avg += (1 - rho) * (grad * grad)
            delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * grad
            acc_delta *= rho
            acc_delta += (1 - rho) * (delta * delta)
            values -= lr * delta

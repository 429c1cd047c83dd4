"""Adagrad (Duchi, Hazan & Singer 2011)."""

from __future__ import annotations

from .optimizer import Optimizer, _check_number, wrap_array

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, matching ``torch.optim.Adagrad`` step for step::

        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                       (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 1e-2
    lr_decay : float, default 0
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    maximize : bool, default False

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> w.grad = gg.tensor([4.0])
    >>> _ = gg.optim.Adagrad([w], lr=0.5).step()    # g / sqrt(g^2) = 1
    >>> round(w.numpy().tolist()[0], 5)
    0.5
    """

    state_keys = {"step": True, "sum": True}

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, *, maximize=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _check_number("Adagrad", key, group[key])

    def _update_group(self, group, params):
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        for values, xp, grad, state in self._parameter_states(params, maximize):
            if not state:
                state["step"] = 0
                state["sum"] = wrap_array(xp.full_like(values, group["initial_accumulator_value"]))
            state["step"] += 1
            if weight_decay != 0:
                grad = grad + weight_decay * values
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            accumulated = state["sum"].array
            accumulated += grad * grad
            values -= clr * (grad / (xp.sqrt(accumulated) + eps))

"""Adamax, Adam's infinity-norm variant (Kingma & Ba 2015, section 7)."""

from __future__ import annotations

from ..ops.optim_steps import adamax_step_
from .optimizer import Optimizer, _check_number, zeros_state

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax, matching ``torch.optim.Adamax`` step for step::

        m = lerp(m, g, 1 - beta1)
        u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1**t) * m / u

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 2e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    maximize : bool, default False

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> w.grad = gg.tensor([2.0])
    >>> _ = gg.optim.Adamax([w], lr=0.1).step()     # the first step moves by about lr
    >>> round(w.item(), 4)
    0.9
    """

    state_keys = {"step": True, "exp_avg": True, "exp_inf": True}
    _steps_bump_versions = True
    _update_reads_step_count = True     # bias corrections from the step count, on the host

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_betas(type(self).__name__, group)
        for key in ("lr", "eps", "weight_decay"):
            _check_number(type(self).__name__, key, group[key])

    def _update_group(self, group, params):
        states = self._states(params)
        for param, state in zip(params, states):
            if not state:
                state["step"] = 0
                state["exp_avg"] = zeros_state(param)
                state["exp_inf"] = zeros_state(param)
            state["step"] += 1
        beta1, beta2 = group["betas"]
        adamax_step_(params, [param.grad for param in params], [state["exp_avg"] for state in states],
                     [state["exp_inf"] for state in states], [state["step"] for state in states], lr=group["lr"],
                     beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                     maximize=group["maximize"])


def _check_betas(name, group):
    """betas must be a pair in [0, 1); stored as a tuple (as Adam does)."""
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{name}: betas={betas!r} must be a pair (beta1, beta2), e.g. (0.9, 0.999)")
    _check_number(name, "betas[0]", betas[0], 0.0, 1.0)
    _check_number(name, "betas[1]", betas[1], 0.0, 1.0)
    group["betas"] = tuple(betas)

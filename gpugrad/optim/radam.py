"""RAdam: Adam with a rectified adaptive learning rate (Liu et al. 2020)."""

from __future__ import annotations

from ..ops.optim_steps import radam_step_
from .adamax import _check_betas
from .optimizer import Optimizer, _check_number, zeros_state

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam, matching ``torch.optim.RAdam`` step for step.

    With ``rho_inf = 2 / (1 - beta2) - 1`` and
    ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``::

        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        if rho_t > 5:  p = p - lr * m_hat * r_t * sqrt(1 - beta2**t) / (sqrt(v) + eps)
        else:          p = p - lr * m_hat          (the variance estimate is not yet trusted)

    where ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    decoupled_weight_decay : bool, default False
    maximize : bool, default False

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> w.grad = gg.tensor([2.0])
    >>> _ = gg.optim.RAdam([w], lr=0.1).step()     # early steps are SGD with momentum
    >>> round(w.item(), 4)
    0.8
    """

    state_keys = {"step": True, "exp_avg": True, "exp_avg_sq": True}
    _steps_bump_versions = True
    _update_reads_step_count = True     # bias corrections from the step count, on the host

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_betas("RAdam", group)
        for key in ("lr", "eps", "weight_decay"):
            _check_number("RAdam", key, group[key])

    def _update_group(self, group, params):
        states = self._states(params)
        for param, state in zip(params, states):
            if not state:
                state["step"] = 0
                state["exp_avg"] = zeros_state(param)
                state["exp_avg_sq"] = zeros_state(param)
            state["step"] += 1
        beta1, beta2 = group["betas"]
        radam_step_(params, [param.grad for param in params], [state["exp_avg"] for state in states],
                    [state["exp_avg_sq"] for state in states], [state["step"] for state in states], lr=group["lr"],
                    beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                    decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"])

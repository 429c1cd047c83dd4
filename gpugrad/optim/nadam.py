"""NAdam: Adam with Nesterov momentum (Dozat 2016)."""

from __future__ import annotations

from ..ops.optim_steps import nadam_step_
from .adamax import _check_betas
from .optimizer import Optimizer, _check_number, zeros_state

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""NAdam, matching ``torch.optim.NAdam`` step for step.

    With the momentum schedule ``mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``
    and ``P_t = mu_1 * ... * mu_t``::

        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2**t)) + eps
        p = p - lr * (1 - mu_t) / (1 - P_t) * g / d - lr * mu_{t+1} / (1 - P_t * mu_{t+1}) * m / d

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 2e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum_decay : float, default 4e-3
    decoupled_weight_decay : bool, default False
        Shrink the parameters directly (as AdamW does) instead of adding to the gradient.
    maximize : bool, default False

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> w.grad = gg.tensor([2.0])
    >>> _ = gg.optim.NAdam([w], lr=0.1).step()
    >>> w.item() < 1.0
    True
    """

    state_keys = {"step": True, "mu_product": True, "exp_avg": True, "exp_avg_sq": True}
    scalar_state_keys = {"mu_product": "number"}
    _steps_bump_versions = True
    _update_reads_step_count = True     # bias corrections from the step count, on the host

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_betas("NAdam", group)
        for key in ("lr", "eps", "weight_decay", "momentum_decay"):
            _check_number("NAdam", key, group[key])

    def _update_group(self, group, params):
        states = self._states(params)
        for param, state in zip(params, states):
            if not state:
                state["step"] = 0
                state["mu_product"] = 1.0
                state["exp_avg"] = zeros_state(param)
                state["exp_avg_sq"] = zeros_state(param)
            state["step"] += 1
        beta1, beta2 = group["betas"]
        products = nadam_step_(params, [param.grad for param in params], [state["exp_avg"] for state in states],
                               [state["exp_avg_sq"] for state in states], [state["mu_product"] for state in states],
                               [state["step"] for state in states], lr=group["lr"], beta1=beta1, beta2=beta2,
                               eps=group["eps"], weight_decay=group["weight_decay"],
                               momentum_decay=group["momentum_decay"],
                               decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"])
        for state, product in zip(states, products):
            state["mu_product"] = product

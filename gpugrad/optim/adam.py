"""Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019)."""

from __future__ import annotations

from ..ops.optim_steps import adam_step_
from .optimizer import Optimizer, _check_foreach_fused, _check_number, zeros_state

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam, matching ``torch.optim.Adam`` step for step.

    With ``t`` the step count and ``g`` the gradient (plus ``weight_decay * p``
    unless decoupled)::

        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) if amsgrad else v
        p = p - lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moment estimates.
    eps : float, default 1e-8
        Added to the denominator for numerical stability.
    weight_decay : float, default 0
        L2 penalty added to the gradient (see :class:`AdamW` for the decoupled form).
    amsgrad : bool, default False
        Use the running maximum of the second moment (Reddi et al. 2018).
    maximize : bool, default False
    decoupled_weight_decay : bool, default False
        Shrink the parameters directly (AdamW) instead of adding to the gradient.
    foreach : bool or None, default None
        Accepted as in PyTorch; the update is always one "foreach" op over
        the group's parameters (:func:`gpugrad.ops.optim_steps.adam_step_`).
    fused : bool or None, default None
        ``True``: one CUDA kernel per parameter on CuPy (equal to the unfused
        step within rounding); on the CPU the same in-place arithmetic as the
        default, bit for bit.  ``fused`` and ``foreach`` cannot both be True.

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0, -1.0], requires_grad=True)
    >>> w.grad = gg.tensor([2.0, -3.0])
    >>> opt = gg.optim.Adam([w], lr=0.1)
    >>> _ = opt.step()      # the first Adam step moves each weight by about lr
    >>> [round(v, 4) for v in w.numpy().tolist()]
    [0.9, -0.9]
    """

    state_keys = {"step": True, "exp_avg": True, "exp_avg_sq": True, "max_exp_avg_sq": False}
    _steps_bump_versions = True
    _update_reads_step_count = True     # bias corrections from the step count, on the host

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, fused=None, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group):
        name = type(self).__name__
        _check_number(name, "lr", group["lr"])
        _check_number(name, "eps", group["eps"])
        _check_number(name, "weight_decay", group["weight_decay"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas={betas!r} must be a pair (beta1, beta2), e.g. (0.9, 0.999)")
        _check_number(name, "betas[0]", betas[0], 0.0, 1.0)
        _check_number(name, "betas[1]", betas[1], 0.0, 1.0)
        group["betas"] = tuple(betas)
        _check_foreach_fused(name, group)

    def _update_group(self, group, params):
        amsgrad = group["amsgrad"]
        states = self._states(params)
        for param, state in zip(params, states):
            if not state:
                state["step"] = 0
                state["exp_avg"] = zeros_state(param)
                state["exp_avg_sq"] = zeros_state(param)
                if amsgrad:
                    state["max_exp_avg_sq"] = zeros_state(param)
            elif amsgrad and "max_exp_avg_sq" not in state:
                # amsgrad switched on mid-training (e.g. by load_state_dict of a group).
                state["max_exp_avg_sq"] = zeros_state(param)
            state["step"] += 1
        beta1, beta2 = group["betas"]
        adam_step_(params, [param.grad for param in params], [state["exp_avg"] for state in states],
                   [state["exp_avg_sq"] for state in states],
                   [state["max_exp_avg_sq"] for state in states] if amsgrad else None,
                   [state["step"] for state in states], lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                   weight_decay=group["weight_decay"], amsgrad=amsgrad, maximize=group["maximize"],
                   decoupled_weight_decay=group["decoupled_weight_decay"], fused=bool(group["fused"]))


class AdamW(Adam):
    r"""Adam with decoupled weight decay, matching ``torch.optim.AdamW``.

    Each step first shrinks the parameters, ``p = p * (1 - lr * weight_decay)``,
    then applies a plain Adam step; the decay never enters the moment estimates.

    Parameters
    ----------
    params, lr, betas, eps, amsgrad, maximize, foreach, fused
        As for :class:`Adam`.
    weight_decay : float, default 1e-2

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> w.grad = gg.tensor([0.0])
    >>> _ = gg.optim.AdamW([w], lr=0.1, weight_decay=0.5).step()   # only the decay acts
    >>> round(w.numpy().tolist()[0], 6)
    0.95
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, fused=fused, decoupled_weight_decay=True)

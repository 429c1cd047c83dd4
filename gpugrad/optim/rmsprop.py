"""RMSprop (Hinton's lecture 6e), optionally centered and with momentum."""

from __future__ import annotations

from ..ops.optim_steps import rmsprop_step_
from .optimizer import Optimizer, _check_foreach_fused, _check_number, zeros_state

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, matching ``torch.optim.RMSprop`` step for step::

        v = alpha * v + (1 - alpha) * g * g
        centered:  a = lerp(a, g, 1 - alpha);  denom = sqrt(v - a * a) + eps
        otherwise: denom = sqrt(v) + eps
        momentum > 0:  buf = momentum * buf + g / denom;  p = p - lr * buf
        otherwise:     p = p - lr * g / denom

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant of the squared-gradient average.
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum : float, default 0
    centered : bool, default False
        Normalise by the estimated variance instead of the raw second moment.
    maximize : bool, default False
    foreach : bool or None, default None
        Accepted as in PyTorch; the update is always one "foreach" op over
        the group's parameters (:func:`gpugrad.ops.optim_steps.rmsprop_step_`).
    fused : bool or None, default None
        ``True``: one CUDA kernel per parameter on CuPy (equal to the unfused
        step within rounding); on the CPU the same in-place arithmetic as the
        default, bit for bit.  ``fused`` and ``foreach`` cannot both be True.
        (PyTorch's RMSprop has no ``fused``; gpugrad's accepts it.)

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> w.grad = gg.tensor([1.0])
    >>> _ = gg.optim.RMSprop([w], lr=0.01).step()    # g / sqrt(0.01 g^2) = 10
    >>> round(w.numpy().tolist()[0], 5)
    0.9
    """

    state_keys = {"step": True, "square_avg": True, "momentum_buffer": False, "grad_avg": False}
    _steps_bump_versions = True

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, foreach=None, maximize=False, fused=None):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, foreach=foreach, maximize=maximize, fused=fused)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            _check_number("RMSprop", key, group[key])
        _check_foreach_fused("RMSprop", group)

    def _update_group(self, group, params):
        momentum, centered = group["momentum"], group["centered"]
        states = self._states(params)
        for param, state in zip(params, states):
            if not state:
                state["step"] = 0
                state["square_avg"] = zeros_state(param)
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = zeros_state(param)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = zeros_state(param)
            state["step"] += 1
        rmsprop_step_(params, [param.grad for param in params], [state["square_avg"] for state in states],
                      [state["grad_avg"] for state in states] if centered else None,
                      [state["momentum_buffer"] for state in states] if momentum > 0 else None,
                      lr=group["lr"], alpha=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
                      momentum=momentum, centered=centered, maximize=group["maximize"], fused=bool(group["fused"]))

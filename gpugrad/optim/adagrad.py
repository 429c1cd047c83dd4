"""Adagrad (Duchi, Hazan & Singer 2011)."""

from __future__ import annotations

from ..ops.creation import full_like
from ..ops.optim_steps import adagrad_step_
from .optimizer import Optimizer, _check_foreach_fused, _check_number

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
    foreach : bool or None, default None
        Accepted as in PyTorch; the update is always one "foreach" op over
        the group's parameters (:func:`gpugrad.ops.optim_steps.adagrad_step_`).
    fused : bool or None, default None
        ``True``: one CUDA kernel per parameter on CuPy (equal to the unfused
        step within rounding); on the CPU the same in-place arithmetic as the
        default, bit for bit.  ``fused`` and ``foreach`` cannot both be True.

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
    _steps_bump_versions = True

    def _reads_step_count(self, group):
        return group["lr_decay"] != 0       # clr = lr / (1 + (t - 1) lr_decay), on the host

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, fused=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, foreach=foreach,
                        maximize=maximize, fused=fused)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _check_number("Adagrad", key, group[key])
        _check_foreach_fused("Adagrad", group)

    def _update_group(self, group, params):
        states = self._states(params)
        for param, state in zip(params, states):
            if not state:
                state["step"] = 0
                state["sum"] = full_like(param.detach(), group["initial_accumulator_value"])
            state["step"] += 1
        adagrad_step_(params, [param.grad for param in params], [state["sum"] for state in states],
                      [state["step"] for state in states], lr=group["lr"], lr_decay=group["lr_decay"],
                      weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
                      fused=bool(group["fused"]))

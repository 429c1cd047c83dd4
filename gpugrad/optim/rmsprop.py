"""RMSprop (Hinton's lecture 6e), optionally centered and with momentum."""

from __future__ import annotations

from .optimizer import Optimizer, _check_number, wrap_array

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

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            _check_number("RMSprop", key, group[key])

    def _update_group(self, group, params):
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        weight_decay, momentum = group["weight_decay"], group["momentum"]
        centered, maximize = group["centered"], group["maximize"]
        for values, xp, grad, state in self._parameter_states(params, maximize):
            if not state:
                state["step"] = 0
                state["square_avg"] = wrap_array(xp.zeros_like(values))
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = wrap_array(xp.zeros_like(values))
            if centered and "grad_avg" not in state:
                state["grad_avg"] = wrap_array(xp.zeros_like(values))
            state["step"] += 1

            if weight_decay != 0:
                grad = grad + weight_decay * values
            square_avg = state["square_avg"].array
            square_avg *= alpha
            square_avg += (1 - alpha) * (grad * grad)
            if centered:
                grad_avg = state["grad_avg"].array
                # torch.lerp_ with weight 1 - alpha (< 0.5 for the usual alpha)
                if 1 - alpha < 0.5:
                    grad_avg += (1 - alpha) * (grad - grad_avg)
                else:
                    grad_avg[...] = grad - (grad - grad_avg) * alpha
                avg = xp.sqrt(square_avg - grad_avg * grad_avg)
            else:
                avg = xp.sqrt(square_avg)
            avg += eps
            if momentum > 0:
                buffer = state["momentum_buffer"].array
                buffer *= momentum
                buffer += grad / avg
                values -= lr * buffer
            else:
                values -= lr * (grad / avg)

"""Optimizer updates as "foreach" ops: one call updates a list of parameters in place.

Each ``*_step_`` function takes the parameters, their gradients and their
state tensors as parallel lists, applies one step of its algorithm to every
parameter **in place** with the array arithmetic of the parameters' own
device, builds no graph (the arrays are updated directly, never through
autograd) and bumps the parameters' version counters as an in-place op does,
so a graph that saved a parameter refuses to backpropagate through the stale
value.  ``gg.optim``'s optimizers keep the state and the options; these
functions only do the arithmetic, the same numbers, rounding for rounding,
as ``torch.optim``'s single-tensor implementations.

``fused=True`` applies the whole update of a parameter in one CUDA kernel on
CuPy (:mod:`gpugrad.kernels.optim_kernels`; equal to the unfused step within
rounding); on NumPy the unfused arithmetic already runs in place and is used
as is, so there ``fused`` and ``foreach`` give the same bits as the default.

Examples
--------
>>> import gpugrad as gg
>>> from gpugrad.ops.optim_steps import sgd_step_
>>> w = gg.tensor([1.0, -2.0], requires_grad=True)
>>> _ = sgd_step_([w], [gg.tensor([0.5, 0.5])], None, lr=0.1)
>>> w.numpy().tolist()
[0.949999988079071, -2.049999952316284]
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..errors import DTypeError
from ..kernels import optim_kernels
from ..tensor import bump_versions
from .registry import scalar_array

__all__ = ["sgd_step_", "adam_step_", "rmsprop_step_", "adagrad_step_", "adadelta_step_", "adamax_step_",
           "nadam_step_", "radam_step_", "add_flat_", "copy_arrays_", "lerp_"]


def lerp_(start, end, weight):
    """``start += weight * (end - start)`` on raw arrays in place, rounded as ``torch.lerp_`` does.

    PyTorch switches formula at weight 0.5 to keep the result exact at both
    ends; doing the same keeps our trajectories bit-close to PyTorch's.

    Examples
    --------
    >>> import numpy as np
    >>> start = np.array([0.0, 1.0])
    >>> lerp_(start, np.array([1.0, 1.0]), 0.25)
    >>> start.tolist()
    [0.25, 1.0]
    """
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


def _fused_on_device(owner, params, grads, fused):
    """Whether the fused kernels run: asked for, and the parameters live on CuPy.

    The kernels bind one element type to a parameter and its gradient, so a
    gradient of another dtype is refused (before anything changes).
    """
    if not fused or not params or not backend.is_gpu_array(params[0].array):
        return False
    for param, grad in zip(params, grads):
        if grad.array.dtype != param.array.dtype:
            raise DTypeError(f"{owner}(fused=True): a parameter is {param.array.dtype} but its gradient is "
                             f"{grad.array.dtype}; the fused kernel needs both of one dtype: cast the gradient "
                             "(p.grad = p.grad.to(p.dtype)) or pass fused=False")
    return True


def _signed(grad, maximize):
    return -grad if maximize else grad


def sgd_step_(params, grads, momentum_buffers, *, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
              maximize=False, fused=False):
    """One SGD step (``torch.optim.SGD``'s update) for every parameter, in place.

    Parameters
    ----------
    params, grads : list of Tensor
        The parameters and their gradients (never modified).
    momentum_buffers : list of (Tensor or None), or None
        One per parameter when ``momentum != 0`` (None: no buffer yet, it
        starts as the gradient; the new buffer is written into the list, as
        ``torch.optim``'s functional steps do); ignored otherwise.
    lr, momentum, dampening, weight_decay, nesterov, maximize
        As for :class:`gpugrad.optim.SGD`.
    fused : bool, default False
        One CUDA kernel per parameter on CuPy.

    Returns
    -------
    list of (Tensor or None)
        ``momentum_buffers`` after the step (a new list when None was given).

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> buffers = sgd_step_([w], [gg.tensor([1.0])], [None], lr=0.5, momentum=0.9)
    >>> w.numpy().tolist(), buffers[0].numpy().tolist()
    ([0.5], [1.0])
    """
    if momentum != 0 and momentum_buffers is None:
        momentum_buffers = [None] * len(params)
    if fused and _fused_on_device("sgd_step_", params, grads, fused):
        buffers = _sgd_fused(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov,
                             maximize)
        bump_versions(params)
        return buffers
    step_dtype = step = None            # lr as a 0-d array of the parameters' dtype (see below)
    for index, (param, grad) in enumerate(zip(params, grads)):
        values = param.array
        # Never write into the gradient: it belongs to the user (and may be shared).
        grad = -grad.array if maximize else grad.array
        if weight_decay != 0:
            grad = grad + weight_decay * values
        if momentum != 0:
            buffer = momentum_buffers[index]
            if buffer is None:
                buffer = momentum_buffers[index] = _as_state(grad.astype(values.dtype, copy=True))
            else:
                buffer.array *= momentum
                buffer.array += (1 - dampening) * grad
            grad = grad + momentum * buffer.array if nesterov else buffer.array
        # lr as a cached 0-d array of the parameter's dtype: the same float32
        # product as lr * grad (NumPy casts a Python float to the array's
        # dtype anyway), at half the cost per small parameter.
        if values.__class__ is not np.ndarray:
            values -= lr * grad
            continue
        if values.dtype is not step_dtype:
            step_dtype, step = values.dtype, scalar_array(lr, values.dtype)
        values -= grad * step
    bump_versions(params)
    return momentum_buffers


def _sgd_fused(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov, maximize):
    name = optim_kernels.sgd_kernel_name(momentum)
    if momentum == 0:
        for param, grad in zip(params, grads):
            optim_kernels.launch(name, (grad.array, float(lr), float(weight_decay), int(maximize), param.array))
        return momentum_buffers
    for index, (param, grad) in enumerate(zip(params, grads)):
        buffer = momentum_buffers[index]
        first = buffer is None
        if first:
            buffer = momentum_buffers[index] = _as_state(backend.xp_of(param.array).empty_like(param.array))
        optim_kernels.launch(name, (grad.array, float(lr), float(weight_decay), float(momentum),
                                    float(1 - dampening), int(nesterov), int(maximize), int(first),
                                    param.array, buffer.array))
    return momentum_buffers


def adam_step_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *, lr, beta1, beta2, eps,
               weight_decay=0, amsgrad=False, maximize=False, decoupled_weight_decay=False, fused=False):
    """One Adam (or, with ``decoupled_weight_decay``, AdamW) step for every parameter, in place.

    Parameters
    ----------
    params, grads : list of Tensor
    exp_avgs, exp_avg_sqs : list of Tensor
        The first and second moment estimates (updated in place).
    max_exp_avg_sqs : list of Tensor, or None
        The running maxima of the second moments (``amsgrad`` only).
    steps : list of int
        Each parameter's step count, this step included (1 on the first).
    lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay
        As for :class:`gpugrad.optim.Adam`.
    fused : bool, default False

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> m, v = gg.zeros_like(w), gg.zeros_like(w)
    >>> adam_step_([w], [gg.tensor([2.0])], [m], [v], None, [1], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    >>> round(w.item(), 4)
    0.9
    """
    fused = fused and _fused_on_device("adam_step_", params, grads, fused)
    for index, param in enumerate(params):
        values, step = param.array, steps[index]
        exp_avg, exp_avg_sq = exp_avgs[index].array, exp_avg_sqs[index].array
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
        step_size = lr / bias_correction1
        if fused:
            arguments = (grads[index].array, float(weight_decay), float(1 - lr * weight_decay), float(1 - beta1),
                         float(beta2), float(1 - beta2), float(step_size), float(bias_correction2_sqrt),
                         float(eps), int(maximize), int(decoupled_weight_decay), values, exp_avg, exp_avg_sq)
            if amsgrad:
                arguments += (max_exp_avg_sqs[index].array,)
            optim_kernels.launch(optim_kernels.adam_kernel_name(amsgrad), arguments)
            continue
        xp = backend.xp_of(values)
        grad = _signed(grads[index].array, maximize)
        if weight_decay != 0:
            if decoupled_weight_decay:
                values *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * values
        lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        if amsgrad:
            max_exp_avg_sq = max_exp_avg_sqs[index].array
            xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            denom = xp.sqrt(max_exp_avg_sq) / bias_correction2_sqrt + eps
        else:
            denom = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        values -= step_size * (exp_avg / denom)
    bump_versions(params)


def rmsprop_step_(params, grads, square_avgs, grad_avgs, momentum_buffers, *, lr, alpha, eps, weight_decay=0,
                  momentum=0, centered=False, maximize=False, fused=False):
    """One RMSprop step for every parameter, in place.

    Parameters
    ----------
    params, grads : list of Tensor
    square_avgs : list of Tensor
    grad_avgs : list of Tensor, or None
        The running means of the gradient (``centered`` only).
    momentum_buffers : list of Tensor, or None
        (``momentum > 0`` only.)
    lr, alpha, eps, weight_decay, momentum, centered, maximize
        As for :class:`gpugrad.optim.RMSprop`.
    fused : bool, default False

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> rmsprop_step_([w], [gg.tensor([1.0])], [gg.zeros_like(w)], None, None, lr=0.01, alpha=0.99, eps=1e-8)
    >>> round(w.item(), 5)
    0.9
    """
    if fused and _fused_on_device("rmsprop_step_", params, grads, fused):
        name = optim_kernels.rmsprop_kernel_name(centered, momentum)
        for index, param in enumerate(params):
            arguments = (grads[index].array, float(lr), float(alpha), float(1 - alpha), float(eps),
                         float(weight_decay), float(momentum), int(maximize), param.array, square_avgs[index].array)
            if centered:
                arguments += (grad_avgs[index].array,)
            if momentum > 0:
                arguments += (momentum_buffers[index].array,)
            optim_kernels.launch(name, arguments)
        bump_versions(params)
        return
    for index, param in enumerate(params):
        values = param.array
        xp = backend.xp_of(values)
        grad = _signed(grads[index].array, maximize)
        if weight_decay != 0:
            grad = grad + weight_decay * values
        square_avg = square_avgs[index].array
        square_avg *= alpha
        square_avg += (1 - alpha) * (grad * grad)
        if centered:
            grad_avg = grad_avgs[index].array
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
            buffer = momentum_buffers[index].array
            buffer *= momentum
            buffer += grad / avg
            values -= lr * buffer
        else:
            values -= lr * (grad / avg)
    bump_versions(params)


def adagrad_step_(params, grads, state_sums, steps, *, lr, lr_decay=0, weight_decay=0, eps=1e-10, maximize=False,
                  fused=False):
    """One Adagrad step for every parameter, in place.

    Parameters
    ----------
    params, grads : list of Tensor
    state_sums : list of Tensor
        The accumulated squared gradients (updated in place).
    steps : list of int
        Each parameter's step count, this step included.
    lr, lr_decay, weight_decay, eps, maximize
        As for :class:`gpugrad.optim.Adagrad`.
    fused : bool, default False

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> adagrad_step_([w], [gg.tensor([4.0])], [gg.zeros_like(w)], [1], lr=0.5)
    >>> round(w.item(), 5)
    0.5
    """
    fused = fused and _fused_on_device("adagrad_step_", params, grads, fused)
    for index, param in enumerate(params):
        values = param.array
        clr = lr / (1 + (steps[index] - 1) * lr_decay)
        accumulated = state_sums[index].array
        if fused:
            optim_kernels.launch(optim_kernels.adagrad_kernel_name(),
                                 (grads[index].array, float(clr), float(weight_decay), float(eps), int(maximize),
                                  values, accumulated))
            continue
        grad = _signed(grads[index].array, maximize)
        if weight_decay != 0:
            grad = grad + weight_decay * values
        accumulated += grad * grad
        values -= clr * (grad / (backend.xp_of(values).sqrt(accumulated) + eps))
    bump_versions(params)


def adadelta_step_(params, grads, square_avgs, acc_deltas, *, lr, rho, eps, weight_decay=0, maximize=False):
    """One Adadelta step for every parameter, in place (see :class:`gpugrad.optim.Adadelta`).

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> adadelta_step_([w], [gg.tensor([2.0])], [gg.zeros_like(w)], [gg.zeros_like(w)], lr=1.0, rho=0.9, eps=1e-6)
    >>> round(w.item(), 6)
    0.996838
    """
    for index, param in enumerate(params):
        values = param.array
        xp = backend.xp_of(values)
        grad = _signed(grads[index].array, maximize)
        if weight_decay != 0:
            grad = grad + weight_decay * values
        square_avg, acc_delta = square_avgs[index].array, acc_deltas[index].array
        square_avg *= rho
        square_avg += (1 - rho) * (grad * grad)
        delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * grad
        acc_delta *= rho
        acc_delta += (1 - rho) * (delta * delta)
        values -= lr * delta
    bump_versions(params)


def adamax_step_(params, grads, exp_avgs, exp_infs, steps, *, lr, beta1, beta2, eps, weight_decay=0,
                 maximize=False):
    """One Adamax step for every parameter, in place (see :class:`gpugrad.optim.Adamax`).

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> adamax_step_([w], [gg.tensor([2.0])], [gg.zeros_like(w)], [gg.zeros_like(w)], [1], lr=0.1, beta1=0.9,
    ...              beta2=0.999, eps=1e-8)
    >>> round(w.item(), 4)
    0.9
    """
    for index, param in enumerate(params):
        values = param.array
        xp = backend.xp_of(values)
        grad = _signed(grads[index].array, maximize)
        if weight_decay != 0:
            grad = grad + weight_decay * values
        exp_avg, exp_inf = exp_avgs[index].array, exp_infs[index].array
        lerp_(exp_avg, grad, 1 - beta1)
        exp_inf *= beta2
        xp.maximum(exp_inf, xp.abs(grad) + eps, out=exp_inf)
        clr = lr / (1 - beta1 ** steps[index])
        values -= clr * (exp_avg / exp_inf)
    bump_versions(params)


def nadam_step_(params, grads, exp_avgs, exp_avg_sqs, mu_products, steps, *, lr, beta1, beta2, eps,
                weight_decay=0, momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    """One NAdam step for every parameter, in place (see :class:`gpugrad.optim.NAdam`).

    ``mu_products`` holds each parameter's product of the momentum schedule
    before this step; returns the products after it.

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> products = nadam_step_([w], [gg.tensor([2.0])], [gg.zeros_like(w)], [gg.zeros_like(w)], [1.0], [1],
    ...                        lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    >>> w.item() < 1.0, len(products)
    (True, 1)
    """
    new_products = []
    for index, param in enumerate(params):
        values, step = param.array, steps[index]
        xp = backend.xp_of(values)
        grad = _signed(grads[index].array, maximize)
        if weight_decay != 0:
            if decoupled_weight_decay:
                values *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * values
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        mu_product = float(mu_products[index]) * mu
        new_products.append(mu_product)
        exp_avg, exp_avg_sq = exp_avgs[index].array, exp_avg_sqs[index].array
        lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        denom = xp.sqrt(exp_avg_sq / (1 - beta2 ** step)) + eps
        values -= (lr * (1.0 - mu) / (1.0 - mu_product)) * (grad / denom)
        values -= (lr * mu_next / (1.0 - mu_product * mu_next)) * (exp_avg / denom)
    bump_versions(params)
    return new_products


def radam_step_(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, beta1, beta2, eps, weight_decay=0,
                decoupled_weight_decay=False, maximize=False):
    """One RAdam step for every parameter, in place (see :class:`gpugrad.optim.RAdam`).

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> radam_step_([w], [gg.tensor([2.0])], [gg.zeros_like(w)], [gg.zeros_like(w)], [1], lr=0.1, beta1=0.9,
    ...             beta2=0.999, eps=1e-8)
    >>> round(w.item(), 4)
    0.8
    """
    for index, param in enumerate(params):
        values, step = param.array, steps[index]
        xp = backend.xp_of(values)
        grad = _signed(grads[index].array, maximize)
        if weight_decay != 0:
            if decoupled_weight_decay:
                values *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * values
        exp_avg, exp_avg_sq = exp_avgs[index].array, exp_avg_sqs[index].array
        lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        corrected_exp_avg = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive_lr = math.sqrt(bias_correction2) / (xp.sqrt(exp_avg_sq) + eps)
            values -= corrected_exp_avg * lr * adaptive_lr * rect
        else:
            values -= corrected_exp_avg * lr
    bump_versions(params)


def add_flat_(params, step_size, update):
    """``p += step_size * update[slice of p]`` for each parameter, ``update`` being a flat raw array
    holding all parameters' values one after another (L-BFGS's search direction).

    Examples
    --------
    >>> import numpy as np
    >>> import gpugrad as gg
    >>> a, b = gg.tensor([1.0, 2.0], requires_grad=True), gg.tensor([3.0], requires_grad=True)
    >>> add_flat_([a, b], 0.5, np.array([2.0, 2.0, 4.0], dtype=np.float32))
    >>> a.numpy().tolist(), b.numpy().tolist()
    ([2.0, 3.0], [5.0])
    """
    offset = 0
    for param in params:
        values = param.array
        count = values.size
        values += step_size * update[offset:offset + count].reshape(values.shape)
        offset += count
    bump_versions(params)


def copy_arrays_(params, arrays):
    """Write ``arrays`` (raw arrays of the parameters' shapes) into the parameters, in place.

    Examples
    --------
    >>> import numpy as np
    >>> import gpugrad as gg
    >>> w = gg.tensor([1.0, 2.0], requires_grad=True)
    >>> copy_arrays_([w], [np.array([0.0, 0.5], dtype=np.float32)])
    >>> w.numpy().tolist()
    [0.0, 0.5]
    """
    for param, array in zip(params, arrays):
        param.array[...] = array
    bump_versions(params)


def _as_state(array):
    """A Tensor sharing a state array this module just created (no copy, no graph)."""
    from .creation import as_tensor
    return as_tensor(array, device=backend.device_of(array))

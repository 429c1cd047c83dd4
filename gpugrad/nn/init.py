"""Weight initialisation, PyTorch's ``torch.nn.init`` with its fan rules and gains.

Every function fills its tensor in place, outside the graph, draws from
``gpugrad.backend.generator(tensor.device)`` (so ``gg.manual_seed`` makes it
reproducible on either backend) and returns the tensor.

Examples
--------
>>> import gpugrad as gg
>>> w = gg.empty(64, 32)
>>> _ = gg.nn.init.kaiming_uniform_(w, a=5 ** 0.5)
>>> bool(abs(w).max() <= 1 / 32 ** 0.5)
True
"""

from __future__ import annotations

import math

from .. import backend
from ..autograd import tape
from ..errors import ShapeError

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]


def _write(tensor, values):
    """Store ``values`` (any float array on the tensor's device) into ``tensor`` in place."""
    with tape.no_grad():
        data = tensor.array
        data[...] = values.astype(data.dtype, copy=False)
        tensor._bump_version()
    return tensor


def _generator(tensor):
    return backend.generator(tensor.device)


def calculate_gain(nonlinearity, param=None):
    """The gain PyTorch recommends for ``nonlinearity`` (``'relu'``: sqrt(2), ``'tanh'``: 5/3, ...)."""
    linear = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid"}
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; use one of "
                     f"{sorted(linear | {'tanh', 'relu', 'leaky_relu', 'selu'})}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ShapeError(f"init: fan in and fan out cannot be computed for a tensor with fewer than 2 dimensions "
                         f"(shape {tuple(tensor.shape)})")
    receptive_field = 1
    for size in tensor.shape[2:]:
        receptive_field *= size
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode {mode!r} is not supported; use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with values drawn from U(a, b)."""
    generator = generator or _generator(tensor)
    return _write(tensor, generator.random(tensor.shape) * (b - a) + a)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with values drawn from N(mean, std**2)."""
    generator = generator or _generator(tensor)
    return _write(tensor, generator.standard_normal(tensor.shape) * std + mean)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill from N(mean, std**2) restricted to [a, b] (redrawing values that fall outside)."""
    generator = generator or _generator(tensor)
    xp = backend.xp_of(tensor.array)
    values = generator.standard_normal(tensor.shape) * std + mean
    for _ in range(100):
        outside = (values < a) | (values > b)
        if not bool(outside.any()):
            break
        redraw = generator.standard_normal(tensor.shape) * std + mean
        values = xp.where(outside, redraw, values)
    return _write(tensor, xp.clip(values, a, b))


def constant_(tensor, val):
    """Fill with ``val``."""
    with tape.no_grad():
        tensor.array[...] = val
        tensor._bump_version()
    return tensor


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot normal: N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: U(-bound, bound) with bound = gain * sqrt(3 / fan) (``a`` is leaky_relu's slope)."""
    if tensor.numel() == 0:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: N(0, std**2) with std = gain / sqrt(fan)."""
    if tensor.numel() == 0:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


# PyTorch's old spellings
uniform = uniform_
normal = normal_
constant = constant_
xavier_uniform = xavier_uniform_
xavier_normal = xavier_normal_
kaiming_uniform = kaiming_uniform_
kaiming_normal = kaiming_normal_

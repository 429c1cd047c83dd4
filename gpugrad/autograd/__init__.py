"""``gg.autograd``: PyTorch's ``torch.autograd`` names.

``gg.autograd.Function``, ``grad``, ``backward``, ``functional`` (jacobian,
hessian, vjp, jvp, hvp, vhp), ``gradcheck``, ``gradgradcheck``, the grad-mode
contexts and ``detect_anomaly``.  Looked up on first use, because the engine's
modules import this package while gpugrad itself is still loading.

Examples
--------
>>> import gpugrad as gg
>>> x = gg.tensor(2.0, requires_grad=True)
>>> gg.autograd.grad(x ** 3, x)
(tensor(12.),)
"""

import importlib as _importlib

_NAMES = {
    "Function": ("function", "Function"), "FunctionCtx": ("function", "FunctionCtx"),
    "grad": ("tape", "grad"), "no_grad": ("tape", "no_grad"),
    "enable_grad": ("tape", "enable_grad"), "set_grad_enabled": ("tape", "set_grad_enabled"),
    "detect_anomaly": ("tape", "detect_anomaly"), "gradcheck": ("check", "gradcheck"),
    "gradgradcheck": ("check", "gradgradcheck"),
}
_SUBMODULES = ("functional", "tape", "function", "check", "forward", "transforms")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """PyTorch's ``torch.autograd.backward``: accumulate gradients of ``tensors`` into the leaves.

    Parameters
    ----------
    tensors : Tensor or sequence of Tensor
    grad_tensors : Tensor or sequence of Tensor (or None entries), optional
        One gradient per tensor; may be omitted for one-element tensors.
    retain_graph, create_graph, inputs
        As for :meth:`gpugrad.Tensor.backward`.

    Examples
    --------
    >>> import gpugrad as gg
    >>> x = gg.tensor([1.0, 2.0], requires_grad=True)
    >>> gg.autograd.backward([(x * x).sum()])
    >>> x.grad
    tensor([2., 4.])
    """
    from .tape import backward as run
    from ..tensor import Tensor
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is not None:
        grad_tensors = [grad_tensors] if isinstance(grad_tensors, Tensor) else list(grad_tensors)
    run(tensors, grad_tensors, retain_graph=retain_graph, create_graph=create_graph,
        inputs=None if inputs is None else ([inputs] if isinstance(inputs, Tensor) else list(inputs)))


def __getattr__(name):
    if name in _NAMES:
        module, attribute = _NAMES[name]
        value = getattr(_importlib.import_module(f"{__name__}.{module}"), attribute)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'gpugrad.autograd' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_SUBMODULES))

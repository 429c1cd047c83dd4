"""Containers: ``Sequential``, ``ModuleList``, ``ModuleDict``, and the trivial ``Identity``,
``Flatten`` and ``Unflatten`` layers that models glue together with them."""

from __future__ import annotations

import operator
from collections import OrderedDict

from ..ops.activation import linear as _linear
from ..tensor import Tensor
from .layers.activation import FUSABLE
from .layers.linear import Linear
from .module import Module, Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Identity", "Flatten",
           "Unflatten"]


def _index(index, length, kind):
    index = operator.index(index)
    if not -length <= index < length:
        raise IndexError(f"{kind}: index {index} is out of range for {length} modules")
    return index % length


class _NumberedModules:
    """What Sequential and ModuleList share: children numbered "0", "1", ...,
    kept contiguous as modules come and go."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def _insert(self, index, module):
        items = list(self._modules.values())
        items.insert(index, module)
        self._renumber(items)

    def _renumber(self, modules):
        self._modules.clear()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)


class Sequential(_NumberedModules, Module):
    """Modules applied one after another; ``Sequential(a, b)`` or ``Sequential(OrderedDict(...))``.

    Examples
    --------
    >>> import gpugrad as gg
    >>> net = gg.nn.Sequential(gg.nn.Linear(4, 8), gg.nn.ReLU(), gg.nn.Linear(8, 2))
    >>> len(net), type(net[1]).__name__, list(net.state_dict())[:2]
    (3, 'ReLU', ['0.weight', '0.bias'])
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[_index(index, len(self), "Sequential")]

    def __setitem__(self, index, module):
        key = list(self._modules)[_index(index, len(self), "Sequential")]
        self.add_module(key, module)

    def __delitem__(self, index):
        keys = list(self._modules)
        if isinstance(index, slice):
            for key in keys[index]:
                del self._modules[key]
        else:
            del self._modules[keys[_index(index, len(self), "Sequential")]]
        # keep the numbering contiguous, like PyTorch
        if all(key.isdigit() for key in self._modules):
            self._renumber(list(self._modules.values()))

    def __add__(self, other):
        if not isinstance(other, Sequential):
            return NotImplemented
        return Sequential(*self, *other)

    def insert(self, index, module):
        self._insert(index, module)
        return self

    def forward(self, input):
        # NOTE: a Linear followed by an activation module of FUSABLE (both
        # exactly those classes, with a bias and no hooks) runs as one fused
        # linear_<name> op (ops.linear(..., activation=name)): on NumPy the same
        # values and gradients, one graph node and one dispatch fewer.  The
        # pre-activation tensor is not visible from outside a Sequential, so
        # nothing observes the difference.  Such a Linear on its own runs its op
        # directly too.
        pending = None          # a Linear whose output has not been computed yet
        for module in self._modules.values():
            if pending is not None:
                fusion = FUSABLE.get(module.__class__)
                parameters = pending._parameters
                if fusion is not None and not (module._forward_pre_hooks or module._forward_hooks):
                    activation, options = fusion if fusion.__class__ is tuple else fusion(module)
                    input = _linear(input, parameters["weight"], parameters["bias"], activation, **options)
                    pending = None
                    continue
                input = _linear(input, parameters["weight"], parameters["bias"])
                pending = None
            if (module.__class__ is Linear and isinstance(input, Tensor) and module._parameters["bias"] is not None
                    and not (module._forward_pre_hooks or module._forward_hooks)):
                pending = module
                continue
            input = module(input)
        if pending is not None:
            parameters = pending._parameters
            input = _linear(input, parameters["weight"], parameters["bias"])
        return input


class ModuleList(_NumberedModules, Module):
    """A list of modules whose parameters the parent module sees (a plain list would hide them)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(_index(index, len(self), "ModuleList"))]

    def __setitem__(self, index, module):
        self.add_module(str(_index(index, len(self), "ModuleList")), module)

    def __delitem__(self, index):
        items = list(self._modules.values())
        if isinstance(index, slice):
            del items[index]
        else:
            del items[_index(index, len(self), "ModuleList")]
        self._renumber(items)

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def insert(self, index, module):
        self._insert(index, module)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it in your module's forward")


class _RegistryMapping:
    """Dict methods over one of a Module's registries (named by ``_registry``):
    what ModuleDict and ParameterDict share; each defines how to store a value."""

    _registry = None

    def _entries(self):
        return self.__dict__[self._registry]

    def __getitem__(self, key):
        return self._entries()[key]

    def __delitem__(self, key):
        del self._entries()[key]

    def __len__(self):
        return len(self._entries())

    def __iter__(self):
        return iter(self._entries())

    def __contains__(self, key):
        return key in self._entries()

    def keys(self):
        return self._entries().keys()

    def values(self):
        return self._entries().values()

    def items(self):
        return self._entries().items()

    def pop(self, key):
        return self._entries().pop(key)

    def clear(self):
        self._entries().clear()

    def update(self, entries):
        items = entries.items() if hasattr(entries, "items") else entries
        for key, value in items:
            self[key] = value


class ModuleDict(_RegistryMapping, Module):
    """An ordered mapping of names to modules, registered as children."""

    _registry = "_modules"

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(); index it in your module's forward")


def _as_parameter(value):
    """Plain tensors become Parameters (as PyTorch's ParameterList/Dict do); other values are kept."""
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


class ParameterList(Module):
    """A list of parameters registered on the module (names ``"0"``, ``"1"``, ...)."""

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ParameterList(list(self)[index])
        return self._parameters[str(_index(index, len(self), "ParameterList"))]

    def __setitem__(self, index, value):
        self.register_parameter(str(_index(index, len(self), "ParameterList")), _as_parameter(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        self.register_parameter(str(len(self)), _as_parameter(value))
        return self

    def extend(self, values):
        for value in values:
            self.append(value)
        return self

    def extra_repr(self):
        return "\n".join(f"({i}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
                         for i, p in enumerate(self))


class ParameterDict(_RegistryMapping, Module):
    """An ordered mapping of names to parameters registered on the module."""

    _registry = "_parameters"

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __setitem__(self, key, value):
        self.register_parameter(key, _as_parameter(value))


class Identity(Module):
    """Returns its input (a placeholder that accepts and ignores any constructor arguments)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` (keeps the batch dimension by default)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

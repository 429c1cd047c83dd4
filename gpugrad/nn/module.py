"""``Module`` and ``Parameter``: the building blocks of models, PyTorch's way.

A :class:`Module` keeps three ordered registries, filled by plain attribute
assignment (``self.weight = Parameter(...)``, ``self.fc = Linear(...)``) or by
``register_buffer``:

* ``_parameters``: trainable leaves (:class:`Parameter`);
* ``_buffers``: tensors that are state but not trained (BatchNorm's running
  statistics), saved in the state dict unless registered non-persistent;
* ``_modules``: child modules.

Everything else (``parameters()``, ``state_dict()``, ``to()``, ``train()``,
``repr``) walks those registries, so the names it produces are PyTorch's
(``0.weight``, ``bn.running_mean``) and a state dict moves between the two
libraries key for key.
"""

from __future__ import annotations

import collections
import itertools
from collections import OrderedDict

import numpy as np

from .. import backend
from ..autograd import tape
from ..errors import DTypeError, GpugradError
from ..tensor import Tensor

__all__ = ["Module", "Parameter", "StateDictError", "IncompatibleKeys"]


class StateDictError(GpugradError, RuntimeError):
    """``load_state_dict`` found missing, unexpected or mis-shaped entries (nothing was loaded)."""


IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


# --------------------------------------------------------------------------
# Parameter
# --------------------------------------------------------------------------
class Parameter(Tensor):
    """A tensor that a :class:`Module` registers as trainable when assigned to it.

    It is a leaf that requires grad by default.  ``Parameter(t)`` shares ``t``'s
    memory, like PyTorch.  Operations on a parameter give plain tensors.

    Examples
    --------
    >>> import gpugrad as gg
    >>> w = gg.nn.Parameter(gg.ones(2))
    >>> w.requires_grad, w.is_leaf
    (True, True)
    >>> w
    Parameter containing:
    tensor([1., 1.], device='cpu', requires_grad=True)
    """

    def __init__(self, data=None, requires_grad=True):
        # NOTE: not Tensor.__init__: that would move the array to the default
        # device and copy it; a Parameter wraps the given array as it is.
        if data is None:
            data = Tensor._make(np.empty((0,), dtype=backend.get_default_dtype()))
        if isinstance(data, Tensor):
            self.array = data.array
            self._version_box = data._shared_version_box()   # shares memory, so shares versions
        elif hasattr(data, "shape") and hasattr(data, "dtype"):
            self.array = data                                   # a NumPy or CuPy array
        else:
            self.array = Tensor(data).array
        if requires_grad:
            if self.array.dtype.kind not in "fc" and self.array.dtype != backend.bfloat16:
                raise DTypeError(f"Parameter: only floating tensors can require gradients, got {self.array.dtype} "
                                 f"(shape {tuple(self.array.shape)}); pass requires_grad=False or convert with "
                                 "t.float()")
            self.requires_grad = True

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __reduce_ex__(self, protocol):
        return (Parameter, (Tensor._make(self.array), self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = Parameter(Tensor._make(self.array.copy()), self.requires_grad)
        if self.grad is not None:
            result.grad = Tensor._make(self.grad.array.copy())
        memo[id(self)] = result
        return result


def _is_float(array):
    return array.dtype.kind in "fc" or array.dtype == backend.bfloat16


# --------------------------------------------------------------------------
# hooks
# --------------------------------------------------------------------------
class RemovableHandle:
    """``handle.remove()`` unregisters the hook it was returned for."""

    _ids = itertools.count()

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _addindent(text, spaces):
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _parse_to(args, kwargs):
    """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``, keywords too."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"Module.to: unexpected arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, backend.Device):
            device = arg
        elif isinstance(arg, str):
            parsed = backend.device_or_dtype(arg, "Module.to")
            if isinstance(parsed, backend.Device):
                device = parsed
            else:
                dtype = parsed
        elif isinstance(arg, int) and not isinstance(arg, bool):
            device = backend.Device("cuda", arg)
        elif arg is not None:
            dtype = arg
    if device is not None:
        device = backend.as_device(device)
        if device.type == "cuda":
            backend.require_cuda(device)
    if dtype is not None:
        dtype = backend.as_dtype(dtype)
        if dtype.kind not in "fc" and dtype != backend.bfloat16:
            raise DTypeError(f"Module.to: only floating dtypes are accepted, got {dtype}; a model's integer "
                             "buffers (like num_batches_tracked) keep their dtype anyway")
    return device, dtype


def _as_array(value):
    """The raw array behind a state-dict value (gg.Tensor, NumPy/CuPy array, or anything array-like)."""
    if isinstance(value, Tensor):
        return value.array
    if hasattr(value, "shape") and hasattr(value, "dtype") and (isinstance(value, np.ndarray)
                                                                 or backend.is_gpu_array(value)):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):   # a torch tensor, say
        value = value.detach().cpu().numpy()
    return np.asarray(value)


# --------------------------------------------------------------------------
# Module
# --------------------------------------------------------------------------
class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, assign parameters, buffers and
    submodules as attributes, and define ``forward``; calling the module runs
    ``forward`` (with any registered hooks).

    Examples
    --------
    >>> import gpugrad as gg
    >>> class Net(gg.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = gg.nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    >>> net = Net()
    >>> [name for name, _ in net.named_parameters()]
    ['fc.weight', 'fc.bias']
    >>> net(gg.ones(4, 3)).shape
    Size([4, 2])
    """

    training: bool
    _version = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments; Module.__init__ takes none")
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", OrderedDict())
        set_(self, "_buffers", OrderedDict())
        set_(self, "_non_persistent_buffers", set())
        set_(self, "_modules", OrderedDict())
        set_(self, "_forward_pre_hooks", OrderedDict())
        set_(self, "_forward_hooks", OrderedDict())

    # ------------------------------------------------------------- forward
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define forward(self, ...) in the subclass")

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` runs before ``forward``; it may return replacement args."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` runs after ``forward``; it may return a replacement output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # -------------------------------------------------------- registration
    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' of "
                                f"{type(self).__name__} (gg.nn.Parameter or None expected); wrap it: "
                                f"gg.nn.Parameter(value)")
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            modules = self.__dict__.get("_modules")
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name)
            modules[name] = value
        elif self.__dict__.get("_modules") is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' of "
                                f"{type(self).__name__} (gg.nn.Module or None expected)")
            self._modules[name] = None
        elif self.__dict__.get("_buffers") is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' of "
                                f"{type(self).__name__} (gg.Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Drop ``name`` from every registry and the instance dict (it is being re-registered)."""
        self.__dict__.pop(name, None)
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name):
        # Only reached when normal lookup fails: look in the registries.
        state = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            values = state.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                del values[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    @staticmethod
    def _check_name(kind, name):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name {name!r} must be non-empty and contain no '.'")

    def register_parameter(self, name, param):
        """Register ``param`` (a :class:`Parameter` or None) under ``name``."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameters before Module.__init__() call")
        self._check_name("parameter", name)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists on {type(self).__name__}")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' as parameter '{name}' "
                            "(gg.nn.Parameter or None expected)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(f"cannot assign non-leaf tensor to parameter '{name}'; a parameter must be a leaf. "
                             "Make it from a detached tensor: gg.nn.Parameter(t.detach())")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register a tensor that is module state but not trained (saved in ``state_dict``
        unless ``persistent=False``); ``None`` reserves the name."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name("buffer", name)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists on {type(self).__name__}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' as buffer '{name}' (gg.Tensor or None expected)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Register a child module (or None) under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name("module", name)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists on {type(self).__name__}")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        """The submodule at dotted path ``target`` (``""`` is the module itself)."""
        module = self
        if target == "":
            return module
        for item in target.split("."):
            if item not in module._modules or module._modules[item] is None:
                raise AttributeError(f"{type(module).__name__} has no submodule '{item}' (path '{target}')")
            module = module._modules[item]
        return module

    def get_parameter(self, target):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"{type(module).__name__} has no parameter '{name}'")
        return module._parameters[name]

    # ----------------------------------------------------------- iteration
    def _named_members(self, get_members, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in get_members(module):
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield (module_prefix + "." + name if module_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(name, parameter)`` pairs; a parameter shared by two modules appears once."""
        return self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """This module and every descendant, depth first, each once (unless remove_duplicate=False)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, prefix + "." + name if prefix else name, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def num_parameters(self, trainable_only=False):
        """Total number of elements in the parameters (each shared parameter counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # --------------------------------------------------------------- modes
    def train(self, mode=True):
        """Set training mode (``Dropout`` drops, ``BatchNorm`` uses batch statistics); returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode is expected to be a bool, got {type(mode).__name__}")  # noqa: TRY004 - torch's type
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Evaluation mode, ``train(False)``; returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of every parameter (to None, or to zeros)."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                # NOTE: a fresh array, not an in-place write: the engine may have given
                # two leaves the same gradient array (add's VJP), and grads can carry a graph.
                data = param.grad.array
                param.grad = Tensor._make(backend.xp_of(data).zeros_like(data))

    def apply(self, fn):
        """Call ``fn(module)`` on every submodule (children first) and on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------ device / dtype
    def _apply_arrays(self, convert):
        """Replace the array of every parameter, gradient and buffer by ``convert(array)``,
        in place: the Parameter objects stay the same (optimizers keep working).

        All conversions happen before any assignment, so a failure on the way
        (out of device memory, say) leaves every tensor where it was.
        """
        updates, seen = [], set()
        for module in self.modules():
            for registry in (module._parameters, module._buffers):
                for tensor in registry.values():
                    if tensor is None or id(tensor) in seen:
                        continue
                    seen.add(id(tensor))
                    new = convert(tensor.array)
                    grad = tensor.grad
                    new_grad = None if grad is None else convert(grad.array)
                    updates.append((tensor, new, new_grad))
        for tensor, new, new_grad in updates:
            if new is not tensor.array:
                tensor.array = new
            if new_grad is not None and new_grad is not tensor.grad.array:
                tensor.grad = Tensor._make(new_grad)
        return self

    def to(self, *args, **kwargs):
        """Move and/or cast parameters and buffers in place: ``to("cuda")``, ``to(gg.float64)``,
        ``to(device, dtype)``.  Only floating tensors change dtype.  Returns self.

        Examples
        --------
        >>> import gpugrad as gg
        >>> layer = gg.nn.Linear(2, 2)
        >>> w = layer.weight
        >>> layer.to(gg.float64).weight is w, w.dtype
        (True, dtype('float64'))
        """
        device, dtype = _parse_to(args, dict(kwargs))

        def convert(array):
            if device is not None and backend.device_of(array) != device:
                array = backend.to_device(array, device)
            if dtype is not None and _is_float(array) and array.dtype != dtype:
                array = array.astype(dtype)
            return array
        return self._apply_arrays(convert)

    def cuda(self, device=None):
        if device is None:
            return self.to("cuda")
        return self.to(device if isinstance(device, (str, backend.Device)) else backend.Device("cuda", device))

    def cpu(self):
        return self.to(backend.CPU)

    def float(self):
        return self.to(backend.float32)

    def double(self):
        return self.to(backend.float64)

    def half(self):
        return self.to(backend.float16)

    def bfloat16(self):
        """Cast floating parameters and buffers to bfloat16 (in place; returns ``self``)."""
        return self.to(backend.bfloat16)

    def type(self, dst_type):
        return self.to(dst_type)

    # ----------------------------------------------------------- state dict
    def _state_items(self, prefix):
        """(key, owner module, local name, tensor) for every entry of the state dict.

        Like PyTorch, a module or parameter reachable under two names appears under both.
        """
        for module_prefix, module in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            head = module_prefix + "." if module_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    yield head + name, module, name, param
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    yield head + name, module, name, buffer

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An ordered mapping from PyTorch-style names (``0.weight``, ``bn.running_mean``) to tensors.

        The tensors share memory with the module (detached unless ``keep_vars``);
        non-persistent buffers are left out.
        """
        if destination is None:
            destination = OrderedDict()
        for key, _, _, tensor in self._state_items(prefix):
            destination[key] = tensor if keep_vars else tensor.detach()
        return destination

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` into the parameters and buffers, in place.

        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``.  With
        ``strict=True`` missing or unexpected keys are errors; a shape mismatch
        is always one.  Everything is checked before anything is copied, so an
        error leaves the module exactly as it was.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a mapping of names to tensors, got {type(state_dict).__name__}")
        expected = OrderedDict((key, tensor) for key, _, _, tensor in self._state_items(""))
        missing = [key for key in expected if key not in state_dict]
        unexpected = [key for key in state_dict if key not in expected]
        problems = []
        arrays = {}
        for key, tensor in expected.items():
            if key not in state_dict:
                continue
            try:
                array = _as_array(state_dict[key])
            except Exception as error:  # noqa: BLE001 - reported below with the key
                problems.append(f"the value for '{key}' is a {type(state_dict[key]).__name__}, "
                                f"not a tensor or array ({error})")
                continue
            if tuple(array.shape) != tuple(tensor.shape):
                problems.append(f"size mismatch for {key}: copying a param with shape {tuple(array.shape)} from "
                                f"checkpoint, the shape in current model is {tuple(tensor.shape)}.")
            elif array.dtype.kind not in "fciub" and array.dtype != backend.bfloat16:
                problems.append(f"the value for '{key}' has dtype {array.dtype}, which cannot be copied into "
                                f"{tensor.dtype}")
            elif backend.is_floating(array.dtype) and not backend.is_floating(tensor.dtype):
                problems.append(f"dtype mismatch for {key}: a floating value ({array.dtype}) cannot be copied "
                                f"into the integer tensor ({tensor.dtype})")
            else:
                arrays[key] = array
        if strict:
            if unexpected:
                problems.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected)
                                + ".")
            if missing:
                problems.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if problems:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                                 + "\n\t".join(problems) + "\nNothing was loaded; the model is unchanged.")
        with tape.no_grad():
            for key, array in arrays.items():
                tensor = expected[key]
                target = tensor.array
                source = backend.to_device(array, backend.device_of(target))
                target[...] = source.astype(target.dtype, copy=False)
                tensor._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- repr
    def extra_repr(self):
        """The text inside the parentheses of this module's repr (override in layers)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(module), 2) for name, module in self._modules.items()]
        if len(extra_lines) == 1 and not child_lines:
            return f"{self._get_name()}({extra_lines[0]})"
        lines = extra_lines + child_lines
        if not lines:
            return f"{self._get_name()}()"
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"

    def __setstate__(self, state):
        self.__dict__.update(state)

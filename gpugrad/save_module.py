"""Whole-module saving without pickle, and ``gg.save``/``gg.load`` on file objects.

``torch.save(model, path)`` pickles the model, and loading a pickle runs
whatever code the file names.  gpugrad never unpickles.  Instead
:func:`save_module` writes the module's *recipe*: its class's import path, the
arguments its constructor was called with (recorded when it was built), the
training flag of every submodule and its state dict, plus the simple attributes (numbers,
strings, booleans) of every submodule.  :func:`load_module` rebuilds only
classes on an explicit allow-list (``gpugrad.nn``'s own layers are always
allowed), checks that the rebuilt module has the same attributes and loads the
weights strictly, so a module changed after construction (a replaced head, an
edited ``dropout.p``) fails loudly instead of loading as something else.

``gg.save(model, f)`` is :func:`save_module`; ``gg.load(f)`` of such a file
needs ``allowed_modules=[MyNet, ...]``.

Examples
--------
>>> import io, gpugrad as gg
>>> class Net(gg.nn.Module):
...     def __init__(self, hidden):
...         super().__init__()
...         self.body = gg.nn.Sequential(gg.nn.Linear(2, hidden), gg.nn.ReLU(), gg.nn.Linear(hidden, 1))
...     def forward(self, x):
...         return self.body(x)
>>> net = Net(hidden=8)
>>> buffer = io.BytesIO()
>>> gg.save(net, buffer)
>>> _ = buffer.seek(0)
>>> again = gg.load(buffer, allowed_modules=[Net])
>>> x = gg.ones(3, 2)
>>> bool((again(x) == net(x)).all())
True
"""

from __future__ import annotations

import importlib
import io
import os
import shutil
import tempfile

import numpy as np

from . import backend
from .errors import CheckpointError

__all__ = ["save_module", "load_module"]

_MARKER = "__gpugrad_module__"
_FORMAT = 1
_SIMPLE = (bool, int, float, str, type(None))


def _module_class():
    from .nn.module import Module
    return Module


def _recording_new(cls, *args, **kwargs):
    """``Module.__new__``: keep the constructor's arguments, so the module can be rebuilt."""
    module = object.__new__(cls)
    module.__dict__["_constructor_arguments"] = (args, kwargs)
    return module


def install_recording():
    """Make every ``nn.Module`` remember the arguments it was constructed with (done at import)."""
    _module_class().__new__ = _recording_new


install_recording()


# --------------------------------------------------------------------------
# recipes
# --------------------------------------------------------------------------
def _where(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def _unrecordable(module_path, what, value):
    return TypeError(
        f"gg.save: cannot record {module_path}'s constructor argument {what} (a {type(value).__name__}); only "
        "numbers, strings, booleans, None, dtypes, devices, modules and lists/tuples/dicts of them can be "
        "saved without pickle. Save the weights instead: gg.save(model.state_dict(), path), then rebuild with "
        "model = MyNet(...); model.load_state_dict(gg.load(path))")


def _encode_argument(value, owner, what):
    Module = _module_class()
    if isinstance(value, _SIMPLE):
        if isinstance(value, float) and not np.isfinite(value):
            return {"__float__": repr(value)}
        return value
    if isinstance(value, Module):
        return {"__module__": _recipe(value, f"{owner} argument {what}")}
    if isinstance(value, np.dtype):
        return {"__dtype__": value.name}
    if isinstance(value, backend.Device):
        return {"__device__": str(value)}
    if isinstance(value, (list, tuple)):
        items = [_encode_argument(item, owner, f"{what}[{i}]") for i, item in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"__dict__": {key: _encode_argument(item, owner, f"{what}[{key!r}]") for key, item in value.items()}}
    raise _unrecordable(owner, what, value)


def _recipe(module, owner):
    cls = type(module)
    if "<locals>" in cls.__qualname__:
        raise TypeError(f"gg.save: {cls.__qualname__} is defined inside a function, so it cannot be imported to "
                        "rebuild it; define it at module level, or save model.state_dict()")
    recorded = module.__dict__.get("_constructor_arguments")
    if recorded is None:
        raise TypeError(f"gg.save: {cls.__name__} was not built through its constructor, so its arguments are "
                        "unknown; save model.state_dict() instead")
    args, kwargs = recorded
    name = f"{owner} ({cls.__name__})" if owner else cls.__name__
    return {"class": _where(cls),
            "args": [_encode_argument(a, name, f"#{i}") for i, a in enumerate(args)],
            "kwargs": {key: _encode_argument(v, name, key) for key, v in kwargs.items()}}


def _attributes(module):
    """Simple attributes of every submodule (what the constructor decided), by qualified name."""
    found = {}
    for prefix, sub in module.named_modules():
        for key, value in vars(sub).items():
            if key.startswith("_") or key == "training" or not isinstance(value, _SIMPLE):
                continue
            if isinstance(value, float) and not np.isfinite(value):
                value = repr(value)
            found[f"{prefix}.{key}" if prefix else key] = value
    return found


def save_module(module, f):
    """Save ``module`` as a recipe plus its state dict (no pickle); rebuild it with :func:`load_module`.

    Parameters
    ----------
    module : gg.nn.Module
    f : str, os.PathLike or binary file object

    Raises
    ------
    TypeError
        When a constructor argument cannot be recorded (a function, a tensor,
        an arbitrary object) or the class cannot be imported; the message says
        to save ``model.state_dict()`` instead.  Nothing is written then.
    """
    recipe = _recipe(module, "")
    payload = {_MARKER: _FORMAT, "recipe": recipe,
               "training": {name: bool(sub.training) for name, sub in module.named_modules()},
               "attributes": _attributes(module), "state_dict": module.state_dict()}
    _save_any(payload, f)


def _save_any(obj, f):
    from .io import save
    if isinstance(f, (str, os.PathLike)):
        save(obj, f)
        return
    if not hasattr(f, "write"):
        raise TypeError(f"gg.save: f must be a path or a binary file object with write(), got {type(f).__name__}")
    # io.save writes atomically to paths only; write there, then copy the bytes.
    directory = tempfile.mkdtemp(prefix="gpugrad-save-")
    try:
        path = os.path.join(directory, "object.safetensors")
        save(obj, path)
        with open(path, "rb") as handle:
            shutil.copyfileobj(handle, f)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _decode_argument(value, allowed):
    if isinstance(value, list):
        return [_decode_argument(item, allowed) for item in value]
    if isinstance(value, dict):
        if "__module__" in value:
            return _rebuild(value["__module__"], allowed)
        if "__tuple__" in value:
            return tuple(_decode_argument(item, allowed) for item in value["__tuple__"])
        if "__dict__" in value:
            return {key: _decode_argument(item, allowed) for key, item in value["__dict__"].items()}
        if "__dtype__" in value:
            return backend.as_dtype(value["__dtype__"])
        if "__device__" in value:
            return backend.as_device(value["__device__"])
        if "__float__" in value:
            return float(value["__float__"])
        raise CheckpointError(f"gg.load: unknown argument encoding {sorted(value)} in a module recipe")
    return value


def _rebuild(recipe, allowed):
    where = recipe.get("class") if isinstance(recipe, dict) else None
    if not isinstance(where, str) or ":" not in where:
        raise CheckpointError("gg.load: the module recipe is malformed (no class path)")
    module_name, qualname = where.split(":", 1)
    cls = allowed.get(where)
    if cls is None:
        if not (module_name == "gpugrad.nn" or module_name.startswith("gpugrad.nn.")):
            raise CheckpointError(
                f"gg.load: the file holds a {qualname} module (from {module_name}); rebuilding it runs that class's "
                f"code, so it must be allowed explicitly: gg.load(path, allowed_modules=[{qualname}]) (import the "
                "class first), or save and load model.state_dict() instead")
        cls = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part, None)
        if not isinstance(cls, type) or not issubclass(cls, _module_class()):
            raise CheckpointError(f"gg.load: {where} is not a gpugrad module class")
    args = _decode_argument(recipe.get("args", []), allowed)
    kwargs = _decode_argument({"__dict__": recipe.get("kwargs", {})}, allowed)
    return cls(*args, **kwargs)


def load_module(payload, allowed_modules=(), device=None):
    """Rebuild a module from what :func:`save_module` wrote (already read by ``gg.load``).

    Parameters
    ----------
    payload : dict
        The loaded file.
    allowed_modules : sequence of classes
        Classes that may be constructed (besides ``gpugrad.nn``'s own).
    device : str or gg.Device, optional
        Where the rebuilt module's parameters go (default: where the state dict was loaded).
    """
    Module = _module_class()
    allowed = {}
    for cls in allowed_modules or ():
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise TypeError(f"gg.load: allowed_modules must hold nn.Module classes, got {cls!r}")
        allowed[_where(cls)] = cls
    if payload.get(_MARKER) != _FORMAT:
        raise CheckpointError(f"gg.load: unknown module file format {payload.get(_MARKER)!r}")
    module = _rebuild(payload["recipe"], allowed)
    rebuilt, saved = _attributes(module), payload.get("attributes", {})
    differing = sorted(key for key in set(saved) | set(rebuilt)
                       if saved.get(key, "<absent>") != rebuilt.get(key, "<absent>"))
    if differing:
        shown = ", ".join(f"{key}: saved {saved.get(key, '<absent>')!r}, rebuilt {rebuilt.get(key, '<absent>')!r}"
                          for key in differing[:5])
        raise CheckpointError(
            f"gg.load: rebuilding {type(module).__name__} from its constructor arguments does not give the saved "
            f"module ({shown}); it was changed after construction. Save model.state_dict() instead and apply the "
            "same changes before load_state_dict")
    if device is not None:
        module.to(device)
    try:
        module.load_state_dict(payload["state_dict"])
    except (KeyError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"gg.load: the saved weights do not fit a freshly built {type(module).__name__} ({error}); the module "
            "was changed after construction. Save model.state_dict() instead") from error
    flags = payload.get("training", {})
    for name, sub in module.named_modules():
        # Set one module at a time: a submodule's mode may differ from its parent's.
        object.__setattr__(sub, "training", bool(flags.get(name, True)))
    return module


def load_from_file_object(load, f, *args, allowed_modules=None, **kwargs):
    """``gg.load``: read a path or a binary file object; rebuild modules saved by :func:`save_module`."""
    if isinstance(f, (str, os.PathLike)):
        result = load(f, *args, **kwargs)
    elif hasattr(f, "read"):
        directory = tempfile.mkdtemp(prefix="gpugrad-load-")
        try:
            path = os.path.join(directory, "object.safetensors")
            with open(path, "wb") as handle:
                shutil.copyfileobj(f, handle)
            result = load(path, *args, **kwargs)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    elif isinstance(f, (bytes, bytearray)):
        return load_from_file_object(load, io.BytesIO(f), *args, allowed_modules=allowed_modules, **kwargs)
    else:
        raise TypeError(f"gg.load: f must be a path or a binary file object with read(), got {type(f).__name__}")
    if isinstance(result, dict) and _MARKER in result:
        if allowed_modules is None:
            qualname = str(result.get("recipe", {}).get("class", "?")).split(":")[-1]
            raise CheckpointError(
                f"gg.load: the file holds a whole {qualname} module; rebuilding it runs that class's code, so pass "
                f"the classes it may construct: gg.load(f, allowed_modules=[{qualname}])")
        return load_module(result, allowed_modules, device=kwargs.get("device"))
    return result

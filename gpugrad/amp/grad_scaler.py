"""``gg.amp.GradScaler``: dynamic loss scaling, PyTorch's ``torch.amp.GradScaler``.

float16 gradients underflow below 6e-8 (2^-24).  Multiplying the loss by a
large scale before ``backward`` lifts them into range; :meth:`GradScaler.unscale_`
divides them back before the optimizer sees them.  Should the scale be so large
that some gradient overflowed (inf or NaN), the step is skipped and the scale
shrinks (``backoff_factor``); after ``growth_interval`` clean steps in a row it
grows (``growth_factor``).  The sequence of scales and skipped steps is
PyTorch's, update for update.

The inf/NaN check is one reduction per step: each gradient contributes one
partial sum, the partials are stacked and tested by one ``isfinite``.  An inf
or NaN anywhere makes its partial inf or NaN; a partial can also overflow from
finite values beyond float32's range, so a "maybe" is confirmed element by
element and the answer is exact.  On CuPy the flag stays on the GPU until
:meth:`GradScaler.step` reads it (one host synchronisation per step, as in
PyTorch).  Under ``gg.distributed`` with several ranks the flag is all-reduced
(max) before the decision, so every rank skips or steps together.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd.tape import no_grad
from ..errors import DTypeError
from ..tensor import Tensor

__all__ = ["GradScaler", "OptState"]


class OptState:
    """Where an optimizer is in the scaler's cycle (PyTorch's names)."""

    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _device_type(device):
    text = "cuda" if device is None else str(device)
    kind = text.split(":")[0].lower()
    if kind not in ("cpu", "cuda"):
        from ..errors import DeviceError
        raise DeviceError(f"GradScaler: device {device!r} is not supported; use 'cpu' or 'cuda'")
    return kind


def non_finite_check_and_unscale_(grads, inv_scale):
    """Multiply each gradient array by ``inv_scale`` in place; return a 0-d float32 flag
    array (1.0 when any element of any gradient is inf or NaN), on the gradients' device.

    One partial sum per gradient, one test over the stacked partials; exact (a
    partial that overflowed from finite values is rechecked element by element).

    Examples
    --------
    >>> import numpy as np
    >>> grads = [np.array([2.0, 4.0], np.float32), np.array([np.inf], np.float32)]
    >>> float(non_finite_check_and_unscale_(grads, np.float32(0.5))), grads[0].tolist()
    (1.0, [1.0, 2.0])
    """
    xp = backend.xp_of(grads[0]) if grads else np
    if not grads:
        return xp.zeros((), np.float32)
    partials = []
    with np.errstate(all="ignore"):        # inf/NaN are what we look for, not worth a warning
        for grad in grads:
            grad *= grad.dtype.type(inv_scale)
            partials.append(grad.sum(dtype=np.float64 if grad.dtype == np.float64 else np.float32))
        finite = xp.isfinite(xp.stack(partials))
    suspects = xp.logical_not(finite)
    found = suspects.any().astype(np.float32)
    if backend.is_gpu_array(found):
        # NOTE: confirming here would read the flag on the host; on the GPU the flag
        # stays on the device, and step() confirms a "maybe" after its one read.
        return found
    return _confirm(grads, xp) if found else found


def _confirm(grads, xp):
    """The exact flag, element by element (only after the partial sums said "maybe")."""
    with np.errstate(all="ignore"):
        bad = any(bool(xp.logical_not(xp.isfinite(grad)).any()) for grad in grads)
    return xp.asarray(np.float32(1.0 if bad else 0.0))


class GradScaler:
    """Scale the loss, unscale the gradients, skip overflowed steps: ``torch.amp.GradScaler``.

    Parameters
    ----------
    device : str
        ``"cuda"`` (default, as PyTorch) or ``"cpu"``: where the scale lives.
    init_scale : float
        The first scale (2^16).
    growth_factor, backoff_factor : float
        Multiply the scale by these after ``growth_interval`` clean steps, or
        after a step with inf/NaN gradients (2.0 and 0.5).
    growth_interval : int
        Clean steps in a row before the scale grows (2000).
    enabled : bool
        ``False`` makes every method a pass-through (``scale`` returns its input,
        ``step`` just steps), so one loop serves both precisions.

    Examples
    --------
    >>> import gpugrad as gg
    >>> model = gg.nn.Linear(3, 1)
    >>> optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    >>> scaler = gg.amp.GradScaler("cpu", init_scale=1024.0)
    >>> loss = model(gg.ones(2, 3)).sum()
    >>> scaler.scale(loss).backward()
    >>> scaler.step(optimizer)
    >>> scaler.update()
    >>> scaler.get_scale()
    1024.0
    """

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        self._device = _device_type(device)
        if enabled and self._device == "cuda" and not backend.cuda_is_available():
            import warnings
            warnings.warn("GradScaler: device 'cuda' is not available, so loss scaling is disabled "
                          "(PyTorch's behaviour); use GradScaler('cpu') to scale on the CPU", stacklevel=2)
            enabled = False
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if int(growth_interval) != growth_interval or growth_interval <= 0:
            raise ValueError(f"GradScaler: growth_interval must be a positive integer, got {growth_interval}")
        self._enabled = bool(enabled)
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._scale = None             # 0-d float32 array, made on first use on the loss's device
        self._growth_tracker = 0
        self._init_growth_tracker = 0
        self._per_optimizer = {}       # id(optimizer) -> {"stage": ..., "found_inf": array or None}

    # ------------------------------------------------------------- queries
    def is_enabled(self):
        """Whether scaling is on."""
        return self._enabled

    def get_scale(self):
        """The current scale as a Python float (1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(backend.to_numpy(self._scale))

    def get_growth_factor(self):
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self):
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = int(new_interval)

    # ------------------------------------------------------------- the cycle
    def _lazy_scale(self, array):
        if self._scale is None:
            xp = backend.xp_of(array)
            self._scale = xp.full((), self._init_scale, dtype=np.float32)
        return self._scale

    def scale(self, outputs):
        """``outputs * scale`` (a tensor, or nested lists/tuples of them); unchanged when disabled."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            scale = self._lazy_scale(outputs.array)
            if backend.device_of(scale) != outputs.device:
                scale = backend.to_device(scale, outputs.device)
            from ..ops.creation import as_tensor
            return outputs * as_tensor(scale)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(item) for item in outputs)
        raise TypeError(f"GradScaler.scale: outputs must be a Tensor or a list/tuple of Tensors, "
                        f"got {type(outputs).__name__}")

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"stage": OptState.READY, "found_inf": None,
                                                               "optimizer": optimizer})

    def unscale_(self, optimizer):
        """Divide ``optimizer``'s gradients by the scale, in place, and note any inf/NaN.

        Call it before ``gg.nn.utils.clip_grad_norm_`` (so the clip sees true
        gradients); :meth:`step` then does not unscale again.
        """
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] == OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] == OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        if self._scale is None:
            raise RuntimeError("GradScaler.unscale_: no scale yet; call scaler.scale(loss).backward() first")
        # PyTorch: the reciprocal in float64, rounded to float32 once.
        inv_scale = np.float32(1.0 / np.float64(backend.to_numpy(self._scale)))
        grads = []
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                grad = parameter.grad
                if grad is None:
                    continue
                if grad.dtype == backend.float16:
                    raise DTypeError("GradScaler.unscale_: attempting to unscale float16 gradients; keep the "
                                     "parameters float32 (autocast casts them per op) so the optimizer updates "
                                     "float32 master weights")
                grads.append(grad)
        with no_grad():
            arrays = [grad.array for grad in grads]
            found = non_finite_check_and_unscale_(arrays, inv_scale)
            for grad in grads:
                grad._bump_version()
        state["found_inf"] = self._agree_across_ranks(found)
        state["stage"] = OptState.UNSCALED

    @staticmethod
    def _agree_across_ranks(found):
        from .. import distributed
        if distributed.is_initialized() and distributed.get_world_size() > 1:
            flag = Tensor._make(found.reshape(1))
            distributed.all_reduce(flag, op="max")
            return flag.array.reshape(())
        return found

    def _found_inf(self, state):
        found = state["found_inf"]
        if backend.is_gpu_array(found):
            return float(backend.to_numpy(found))     # the step's one host synchronisation
        return float(found)

    def step(self, optimizer, *args, **kwargs):
        """Unscale (if :meth:`unscale_` was not called) and step, unless a gradient is inf/NaN.

        Returns what ``optimizer.step`` returned, or None for a skipped step.
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        state = self._state(optimizer)
        if state["stage"] == OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == OptState.READY:
            self.unscale_(optimizer)
        found = self._found_inf(state)
        if found and backend.is_gpu_array(state["found_inf"]):
            # The device flag came from partial sums; confirm exactly before skipping.
            grads = [p.grad.array for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            found = float(backend.to_numpy(self._agree_across_ranks(_confirm(grads, backend.xp_of(grads[0])))))
        state["found_inf_value"] = found
        result = None if found else optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return result

    def update(self, new_scale=None):
        """Grow or back off the scale (PyTorch's ``_amp_update_scale_``), or set ``new_scale``."""
        if not self._enabled:
            return
        if new_scale is not None:
            value = float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale)
            xp = np if self._scale is None else backend.xp_of(self._scale)
            self._scale = xp.full((), value, dtype=np.float32)
        else:
            states = [s for s in self._per_optimizer.values() if s["stage"] != OptState.READY]
            if not states:
                raise RuntimeError("No inf checks were recorded prior to update(); call scaler.step(optimizer) "
                                   "(or scaler.unscale_(optimizer)) before scaler.update()")
            found = any((s["found_inf_value"] if "found_inf_value" in s else self._found_inf(s)) for s in states)
            scale = np.float32(backend.to_numpy(self._scale))
            if found:
                scale = np.float32(scale * np.float32(self._backoff_factor))
                self._growth_tracker = 0
            else:
                successful = self._growth_tracker + 1
                if successful == self._growth_interval:
                    grown = np.float32(scale * np.float32(self._growth_factor))
                    if np.isfinite(grown):
                        scale = grown
                    self._growth_tracker = 0
                else:
                    self._growth_tracker = successful
            xp = backend.xp_of(self._scale)
            self._scale = xp.full((), scale, dtype=np.float32)
        self._per_optimizer = {}

    # ------------------------------------------------------------- checkpoints
    def state_dict(self):
        """``{"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}``.

        Empty when the scaler is disabled, as PyTorch's.
        """
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": int(self._growth_tracker)}

    def load_state_dict(self, state_dict):
        """Restore :meth:`state_dict`'s values (checked first: bad input changes nothing)."""
        if not self._enabled:
            raise RuntimeError("Loading a GradScaler state dict into a disabled GradScaler instance is not "
                               "supported; construct it with enabled=True")
        if len(state_dict) == 0:
            raise ValueError("The source state dict is empty, possibly because it was saved from a disabled "
                             "instance of GradScaler.")
        keys = ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")
        missing = [key for key in keys if key not in state_dict]
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing {missing}; expected the keys of state_dict()")
        values = {key: (state_dict[key].item() if isinstance(state_dict[key], Tensor) else state_dict[key])
                  for key in keys}
        scale = float(values["scale"])
        xp = np if self._scale is None else backend.xp_of(self._scale)
        self._init_scale = scale
        self._scale = None if self._scale is None else xp.full((), scale, dtype=np.float32)
        self._growth_factor = float(values["growth_factor"])
        self._backoff_factor = float(values["backoff_factor"])
        self._growth_interval = int(values["growth_interval"])
        self._growth_tracker = int(values["_growth_tracker"])

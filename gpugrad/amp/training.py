"""What ``gg.train.fit(..., amp=...)`` runs each step: autocast, and the scaler for float16.

``amp="bf16"``: the forward pass and the loss under ``gg.autocast(dtype=gg.bfloat16)``
(bfloat16 has float32's range, so no loss scaling, as PyTorch's recipes do).
``amp="fp16"``: under ``gg.autocast(dtype=gg.float16)`` with a
:class:`~gpugrad.amp.GradScaler`, whose state fit checkpoints.  ``None``: plain
float32 steps.
"""

from __future__ import annotations

import contextlib

from .. import backend
from .autocast_mode import autocast
from .grad_scaler import GradScaler

__all__ = ["AMP_MODES", "MixedPrecision"]

AMP_MODES = {None: None, "bf16": backend.bfloat16, "bfloat16": backend.bfloat16,
             "fp16": backend.float16, "float16": backend.float16}


class MixedPrecision:
    """One training step's precision: ``with mp.autocast(): ...; mp.backward(loss); mp.step(optimizer)``.

    Parameters
    ----------
    amp : {"bf16", "fp16", None}
    device_type : {"cpu", "cuda"}
        Where the model runs (autocast and the scaler act there).

    Examples
    --------
    >>> import gpugrad as gg
    >>> model = gg.nn.Linear(3, 2)
    >>> optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    >>> mixed = MixedPrecision("fp16", "cpu")
    >>> with mixed.autocast():
    ...     loss = gg.nn.functional.cross_entropy(model(gg.ones(4, 3)), gg.tensor([0, 1, 0, 1]))
    >>> mixed.backward(loss)
    >>> mixed.step(optimizer)
    >>> mixed.state_dict()["scale"]
    65536.0
    """

    def __init__(self, amp, device_type="cpu"):
        if amp not in AMP_MODES:
            raise ValueError(f"fit: amp={amp!r} is not a precision; use 'bf16', 'fp16' or None")
        self.mode = amp
        self.dtype = AMP_MODES[amp]
        self.device_type = device_type
        self.scaler = GradScaler(device_type) if self.dtype == backend.float16 else None

    @classmethod
    def for_model(cls, amp, model, device=None):
        """The precision for ``model`` (on ``device``, else where its first parameter is)."""
        if device is None and hasattr(model, "parameters"):
            first = next(iter(model.parameters()), None)
            device = first.device if first is not None else None
        device_type = "cpu" if device is None else backend.as_device(device).type
        return cls(amp, device_type)

    def autocast(self):
        """The context of the forward pass and the loss."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss):
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer):
        """``optimizer.step()``; with a scaler, unscale, skip on inf/NaN, update the scale."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self):
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state):
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

"""``gg.amp``: automatic mixed precision, PyTorch's ``torch.amp``.

* :class:`autocast` runs each op in the precision its list gives (matrix
  products in float16/bfloat16, losses and reductions in float32);
* :class:`GradScaler` scales the loss so float16 gradients do not underflow,
  unscales before the optimizer step and skips steps whose gradients overflowed.

A PyTorch AMP loop reads the same::

    scaler = gg.amp.GradScaler("cuda")
    with gg.autocast("cuda", dtype=gg.float16):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
"""

from .autocast_mode import autocast, autocast_composite, get_autocast_dtype, is_autocast_enabled
from .grad_scaler import GradScaler, OptState

__all__ = ["GradScaler", "OptState", "autocast", "autocast_composite", "get_autocast_dtype", "is_autocast_enabled"]

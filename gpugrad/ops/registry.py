"""Where the op machinery used to live in one file, kept as one import for the modules that use it.

The machinery is split by job:

* :mod:`gpugrad.ops.declaration`: :func:`defop`, :class:`Op` and the table :data:`OPS`;
* :mod:`gpugrad.ops.dispatch`: :func:`apply_op` and the per-op Tensor methods;
* :mod:`gpugrad.ops.promotion`: PyTorch's dtype promotion;
* :mod:`gpugrad.ops.views`: the bookkeeping of views (base, chain, replay);
* :mod:`gpugrad.ops.forward_mode`: tangents through dispatch;
* :mod:`gpugrad.ops.structural`: the ops the engine applies itself;
* :mod:`gpugrad.autograd.op_node`: the node an op leaves on the tape and its backward.
"""

from __future__ import annotations

from ..autograd.op_node import STRUCTURAL, InputMeta, OpNode, _cast, _fit, pass_through, record, sum_to  # noqa: F401
from .declaration import OPS, Op, defop  # noqa: F401
from .dispatch import NO_PARAMS, apply_op, apply_promoted, tensor_method  # noqa: F401
from .forward_mode import strip_level  # noqa: F401
from .promotion import _SCALARS, promote_arguments, result_dtype, scalar_array  # noqa: F401
from .views import link_view, live_views, replay_view  # noqa: F401

_link_view = link_view

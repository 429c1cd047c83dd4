"""The op library: every differentiable primitive, registered in :data:`OPS`."""

from . import creation, elementwise, index, linalg, reduce, shape  # noqa: F401 - registers the ops
from . import structural  # noqa: F401 - hands cast, sum_to and broadcast_to to the autograd engine
from . import activation, conv, nn_ops  # noqa: F401 - registers the functional ops (gg.nn.functional)
from . import methods  # noqa: F401 - attaches Tensor methods and operators
from . import extra_shape, sorting  # noqa: F401 - tril, masked_fill, scatter, sort, topk, ... and their methods
from . import lstm, recurrent  # noqa: F401 - fused recurrent cells
from .registry import OPS, apply_op, defop  # noqa: F401

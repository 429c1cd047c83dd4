"""The structural ops the autograd engine applies itself, handed to it by name.

A node fits each gradient to its input (``sum_to`` undoes broadcasting,
``cast`` gives the input's dtype) and forward mode broadcasts tangents
(``broadcast_to``).  These are ordinary declared ops; registering them here
keeps :mod:`gpugrad.autograd` from importing the op library (see
:func:`gpugrad.autograd.op_node.structural`).
"""

from __future__ import annotations

from ..autograd.op_node import register_structural
from .elementwise import cast
from .reduce import sum_to
from .shape import broadcast_to

register_structural("cast", cast)
register_structural("sum_to", sum_to)
register_structural("broadcast_to", broadcast_to)

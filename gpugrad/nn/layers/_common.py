"""Small helpers shared by the layer families."""

from __future__ import annotations

import collections.abc
import itertools

from ... import backend
from ...ops.creation import empty
from ..module import Parameter


def new_parameter(*shape, device=None, dtype=None):
    """An uninitialised Parameter of ``shape`` (the layer's ``reset_parameters`` fills it)."""
    dtype = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    return Parameter(empty(tuple(shape), dtype=dtype, device=device))


def new_buffer(maker, *shape, device=None, dtype=None):
    dtype = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    return maker(tuple(shape), dtype=dtype, device=device)


def ntuple(n, name):
    def parse(value):
        if isinstance(value, collections.abc.Iterable) and not isinstance(value, str):
            value = tuple(value)
            if len(value) != n:
                raise ValueError(f"{name}: expected an int or a tuple of {n} ints, got {value}")
            return value
        return tuple(itertools.repeat(value, n))
    parse.__name__ = name
    return parse


single = ntuple(1, "_single")
pair = ntuple(2, "_pair")

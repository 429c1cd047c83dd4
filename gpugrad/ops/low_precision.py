"""bfloat16 where NumPy or CuPy has no bfloat16 path: compute in float32, round once.

NumPy's bfloat16 (from ``ml_dtypes``) has elementwise loops, but its matrix
product returns float32 and ``einsum`` refuses it; CuPy's cuBLAS path takes
float16/32/64 only.  PyTorch's bfloat16 GEMMs and convolutions accumulate in
float32 and round the result, so the ops below do exactly that: widen the
bfloat16 operands, run the float32 code, round the floating result back.
Other dtypes go straight through.
"""

from __future__ import annotations

import functools

from ..backend import bfloat16, float32


def widen_bfloat16(arrays):
    """``arrays`` with every bfloat16 array cast to float32 (others unchanged).

    Examples
    --------
    >>> import numpy as np
    >>> [a.dtype.name for a in widen_bfloat16((np.ones(2, bfloat16), np.ones(2, np.int64)))]
    ['float32', 'int64']
    """
    return tuple(widen_bfloat16(a) if isinstance(a, tuple)       # a kernel's saved (x, bias)
                 else a.astype(float32) if getattr(a, "dtype", None) == bfloat16 else a for a in arrays)


def round_to_bfloat16(result):
    """A float32 result (or a tuple holding some) rounded to bfloat16; other arrays as they are."""
    if isinstance(result, tuple):
        return tuple(round_to_bfloat16(item) for item in result)
    if getattr(result, "dtype", None) == float32:
        return result.astype(bfloat16)
    return result


def in_float32_for_bfloat16(forward):
    """Wrap a raw-array ``forward`` so that bfloat16 inputs run in float32 and round once.

    For forwards with no bfloat16 loop (matrix products, convolutions,
    einsum).  The test is one dtype comparison of the first array, so
    float32 and float64 calls pay almost nothing.

    Examples
    --------
    >>> import numpy as np
    >>> product = in_float32_for_bfloat16(lambda a, b: a @ b)
    >>> product(np.ones((2, 3), bfloat16), np.ones((3, 2), bfloat16)).dtype.name
    'bfloat16'
    """
    @functools.wraps(forward)
    def run(*arrays, **params):
        if getattr(arrays[0], "dtype", None) != bfloat16:
            return forward(*arrays, **params)
        return round_to_bfloat16(forward(*widen_bfloat16(arrays), **params))
    run.__wrapped__ = forward
    return run


__all__ = ["in_float32_for_bfloat16", "round_to_bfloat16", "widen_bfloat16"]

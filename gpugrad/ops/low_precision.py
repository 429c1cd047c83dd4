"""Low precision where the backend has no fast path: compute in float32, round once.

NumPy's bfloat16 (from ``ml_dtypes``) has elementwise loops, but its matrix
product returns float32 and ``einsum`` refuses it; CuPy's cuBLAS path takes
float16/32/64 only.  NumPy's float16 matrix product has no BLAS at all (a
naive loop, ~100x slower than float32, accumulating in float16).  PyTorch's
bfloat16 and float16 GEMMs and convolutions accumulate in float32 and round
the result, so the products below do exactly that: widen the operands, run
the float32 code, round the floating result back.  Other dtypes, and float16
on CuPy (cuBLAS, tensor cores), go straight through.
"""

from __future__ import annotations

import functools

import numpy as np

from ..backend import bfloat16, float16, float32


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


def product_in_float32(array):
    """Whether a product of ``array`` runs widened: bfloat16 anywhere, float16 on NumPy.

    Examples
    --------
    >>> import numpy as np
    >>> product_in_float32(np.ones(2, np.float16)), product_in_float32(np.ones(2, np.float32))
    (True, False)
    """
    dtype = array.dtype
    return dtype is bfloat16 or (dtype is float16 and array.__class__ is np.ndarray)


def widen_low_precision(arrays):
    """``arrays`` with float16 and bfloat16 arrays cast to float32 (a kernel's saved tuples too)."""
    return tuple(widen_low_precision(a) if isinstance(a, tuple)
                 else a.astype(float32) if getattr(a, "dtype", None) in (bfloat16, float16) else a for a in arrays)


def round_to(result, dtype):
    """A float32 result (or a tuple holding some) rounded to ``dtype``; other arrays as they are."""
    if isinstance(result, tuple):
        return tuple(round_to(item, dtype) for item in result)
    if getattr(result, "dtype", None) == float32:
        return result.astype(dtype)
    return result


def in_float32_for_low_precision(forward):
    """Wrap a raw-array ``forward`` so that low-precision inputs run in float32 and round once.

    For forwards with no fast bfloat16 (or NumPy float16) path: matrix
    products, convolutions, einsum, and formulas that would round at every
    step (sigmoid).  bfloat16 always, float16 on NumPy (see
    :func:`product_in_float32`).  The test is one dtype comparison of the first array, so
    float32 and float64 calls pay almost nothing.

    Examples
    --------
    >>> import numpy as np
    >>> product = in_float32_for_low_precision(lambda a, b: a @ b)
    >>> product(np.ones((2, 3), bfloat16), np.ones((3, 2), bfloat16)).dtype.name
    'bfloat16'
    """
    @functools.wraps(forward)
    def run(*arrays, **params):
        first = arrays[0]
        if not (hasattr(first, "dtype") and product_in_float32(first)):
            return forward(*arrays, **params)
        return round_to(forward(*widen_low_precision(arrays), **params), first.dtype)
    run.__wrapped__ = forward
    return run


__all__ = ["in_float32_for_low_precision", "product_in_float32", "round_to", "round_to_bfloat16", "widen_bfloat16",
           "widen_low_precision"]

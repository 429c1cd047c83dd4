"""Linear algebra: matmul (batched, broadcast, 1-D cases), einsum, outer, dot."""

from __future__ import annotations

import string

import numpy as np

from ..backend import bfloat16 as _bfloat16
from ..backend import float16 as _float16
from ..backend import xp_of as _xp
from ..errors import ShapeError
from .low_precision import in_float32_for_low_precision, round_to, widen_low_precision
from .registry import defop
from .samples import Sample
from .shape import squeeze, swapaxes, unsqueeze


def _check_matmul(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both operands need at least one dimension, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}; use * for scaling")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit: the last dimension of "
                         f"the first ({inner_a}) must equal the {'first' if b.ndim == 1 else 'second-to-last'} "
                         f"dimension of the second ({inner_b}); transpose or reshape one operand")


def _matmul_forward(a, b):
    dtype = a.dtype
    if dtype is _bfloat16 or (dtype is _float16 and a.__class__ is np.ndarray):
        # NOTE: NumPy's bfloat16 product comes out float32, CuPy's cuBLAS path has no
        # bfloat16, and NumPy's float16 product has no BLAS (a naive loop, 100x slower):
        # accumulate in float32 and round once, as PyTorch's low-precision GEMMs.
        return round_to(_matmul_forward(*widen_low_precision((a, b))), dtype)
    return a @ b          # NumPy and CuPy alike; no module lookup (every linear backward runs two)


def _matmul_vjp_a(g, out, a, b):
    if b.ndim == 1:                       # out = a @ v drops a's last dim
        return unsqueeze(g, axis=-1) * b
    if a.ndim == 1:                       # out = v @ B drops a's only dim
        return squeeze(matmul(b, unsqueeze(g, axis=-1)), axis=(-1,))
    return matmul(g, swapaxes(b, -1, -2))


def _matmul_vjp_b(g, out, a, b):
    if b.ndim == 1:
        if a.ndim == 1:
            return g * a
        return squeeze(matmul(swapaxes(a, -1, -2), unsqueeze(g, axis=-1)), axis=(-1,))
    if a.ndim == 1:
        return unsqueeze(a, axis=-1) * unsqueeze(g, axis=-2)
    return matmul(swapaxes(a, -1, -2), g)


matmul = defop(
    "matmul", _matmul_forward,
    vjp=(_matmul_vjp_a, _matmul_vjp_b),
    jvp=lambda t, out, a, b: matmul(t[0], b) + matmul(a, t[1]),
    promote=True, check=_check_matmul,
    samples=[Sample((3, 4), (4, 5)), Sample((2, 3, 4), (4, 2)), Sample((2, 1, 3, 4), (3, 4, 2)),
             Sample((4,), (4, 3)), Sample((3, 4), (4,)), Sample((4,), (4,)), Sample((2, 3, 4), (4,))],
    reference=np.matmul,
    doc="""Matrix product with broadcasting over leading dimensions (1-D operands as vectors).

    PyTorch: ``torch.matmul(input, other)``.

    Parameters
    ----------
    input, other : Tensor
    """)


# --------------------------------------------------------------------------
# einsum
# --------------------------------------------------------------------------
def parse_einsum(equation, shapes):
    """Split ``equation`` into input and output subscripts, expanding ``...``
    into explicit letters so every rule below deals with plain letters."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ShapeError(f"einsum: equation {equation!r} has {len(terms)} operands but {len(shapes)} tensors "
                         "were given")
    used = set(equation) - set(".,->")
    spare = [c for c in string.ascii_letters if c not in used]
    ellipsis_rank = max([len(shape) - (len(term) - 3)
                         for term, shape in zip(terms, shapes, strict=False) if "..." in term] or [0])
    ellipsis_letters = "".join(spare[:ellipsis_rank])
    expanded = []
    for term, shape in zip(terms, shapes, strict=False):
        if "..." in term:
            rank = len(shape) - (len(term) - 3)
            term = term.replace("...", ellipsis_letters[ellipsis_rank - rank:])
        if len(term) != len(shape):
            raise ShapeError(f"einsum: subscripts {term!r} do not match an operand of shape {tuple(shape)}")
        expanded.append(term)
    if arrow:
        output = output.replace("...", ellipsis_letters)
    else:
        counts = {}
        for term in expanded:
            for c in term:
                counts[c] = counts.get(c, 0) + 1
        output = ellipsis_letters + "".join(sorted(c for c, n in counts.items()
                                                   if n == 1 and c not in ellipsis_letters))
    sizes = {}
    for term, shape in zip(expanded, shapes, strict=False):
        for c, n in zip(term, shape, strict=False):
            if sizes.setdefault(c, n) != n and n != 1 and sizes[c] != 1:
                raise ShapeError(f"einsum: index {c!r} has sizes {sizes[c]} and {n} in {equation!r}")
            sizes[c] = max(sizes[c], n)
    return expanded, output, sizes


@in_float32_for_low_precision         # NumPy's einsum has no bfloat16 loop
def _einsum_forward(*operands, equation):
    terms, output, _ = parse_einsum(equation, [o.shape for o in operands])
    return _xp(operands[0]).einsum(",".join(terms) + "->" + output, *operands)


def _einsum_vjp(g, out, *operands, equation):
    terms, output, sizes = parse_einsum(equation, [o.shape for o in operands])
    grads = []
    for i, term in enumerate(terms):
        others = [t for j, t in enumerate(terms) if j != i]
        other_ops = [o for j, o in enumerate(operands) if j != i]
        # A repeated index (``'ii'``) reads only the diagonal: the gradient is worked
        # out over the distinct letters, then placed back on that diagonal.
        distinct = "".join(dict.fromkeys(term))
        present = set(output).union(*others) if others else set(output)
        # Letters summed away inside this operand alone reappear by broadcasting.
        missing = [c for c in distinct if c not in present]
        reduced_term = "".join(c for c in distinct if c in present)
        grad = einsum(g, *other_ops, equation=",".join([output] + others) + "->" + reduced_term)
        if missing:
            from .shape import broadcast_to, reshape
            kept = tuple(sizes[c] if c in present else 1 for c in distinct)
            grad = reshape(grad, shape=kept)   # reduced_term keeps the order: only 1s are inserted
            grad = broadcast_to(grad, shape=tuple(sizes[c] for c in distinct))
        if distinct != term:
            grad = _onto_diagonal(grad, distinct, term, sizes, used=set(equation) | set("".join(terms)) | set(output))
        grads.append(grad)
    return grads


def _onto_diagonal(grad, distinct, term, sizes, used):
    """``grad`` over the letters ``distinct`` spread onto ``term`` (which repeats some
    of them), zero off the diagonal: each repeat gets a fresh letter tied to its
    first occurrence by an identity matrix, ``'i,ia->ia'`` for ``'ii'``."""
    from ..tensor import Tensor
    is_tensor = isinstance(grad, Tensor)     # a Tensor under create_graph, else a raw array
    raw = grad.array if is_tensor else grad
    xp = _xp(raw)
    spare = iter(c for c in string.ascii_letters if c not in used)
    seen, letters, ties, identities = set(), [], [], []
    for c in term:
        if c in seen:
            fresh = next(spare)
            letters.append(fresh)
            ties.append(c + fresh)
            identity = xp.eye(sizes[c], dtype=raw.dtype)
            identities.append(Tensor._make(identity) if is_tensor else identity)
        else:
            seen.add(c)
            letters.append(c)
    return einsum(grad, *identities, equation=",".join([distinct] + ties) + "->" + "".join(letters))


einsum = defop(
    "einsum", _einsum_forward, vjp=_einsum_vjp,
    jvp=lambda t, out, *operands, equation: _einsum_jvp(t, operands, equation),
    samples=[Sample((3, 4), (4, 5), equation="ij,jk->ik"), Sample((2, 3, 4), (2, 4, 5), equation="bij,bjk->bik"),
             Sample((3, 4), equation="ij->"), Sample((3, 4), (3, 4), equation="ij,ij->i"),
             Sample((2, 3, 4), equation="...j->..."), Sample((3,), (4,), equation="i,j->ij"),
             Sample((3, 3), equation="ii->i"), Sample((3, 3), equation="ii"), Sample((3, 3, 2), equation="iij->j"),
             Sample((2, 3, 3), equation="bii->bi"), Sample((3, 3), (3, 4), equation="ii,ij->j")],
    reference=lambda *operands, equation: np.einsum(equation, *operands),
    doc="""Einstein summation over the operands as ``equation`` says.

    PyTorch: ``torch.einsum(equation, *operands)`` (here the equation is a keyword).

    Parameters
    ----------
    *operands : Tensor
    equation : str
        For example ``'ij,jk->ik'``.
    """)


def _einsum_jvp(tangents, operands, equation):
    total = None
    for i in range(len(operands)):
        replaced = list(operands)
        replaced[i] = tangents[i]
        if isinstance(tangents[i], float):
            continue
        term = einsum(*replaced, equation=equation)
        total = term if total is None else total + term
    return total


def outer(a, b):
    """Outer product of two vectors: ``out[i, j] = a[i] * b[j]``."""
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"outer: expects two 1-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return unsqueeze(a, axis=1) * unsqueeze(b, axis=0)


def dot(a, b):
    """Dot product of two 1-D tensors of equal length."""
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ShapeError(f"dot: expects two 1-D tensors of equal length, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return matmul(a, b)

"""Typed exceptions of gpugrad.

Every error a user can trigger derives from :class:`GpugradError` *and* from
the built-in exception a Python user would already catch for that problem, so
``except ValueError`` keeps working for shape mistakes and ``except TypeError``
for dtype mistakes.  Messages name the op, the offending shapes / devices /
dtypes, and, where one exists, the fix.
"""


class GpugradError(Exception):
    """Base class of every error raised on purpose by gpugrad."""


class ShapeError(GpugradError, ValueError):
    """Shapes that cannot work together (broadcasting, matmul, reshape, ...)."""


class DeviceError(GpugradError, RuntimeError):
    """Tensors on different devices, or a device that is not available."""


class DTypeError(GpugradError, TypeError):
    """A dtype the op cannot take (e.g. ``requires_grad`` on an integer tensor)."""


class AutogradError(GpugradError, RuntimeError):
    """Misuse of the tape: second backward through a freed graph, a saved tensor
    modified in place, backward on a non-scalar without a gradient, ..."""


class AnomalyError(AutogradError):
    """Raised under :func:`gpugrad.detect_anomaly` when an op produces NaN/Inf."""


class GradcheckError(GpugradError, AssertionError):
    """Analytic and numerical derivatives disagree (raised by gradcheck)."""


class CheckpointError(GpugradError, ValueError):
    """A file given to :func:`gpugrad.load` is damaged, foreign or unsafe."""


class OutOfMemoryError(GpugradError, MemoryError):
    """The device ran out of memory; the message gives requested and free bytes."""


def describe(values):
    """Short ``shape dtype device`` description of tensors/arrays for messages."""
    parts = []
    for v in values:
        shape = getattr(v, "shape", None)
        if shape is None:
            parts.append(type(v).__name__)
            continue
        dtype = getattr(v, "dtype", "?")
        device = getattr(v, "device", None)
        text = f"{tuple(shape)} {dtype}"
        if device is not None:
            text += f" on {device}"
        parts.append(text)
    return ", ".join(parts)

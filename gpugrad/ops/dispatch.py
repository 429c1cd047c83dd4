"""Applying an op: promotion, the forward on raw arrays, the node on the tape.

:func:`apply_op` is the one general route; :func:`tensor_method` builds, per
op, the ``Tensor`` method whose body is the lean form of the same steps for
the common case (one Tensor argument, the other a Python number), and sends
everything else to :func:`apply_promoted`.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import tape
from ..autograd.op_node import InputMeta, OpNode, fill
from ..autograd.tape import edge_of, lean_modes, next_sequence, state, threads_off_default
from ..errors import DeviceError, GpugradError, ShapeError, describe
from ..tensor import Tensor
from .promotion import _SCALARS, promote_arguments, promote_to_float, scalar_array
from .views import link_view

_new_object = object.__new__
_ndarray = np.ndarray


def apply_op(op, args, params):
    """Run ``op`` on Tensor arguments: forward, then record a node if needed."""
    if threads_off_default:
        # Some thread is off the default modes: is this one under autocast? (one check per op,
        # and no thread-local read at all while every thread is in the defaults)
        try:
            summary = lean_modes.recording
        except AttributeError:
            summary = True
        if summary is None and state.autocast is not None:
            args = state.autocast(op, args)
    if op.promote:
        if op.promote is not True:            # "float": true division, exp, sqrt, sigmoid, ...
            return apply_promoted(op, promote_to_float(op, args), params)
        # promote_arguments' first fast exit, inlined (two tensors of one dtype: most
        # binary ops), so the common case costs no call.
        if len(args) == 2:
            first, second = args
            if not (isinstance(first, Tensor) and isinstance(second, Tensor)
                    and first.array.dtype == second.array.dtype):
                args = promote_arguments(op, args)
        else:
            args = promote_arguments(op, args)
    return apply_promoted(op, args, params)


def apply_promoted(op, args, params):
    """:func:`apply_op` for arguments whose dtypes already agree."""
    # NOTE: this is the hot path of every op; keep it free of avoidable calls.
    requires_grad = False
    arrays = []
    for arg in args:
        if isinstance(arg, Tensor):
            arrays.append(arg.array)
            if arg.requires_grad:
                requires_grad = True
            if arg._tangents is not None and state.forward_levels:
                return apply_with_tangents(op, args, params)
        else:
            arrays.append(arg)
    if backend._cupy is not None:
        _check_one_device(op, args)
    if op.check is not None:
        op.check(*args, **params)
    try:
        out = op.forward(*arrays, **params)
    except Exception as error:  # noqa: BLE001 - translated, or re-raised unchanged
        failure = _forward_failure(op, args, params, error)
        if failure is error:
            raise
        raise failure from error
    if op.residual:
        out, residual = out
    if out.__class__ is not _ndarray and isinstance(out, np.generic):
        out = np.asarray(out)        # full reductions give NumPy scalars; tensors hold arrays
    result = _new_object(Tensor)     # Tensor._make, inlined: this runs for every op
    result.array = out
    if op.view:
        link_view(result, args[0], op, params)
    lean_recording = True             # the thread's mode summary, read as in Tensor methods (below)
    if threads_off_default:
        try:
            lean_recording = lean_modes.recording
        except AttributeError:
            pass
    if requires_grad and op.differentiable and (
            lean_recording if lean_recording is not None else state.grad_enabled):
        fill(_new_object(OpNode), op, args, arrays, params, result)
        if op.residual:
            result.grad_fn.residual = residual
    if lean_recording is None and state.anomaly:
        tape.check_anomaly_forward(op.name, out)
    return result


_NO_ARGUMENT = object()
NO_PARAMS = {}
"""The parameters of ops called without any: one dict shared by all their nodes, never mutated."""


def tensor_method(op, swap=None):
    """The ``Tensor`` method of ``op``.

    ``swap=None``: a method whose only argument is the tensor, with keyword
    parameters (``x.exp()``, ``x.sum(axis=1)``).  ``swap`` False or True: a
    binary operator, ``x * y`` or (swapped) ``y * x``.

    The method's body is the lean path of the common case, inlined (one frame
    per op, not two): ``self`` is the only Tensor among the arguments (for an
    operator the other is a Python number, held as a cached 0-d array of the
    tensor's dtype), so there is no loop over arguments, no promotion and no
    device check.  Ops with an input check or a view, and the forward and
    anomaly modes, go through :func:`apply_promoted`; other operands through
    :func:`apply_op`.
    """
    binary = swap is not None

    def method(self, other=_NO_ARGUMENT, **params):
        data = self.array
        if binary:
            kind = other.__class__
            if (kind is float or kind is int) and data.__class__ is _ndarray and data.dtype.kind == "f":
                constant = _SCALARS.get((other, data.dtype))
                if constant is None:
                    constant = scalar_array(other, data.dtype)
                if swap:
                    position, args, arrays = 1, (constant, self), [constant, data]
                else:
                    position, args, arrays = 0, (self, constant), [data, constant]
                params = NO_PARAMS
            else:
                if kind is not Tensor and not isinstance(other, (Tensor, int, float, bool)):
                    if isinstance(other, (np.ndarray, np.generic, list, tuple)) or backend.is_gpu_array(other):
                        other = Tensor(other, device=self.device)
                    else:
                        return NotImplemented
                return apply_op(op, (other, self) if swap else (self, other), NO_PARAMS)
        else:
            if other is not _NO_ARGUMENT:
                raise TypeError(f"Tensor.{method.__name__}() takes its parameters by keyword, got a positional "
                                f"{other!r}")
            position, args, arrays = 0, (self,), [data]
            if op.promote and data.dtype.kind != "f":
                return apply_op(op, args, params)     # an integer input computes in a float dtype first
        # The grad mode: no thread-local read while every thread is in the default
        # modes, one otherwise (see tape._State and tape.lean_modes).
        lean_recording = True
        if threads_off_default:
            try:
                lean_recording = lean_modes.recording
            except AttributeError:        # this thread never changed a mode: the defaults
                pass
            if lean_recording is None:
                # A special mode is on in this thread (forward mode, anomaly, autocast): the general route.
                return apply_op(op, args, params)
        if op.needs_general_path:
            return apply_promoted(op, args, params)
        try:
            out = op.forward(*arrays, **params) if params else op.forward(*arrays)
        except Exception as error:  # noqa: BLE001 - translated, or re-raised unchanged
            failure = _forward_failure(op, args, params, error)
            if failure is error:
                raise
            raise failure from error
        if out.__class__ is not _ndarray and isinstance(out, np.generic):
            out = np.asarray(out)
        result = _new_object(Tensor)
        result.array = out
        if lean_recording and self.requires_grad:
            # fill for one Tensor input, inlined.
            node = _new_object(OpNode)
            node.op = op
            node.params = params
            node.sequence = next_sequence()
            function = self.grad_fn
            node.edge = (function, self._output_nr) if function is not None else self._leaf_edge or edge_of(self)
            if binary:
                node.n_inputs = 2
                if position:
                    node.single_edge_position = position
            save = op.lean_save
            if save is True or position in save:
                node.saved = args
                node.saved_raw = arrays
            else:
                # self is not saved: its shape and dtype stand in for it.  Any other
                # argument is a constant, the same object in args and arrays, so one
                # list serves both modes.
                meta = arrays[position] = _new_object(InputMeta)     # _meta_of, inlined
                meta.shape = data.shape
                meta.dtype = data.dtype
                node.saved = node.saved_raw = arrays
            if op.save_output:
                node.out_data = out
                node.out_box = result._version_box = [0, 0]
            result.grad_fn = node
            result.requires_grad = True
        return result

    method.__name__ = method.__qualname__ = op.name
    method.__doc__ = op.doc
    return method


def _forward_failure(op, args, params, error):
    """The error to raise for an exception inside an op's forward."""
    if isinstance(error, GpugradError):
        return error
    if isinstance(error, (ValueError, IndexError, TypeError)):
        return _explain_failure(op, args, params, error)
    if backend.is_out_of_memory(error):
        return backend.out_of_memory_error(op.name, error)
    return error


def _check_one_device(op, args):
    devices = {arg.device for arg in args if isinstance(arg, Tensor)}
    for arg in args:
        if not isinstance(arg, Tensor) and hasattr(arg, "__array_priority__") and hasattr(arg, "shape"):
            devices.add(backend.device_of(arg))
    if len(devices) > 1:
        raise DeviceError(
            f"{op.name}: expected all tensors on one device, got {describe([a for a in args if hasattr(a, 'shape')])}; "
            "move them with .to(device), .cuda() or .cpu()")


def _explain_failure(op, args, params, error):
    """Turn a NumPy/CuPy error inside a forward into a gpugrad error naming the op."""
    shapes = describe([a for a in args if hasattr(a, "shape")])
    extra = f" with {params}" if params else ""
    text = str(error)
    if isinstance(error, ValueError) and ("broadcast" in text or "shape" in text or "dimension" in text
                                          or "size" in text or "axis" in text):
        return ShapeError(f"{op.name}: inputs {shapes}{extra} do not fit: {text}. Check the shapes "
                          "(broadcasting aligns trailing dimensions; reshape or unsqueeze to line them up)")
    if isinstance(error, IndexError):
        return IndexError(f"{op.name}: index out of range for inputs {shapes}{extra}: {text}")
    if isinstance(error, TypeError):
        from ..errors import DTypeError
        return DTypeError(f"{op.name}: cannot apply to inputs {shapes}{extra}: {text}")
    return ShapeError(f"{op.name}: inputs {shapes}{extra} are invalid: {text}")



from .forward_mode import apply_with_tangents  # noqa: E402  (last: forward_mode applies ops through this module)

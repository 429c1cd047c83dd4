"""``gg.save`` / ``gg.load``: checkpoints in the safetensors layout, never pickle.

File layout (https://github.com/huggingface/safetensors)::

    [8 bytes]  N, the header length, unsigned little-endian
    [N bytes]  JSON header: {"<name>": {"dtype": "F32", "shape": [2, 3],
                                        "data_offsets": [begin, end]}, ...,
                             "__metadata__": {"<key>": "<string>", ...}}
    [rest]     raw little-endian tensor bytes; offsets are relative to here

Tensors are stored under flat names made from their path in the saved
object (``"state.0.exp_avg"``), so any safetensors reader sees them.  The
rest of the object (dicts, lists, tuples, numbers, strings, ``None``,
booleans) is kept as a JSON string in ``__metadata__["gpugrad.structure"]``
where each tensor is a reference ``{"__tensor__": "<name>"}``.

Reading never executes anything from the file, and no size the file claims
is trusted: the header is validated in full (lengths, dtypes, shapes against
byte counts, overlaps, duplicate names) before any tensor is built, tensor
memory never exceeds the file's data section, and every violation raises
:class:`gpugrad.errors.CheckpointError`.  (Parsing the JSON header itself
builds Python objects a small constant factor larger than the header, which
is capped at 100 MB as in the safetensors library.)

Examples
--------
>>> import os, tempfile
>>> import gpugrad as gg
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
>>> gg.save({"w": gg.tensor([1.0, 2.0]), "epoch": 3, "name": "run-1"}, path)
>>> loaded = gg.load(path)
>>> loaded["w"].numpy().tolist(), loaded["epoch"], loaded["name"]
([1.0, 2.0], 3, 'run-1')
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import struct
import threading
from collections.abc import Mapping

import numpy as np

from . import backend
from .errors import CheckpointError, DTypeError

try:        # the C functions: signal.getsignal/signal wrap every number in an enum (slow)
    import _signal as _raw_signal
except ImportError:  # pragma: no cover - other Pythons
    _raw_signal = signal

__all__ = ["save", "load"]

# safetensors dtype names <-> NumPy dtypes (always little-endian on disk).
_DTYPE_TO_NAME = {
    np.dtype("float16"): "F16", np.dtype("float32"): "F32", np.dtype("float64"): "F64",
    np.dtype("int8"): "I8", np.dtype("int16"): "I16", np.dtype("int32"): "I32", np.dtype("int64"): "I64",
    np.dtype("uint8"): "U8", np.dtype("uint16"): "U16", np.dtype("uint32"): "U32", np.dtype("uint64"): "U64",
    np.dtype("bool"): "BOOL",
    # ml_dtypes' bfloat16: the same 2 bytes per element (little-endian) as PyTorch's and
    # the safetensors library's BF16, so files move between the three unchanged.
    backend.bfloat16: "BF16",
}
_NAME_TO_DTYPE = {name: dtype.newbyteorder("<") if dtype.kind != "V" else dtype
                  for dtype, name in _DTYPE_TO_NAME.items()}

_STRUCTURE_KEY = "gpugrad.structure"
_FORMAT_KEY = "format"
_FORMAT_VERSION_KEY = "gpugrad.format_version"
_FORMAT_VERSION = "1"
# Same bound as the safetensors library: a header is metadata, not data.
_MAX_HEADER_BYTES = 100_000_000
_MAX_NDIM = 64          # NumPy's own limit
# Markers used in the structure JSON; a user dict that looks like one is escaped.
_MARKERS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__", "__float__")


# ---------------------------------------------------------------------------
# Saving.
# ---------------------------------------------------------------------------
def save(obj, path):
    """Write ``obj`` to ``path`` atomically, in the safetensors layout.

    Parameters
    ----------
    obj : Tensor, array, dict, list, tuple, int, float, str, bool or None
        Typically a state dict (``model.state_dict()``, ``optimizer.state_dict()``)
        or a dict of them.  Tensors may sit anywhere inside dicts, lists and
        tuples; GPU tensors are copied to the host.  Dict keys may be strings,
        numbers, booleans or None.  Anything else (functions, custom objects)
        raises TypeError before the file is touched.
    path : str or os.PathLike
        Destination.  The data goes to a temporary file in the same directory,
        is flushed to disk, then renamed over ``path``: a crash at any moment
        leaves either the old file or the new one, never a mix.  A symbolic
        link is written through (its target is replaced, the link stays).  A
        new file gets the permissions ``open()`` would give it under the
        process umask; a replaced file keeps its own.  An interrupt
        (KeyboardInterrupt, SIGTERM, SIGHUP) at any moment leaves no
        temporary file and no open descriptor behind.

    Examples
    --------
    >>> import os, tempfile
    >>> import gpugrad as gg
    >>> path = os.path.join(tempfile.mkdtemp(), "opt.safetensors")
    >>> gg.save({"state": {0: {"step": 1}}, "lrs": (0.1, 0.01)}, path)
    >>> gg.load(path)
    {'state': {0: {'step': 1}}, 'lrs': (0.1, 0.01)}
    """
    path = os.fspath(path)
    # Encode everything in memory first: an unsupported object must leave the
    # old file untouched, so no byte is written before this succeeds.
    encoder = _Encoder()
    structure = encoder.encode(obj, ())
    header = {"__metadata__": {_FORMAT_KEY: "gpugrad", _FORMAT_VERSION_KEY: _FORMAT_VERSION,
                               _STRUCTURE_KEY: json.dumps(structure, allow_nan=False, separators=(",", ":"))}}
    offset = 0
    for name, array in encoder.arrays:
        header[name] = {"dtype": _DTYPE_TO_NAME[array.dtype.newbyteorder("=")], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header_bytes = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    # Pad with spaces to a multiple of 8 so the data is aligned (as safetensors does).
    header_bytes += b" " * (-len(header_bytes) % 8)

    # Through a symbolic link to its target, as torch.save and safetensors do:
    # renaming over the link itself would replace the link with a plain file.
    path = os.path.realpath(path)
    _write_atomically(path, header_bytes, encoder.arrays)


# While the temporary file exists, signal handlers are deferred, so no handler
# (the KeyboardInterrupt of Ctrl-C, a SIGTERM handler raising SystemExit, a
# timer's) can raise between creating the file (or its descriptor) and
# recording it.  Python runs handlers only in the main thread, between
# bytecodes; there, for the duration of the write, every Python-level handler
# (and SIGINT/SIGTERM/SIGHUP, even at their defaults) is swapped for one that
# only records the signal.  (Masking the signals would not do: the kernel then
# hands them to another thread, e.g. a BLAS worker, and Python still runs the
# handler in the main thread.)  A recorded signal that would interrupt (the
# default handlers) aborts the write at the next chunk: the temporary file is
# removed and its descriptor closed.  Then the original handlers come back and
# each recorded signal is handled as it would have been (a program's own
# handler, which may only set a "stop soon" flag, runs after a completed save).
_CATCH_AT_DEFAULT = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_VALID_SIGNALS = tuple(int(number) for number in signal.valid_signals())
_CHUNK_BYTES = 1 << 24      # how often a long write looks for a recorded interrupt


class _Interrupted(Exception):
    """A recorded signal would interrupt: abort the write, clean up, then handle it."""


class _DeferredSignals:
    """Swap the main thread's signal handlers for recorders; restore them and replay."""

    def __init__(self):
        self.originals = {}
        self.recorded = []

    def _record(self, signum, frame):
        self.recorded.append((signum, frame))

    def hold(self):
        if threading.current_thread() is not threading.main_thread():
            return      # handlers never run in this thread
        for number in _VALID_SIGNALS:
            try:
                handler = _raw_signal.getsignal(number)
            except (OSError, ValueError):
                continue
            if callable(handler) or (handler == signal.SIG_DFL and number in _CATCH_AT_DEFAULT):
                self.originals[number] = handler      # recorded before the swap: restored whatever happens
                try:
                    _raw_signal.signal(number, self._record)
                except (OSError, ValueError, RuntimeError):
                    del self.originals[number]

    def would_interrupt(self):
        return any(self.originals.get(number) in (signal.default_int_handler, signal.SIG_DFL)
                   for number, _ in self.recorded)

    def release(self):
        """Restore every handler, then handle the recorded signals (a handler may raise here)."""
        for number, handler in self.originals.items():
            _raw_signal.signal(number, handler)
        recorded, self.recorded = self.recorded, []
        for number, frame in recorded:
            handler = self.originals[number]
            if callable(handler):
                handler(number, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)     # the default action, now that nothing is left behind


def _new_file_mode():
    """The mode open() gives a new file: 0o666 less the process umask."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:     # Linux: read without changing it
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)     # elsewhere: the only portable way to read it is to set it
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomically(path, header_bytes, arrays):
    """Write to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    directory = os.path.dirname(path)
    deferred = _DeferredSignals()
    interrupted = False
    try:
        deferred.hold()
        try:
            mode = os.stat(path).st_mode & 0o7777     # replacing a file keeps its permissions
        except OSError:
            mode = _new_file_mode()
        temporary, descriptor = _create_temporary(directory, os.path.basename(path))
        try:
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(descriptor, mode)
                _write_all(descriptor, struct.pack("<Q", len(header_bytes)), deferred)
                _write_all(descriptor, header_bytes, deferred)
                for _, array in arrays:
                    # A flat byte view: no copy, and fine for 0-d and empty arrays.
                    _write_all(descriptor, array.reshape(-1).view(np.uint8), deferred)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            if deferred.would_interrupt():
                raise _Interrupted
            os.replace(temporary, path)
        except _Interrupted:
            interrupted = True
            _remove(temporary)
        except BaseException:
            # Never leave a half-written temporary behind (a full disk, a bad write, ...).
            _remove(temporary)
            raise
        else:
            _fsync_directory(directory)
    finally:
        deferred.release()      # a recorded signal's handler raises here, after the cleanup
    if interrupted:     # the handler did not raise (it was changed meanwhile): still say so
        raise KeyboardInterrupt(f"gg.save: interrupted; {path!r} was left as it was")


def _remove(temporary):
    try:
        os.unlink(temporary)
    except OSError:
        pass


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX); a no-op where unsupported."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _create_temporary(directory, base):
    """Create ``.<base>.<random>.tmp`` privately (0600); return its path and descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return temporary, os.open(temporary, flags, 0o600)
        except FileExistsError:
            continue
    raise FileExistsError(f"gg.save: could not create a temporary file beside {base!r} in {directory!r}")


def _write_all(descriptor, data, deferred):
    view = memoryview(data).cast("B")
    written = 0
    while written < len(view):
        if deferred.would_interrupt():
            raise _Interrupted
        written += os.write(descriptor, view[written:written + _CHUNK_BYTES])


def _tensor_class():
    from .tensor import Tensor  # lazy: the package imports this module
    return Tensor


class _Encoder:
    """Turns an object tree into JSON-able structure + a list of named host arrays."""

    def __init__(self):
        self.arrays = []            # [(name, little-endian contiguous numpy array)]
        self._names = set()
        self._name_of_object = {}   # id(tensor) -> name: a shared tensor is stored once
        self._keepalive = []
        self._active = set()        # ids of containers being encoded (cycle detection)
        self.tensor_class = _tensor_class()

    def encode(self, value, path):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            return {"__float__": repr(value)}      # 'nan', 'inf', '-inf' (not valid JSON numbers)
        if isinstance(value, np.generic) and not isinstance(value, np.void):
            return self.encode(value.item(), path)
        if isinstance(value, self.tensor_class):
            reference = {"__tensor__": self._store(value, value.array, path)}
            if getattr(value, "requires_grad", False):
                reference["requires_grad"] = True
            return reference
        if isinstance(value, np.ndarray) or backend.is_gpu_array(value):
            return {"__ndarray__": self._store(value, value, path)}
        if isinstance(value, (dict, list, tuple)):
            if id(value) in self._active:
                raise ValueError(f"gg.save: the object at {_show(path)} contains itself; "
                                 "checkpoints must be trees (break the cycle)")
            self._active.add(id(value))
            try:
                return self._encode_container(value, path)
            finally:
                self._active.discard(id(value))
        raise TypeError(f"gg.save: cannot store a {type(value).__name__} at {_show(path)}; checkpoints hold "
                        "tensors, arrays, dicts, lists, tuples, numbers, strings, bools and None "
                        "(never pickled objects); convert it, e.g. to a dict of tensors or a string")

    def _encode_container(self, value, path):
        if isinstance(value, list):
            return [self.encode(item, path + (i,)) for i, item in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(item, path + (i,)) for i, item in enumerate(value)]}
        # A user dict whose keys look like our markers is stored in the escaped
        # pair form, so loading can never mistake it for a tensor reference.
        plain = all(isinstance(key, str) and key not in _MARKERS for key in value)
        if plain:
            return {key: self.encode(item, path + (key,)) for key, item in value.items()}
        pairs = []
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, float, bool, tuple))):
                raise TypeError(f"gg.save: dict key {key!r} at {_show(path)} is a {type(key).__name__}; "
                                "keys must be strings, numbers, booleans, None or tuples of those")
            if isinstance(key, tuple) and any(isinstance(part, (dict, list)) for part in key):
                raise TypeError(f"gg.save: dict key {key!r} at {_show(path)} holds a container")
            pairs.append([self.encode(key, path), self.encode(item, path + (key,))])
        return {"__dict__": pairs}

    def _store(self, owner, array, path):
        known = self._name_of_object.get(id(owner))
        if known is not None:
            return known
        dtype = np.dtype(array.dtype)
        if dtype.newbyteorder("=") not in _DTYPE_TO_NAME:
            raise DTypeError(f"gg.save: the tensor at {_show(path)} has dtype {dtype}, which the safetensors "
                             f"layout cannot hold; convert it to one of "
                             f"{sorted(str(d) for d in _DTYPE_TO_NAME)} first")
        host = backend.to_numpy(array)
        if not host.flags.c_contiguous:
            # (not np.ascontiguousarray: it turns 0-d arrays into 1-d ones)
            host = host.copy(order="C")
        if host.dtype.byteorder == ">" or (host.dtype.byteorder == "=" and not _LITTLE_ENDIAN_HOST):
            host = host.astype(host.dtype.newbyteorder("<"))
        name = ".".join(str(part) for part in path) or "tensor"
        unique, counter = name, 1
        while unique in self._names or unique == "__metadata__":
            unique, counter = f"{name}#{counter}", counter + 1
        self._names.add(unique)
        self._name_of_object[id(owner)] = unique
        self._keepalive.append(owner)   # keep id(owner) unique while we encode
        self.arrays.append((unique, host))
        return unique


_LITTLE_ENDIAN_HOST = np.little_endian


def _show(path):
    return "the top level" if not path else "[" + "][".join(repr(part) for part in path) + "]"


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------
def load(path, device=None):
    """Read a file written by :func:`save` (or any safetensors file).

    Parameters
    ----------
    path : str or os.PathLike
    device : str or gg.Device, optional
        Where the loaded tensors go; default ``"cpu"`` (move them later with
        ``.to``, or load straight to ``"cuda"``).

    Returns
    -------
    object
        The saved object with its tensors rebuilt.  A safetensors file from
        another tool (no gpugrad structure) loads as a flat ``{name: Tensor}``
        dict.

    Raises
    ------
    gpugrad.errors.CheckpointError
        The file is truncated, not a safetensors file, or inconsistent
        (offsets past the end or overlapping, unknown dtype, shape not
        matching its byte count, duplicate names, malformed JSON).
    FileNotFoundError
        No file at ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> import gpugrad as gg
    >>> path = os.path.join(tempfile.mkdtemp(), "x.safetensors")
    >>> gg.save([gg.tensor([1, 2], dtype=gg.int64)], path)
    >>> gg.load(path, device="cpu")[0].dtype
    dtype('int64')
    """
    path = os.fspath(path)
    target = backend.as_device(device if device is not None else "cpu")
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        header, data_start = _read_header(handle, file_size, path)
        entries, metadata = _validate_header(header, file_size - data_start, path)
        # Everything is consistent.  Read each tensor into its own array, in
        # file order: the total allocated is the data section, bounded by the
        # file's size, and no tensor keeps a shared buffer alive.
        handle.seek(data_start)
        arrays = {}
        for name, (dtype, shape, begin, end) in sorted(entries.items(), key=lambda item: item[1][2]):
            arrays[name] = _read_array(handle, name, dtype, shape, end - begin, path)
    make = _tensor_maker(target)
    if metadata is None or _STRUCTURE_KEY not in metadata:
        return {name: make(arrays[name]) for name in entries}     # header order
    try:
        structure = json.loads(metadata[_STRUCTURE_KEY], parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"gg.load: the gpugrad structure in {path!r} is not valid JSON ({error})") from None
    decoder = _Decoder(arrays, make, path)
    try:
        return decoder.decode(structure)
    except RecursionError:
        raise CheckpointError(f"gg.load: the structure in {path!r} is nested too deeply") from None


def _read_array(handle, name, dtype, shape, size, path):
    native = np.dtype(dtype.newbyteorder("=").name)     # plain 'int64', not '<i8'
    try:
        array = np.empty(size // dtype.itemsize, dtype=native)
        raw = array.view(np.uint8)
        filled = 0
        while filled < size:
            count = handle.readinto(raw[filled:])
            if not count:
                raise CheckpointError(f"gg.load: {path!r} shrank while being read (tensor {name!r}); "
                                      "is another process writing it?")
            filled += count
        if not np.little_endian:
            array = array.view(dtype).astype(native)
        if native == np.bool_:
            array = array.view(np.uint8) != 0       # only 0/1 bytes are valid booleans
        return array.reshape(shape)
    except (ValueError, MemoryError, OverflowError) as error:
        raise CheckpointError(f"gg.load: tensor {name!r} in {path!r} cannot be built ({error})") from None


def _reject_constant(token):
    raise ValueError(f"non-standard JSON constant {token}")


def _read_header(handle, file_size, path):
    if file_size < 8:
        raise CheckpointError(f"gg.load: {path!r} is {file_size} bytes, too short for a safetensors file "
                              "(it needs an 8-byte header length); the file is truncated or not a checkpoint")
    (header_length,) = struct.unpack("<Q", handle.read(8))
    if header_length > file_size - 8:
        raise CheckpointError(f"gg.load: {path!r} claims a {header_length}-byte header but only {file_size - 8} "
                              "bytes follow; the file is truncated or not a safetensors checkpoint")
    if header_length > _MAX_HEADER_BYTES:
        raise CheckpointError(f"gg.load: {path!r} claims a {header_length}-byte header, above the "
                              f"{_MAX_HEADER_BYTES}-byte limit; not a checkpoint written by gg.save")
    if header_length < 2:
        raise CheckpointError(f"gg.load: {path!r} has a {header_length}-byte header; not a safetensors file")
    raw = handle.read(header_length)
    if len(raw) != header_length:
        raise CheckpointError(f"gg.load: {path!r} ended inside its header")
    if raw[:1] != b"{":
        raise CheckpointError(f"gg.load: {path!r} does not start with a safetensors JSON header "
                              f"(first header byte {raw[:1]!r}); is it a pickle/torch.save file or another format?")
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _DuplicateKey as error:
        raise CheckpointError(f"gg.load: {path!r} names {error.args[0]!r} twice in its header; "
                              "the file is corrupt or crafted") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"gg.load: the header of {path!r} is not valid JSON ({type(error).__name__}: "
                              f"{str(error)[:200]}); the file is damaged or not a safetensors checkpoint") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"gg.load: the header of {path!r} is a JSON {type(header).__name__}, not an object")
    return header, 8 + header_length


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _validate_header(header, data_size, path):
    """Check every entry against the data section; return {name: (dtype, shape, begin, end)}."""
    metadata = header.get("__metadata__")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise CheckpointError(f"gg.load: __metadata__ in {path!r} must map strings to strings")
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise CheckpointError(f"gg.load: header entry {name!r} in {path!r} needs 'dtype', 'shape' and "
                                  "'data_offsets'")
        dtype = _NAME_TO_DTYPE.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        if dtype is None:
            raise CheckpointError(f"gg.load: tensor {name!r} in {path!r} has dtype {info['dtype']!r}, which "
                                  f"gpugrad does not read (known: {sorted(_NAME_TO_DTYPE)})")
        shape, offsets = info["shape"], info["data_offsets"]
        if not isinstance(shape, list) or len(shape) > _MAX_NDIM or not all(_is_count(d) for d in shape):
            raise CheckpointError(f"gg.load: tensor {name!r} in {path!r} has shape {str(shape)[:100]}; a shape "
                                  f"is a list of at most {_MAX_NDIM} non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
            raise CheckpointError(f"gg.load: tensor {name!r} in {path!r} has data_offsets {str(offsets)[:100]}; "
                                  "expected [begin, end] with non-negative integers")
        begin, end = offsets
        if begin > end or end > data_size:
            raise CheckpointError(f"gg.load: tensor {name!r} in {path!r} has data_offsets [{begin}, {end}] but "
                                  f"the data section holds {data_size} bytes; the file is truncated or corrupt")
        expected = math.prod(shape) * dtype.itemsize     # Python ints: no overflow, no allocation
        if expected != end - begin:
            raise CheckpointError(f"gg.load: tensor {name!r} in {path!r} has shape {shape} of {info['dtype']} "
                                  f"({expected} bytes) but data_offsets span {end - begin} bytes")
        entries[name] = (dtype, tuple(shape), begin, end)
    # Tensors must tile the data section exactly, as the safetensors library demands:
    # no overlaps (aliasing tricks), no gaps, nothing trailing.
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: (item[1][2], item[1][3])):
        if begin != position:
            problem = "overlaps the previous tensor" if begin < position else "leaves a gap before it"
            raise CheckpointError(f"gg.load: tensor {name!r} in {path!r} starts at byte {begin} and {problem} "
                                  f"(which ends at byte {position}); the file is corrupt or crafted")
        position = end
    if position != data_size:
        raise CheckpointError(f"gg.load: {path!r} has {data_size - position} bytes after its last tensor; "
                              "the file is corrupt or was appended to")
    return entries, metadata


def _tensor_maker(device):
    import gpugrad

    def make(array, requires_grad=False):
        # as_tensor: the freshly read array is ours alone, so share it instead of copying.
        tensor = gpugrad.as_tensor(backend.to_device(array, device), device=device)
        if requires_grad:
            tensor.requires_grad_(True)
        return tensor
    return make


class _Decoder:
    """Rebuilds the saved tree; any node ``save`` could not have written is a CheckpointError."""

    def __init__(self, arrays, make, path):
        self.arrays, self.make, self.path = arrays, make, path
        self.built = {}     # a tensor referenced twice (shared weights) is rebuilt once, shared again

    def _fail(self, what):
        raise CheckpointError(f"gg.load: the structure in {self.path!r} holds {what}, which gg.save never "
                              "writes; the file is corrupt or crafted")

    def _array(self, name):
        if not isinstance(name, str):
            self._fail(f"a tensor reference of type {type(name).__name__} ({str(name)[:60]})")
        if name not in self.arrays:
            raise CheckpointError(f"gg.load: the structure in {self.path!r} refers to tensor {name!r}, "
                                  "which the file does not contain")
        return self.arrays[name]

    def decode(self, node):
        if isinstance(node, list):
            return [self.decode(item) for item in node]
        if not isinstance(node, dict):
            return node     # JSON scalars: None, bool, int, float, str
        markers = [key for key in node if key in _MARKERS]
        if not markers:
            return {key: self.decode(value) for key, value in node.items()}
        marker = markers[0]
        extra = sorted(set(node) - {marker, "requires_grad"} if marker == "__tensor__" else set(node) - {marker})
        if len(markers) > 1 or extra:
            self._fail(f"a {marker!r} node with the extra keys {extra or markers[1:]}")
        value = node[marker]
        if marker == "__tensor__":
            return self._tensor(value, node.get("requires_grad", False))
        if marker == "__ndarray__":
            key = ("ndarray", value)
            array = self._array(value)
            if key not in self.built:
                self.built[key] = array
            return self.built[key]
        if marker == "__tuple__":
            if not isinstance(value, list):
                self._fail(f"a tuple node holding a {type(value).__name__}")
            return tuple(self.decode(item) for item in value)
        if marker == "__float__":
            if not (isinstance(value, str) and value in ("nan", "inf", "-inf")):
                self._fail(f"the float node {str(value)[:60]!r}")
            return float(value)
        # "__dict__": a dict whose keys are not plain strings, as [key, value] pairs.
        if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
            self._fail("a malformed dict node (expected a list of [key, value] pairs)")
        result = {}
        for key, item in value:
            key = self.decode(key)
            if isinstance(key, (Mapping, list)) or not _hashable(key) or _holds_tensor(key):
                raise CheckpointError(f"gg.load: unusable dict key {str(key)[:60]} in {self.path!r}")
            result[key] = self.decode(item)
        return result

    def _tensor(self, name, requires_grad):
        if not isinstance(requires_grad, bool):
            self._fail(f"requires_grad={str(requires_grad)[:60]!r} (not a boolean)")
        array = self._array(name)
        if requires_grad and array.dtype.kind not in "fc":
            self._fail(f"requires_grad=True on tensor {name!r} of dtype {array.dtype} (only floating tensors "
                       "can require gradients)")
        key = ("tensor", name)
        if key not in self.built:
            self.built[key] = self.make(array, requires_grad)
        return self.built[key]


def _holds_tensor(key):
    if isinstance(key, tuple):
        return any(_holds_tensor(part) for part in key)
    return not (key is None or isinstance(key, (str, int, float, bool)))


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True

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
import struct
import tempfile
from collections.abc import Mapping

import numpy as np

from . import backend
from .errors import CheckpointError, DTypeError

__all__ = ["save", "load"]

# safetensors dtype names <-> NumPy dtypes (always little-endian on disk).
_DTYPE_TO_NAME = {
    np.dtype("float16"): "F16", np.dtype("float32"): "F32", np.dtype("float64"): "F64",
    np.dtype("int8"): "I8", np.dtype("int16"): "I16", np.dtype("int32"): "I32", np.dtype("int64"): "I64",
    np.dtype("uint8"): "U8", np.dtype("uint16"): "U16", np.dtype("uint32"): "U32", np.dtype("uint64"): "U64",
    np.dtype("bool"): "BOOL",
}
_NAME_TO_DTYPE = {name: dtype.newbyteorder("<") for dtype, name in _DTYPE_TO_NAME.items()}

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
        leaves either the old file or the new one, never a mix.

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

    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp makes the file private (0600); give the checkpoint the mode the
        # old file had, or the usual 0644 for a new one.
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            mode = 0o644
        with os.fdopen(descriptor, "wb") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            handle.write(struct.pack("<Q", len(header_bytes)))
            handle.write(header_bytes)
            for _, array in encoder.arrays:
                # A flat byte view: no copy, and fine for 0-d and empty arrays.
                handle.write(array.reshape(-1).view(np.uint8).data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        # Includes KeyboardInterrupt: never leave a half-written temporary behind.
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


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
    def __init__(self, arrays, make, path):
        self.arrays, self.make, self.path = arrays, make, path
        self.built = {}     # a tensor referenced twice (shared weights) is rebuilt once, shared again

    def _array(self, name):
        if not isinstance(name, str) or name not in self.arrays:
            raise CheckpointError(f"gg.load: the structure in {self.path!r} refers to tensor {name!r}, "
                                  "which the file does not contain")
        return self.arrays[name]

    def decode(self, node):
        if isinstance(node, list):
            return [self.decode(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1 or (len(node) == 2 and "requires_grad" in node and "__tensor__" in node):
            if "__tensor__" in node:
                name = node["__tensor__"]
                key = ("tensor", name)
                if key not in self.built:
                    self.built[key] = self.make(self._array(name), bool(node.get("requires_grad", False)))
                return self.built[key]
            if "__ndarray__" in node:
                key = ("ndarray", node["__ndarray__"])
                if key not in self.built:
                    self.built[key] = self._array(node["__ndarray__"])
                return self.built[key]
            if "__tuple__" in node:
                items = node["__tuple__"]
                if not isinstance(items, list):
                    raise CheckpointError(f"gg.load: malformed tuple in {self.path!r}")
                return tuple(self.decode(item) for item in items)
            if "__float__" in node:
                if node["__float__"] not in ("nan", "inf", "-inf"):
                    raise CheckpointError(f"gg.load: malformed float {node['__float__']!r} in {self.path!r}")
                return float(node["__float__"])
            if "__dict__" in node:
                pairs = node["__dict__"]
                if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                    raise CheckpointError(f"gg.load: malformed dict in {self.path!r}")
                result = {}
                for key, value in pairs:
                    key = self.decode(key)
                    if isinstance(key, Mapping) or isinstance(key, list) or not _hashable(key):
                        raise CheckpointError(f"gg.load: unusable dict key {key!r} in {self.path!r}")
                    result[key] = self.decode(value)
                return result
        return {key: self.decode(value) for key, value in node.items()}


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True

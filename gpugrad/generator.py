"""``gg.Generator``: a random stream of its own, for the ``generator=`` argument of random ops.

PyTorch code passes generators to keep one source of randomness apart from
the global one (``random_split(ds, [0.8, 0.2], generator=gg.Generator().manual_seed(42))``).
A CPU generator wraps a NumPy ``Generator`` (PCG64); a CUDA one a CuPy
generator on that device.  ``gg.default_generator`` is the global CPU stream
that ``gg.manual_seed`` reseeds.

Examples
--------
>>> import gpugrad as gg
>>> g = gg.Generator().manual_seed(7)
>>> a = gg.rand(3, generator=g)
>>> _ = g.manual_seed(7)
>>> bool((gg.rand(3, generator=g) == a).all())
True
"""

from __future__ import annotations

import json
import numbers

import numpy as np

from . import backend
from .errors import DeviceError

__all__ = ["Generator", "default_generator", "rng_for"]

DEFAULT_SEED = 67280421310721
"""The initial seed of a new generator, PyTorch's ``torch.Generator().initial_seed()``."""


def _check_seed(seed, where):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{where}: seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"{where}: seed {seed} is out of range [-2**63, 2**64)")
    return seed % 2 ** 64   # PyTorch folds negative seeds the same way


class Generator:
    """An independent random stream on one device.

    Parameters
    ----------
    device : str or gg.Device, default "cpu"

    Examples
    --------
    >>> import gpugrad as gg
    >>> g = gg.Generator()
    >>> g.initial_seed()
    67280421310721
    >>> state = g.get_state()
    >>> first = gg.randn(2, generator=g)
    >>> g.set_state(state)
    >>> bool((gg.randn(2, generator=g) == first).all())
    True
    """

    def __init__(self, device="cpu"):
        self.device = backend.as_device(device)
        self._initial_seed = DEFAULT_SEED
        self._rng = self._fresh(DEFAULT_SEED)

    def _fresh(self, seed):
        if self.device.type == "cpu":
            return np.random.default_rng(seed)
        cp = backend.require_cuda(self.device)
        with cp.cuda.Device(self.device.index):
            return cp.random.default_rng(seed)

    def manual_seed(self, seed):
        """Restart the stream from ``seed``; returns the generator (so calls chain)."""
        seed = _check_seed(seed, "Generator.manual_seed")
        self._rng = self._fresh(seed)
        self._initial_seed = seed
        return self

    def seed(self):
        """Reseed from fresh operating-system entropy; return the seed chosen."""
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        """The seed the stream was last started from."""
        return self._initial_seed

    def get_state(self):
        """The stream's state as a uint8 tensor (save it, give it to :meth:`set_state`).

        Raises
        ------
        gg.DeviceError
            For a CUDA generator: CuPy's generators cannot export their state;
            reproduce a CUDA stream with ``manual_seed`` instead.
        """
        if self.device.type != "cpu":
            raise DeviceError(f"Generator.get_state: the generator on {self.device} is a CuPy stream, which cannot "
                              "export its state; restart it with g.manual_seed(seed) to reproduce it, or use a "
                              "CPU generator")
        from .ops.creation import tensor
        encoded = json.dumps({"initial_seed": self._initial_seed, "state": self._rng.bit_generator.state})
        return tensor(np.frombuffer(encoded.encode(), dtype=np.uint8))

    def set_state(self, new_state):
        """Restore a state returned by :meth:`get_state`."""
        if self.device.type != "cpu":
            raise DeviceError(f"Generator.set_state: the generator on {self.device} is a CuPy stream, whose state "
                              "cannot be set; use g.manual_seed(seed)")
        array = backend.to_numpy(getattr(new_state, "array", new_state))
        try:
            decoded = json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode())
            rng = np.random.default_rng()
            rng.bit_generator.state = decoded["state"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise ValueError("Generator.set_state: not a state from Generator.get_state() "
                             f"({type(error).__name__}: {error})") from None
        self._rng = rng
        self._initial_seed = int(decoded["initial_seed"])

    def __repr__(self):
        return f"<gg.Generator on {self.device}, initial_seed={self._initial_seed}>"


class _DefaultGenerator(Generator):
    """The global CPU stream (the one ``gg.manual_seed`` reseeds), as a Generator."""

    def __init__(self):  # noqa: D107 - nothing of its own: it reads the global stream
        self.device = backend.CPU

    @property
    def _rng(self):
        return backend.generator(backend.CPU)

    def manual_seed(self, seed):
        """Reseed the global streams, exactly as ``gg.manual_seed(seed)``."""
        backend.manual_seed(_check_seed(seed, "default_generator.manual_seed"))
        return self

    def initial_seed(self):
        return backend.get_rng_state()["seed"]

    def get_state(self):
        from .ops.creation import tensor
        encoded = json.dumps(backend.get_rng_state())
        return tensor(np.frombuffer(encoded.encode(), dtype=np.uint8))

    def set_state(self, new_state):
        array = backend.to_numpy(getattr(new_state, "array", new_state))
        try:
            decoded = json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode())
            np.random.default_rng().bit_generator.state = decoded["cpu"]     # validate first
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise ValueError("default_generator.set_state: not a state from default_generator.get_state() "
                             f"({type(error).__name__}: {error})") from None
        backend.set_rng_state(decoded)

    def __repr__(self):
        return "<gg.default_generator (the global CPU stream)>"


default_generator = _DefaultGenerator()


def rng_for(device, generator, op):
    """The NumPy/CuPy generator an op on ``device`` draws from: ``generator``'s, or the global one."""
    if generator is None:
        return backend.generator(device)
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator must be a gg.Generator, got {type(generator).__name__}")
    if generator.device.type != device.type or (device.type == "cuda" and generator.device.index != device.index):
        raise DeviceError(f"{op}: the generator is on {generator.device} but the result is made on {device}; "
                          f"use gg.Generator(device='{device}')")
    return generator._rng

"""Example inputs that an op declares for the op battery (tests/test_ops_battery.py).

A sample lists the op's positional inputs and keyword parameters.  Array
inputs are given as *specs* that the battery turns into random float64 arrays
on the device under test, so every op is checked on every device:

``(2, 3)``           normal random values of that shape
``Positive((3,))``   values in [0.5, 2] (log, sqrt, pow bases)
``Unit((3,))``       values in (-0.9, 0.9) (functions defined on (-1, 1))
``Probability((3,))`` values in [0.05, 0.95] (probabilities away from 0 and 1)
``Away((3,))``       |values| in [0.3, 2] (abs, sign, division, kinks at 0)
``Distinct((3,))``   a shuffled, well-separated range (max, sort, pooling: no ties)
``Ints((3,), 0, 4)`` an int64 array (indices; never differentiated)
``Mask((3,))``       a bool array
anything else        passed as is (Python scalars, axes, shapes)
"""

import numpy as np


class Sample:
    """One call of an op: ``Sample(*inputs, **params)``."""

    def __init__(self, *args, **params):
        self.args = args
        self.params = params

    def __repr__(self):
        inner = ", ".join([repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.params.items()])
        return f"Sample({inner})"


class Spec:
    def __init__(self, shape):
        self.shape = tuple(shape)

    def __repr__(self):
        return f"{type(self).__name__}({self.shape})"

    def make(self, rng):  # pragma: no cover - overridden
        raise NotImplementedError


class Positive(Spec):
    def make(self, rng):
        return rng.uniform(0.5, 2.0, self.shape)


class Unit(Spec):
    def make(self, rng):
        return rng.uniform(-0.9, 0.9, self.shape)


class Probability(Spec):
    def make(self, rng):
        return rng.uniform(0.05, 0.95, self.shape)


class Away(Spec):
    def make(self, rng):
        return rng.uniform(0.3, 2.0, self.shape) * rng.choice([-1.0, 1.0], self.shape)


class Distinct(Spec):
    def make(self, rng):
        size = int(np.prod(self.shape))
        # A random offset per array keeps two Distinct inputs from tying elementwise.
        offset = rng.uniform(0.05, 0.3)
        return (rng.permutation(size) * 0.37 - size * 0.15 + offset).reshape(self.shape)


class Ints(Spec):
    def __init__(self, shape, low, high):
        super().__init__(shape)
        self.low, self.high = low, high

    def make(self, rng):
        return rng.integers(self.low, self.high, self.shape).astype(np.int64)


class Mask(Spec):
    def make(self, rng):
        return rng.random(self.shape) > 0.5


def make_array(spec, rng):
    """A NumPy array for a spec, or the spec itself if it is a plain value."""
    if isinstance(spec, tuple) and all(isinstance(d, int) for d in spec):
        return rng.standard_normal(spec)
    if isinstance(spec, Spec):
        return spec.make(rng)
    return spec


def is_array_spec(spec):
    return (isinstance(spec, tuple) and all(isinstance(d, int) for d in spec)) or isinstance(spec, Spec)


def is_differentiable_spec(spec):
    return is_array_spec(spec) and not isinstance(spec, (Ints, Mask))

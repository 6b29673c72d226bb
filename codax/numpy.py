"""codax.numpy: NumPy, plus JAX's functional indexed updates.

JAX writes `x.at[idx].set(v)`; NumPy arrays have no `.at` to hang that on, so
codax spells it `at(x)[idx].set(v)`:

    import codax.numpy as cnp
    y = cnp.at(x)[1:3].add(2.0)        # x is left as it was

`.set(v)`, `.add(v)`, `.multiply(v)`, `.min(v)`, `.max(v)` return a new array
of x's dtype (v is cast to it, as JAX does); `.get()` returns `x[idx]`.
Repeated integer indices accumulate for add, multiply, min and max (like
`np.add.at`); for set the last of repeated writes, in the C order of x[idx],
wins (on NumPy and CuPy alike, as for `y[idx] = v` in transformed code; JAX
leaves it unspecified). The same expression inside a function transformed by
codax (grad, jvp, ...) is compiled to the primitives `rt.at_set`, ...,
which have derivative rules; there it must be written as one expression,
`at(x)[idx].<method>(...)`. Keyword arguments of JAX's methods (`mode=`,
`indices_are_sorted=`, ...) are not supported.

Every other name is NumPy's own (`codax.numpy.sin is numpy.sin`), so the
module can stand in for `numpy` in code that also uses `at`.
"""
import numpy as _numpy

import runtime as _rt


def at(x):
    """The functional update helper for x: `at(x)[idx].set(v)` etc."""
    return _At(x)


at.__codax_at__ = True          # how the compiler recognizes it (transformer/normalize.py)


class _At:
    __slots__ = ('_x',)

    def __init__(self, x):
        self._x = x

    def __getitem__(self, idx):
        return _AtIndex(self._x, idx)

    def __repr__(self):
        return f'at({self._x!r})'


class _AtIndex:
    __slots__ = ('_x', '_idx')

    def __init__(self, x, idx):
        self._x, self._idx = x, idx

    def set(self, v):
        return _rt.at_set(self._x, self._idx, v)

    def add(self, v):
        return _rt.at_add(self._x, self._idx, v)

    def multiply(self, v):
        return _rt.at_multiply(self._x, self._idx, v)

    def min(self, v):
        return _rt.at_min(self._x, self._idx, v)

    def max(self, v):
        return _rt.at_max(self._x, self._idx, v)

    def get(self):
        part = _rt.array_module(self._x).asarray(self._x)[self._idx]
        return part.copy() if _rt.is_array(part) else part      # a view could be written through


def __getattr__(name):
    return getattr(_numpy, name)

"""codax.numpy: NumPy, plus JAX's functional indexed updates.

JAX writes `x.at[idx].set(v)`; NumPy arrays have no `.at` to hang that on, so
codax spells it `at(x)[idx].set(v)`:

    import codax.numpy as cnp
    y = cnp.at(x)[1:3].add(2.0)        # x is left as it was

`.set(v)`, `.add(v)`, `.multiply(v)`, `.divide(v)`, `.power(v)`, `.min(v)`,
`.max(v)` and `.apply(func)` return a new array of x's dtype (v is cast to
it, as JAX does); `.get()` returns `x[idx]`. Repeated integer indices
accumulate for all but set (like `np.add.at`; `.apply` applies func once
per index, as `np.sin.at`); for set the last of repeated writes, in the C
order of x[idx], wins (on NumPy and CuPy alike, as for `y[idx] = v` in
transformed code; JAX leaves it unspecified). JAX's keywords are taken:
`mode=` ('clip', 'drop', 'fill', 'promise_in_bounds') for indices out of
bounds, `fill_value=` for `.get(mode='fill')`, and the hints
`indices_are_sorted=` and `unique_indices=`. Without `mode=` an index out
of bounds is NumPy's IndexError (JAX would clamp a get and drop an update).
The same expression inside a function transformed by codax (grad, jvp, ...)
is compiled to the primitives `rt.at_set`, ..., which have derivative
rules (`.apply`: a Python definition codax differentiates); there it must be
written as one expression, `at(x)[idx].<method>(...)`.

Every other name is NumPy's own (`codax.numpy.sin is numpy.sin`), so the
module can stand in for `numpy` in code that also uses `at`.
"""
import numpy as _numpy

import runtime as _rt

from .tree_util import _Definitions


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

    def set(self, v, *, indices_are_sorted=False, unique_indices=False, mode=None):
        return _rt.at_set(self._x, self._idx, v, mode)

    def add(self, v, *, indices_are_sorted=False, unique_indices=False, mode=None):
        return _rt.at_add(self._x, self._idx, v, mode)

    def multiply(self, v, *, indices_are_sorted=False, unique_indices=False, mode=None):
        return _rt.at_multiply(self._x, self._idx, v, mode)

    def divide(self, v, *, indices_are_sorted=False, unique_indices=False, mode=None):
        return _rt.at_divide(self._x, self._idx, v, mode)

    def power(self, v, *, indices_are_sorted=False, unique_indices=False, mode=None):
        return _rt.at_power(self._x, self._idx, v, mode)

    def min(self, v, *, indices_are_sorted=False, unique_indices=False, mode=None):
        return _rt.at_min(self._x, self._idx, v, mode)

    def max(self, v, *, indices_are_sorted=False, unique_indices=False, mode=None):
        return _rt.at_max(self._x, self._idx, v, mode)

    def apply(self, func, *, indices_are_sorted=False, unique_indices=False, mode=None):
        if not callable(func):
            raise TypeError(f'at(x)[idx].apply() takes a function, got {func!r}')
        return _rt.at_apply(self._x, self._idx, func, mode)

    def get(self, *, indices_are_sorted=False, unique_indices=False, mode=None,
            fill_value=None):
        return _rt.at_get(self._x, self._idx, mode, fill_value)


# rt.at_apply runs any function: transformations differentiate it through this
# definition, which applies the function round by round with at_set.
def _apply_definition(_):
    text = ('def at_apply(x, idx, func, mode, indices_are_sorted, unique_indices):\n'
            '    x = numpy.asarray(x)\n'
            '    flat = numpy.reshape(x, (-1,))\n'
            '    for pos in rt.at_levels(x, idx, mode):\n'
            '        flat = rt.at_set(flat, pos, func(flat[pos]))\n'
            '    return numpy.reshape(flat, numpy.shape(x))\n')
    return 'at_apply', text, '<codax definition of at(x)[idx].apply(func)>'


_rt.at_apply.__codax_transformed__ = _Definitions(_rt.at_apply, _apply_definition)


def __getattr__(name):
    return getattr(_numpy, name)

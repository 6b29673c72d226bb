"""Searching, selecting and counting: integer results, no derivative.

np.partition and np.unique are defined in NumPy (runtime/definitions.py) as
gathers of their input at the positions these records find, so that their
values carry derivatives through np.take."""
import numpy

from ..backend import array_module
from ..table import nondifferentiable, primitive

# The positions np.partition puts each element at (the same arrangement as
# np.partition's own, which runs the same selection on the values).
nondifferentiable('argpartition', 'a, kth, axis=-1, kind="introselect", order=None',
                  methods=('argpartition',), batch='loop')
nondifferentiable('searchsorted', 'a, v, side="left", sorter=None', methods=('searchsorted',),
                  batch='loop')
nondifferentiable('digitize', 'x, bins, right=False', batch='loop')
nondifferentiable('matrix_rank', 'A, tol=None, hermitian=False, *, rtol=None',
                  targets=(numpy.linalg.matrix_rank,), impl='xp.linalg.matrix_rank', batch='loop')


def unique_parts(ar, axis=None, equal_nan=True, size=None):
    """(first index, inverse, counts, how many) of np.unique(ar, axis=axis):
    with `size`, the first three cut or padded to that many as JAX pads them
    (the index with the first one, the counts with 0)."""
    xp = array_module(ar)
    _, index, inverse, counts = xp.unique(ar, True, True, True, axis=axis, equal_nan=equal_nan)
    number = index.shape[0]
    if size is not None:
        first = index[0] if number else 0
        index = xp.concatenate([index[:size], xp.full(max(size - number, 0), first, index.dtype)])
        counts = xp.concatenate([counts[:size], xp.zeros(max(size - number, 0), counts.dtype)])
    return index, inverse, counts, number


def unique_parts_per_example(ar, axis=None, equal_nan=True, size=None):
    """unique_parts as vmap runs it, per example: only with size=, so that
    every example's result has one length."""
    if size is None:
        raise ValueError('codax vmap: np.unique of a batched array needs size= (and, if you '
                         'like, fill_value=), as in JAX: the number of unique values differs '
                         'between examples, and one batched array holds results of one length')
    return unique_parts(ar, axis, equal_nan, size)


# batched by rt.unique_parts_per_example, which refuses it without size=
nondifferentiable('rt_unique_parts', 'ar, axis=None, equal_nan=True, size=None',
                  targets=(unique_parts,), impl='rt.unique_parts', batch='value_sized')


# Element-wise functions of two results. modf: (x - trunc(x), trunc(x)), the
# fraction moving with x; divmod: (floor(x1 / x2), x1 - floor(x1 / x2) x2),
# the remainder as np.remainder's rule; frexp: (x 2^-e, e), e an integer.
_FIRST, _SECOND = ('rt.materialize(rt.item(g, {0}), ans[{0}])'.format(k) for k in (0, 1))
primitive('modf', 'x, /, out=None, where=True', {'x': _FIRST}, nondiff=('out', 'where'),
          jvp={'x': '(t, 0.0)'}, batch='loop')
primitive('divmod', 'x1, x2, /, out=None, where=True',
          {'x1': f'rt.unbroadcast({_SECOND}, x1, ans[1])',
           'x2': f'rt.unbroadcast(-{_SECOND} * ans[0], x2, ans[1])'},
          nondiff=('out', 'where'), jvp={'x1': '(0.0, t)', 'x2': '(0.0, -t * ans[0])'},
          batch='loop')
primitive('frexp', 'x, /, out=None, where=True',
          {'x': f'rt.cast_like({_FIRST} * xp.exp2(-ans[1]), x)'},
          nondiff=('out', 'where'),
          jvp={'x': '(rt.cast_like(t * xp.exp2(-ans[1]), ans[0]), 0.0)'},
          batch='loop')

"""Array creation: constant outputs, except `full`'s fill value."""
import numpy

from ..table import batching, linear, nondifferentiable, primitive

for _name in ('zeros', 'ones', 'empty'):
    nondifferentiable(_name, 'shape, dtype=None, order="C"')
for _name in ('zeros_like', 'ones_like', 'empty_like'):
    nondifferentiable(_name, 'a, dtype=None, order="K", subok=True, shape=None')
nondifferentiable('eye', 'N, M=None, k=0, dtype=None, order="C"')
nondifferentiable('identity', 'n, dtype=None')
nondifferentiable('arange', 'start, stop=None, step=None, dtype=None')
nondifferentiable('shape', 'a')
nondifferentiable('ndim', 'a')
nondifferentiable('size', 'a, axis=None')
# (dtype tests: also what absolute's second-order rules branch on)
nondifferentiable('iscomplexobj', 'x', batch='unbatched_result')
# Dtype queries: they read only dtypes (and a Python scalar's kind), never
# values, so they are constants to every derivative, and the same for every
# example of a batch. NumPy's own Python source (np.cov, np.heaviside, a
# user's helper) asks them of arrays that carry derivatives.
for _name, _signature in (('result_type', '*arrays_and_dtypes'), ('promote_types', 'type1, type2'),
                          ('can_cast', 'from_, to, casting="safe"'), ('common_type', '*arrays'),
                          ('finfo', 'dtype'), ('iinfo', 'int_type'),
                          ('dtype', 'dtype, align=False, copy=False'),
                          ('issubdtype', 'arg1, arg2'), ('isdtype', 'dtype, kind'),
                          ('isrealobj', 'x'), ('mintypecode', 'typechars, typeset="GDFgdf", default="d"')):
    if hasattr(numpy, _name):
        nondifferentiable(_name, _signature, batch='unbatched_result')
# min_scalar_type reads a scalar's value (the smallest type that holds it):
# vmap refuses a batched one, whose examples may differ.
nondifferentiable('min_scalar_type', 'a', batch='unbatched_only')
linear('full', 'shape, fill_value, dtype=None, order="C"',
       {'fill_value': 'rt.sum_to(rt.materialize(g, ans), rt.shape(fill_value))'},
       family='creation')
linear('full_like', 'a, fill_value, dtype=None, order="K", subok=True, shape=None',
       {'fill_value': 'rt.sum_to(rt.materialize(g, ans), rt.shape(fill_value))'},
       family='creation')
# Linear in start and stop jointly (sample i is start + (stop - start) * i / div),
# so its tangent is linspace of the tangents. Not of the 'creation' family: with
# retstep its result is a tuple, which names of the numeric families
# (transformer/analysis.py) never hold. Batched per example: its rank (array
# bounds add theirs) and kind (retstep) are not the 'creation' rule's rank 1.
_LINSPACE = 'rt.linspace_vjp(g, start, stop, ans, num, endpoint, retstep, axis, {})'
linear('linspace', 'start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0',
       {'start': _LINSPACE.format(0), 'stop': _LINSPACE.format(1)}, family='other',
       batch='loop')

batching(creation=('zeros', 'ones', 'empty', 'eye', 'identity', 'arange'),
         same=('zeros_like', 'ones_like', 'empty_like'), full=('full', 'full_like'),
         shape_of=('shape', 'ndim', 'size'))

# vander(x, N): columns x ** p, p = N - 1 .. 0 (0 .. N - 1 when increasing).
# Column p's slope p x ** (p - 1) is p times its neighbour column, so the rules
# are ans shifted by one column and scaled: written with primitives (vander
# itself among them), every order follows, with no x ** -1 at x = 0.
_COLUMNS = '(rt.shape(x)[0] if N is None else N)'
_VANDER_SLOPE = (f'(xp.concatenate([xp.zeros_like(ans[:, :1]), ans[:, :-1] * '
                 f'xp.arange(1, {_COLUMNS})], axis=1) if increasing else '
                 f'xp.concatenate([ans[:, 1:] * xp.arange({_COLUMNS} - 1, 0, -1), '
                 'xp.zeros_like(ans[:, :1])], axis=1))')
primitive('vander', 'x, N=None, increasing=False',
          {'x': f'rt.cast_like(xp.sum(rt.materialize(g, ans) * {_VANDER_SLOPE}, axis=1), x)'},
          jvp={'x': f'rt.cast_like(xp.expand_dims(t, -1) * {_VANDER_SLOPE}, ans)'},
          nondiff=('N', 'increasing'), batch='loop')

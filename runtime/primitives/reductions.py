"""Reductions with `axis`/`keepdims`, and scans."""
import numpy

from .. import adjoint
from ..table import nondifferentiable, primitive, reduction

_EXTREMUM = 'rt.extremum_vjp(g, a, ans, axis, keepdims)'
_SIG_EXT = 'a, axis=None, out=None, keepdims=False, initial=None, where=True'

reduction('sum', 'rt.sum_vjp(g, a, axis, keepdims)', methods=('sum',))
reduction('mean', 'rt.sum_vjp(g, a, axis, keepdims) / rt.count(a, axis)', methods=('mean',))
reduction('prod', 'rt.sum_vjp(g, a, axis, keepdims) * rt.keep_dims(ans, a, axis, keepdims) / a',
          methods=('prod',))
reduction('max', _EXTREMUM, methods=('max',), signature=_SIG_EXT)
reduction('min', _EXTREMUM, methods=('min',), signature=_SIG_EXT)
reduction('amax', _EXTREMUM, signature=_SIG_EXT)
reduction('amin', _EXTREMUM, signature=_SIG_EXT)
_CENTRED = 'a - xp.mean(a, axis=axis, keepdims=True)'
_DOF = '(rt.count(a, axis) - ddof)'
reduction('var', f'rt.sum_vjp(g, a, axis, keepdims) * 2 * ({_CENTRED}) / {_DOF}',
          methods=('var',),
          signature='a, axis=None, dtype=None, out=None, ddof=0, keepdims=False')
reduction('std', f'rt.sum_vjp(g / ans, a, axis, keepdims) * ({_CENTRED}) / {_DOF}',
          methods=('std',),
          signature='a, axis=None, dtype=None, out=None, ddof=0, keepdims=False')
reduction('cumsum', 'rt.cumsum_vjp(g, a, ans, axis)', methods=('cumsum',),
          signature='a, axis=None, dtype=None, out=None')
primitive('norm', 'x, ord=None, axis=None, keepdims=False',
          # The 2-norm's rule is written with primitives, so it has second
          # derivatives; other orders go through rt.norm_vjp (first order only).
          {'x': 'rt.sum_vjp(g, x, axis, keepdims) * x / rt.keep_dims(ans, x, axis, keepdims) '
                'if ord is None or ord == "fro" else rt.norm_vjp(g, x, ans, ord, axis, keepdims)'},
          nondiff=('ord', 'axis', 'keepdims'), targets=(numpy.linalg.norm,),
          impl='xp.linalg.norm', family='reduction')

for _name in ('argmax', 'argmin'):
    nondifferentiable(_name, 'a, axis=None, out=None, keepdims=False', methods=(_name,))
for _name in ('all', 'any'):
    nondifferentiable(_name, 'a, axis=None, out=None, keepdims=False, where=True',
                      methods=(_name,))
nondifferentiable('count_nonzero', 'a, axis=None, keepdims=False')
nondifferentiable('count', 'a, axis=None', targets=(adjoint.count,), impl='rt.count')
nondifferentiable('argsort', 'a, axis=-1, kind=None, order=None, stable=None',
                  methods=('argsort',))

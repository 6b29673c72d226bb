"""Reductions with `axis`/`keepdims`, and scans."""
import numpy

from .. import adjoint
from ..table import batching, nondifferentiable, primitive, reduction

_EXTREMUM = 'rt.extremum_vjp(g, a, ans, axis, keepdims)'
# The tangent of max/min: t averaged over the tied positions (the VJP's weights).
_EXTREMUM_T = ('xp.sum(t * rt.extremum_vjp(1.0, a, ans, axis, keepdims), axis=axis, '
               'keepdims=keepdims)')
_SIG_EXT = 'a, axis=None, out=None, keepdims=False, initial=None, where=True'

reduction('sum', 'rt.sum_vjp(g, a, axis, keepdims)', methods=('sum',), jvp='linear')
reduction('mean', 'rt.sum_vjp(g, a, axis, keepdims) / rt.count(a, axis)', methods=('mean',),
          jvp='linear')
# d prod / d a_i is the product of the others: prod / a_i where a_i is not 0
# (prod is 0 if another is); at a zero, the product of the nonzero ones if it
# is the only zero, else 0. Written with primitives (prod / a_i differentiates
# through prod's own rule), so second derivatives hold too, but between two
# zeros of one product.
_SAFE = 'xp.where(a == 0, 1.0, a)'
_NONZERO = f'rt.keep_dims(xp.prod({_SAFE}, axis=axis, keepdims=keepdims), a, axis, keepdims)'
_ZEROS = 'rt.keep_dims(xp.sum(a == 0, axis=axis, keepdims=keepdims), a, axis, keepdims)'
_OTHERS = (f'xp.where(a == 0, xp.where({_ZEROS} == 1, {_NONZERO}, 0.0), '
           f'rt.keep_dims(ans, a, axis, keepdims) / {_SAFE})')
reduction('prod', f'rt.sum_vjp(g, a, axis, keepdims) * {_OTHERS}', methods=('prod',),
          jvp=f'xp.sum(t * {_OTHERS}, axis=axis, keepdims=keepdims)')
reduction('max', _EXTREMUM, methods=('max',), signature=_SIG_EXT, jvp=_EXTREMUM_T)
reduction('min', _EXTREMUM, methods=('min',), signature=_SIG_EXT, jvp=_EXTREMUM_T)
reduction('amax', _EXTREMUM, signature=_SIG_EXT, jvp=_EXTREMUM_T)
reduction('amin', _EXTREMUM, signature=_SIG_EXT, jvp=_EXTREMUM_T)
_CENTRED = 'a - xp.mean(a, axis=axis, keepdims=True)'
_DOF = '(rt.count(a, axis) - ddof)'
# d var = 2 sum((a - mean) t) / dof (the mean's own tangent sums to zero against a - mean).
_CENTRED_DOT_T = f'xp.sum(({_CENTRED}) * t, axis=axis, keepdims=keepdims)'
reduction('var', f'rt.sum_vjp(g, a, axis, keepdims) * 2 * ({_CENTRED}) / {_DOF}',
          methods=('var',),
          signature='a, axis=None, dtype=None, out=None, ddof=0, keepdims=False',
          jvp=f'{_CENTRED_DOT_T} * 2 / {_DOF}')
reduction('std', f'rt.sum_vjp(g / ans, a, axis, keepdims) * ({_CENTRED}) / {_DOF}',
          methods=('std',),
          signature='a, axis=None, dtype=None, out=None, ddof=0, keepdims=False',
          jvp=f'{_CENTRED_DOT_T} / ({_DOF} * ans)')
reduction('cumsum', 'rt.cumsum_vjp(g, a, ans, axis)', methods=('cumsum',),
          signature='a, axis=None, dtype=None, out=None', jvp='linear')
primitive('norm', 'x, ord=None, axis=None, keepdims=False',
          # The 2-norm's rule is written with primitives, so it has second
          # derivatives; other orders go through rt.norm_vjp (first order only).
          {'x': 'rt.sum_vjp(g, x, axis, keepdims) * x / rt.keep_dims(ans, x, axis, keepdims) '
                'if ord is None or ord == "fro" else rt.norm_vjp(g, x, ans, ord, axis, keepdims)'},
          # The same split: the 2-norm's tangent <x, t> / |x| in primitives; other
          # orders pair t with the gradient rt.norm_vjp(1.0, ...) (first order only).
          jvp={'x': 'xp.sum(x * t, axis=axis, keepdims=keepdims) / ans '
                    'if ord is None or ord == "fro" else '
                    'xp.sum(t * rt.norm_vjp(1.0, x, ans, ord, axis, keepdims), axis=axis, '
                    'keepdims=keepdims)'},
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

batching(scan=('cumsum', 'argsort'), norm=('norm',), arg=('argmax', 'argmin'),
         reduce=('all', 'any', 'count_nonzero'), count=('count',))

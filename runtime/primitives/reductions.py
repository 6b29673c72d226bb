"""Reductions with `axis`/`keepdims`, and scans."""
import inspect

import numpy

from .. import adjoint, rules
from ..table import TABLE, _signature, batching, nondifferentiable, primitive, reduction

# where= leaves elements out: they get no cotangent (the mask in a's dtype;
# both fold away for the default where=True, as does initial=None).
_MASK = "(1 if where is True else xp.where(where, xp.ones_like(a), 0.0))"
_SIG_SUM = 'a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True'
# max and min: ties share the cotangent; elements left out by where= are NaN
# to it, so never tied; a tie with `initial` takes half, as JAX's
# max(reduce_max(a), initial) gives.
_LIVE = '(a if where is True else xp.where(where, a, xp.nan))'
_TIE = '{0} if initial is None else {0} * rt.cast_like(xp.where(ans == initial, 0.5, 1.0), ans)'
_EXTREMUM = f'rt.extremum_vjp({_TIE.format("g")}, {_LIVE}, ans, axis, keepdims)'
# The tangent of max/min: t averaged over the tied positions (the VJP's weights).
_EXTREMUM_T = (f'xp.sum(t * rt.extremum_vjp({_TIE.format("1.0")}, {_LIVE}, ans, axis, keepdims), '
               'axis=axis, keepdims=keepdims)')
_SIG_EXT = 'a, axis=None, out=None, keepdims=False, initial=None, where=True'

# sum is linear in a and initial jointly (initial is a number added to each sum).
reduction('sum', f'rt.sum_vjp(g, a, axis, keepdims) * {_MASK}', methods=('sum',), jvp='linear',
          signature=_SIG_SUM)
TABLE['sum'].nondiff = TABLE['sum'].nondiff - {'initial'}
TABLE['sum'].vjp['initial'] = 'rt.sum_to(rt.materialize(g, ans), rt.shape(initial))'
_COUNT = ('(rt.count(a, axis) if where is True else '
          'xp.sum(xp.where(where, xp.ones_like(a), 0.0), axis=axis, keepdims=True))')
reduction('mean', f'rt.sum_vjp(g, a, axis, keepdims) * {_MASK} / {_COUNT}', methods=('mean',),
          jvp='linear', signature='a, axis=None, dtype=None, out=None, keepdims=False, *, where=True')
TABLE['mean'].nondiff = TABLE['mean'].nondiff - {'*'}
# d prod / d a_i is the product of the others: prod / a_i where a_i is not 0
# (prod is 0 if another is); at a zero, the product of the nonzero ones if it
# is the only zero, else 0. Written with primitives (prod / a_i differentiates
# through prod's own rule), so second derivatives hold too, but between two
# zeros of one product. Elements where= leaves out count as 1; `initial`
# multiplies the product (ans has it).
_A1 = '(a if where is True else xp.where(where, a, 1.0))'
_SAFE = f'xp.where({_A1} == 0, 1.0, {_A1})'
_NONZERO = (f'rt.keep_dims(xp.prod({_SAFE}, axis=axis, keepdims=keepdims) * '
            '(1 if initial is None else initial), a, axis, keepdims)')
_ZEROS = f'rt.keep_dims(xp.sum({_A1} == 0, axis=axis, keepdims=keepdims), a, axis, keepdims)'
_OTHERS = (f'xp.where({_A1} == 0, xp.where({_ZEROS} == 1, {_NONZERO}, 0.0), '
           f'rt.keep_dims(ans, a, axis, keepdims) / {_SAFE}) * {_MASK}')
reduction('prod', f'rt.sum_vjp(g, a, axis, keepdims) * {_OTHERS}', methods=('prod',),
          jvp=f'xp.sum(t * {_OTHERS}, axis=axis, keepdims=keepdims)', signature=_SIG_SUM)
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
# np.linalg.norm: the adjoint is the cotangent times R = d norm / d x (JAX's
# convention for complex x: the conjugate direction), and the tangent is
# sum(Re(t R)). R is written with primitives for every order (svd's rule,
# max/min's tie weights, |x|'s slope at 0 as JAX takes it). Which R is named
# by rt.norm_rule, and whether a matrix norm by rt.norm_matrix: both fold at
# compile time for a literal `ord` and `axis`, but whether ord=1 (2, inf)
# with axis=None is a matrix norm, which x's rank decides.
_SLOPE = 'rt.abs_slope(x)'           # d|x| / dx
_ABS = 'xp.abs(x)'
_KEPT = 'rt.keep_dims(ans, x, axis, keepdims)'


def _ties(x, y, axis, keepdims):
    """Weights 1/k on the k tied positions where x reaches y along axis."""
    return f'rt.extremum_vjp(1.0, {x}, {y}, {axis}, {keepdims})'


# the singular values' weights (rt.norm_singular_weights) between u and vh
_ROW, _COL = 'rt.norm_matrix_axes(axis)[0]', 'rt.norm_matrix_axes(axis)[1]'
_USV = f'xp.linalg.svd(xp.moveaxis(x, ({_ROW}, {_COL}), (-2, -1)), False)'
_SINGULAR = (f'xp.conj(xp.moveaxis(xp.matmul({_USV}[0] * rt.norm_singular_weights('
             f'{_USV}[1], ord)[..., None, :], {_USV}[2]), (-2, -1), ({_ROW}, {_COL})))')
# 1/-1 (inf/-inf): the largest (smallest) sum of |x| over rows (columns)
_SUMMED, _PICKED = ('rt.norm_matrix_axes(axis, ord)[%d]' % k for k in (0, 1))
_SUMS = (f'{_SLOPE} * ' +
         _ties(f'xp.sum({_ABS}, axis={_SUMMED}, keepdims=True)', _KEPT, _PICKED, True))
_NORM_R = {
    'two': f'xp.conj(x) / {_KEPT}', 'extreme': f'{_SLOPE} * {_ties(_ABS, "ans", "axis", "keepdims")}',
    'zero': 'xp.zeros_like(x)', 'power': f'{_SLOPE} * ({_ABS} / {_KEPT}) ** (ord - 1)',
    'singular': _SINGULAR, 'sums': _SUMS,
}


def _norm_r(matrix):
    rule = f'rt.norm_rule(ord, axis, {matrix})'
    names = ['two', 'singular', 'sums'] if matrix else ['two', 'extreme', 'zero', 'power']
    out = _NORM_R[names[-1]]
    for name in reversed(names[:-1]):
        out = f'({_NORM_R[name]} if {rule} == "{name}" else {out})'
    return out


_IS_MATRIX = '(xp.ndim(x) == 2 if rt.norm_matrix(ord, axis) is None else rt.norm_matrix(ord, axis))'
_R = f'({_norm_r(True)} if {_IS_MATRIX} else {_norm_r(False)})'
primitive('norm', 'x, ord=None, axis=None, keepdims=False',
          {'x': f'rt.sum_vjp(g, x, axis, keepdims) * {_R}'},
          # (the 2-norm's tangent spelled out: one division, by the norm)
          jvp={'x': f'(xp.sum(xp.real(xp.conj(x) * t), axis=axis, keepdims=keepdims) / ans '
                    f'if rt.norm_rule(ord, axis, {_IS_MATRIX}) == "two" else '
                    f'xp.sum(xp.real(t * {_R}), axis=axis, keepdims=keepdims))'},
          nondiff=('ord', 'axis', 'keepdims'), targets=(numpy.linalg.norm,),
          impl='xp.linalg.norm', family='reduction')
for _fn in (rules.norm_matrix, rules.norm_rule, rules.norm_matrix_axes):
    nondifferentiable(f'rt_{_fn.__name__}', str(inspect.signature(_fn))[1:-1], targets=(_fn,),
                      impl=f'rt.{_fn.__name__}', batch='unbatched_result')
nondifferentiable('rt_norm_singular_weights', 's, ord', targets=(rules.norm_singular_weights,),
                  impl='rt.norm_singular_weights', batch='same')


# ---- statistics: more reductions and scans. Not of the 'reduction' family,
# whose every record tests/test_second_order.py lists; average's result is a
# tuple with returned=True, which names of the numeric families
# (transformer/analysis.py) never hold. Second order: tests/test_more_rules.py.
def _statistic(name, signature, vjp, jvp, batch='reduce', **kw):
    nondiff = [p for p in _signature(signature).parameters if p not in vjp]
    return primitive(name, signature, vjp, jvp=jvp, nondiff=nondiff, family='statistics',
                     batch=batch, **kw)


# cumprod: before the first zero of a slice, d y_i / d a_j = y_i / a_j (j <= i);
# at that first zero z, d y_i / d a_z is the product of the others, y'_i (the
# cumulative product with a_z taken as 1); after it, a_z y'_i / a_j, which is
# 0 but not its derivative in a_z. rt.cumprod_zeros says which is which (in
# ans's layout: flat with axis=None). All in primitives, so second derivatives
# hold (but between two zeros).
_Z = 'rt.cumprod_zeros(a, axis)'
_ZA = f'xp.reshape({_Z}, rt.shape(a))'
_NO_ZERO = 'xp.where(a == 0, 1.0, a)'
_OTHERS = f'xp.cumprod(xp.where({_ZA} == 1, 1.0, a), axis)'
_AT_ZERO = f'xp.sum(xp.where({_ZA} == 1, a, 0.0), axis=axis, keepdims={{}})'     # a_z: 0
_G = 'rt.materialize(g, ans)'
_statistic('cumprod', 'a, axis=None, dtype=None, out=None',
           {'a': f'xp.where({_ZA} == 0, rt.cumsum_vjp({_G} * ans, a, ans, axis) / {_NO_ZERO}, '
                 f'rt.cumsum_vjp({_G} * {_OTHERS}, a, ans, axis) * '
                 f'xp.where({_ZA} == 1, 1.0, {_AT_ZERO.format(True)} / {_NO_ZERO}))'},
           {'a': f'xp.where({_Z} == 0, ans * xp.cumsum(t / {_NO_ZERO}, axis), {_OTHERS} * '
                 f'(xp.cumsum(xp.where({_ZA} == 1, t, 0.0), axis) + '
                 f'{_AT_ZERO.format("axis is not None")} * '
                 f'xp.cumsum(xp.where({_ZA} == 1, 0.0, t / {_NO_ZERO}), axis)))'},
           batch='scan', methods=('cumprod',))
# ptp = max - min: each end's cotangent shared among its ties, as max and min do.
_ENDS = ('(rt.extremum_vjp({0}, a, xp.max(a, axis=axis, keepdims=keepdims), axis, keepdims) - '
         'rt.extremum_vjp({0}, a, xp.min(a, axis=axis, keepdims=keepdims), axis, keepdims))')
_statistic('ptp', 'a, axis=None, out=None, keepdims=False', {'a': _ENDS.format('g')},
           {'a': f'xp.sum(t * {_ENDS.format(1.0)}, axis=axis, keepdims=keepdims)'})
# median: the middle element(s), each with its weight (rt.median_weights).
_statistic('median', 'a, axis=None, out=None, overwrite_input=False, keepdims=False',
           {'a': 'rt.sum_vjp(g, a, axis, keepdims) * rt.median_weights(a, axis)'},
           {'a': 'xp.sum(t * rt.median_weights(a, axis), axis=axis, keepdims=keepdims)'})
# nansum, nanmean: NaNs (and where=False) are left out, and get no cotangent.
_KEPT = 'xp.logical_and(where, xp.logical_not(xp.isnan(a)))'
_statistic('nansum',
           'a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True',
           {'a': f'rt.sum_vjp(g, a, axis, keepdims) * xp.where({_KEPT}, xp.ones_like(a), 0.0)'},
           {'a': f'xp.sum(xp.where({_KEPT}, t, 0.0), axis=axis, keepdims=keepdims)'})
_COUNT = f'xp.sum(xp.where({_KEPT}, xp.ones_like(a), 0.0), axis=axis, keepdims={{}})'
_statistic('nanmean', 'a, axis=None, dtype=None, out=None, keepdims=False, *, where=True',
           {'a': f'xp.where({_KEPT}, rt.sum_vjp(g, a, axis, keepdims) / {_COUNT.format(True)}, '
                 '0.0)'},
           {'a': f'xp.sum(xp.where({_KEPT}, t, 0.0), axis=axis, keepdims=keepdims) / '
                 f'{_COUNT.format("keepdims")}'})
# average = sum(a w) / sum(w), w the weights as NumPy reads them
# (rt.average_weights); with returned=True also (the broadcast) sum(w).
_W = 'rt.average_weights(a, weights, axis)'
_SUM_W = f'xp.sum({_W}, axis=axis, keepdims={{}})'
_G0 = '(rt.item(g, 0) if returned else g)'
_AVG = 'rt.keep_dims(ans[0] if returned else ans, a, axis, keepdims)'
_TW = 'rt.average_weights(a, t, axis)'
_D_AVG_A = (f'(xp.mean(t, axis=axis, keepdims=keepdims) if weights is None else '
            f'xp.sum(t * {_W}, axis=axis, keepdims=keepdims) / {_SUM_W.format("keepdims")})')
_D_AVG_W = (f'xp.sum((a - {_AVG}) * {_TW}, axis=axis, keepdims=keepdims) / '
            f'{_SUM_W.format("keepdims")}')
_D_SUM_W = f'xp.broadcast_to(xp.sum({_TW}, axis=axis, keepdims=keepdims), xp.shape(ans[1]))'
_statistic('average', 'a, axis=None, weights=None, returned=False, *, keepdims=False',
           {'a': f'rt.sum_vjp({_G0}, a, axis, keepdims) * ({_W} / {_SUM_W.format(True)} '
                 'if weights is not None else 1.0 / rt.count(a, axis))',
            'weights': f'rt.average_weights_vjp(rt.sum_vjp({_G0}, a, axis, keepdims) * '
                       f'(a - {_AVG}) / {_SUM_W.format(True)} + '
                       '(rt.sum_vjp(rt.item(g, 1), a, axis, keepdims) if returned else 0.0), '
                       'a, weights, axis)'},
           {'a': f'({_D_AVG_A}, 0.0) if returned else {_D_AVG_A}',
            'weights': f'({_D_AVG_W}, {_D_SUM_W}) if returned else {_D_AVG_W}'},
           batch='loop')

# np.maximum.accumulate and np.minimum.accumulate (normalize names them cummax
# and cummin), as jnp.maximum.accumulate differentiates them: each running
# extremum has the tangent of the element that set it, a tie (an element equal
# to the extremum so far) half of each, as np.maximum's own rule splits it.
# The tangent map and its transpose are records (rt_running_extremum_*), each
# the other's adjoint and linear: they are piecewise constant in a and ans.
# (The helpers take arrays of one shape: cotangents are made full arrays first.)
for _name, _which in (('cummax', 'max'), ('cummin', 'min')):
    _statistic(_name, 'a, axis=0, dtype=None, out=None',
               {'a': f"rt.running_extremum_adjoint({_G}, a, ans, axis, '{_which}')"},
               {'a': f"rt.running_extremum_tangent(t, a, ans, axis, '{_which}')"},
               batch='scan', targets=(getattr(rules, _name),),
               impl=f'xp.{_which}imum.accumulate')
for _map, _transpose in (('tangent', 'adjoint'), ('adjoint', 'tangent')):
    primitive(f'rt_running_extremum_{_map}', 'cot, a, y, axis, which',
              {'cot': f'rt.running_extremum_{_transpose}({_G}, a, y, axis, which)'},
              jvp='linear', nondiff=('a', 'y', 'axis', 'which'),
              targets=(getattr(rules, f'running_extremum_{_map}'),),
              impl=f'rt.running_extremum_{_map}', family='adjoint', batch='cumsum_vjp')
# np.logaddexp.accumulate (logcumsumexp): dy_i = sum_(j<=i) exp(a_j - y_i) t_j,
# by rt.logcumsumexp_tangent; its transpose rt.logcumsumexp_adjoint is the
# adjoint. With H that tangent map and G its transpose: dH = H(dv + v da) - H dy
# and dG = G(dw - w dy) + G da, so the rules of each are written with both.
_statistic('logcumsumexp', 'a, axis=0, dtype=None, out=None',
           {'a': f'rt.logcumsumexp_adjoint({_G}, a, ans, axis)'},
           {'a': 'rt.logcumsumexp_tangent(t, a, ans, axis)'},
           batch='scan', targets=(rules.logcumsumexp,), impl='xp.logaddexp.accumulate')
_H, _GT = (f'rt.logcumsumexp_{part}({_G}, a, y, axis)' for part in ('tangent', 'adjoint'))
primitive('rt_logcumsumexp_tangent', 'cot, a, y, axis',
          {'cot': _GT, 'a': f'cot * {_GT}', 'y': f'-{_G} * ans'},
          jvp={'cot': 'rt.logcumsumexp_tangent(t, a, y, axis)',
               'a': 'rt.logcumsumexp_tangent(cot * t, a, y, axis)', 'y': '-ans * t'},
          nondiff=('axis',), targets=(rules.logcumsumexp_tangent,),
          impl='rt.logcumsumexp_tangent', family='adjoint', batch='cumsum_vjp')
primitive('rt_logcumsumexp_adjoint', 'cot, a, y, axis',
          {'cot': _H, 'a': f'{_G} * ans', 'y': f'-cot * {_H}'},
          jvp={'cot': 'rt.logcumsumexp_adjoint(t, a, y, axis)', 'a': 'ans * t',
               'y': '-rt.logcumsumexp_adjoint(cot * t, a, y, axis)'},
          nondiff=('axis',), targets=(rules.logcumsumexp_adjoint,),
          impl='rt.logcumsumexp_adjoint', family='adjoint', batch='cumsum_vjp')

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

"""Element-wise math: unary and broadcasting binary ufuncs."""
import numpy

from .. import rules
from ..table import batching, binary, nondifferentiable, primitive, unary

LN2 = 0.6931471805599453
LN10 = 2.302585092994046

unary('sin', 'g * xp.cos(x)', 'sin(x)')
unary('cos', '-g * xp.sin(x)', 'cos(x)')
unary('tan', 'g * (1 + ans * ans)', 'tan(x)')
unary('arcsin', 'g / xp.sqrt(1 - x * x)', 'asin(x)', math_name='asin')
unary('arccos', '-g / xp.sqrt(1 - x * x)', 'acos(x)', math_name='acos')
unary('arctan', 'g / (1 + x * x)', 'atan(x)', math_name='atan')
unary('sinh', 'g * xp.cosh(x)', 'sinh(x)')
unary('cosh', 'g * xp.sinh(x)', 'cosh(x)')
unary('tanh', 'g * (1 - ans * ans)', 'tanh(x)')
unary('arcsinh', 'g / xp.sqrt(x * x + 1)', 'asinh(x)', math_name='asinh')
unary('arccosh', 'g / xp.sqrt(x * x - 1)', 'acosh(x)', math_name='acosh')
unary('arctanh', 'g / (1 - x * x)', 'atanh(x)', math_name='atanh')
unary('exp', 'g * ans', 'exp(x)')
unary('exp2', f'g * ans * {LN2}', 'exp2(x)')
unary('expm1', 'g * (ans + 1)', 'expm1(x)')
unary('log', 'g / x', 'log(x)', targets=(numpy.log,))   # math.log takes a base: see python.py
unary('log2', f'g / (x * {LN2})', 'log2(x)')
unary('log10', f'g / (x * {LN10})', 'log10(x)')
unary('log1p', 'g / (1 + x)', 'log1p(x)')
unary('sqrt', 'g / (2 * ans)', 'sqrt(x)')
unary('cbrt', 'g / (3 * ans * ans)', 'cbrt(x)')
unary('square', '2 * g * x', '(x * x)', math_name='')
unary('reciprocal', '-g * ans * ans', '(1 / x)', math_name='')
# The slope is 1 at 0 as in JAX; `xp.real` makes a complex input's tangent real.
unary('absolute', 'g * rt.abs_slope(x)', '(x < 0 ? -x : x)',
      targets=(numpy.absolute, numpy.fabs, abs, __import__('math').fabs),
      jvp={'x': 'xp.real(t * rt.abs_slope(x))'})
# The transpose of t -> conj(t) is g -> conj(g); real numbers pass unchanged.
unary('conjugate', 'rt.cast_like(xp.conj(g), x)', 'x', targets=(numpy.conjugate, numpy.conj),
      methods=('conj', 'conjugate'), math_name='')
unary('negative', '-g', '(-x)', math_name='')
unary('positive', 'g', '(+x)', math_name='')
unary('deg2rad', f'g * {numpy.pi / 180}', None, targets=(numpy.deg2rad, numpy.radians,
                                                          __import__('math').radians))
unary('rad2deg', f'g * {180 / numpy.pi}', None, targets=(numpy.rad2deg, numpy.degrees,
                                                          __import__('math').degrees))

binary('add', 'g', 'g', '(x1 + x2)', math_name='')
binary('subtract', 'g', '-g', '(x1 - x2)', math_name='')
binary('multiply', 'g * x2', 'g * x1', '(x1 * x2)', math_name='')
binary('true_divide', 'g / x2', '-g * ans / x2', '(x1 / x2)',
       targets=(numpy.true_divide, numpy.divide))
# The exponent's term, g * ans * log(x1), is zero wherever its factor is
# (rt.log_times): an integer exponent read back from a tape, or a number
# passed to a helper, has a zero tangent or cotangent, and 0 * log(negative
# base) would be nan at every order; a nonzero one there gives nan, as in JAX.
binary('power', 'g * x2 * x1 ** (x2 - 1)', 'rt.log_times(g * ans, x1)',
       'pow(x1, x2)', targets=(numpy.power, numpy.float_power, pow, __import__('math').pow),
       jvp={'x1': 't * x2 * x1 ** (x2 - 1)',
            'x2': '0.0 if rt.is_zero(t) else rt.log_times(t * ans, x1)'})
binary('arctan2', 'g * x2 / (x1 * x1 + x2 * x2)', '-g * x1 / (x1 * x1 + x2 * x2)',
       'atan2(x1, x2)', math_name='atan2')
# At the origin, where x / hypot is 0 / 0, JAX's hypot (max(|x1|, |x2|)
# times a root) shares the tie of the max: half of |x|'s slope 1 at 0 to each.
_HYPOT = 'g * xp.where(ans == 0, 0.5, {0} / xp.where(ans == 0, 1, ans))'
binary('hypot', _HYPOT.format('x1'), _HYPOT.format('x2'), 'hypot(x1, x2)')
# (sign(d) + 1) / 2 is 1, 1/2 or 0: ties share the cotangent; it keeps the dtype.
binary('maximum', 'g * (xp.sign(x1 - x2) + 1) / 2', 'g * (xp.sign(x2 - x1) + 1) / 2',
       '((x1 > x2 || x1 != x1) ? x1 : x2)')
binary('minimum', 'g * (xp.sign(x2 - x1) + 1) / 2', 'g * (xp.sign(x1 - x2) + 1) / 2',
       '((x1 < x2 || x1 != x1) ? x1 : x2)')
# fmax and fmin skip a NaN: as JAX's where(x1 > x2 or x2 is NaN, x1, x2), the
# cotangent goes whole to the operand picked (x2 on ties).
for _name, _op in (('fmax', '>'), ('fmin', '<')):
    binary(_name, f'g * rt.fextremum_weight(x1, x2, "{_name}", 0)',
           f'g * rt.fextremum_weight(x1, x2, "{_name}", 1)',
           f'((x1 {_op} x2 || x2 != x2) ? x1 : x2)', math_name='')
binary('logaddexp', 'g * xp.exp(x1 - ans)', 'g * xp.exp(x2 - ans)',
       'fmax(x1, x2) + log1p(exp(-fabs(x1 - x2)))')
binary('logaddexp2', 'g * xp.exp2(x1 - ans)', 'g * xp.exp2(x2 - ans)', None)
binary('remainder', 'g', '-g * xp.floor_divide(x1, x2)', None,
       targets=(numpy.remainder, numpy.mod))
binary('fmod', 'g', '-g * xp.trunc(x1 / x2)', None, math_name='fmod')

# C expressions for fused kernels (transformer/fuse.py); NaN tests as x != x
# work for every type.
_UNARY_TESTS = {'sign': '(x > 0 ? 1 : (x < 0 ? -1 : x))', 'floor': 'floor(x)',
                'ceil': 'ceil(x)', 'trunc': 'trunc(x)', 'rint': 'rint(x)', 'isnan': '(x != x)',
                'isinf': '(x == x && x - x != x - x)', 'isfinite': '(x - x == x - x)',
                'logical_not': '(!x)', 'signbit': 'signbit(x)'}
for _name, _c in _UNARY_TESTS.items():
    nondifferentiable(_name, 'x, /, out=None, where=True, dtype=None', c_expr=_c)
_BINARY_TESTS = {'floor_divide': None, 'less': '(x1 < x2)', 'less_equal': '(x1 <= x2)',
                 'greater': '(x1 > x2)', 'greater_equal': '(x1 >= x2)', 'equal': '(x1 == x2)',
                 'not_equal': '(x1 != x2)', 'logical_and': '(x1 && x2)',
                 'logical_or': '(x1 || x2)', 'logical_xor': '(!x1 != !x2)', 'isclose': None}
for _name, _c in _BINARY_TESTS.items():
    nondifferentiable(_name, 'x1, x2, /, out=None, where=True, dtype=None', c_expr=_c)
nondifferentiable('round', 'a, decimals=0, out=None', targets=(numpy.round, numpy.around, round),
                  methods=('round',))
# The gap to the next float, and that float: steps, so derivative 0 (JAX's
# nextafter has none either).
nondifferentiable('spacing', 'x, /, out=None, where=True, dtype=None')
nondifferentiable('nextafter', 'x1, x2, /, out=None, where=True, dtype=None')

# The exponent's adjoint term u * log(x1), zero where u is (see rules.log_times):
# its derivatives are that term again, so every order stays free of 0 * nan.
primitive('rt_log_times', 'u, x',
          {'u': 'rt.unbroadcast(rt.log_times(g, x), u, ans)',
           'x': 'rt.unbroadcast(g * u / xp.where(x == 0, xp.inf, x), x, ans)'},
          jvp={'u': 'rt.log_times(t, x)',
               'x': 'rt.cast_like(t * u / xp.where(x == 0, xp.inf, x), ans)'},
          targets=(rules.log_times,), impl='rt.log_times', family='adjoint', batch='elementwise')

# Selection: `ans` is the output, so the operands are named as NumPy names them.
primitive('where', 'condition, x=None, y=None',
          {'x': 'rt.where_vjp(g, condition, x, ans, 0)',
           'y': 'rt.where_vjp(g, condition, y, ans, 1)'},
          jvp={'x': 'xp.where(condition, t, xp.zeros_like(ans))',
               'y': 'xp.where(condition, xp.zeros_like(ans), t)'},
          nondiff=('condition',), family='elementwise', c_expr='(condition ? x : y)')
# clip(a, a_min, a_max) and NumPy 2's clip(a, min=, max=); also the method x.clip.
_CLIP = 'rt.clip_vjp(g, a, a_min, a_max, min, max, ans, {})'
_CLIP_T = 'rt.clip_jvp(t, a, a_min, a_max, min, max, ans, {})'
primitive('clip', 'a, a_min=None, a_max=None, out=None, *, min=None, max=None',
          {'a': _CLIP.format(0), 'a_min': _CLIP.format(1), 'min': _CLIP.format(1),
           'a_max': _CLIP.format(2), 'max': _CLIP.format(2)},
          jvp={'a': _CLIP_T.format(0), 'a_min': _CLIP_T.format(1), 'min': _CLIP_T.format(1),
               'a_max': _CLIP_T.format(2), 'max': _CLIP_T.format(2)},
          nondiff=('out',), methods=('clip',), family='elementwise')

# ---- more element-wise functions. Not of the 'elementwise' family, whose
# every record tests/test_second_order.py lists (second order of these:
# tests/test_more_rules.py). ----
def _pointwise(name, signature, vjp, jvp, nondiff, c_expr=None, targets=None,
               batch='elementwise'):
    return primitive(name, signature, vjp, jvp=jvp, nondiff=nondiff, family='pointwise',
                     c_expr=c_expr, targets=targets, batch=batch)


# copysign: |x1| with the sign bit of x2; x2's derivative is 0 (as in JAX).
_FLIP = 'xp.where(xp.signbit(x2), -rt.abs_slope(x1), rt.abs_slope(x1))'
_pointwise('copysign', 'x1, x2, /, out=None, where=True, dtype=None',
           {'x1': f'rt.unbroadcast(g * {_FLIP}, x1, ans)'},
           {'x1': f'rt.cast_like(t * {_FLIP}, ans)'},
           ('x2', 'out', 'where', 'dtype'), 'copysign(x1, x2)')
# nan_to_num: x passes where finite; the replacement values where they replace.
# Batched per example: its output has x's shape, which replacement values that
# differ between examples do not broadcast to ('elementwise' broadcasts).
_FINITE = 'xp.where(xp.isfinite(x), xp.ones_like(x), xp.zeros_like(x))'
_REPLACED = {'nan': 'xp.isnan(x)', 'posinf': '(x == xp.inf)', 'neginf': '(x == -xp.inf)'}
_pointwise('nan_to_num', 'x, copy=True, nan=0.0, posinf=None, neginf=None',
           dict({'x': f'g * {_FINITE}'},
                **{p: f'rt.sum_to(xp.where({m}, rt.materialize(g, ans), 0.0), rt.shape({p}))'
                   for p, m in _REPLACED.items()}),
           dict({'x': f't * {_FINITE}'},
                **{p: f'xp.where({m}, t, xp.zeros_like(x))' for p, m in _REPLACED.items()}),
           ('copy',), batch='loop')
# angle = atan2(imag z, real z): for complex z the adjoint follows JAX's
# convention (grad of a real f of z is df/dx - i df/dy), -i g / z; for real z
# it is 0.
_R2 = 'xp.where(xp.real(z) ** 2 + xp.imag(z) ** 2 == 0, 1.0, xp.real(z) ** 2 + xp.imag(z) ** 2)'
_DEG = f'(180 / {numpy.pi} if deg else 1.0)'
_pointwise('angle', 'z, deg=False',
           {'z': f'(rt.imag_vjp(g * xp.real(z) / {_R2}, z) - g * xp.imag(z) / {_R2}) * {_DEG}'},
           {'z': f'xp.imag(t * xp.conj(z)) / {_R2} * {_DEG}'}, ('deg',))

# select: linear in the choices and the default jointly; each gets the
# cotangent where it was taken.
primitive('select', 'condlist, choicelist, default=0',
          {'choicelist': 'rt.select_choices_vjp(g, condlist, choicelist, ans)',
           'default': 'rt.select_default_vjp(g, condlist, default, ans)'},
          jvp='linear', nondiff=('condlist',), family='other', batch='loop')
primitive('rt_select_choices_vjp', 'cot, condlist, choicelist, y',
          {'cot': 'rt.select_choices_transpose(g, cot, condlist, choicelist, y)'}, jvp='linear',
          nondiff=('condlist', 'choicelist', 'y'), targets=(rules.select_choices_vjp,),
          impl='rt.select_choices_vjp', family='adjoint', batch='loop')
primitive('rt_select_default_vjp', 'cot, condlist, default, y',
          {'cot': 'rt.select_default_transpose(g, cot, condlist, default, y)'}, jvp='linear',
          nondiff=('condlist', 'default', 'y'), targets=(rules.select_default_vjp,),
          impl='rt.select_default_vjp', family='adjoint', batch='loop')
# Which operand fmax / fmin picks, as 1 or 0: piecewise constant.
nondifferentiable('rt_fextremum_weight', 'x1, x2, kind, which',
                  targets=(rules.fextremum_weight,), impl='rt.fextremum_weight', batch='elementwise')

# Batching: operands line up per example (transformer/batch_rules/arrays.py).
batching(elementwise=('sign', 'floor', 'ceil', 'trunc', 'rint', 'isnan', 'isinf', 'isfinite',
                      'logical_not', 'signbit', 'floor_divide', 'less', 'less_equal', 'greater',
                      'greater_equal', 'equal', 'not_equal', 'logical_and', 'logical_or',
                      'logical_xor', 'isclose', 'round', 'clip'))
batching(elementwise=('spacing', 'nextafter'))
# (where: element-wise with x and y, np.nonzero without: runtime/primitives/indexing.py)

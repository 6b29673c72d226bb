"""The runtime's own adjoint helpers as primitives, so that generated
derivative code can itself be differentiated (second order).

The helpers are linear in the cotangent they carry (and matmul_vjp/dot_vjp
are bilinear), so each rule is a transpose: the VJP of a linear map with
respect to its linear argument. The template names `g` and `ans` are taken,
so a helper's cotangent parameter is called `cot` here and the primal output
it receives is called `y`; generated code passes these positionally.
"""
from .. import adjoint, rules
from ..table import TABLE, batching, linear, nondifferentiable, primitive

_G = 'rt.materialize(g, {})'


def _helper(fn, signature, vjp):
    return linear(f'rt_{fn.__name__}', signature, vjp, targets=(fn,),
                  impl=f'rt.{fn.__name__}', family='adjoint')


# ---- broadcasting and reductions ----
_helper(adjoint.unbroadcast, 'cot, x, y', {'cot': 'rt.unbroadcast_transpose(g, cot, x, y)'})
_helper(adjoint.materialize, 'cot, y', {'cot': 'rt.unbroadcast(g, cot, ans)'})
_helper(adjoint.sum_to, 'cot, target', {'cot': 'rt.sum_to_transpose(g, cot, ans)'})
_helper(adjoint.sum_vjp, 'cot, x, axis=None, keepdims=False',
        {'cot': 'rt.sum_vjp_transpose(g, cot, x, axis, keepdims)'})
_helper(adjoint.keep_dims, 'y, x, axis, keepdims',
        {'y': 'rt.keep_dims_transpose(g, y, ans, axis, keepdims)'})
_helper(adjoint.extremum_vjp, 'cot, x, y, axis=None, keepdims=False',
        {'cot': 'rt.extremum_vjp_transpose(g, cot, x, y, axis, keepdims, ans)'})
# (z: extremum_vjp's output) its transpose is extremum_vjp again, summed to h
_helper(rules.extremum_vjp_transpose, 'h, cot, x, y, axis, keepdims, z',
        {'h': 'rt.sum_to(rt.extremum_vjp(g, x, y, axis, keepdims), rt.shape(h))'})
_helper(rules.cumsum_vjp, 'cot, a, y, axis=None',
        {'cot': 'rt.sum_to(xp.reshape(xp.cumsum(rt.materialize(g, a), axis), rt.shape(y)), '
                'rt.shape(cot))'})

# ---- containers and indexing ----
_helper(adjoint.item, 'cot, key', {'cot': 'rt.item_transpose(g, cot, key)'})
# g put at `key` of a zero container (getitem_vjp's parameter names, whose
# batching rule serves it): reading the slot back is its transpose
_helper(rules.item_transpose, 'cot, x, idx', {'cot': 'rt.item(g, idx)'})
_helper(rules.callee_adjoint, 'cot, key', {'cot': 'rt.callee_adjoint_transpose(g, cot, key)'})
_helper(rules.callee_adjoint_transpose, 'cot, x, idx',
        {'cot': '0.0 if isinstance(x, tuple) and idx >= len(x) else rt.item(g, idx)'})
_helper(adjoint.getitem_vjp, 'cot, x, idx', {'cot': 'rt.getitem_vjp_transpose(g, cot, x, idx, ans)'})
# reading idx back out of h (shaped like getitem_vjp's output y): its
# transpose puts g there again, summed to h's shape (h may be broadcast)
_helper(rules.getitem_vjp_transpose, 'h, cot, x, idx, y',
        {'h': 'rt.sum_to(rt.getitem_vjp(g, x, idx), rt.shape(h)) if rt.is_array(x) '
              'else rt.getitem_vjp(g, x, idx)'})
_helper(adjoint.add, 'a, b', {'a': 'rt.add_transpose(g, a, ans)', 'b': 'rt.add_transpose(g, b, ans)'})
# add's adjoint of an operand and its transpose: each the other's transpose
_helper(rules.add_transpose, 'cot, x, y', {'cot': 'rt.add_transpose_transpose(g, cot, x, y)'})
_helper(adjoint.add_transpose_transpose, 'h, cot, x, y', {'h': 'rt.add_transpose(g, x, y)'})
_helper(adjoint.finalize, 'cot, x, seen=None', {'cot': 'rt.finalize_transpose(g, cot, x)'})
# summing back to cot's shape is its own transpose, with h in cot's place
_helper(rules.finalize_transpose, 'h, cot, x', {'h': 'rt.finalize_transpose(g, h, x)'})
_helper(adjoint.broadcast_list, 'cot, xs, y',
        {'cot': 'rt.broadcast_list_transpose(g, cot, xs, y)'})
_helper(adjoint.unstack, 'cot, xs, axis=0', {'cot': 'rt.unstack_transpose(g, cot, xs, axis)'})
# stacking the pieces back: its transpose takes them apart again (each summed
# to its piece of h, which may be broadcast)
_helper(rules.unstack_transpose, 'h, cot, xs, axis=0',
        {'h': 'rt.unstack(rt.materialize(g, ans), xs if rt.is_zero(h) else h, axis)'})
_helper(adjoint.concatenate_vjp, 'cot, xs, y, axis=0',
        {'cot': 'rt.concatenate_vjp_transpose(g, cot, xs, y, axis)'})
_helper(rules.cast_like, 'cot, x', {'cot': 'rt.cast_like(g, cot)'})
_helper(rules.inexact_only, 'cot, like', {'cot': 'rt.inexact_only(g, like)'})

# ---- linear shape rules: the transpose is the forward op on g ----
_helper(rules.tile_vjp, 'cot, A, y, reps',
        {'cot': 'rt.sum_to(xp.tile(rt.materialize(g, A), reps), rt.shape(cot))'})
_helper(rules.repeat_vjp, 'cot, a, y, repeats, axis=None',
        {'cot': 'rt.sum_to(xp.repeat(rt.materialize(g, a), repeats, axis), rt.shape(cot))'})
_helper(rules.pad_vjp, 'cot, array, y, pad_width, mode="constant", stat_length=None',
        {'cot': 'rt.sum_to(rt.pad_jvp(rt.materialize(g, array), array, pad_width, mode, '
                'stat_length), rt.shape(cot))'})
_helper(rules.diagonal_vjp, 'cot, a, y, offset=0, axis1=0, axis2=1',
        {'cot': 'rt.sum_to(xp.diagonal(rt.materialize(g, a), offset, axis1, axis2), '
                'rt.shape(cot))'})
_helper(rules.trace_vjp, 'cot, a, y, offset=0, axis1=0, axis2=1',
        {'cot': 'rt.sum_to(xp.trace(rt.materialize(g, a), offset, axis1, axis2), rt.shape(cot))'})
_helper(rules.diag_vjp, 'cot, v, y, k=0',
        {'cot': 'rt.sum_to(xp.diag(rt.materialize(g, v), k), rt.shape(cot))'})
_helper(rules.take_vjp, 'cot, a, y, indices, axis=None, mode="raise"',
        {'cot': 'rt.sum_to(xp.take(rt.materialize(g, a), indices, axis, mode=mode), '
                'rt.shape(cot))'})
_helper(rules.where_vjp, 'cot, condition, x, y, which',
        {'cot': 'rt.where_vjp_transpose(g, cot, condition, x, y, which)'})
_helper(rules.clip_vjp, 'cot, a, a_min, a_max, min, max, y, which',
        {'cot': 'rt.clip_vjp_transpose(g, cot, a, a_min, a_max, min, max, y, which)'})

# ---- more rules that are linear in their cotangent ----
_helper(rules.pad_values_vjp, 'cot, array, y, pad_width, mode, constant_values',
        {'cot': 'rt.pad_values_vjp_transpose(g, cot, array, y, pad_width, mode, constant_values)'})
_helper(adjoint.setitem_vjp_x, 'cot, y, idx', {'cot': 'rt.setitem_vjp_x_transpose(g, cot, y, idx)'})
_helper(adjoint.setitem_vjp_v, 'cot, y, idx, v',
        {'cot': 'rt.setitem_vjp_v_transpose(g, cot, y, idx, v)'})
# setitem_vjp_v's gather (cot of y's shape) with overwritten writes zeroed;
# batched code calls it (transformer/batch_rules/adjoints.py: setitem_vjp)
_helper(adjoint.written_part, 'cot, idx', {'cot': 'rt.written_part_transpose(g, cot, idx)'})
_helper(adjoint.append_vjp_list, 'cot, xs', {'cot': 'rt.append_list_transpose(g, cot)'})
_helper(adjoint.append_vjp_value, 'cot', {'cot': 'rt.item_transpose(g, cot, -1)'})
_helper(adjoint.array_vjp, 'cot, x, y', {'cot': 'rt.array_vjp_transpose(g, cot, x, y)'})
_helper(rules.hstack_vjp, 'cot, tup, y', {'cot': 'rt.stack_vjp_transpose(g, cot, tup, y, "hstack")'})
_helper(rules.vstack_vjp, 'cot, tup, y', {'cot': 'rt.stack_vjp_transpose(g, cot, tup, y, "vstack")'})
_helper(rules.split_vjp, 'cot, ary, y, axis=0', {'cot': 'rt.split_vjp_transpose(g, cot, ary, y, axis)'})
_helper(rules.py_extremum_vjp, 'cot, args, y', {'cot': 'rt.py_extremum_transpose(g, cot, args, y)'})
# linspace's adjoint is linear in cot: its transpose spreads g over the
# samples (and the step) as linspace does with g at start (which=0) or stop.
_helper(rules.linspace_vjp,
        'cot, start, stop, y, num=50, endpoint=True, retstep=False, axis=0, which=0',
        {'cot': 'rt.linspace_vjp_transpose(g, cot, start, stop, y, num, endpoint, retstep, '
                'axis, which)'})

# ---- tangent helpers of the JVP rules: linear in the tangent `tan`, their
# transposes are the matching VJP helpers ----
_helper(rules.clip_jvp, 'tan, a, a_min, a_max, min, max, y, which',
        {'tan': 'rt.clip_vjp(g, a, a_min, a_max, min, max, y, which)'})
_helper(rules.py_extremum_jvp, 'tan, args, y', {'tan': 'rt.py_extremum_vjp(g, args, y)'})

# ---- bilinear products: linear in cot and in the operand other than `which` ----
# Not jointly linear, so their JVPs are sums of terms, not 'linear': the helper
# with one argument replaced by its tangent. The adjoint of operand `which`
# does not depend on that operand, whose term is zero.
_T = 'rt.product_vjp_transpose(g, cot, x1, x2, {y}, which, {wrt}, "{kind}"{axes})'


def _product_rules(kind, y='y', axes=''):
    return {wrt_name: _T.format(y=y, wrt=wrt, kind=kind, axes=axes)
            for wrt_name, wrt in (('cot', "'cot'"), ('x1', 0), ('x2', 1))}


def _product_jvp(fn, y=', y', axes=''):
    call = 'rt.%s({}, {}, {}%s%s, which)' % (fn.__name__, y, axes)
    return {'cot': call.format('t', 'x1', 'x2'),
            'x1': f"{call.format('cot', 't', 'x2')} if which == 1 else 0.0",
            'x2': f"{call.format('cot', 'x1', 't')} if which == 0 else 0.0"}


def _product_helper(fn, signature, vjp, **jvp_kw):
    return linear(f'rt_{fn.__name__}', signature, vjp, targets=(fn,), impl=f'rt.{fn.__name__}',
                  family='adjoint', jvp=_product_jvp(fn, **jvp_kw))


for _fn, _kind in ((rules.matmul_vjp, 'matmul'), (rules.dot_vjp, 'dot'),
                   (rules.outer_vjp, 'outer'), (rules.inner_vjp, 'inner')):
    _product_helper(_fn, 'cot, x1, x2, y, which', _product_rules(_kind))
_product_helper(rules.vdot_vjp, 'cot, x1, x2, which', _product_rules('vdot', y='None'), y='')
_product_helper(rules.tensordot_vjp, 'cot, x1, x2, y, axes=2, which=0',
                _product_rules('tensordot', axes=', axes'), axes=', axes')

# ---- helpers of the rules of more NumPy functions ----
_helper(rules.take_along_axis_vjp, 'cot, arr, y, indices, axis=-1',
        {'cot': 'rt.sum_to(xp.take_along_axis(rt.materialize(g, arr), indices, axis), '
                'rt.shape(cot))'})
_helper(rules.diff_vjp, 'cot, a, y, n=1, axis=-1, prepend=None, append=None, which=0',
        {'cot': 'rt.diff_vjp_transpose(g, cot, a, y, n, axis, prepend, append, which)'})
_helper(rules.joined_vjp, 'cot, tup, y, kind',
        {'cot': 'rt.joined_vjp_transpose(g, cot, tup, y, kind)'})
# numpy.average's weights as read against a, and back: each the other's transpose
linear('rt_average_weights', 'a, weights, axis=None',
       {'weights': 'rt.average_weights_vjp(g, a, weights, axis)'},
       targets=(rules.average_weights,), impl='rt.average_weights', family='adjoint')
_helper(rules.average_weights_vjp, 'cot, a, weights, axis=None',
        {'cot': 'rt.sum_to(rt.average_weights(a, rt.materialize(g, weights), axis) '
                '+ xp.zeros_like(cot), rt.shape(cot))'})
nondifferentiable('rt_cumprod_zeros', 'a, axis=None', targets=(rules.cumprod_zeros,),
                  impl='rt.cumprod_zeros', batch='scan')
nondifferentiable('rt_median_weights', 'a, axis=None', targets=(rules.median_weights,),
                  impl='rt.median_weights', batch='loop')
nondifferentiable('rt_eigh_triangle', 'a, UPLO="L"', targets=(rules.eigh_triangle,),
                  impl='rt.eigh_triangle', batch='leading')
nondifferentiable('rt_linalg_rule_applies',
                  'name, a, full_matrices=False, hermitian=False, mode="reduced"',
                  targets=(rules.linalg_rule_applies,), impl='rt.linalg_rule_applies',
                  batch='unbatched_result')
for _fn, _sig in ((rules.kron_layout, 'a, b'), (rules.multi_dot_subscripts, 'arrays'),
                 (rules.cross_axes, 'a, b, axisa=-1, axisb=-1, axisc=-1, axis=None, which=0')):
    nondifferentiable(f'rt_{_fn.__name__}', _sig, targets=(_fn,), impl=f'rt.{_fn.__name__}',
                      batch='loop')

# ---- nonlinear helpers used by rules ----
primitive('rt_safe_log', 'x', {'x': 'g / xp.where(x == 0, xp.inf, x)'}, targets=(rules.safe_log,),
          impl='rt.safe_log', family='adjoint', jvp={'x': 't / xp.where(x == 0, xp.inf, x)'})

# ---- helpers whose results carry no gradient ----
for _fn, _sig in ((adjoint.seed, 'out, holomorphic=False'), (adjoint.shape, 'x'), (adjoint.ndim, 'x'),
                  (adjoint.size, 'x'), (adjoint.is_zero, 'value'),
                  (rules.inverse_axes, 'axes, a'), (rules.negate, 'shift')):
    nondifferentiable(f'rt_{_fn.__name__}', _sig, targets=(_fn,), impl=f'rt.{_fn.__name__}')
# |x|'s slope (its only use: absolute's rules) is piecewise constant in real x;
# for complex x it is s = conj(x)/R, R = |x| with 1 at 0 (JAX's), whose JVP is
# conj(t)/R - conj(x) Re(conj(x) t)/R^3. That map is its own transpose in
# JAX's convention (t -> a t + b conj(t) transposes to g -> a g + conj(b g),
# here with a = -conj(x)^2/(2R^3) and real b), so one template serves both.
_R = 'xp.where(x == 0, 1.0, xp.abs(x))'
_SLOPE_DOT = (f'(xp.conj({{c}}) / {_R} - xp.conj(x) * xp.real(xp.conj(x) * {{c}}) / {_R} ** 3 '
              'if xp.iscomplexobj(x) else 0.0 * {c})')
primitive('rt_abs_slope', 'x', {'x': _SLOPE_DOT.format(c='g')}, targets=(rules.abs_slope,),
          impl='rt.abs_slope', family='adjoint', jvp={'x': _SLOPE_DOT.format(c='t')},
          c_expr='(x < 0 ? -1 : 1)')
_helper(rules.imag_vjp, 'cot, val', {'cot': 'rt.imag_vjp(g, val)'})

# Batching: the hot helpers of vmap(grad(f)) have vectorized rules; the rest
# run per example (transformer/batch_rules/).
batching(unbroadcast=('rt_unbroadcast',), materialize=('rt_materialize',),
         setitem_vjp=('rt_setitem_vjp_x', 'rt_setitem_vjp_v'),
         shifted_axis_helper=('rt_sum_vjp', 'rt_keep_dims', 'rt_extremum_vjp'),
         item=('rt_item', 'rt_callee_adjoint'), getitem_vjp=('rt_getitem_vjp',),
         item_transpose=('rt_item_transpose', 'rt_callee_adjoint_transpose'), add=('rt_add',),
         finalize=('rt_finalize',), matmul_vjp=('rt_matmul_vjp', 'rt_dot_vjp'),
         elementwise=('rt_safe_log', 'rt_negate', 'rt_abs_slope', 'rt_imag_vjp'), seed=('rt_seed',), sum_to=('rt_sum_to',),
         like_first=('rt_cast_like', 'rt_inexact_only'),
         elementwise_vjp=('rt_where_vjp', 'rt_clip_vjp'),
         join_vjp=('rt_concatenate_vjp', 'rt_unstack', 'rt_hstack_vjp', 'rt_vstack_vjp'),
         outer_vjp=('rt_outer_vjp',), cumsum_vjp=('rt_cumsum_vjp',),
         shape_of=('rt_shape', 'rt_ndim', 'rt_size'), unbatched_result=('rt_is_zero',),
         axes_only=('rt_inverse_axes',), array_vjp=('rt_array_vjp',),
         split_vjp=('rt_split_vjp',))
for _record in TABLE:
    if _record.family == 'adjoint' and _record.batch is None:
        _record.batch = 'loop'

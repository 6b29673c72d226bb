"""Functional indexed updates: `codax.numpy.at(x)[idx].set(v)` and its
siblings, which normalize turns into `rt.at_set(x, idx, v)` and so on
(`.get()` is plain `x[idx]`; `.get(mode=...)` is `rt.at_get`).

In the rules, `rt.materialize(g, ans)[idx]` is the cotangent of each update
(shape of x[idx]; a repeated index reads it once per update) and
`rt.sum_to(..., rt.shape(v))` undoes v's broadcast. With JAX's `mode=` for
indices out of bounds, each read `a[idx]` is `rt.at_get(a, idx, mode, 0)`
(zero for a dropped update) and each helper takes the mode: `_moded` writes
both, and the rule is folded to one of them where the call's mode is a
constant (so code without mode= is as before). The rules are made of
recorded primitives and helpers, so derivatives of derivatives work.
"""
from .. import updates
from ..table import batching, linear, nondifferentiable, primitive

_SIGNATURE = 'x, idx, v, mode=None, indices_are_sorted=False, unique_indices=False'
_NONDIFF = ('idx', 'mode', 'indices_are_sorted', 'unique_indices')


def _moded(call):
    """`call` (a helper's call ending in `)`, or a read `a[idx]`) without the
    mode where there is none, else with it."""
    if call.endswith('[idx]'):
        return f'({call} if mode is None else rt.at_get({call[:-5]}, idx, mode, 0))'
    return f'({call} if mode is None else {call[:-1]}, mode))'


def _part(a):
    """The values of `a` (shaped like x) at the updates: zero where dropped."""
    return _moded(f'{a}[idx]')


_PER_UPDATE = f'rt.sum_to({_part("rt.materialize(g, ans)")}{{}}, rt.shape(v))'


def _update(fn, vjp, jvp):
    kind = linear if jvp == 'linear' else primitive
    extra = {} if jvp == 'linear' else {'nondiff': _NONDIFF, 'jvp': jvp}
    return kind(fn.__name__, _SIGNATURE, vjp, targets=(fn,), impl=f'rt.{fn.__name__}',
                family='indexing', **extra)


def _share(op, which):
    return _moded(f'rt.at_share(x, idx, v, ans, "{op}", {which})')


def _scattered(per_update):
    """The tangent of y from a tangent per update (the shape of x[idx])."""
    return _moded(f'rt.at_add(xp.zeros_like(ans), idx, {per_update})')


_OTHERS = _moded('rt.at_others(x, idx, v)')

# set: x's cotangent where nothing was written, each element's to the update that won.
_update(updates.at_set, {'x': f'g * {_share("set", 0)}',
                         'v': _PER_UPDATE.format(f' * {_share("set", 1)}')}, 'linear')
# add: linear; every update receives its element's cotangent.
_update(updates.at_add, {'x': 'g', 'v': _PER_UPDATE.format('')}, 'linear')
# multiply: y = x * (product of the updates at each element).
_update(updates.at_multiply,
        {'x': _moded('rt.at_multiply(rt.materialize(g, ans), idx, v)'),
         'v': _PER_UPDATE.format(f' * {_part("x")} * {_OTHERS}')},
        {'x': _moded('rt.at_multiply(t, idx, v)'),
         'v': _scattered(f't * {_part("x")} * {_OTHERS}')})
# divide: y = x / (product of the updates at each element), so dy/dv = -y / v.
_update(updates.at_divide,
        {'x': _moded('rt.at_divide(rt.materialize(g, ans), idx, v)'),
         'v': _PER_UPDATE.format(f' * -{_part("ans")} / v')},
        {'x': _moded('rt.at_divide(t, idx, v)'), 'v': _scattered(f'-t * {_part("ans")} / v')})
# power: y = x ** q, q the product of the updates at each element (1 elsewhere),
# so dy/dx = q x ** (q - 1) and dy/dv = y log(x) (product of the others).
_EXPONENT = _moded('rt.at_multiply(xp.ones_like(ans), idx, v)')
_update(updates.at_power,
        {'x': f'g * {_EXPONENT} * x ** ({_EXPONENT} - 1)',
         'v': _PER_UPDATE.format(f' * {_part("ans")} * {_part("rt.safe_log(x)")} * {_OTHERS}')},
        {'x': f't * {_EXPONENT} * x ** ({_EXPONENT} - 1)',
         'v': _scattered(f't * {_part("ans")} * {_part("rt.safe_log(x)")} * {_OTHERS}')})
# min/max: the cotangent goes to the inputs equal to the result.
for _fn, _op in ((updates.at_min, 'min'), (updates.at_max, 'max')):
    _update(_fn, {'x': f'g * {_share(_op, 0)}', 'v': _PER_UPDATE.format(f' * {_share(_op, 1)}')},
            {'x': f't * {_share(_op, 0)}', 'v': _scattered(f't * {_share(_op, 1)}')})

# get with mode=: linear in x (a dropped index reads the constant fill value).
primitive('at_get', 'x, idx, mode=None, fill_value=None, indices_are_sorted=False, '
          'unique_indices=False',
          {'x': 'rt.at_add(xp.zeros_like(x, dtype=ans.dtype), idx, g, mode)'},
          jvp={'x': 'rt.at_get(t, idx, mode, 0)'}, nondiff=('idx', 'mode', 'fill_value',
                                                          'indices_are_sorted', 'unique_indices'),
          targets=(updates.at_get,), impl='rt.at_get', family='indexing')

# apply runs any function, so it has no rules: derivatives go through its
# Python definition (codax/numpy.py), which applies the function round by
# round (rt.at_levels) with at_set, all of which codax differentiates.
primitive('at_apply', 'x, idx, func, mode=None, indices_are_sorted=False, unique_indices=False',
          {}, targets=(updates.at_apply,), impl='rt.at_apply', family='indexing').defined = True
nondifferentiable('rt_at_levels', 'x, idx, mode=None', targets=(updates.at_levels,),
                  impl='rt.at_levels')

# ---- helpers of the rules ----
nondifferentiable('rt_at_share', 'x, idx, v, y, op, which, mode=None',
                  targets=(updates.at_share,), impl='rt.at_share')
# Its derivative is symmetric in the updates, so one helper, rt.at_others_pairs,
# is its JVP and (summed to v's shape) its VJP. That helper has no record:
# third derivatives of .multiply() in v are refused as first-order only.
primitive('rt_at_others', 'x, idx, v, mode=None',
          {'v': 'rt.sum_to(rt.at_others_pairs(g, x, idx, v, mode), rt.shape(v))'},
          jvp={'v': 'rt.at_others_pairs(t, x, idx, v, mode)'}, nondiff=('x', 'idx', 'mode'),
          targets=(updates.at_others,), impl='rt.at_others', family='adjoint')

# vmap: one example at a time (rt.batch_loop), until vectorized rules exist.
batching(loop=('at_set', 'at_add', 'at_multiply', 'at_divide', 'at_power', 'at_min', 'at_max',
               'at_get', 'at_apply', 'rt_at_levels', 'rt_at_share', 'rt_at_others'))

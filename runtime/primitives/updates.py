"""Functional indexed updates: `codax.numpy.at(x)[idx].set(v)` and its
siblings, which normalize turns into `rt.at_set(x, idx, v)` and so on
(`.get()` is plain `x[idx]`).

In the rules, `rt.materialize(g, ans)[idx]` is the cotangent of each update
(shape of x[idx]; a repeated index reads it once per update) and
`rt.sum_to(..., rt.shape(v))` undoes v's broadcast. The rules are made of
recorded primitives and helpers, so derivatives of derivatives work.
"""
from .. import updates
from ..table import batching, linear, nondifferentiable, primitive

_PER_UPDATE = 'rt.sum_to(rt.materialize(g, ans)[idx]{}, rt.shape(v))'


def _update(fn, vjp, jvp):
    kind = linear if jvp == 'linear' else primitive
    extra = {} if jvp == 'linear' else {'nondiff': ('idx',), 'jvp': jvp}
    return kind(fn.__name__, 'x, idx, v', vjp, targets=(fn,), impl=f'rt.{fn.__name__}',
                family='indexing', **extra)


def _share(op, which):
    return f'rt.at_share(x, idx, v, ans, "{op}", {which})'


# set: x's cotangent where nothing was written, each element's to the update that won.
_update(updates.at_set, {'x': f'g * {_share("set", 0)}',
                         'v': _PER_UPDATE.format(f' * {_share("set", 1)}')}, 'linear')
# add: linear; every update receives its element's cotangent.
_update(updates.at_add, {'x': 'g', 'v': _PER_UPDATE.format('')}, 'linear')
# multiply: y = x * (product of the updates at each element).
_update(updates.at_multiply,
        {'x': 'rt.at_multiply(rt.materialize(g, ans), idx, v)',
         'v': _PER_UPDATE.format(' * x[idx] * rt.at_others(x, idx, v)')},
        {'x': 'rt.at_multiply(t, idx, v)',
         'v': 'rt.at_add(xp.zeros_like(ans), idx, t * x[idx] * rt.at_others(x, idx, v))'})
# min/max: the cotangent goes to the inputs equal to the result.
for _fn, _op in ((updates.at_min, 'min'), (updates.at_max, 'max')):
    _update(_fn, {'x': f'g * {_share(_op, 0)}', 'v': _PER_UPDATE.format(f' * {_share(_op, 1)}')},
            {'x': f't * {_share(_op, 0)}',
             'v': f'rt.at_add(xp.zeros_like(ans), idx, t * {_share(_op, 1)})'})

# ---- helpers of the rules ----
nondifferentiable('rt_at_share', 'x, idx, v, y, op, which', targets=(updates.at_share,),
                  impl='rt.at_share')
# Its derivative is symmetric in the updates, so one helper, rt.at_others_pairs,
# is its JVP and (summed to v's shape) its VJP. That helper has no record:
# third derivatives of .multiply() in v are refused as first-order only.
primitive('rt_at_others', 'x, idx, v',
          {'v': 'rt.sum_to(rt.at_others_pairs(g, x, idx, v), rt.shape(v))'},
          jvp={'v': 'rt.at_others_pairs(t, x, idx, v)'}, nondiff=('x', 'idx'),
          targets=(updates.at_others,), impl='rt.at_others', family='adjoint')

# vmap: one example at a time (rt.batch_loop), until vectorized rules exist.
batching(loop=('at_set', 'at_add', 'at_multiply', 'at_min', 'at_max', 'rt_at_share',
               'rt_at_others'))

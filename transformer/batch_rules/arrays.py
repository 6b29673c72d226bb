"""Batching rules of element-wise operations, reductions and products."""
import string

from .. import nodes as n
from ..ir import Op
from ..batch import SCALAR, UNKNOWN, Info, container
from .core import (STATIC, _axes_of, _data_param, _int, _int_literal, _is_none, _shifted,
                   _with_args, batched, elementwise_of, loop, prim_call, rule)


@rule('elementwise')
def elementwise(b, op, rhs):
    if any(b.info(op.inputs.get(p)).batched for p in STATIC if p in op.inputs):
        return loop(b, op, rhs)
    operands = [node for p, node in op.inputs.items()
                if p not in STATIC and not _is_none(node)]
    return elementwise_of(b, rhs, operands)


# How a reduction's `initial` joins its result, and what stands for it meanwhile.
_INITIAL = {'sum': ('add', 0), 'prod': ('multiply', 1), 'max': ('maximum', '-'),
            'amax': ('maximum', '-'), 'min': ('minimum', '+'), 'amin': ('minimum', '+')}


@rule('reduce', 'scan', 'arg')
def reduction(b, op, rhs):
    init = op.inputs.get('initial')
    if op.prim.name in _INITIAL and batched(b, init) and b.info(init).rank == 0:
        return _initial_per_example(b, op, rhs, init)
    kind = op.prim.batch
    data = _data_param(op)
    x = op.inputs[data]
    info = b.info(x)
    axes = _axes_of(op.inputs.get('axis'))
    keep = op.inputs.get('keepdims')
    keepdims = bool(keep.value) if isinstance(keep, n.Constant) else (False if keep is None
                                                                      else 'dynamic')
    if op.prim.name == 'argsort' and 'axis' not in _given(rhs, op):
        axes = (-1,)
    rank = _reduced_rank(kind, info.rank, axes, keepdims)
    others = [node for p, node in op.inputs.items() if p != data]
    if not info.batched:
        return (loop(b, op, rhs) if batched(b, *others) else (rhs, Info(False, rank)))
    mask = op.inputs.get('where')
    if batched(b, mask) and info.rank is not None and b.info(mask).rank is not None:
        # a where= mask per example broadcasts against its example once lifted
        rhs = _with_args(rhs, op, {'where': b.lift(mask, b.info(mask), info.rank)})
        others = [node for p, node in op.inputs.items() if p not in (data, 'where')]
    if batched(b, *others) or keepdims == 'dynamic':
        return loop(b, op, rhs, rank)
    if axes == 'dynamic':
        if kind != 'reduce':            # (axis None flattens the example: run per example)
            return loop(b, op, rhs, rank)
        # an axis known only at run time; None there stands for every example axis
        axis = b.tmp(n.call('rt.shift_axis', [op.inputs['axis'], x]), UNKNOWN, '_axis')
        return _with_args(rhs, op, {'axis': axis}), Info(True, rank)
    if axes is None and kind == 'reduce' and info.rank is not None:
        new_axis = n.const(tuple(range(1, info.rank + 1)))
        return _with_args(rhs, op, {'axis': new_axis}), Info(True, rank)
    if axes is None:                      # over the flattened example
        flat = b.tmp(prim_call('reshape', [x, n.tuple_([b.size(), n.const(-1)])]),
                     Info(True, 1))
        if keepdims is True:
            return loop(b, op, rhs, rank)
        return _with_args(rhs, op, {data: flat, 'axis': n.const(1)}), Info(True, rank)
    new_axis = n.const(_shifted(axes)[0]) if len(axes) == 1 and _int(op.inputs['axis']) \
        is not None else n.const(_shifted(axes))
    return _with_args(rhs, op, {'axis': new_axis}), Info(True, rank)


def _initial_per_example(b, op, rhs, init):
    """NumPy takes one number as `initial`: one per example joins the result
    after (added, multiplied, or the max or min taken, as JAX joins it)."""
    join, inf = _INITIAL[op.prim.name]        # the identity, or an infinity's sign
    stand_in = n.const(inf) if isinstance(inf, int) else n.UnaryOp(
        op=n.USub() if inf == '-' else n.UAdd(), operand=n.dotted('xp.inf'))
    inner = _with_args(rhs, op, {'initial': stand_in})
    value, info = reduction(b, Op('prim', op.prim, dict(op.inputs, initial=stand_in), op.label),
                            inner)
    if info.rank is None:
        return loop(b, op, rhs)
    # (an unbatched result broadcasts against the lifted initial values)
    result = b.tmp(value, info)
    return prim_call(join, [result, b.lift(init, b.info(init), info.rank)]), Info(True, info.rank)


def _given(rhs, op):
    if not isinstance(rhs, n.Call):
        return set()
    return set(op.prim.params[:len(rhs.args)]) | {k.arg for k in rhs.keywords}


def _reduced_rank(kind, rank, axes, keepdims):
    if axes is None and keepdims is False and kind in ('reduce', 'arg'):
        return 0                            # every axis: a number, whatever the rank
    if rank is None or axes == 'dynamic' or keepdims == 'dynamic':
        return None
    if kind == 'scan':
        return 1 if axes is None else rank
    if keepdims:
        return rank
    if axes is None:
        return 0
    return rank - len(axes)



@rule('fft_axes')
def fft_axes(b, op, rhs):
    """numpy.fft's n-dimensional transforms (fft2, fftn and their inverses)
    at literal axes: those of the example, shifted past the batch axis;
    axes=None with s=None (every axis) is every example axis. Otherwise,
    per example."""
    info = b.info(op.inputs['a'])
    if not info.batched or batched(b, *(node for p, node in op.inputs.items() if p != 'a')):
        return loop(b, op, rhs, info.rank)
    given = op.inputs.get('axes')
    axes = _axes_of(given) if 'axes' in op.inputs else op.prim.signature.parameters['axes'].default
    size = op.inputs.get('s')
    if axes == 'dynamic' or not (_is_none(size) or isinstance(size, (n.Tuple, n.Constant))):
        return loop(b, op, rhs, info.rank)
    if axes is None and _is_none(size):
        if info.rank is None:
            return loop(b, op, rhs, info.rank)
        axes = tuple(range(info.rank))
    # axes past the example's own (NumPy's error, per example) must not reach
    # the batch axis
    count = len(axes) if axes is not None else len(size.elts) if isinstance(size, n.Tuple) \
        else len(size.value) if isinstance(size.value, tuple) else None
    low = min(axes) if axes else -(count or 0)
    if info.rank is None or count is None or count > info.rank or low < -info.rank:
        return loop(b, op, rhs, info.rank)
    if axes is None:                # the last len(s) axes: counted from the end, as they are
        return rhs, Info(True, info.rank)
    return _with_args(rhs, op, {'axes': n.const(_shifted(axes))}), Info(True, info.rank)

@rule('norm')
def norm(b, op, rhs):
    x, info = op.inputs['x'], b.info(op.inputs['x'])
    axes = _axes_of(op.inputs.get('axis'))
    ord_ = op.inputs.get('ord')
    keep = op.inputs.get('keepdims')
    keepdims = bool(keep.value) if isinstance(keep, n.Constant) else False
    rank = _reduced_rank('reduce', info.rank, axes, keepdims)
    if not info.batched or batched(b, ord_, keep, op.inputs.get('axis')):
        return loop(b, op, rhs, rank)
    if axes is None and _is_none(ord_) and not keepdims:   # the 2-norm of the flat example
        flat = b.tmp(prim_call('reshape', [x, n.tuple_([b.size(), n.const(-1)])]),
                     Info(True, 1))
        return _with_args(rhs, op, {'x': flat, 'axis': n.const(1)}), Info(True, 0)
    if axes is None and info.rank in (1, 2):      # a vector or matrix norm of the example
        axes = tuple(range(info.rank))
    if not isinstance(axes, tuple):
        return loop(b, op, rhs, rank)
    axis = n.const(_shifted(axes)[0]) if len(axes) == 1 else n.const(_shifted(axes))
    return _with_args(rhs, op, {'axis': axis}), Info(True, rank)


@rule('count')
def count(b, op, rhs):
    """rt.count depends on the shape only: the same for every example."""
    x, info = op.inputs['a'], b.info(op.inputs['a'])
    if not info.batched:
        return rhs, SCALAR
    axes = _axes_of(op.inputs.get('axis'))
    if axes is None:
        axes = tuple(range(info.rank)) if info.rank is not None else 'dynamic'
    if axes == 'dynamic':
        return loop(b, op, rhs, 0)
    return prim_call('count', [x, n.const(_shifted(axes))]), SCALAR


# ---- products ----

@rule('matmul')
def matmul(b, op, rhs):
    p1, p2 = op.prim.params[:2]
    x1, x2 = op.inputs[p1], op.inputs[p2]
    i1, i2 = b.info(x1), b.info(x2)
    r1, r2 = i1.rank, i2.rank
    rank = None
    if r1 is not None and r2 is not None:
        if op.prim.name == 'dot' and (r1 == 0 or r2 == 0):
            rank = max(r1, r2)
        elif op.prim.name == 'dot' and r2 >= 2:
            rank = r1 + r2 - 2
        else:
            rank = _matmul_rank(r1, r2)
    if not (i1.batched or i2.batched):
        return rhs, Info(False, rank)
    if op.prim.name == 'dot' and r1 is not None and r2 is not None and min(r1, r2) == 0:
        return elementwise_of(b, prim_call('multiply', [x1, x2]), [x1, x2])
    if op.prim.name == 'dot' and rank is not None and max(r1, r2) > 2:   # last with second-last
        return _contraction(x1, i1, x2, i2, [(r1 - 1, max(r2 - 2, 0))]), Info(True, rank)
    if rank is None or min(r1, r2) == 0:
        return loop(b, op, rhs, rank)
    return _matmul(b, x1, i1, x2, i2, rank), Info(True, rank)


def _matmul_rank(r1, r2):
    if min(r1, r2) < 1:
        return None
    if r1 == 1 and r2 == 1:
        return 0
    return max(r1, r2) - (min(r1, r2) == 1)


def _matmul(b, x1, i1, x2, i2, rank):
    """Per-example x1 @ x2 for ranks >= 1, as one product over the batch."""
    r1, r2 = i1.rank, i2.rank
    if min(r1, r2) >= 2:               # stacks of matrices: the batch is one more stack axis
        return prim_call('matmul', [b.lift(x1, i1, max(r1, r2)), b.lift(x2, i2, max(r1, r2))])
    if not i2.batched and r2 <= 2:     # x1 batched, a vector: rows of the batch (x2 == 1-D too)
        return prim_call('matmul', [x1, x2])
    if not i1.batched and r1 == 1 and r2 >= 2:            # v @ X: v is promoted per example
        return prim_call('matmul', [x1, x2])
    if not i1.batched and r2 == 1 and r1 <= 2:    # W @ x (v @ x) per example: X @ W.T (X @ v)
        t = x1 if r1 == 1 else b.tmp(prim_call('transpose', [x1]), Info(False, 2))
        return prim_call('matmul', [x2, t])
    return _einsum_product(b, x1, i1, x2, i2)


def _einsum_product(b, x1, i1, x2, i2):
    """Any other matmul per example, written as one einsum over the batch."""
    r1, r2 = i1.rank, i2.rank
    letters = iter('abcdefghijklmnopqrstuvwxy')
    lead = max(r1, r2) - 2 if min(r1, r2) >= 2 else max(r1, r2) - 2 if max(r1, r2) > 2 else 0
    stack = [next(letters) for _ in range(max(lead, 0))]
    m, k, p = next(letters), next(letters), next(letters)
    s1 = (stack[len(stack) - (r1 - 2):] if r1 > 2 else []) + ([m, k] if r1 >= 2 else [k])
    s2 = (stack[len(stack) - (r2 - 2):] if r2 > 2 else []) + ([k, p] if r2 >= 2 else [k])
    out = stack + ([m] if r1 >= 2 else []) + ([p] if r2 >= 2 else [])
    z = 'z'
    spec = (z * i1.batched + ''.join(s1) + ',' + z * i2.batched + ''.join(s2) + '->'
            + z + ''.join(out))
    return prim_call('einsum', [n.const(spec), x1, x2])


@rule('einsum')
def einsum(b, op, rhs):
    spec_node, operands = op.inputs['subscripts'], list(op.inputs['operands'].elts)
    infos = [b.info(x) for x in operands]
    if not isinstance(spec_node, n.Constant) or not isinstance(spec_node.value, str):
        return loop(b, op, rhs)
    spec = spec_node.value.replace(' ', '')
    inputs, output = _einsum_output(spec)
    rank = len(output) if '...' not in output else None
    if not any(i.batched for i in infos):
        return rhs, Info(False, rank)
    used = set(spec)
    z = next(c for c in string.ascii_letters if c not in used)
    new = ','.join(z + s if i.batched else s for s, i in zip(inputs, infos)) + '->' + z + output
    call = _with_args(rhs, op, {})
    call.args = [n.const(new)] + call.args[1:]
    return call, Info(True, rank)


def _einsum_output(spec):
    if '->' in spec:
        left, out = spec.split('->')
        return left.split(','), out
    left = spec.split(',')
    letters = [c for c in spec.replace('...', '') if c.isalpha()]
    out = ''.join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return left, ('...' if '...' in spec else '') + out


@rule('vdot', 'inner', 'outer')
def product_by_einsum(b, op, rhs):
    x1, x2 = (op.inputs[p] for p in op.prim.params[:2])
    i1, i2 = b.info(x1), b.info(x2)
    name = op.prim.name
    r1, r2 = i1.rank, i2.rank
    known = r1 is not None and r2 is not None
    rank = {'vdot': 0, 'outer': 2}.get(name, (r1 + r2 - 2 if known and min(r1, r2) >= 1 else
                                               max(r1, r2) if known else None))
    if not (i1.batched or i2.batched):
        return rhs, Info(False, rank)
    if not known:
        return loop(b, op, rhs, rank)
    if name in ('vdot', 'outer'):
        x1 = _flat(b, x1, i1)
        if name == 'vdot':            # vdot conjugates its first operand
            x1 = b.tmp(prim_call('conjugate', [x1]), Info(i1.batched, 1))
        x2 = _flat(b, x2, i2)
        spec = ('zk,zk->z' if name == 'vdot' else 'zi,zj->zij')
        s1, s2 = spec.split('->')[0].split(',')
        out = spec.split('->')[1]
        spec = f'{s1 if i1.batched else s1[1:]},{s2 if i2.batched else s2[1:]}->{out}'
        return prim_call('einsum', [n.const(spec), x1, x2]), Info(True, rank)
    if min(r1, r2) == 0:
        return elementwise_of(b, prim_call('multiply', [x1, x2]), [x1, x2])
    a = 'abcdefgh'[:r1 - 1]
    c = 'ijklmnop'[:r2 - 1]
    spec = f'{"z" * i1.batched}{a}y,{"z" * i2.batched}{c}y->z{a}{c}'
    return prim_call('einsum', [n.const(spec), x1, x2]), Info(True, rank)


def _flat(b, x, info):
    if info.batched:
        return b.tmp(prim_call('reshape', [x, n.tuple_([b.size(), n.const(-1)])]), Info(True, 1))
    if info.rank == 1:
        return x
    return b.tmp(prim_call('ravel', [x]), Info(False, 1))


@rule('solve')
def solve(b, op, rhs):
    """Stacks of systems broadcast like matmul: batched operands are lifted to a
    common rank; a vector right-hand side per example becomes a column."""
    a, v = op.inputs['a'], op.inputs['b']
    ia, iv = b.info(a), b.info(v)
    rank = iv.rank if iv.rank == 1 or ia.rank is None or iv.rank is None else \
        max(ia.rank, iv.rank)
    if not (ia.batched or iv.batched):
        return rhs, Info(False, rank)
    if ia.rank is None or iv.rank is None or ia.rank < 2:
        return loop(b, op, rhs, rank)
    if iv.rank == 1:                      # a vector per example: a column of rank(a)
        col = b.tmp(n.Subscript(value=b.lift(v, iv, ia.rank - 1),
                                slice=n.tuple_([n.Constant(value=Ellipsis, kind=None),
                                                n.const(None)]), ctx=n.Load()),
                    Info(iv.batched, ia.rank))
        x = b.tmp(prim_call('solve', [a, col]), Info(True, ia.rank))
        return n.Subscript(value=x, slice=n.tuple_([n.Constant(value=Ellipsis, kind=None),
                                                    n.const(0)]), ctx=n.Load()), \
            Info(True, ia.rank - 1)
    common = max(ia.rank, iv.rank)
    return prim_call('solve', [b.lift(a, ia, common), b.lift(v, iv, common)]), Info(True, common)


@rule('leading')
def leading(b, op, rhs):
    """Ops that act on the trailing (core) axes and broadcast over leading ones
    (inv, det, cholesky, tril, ...): a batched operand works as it is."""
    data = op.inputs[_data_param(op)]
    info = b.info(data)
    others = [node for p, node in op.inputs.items() if p != _data_param(op)]
    rank = RANKS.get(op.prim.name, lambda r: r)(info.rank) if info.rank is not None else None
    if batched(b, *others):
        return loop(b, op, rhs, rank)
    if isinstance(rank, tuple):
        return rhs, container(tuple(Info(info.batched, r) for r in rank))
    return rhs, Info(info.batched, rank)


RANKS = {'det': lambda r: r - 2, 'slogdet': lambda r: (r - 2, r - 2)}


@rule('tensordot')
def tensordot(b, op, rhs):
    """np.tensordot per example as one einsum with a batch letter."""
    x1, x2 = op.inputs['a'], op.inputs['b']
    i1, i2 = b.info(x1), b.info(x2)
    axes = _int_literal(op.inputs.get('axes') or n.const(2), b)
    pairs = _tensordot_pairs(axes, i1.rank, i2.rank)
    rank = None if pairs is None else i1.rank + i2.rank - 2 * len(pairs)
    if not (i1.batched or i2.batched):
        return rhs, Info(False, rank)
    if pairs is None:
        return loop(b, op, rhs, rank)
    return _contraction(x1, i1, x2, i2, pairs), Info(True, rank)


def _contraction(x1, i1, x2, i2, pairs):
    """x1 and x2 contracted over (axis of x1, axis of x2) `pairs`, free axes of
    x1 then of x2 (tensordot's order), as one einsum with a batch letter."""
    letters = iter('abcdefghijklmnopqrstuvwxy')
    t1 = [next(letters) for _ in range(i1.rank)]
    t2 = [next(letters) for _ in range(i2.rank)]
    for p, q in pairs:
        t2[q] = t1[p]
    out = [c for k, c in enumerate(t1) if k not in {p for p, _ in pairs}] + \
        [c for k, c in enumerate(t2) if k not in {q for _, q in pairs}]
    spec = f'{"z" * i1.batched}{"".join(t1)},{"z" * i2.batched}{"".join(t2)}->z{"".join(out)}'
    return prim_call('einsum', [n.const(spec), x1, x2])


def _tensordot_pairs(axes, r1, r2):
    """tensordot's axes (N, or two sequences) as (axis of a, axis of b) pairs."""
    if r1 is None or r2 is None or axes is None:
        return None
    if isinstance(axes, int):
        return [(r1 - axes + k, k) for k in range(axes)]
    a, c = ((x,) if isinstance(x, int) else x for x in axes)
    return [(p % r1, q % r2) for p, q in zip(a, c)]

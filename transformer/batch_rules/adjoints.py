"""Batching rules of the runtime's adjoint helpers (vmap of grad)."""
import string

from .. import nodes as n
from ..batch import SCALAR, UNKNOWN, Info, NodeInfo, PullbackInfo, container, join
from .core import (_apply, _axes_of, _data_param, _int, _is_none, _mark_batched, _shifted,
                   _with_args, batched, elementwise_of, literal, loop, loop_call, prim_call,
                   rewrite, rule)
from .arrays import _einsum_output, _matmul
from .shapes import _all_batched, _elements, _shape_rank, _stack_as
from .indexing import (_advanced_ok, _batched_mask, _gather, _index, _index_rank, _item_info,
                       _past_batch)


@rule('split_vjp')
def split_vjp(b, op, rhs):
    """rt.split_vjp(g, ary, ans, axis): the pieces' adjoints, each made full
    and batched (zeros for a zero), joined along the axis past the batch axis."""
    g, ary, ans = op.inputs['cot'], op.inputs['ary'], op.inputs['y']
    gi, ai, yi = b.info(g), b.info(ary), b.info(ans)
    axis = _axes_of(op.inputs.get('axis') or n.const(0))
    if not (gi.batched or ai.batched or yi.batched):
        return rhs, Info(False, ai.rank)
    pieces = list(yi.elts) if isinstance(yi.elts, tuple) else None
    if pieces is None or not isinstance(axis, tuple) or len(axis) != 1 or ai.rank is None \
            or any(p.rank is None or p.elts is not None for p in pieces) \
            or not (isinstance(gi.elts, tuple) and len(gi.elts) == len(pieces)
                    or gi.elts is None and not gi.batched):
        return loop(b, op, rhs, ai.rank)
    full = []
    for k, p in enumerate(pieces):
        part = b.tmp(n.call('rt.item', [g, n.const(k)]),
                     gi.elts[k] if isinstance(gi.elts, tuple) else SCALAR, '_piece')
        pk = b.tmp(n.Subscript(value=ans, slice=n.const(k), ctx=n.Load()), p, '_elt')
        pi = b.info(part)
        if pi.elts is not None or pi.rank is None:
            return loop(b, op, rhs, ai.rank)
        full.append(_materialize(b, part, pi, b.broadcast(pk, p), Info(True, p.rank)))
    joined = b.tmp(prim_call('concatenate', [n.List(elts=full, ctx=n.Load())],
                             [('axis', n.const(_shifted(axis)[0]))]), Info(True, ai.rank))
    return n.call('rt.cast_like', [joined, ary]), Info(True, ai.rank)


def einsum_vjp(b, rhs):
    """rt.einsum_vjp(g, spec, operands, ans) (first order, no record): with
    every operand batched (unbatched ones broadcast), the same helper with a
    batch letter on every term."""
    g, spec, operands, ans = (list(rhs.args) + [None] * 4)[:4]
    gi, info, ai = b.info(g), b.info(operands), b.info(ans)
    elts = _elements(b, operands, info)
    out = container(tuple(Info(True, e.rank) for e in elts)) if isinstance(info.elts, tuple) \
        else Info(True, None)
    if rhs.keywords or not isinstance(spec, n.Constant) or not isinstance(spec.value, str) \
            or not isinstance(info.elts, tuple) or ai.rank is None or gi.elts is not None:
        return loop_call(b, rhs.func, rhs.args, rhs.keywords, None)[0], out
    inputs, output = _einsum_output(spec.value.replace(' ', ''))
    z = next(c for c in string.ascii_letters if c not in spec.value)
    new = ','.join(z + term for term in inputs) + '->' + z + output
    full = b.broadcast(_materialize(b, g, gi, ans, ai), Info(gi.batched or ai.batched, ai.rank))
    return n.call(rhs.func, [full, n.const(new), _all_batched(b, operands, info, elts),
                             b.broadcast(ans, ai)]), out


@rule('seed')
def seed(b, op, rhs):
    info = b.info(op.inputs['out'])
    if not info.batched:
        return rhs, SCALAR
    if info.rank not in (0, None):
        b.fail('grad requires a scalar output per example; this one has rank '
               f'{info.rank}')
    if info.rank is None:             # checked on one example (its rank is seen then)
        example = b.tmp(n.call('rt.first_example', [op.inputs['out'], n.const(0)]),
                        Info(False, None), '_example')
        return n.call('rt.seed', [example] + rhs.args[1:], rhs.keywords), SCALAR
    return n.const(1.0), SCALAR


@rule('unbroadcast')
def unbroadcast(b, op, rhs):
    """rt.unbroadcast(g, x, y): g summed to x's shape. Batched, it is always
    made full (x's rank), so the result's rank is known."""
    g, x, y = (op.inputs[p] for p in ('cot', 'x', 'y'))
    gi, xi, yi = b.info(g), b.info(x), b.info(y)
    if not (gi.batched or xi.batched or yi.batched):
        return rhs, Info(False, xi.rank if xi.rank == yi.rank == gi.rank else None)
    if yi.rank is None:               # (its result stays broadcastable: rank not known)
        return loop(b, op, rhs, None)
    full = _materialize(b, g, gi, y, yi)
    if not (gi.batched or yi.batched):      # only x batched: its examples share one shape
        example = n.call('rt.first_example', [x, n.const(0)])
        return n.call('rt.unbroadcast', [full, example, y]), Info(False, xi.rank)
    return _sum_to_example_of(b, full, x, xi), Info(True, xi.rank)


def _sum_to_example_of(b, full, x, xi):
    """Batched `full` summed, example by example, to the shape of (an example
    of) x, as x's adjoint: real where x is (rt.sum_to_batched)."""
    shape = n.call('rt.example_shape' if xi.batched else 'rt.shape', [x])
    return n.call('rt.sum_to_batched', [full, shape, x])


def _materialize(b, g, gi, y, yi):
    """g broadcast to the (batched) shape of y (both may or may not be batched)."""
    if not (gi.batched or yi.batched):
        return b.tmp(n.call('rt.materialize', [g, y]), Info(False, yi.rank), '_full')
    if gi.batched and gi.rank is None:             # seen at run time
        g = b.tmp(n.call('rt.lift_batched', [g, n.const(yi.rank)]), Info(True, yi.rank))
        gi = Info(True, yi.rank)
    g = b.lift(g, gi, yi.rank)
    target = b.broadcast(y, yi) if not yi.batched else y
    return b.tmp(n.call('rt.materialize', [g, target]), Info(True, yi.rank), '_full')


@rule('materialize')
def materialize(b, op, rhs):
    """rt.materialize(g, y) / rt.dense(t, x): g broadcast to y's shape."""
    g, y = (op.inputs[p] for p in op.prim.params[:2])
    gi, yi = b.info(g), b.info(y)
    if not (gi.batched or yi.batched):
        return rhs, (Info(False, yi.rank) if yi.elts is None and yi.item is None else yi)
    if op.prim.name == 'dense' and yi.elts is None and yi.item is None \
            and type(gi) is Info and isinstance(gi.elts, (tuple, dict)):
        # a container tangent of a value whose form shows at run time (a
        # record's tuple result): x has t's structure, so leaf by leaf, and a
        # leaf whose tangent is the unbatched zero (an integer's) stays unbatched
        flags = _batched_flags(gi, gi)
        if flags is not None:
            like = _with_parts(gi, lambda k, e: Info(yi.batched, None))
            return n.call('rt.dense_batched', [g, y, literal(flags), n.const(yi.batched),
                                               b.size()]), _dense_info(like, flags, yi.batched)
    if op.prim.name == 'dense' and yi.elts is None and yi.item is None:
        # the zero 0.0 may stand for a value of any rank: ranks are read at run time
        return n.call('rt.dense_batched', [g, y, n.const(gi.batched), n.const(yi.batched),
                                           b.size()]), _dense_info(yi, True, True)
    if op.prim.name == 'dense' and (yi.elts is not None or yi.item is not None):
        # a container: leaf by leaf
        flags = (_batched_flags(gi, yi), _batched_flags(yi, yi))
        if None not in flags:
            return n.call('rt.dense_batched', [g, y, literal(flags[0]), literal(flags[1]),
                                               b.size()]), _dense_info(yi, *flags)
    if yi.elts is not None or yi.item is not None:    # a container: shaped like y
        call, _ = loop(b, op, rhs)
        return call, _mark_batched(yi)
    if yi.rank == 0 and gi.batched:   # a number per example: g is one already
        return g, Info(gi.batched, gi.rank)
    if yi.rank == 0:          # g shared, y batched: g as an array of y's (B,) shape
        return n.call('rt.materialize', [g, y]), Info(True, 0)
    if gi.rank is None or yi.rank is None:
        return loop(b, op, rhs, yi.rank)
    target = b.broadcast(y, yi)
    return n.call('rt.materialize', [b.lift(g, gi, yi.rank), target]), Info(True, yi.rank)


def _dense_info(info, t_flags, x_flags):
    """The facts of rt.dense_batched(t, x, t_flags, x_flags) for x of facts
    `info`: batched where t or x is, leaf by leaf (a leaf batched in neither
    is rt.dense's, unbatched; an integer's is the zero)."""
    if info.kind in ('i', 'b'):
        return SCALAR                 # an integer's tangent: the zero 0.0, as it is
    if not any(isinstance(f, (tuple, dict)) for f in (t_flags, x_flags)):
        return _mark_batched(info) if t_flags or x_flags else info
    return _with_parts(info, lambda k, e: _dense_info(e, _flag(t_flags, k), _flag(x_flags, k)))


def _flag(flags, key):
    return flags[key] if isinstance(flags, (tuple, dict)) else flags


def _with_parts(info, part):
    """The facts of a container like `info` whose element k has the facts
    part(k, info of element k)."""
    keys = info.elts if isinstance(info.elts, dict) else range(len(info.elts))
    parts = {k: part(k, info.elts[k]) for k in keys}
    if isinstance(info, NodeInfo):
        return info.with_elts(list(parts.values()))
    if isinstance(info, PullbackInfo):
        return PullbackInfo(parts[1], info.backward, info.output)
    return container(parts if isinstance(info.elts, dict) else tuple(parts.values()))


def _batched_flags(info, shape_info):
    """Whether each leaf of a value is batched, shaped like the container
    `shape_info` (one bool where `info` is not a container, as for the zero
    0.0 or a value whose structure is seen at run time); None for a
    structure that does not match."""
    if shape_info.elts is None or info.elts is None:
        # one flag for all leaves (a list of unknown length: every element of a
        # batched list is batched, as the append rule keeps them)
        return bool(info.batched)
    if isinstance(shape_info.elts, tuple):
        if not isinstance(info.elts, tuple) or len(info.elts) != len(shape_info.elts):
            return None
        parts = tuple(_batched_flags(e, s) for e, s in zip(info.elts, shape_info.elts))
    else:
        if not isinstance(info.elts, dict) or set(info.elts) != set(shape_info.elts):
            return None
        parts = {k: _batched_flags(info.elts[k], s) for k, s in shape_info.elts.items()}
    values = parts if isinstance(parts, tuple) else tuple(parts.values())
    return None if None in values else parts


@rule('shifted_axis_helper')
def shifted_axis_helper(b, op, rhs):
    """Helpers with an `axis` parameter that only read shapes (sum_vjp,
    keep_dims, extremum_vjp): with every operand batched, the reduction-shaped
    ones lifted to the reduced rank, the same helper with the axis shifted."""
    params = [p for p in op.prim.params if p not in ('axis', 'keepdims')]
    nodes = [op.inputs.get(p) for p in params]
    infos = [b.info(x) for x in nodes]
    axes = _axes_of(op.inputs.get('axis'))
    keep = op.inputs.get('keepdims')
    keepdims = bool(keep.value) if isinstance(keep, n.Constant) else 'dynamic' if keep else False
    xinfo = b.info(op.inputs['x'])
    if op.prim.name != 'rt_extremum_vjp' and (axes is None or keepdims is True):
        return nodes[0], infos[0]           # they return their first argument as it is
    if not any(i.batched for i in infos):
        return rhs, Info(False, xinfo.rank)
    if axes == 'dynamic' or keepdims == 'dynamic' or None in [i.rank for i in infos]:
        return loop(b, op, rhs, None)             # (results may stay broadcastable)
    reduced = xinfo.rank if keepdims else (0 if axes is None else xinfo.rank - len(axes))
    replace = {'axis': n.const(tuple(range(1, xinfo.rank + 1)) if axes is None
                               else _shifted(axes))}
    for p, x, i in zip(params, nodes, infos):
        if p in ('cot', 'y'):               # reduction-shaped: lifted to the reduced rank
            replace[p] = b.lift(b.broadcast(x, i), Info(True, i.rank), reduced)
        else:
            replace[p] = b.broadcast(x, i)
    return _with_args(rhs, op, replace), Info(True, xinfo.rank)


@rule('matmul_vjp')
def matmul_vjp(b, op, rhs):
    """rt.matmul_vjp / dot_vjp per example, expanded into the products they
    compute, which are then batched like any product; cast, as they are, to
    the operand's dtype (the real part for a real operand)."""
    g, x1, x2, ans, which = (op.inputs[p] for p in op.prim.params[:5])
    infos = [b.info(v) for v in (g, x1, x2, ans)]
    r1, r2, ra = infos[1].rank, infos[2].rank, infos[3].rank
    w = _int(which)
    mine = [r1, r2][w] if w is not None else None
    if not any(i.batched for i in infos):
        return rhs, Info(False, mine)
    if w is None or None in (r1, r2, ra) or min(r1, r2) == 0 or \
            (max(r1, r2) > 2 and (min(r1, r2) < 2 or op.prim.name == 'rt_dot_vjp')):
        return loop(b, op, rhs, mine)
    out, info = _matmul_vjp_products(b, g, x1, x2, ans, infos, w)
    return rewrite(b, prim_call('rt_cast_like', [b.tmp(out, info), (x1, x2)[w]]))


def _matmul_vjp_products(b, g, x1, x2, ans, infos, w):
    """The batched products that matmul_vjp's adjoint of operand w is."""
    r1, r2, ra = infos[1].rank, infos[2].rank, infos[3].rank
    mine = [r1, r2][w]
    gfull = _materialize(b, g, infos[0], ans, infos[3])
    gi = Info(infos[0].batched or infos[3].batched, ra)
    other, oi = (x2, infos[2]) if w == 0 else (x1, infos[1])     # (ans is read for its shape)
    if max(r1, r2) > 2:                     # g @ x2^T or x1^T @ g, summed to the operand
        t = _apply(b, 'swapaxes', [other, n.const(-1), n.const(-2)])
        out = _apply(b, 'matmul', [gfull, t] if w == 0 else [t, gfull])
        return rewrite(b, prim_call('rt_sum_to', [out, _apply(b, 'rt_shape', [(x1, x2)[w]])]))
    if r1 == 1 and r2 == 1:                               # inner product: g * other
        return elementwise_of(b, prim_call('multiply', [gfull, other]), [gfull, other])
    if w == 0 and r2 == 1:                                # g (n) outer x2 (m)
        return _outer(b, gfull, gi, other, oi)
    if w == 1 and r1 == 1:                                # x1 (m) outer g (k)
        return _outer(b, other, oi, gfull, gi)
    if w == 0:                                            # g @ x2.T ; or x2 @ g for r1 == 1
        if r1 == 1:
            return _product(b, other, oi, gfull, gi, 1)
        t = _transposed(b, other, oi)
        return _product(b, gfull, gi, t, Info(oi.batched, 2), mine)
    if r2 == 1:                                           # x1.T @ g ; g @ x1 when x1 is 2-D
        return _product(b, gfull, gi, other, oi, 1)
    t = _transposed(b, other, oi)
    return _product(b, t, Info(oi.batched, 2), gfull, gi, mine)


@rule('outer_vjp')
def outer_vjp(b, op, rhs):
    """rt.outer_vjp of vectors: g @ b or a @ g, batched like any product."""
    g, x1, x2, ans, which = (op.inputs[p] for p in op.prim.params[:5])
    infos = [b.info(v) for v in (g, x1, x2, ans)]
    w = _int(which)
    if not any(i.batched for i in infos):
        return rhs, Info(False, [infos[1].rank, infos[2].rank][w] if w is not None else None)
    if w is None or infos[1].rank != 1 or infos[2].rank != 1 or infos[0].rank is None:
        return loop(b, op, rhs, 1 if w is not None and infos[w + 1].rank == 1 else None)
    full = _materialize(b, g, infos[0], ans, infos[3])
    return rewrite(b, prim_call('matmul', [full, x2] if w == 0 else [x1, full]))


@rule('sum_to')
def sum_to(b, op, rhs):
    """rt.sum_to(g, target) with g batched: summed example by example."""
    g, target = op.inputs['cot'], op.inputs['target']
    gi, ti = b.info(g), b.info(target)
    rank = _shape_rank(b, target)
    if not (gi.batched or ti.batched):
        return rhs, Info(False, rank)
    if ti.batched:
        return loop(b, op, rhs, rank)
    return n.call('rt.sum_to_batched', [g, target]), Info(True, rank)


@rule('cumsum_vjp')
def cumsum_vjp(b, op, rhs):
    """rt.cumsum_vjp(g, a, y, axis) along a literal axis: the same helper on
    full batched operands, the axis shifted past the batch axis."""
    g, a, y = op.inputs['cot'], op.inputs['a'], op.inputs['y']
    gi, ai, yi = b.info(g), b.info(a), b.info(y)
    axes = _axes_of(op.inputs.get('axis'))
    if not (gi.batched or ai.batched or yi.batched):
        return rhs, Info(False, ai.rank)
    if not isinstance(axes, tuple) or yi.rank is None or gi.rank is None:
        return loop(b, op, rhs, ai.rank)
    full = b.broadcast(_materialize(b, g, gi, y, yi), Info(gi.batched or yi.batched, yi.rank))
    return _with_args(rhs, op, {'cot': full, 'a': b.broadcast(a, ai), 'y': b.broadcast(y, yi),
                                'axis': n.const(_shifted(axes)[0])}), Info(True, ai.rank)


@rule('like_first')
def like_first(b, op, rhs):
    """Helpers that read only the dtype of their other arguments (rt.cast_like):
    batched as their first."""
    info = b.info(op.inputs[_data_param(op)])
    return rhs, Info(info.batched, info.rank)


@rule('elementwise_vjp')
def elementwise_vjp(b, op, rhs):
    """rt.where_vjp / clip_vjp: element-wise masks of g, summed back to one
    operand. Batched: the same helper on operands lined up per example, with g
    and that operand made full (so the helper sums nothing), then the sum per
    example."""
    params = [p for p in op.prim.params if p != 'which']
    which = _int(op.inputs.get('which'))
    target = _elementwise_target(op, which)
    y, yi = op.inputs['y'], b.info(op.inputs['y'])
    nodes = {p: op.inputs[p] for p in params if not _is_none(op.inputs.get(p))}
    infos = {p: b.info(v) for p, v in nodes.items()}
    xi = infos.get(target, UNKNOWN)
    if not any(i.batched for i in infos.values()):
        return rhs, Info(False, xi.rank)
    if target is None or yi.rank is None or any(i.rank is None for i in infos.values()):
        return loop(b, op, rhs, xi.rank)
    Y = b.broadcast(y, yi)
    replace = {p: b.lift(v, infos[p], yi.rank) for p, v in nodes.items() if p != 'y'}
    for p in (target, 'cot'):
        replace[p] = _materialize(b, nodes[p], infos[p], Y, Info(True, yi.rank))
    replace['y'] = Y
    full = b.tmp(_with_args(rhs, op, replace), Info(True, yi.rank))
    return _sum_to_example_of(b, full, nodes[target], xi), Info(True, xi.rank)


def _elementwise_target(op, which):
    if op.prim.name == 'rt_where_vjp':
        return 'x'
    names = {0: ('a',), 1: ('a_min', 'min'), 2: ('a_max', 'max')}.get(which, ())
    given = [p for p in names if not _is_none(op.inputs.get(p))]
    return given[0] if given else None


@rule('array_vjp')
def array_vjp(b, op, rhs):
    """rt.array_vjp(g, x, y), the adjoint of x for y = np.array(x): of an
    array, g summed to x's shape; of a flat list of values of one rank, g cut
    into rows (rt.unstack, batched by its own rule)."""
    g, x, y = op.inputs['cot'], op.inputs['x'], op.inputs['y']
    gi, xi, yi = b.info(g), b.info(x), b.info(y)
    if not (gi.batched or xi.batched or yi.batched):
        return rhs, (Info(False, xi.rank) if xi.elts is None else xi)
    elts = list(xi.elts) if isinstance(xi.elts, tuple) else None
    ranks = {e.rank for e in elts} if elts else {None}
    if yi.rank is None or xi.item is not None or (elts is None and xi.elts is not None) or \
            elts is not None and (None in ranks or len(ranks) != 1 or
                                  any(e.elts is not None or e.item is not None for e in elts)):
        return loop(b, op, rhs, xi.rank)
    full = _materialize(b, g, gi, y, yi)
    if elts is None:                          # an array: summed to its shape
        if xi.rank is None:
            return loop(b, op, rhs, None)
        return _sum_to_example_of(b, full, x, xi), Info(True, xi.rank)
    return rewrite(b, prim_call('rt_unstack', [full, x, n.const(0)]))


@rule('join_vjp')
def join_vjp(b, op, rhs):
    """rt.concatenate_vjp / rt.unstack: g cut into the pieces of a list. With g
    full and every piece batched (unbatched ones are broadcast), the same
    helper with the axis shifted past the batch axis."""
    g, xs = op.inputs['cot'], op.inputs['xs' if 'xs' in op.inputs else 'tup']
    gi, info = b.info(g), b.info(xs)
    elts = _elements(b, xs, info)
    ranks = {e.rank for e in elts} if elts is not None else {None}
    helper, axis = op.prim.impl, _axes_of(op.inputs.get('axis') or n.const(0))
    if op.prim.name in ('rt_hstack_vjp', 'rt_vstack_vjp') and len(ranks) == 1:
        join, axis = _stack_as(op.prim.name[3:9], next(iter(ranks)))
        helper, axis = ('rt.unstack' if join == 'stack' else 'rt.concatenate_vjp'), (axis,)
    known = isinstance(info.elts, tuple)
    out = container(tuple(Info(True, e.rank) for e in elts)) if known else Info(True, None)
    y = op.inputs.get('y')
    yi = b.info(y) if y is not None else UNKNOWN
    if not (gi.batched or info.batched or yi.batched):
        return rhs, Info(False, None) if not known else container(
            tuple(Info(False, e.rank) for e in elts))
    whole = None if None in ranks or len(ranks) != 1 or axis == (None,) else \
        ranks.pop() + (helper == 'rt.unstack')
    full = None
    if whole is None:           # (pieces of unknown rank: the loop below)
        pass
    elif y is not None and yi.rank == whole:
        full = _materialize(b, g, gi, y, yi), gi.batched or yi.batched
    elif gi.rank == whole:
        full = g, gi.batched
    if not known or whole is None or axis in (None, 'dynamic') or full is None:
        return loop(b, op, rhs)[0], out
    args = [b.broadcast(full[0], Info(full[1], whole)), _all_batched(b, xs, info, elts)]
    if helper == 'rt.concatenate_vjp':
        args.append(b.broadcast(y, yi))
    return n.call(helper, args + [n.const(_shifted(axis)[0])]), out


def _transposed(b, x, info):
    if info.batched:
        return b.tmp(prim_call('swapaxes', [x, n.const(1), n.const(2)]), Info(True, 2))
    return b.tmp(prim_call('transpose', [x]), Info(False, 2))


def _product(b, x1, i1, x2, i2, rank):
    if not (i1.batched or i2.batched):
        return prim_call('matmul', [x1, x2]), Info(False, rank)
    return _matmul(b, x1, i1, x2, i2, rank), Info(True, rank)


def _outer(b, x1, i1, x2, i2):
    """x1 (i) outer x2 (j) per example, as a broadcasting product: NumPy's
    einsum does not vectorize this one well."""
    every = n.Slice(lower=None, upper=None, step=None)
    index = [every, n.deepcopy(every), n.const(None)] if i1.batched else [every, n.const(None)]
    column = b.tmp(n.Subscript(value=x1, slice=n.tuple_(index), ctx=n.Load()),
                   Info(i1.batched, 2))
    return elementwise_of(b, prim_call('multiply', [column, x2]), [column, x2])


@rule('item')
def item(b, op, rhs):
    """rt.item(g, key): an element of a container adjoint (or the zero); and
    rt.callee_adjoint(g, key), which is the zero past a tuple's end."""
    g, key = op.inputs['cot'], op.inputs['key']
    info = b.info(g)
    if _past_the_end(op, info, key):
        return n.const(0.0), SCALAR
    if info.elts is not None:
        return rhs, _item_info(info, key)
    if info.batched:                  # a container or an array: which one is seen at run time
        where = b.tmp(n.call('rt.batch_index', [key, g]), UNKNOWN, '_idx')
        return n.Call(func=n.deepcopy(rhs.func), args=[g, where], keywords=[]), Info(True, None)
    return rhs, UNKNOWN


@rule('getitem_vjp')
def getitem_vjp(b, op, rhs):
    g, x, idx = op.inputs['cot'], op.inputs['x'], op.inputs['idx']
    gi, xi = b.info(g), b.info(x)
    if xi.elts is not None:                          # a container: g goes in slot idx
        if batched(b, idx):
            b.fail('codax vmap: a batched index into a list or tuple')
        k = _int(idx)
        if isinstance(xi.elts, tuple) and k is not None:
            elts = [SCALAR] * len(xi.elts)
            elts[k] = gi
            return rhs, container(tuple(elts))
        if isinstance(xi.elts, dict) and isinstance(idx, n.Constant):
            return rhs, container({key: (gi if key == idx.value else SCALAR)
                                   for key in xi.elts})
        if isinstance(xi.elts, tuple):                # a slice: some slots, g's parts
            return rhs, container(tuple(Info(gi.batched, None) for _ in xi.elts))
        return rhs, Info(gi.batched, None)
    return _scatter(b, op, rhs, 'rt.getitem_vjp', g, x, idx, xi.rank)


def _past_the_end(op, info, key):
    """rt.callee_adjoint(_transpose) of a slot past a tuple's end: the zero."""
    return op.prim.name.startswith('rt_callee_adjoint') and isinstance(info.elts, tuple) \
        and _int(key) is not None and _int(key) >= len(info.elts)


@rule('item_transpose')
def item_transpose(b, op, rhs):
    """rt.item_transpose(g, cot, key): g put at `key` of a zero container, as
    getitem_vjp puts it where cot is known to be a container; else per example
    (cot may be the zero, or an array). rt.callee_adjoint_transpose likewise,
    the zero past a tuple's end."""
    if _past_the_end(op, b.info(op.inputs['x']), op.inputs['idx']):
        return n.const(0.0), SCALAR
    if b.info(op.inputs['x']).elts is not None:
        return getitem_vjp(b, op, rhs)
    return loop(b, op, rhs)


@rule('setitem_vjp')
def setitem_vjp(b, op, rhs):
    """The adjoints of x[idx] = v: g with the written part zeroed (x), or the
    written part of g summed to v's shape (v)."""
    g, y, idx = op.inputs['cot'], op.inputs['y'], op.inputs['idx']
    if b.info(y).elts is not None:                   # a container
        if batched(b, idx):
            b.fail('codax vmap: a batched index into a list or tuple')
        return rhs, (b.info(g) if op.prim.name == 'rt_setitem_vjp_x' else Info(b.info(g).batched,
                                                                              None))
    if op.prim.name == 'rt_setitem_vjp_x':
        return _scatter(b, op, rhs, 'rt.setitem_vjp_x', g, y, idx, b.info(y).rank)
    v, vi = op.inputs['v'], b.info(op.inputs['v'])
    if not batched(b, g, y, idx, v):
        return rhs, Info(False, vi.rank)
    part, pi = _scatter(b, op, rhs, None, g, y, idx, None)     # g[idx], per example
    if pi is None:
        return loop(b, op, rhs, vi.rank)
    # as unbatched: a write that a later one to the same element overwrote gets nothing
    part = n.call('rt.written_part', [part.value, part.slice])
    return _sum_to_example_of(b, b.tmp(part, pi), v, vi), Info(True, vi.rank)


def _scatter(b, op, rhs, helper, g, x, idx, rank):
    """helper(g, x, idx) for an index into array x, batched: g lifted to the
    selection (getitem_vjp) or to x (setitem_vjp_x), with the index applied
    past the batch axis, or with the batch position as one more index array
    where the index is batched. With no helper: g materialized to x, then
    indexed (the selection's (node, Info), or (None, None))."""
    gi, xi = b.info(g), b.info(x)
    nodes, parts = _index(b, idx)
    idx_batched = b.info(idx).batched or any(p.batched for p in parts)
    if helper is not None and not (gi.batched or xi.batched or idx_batched):
        return rhs, Info(False, rank)
    if _batched_mask(b, idx, parts):                  # per example (see _batched_mask)
        return loop(b, op, rhs, rank) if helper else (None, None)
    sel_rank, first = _index_rank(xi.rank, parts)
    if xi.rank is None or gi.rank is None or not (idx_batched or _advanced_ok(parts)) or \
            (idx_batched or gi.batched) and sel_rank is None or \
            idx_batched and (not first or nodes is None):
        return loop(b, op, rhs, rank) if helper else (None, None)
    target = b.broadcast(x, xi)
    if helper == 'rt.getitem_vjp':
        value = b.lift(g, gi, sel_rank)
    else:
        value = _materialize(b, g, gi, target, Info(True, xi.rank))
    if idx_batched:
        where = b.tmp(_gather(b, target, Info(True, xi.rank), nodes, parts).slice, UNKNOWN, '_idx')
    else:
        where = b.tmp(_past_batch(b, idx, nodes), UNKNOWN, '_idx')
    if helper is None:
        return n.Subscript(value=value, slice=where, ctx=n.Load()), Info(True, sel_rank)
    return n.call(helper, [value, target, where]), Info(True, rank)


@rule('add')
def adjoint_add(b, op, rhs):
    """rt.add(a, b): element-wise on arrays, leaf by leaf on containers. Where
    a pair of leaves may differ in rank per example (an adjoint that stays
    broadcastable, a value whose form only the run shows), batched leaves are
    first lined up at run time, as element-wise operands are."""
    x1, x2 = op.inputs['a'], op.inputs['b']
    i1, i2 = b.info(x1), b.info(x2)
    if i1.elts is None and i2.elts is None:
        return elementwise_of(b, rhs, [x1, x2])
    if i1.elts is not None and i2.elts is not None:
        info = join(i1, i2) if not (i1.batched or i2.batched) else _add_info(i1, i2)
    else:
        # one side a container, the other not: the zero, or (batched) a value
        # whose form only the run shows, every leaf of which is batched
        known, other = (i1, i2) if i1.elts is not None else (i2, i1)
        info = _batched_leaves(known) if other.batched else known
    if _lined_up(i1, i2):
        return rhs, info
    # Where a leaf's form only the run shows, rt.add of a batched zero (zeros
    # repeated along the batch) and an unbatched container is that container:
    # unbatched leaves are repeated along the batch first, so that every leaf
    # of the sum is batched, as its facts say
    x1, i1 = _repeated_leaves(b, x1, i1)
    x2, i2 = _repeated_leaves(b, x2, i2)
    rhs, info = _with_args(rhs, op, {'a': x1, 'b': x2}), _batched_leaves(info)
    axes = [i1.axes(), i2.axes()]
    widest = b.tmp(n.call('rt.example_rank', [n.tuple_([n.deepcopy(x1), n.deepcopy(x2)]),
                                              literal(tuple(axes))]), SCALAR, '_rank')
    lifted = {p: b.tmp(n.call('rt.lift_leaves', [x, widest, literal(a)]), UNKNOWN)
              for p, x, i, a in (('a', x1, i1, axes[0]), ('b', x2, i2, axes[1])) if i.batched}
    return _with_args(rhs, op, lifted), info


def _repeated_leaves(b, x, info):
    """x with every numeric leaf batched, and its facts."""
    axes = info.axes()
    if _every_leaf(axes):
        return x, info
    call = n.call('rt.batch_outputs', [x, literal(axes), n.const(0), b.size()])
    info = _batched_leaves(info)
    return b.tmp(call, info), info


def _every_leaf(axes):
    """Whether axes (a prefix) batch every leaf."""
    if isinstance(axes, (tuple, dict)):
        return all(map(_every_leaf, axes.values() if isinstance(axes, dict) else axes))
    return axes == 0


def _lined_up(a, b):
    """Whether values of facts a and b add leaf by leaf as they are, each pair
    of leaves broadcasting per example: batched alike at one known rank, or
    an unbatched leaf no wider than its batched partner."""
    if not (a.batched or b.batched):
        return True
    if a.elts is not None and b.elts is not None:
        if isinstance(a.elts, tuple) and isinstance(b.elts, tuple) and len(a.elts) == len(b.elts):
            return all(_lined_up(x, y) for x, y in zip(a.elts, b.elts))
        if isinstance(a.elts, dict) and isinstance(b.elts, dict) and a.elts.keys() == b.elts.keys():
            return all(_lined_up(a.elts[k], b.elts[k]) for k in a.elts)
        return False
    if a.elts is not None or b.elts is not None:   # a container and the (unbatched) zero
        other = b if a.elts is not None else a
        return not other.batched and other.rank == 0
    if a.item is not None or b.item is not None or a.rank is None or b.rank is None:
        return False
    if a.batched and b.batched:
        return a.rank == b.rank
    return (b.rank <= a.rank) if a.batched else (a.rank <= b.rank)


def _batched_leaves(info):
    """The facts of a container plus a batched value of the same structure
    whose form only the run shows: every leaf batched, and where this one
    holds the zero 0.0 (which stands for any value), of a rank not known."""
    if info.elts is not None:
        return _with_parts(info, lambda k, e: _batched_leaves(e))
    if not info.batched and info.rank == 0 and info.item is None:
        return Info(True, None)
    return _mark_batched(info)


def _add_info(a, b):
    if isinstance(a.elts, tuple) and isinstance(b.elts, tuple) and len(a.elts) == len(b.elts):
        return container(tuple(_add_leaf(x, y) for x, y in zip(a.elts, b.elts)))
    if isinstance(a.elts, dict) and isinstance(b.elts, dict):
        return container({k: _add_leaf(a.elts[k], b.elts[k]) for k in a.elts})
    return join(a, b)


def _add_leaf(x, y):
    if x.elts is not None or y.elts is not None:
        return _add_info(x, y)
    ranks = [r for r in (x.rank, y.rank)]
    return Info(x.batched or y.batched, max(ranks) if None not in ranks else None)


@rule('finalize')
def finalize(b, op, rhs):
    g, x = op.inputs['cot'], op.inputs['x']
    gi, xi = b.info(g), b.info(x)
    if not (gi.batched or xi.batched):
        return rhs, xi
    spec = _finalize_spec(gi, xi)
    if spec is None:
        return loop(b, op, rhs, xi.rank)
    return n.call("rt.finalize_batched", [g, x, literal(spec), b.size()]), _all_batched_info(xi)


def _finalize_spec(gi, xi):
    """Per leaf of x: (g batched, x batched, g's rank) as a literal."""
    if xi.elts is not None:
        if isinstance(xi.elts, tuple):
            gel = gi.elts if isinstance(gi.elts, tuple) and len(gi.elts) == len(xi.elts) \
                else [Info(gi.batched, None if gi.batched else 0)] * len(xi.elts)
            parts = [_finalize_spec(g, x) for g, x in zip(gel, xi.elts)]
            return None if None in parts else tuple(parts)
        if isinstance(xi.elts, dict):
            gel = gi.elts if isinstance(gi.elts, dict) else {}
            parts = {k: _finalize_spec(gel.get(k, Info(gi.batched, None)), v)
                     for k, v in xi.elts.items()}
            return None if None in parts.values() else parts
    if gi.elts is not None or xi.item is not None:   # g's structure is seen at run time
        return None
    return (gi.batched, xi.batched, gi.rank, xi.rank)   # (a rank None: read at run time)


def _all_batched_info(xi):
    if isinstance(xi.elts, tuple):
        return container(tuple(_all_batched_info(e) for e in xi.elts))
    if isinstance(xi.elts, dict):
        return container({k: _all_batched_info(e) for k, e in xi.elts.items()})
    return Info(True, xi.rank)

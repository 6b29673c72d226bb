"""Batching rules of Python builtins, attributes, and the transformations' helpers."""
from .. import nodes as n
from ..batch import (KEY, SCALAR, UNKNOWN, DictInfo, Info, Known, NodeInfo, _is_container,
                     _zero_like, container, join)
from .core import (SLICE, _apply, _axes_of, _copy_replacing, _data_param, _fully_batched, _int,
                   _is_none, _mark_batched, _shifted, _with_args, batched, elementwise_of,
                   literal, loop, loop_call, prim_call, rewrite, rule)
from .indexing import _broadcast_tree, _elts_of
from .shapes import _shape_rank
from .adjoints import _sum_to_example_of


@rule('py_len')
def py_len(b, op, rhs):
    x, info = op.inputs['obj'], b.info(op.inputs['obj'])
    if not info.batched or info.elts is not None or info.item is not None:   # (a list)
        return rhs, SCALAR
    if info.rank is None:          # an array or a container: the run tells
        return n.call('rt.example_len', [x]), SCALAR
    shape = b.tmp(n.Attribute(value=x, attr='shape', ctx=n.Load()), UNKNOWN, '_shape')
    return n.Subscript(value=shape, slice=n.const(1), ctx=n.Load()), SCALAR


@rule('attribute')
def attribute(b, rhs):
    x, info = rhs.value, b.info(rhs.value)
    if isinstance(info, NodeInfo):
        return rhs, node_attribute(b, info, rhs.attr)
    if not info.batched:
        return rhs, (SCALAR if rhs.attr in ('ndim', 'size') else
                     container(tuple(SCALAR for _ in range(info.rank)))
                     if rhs.attr == 'shape' and info.rank is not None else UNKNOWN)
    if rhs.attr == 'shape':
        shape = b.tmp(rhs, UNKNOWN, '_shape')
        elts = container(tuple(SCALAR for _ in range(info.rank))) if info.rank is not None \
            else UNKNOWN
        return n.Subscript(value=shape, slice=n.Slice(lower=n.const(1), upper=None, step=None),
                           ctx=n.Load()), elts
    if rhs.attr == 'ndim':
        if info.rank is not None:
            return n.const(info.rank), SCALAR
        nd = b.tmp(rhs, SCALAR, '_ndim')
        return n.BinOp(left=nd, op=n.Sub(), right=n.const(1)), SCALAR
    if rhs.attr == 'size':
        size = b.tmp(rhs, SCALAR, '_size')
        return n.BinOp(left=size, op=n.FloorDiv(), right=b.size()), SCALAR
    if rhs.attr in ('dtype', 'itemsize'):
        return rhs, UNKNOWN
    if rhs.attr in ('T', 'real', 'imag'):
        return loop_call(b, n.dotted('rt.attribute'), [x, n.const(rhs.attr)], (), info.rank)
    b.fail(f'codax vmap cannot batch the attribute .{rhs.attr}')


def node_attribute(b, info, name):
    """What an attribute of a registered node holds: one of its children,
    batched as that child is (the node holds its children batched), or data
    that is the same for every example."""
    if info.fields is not None and name in info.fields:
        return info.elts[info.fields[name]]
    if not info.batched or info.static is not None and name in info.static:
        return UNKNOWN
    if info.fields is None:
        b.fail(f'codax vmap cannot tell which child of a {info.node.__name__} the attribute '
               f'.{name} holds: its registered unflatten function failed when given '
               'placeholder children (as JAX gives it too); it should only store them')
    holders = ', '.join('.' + f for f in sorted(info.fields)) or 'no attribute holds one'
    b.fail(f'codax vmap cannot batch the attribute .{name} of a {info.node.__name__}: it is '
           f'computed from the node\'s children, not one of them ({holders} hold them); '
           'read those and compute it in the function')


@rule('shape_of')
def shape_of(b, op, rhs):
    """np.shape / np.ndim / np.size of a batched array: of one example."""
    attr = op.prim.name.replace('rt_', '')
    node = op.inputs[_data_param(op)]
    info = b.info(node)
    if info.batched and (info.rank is None or _is_container(info) or isinstance(info, NodeInfo)):
        # a list or tuple (or a value that may be one) has no .ndim: NumPy's
        # answer for one example, the same for every example of the batch
        example = b.tmp(n.call('rt.first_example', [node, literal(info.axes())]),
                        Info(False, None), '_example')
        return _with_args(rhs, op, {_data_param(op): example}), \
            (UNKNOWN if attr == 'shape' else SCALAR)
    if attr == 'size' and not _is_none(op.inputs.get('axis')):
        axes = _axes_of(op.inputs['axis'])
        if not info.batched or not isinstance(axes, tuple):
            return loop(b, op, rhs, 0)
        return _with_args(rhs, op, {'axis': n.const(_shifted(axes)[0])}), SCALAR
    if not info.batched:
        return rhs, attribute(b, n.Attribute(value=node, attr=attr, ctx=n.Load()))[1]
    return attribute(b, n.Attribute(value=node, attr=attr, ctx=n.Load()))


@rule('sweeps')
def sweeps(b, op, rhs):
    """rt.sweeps(f, *args) / rt.tangent_function(f, primals, argnums): the
    generated functions, which the batched code then batches in turn
    (rt.vmapped), so they are asked for one example's arguments: one
    function serves every example. (The generated code of a plain function
    does not depend on ranks, but that of a vmapped one does.)"""
    if b.info(rhs.func).batched:
        b.fail('codax vmap: the function called here differs between examples')
    params = ('args',) if op.prim.name == 'sweeps' else ('primals',)
    swap = {}
    for p in params:
        node = op.inputs.get(p)
        if node is None:
            continue
        elts = node.elts if isinstance(node, (n.Tuple, n.List)) else [node]
        for e in elts:
            info = b.info(e)
            if info.batched:
                swap[id(e)] = b.tmp(n.call('rt.first_example', [e, literal(info.axes())]),
                                    Info(False, info.rank), '_example')
    return (_copy_replacing(rhs, swap) if swap else rhs), UNKNOWN


@rule('pullback_function')
def pullback_function(b, op, rhs):
    return rhs, UNKNOWN


@rule('pullback_state')
def pullback_state(b, op, rhs):
    info = b.info(op.inputs['pb'])
    if isinstance(info.elts, tuple) and len(info.elts) == 2:
        return rhs, info.elts[1]
    return rhs, Info(info.batched, None)


@rule('isinstance')
def isinstance_(b, op, rhs):
    """isinstance(x, dict / tuple / list) is known False at compile time where
    x's Info rules the kind out: an array (or a number), or a container of the
    other kind. (Only False: a value known as a dict may still be None, joined
    with a placeholder, so True is never certain.)"""
    info, kinds = b.info(op.inputs['obj']), op.inputs['classinfo']
    names = {e.id for e in (kinds.elts if isinstance(kinds, n.Tuple) else [kinds])
             if isinstance(e, n.Name)}
    if len(names) != (len(kinds.elts) if isinstance(kinds, n.Tuple) else 1) \
            or not names <= {'tuple', 'list', 'dict'}:
        return rhs, SCALAR
    if info.elts is None and info.item is None:
        ruled_out = info.batched or info.rank is not None
    else:
        ruled_out = 'dict' not in names if isinstance(info.elts, dict) else names == {'dict'}
    return rhs, Known(False) if ruled_out else SCALAR


@rule('unbatched_result')
def unbatched_result(b, op, rhs):
    """Tests on the kind of a value (rt.is_zero) are the same for every example."""
    return rhs, SCALAR


# The Jacobian helpers (codax/jacobians.py): (their stack of columns or rows,
# what that stack broadcasts to per example: an operand of that rank, or None
# for x's rank + 1; the operands read for their shapes only).
_JACOBIAN_PARTS = {
    'jacobian_from_columns': ('cols', 'outs', ('outs', 'x')),
    'jacobian_from_rows': ('rows', None, ('out', 'x')),
    'columns_vjp': ('cols', 'outs', ('outs', 'x', 'y')),
    'rows_vjp': ('rows', None, ('out', 'x', 'y')),
}


@rule('jacobian')
def jacobian(b, op, rhs):
    """rt.basis and the helpers that assemble Jacobians, in vmapped code (a
    Jacobian of a Jacobian): the same helper with one more leading batch axis
    (`lead`). The operands read for their shapes are batched (broadcast where
    they are not). A batched stack of columns or rows, and a batched
    cotangent, get the full rank of an example (broadcasting from the right
    would not line their examples up); columns_vjp and rows_vjp, whose result
    is shaped like the stack, get it batched and full, and their result is
    summed per example to the stack's own shape."""
    name = op.prim.name
    lead = _int(op.inputs['lead']) if op.inputs.get('lead') is not None else 0
    if name == 'basis':               # the basis of one example: the same for all
        xi = b.info(op.inputs['x'])
        rank = xi.rank + 1 if xi.rank is not None else None
        if not xi.batched:
            return rhs, Info(False, rank)
        if lead is None:
            return loop(b, op, rhs, rank)
        return prim_call('basis', [op.inputs['x'], n.const(lead + 1)]), Info(False, rank)
    data, like, shaped = _JACOBIAN_PARTS[name]
    nodes = {p: op.inputs[p] for p in op.prim.params if p != 'lead'}
    infos = {p: b.info(v) for p, v in nodes.items()}
    x_rank = infos['x'].rank
    target = infos[like].rank if like else (None if x_rank is None else x_rank + 1)
    if name == 'jacobian_from_columns':
        rank = None if None in (target, x_rank) else target - 1 + x_rank
    elif name == 'jacobian_from_rows':
        rank = None if None in (infos['out'].rank, x_rank) else infos['out'].rank + x_rank
    else:
        rank = infos[data].rank
    if not any(i.batched for i in infos.values()):
        return rhs, Info(False, rank)
    if lead is None:
        return loop(b, op, rhs, rank)
    args = {p: b.broadcast(nodes[p], infos[p]) for p in shaped}
    vjp = name.endswith('_vjp')
    stack = _full_rank(b, nodes[data], infos[data], target, like and nodes[like],
                       like and infos[like], broadcast=vjp)
    if stack is None:
        return loop(b, op, rhs, rank)
    args[data] = stack
    if vjp:                           # the cotangent: broadcastable to y
        yi = infos['y']
        h = _full_rank(b, nodes['h'], infos['h'], yi.rank, nodes['y'], yi, broadcast=False)
        if h is None:
            return loop(b, op, rhs, rank)
        args['h'] = h
    call = prim_call(name, [args[p] for p in op.prim.params if p != 'lead'] + [n.const(lead + 1)])
    if not vjp:
        return call, Info(True, rank)
    full = b.tmp(call, Info(True, target))
    return _sum_to_example_of(b, full, nodes[data], infos[data]), Info(True, rank)


def _full_rank(b, x, info, rank, like, like_info, broadcast):
    """x given axes after its batch axis up to `rank` per example (at run time
    that of `like` where `rank` is not known). Unbatched x stays as it is
    (it broadcasts from the right), unless `broadcast` asks for it batched.
    None when it cannot be told."""
    if not info.batched:
        if not broadcast:
            return x
        x, info = b.broadcast(x, info), Info(True, info.rank)
    if rank is not None and info.rank is not None:
        return b.lift(x, info, rank)
    if rank is not None:
        return b.tmp(n.call('rt.lift_batched', [x, n.const(rank)]), Info(True, rank))
    if like is None:
        return None
    r = b.tmp(n.call('rt.example_rank', [n.tuple_([like]), literal((like_info.axes(),))]),
              SCALAR, '_rank')
    return b.tmp(n.call('rt.lift_batched', [x, r]), Info(True, None))


@rule('kind_only')
def kind_only(b, op, rhs):
    """rt.batch_index(idx, x) reads only whether x is a container or an array,
    which every example of x shares: the index is the same for all of them."""
    if batched(b, op.inputs.get('idx')):
        return loop(b, op, rhs)
    return rhs, UNKNOWN


@rule('atleast')
def atleast(b, op, rhs):
    x, info = op.inputs['a'], b.info(op.inputs['a'])
    least = 1 if op.prim.name == 'atleast_1d' else 2
    rank = max(info.rank, least) if info.rank is not None else None
    if not info.batched or info.rank is not None and info.rank >= least:
        return rhs, Info(info.batched, rank)
    if info.rank is None:
        return loop(b, op, rhs, rank)
    if least == 1 or info.rank == 0:
        out = b.lift(x, info, least)
        return out, Info(True, least)
    index = n.tuple_([n.Slice(lower=None, upper=None, step=None), n.const(None)])
    return n.Subscript(value=x, slice=index, ctx=n.Load()), Info(True, 2)


@rule('py_sum')
def py_sum(b, op, rhs):
    """sum(xs, start): over a batched array's first example axis; over a list
    of arrays with the batched ones (and start) lifted to the widest example."""
    it, info = op.inputs['iterable'], b.info(op.inputs['iterable'])
    start = op.inputs.get('start')
    if not batched(b, it, start):
        return rhs, Info(False, None)
    if info.elts is None and info.rank is not None and info.batched:   # sum over an array
        if not _is_none(start) and not (isinstance(start, n.Constant) and start.value == 0):
            return loop(b, op, rhs)
        return prim_call('sum', [it], [('axis', n.const(1))]), Info(True, info.rank - 1)
    item, si = info.item, b.info(start) if not _is_none(start) else SCALAR
    if item is not None and item.rank is not None and item.elts is None and item.item is None \
            and si.elts is None and si.rank is not None and si.rank <= item.rank:
        # a list built by append, every item batched and of one rank: Python's
        # sum adds them as they are (a batched start lifted to their rank)
        if si.batched:
            rhs = _with_args(rhs, op, {'start': b.lift(start, si, item.rank)})
        return rhs, Info(True, item.rank)
    elts = list(info.elts) if isinstance(info.elts, tuple) else []
    parts = elts + ([b.info(start)] if not _is_none(start) else [])
    ranks = [e.rank for e in parts]
    if not elts or None in ranks or any(e.elts is not None for e in parts):
        return loop(b, op, rhs)
    rank = max(ranks)
    if any(e.batched and e.rank < rank for e in elts):        # lifted, in a new list
        parts = [b.lift(b.tmp(n.Subscript(value=it, slice=n.const(k), ctx=n.Load()), e,
                              '_elt'), e, rank) for k, e in enumerate(elts)]
        it = b.tmp(n.List(elts=parts, ctx=n.Load()),
                   container(tuple(Info(e.batched, rank if e.batched else e.rank) for e in elts)))
        rhs = _with_args(rhs, op, {'iterable': it})
    if not _is_none(start) and b.info(start).batched:
        return _with_args(rhs, op, {'start': b.lift(start, b.info(start), rank)}), \
            Info(True, rank)
    return rhs, Info(True, rank)


@rule('py_extremum')
def py_extremum(b, op, rhs):
    """max(a, b, ...) / max(list) per example: a chain of np.maximum (which
    shares the cotangent at ties); max(vector): np.max over its axis."""
    args = list(op.inputs['args'].elts)
    fn = 'maximum' if op.prim.name == 'py_max' else 'minimum'
    if len(args) == 1 and isinstance(b.info(args[0]).elts, tuple):    # max(list)
        info = b.info(args[0])
        args = [b.tmp(n.Subscript(value=args[0], slice=n.const(k), ctx=n.Load()), e, '_elt')
                for k, e in enumerate(info.elts)]
    infos = [b.info(a) for a in args]
    if not any(i.batched for i in infos):
        return rhs, Info(False, None if len(args) == 1 else
                         max((i.rank or 0) for i in infos))
    if len(args) == 1:
        if infos[0].rank != 1:
            return loop(b, op, rhs)
        return prim_call('amax' if fn == 'maximum' else 'amin', [args[0]],
                         [('axis', n.const(1))]), Info(True, 0)
    out = args[0]
    for x in args[1:-1]:
        out = _apply(b, fn, [out, x])
    return rewrite(b, prim_call(fn, [out, args[-1]]))


@rule('scalar_cast')
def scalar_cast(b, op, rhs):
    """float(x) / int(x) / bool(x) / x.item() of a batched scalar: an array of them."""
    x = op.inputs[_data_param(op)]
    info = b.info(x)
    if not info.batched:
        return rhs, SCALAR
    name = op.prim.name
    if name == 'py_item':
        return prim_call('reshape', [x, n.tuple_([b.size()])]), Info(True, 0)
    dtype = {'py_float': 'float', 'py_int': 'int', 'py_bool': 'bool'}[name]
    return prim_call('astype', [x, n.name(dtype)]), Info(True, info.rank)


# What to write instead, per record refused a batched argument by unbatched_only.
_UNBATCHED_HINTS = {
    'py_range': '; loop to a bound every example shares and mask the steps past each '
                "example's own, or use np.arange with a mask",
    'py_slice': ': the slices would have different lengths; use a mask instead, such as '
                'np.where(np.arange(n) < i, x, 0)',
    'min_scalar_type': ': the dtype it returns would differ between examples; call it on a '
                       'value every example shares',
}


@rule('unbatched_only')
def unbatched_only(b, op, rhs):
    """Integer bookkeeping (range, slice bounds), text (str) and dtype queries
    of values: a batched value here has no vectorized meaning."""
    if batched(b, *op.inputs.values()):
        name = op.prim.name.replace('py_', '')
        name = f'np.{name}' if name == op.prim.name else name
        b.fail(f'codax vmap: {name}() of a value that is batched (it differs between '
               'examples, or, in derivative code, it was saved on the tape with batched '
               f'values){_UNBATCHED_HINTS.get(op.prim.name, "")}')
    return rhs, SLICE if op.prim.name == 'py_slice' else UNKNOWN


@rule('value_sized')
def value_sized(b, op, rhs):
    """np.unique's positions (rt.unique_parts), whose number depends on the
    values: per example with size=, refused without it, at run time (JAX
    refuses it too)."""
    if not batched(b, *op.inputs.values()):
        return rhs, UNKNOWN
    return loop_call(b, n.dotted('rt.unique_parts_per_example'), rhs.args, rhs.keywords, None)


@rule('axes_only')
def axes_only(b, op, rhs):
    """rt.inverse_axes(axes, a) reads axis numbers only: the same for every example."""
    if batched(b, op.inputs['axes']):
        b.fail('codax vmap: axes that differ between examples')
    return rhs, UNKNOWN


@rule('creation')
def creation(b, op, rhs):
    """zeros, ones, eye, arange, ...: constant outputs of static arguments."""
    rank = _shape_rank(b, op.inputs.get('shape')) if 'shape' in op.inputs else \
        {'eye': 2, 'identity': 2, 'arange': 1, 'linspace': 1}.get(op.prim.name)
    if batched(b, *op.inputs.values()):
        return loop(b, op, rhs, rank)
    return rhs, Info(False, rank)


@rule('container_view')
def container_view(b, op, rhs):
    """dict.items()/.values()/.keys(), tuple(), list(): structure only."""
    info = b.info(op.inputs[_data_param(op)]) if op.inputs else UNKNOWN
    if isinstance(info, DictInfo):           # keys known only at run time
        values = Info(info.batched, None, None, info.item)
        if op.prim.name in ('dict_items', 'dict_items_tangent'):
            return rhs, Info(info.batched, None, None, container((KEY, info.item)))
        return rhs, values if op.prim.name == 'dict_values' else _keys_info(info)
    if op.prim.name in ('py_tuple', 'py_list') and info.elts is None and info.item is None \
            and info.rank:
        # tuple(a) of an array: a sequence of its rows, of unknown length
        rows = Info(info.batched, info.rank - 1, kind=info.kind)
        call = loop(b, op, rhs)[0] if info.batched else rhs
        return call, Info(info.batched, None, None, rows)
    if info.elts is None and info.batched:
        return loop(b, op, rhs)
    if isinstance(info.elts, dict) and op.prim.name in ('py_tuple', 'py_list'):
        return rhs, _keys_info(info)          # list(d): its keys
    if isinstance(info.elts, dict):
        values = tuple(info.elts[k] for k in info.elts)
        if op.prim.name in ('dict_items', 'dict_items_tangent'):
            return rhs, container(tuple(container((KEY, v)) for v in values))
        if op.prim.name == 'dict_keys':
            return rhs, _keys_info(info)
        return rhs, container(values)
    return rhs, info


def _keys_info(info):
    """The facts of a dict's keys, as a list: the same for every example."""
    if isinstance(info.elts, dict):
        return container(tuple(KEY for _ in info.elts))
    return Info(False, None, None, KEY)


@rule('concat')
def concat(b, op, rhs):
    """`a + b` of sequences: the items of both as they are, each keeping its
    form where both lengths are known; else every item batched alike. Of
    arrays, NumPy's sum (element-wise); of an array and a list, per example."""
    nodes = [op.inputs['a'], op.inputs['b']]
    infos = [b.info(x) for x in nodes]
    if not any(_is_container(i) or i.rank is None for i in infos):      # arrays: their sum
        return elementwise_of(b, rhs, nodes)
    if not all(_is_container(i) for i in infos):
        return loop(b, op, rhs)
    if all(isinstance(i.elts, tuple) for i in infos):
        return rhs, container(infos[0].elts + infos[1].elts)
    return _alike(b, op, rhs, ['a', 'b'], _elts_of(infos[0]) + _elts_of(infos[1]))


@rule('concat_vjp')
def concat_vjp(b, op, rhs):
    """The adjoint of one operand of joined sequences: its own items of the
    cotangent, which keep their forms (every item batched alike where the
    lengths are known only at run time). Of a sum: per example."""
    g, a, y = op.inputs['cot'], op.inputs['a'], op.inputs['y']
    gi, ai = b.info(g), b.info(a)
    which = _int(op.inputs['which'])
    yi = b.info(y)
    if not _is_container(yi) and yi.rank is not None and which is not None:   # of a sum
        return rewrite(b, prim_call('rt_unbroadcast', [g, op.inputs['b' if which else 'a'], y]))
    if not _is_container(yi) or which is None:
        return loop(b, op, rhs)
    if _zero_like(gi):                    # the zero 0.0
        return rhs, gi
    if not _is_container(gi):
        return loop(b, op, rhs)
    if isinstance(gi.elts, tuple) and isinstance(ai.elts, tuple):
        k = len(ai.elts)
        return rhs, container(gi.elts[k:] if which else gi.elts[:k])
    return _alike(b, op, rhs, ['cot'], _elts_of(gi))


def _alike(b, op, rhs, params, parts):
    """op's call with its container arguments `params` made batched alike
    where any of `parts` (their items) is batched: a list of unknown length
    of the joined facts."""
    item = None
    for part in parts:
        item = join(item, part)
    item = item or UNKNOWN
    if not item.batched:
        return rhs, Info(False, None, None, item)
    args = {p: op.inputs[p] for p in op.prim.params if p in op.inputs}
    for p in params:
        if not _fully_batched(b.info(args[p])):
            args[p] = _broadcast_tree(b, args[p], b.info(args[p]))
    return prim_call(op.prim.name, list(args.values())), Info(True, None, None, _mark_batched(item))

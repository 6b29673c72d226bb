"""Batching rules of shape operations and array creation."""
import numpy

from .. import nodes as n
from ..batch import UNKNOWN, Info, container
from .core import (ListInfo, _axes_of, _data_param, _fully_batched, _int, _int_literal, _is_none,
                   _mark_batched, _shifted, _with_args, batched, loop, prim_call, rule)
from .arrays import _given


@rule('same')
def same(b, op, rhs):
    """Shape-preserving ops of one array (copy, astype, *_like, stop_gradient)."""
    data = op.inputs[_data_param(op)]
    info = b.info(data)
    others = [node for p, node in op.inputs.items() if p != _data_param(op)]
    if batched(b, *others):
        return loop(b, op, rhs, info.rank)
    if info.elts is not None:
        return rhs, info
    return rhs, Info(info.batched, info.rank)


@rule('reshape')
def reshape(b, op, rhs):
    data = _data_param(op)
    x, info = op.inputs[data], b.info(op.inputs[data])
    name = op.prim.name
    shape = op.inputs.get('shape') if name == 'reshape' else None
    if name == 'reshape' and _is_none(shape):
        shape = op.inputs.get('newshape')
    rank = 1 if name == 'ravel' else _shape_rank(b, shape)
    if not info.batched:
        return (loop(b, op, rhs, rank) if batched(b, shape) else (rhs, Info(False, rank)))
    order = op.inputs.get('order')
    order = 'C' if order is None else order.value if isinstance(order, n.Constant) else None
    if batched(b, shape) or order not in ('C', 'F'):     # 'A', 'K': by each example's layout
        return loop(b, op, rhs, rank)
    if order == 'F':
        return _reshape_fortran(b, x, shape, rank)
    if name == 'ravel':
        new_shape = n.tuple_([b.size(), n.const(-1)])
    elif isinstance(shape, n.Tuple):
        new_shape = n.tuple_([b.size()] + list(shape.elts))
    elif isinstance(shape, n.Constant) and isinstance(shape.value, tuple):
        new_shape = n.tuple_([b.size()] + [n.const(v) for v in shape.value])
    elif _int(shape) is not None or b.info(shape).rank == 0:
        new_shape = n.tuple_([b.size(), shape])
    else:
        size = n.tuple_([b.size()])
        tail = b.tmp(n.call(n.name('tuple'), [shape]), UNKNOWN, '_shape')
        new_shape = b.tmp(n.BinOp(left=size, op=n.Add(), right=tail), UNKNOWN, '_shape')
    return prim_call('reshape', [x, new_shape]), Info(True, rank)


def _reshape_fortran(b, x, shape, rank):
    """order='F' reads the first axis fastest, so the batch axis goes last
    first (it then varies slowest) and comes back to the front after."""
    if shape is None:                                   # ravel
        shape = n.tuple_([n.const(-1)])
    elif _int(shape) is not None or b.info(shape).rank == 0:
        shape = n.tuple_([shape])
    last = b.tmp(prim_call('moveaxis', [x, n.const(0), n.const(-1)]), Info(True, None), '_last')
    tail = b.tmp(n.call(n.name('tuple'), [shape]), UNKNOWN, '_shape')
    new_shape = b.tmp(n.BinOp(left=tail, op=n.Add(), right=n.tuple_([b.size()])), UNKNOWN,
                      '_shape')
    out = b.tmp(prim_call('reshape', [last, new_shape, n.const('F')]), Info(True, None), '_f')
    return prim_call('moveaxis', [out, n.const(-1), n.const(0)]), Info(True, rank)


def _shape_rank(b, shape):
    if shape is None:
        return None
    if isinstance(shape, n.Tuple):
        return len(shape.elts)
    if _int(shape) is not None:
        return 1
    if isinstance(shape, n.Constant) and isinstance(shape.value, tuple):
        return len(shape.value)
    info = b.info(shape)
    if isinstance(info.elts, tuple):
        return len(info.elts)
    if info.rank == 0:
        return 1
    return None


@rule('axes')
def axis_params(b, op, rhs):
    """Ops whose only batch-relevant parameters are axis numbers (per record in
    AXIS_PARAMS): a batched operand shifts each literal axis by one."""
    data = _data_param(op)
    x, info = op.inputs[data], b.info(op.inputs[data])
    spec = AXIS_PARAMS[op.prim.name]
    rank = spec['rank'](info.rank) if info.rank is not None else None
    if op.prim.name == 'repeat' and _is_none(op.inputs.get('axis')):
        rank = 1                                             # of the flattened example
    if op.prim.name == 'expand_dims' and rank is not None:   # one axis per entry of `axis`
        added = _axes_of(op.inputs.get('axis'))
        rank = None if added in (None, 'dynamic') else info.rank + len(added)
    others = [node for p, node in op.inputs.items() if p != data]
    if not info.batched:
        return (loop(b, op, rhs, rank) if batched(b, *others) else (rhs, Info(False, rank)))
    if batched(b, *others):
        return loop(b, op, rhs, rank)
    replace = {}
    for param, (default, missing) in spec['axes'].items():
        node = op.inputs.get(param)
        if param not in _given(rhs, op):
            node = n.const(default) if default is not None or not _is_none(node) else node
        value = _axes_of(node)
        if value is None:
            if missing == 'all' and info.rank is not None:
                replace[param] = n.const(tuple(range(1, info.rank + 1)))
                continue
            if missing == 'reverse' and info.rank is not None:
                replace[param] = n.const((0,) + tuple(range(info.rank, 0, -1)))
                continue
            if missing == 'flat':                            # over the flattened example
                flat = b.tmp(prim_call('reshape', [x, n.tuple_([b.size(), n.const(-1)])]),
                             Info(True, 1))
                call = _with_args(rhs, op, {data: flat, param: n.const(1)})
                if op.prim.name != 'roll':
                    return call, Info(True, rank if op.prim.name == 'repeat' else None)
                rolled = b.tmp(call, Info(True, 1))
                shape = n.Attribute(value=x, attr='shape', ctx=n.Load())
                return prim_call('reshape', [rolled, shape]), Info(True, info.rank)
            return loop(b, op, rhs, rank)
        if value == 'dynamic':
            return loop(b, op, rhs, rank)
        if param == 'axes':                                  # a permutation (transpose)
            replace[param] = n.const((0,) + tuple(a % info.rank + 1 if info.rank else a + 1
                                                  for a in value))
            continue
        shifted = _shifted(value)
        replace[param] = n.const(shifted[0]) if _int(node) is not None else n.const(shifted)
    return _with_args(rhs, op, replace), Info(True, rank)


# parameter: (default when not given, meaning of None); rank: per-example output rank
AXIS_PARAMS = {
    'transpose': {'axes': {'axes': (None, 'reverse')}, 'rank': lambda r: r},
    'swapaxes': {'axes': {'axis1': (None, None), 'axis2': (None, None)}, 'rank': lambda r: r},
    'moveaxis': {'axes': {'source': (None, None), 'destination': (None, None)},
                 'rank': lambda r: r},
    'expand_dims': {'axes': {'axis': (None, None)}, 'rank': lambda r: r + 1},  # (axis_params)
    'flip': {'axes': {'axis': (None, 'all')}, 'rank': lambda r: r},
    'fliplr': {'axes': {}, 'rank': lambda r: r},
    'flipud': {'axes': {}, 'rank': lambda r: r},
    'diagonal': {'axes': {'axis1': (0, None), 'axis2': (1, None)}, 'rank': lambda r: r - 1},
    'trace': {'axes': {'axis1': (0, None), 'axis2': (1, None)}, 'rank': lambda r: r - 2},
    'squeeze': {'axes': {'axis': (None, None)}, 'rank': lambda r: None},
    'repeat': {'axes': {'axis': (None, 'flat')}, 'rank': lambda r: r},
    'roll': {'axes': {'axis': (None, 'flat')}, 'rank': lambda r: r},
    'cumsum_axes': {'axes': {}, 'rank': lambda r: r},
    'take': {'axes': {'axis': (None, 'flat')}, 'rank': lambda r: None},
    'split': {'axes': {'axis': (0, None)}, 'rank': lambda r: None},
}


@rule('split')
def split(b, op, rhs):
    """np.split: the axis shifted past the batch axis (as `axes` does); the
    result is a list of pieces of the example's rank, as many as literal
    sections say (else a list of unknown length), each batched like the array."""
    call, info = axis_params(b, op, rhs)
    rank = b.info(op.inputs['ary']).rank
    sections = _int_literal(op.inputs.get('indices_or_sections'), b)
    count = sections if isinstance(sections, int) else \
        len(sections) + 1 if isinstance(sections, tuple) else None
    piece = Info(info.batched, rank)
    if count is None:
        return call, Info(info.batched, None, None, piece)
    return call, ListInfo(info.batched, None, (piece,) * count)


@rule('diag')
def diag(b, op, rhs):
    """np.diag: a matrix's diagonal (np.diagonal past the batch axis), or a
    vector's diagonal matrix (rt.batched_diag)."""
    v, info = op.inputs['v'], b.info(op.inputs['v'])
    k = op.inputs.get('k') or n.const(0)
    rank = {1: 2, 2: 1}.get(info.rank)
    if not (info.batched or batched(b, k)):
        return rhs, Info(False, rank)
    if batched(b, k) or rank is None:
        return loop(b, op, rhs, rank)
    if rank == 1:
        return prim_call('diagonal', [v, k, n.const(1), n.const(2)]), Info(True, 1)
    return n.call('rt.batched_diag', [v, k]), Info(True, 2)


@rule('tile')
def tile(b, op, rhs):
    """np.tile per example: x lifted to the reps' length, reps padded with 1s."""
    x, info = op.inputs['A'], b.info(op.inputs['A'])
    reps = _int_literal(op.inputs['reps'], b)
    reps = (reps,) if isinstance(reps, int) else reps
    rank = max(info.rank, len(reps)) if info.rank is not None and isinstance(reps, tuple) \
        else None
    if not (info.batched or batched(b, op.inputs['reps'])):
        return rhs, Info(False, rank)
    if rank is None or batched(b, op.inputs['reps']):
        return loop(b, op, rhs, rank)
    reps = (1,) * (rank - len(reps) + 1) + reps
    return prim_call('tile', [b.lift(x, info, rank), n.const(reps)]), Info(True, rank)


@rule('pad')
def pad(b, op, rhs):
    """np.pad per example: a literal pad_width, written out per axis, with
    (0, 0) for the batch axis; scalar constant_values."""
    info = b.info(op.inputs['array'])
    width = op.inputs['pad_width']
    value = _int_literal(width, b)
    others = [v for p, v in op.inputs.items() if p != 'array']
    if not (info.batched or batched(b, *others)):
        return rhs, Info(False, info.rank)
    values = op.inputs.get('constant_values')
    if info.rank is None or value is None or batched(b, *others) or \
            not (values is None or b.info(values).rank == 0):
        return loop(b, op, rhs, info.rank)
    replace = {'pad_width': n.const(((0, 0),) + _pad_pairs(value, info.rank))}
    length = op.inputs.get('stat_length')
    if not _is_none(length):
        # per-axis statistic lengths gain one for the batch axis (never read:
        # its pads are empty)
        lengths = _int_literal(length, b)
        if lengths is None:
            return loop(b, op, rhs, info.rank)
        replace['stat_length'] = n.const(((1, 1),) + _pad_pairs(lengths, info.rank))
    return _with_args(rhs, op, replace), Info(True, info.rank)


def _pad_pairs(width, rank):
    """NumPy's pad_width forms (int, (n,), (before, after), per axis) as one
    (before, after) pair per axis."""
    return tuple(tuple(int(v) for v in pair)
                 for pair in numpy.broadcast_to(numpy.asarray(width), (rank, 2)))


@rule('flip_lr_ud')
def flip_lr_ud(b, op, rhs):
    x, info = op.inputs['m'], b.info(op.inputs['m'])
    if not info.batched:
        return rhs, Info(False, info.rank)
    axis = 2 if op.prim.name == 'fliplr' else 1
    return prim_call('flip', [x, n.const(axis)]), Info(True, info.rank)


@rule('join')
def join_arrays(b, op, rhs):
    """concatenate / stack / hstack / vstack of a sequence of arrays."""
    param = _data_param(op)
    seq = op.inputs[param]
    info = b.info(seq)
    elts = _elements(b, seq, info)
    name = op.prim.name
    ranks = [e.rank for e in elts] if elts is not None else [None]
    r = ranks[0] if ranks and len(set(ranks)) == 1 else None
    rank = None if r is None else (r + 1 if name == 'stack' else
                                   max(r, 2) if name == 'vstack' else max(r, 1))
    if not info.batched:
        return rhs, Info(False, rank)
    if r is None or batched(b, op.inputs.get('axis')):
        return loop(b, op, rhs, rank)
    seq = _all_batched(b, seq, info, elts)
    if name in ('hstack', 'vstack'):
        join, axis = _stack_as(name, r)
        if join is None:
            return loop(b, op, rhs, rank)
        return prim_call(join, [seq], [('axis', n.const(axis + 1))]), Info(True, rank)
    axis = _axes_of(op.inputs.get('axis') or n.const(0))
    if axis is None or axis == 'dynamic' or len(axis) != 1:
        return loop(b, op, rhs, rank)
    return prim_call(name, [seq], [('axis', n.const(_shifted(axis)[0]))]), Info(True, rank)


def _stack_as(name, rank):
    """hstack / vstack of examples of `rank` as (concatenate or stack, axis)."""
    if name == 'hstack':
        return ('stack', 0) if rank == 0 else ('concatenate', 0 if rank == 1 else 1)
    return ('stack', 0) if rank == 1 else ('concatenate', 0) if rank >= 2 else (None, None)


def _elements(b, seq, info):
    """Infos of a sequence's elements; one stands for all in a built-up list."""
    if isinstance(info.elts, tuple):
        return list(info.elts)
    if info.item is not None:
        return [info.item]
    return None


def _all_batched(b, seq, info, elts):
    """The sequence with its unbatched elements broadcast along the batch."""
    if all(_fully_batched(e) for e in elts):
        return seq
    parts = []
    for k, e in enumerate(elts):
        item = b.tmp(n.Subscript(value=seq, slice=n.const(k), ctx=n.Load()), e, '_elt')
        parts.append(b.broadcast(item, e))
    return b.tmp(n.List(elts=parts, ctx=n.Load()),
                 container(tuple(_mark_batched(e) for e in elts)), '_seq')


@rule('broadcast_to')
def broadcast_to(b, op, rhs):
    x, shape = op.inputs['array'], op.inputs['shape']
    info = b.info(x)
    rank = _shape_rank(b, shape)
    if not info.batched:
        return (loop(b, op, rhs, rank) if batched(b, shape) else (rhs, Info(False, rank)))
    dims = _shape_nodes(shape)
    if dims is None or rank is None or info.rank is None:
        return loop(b, op, rhs, rank)
    lifted = b.lift(x, info, rank)
    return prim_call('broadcast_to', [lifted, n.tuple_([b.size()] + dims)]), Info(True, rank)


def _shape_nodes(shape):
    """The dimensions of a literal shape (a tuple, a constant tuple or an int) as nodes."""
    if isinstance(shape, n.Tuple):
        return list(shape.elts)
    if isinstance(shape, n.Constant) and isinstance(shape.value, tuple):
        return [n.const(v) for v in shape.value]
    return [shape] if _int(shape) is not None else None


@rule('full')
def full(b, op, rhs):
    """full(shape, v) / full_like(a, v) with v (or a) batched: v lifted to the
    example's rank fills the batched shape."""
    fill = op.inputs['fill_value']
    fi = b.info(fill)
    if op.prim.name == 'full':
        dims = _shape_nodes(op.inputs['shape'])
        rank = len(dims) if dims is not None else None
        others = [v for p, v in op.inputs.items() if p not in ('shape', 'fill_value')]
        if not batched(b, *op.inputs.values()):
            return rhs, Info(False, rank)
        if dims is None or fi.rank is None or batched(b, op.inputs['shape'], *others):
            return loop(b, op, rhs, rank)
        return _with_args(rhs, op, {'shape': n.tuple_([b.size()] + dims),
                                    'fill_value': b.lift(fill, fi, rank)}), Info(True, rank)
    a, ai = op.inputs['a'], b.info(op.inputs['a'])
    others = [v for p, v in op.inputs.items() if p not in ('a', 'fill_value')]
    if not (ai.batched or fi.batched):
        return rhs, Info(False, ai.rank)
    if ai.rank is None or fi.rank is None or batched(b, *others) or \
            not _is_none(op.inputs.get('shape')):
        return loop(b, op, rhs, ai.rank)
    return _with_args(rhs, op, {'a': b.broadcast(a, ai),
                                'fill_value': b.lift(fill, fi, ai.rank)}), Info(True, ai.rank)


@rule('array')
def array(b, op, rhs):
    """np.array / asarray: of a batched array, the same; of a list, a stack."""
    param = _data_param(op)
    x, info = op.inputs[param], b.info(op.inputs[param])
    if not info.batched:
        return rhs, Info(False, _array_rank(info))
    if info.elts is None and info.item is None and info.rank is None:
        return loop(b, op, rhs)            # an array or a list: known only at run time
    if info.item is not None:              # a list built by append: its items all batched
        item = info.item
        if item.rank is None or item.elts is not None or item.item is not None \
                or batched(b, *[v for p, v in op.inputs.items() if p != param]):
            return loop(b, op, rhs)
        return prim_call('stack', [x], [('axis', n.const(1))]), Info(True, item.rank + 1)
    if info.elts is None:
        return same(b, op, rhs)
    elts = list(info.elts) if isinstance(info.elts, tuple) else None
    if elts is None or len({e.rank for e in elts}) != 1 or elts[0].rank is None:
        return loop(b, op, rhs)
    seq = _all_batched(b, x, info, elts)
    out = prim_call('stack', [seq], [('axis', n.const(1))])
    return out, Info(True, elts[0].rank + 1)


def _array_rank(info):
    """The rank of np.array(value): nested lists of equal ranks add one each."""
    if not isinstance(info.elts, tuple):
        return info.rank if info.elts is None else None
    ranks = {_array_rank(e) for e in info.elts}
    return ranks.pop() + 1 if len(ranks) == 1 and None not in ranks else None

"""Batching rules of indexing: reads, writes, appends, iteration."""
from .. import nodes as n
from ..batch import NONE, UNKNOWN, DictInfo, Info, container, join
from .core import (ELLIPSIS, ListInfo, SLICE, _fully_batched, _int, _is_none, _is_slice_call,
                   _mark_batched, _with_args, broadcast_axes, literal, loop, loop_call,
                   prim_call, rule)
from .arrays import elementwise
from .shapes import _all_batched, _array_rank


def _index(b, idx):
    """(nodes, Infos) of the parts of index `idx`: a literal tuple's elements,
    or for a name bound to a tuple its elements' Infos (nodes None)."""
    idx = _tuple_node(idx)
    if isinstance(idx, n.Tuple):
        return list(idx.elts), [_part(b, p) for p in idx.elts]
    info = b.info(idx)
    if isinstance(idx, n.Name) and isinstance(info.elts, tuple) and not info.batched \
            and not isinstance(info, ListInfo):
        return None, list(info.elts)
    return [idx], [_part(b, idx)]


def _tuple_node(idx):
    """A constant tuple index (constants are substituted) as a tuple of constants."""
    if isinstance(idx, n.Constant) and isinstance(idx.value, tuple):
        return n.tuple_([n.const(v) for v in idx.value])
    return idx


def _part(b, p):
    if isinstance(p, n.Slice) or _is_slice_call(p):
        bounds = [p.lower, p.upper, p.step] if isinstance(p, n.Slice) else p.args
        if any(x is not None and b.info(x).batched for x in bounds):
            # (as JAX refuses a traced slice bound: examples of different lengths)
            b.fail('codax vmap: a slice bound that is batched (it differs between examples, '
                   'or, in derivative code, it was saved on the tape with batched values): '
                   'the slices would have different lengths, and a batched array holds '
                   'examples of one shape; use a mask instead, such as '
                   'np.where(np.arange(n) < i, x, 0)')
        return SLICE
    if isinstance(p, n.Constant) and p.value is Ellipsis:
        return ELLIPSIS
    if isinstance(p, n.List) or isinstance(b.info(p), ListInfo):     # an index array
        info = b.info(p) if isinstance(p, n.Name) else container(tuple(b.info(e) for e in p.elts))
        return Info(info.batched, _array_rank(info))
    return b.info(p)


def _index_rank(rank, parts):
    """Per-example rank of x[parts] for x of per-example `rank` (None when not
    inferable), and whether the index arrays and integers come first, adjacent."""
    if rank is None:
        return None, False
    dropped, added, adv, ellipsis = 0, 0, [], False
    for k, p in enumerate(parts):
        if p is SLICE:
            continue
        if p is NONE:
            added += 1
        elif p is ELLIPSIS:
            ellipsis = True
        elif p.rank is None or p.rank >= 2 or p.elts is not None:
            return None, False        # also a mask of rank >= 2: its dtype is not known
        else:
            dropped += 1
            adv.append(k)
    out = rank - dropped + added + max((parts[k].rank for k in adv), default=0)
    return out, adv == list(range(len(adv))) and not ellipsis


def _advanced_ok(parts):
    """Whether prefixing `:` keeps NumPy's placement of advanced-index axes:
    true unless index arrays and integers of one index are separated by a slice."""
    adv = [k for k, p in enumerate(parts) if p not in (SLICE, NONE, ELLIPSIS)]
    arrays = any(parts[k].rank != 0 or parts[k].batched for k in adv)
    return not arrays or adv == list(range(adv[0], adv[-1] + 1))


def _past_batch(b, idx, nodes, subscript=False):
    """Index `idx` (unbatched) applied past the batch axis: `(:, *parts)`, or
    rt.batch_index(idx) where the parts are known only at run time. Outside a
    subscript, slices are written as slice(...) calls."""
    idx = _tuple_node(idx)
    info = _part(b, idx)
    if isinstance(idx, n.Tuple) or nodes is not None and (
            info is SLICE or info.rank is not None or not isinstance(idx, n.Name)):
        parts = [n.Slice(lower=None, upper=None, step=None)] + [n.deepcopy(p) for p in nodes]
        return n.tuple_(parts if subscript else [_slice_value(p) for p in parts])
    return b.tmp(n.call('rt.batch_index', [idx]), UNKNOWN, '_idx')


def _slice_value(node):
    if not isinstance(node, n.Slice):
        return node
    return n.call(n.name('slice'), [node.lower or n.const(None), node.upper or n.const(None),
                                    node.step or n.const(None)])


def _constant_slice(idx):
    """A slice (node or slice() call) with int-literal or absent bounds as a
    Python slice, else None."""
    parts = [idx.lower, idx.upper, idx.step] if isinstance(idx, n.Slice) else \
        (list(idx.args) + [None] * 3)[:3] if _is_slice_call(idx) and not idx.keywords else None
    if parts is None:
        return None
    values = []
    for p in parts:
        if _is_none(p):
            values.append(None)
        elif _int(p) is not None:
            values.append(p.value)
        elif isinstance(p, n.UnaryOp) and isinstance(p.op, n.USub) and _int(p.operand) is not None:
            values.append(-p.operand.value)
        else:
            return None
    return slice(*values) if values[2] != 0 else None


def _item_info(info, idx):
    """The Info of container[idx]."""
    if info.item is not None:
        if isinstance(idx, n.Slice) or _is_slice_call(idx):
            return info
        return info.item
    if isinstance(info.elts, tuple):
        k = _int(idx)
        if k is not None and -len(info.elts) <= k < len(info.elts):
            return info.elts[k]
        if isinstance(idx, n.Slice) or _is_slice_call(idx):
            bounds = _constant_slice(idx)
            if bounds is not None:                # params[:-1]: those elements
                return container(info.elts[bounds])
            return Info(info.batched, None)
        out = None
        for e in info.elts:
            out = join(out, e)
        return out or UNKNOWN
    if isinstance(info.elts, dict):
        key = idx.value if isinstance(idx, n.Constant) else None
        if key in info.elts:
            return info.elts[key]
        out = None
        for e in info.elts.values():
            out = join(out, e)
        return out or UNKNOWN
    return UNKNOWN


@rule('getitem')
def getitem(b, op, rhs):
    x, info = op.inputs['a'], b.info(op.inputs['a'])
    index = rhs.slice if isinstance(rhs, n.Subscript) else op.inputs['idx']
    value = op.inputs['idx']                      # the index as a value: slices as slice()
    nodes, parts = _index(b, index)
    idx_batched = b.info(index).batched or any(p.batched for p in parts)
    if _batched_mask(b, index, parts) and info.elts is None and info.item is None:
        rank = info.rank - parts[0].rank + 1 if len(parts) == 1 and None not in (
            info.rank, parts[0].rank) else None
        return loop_call(b, n.dotted('rt.getitem'), [x, value], (), rank)
    if info.elts is not None or info.item is not None:     # a Python container
        if idx_batched:
            b.fail('codax vmap: indexing a list or tuple with a batched index')
        if isinstance(index, n.Name) and info.batched and not _fully_batched(info):
            # an element chosen at run time (`for x in xs`) has the joined facts
            # of all of them: batched, so every element is made batched
            x = _broadcast_tree(b, x, info)
            info = b.info(x)
            rhs = n.Subscript(value=x, slice=n.deepcopy(index), ctx=n.Load()) \
                if isinstance(rhs, n.Subscript) else _with_args(rhs, op, {'a': x})
        return rhs, _item_info(info, index)
    if info.batched and info.rank is None and not idx_batched:  # array or container: run time
        where = b.tmp(n.call('rt.batch_index', [value, x]), UNKNOWN, '_idx')
        return n.Subscript(value=x, slice=where, ctx=n.Load()), Info(True, None)
    rank, first = _index_rank(info.rank, parts)
    if not (info.batched or idx_batched):
        return rhs, Info(False, rank)
    if not idx_batched and _advanced_ok(parts):
        return n.Subscript(value=x, slice=_past_batch(b, index, nodes, True), ctx=n.Load()), \
            Info(True, rank)
    if idx_batched and rank is not None and first and nodes is not None:
        return _gather(b, x, info, nodes, parts), Info(True, rank)
    return loop_call(b, n.dotted('rt.getitem'), [x, value], (), rank)


@rule('where')
def where(b, op, rhs):
    """np.where(c, x, y) is element-wise; np.where(c) alone is np.nonzero(c), a
    tuple of index arrays (how many indices depends on the values: batched,
    per example)."""
    if not all(_is_none(op.inputs.get(p)) for p in ('x', 'y')):
        return elementwise(b, op, rhs)
    info = b.info(op.inputs['condition'])
    if not info.batched:
        return rhs, Info(False, None)       # (indexing with it reads its parts at run time)
    return loop(b, op, rhs)


def _batched_mask(b, index, parts):
    """Whether the index holds a boolean mask that differs between examples.
    Such a mask selects as many elements as it has True entries, which may
    differ between examples (JAX refuses it): a read runs per example
    (rt.batch_loop, which says so if the examples' selections differ in
    size), a write with a full mask and one value is one masked write."""
    return any(p.batched and p.kind == 'b' for p in parts if p not in (SLICE, NONE, ELLIPSIS)) \
        or b.info(index).batched and b.info(index).kind == 'b'


def _gather(b, x, info, nodes, parts):
    """x[idx] per example where idx is batched: advanced indexing with the batch
    position as one more index array, so one gather serves every example."""
    adv_rank = max(p.rank for p in parts if p not in (SLICE, NONE, ELLIPSIS))
    new = []
    if info.batched:
        arange = b.tmp(prim_call('arange', [b.size()]), Info(True, 0), '_ex')
        new.append(b.lift(arange, Info(True, 0), adv_rank))
    for node, p in zip(nodes, parts):
        new.append(b.lift(node, p, adv_rank) if p.batched else n.deepcopy(node))
    return n.Subscript(value=x, slice=n.tuple_(new) if len(new) > 1 else new[0], ctx=n.Load())


@rule('setitem')
def setitem(b, op, rhs):
    x, idx, v = op.inputs['a'], op.inputs['idx'], op.inputs['v']
    info, vinfo = b.info(x), b.info(v)
    nodes, parts = _index(b, idx)
    idx_batched = b.info(idx).batched or any(p.batched for p in parts)
    if _batched_mask(b, idx, parts) and info.elts is None:
        if len(parts) == 1 and parts[0].rank is not None and parts[0].rank == info.rank \
                and not vinfo.batched and vinfo.rank == 0:     # x[mask] = v: one write
            return prim_call('setitem', [b.broadcast(x, info), idx, v]), Info(True, info.rank)
        return loop_call(b, n.dotted('rt.setitem'), [x, idx, v], (), info.rank)
    if info.elts is not None or isinstance(info, DictInfo):
        if idx_batched:
            b.fail('codax vmap: writing into a list or tuple at a batched index')
        out = _updated(info, idx, vinfo)
        if isinstance(out, DictInfo) and out.batched:     # its values batched alike
            if not _fully_batched(info):
                x = _broadcast_tree(b, x, info)
            if not _fully_batched(vinfo):
                v = _broadcast_tree(b, v, vinfo)
            return prim_call('setitem', [x, idx, v]), _mark_batched(out)
        return rhs, out
    if not (info.batched or idx_batched or vinfo.batched):
        return rhs, Info(False, info.rank)
    sel_rank, first = _index_rank(info.rank, parts)
    value = _lifted_to(b, v, vinfo, sel_rank)
    target = b.broadcast(x, info)
    if value is None or not (_advanced_ok(parts) or idx_batched):
        return loop_call(b, n.dotted('rt.setitem'), [x, idx, v], (), info.rank)
    if not idx_batched:
        return prim_call('setitem', [target, _past_batch(b, idx, nodes), value]), \
            Info(True, info.rank)
    if sel_rank is None or not first or nodes is None:
        return loop_call(b, n.dotted('rt.setitem'), [x, idx, v], (), info.rank)
    where = _gather(b, target, Info(True, info.rank), nodes, parts).slice
    return prim_call('setitem', [target, b.tmp(where, UNKNOWN, '_idx'), value]), \
        Info(True, info.rank)


def _lifted_to(b, v, vinfo, rank):
    """v to be written into a batched selection of per-example `rank`: a batched
    v is lifted to it (None when that needs ranks not known here)."""
    if not vinfo.batched:
        return v
    if rank is None or vinfo.rank is None:
        return None
    return b.lift(v, vinfo, rank)


def _updated(info, idx, vinfo):
    if isinstance(info.elts, tuple):
        k = _int(idx)
        elts = list(info.elts)
        if k is not None and -len(elts) <= k < len(elts):
            elts[k] = vinfo
            return container(tuple(elts))
        return container(tuple(join(e, vinfo) for e in elts))
    if isinstance(info.elts, dict) and isinstance(idx, n.Constant):
        return container({**info.elts, idx.value: vinfo})
    if isinstance(info, DictInfo) or isinstance(info.elts, dict):   # a key known at run time
        item = vinfo
        for e in _elts_of(info):
            item = join(item, e)
        return DictInfo(item)
    return info


def _elts_of(info):
    """The facts of every element of a container."""
    parts = list(info.elts.values()) if isinstance(info.elts, dict) else list(info.elts or ())
    return parts + ([info.item] if info.item is not None else [])


@rule('append')
def append(b, op, rhs):
    xs, v = op.inputs['xs'], op.inputs['v']
    info, vinfo = b.info(xs), b.info(v)
    elts = tuple(info.elts) if isinstance(info.elts, tuple) else ()
    item = info.item
    if item is None and not elts and info.batched:
        # a batched list whose elements are not known here (a helper's result,
        # batched per example): its elements are batched, as list elements are
        item = Info(True, None)
    for e in elts + (vinfo,):
        item = join(item, e)
    if item.batched and not _fully_batched(vinfo):    # every element batched alike
        v = _broadcast_tree(b, v, vinfo)
    if item.batched and any(not _fully_batched(e) for e in elts):
        xs = _all_batched(b, xs, info, list(elts))      # the elements so far, repeated
    elif item.batched and not elts and not info.batched:
        # a list of unknown length, unbatched so far (a tape of tangents that
        # held only zeros): every element so far repeated along the batch
        xs = b.tmp(n.call('rt.batch_outputs', [xs, n.const(None), n.const(0), b.size()]),
                   Info(True, None, None, _mark_batched(info.item) if info.item else None))
    return prim_call('append', [xs, v]), Info(item.batched, None, None, item)


def _broadcast_tree(b, node, info):
    """An unbatched value (or a container with unbatched parts) repeated along
    the batch, leaf by leaf."""
    if info.elts is None and info.item is None and info.rank is not None:
        return b.broadcast(node, info)
    out = n.call('rt.batch_outputs', [node, literal(info.axes()), broadcast_axes(info), b.size()])
    return b.tmp(out, _mark_batched(info))


@rule('iterate')
def iterate(b, op, rhs):
    """for x in xs: batched xs is walked along its first per-example axis
    (normalize indexes it with the loop counter, which getitem batches)."""
    info = b.info(op.inputs['obj'])
    if isinstance(info, DictInfo) or isinstance(info.elts, dict):    # a dict walks its keys
        from .python import _keys_info
        return rhs, _keys_info(info)
    return rhs, info

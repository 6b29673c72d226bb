"""Batching rules: how each kind of primitive pushes the batch axis through.

A record names its rule in its `batch` field; `RULES[name](b, op, rhs)`
returns the batched right-hand side and the Info of its value, emitting any
auxiliary statements through `b` (the Batch pass). Every rule also serves
statements with no batched input, for which it only infers the rank.
The batch axis is always axis 0 of a batched value.
"""
import string

from runtime import TABLE

from . import nodes as n
from .batch import NONE, SCALAR, UNKNOWN, Info, container, join
from .ir import CallInfo, describe

STATIC = frozenset({'out', 'where', 'dtype', 'decimals', 'casting', 'order', 'subok'})
RULES = {}


def rule(*names):
    def register(fn):
        for name in names:
            RULES[name] = fn
        return fn
    return register


def rewrite(b, rhs):
    """(batched rhs, Info) for one right-hand side."""
    op = describe(rhs)
    if op.kind == 'copy':
        return rhs, b.info(op.inputs[0])
    if op.kind == 'container':
        if isinstance(rhs, n.Dict):
            return rhs, container({k.value: b.info(v) for k, v in zip(rhs.keys, rhs.values)})
        return rhs, container(tuple(b.info(e) for e in rhs.elts))
    if isinstance(rhs, n.Compare):
        if any(isinstance(o, (n.Is, n.IsNot, n.In, n.NotIn)) for o in rhs.ops):
            if batched(b, rhs.left, *rhs.comparators):
                b.fail('codax vmap: `is` / `in` tests on a value that differs between examples')
            return rhs, UNKNOWN
        return elementwise_of(b, rhs, [rhs.left] + list(rhs.comparators))
    if isinstance(rhs, n.UnaryOp) and isinstance(rhs.op, n.Not):
        info = b.info(rhs.operand)
        if not info.batched:
            return rhs, Info(False, info.rank)
        return prim_call('logical_not', [rhs.operand]), Info(True, info.rank)
    if isinstance(rhs, n.Attribute):
        return attribute(b, rhs)
    if op.kind == 'prim':
        return RULES[op.prim.batch](b, op, rhs)
    if op.kind == 'call':
        return user_call(b, op, rhs)
    inputs = [node for node in n.walk(rhs) if isinstance(node, n.Name)]
    if any(b.info(x).batched for x in inputs):
        if op.kind == 'native' and isinstance(rhs, n.Call):
            return loop_call(b, rhs.func, rhs.args, rhs.keywords, None)
        b.fail('codax vmap cannot batch this expression')
    return rhs, UNKNOWN


def batched(b, *nodes):
    return any(b.info(x).batched for x in nodes if x is not None)


def prim_call(name, args, keywords=()):
    """A call of primitive `name` as generated code writes it (impl + record)."""
    prim = TABLE[name]
    call = n.call(prim.impl, list(args), dict(keywords))
    call.codax = CallInfo('prim', prim, label=name)
    return call


def literal(value):
    """A node for a Python literal made of tuples, dicts, ints, bools and None."""
    if isinstance(value, tuple):
        return n.tuple_([literal(v) for v in value])
    if isinstance(value, dict):
        return n.Dict(keys=[n.const(k) for k in value], values=[literal(v) for v in value.values()])
    return n.const(value)


def _int(node):
    return node.value if isinstance(node, n.Constant) and type(node.value) is int else None


# ---- the rule of last resort ----

def loop_call(b, func, args, keywords, rank):
    """rt.batch_loop(f, axes, (args), {kwargs}): per example, then stacked."""
    axes = (tuple(b.info(a).axes() for a in args),
            {k.arg: b.info(k.value).axes() for k in keywords or ()})
    call = n.call('rt.batch_loop', [n.deepcopy(func), literal(axes),
                                    n.tuple_([n.deepcopy(a) for a in args]),
                                    n.Dict(keys=[n.const(k.arg) for k in keywords or ()],
                                           values=[n.deepcopy(k.value)
                                                   for k in keywords or ()])])
    return call, Info(True, rank)


@rule('loop')
def loop(b, op, rhs, rank=None):
    if not any(b.info(node).batched for node in op.inputs.values() if node is not None):
        return rhs, Info(False, rank)
    if isinstance(rhs, n.Subscript):
        return loop_call(b, n.dotted('rt.getitem'), [rhs.value, op.inputs['idx']], (), rank)
    return loop_call(b, rhs.func, rhs.args, rhs.keywords, rank)


# ---- element-wise ----

def elementwise_of(b, rhs, operands):
    infos = [b.info(x) for x in operands]
    ranks = [i.rank for i in infos if i is not UNKNOWN or True]
    known = [r for r, x in zip(ranks, operands) if not _is_none(x)]
    rank = max(known) if known and None not in known else None
    if not any(i.batched for i in infos):
        return rhs, Info(False, rank)
    if rank is None:
        return _loop_rhs(b, rhs, rank)
    swap = {id(x): b.lift(x, i, rank) for x, i in zip(operands, infos) if i.batched}
    return _copy_replacing(rhs, swap), Info(True, rank)


def _is_none(node):
    return node is None or isinstance(node, n.Constant) and node.value is None


_COMPARE = {n.Lt: 'less', n.LtE: 'less_equal', n.Gt: 'greater', n.GtE: 'greater_equal',
            n.Eq: 'equal', n.NotEq: 'not_equal'}


def _loop_rhs(b, rhs, rank):
    """Ranks not known at compile time (values from a batched dynamic call):
    the operands are lined up at run time, where their ndims are known."""
    op = describe(rhs)
    if isinstance(rhs, n.Compare) and len(rhs.ops) == 1 and type(rhs.ops[0]) in _COMPARE:
        func, operands = n.dotted('xp.' + _COMPARE[type(rhs.ops[0])]), [rhs.left,
                                                                         rhs.comparators[0]]
    elif op.kind == 'prim' and not isinstance(rhs, n.Call) or (
            isinstance(rhs, n.Call) and not rhs.keywords and op.kind == 'prim'):
        params = [p for p in op.prim.params if p not in STATIC and not _is_none(op.inputs.get(p))]
        if isinstance(rhs, n.Call) and len(rhs.args) != len(params):
            return loop_call(b, rhs.func, rhs.args, rhs.keywords, rank)
        func, operands = n.dotted(op.prim.impl), [op.inputs[p] for p in params]
    elif isinstance(rhs, n.Call):
        return loop_call(b, rhs.func, rhs.args, rhs.keywords, rank)
    else:
        b.fail('codax vmap: the ranks of these operands are not known here')
    axes = n.tuple_([n.const(0 if b.info(x).batched else None) for x in operands])
    return n.call('rt.elementwise_batched', [func, axes] + list(operands)), Info(True, None)


@rule('elementwise')
def elementwise(b, op, rhs):
    if any(b.info(op.inputs.get(p)).batched for p in STATIC if p in op.inputs):
        return loop(b, op, rhs)
    operands = [node for p, node in op.inputs.items()
                if p not in STATIC and not _is_none(node)]
    return elementwise_of(b, rhs, operands)


# ---- reductions ----

def _axes_of(node):
    """A literal axis argument as a tuple of ints, None for `None`, or 'dynamic'."""
    if _is_none(node):
        return None
    if _int(node) is not None:
        return (node.value,)
    if isinstance(node, n.Constant) and isinstance(node.value, tuple):
        return tuple(node.value)
    if isinstance(node, n.Tuple) and all(_int(e) is not None for e in node.elts):
        return tuple(e.value for e in node.elts)
    return 'dynamic'


def _shifted(axes):
    return tuple(a + 1 if a >= 0 else a for a in axes)


def _with_args(rhs, op, replace):
    """rhs (a call) with parameters replaced: {param: node}, by keyword."""
    call = n.deepcopy(rhs)
    params = op.prim.params
    args = list(call.args)
    keywords = [k for k in call.keywords]
    for param, node in replace.items():
        index = params.index(param)
        if index < len(args) and op.prim.signature.parameters[param].kind in (
                0, 1):  # positional-only or positional-or-keyword
            args[index] = node
        else:
            keywords = [k for k in keywords if k.arg != param] + [n.keyword(arg=param, value=node)]
    call.args, call.keywords = args, keywords
    return call


def _data_param(op):
    return op.prim.params[0]


@rule('reduce', 'scan', 'arg')
def reduction(b, op, rhs):
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
    if batched(b, *others) or keepdims == 'dynamic':
        return loop(b, op, rhs, rank)
    if axes == 'dynamic':
        axis = b.tmp(n.call('rt.shift_axis', [op.inputs['axis']]), UNKNOWN, '_axis')
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


def _given(rhs, op):
    if not isinstance(rhs, n.Call):
        return set()
    return set(op.prim.params[:len(rhs.args)]) | {k.arg for k in rhs.keywords}


def _reduced_rank(kind, rank, axes, keepdims):
    if rank is None or axes == 'dynamic' or keepdims == 'dynamic':
        return None
    if kind == 'scan':
        return 1 if axes is None else rank
    if keepdims:
        return rank
    if axes is None:
        return 0
    return rank - len(axes)


@rule('norm')
def norm(b, op, rhs):
    x, info = op.inputs['x'], b.info(op.inputs['x'])
    axes = _axes_of(op.inputs.get('axis'))
    ord_ = op.inputs.get('ord')
    keep = op.inputs.get('keepdims')
    keepdims = bool(keep.value) if isinstance(keep, n.Constant) else False
    rank = _reduced_rank('reduce', info.rank, axes, keepdims)
    if not info.batched:
        return rhs, Info(False, rank)
    plain = _is_none(ord_) and not keepdims
    if axes is None and plain:            # the 2-norm of the flattened example
        flat = b.tmp(prim_call('reshape', [x, n.tuple_([b.size(), n.const(-1)])]),
                     Info(True, 1))
        return _with_args(rhs, op, {'x': flat, 'axis': n.const(1)}), Info(True, 0)
    if isinstance(axes, tuple) and not batched(b, ord_):
        axis = n.const(_shifted(axes)[0]) if len(axes) == 1 else n.const(_shifted(axes))
        return _with_args(rhs, op, {'axis': axis}), Info(True, rank)
    return loop(b, op, rhs, rank)


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
    if rank is None or min(r1, r2) == 0 or op.prim.name == 'dot' and max(r1, r2) > 2:
        if op.prim.name == 'dot' and r1 is not None and r2 is not None and min(r1, r2) == 0:
            return elementwise_of(b, prim_call('multiply', [x1, x2]), [x1, x2])
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
    if i1.batched and not i2.batched and (r1 >= 2 or r2 <= 2):
        return prim_call('matmul', [x1, x2])              # rows of the batch: one product
    if i2.batched and not i1.batched and r2 >= 2:
        return prim_call('matmul', [x1, x2])
    if i2.batched and not i1.batched and r1 <= 2:         # W @ x per example: X @ W.T
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
    a, v = op.inputs['a'], op.inputs['b']
    ia, iv = b.info(a), b.info(v)
    rank = iv.rank
    if not (ia.batched or iv.batched):
        return rhs, Info(False, rank)
    if iv.rank == 1 and iv.batched:       # a vector per example: a column for NumPy
        col = b.tmp(n.Subscript(value=v, slice=n.tuple_([n.Constant(value=Ellipsis, kind=None),
                                                         n.const(None)]), ctx=n.Load()),
                    Info(True, 2))
        x = b.tmp(prim_call('solve', [a, col]), Info(True, 2))
        return n.Subscript(value=x, slice=n.tuple_([n.Constant(value=Ellipsis, kind=None),
                                                    n.const(0)]), ctx=n.Load()), Info(True, 1)
    if iv.rank in (1, 2):
        return rhs, Info(True, rank)
    return loop(b, op, rhs, rank)


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


# ---- shapes ----

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
    if batched(b, shape):
        return loop(b, op, rhs, rank)
    if name == 'ravel':
        new_shape = n.tuple_([b.size(), n.const(-1)])
    elif isinstance(shape, n.Tuple):
        new_shape = n.tuple_([b.size()] + list(shape.elts))
    elif _int(shape) is not None or b.info(shape).rank == 0:
        new_shape = n.tuple_([b.size(), shape])
    else:
        size = n.tuple_([b.size()])
        tail = b.tmp(n.call(n.name('tuple'), [shape]), UNKNOWN, '_shape')
        new_shape = b.tmp(n.BinOp(left=size, op=n.Add(), right=tail), UNKNOWN, '_shape')
    order = op.inputs.get('order')
    args = [x, new_shape] + ([order] if order is not None and not (
        isinstance(order, n.Constant) and order.value == 'C') else [])
    return prim_call('reshape', args), Info(True, rank)


def _shape_rank(b, shape):
    if shape is None:
        return None
    if isinstance(shape, n.Tuple):
        return len(shape.elts)
    if _int(shape) is not None:
        return 1
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
    'expand_dims': {'axes': {'axis': (None, None)}, 'rank': lambda r: r + 1},
    'flip': {'axes': {'axis': (None, 'all')}, 'rank': lambda r: r},
    'fliplr': {'axes': {}, 'rank': lambda r: r},
    'flipud': {'axes': {}, 'rank': lambda r: r},
    'diagonal': {'axes': {'axis1': (0, None), 'axis2': (1, None)}, 'rank': lambda r: r - 1},
    'trace': {'axes': {'axis1': (0, None), 'axis2': (1, None)}, 'rank': lambda r: r - 2},
    'squeeze': {'axes': {'axis': (None, None)}, 'rank': lambda r: None},
    'repeat': {'axes': {'axis': (None, None)}, 'rank': lambda r: r},
    'roll': {'axes': {'axis': (None, None)}, 'rank': lambda r: r},
    'cumsum_axes': {'axes': {}, 'rank': lambda r: r},
    'take': {'axes': {'axis': (None, None)}, 'rank': lambda r: None},
    'split': {'axes': {'axis': (0, None)}, 'rank': lambda r: None},
}


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
        axis = 1 if name == 'vstack' or r >= 2 else 0
        if name == 'vstack' and r < 2 or name == 'hstack' and r == 0:
            return loop(b, op, rhs, rank)
        return prim_call('concatenate', [seq, n.const(axis + 1)]), Info(True, rank)
    axis = _axes_of(op.inputs.get('axis') or n.const(0))
    if axis is None or axis == 'dynamic' or len(axis) != 1:
        return loop(b, op, rhs, rank)
    return prim_call(name, [seq], [('axis', n.const(_shifted(axis)[0]))]), Info(True, rank)


def _elements(b, seq, info):
    """Infos of a sequence's elements; one stands for all in a built-up list."""
    if isinstance(info.elts, tuple):
        return list(info.elts)
    if info.item is not None:
        return [info.item]
    return None


def _all_batched(b, seq, info, elts):
    """The sequence with its unbatched elements broadcast along the batch."""
    if all(e.batched for e in elts):
        return seq
    parts = []
    for k, e in enumerate(elts):
        item = b.tmp(n.Subscript(value=seq, slice=n.const(k), ctx=n.Load()), e, '_elt')
        parts.append(b.broadcast(item, e))
    return b.tmp(n.List(elts=parts, ctx=n.Load()),
                 container(tuple(Info(True, e.rank) for e in elts)), '_seq')


@rule('broadcast_to')
def broadcast_to(b, op, rhs):
    x, shape = op.inputs['array'], op.inputs['shape']
    info = b.info(x)
    rank = _shape_rank(b, shape)
    if not info.batched:
        return (loop(b, op, rhs, rank) if batched(b, shape) else (rhs, Info(False, rank)))
    if not isinstance(shape, n.Tuple) or rank is None:
        return loop(b, op, rhs, rank)
    lifted = b.lift(x, info, rank)
    return prim_call('broadcast_to', [lifted, n.tuple_([b.size()] + list(shape.elts))]), \
        Info(True, rank)


@rule('array')
def array(b, op, rhs):
    """np.array / asarray: of a batched array, the same; of a list, a stack."""
    param = _data_param(op)
    x, info = op.inputs[param], b.info(op.inputs[param])
    if not info.batched:
        return rhs, Info(False, info.rank if info.elts is None else None)
    if info.elts is None:
        return same(b, op, rhs)
    elts = list(info.elts) if isinstance(info.elts, tuple) else None
    if elts is None or len({e.rank for e in elts}) != 1 or elts[0].rank is None:
        return loop(b, op, rhs)
    seq = _all_batched(b, x, info, elts)
    out = prim_call('stack', [seq], [('axis', n.const(1))])
    return out, Info(True, elts[0].rank + 1)


# ---- indexing ----

def _index_parts(node):
    return list(node.elts) if isinstance(node, n.Tuple) else [node]


def _index_rank(b, rank, parts):
    """Per-example rank of x[parts]; None when not inferable. Also whether the
    advanced (array) indices are adjacent and come first."""
    if rank is None:
        return None, False
    consumed, added, adv, positions = 0, 0, [], []
    ellipsis = False
    for k, p in enumerate(parts):
        if isinstance(p, n.Slice) or _is_slice_call(p):
            consumed += 1
        elif isinstance(p, n.Constant) and p.value is None:
            added += 1
        elif isinstance(p, n.Constant) and p.value is Ellipsis:
            ellipsis = True
        else:
            r = b.info(p).rank
            if r is None:
                return None, False
            consumed += 1
            if r > 0 or b.info(p).batched:
                adv.append(r)
                positions.append(k)
            else:
                adv.append(0)
                positions.append(k)
    out = rank - consumed + added + (max(adv) if adv else 0)
    first = not positions or positions == list(range(len(positions)))
    return out, first and not ellipsis


def _is_slice_call(node):
    return isinstance(node, n.Call) and isinstance(node.func, n.Name) and node.func.id == 'slice'


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
    x, idx_expr = op.inputs['a'], op.inputs['idx']
    info = b.info(x)
    if info.elts is not None or info.item is not None:     # a Python container
        if batched(b, *_index_parts(idx_expr)):
            b.fail('codax vmap: indexing a list or tuple with a batched index')
        return rhs, _item_info(info, idx_expr)
    if info.batched and info.rank is None:        # an array or a container: seen at run time
        if batched(b, *_index_parts(idx_expr)):
            return _loop_getitem(b, x, idx_expr, None)
        return n.call('rt.getitem_batched', [x, idx_expr]), Info(True, None)
    index = rhs.slice if isinstance(rhs, n.Subscript) else idx_expr
    parts = _index_parts(index)
    rank, simple = _index_rank(b, info.rank, parts)
    idx_batched = batched(b, *[p for p in parts if isinstance(p, n.Name)])
    if not info.batched and not idx_batched:
        return rhs, Info(False, rank)
    if not idx_batched:
        if info.rank is None and not isinstance(index, n.Tuple) and \
                b.info(index).rank is None and b.info(index).elts is None:
            where = b.tmp(n.call('rt.batch_index', [index]), UNKNOWN, '_idx')
            return n.Subscript(value=x, slice=where, ctx=n.Load()), Info(True, None)
        if rank is None or not _advanced_ok(b, parts):
            return _loop_getitem(b, x, idx_expr, rank)
        new = n.tuple_([n.Slice(lower=None, upper=None, step=None)] + [n.deepcopy(p) for p in parts])
        return n.Subscript(value=x, slice=new, ctx=n.Load()), Info(True, rank)
    if rank is None or not simple:
        return _loop_getitem(b, x, idx_expr, rank)
    return _gather(b, x, info, parts, rank), Info(True, rank)


def _advanced_ok(b, parts):
    """Whether prefixing `:` keeps NumPy's placement of advanced-index axes:
    true unless the example's advanced indices are separated by a slice."""
    positions = [k for k, p in enumerate(parts) if isinstance(p, n.Name)
                 and (b.info(p).rank or 0) > 0]
    return not positions or positions == list(range(positions[0], positions[-1] + 1))


def _loop_getitem(b, x, idx, rank):
    return loop_call(b, n.dotted('rt.getitem'), [x, idx], (), rank)


def _gather(b, x, info, parts, rank):
    """x[idx] per example where idx is batched: advanced indexing with the batch
    position as one more index array, so one gather serves every example."""
    adv_rank = max(b.info(p).rank for p in parts if isinstance(p, n.Name) or _int(p) is not None)
    new = []
    if info.batched:
        arange = b.tmp(prim_call('arange', [b.size()]), Info(True, 0), '_ex')
        new.append(b.lift(arange, Info(True, 0), adv_rank))
    for p in parts:
        if isinstance(p, n.Name) and b.info(p).batched:
            new.append(b.lift(p, b.info(p), adv_rank))
        else:
            new.append(n.deepcopy(p))
    return n.Subscript(value=x, slice=n.tuple_(new) if len(new) > 1 else new[0], ctx=n.Load())


@rule('setitem')
def setitem(b, op, rhs):
    x, idx, v = op.inputs['a'], op.inputs['idx'], op.inputs['v']
    info, vinfo = b.info(x), b.info(v)
    if info.elts is not None:
        if batched(b, *_index_parts(idx)):
            b.fail('codax vmap: writing into a list or tuple at a batched index')
        return rhs, _updated(info, idx, vinfo)
    parts = _index_parts(idx)
    idx_batched = batched(b, *[p for p in parts if isinstance(p, n.Name)])
    if not (info.batched or idx_batched or vinfo.batched):
        return rhs, Info(False, info.rank)
    sel_rank, simple = _index_rank(b, info.rank, parts)
    if sel_rank is None or vinfo.rank is None or (idx_batched and not simple) or \
            not _advanced_ok(b, parts) or any(isinstance(p, n.Call) and not _is_slice_call(p)
                                             for p in parts):
        return loop_call(b, n.dotted('rt.setitem'), [x, idx, v], (), info.rank)
    target = b.broadcast(x, info)
    value = b.lift(v, vinfo, sel_rank)
    if idx_batched:
        adv_rank = max(b.info(p).rank for p in parts if isinstance(p, n.Name))
        arange = b.tmp(prim_call('arange', [b.size()]), Info(True, 0), '_ex')
        new = [b.lift(arange, Info(True, 0), adv_rank)]
        new += [b.lift(p, b.info(p), adv_rank) if isinstance(p, n.Name) and b.info(p).batched
                else n.deepcopy(p) for p in parts]
    else:
        new = [n.call(n.name('slice'), [n.const(None)] * 3)] + [n.deepcopy(p) for p in parts]
    index = b.tmp(n.tuple_(new), UNKNOWN, '_idx')
    return prim_call('setitem', [target, index, value]), Info(True, info.rank)


def _updated(info, idx, vinfo):
    if isinstance(info.elts, tuple):
        k = _int(idx)
        elts = list(info.elts)
        if k is not None and -len(elts) <= k < len(elts):
            elts[k] = vinfo
            return container(tuple(elts))
        return container(tuple(join(e, vinfo) for e in elts))
    if isinstance(info.elts, dict) and isinstance(idx, n.Constant):
        return container(dict(info.elts, **{idx.value: vinfo}))
    return info


@rule('append')
def append(b, op, rhs):
    xs, v = op.inputs['xs'], op.inputs['v']
    info, vinfo = b.info(xs), b.info(v)
    elts = tuple(info.elts) if isinstance(info.elts, tuple) else ()
    item = info.item
    for e in elts + (vinfo,):
        item = join(item, e)
    if item.batched and not vinfo.batched:           # every element batched alike
        v = b.broadcast(v, vinfo)
    if item.batched and any(not e.batched for e in elts):
        b.fail('codax vmap: a list holds batched and unbatched values')
    return prim_call('append', [xs, v]), Info(item.batched, None, None, item)


@rule('iterate')
def iterate(b, op, rhs):
    """for x in xs: batched xs is walked along its first per-example axis
    (normalize indexes it with the loop counter, which getitem batches)."""
    info = b.info(op.inputs['obj'])
    return rhs, info


# ---- Python builtins and attributes ----

@rule('py_len')
def py_len(b, op, rhs):
    x, info = op.inputs['obj'], b.info(op.inputs['obj'])
    if not info.batched or info.elts is not None:
        return rhs, SCALAR
    shape = b.tmp(n.Attribute(value=x, attr='shape', ctx=n.Load()), UNKNOWN, '_shape')
    return n.Subscript(value=shape, slice=n.const(1), ctx=n.Load()), SCALAR


def attribute(b, rhs):
    x, info = rhs.value, b.info(rhs.value)
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


@rule('shape_of')
def shape_of(b, op, rhs):
    """np.shape / np.ndim / np.size of a batched array: of one example."""
    attr = op.prim.name.replace('rt_', '')
    node = op.inputs[_data_param(op)]
    if attr == 'size' and not _is_none(op.inputs.get('axis')):
        return loop(b, op, rhs, 0)
    if not b.info(node).batched:
        return rhs, attribute(b, n.Attribute(value=node, attr=attr, ctx=n.Load()))[1]
    return attribute(b, n.Attribute(value=node, attr=attr, ctx=n.Load()))


@rule('sweeps')
def sweeps(b, op, rhs):
    """rt.sweeps(f, *args): the generated sweeps depend on dtypes, not on the
    batch: the same functions serve every example."""
    return rhs, UNKNOWN


@rule('pullback_function')
def pullback_function(b, op, rhs):
    return rhs, UNKNOWN


@rule('pullback_state')
def pullback_state(b, op, rhs):
    info = b.info(op.inputs['pb'])
    if isinstance(info.elts, tuple) and len(info.elts) == 2:
        return rhs, info.elts[1]
    return rhs, Info(info.batched, None)


@rule('unbatched_result')
def unbatched_result(b, op, rhs):
    """Tests on the kind of a value (rt.is_zero) are the same for every example."""
    return rhs, SCALAR


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
    it, info = op.inputs['iterable'], b.info(op.inputs['iterable'])
    start = op.inputs.get('start')
    if not batched(b, it, start):
        return rhs, Info(False, None)
    if info.elts is None and info.rank is not None and info.batched:   # sum over an array
        if not _is_none(start) and not (isinstance(start, n.Constant) and start.value == 0):
            return loop(b, op, rhs)
        return prim_call('sum', [it], [('axis', n.const(1))]), Info(True, info.rank - 1)
    elts = list(info.elts) if isinstance(info.elts, tuple) else []
    ranks = {e.rank for e in elts}
    if len(ranks) == 1 and None not in ranks and all(e.batched for e in elts):
        return rhs, Info(True, ranks.pop())
    return loop(b, op, rhs)


@rule('py_extremum')
def py_extremum(b, op, rhs):
    args = op.inputs['args'].elts
    if len(args) == 2:
        call = prim_call('maximum' if op.prim.name == 'py_max' else 'minimum', list(args))
        if not batched(b, *args):
            return rhs, Info(False, max((b.info(a).rank or 0) for a in args))
        return elementwise_of(b, call, list(args))
    return loop(b, op, rhs)


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


@rule('unbatched_only')
def unbatched_only(b, op, rhs):
    """Integer bookkeeping (range, slice bounds): a batched value here has no
    vectorized meaning."""
    if batched(b, *op.inputs.values()):
        b.fail(f'codax vmap: {op.prim.name.replace("py_", "")}() of a value that differs '
               'between examples; index with a batched array instead')
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
    if info.elts is None and info.batched:
        return loop(b, op, rhs)
    if isinstance(info.elts, dict):
        values = tuple(info.elts[k] for k in info.elts)
        if op.prim.name == 'dict_items':
            return rhs, container(tuple(container((SCALAR, v)) for v in values))
        if op.prim.name == 'dict_keys':
            return rhs, container(tuple(UNKNOWN for _ in values))
        return rhs, container(values)
    return rhs, info


# ---- user functions ----

def user_call(b, op, rhs):
    """A call of a user function with batched arguments: the callee batched in
    turn (rt.vmapped), with out_axes 0 for all of its outputs."""
    args = list(rhs.args) + [k.value for k in rhs.keywords]
    if not batched(b, *args, rhs.func):
        return rhs, UNKNOWN
    if b.info(rhs.func).batched:
        b.fail('codax vmap: the function called here differs between examples')
    infos = [b.info(a) for a in rhs.args]
    if rhs.keywords:
        b.fail('codax vmap: pass arguments of batched user-function calls by position')
    axes = tuple(i.axes() for i in infos)
    info = rhs.codax.obj if getattr(rhs, 'codax', None) is not None else None
    out = b.callee_info(info, infos) if b.callee_info is not None and info is not None \
        else None
    fn = b.tmp(n.call('rt.vmapped', [rhs.func, literal(axes)]), UNKNOWN, '_batched')
    call = n.call(fn, list(rhs.args))
    call.codax = CallInfo('dynamic', label='a batched function')
    return call, out if out is not None else Info(True, None)


# ---- the runtime's adjoint helpers (vmap of grad) ----

@rule('seed')
def seed(b, op, rhs):
    info = b.info(op.inputs['out'])
    if not info.batched:
        return rhs, SCALAR
    if info.rank not in (0, None):
        b.fail('grad requires a scalar output per example; this one has rank '
               f'{info.rank}')
    if info.rank is None:
        return loop(b, op, rhs, 0)
    return n.const(1.0), SCALAR


@rule('unbroadcast')
def unbroadcast(b, op, rhs):
    """rt.unbroadcast(g, x, y): g summed to x's shape. Batched, it is always
    made full (x's rank), so the result's rank is known."""
    g, x, y = (op.inputs[p] for p in ('cot', 'x', 'y'))
    gi, xi, yi = b.info(g), b.info(x), b.info(y)
    if not (gi.batched or xi.batched or yi.batched):
        return rhs, Info(False, xi.rank if xi.rank == yi.rank == gi.rank else None)
    if xi.rank is None or yi.rank is None or gi.rank is None:
        return loop(b, op, rhs, xi.rank)
    full = _materialize(b, g, gi, y, yi)
    if xi.batched:
        return n.call('rt.sum_to_like', [full, x]), Info(True, xi.rank)
    return n.call('rt.sum_to_example', [full, x]), Info(True, xi.rank)


def _materialize(b, g, gi, y, yi):
    """g broadcast to the batched shape of y (both may or may not be batched)."""
    g = b.lift(g, gi, yi.rank)
    target = b.broadcast(y, yi) if not yi.batched else y
    if not gi.batched and not yi.batched:
        return g
    return b.tmp(n.call('rt.materialize', [g, target]), Info(True, yi.rank), '_full')


@rule('materialize')
def materialize(b, op, rhs):
    """rt.materialize(g, y) / rt.dense(t, x): g broadcast to y's shape."""
    g, y = (op.inputs[p] for p in op.prim.params[:2])
    gi, yi = b.info(g), b.info(y)
    if not (gi.batched or yi.batched):
        return rhs, Info(False, yi.rank)
    if gi.rank is None or yi.rank is None:
        return loop(b, op, rhs, yi.rank)
    target = b.broadcast(y, yi)
    return n.call('rt.materialize', [b.lift(g, gi, yi.rank), target]), Info(True, yi.rank)


@rule('shifted_axis_helper')
def shifted_axis_helper(b, op, rhs):
    """Helpers with an `axis` parameter that only read shapes (sum_vjp,
    keep_dims, extremum_vjp): with every operand full and batched, the same
    helper with the axis shifted past the batch axis."""
    params = [p for p in op.prim.params if p not in ('axis', 'keepdims')]
    nodes = [op.inputs.get(p) for p in params]
    infos = [b.info(x) for x in nodes]
    axes = _axes_of(op.inputs.get('axis'))
    ref = {'rt_sum_vjp': 'x', 'rt_keep_dims': 'x', 'rt_extremum_vjp': 'x'}[op.prim.name]
    xinfo = b.info(op.inputs[ref])
    out_rank = xinfo.rank if op.prim.name != 'rt_keep_dims' else xinfo.rank
    if not any(i.batched for i in infos):
        return rhs, Info(False, None)
    if axes == 'dynamic' or xinfo.rank is None or any(i.rank is None for i in infos) or \
            batched(b, op.inputs.get('keepdims')):
        return loop(b, op, rhs, out_rank)
    keep = op.inputs.get('keepdims')
    keepdims = bool(keep.value) if isinstance(keep, n.Constant) else False
    reduced = xinfo.rank if keepdims else (0 if axes is None else xinfo.rank - len(axes))
    axis = n.const(tuple(range(1, xinfo.rank + 1)) if axes is None else _shifted(axes))
    replace = {}
    for p, x, i in zip(params, nodes, infos):
        if p == ref:
            replace[p] = b.broadcast(x, i)
        elif p in ('cot', 'y'):       # reduction-shaped: full and batched
            target_rank = reduced
            lifted = b.lift(x, i, target_rank) if i.batched else x
            replace[p] = lifted if i.batched else b.broadcast(
                b.lift(x, i, target_rank), Info(False, i.rank))
        else:
            replace[p] = b.broadcast(x, i)
    replace['axis'] = axis
    call = _with_args(rhs, op, replace)
    return call, Info(True, out_rank if op.prim.name != 'rt_keep_dims' else xinfo.rank)


@rule('matmul_vjp')
def matmul_vjp(b, op, rhs):
    """rt.matmul_vjp / dot_vjp per example, expanded into the products they
    compute, which are then batched like any product."""
    g, x1, x2, ans, which = (op.inputs[p] for p in op.prim.params[:5])
    infos = [b.info(v) for v in (g, x1, x2)]
    r1, r2 = infos[1].rank, infos[2].rank
    w = _int(which)
    if not any(i.batched for i in infos):
        return rhs, Info(False, [r1, r2][w] if w is not None else None)
    if w is None or r1 is None or r2 is None or r1 > 2 or r2 > 2 or min(r1, r2) == 0 \
            or infos[0].rank is None:
        return loop(b, op, rhs, [r1, r2][w] if w is not None and r1 is not None
                    and r2 is not None else None)
    gfull = _materialize(b, g, infos[0], ans, b.info(ans)) if b.info(ans).rank is not None \
        and infos[0].rank < b.info(ans).rank else g
    gi = Info(infos[0].batched or b.info(ans).batched, b.info(ans).rank) \
        if gfull is not g else infos[0]
    other, oi = (x2, infos[2]) if w == 0 else (x1, infos[1])
    mine = [r1, r2][w]
    if r1 == 1 and r2 == 1:                               # inner product: g * other
        return elementwise_of(b, prim_call('multiply', [gfull, other]), [gfull, other])
    if w == 0 and r2 == 1:                                # g (n) outer x2 (m)
        return _outer(b, gfull, gi, other, oi), Info(True, 2)
    if w == 1 and r1 == 1:                                # x1 (m) outer g (k)
        return _outer(b, other, oi, gfull, gi), Info(True, 2)
    if w == 0:                                            # g @ x2.T ; or x2 @ g for r1 == 1
        if r1 == 1:
            return _product(b, other, oi, gfull, gi, 1)
        t = _transposed(b, other, oi)
        return _product(b, gfull, gi, t, Info(oi.batched, 2), mine)
    if r2 == 1:                                           # x1.T @ g ; g @ x1 when x1 is 2-D
        return _product(b, gfull, gi, other, oi, 1)
    t = _transposed(b, other, oi)
    return _product(b, t, Info(oi.batched, 2), gfull, gi, mine)


def _transposed(b, x, info):
    if info.batched:
        return b.tmp(prim_call('swapaxes', [x, n.const(1), n.const(2)]), Info(True, 2))
    return b.tmp(prim_call('transpose', [x]), Info(False, 2))


def _product(b, x1, i1, x2, i2, rank):
    if not (i1.batched or i2.batched):
        return prim_call('matmul', [x1, x2]), Info(False, rank)
    return _matmul(b, x1, i1, x2, i2, rank), Info(True, rank)


def _outer(b, x1, i1, x2, i2):
    spec = f'{"z" * i1.batched}i,{"z" * i2.batched}j->zij'
    return prim_call('einsum', [n.const(spec), x1, x2])


@rule('item')
def item(b, op, rhs):
    """rt.item(g, key): an element of a container adjoint (or the zero)."""
    g, key = op.inputs['cot'], op.inputs['key']
    info = b.info(g)
    if info.elts is not None:
        return rhs, _item_info(info, key)
    if info.batched:
        return loop(b, op, rhs)
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
        return rhs, Info(gi.batched, None)
    parts = _index_parts(idx)
    if not (gi.batched or xi.batched or batched(b, *parts)):
        return rhs, Info(False, xi.rank)
    sel_rank, simple = _index_rank(b, xi.rank, parts)
    if sel_rank is None or gi.rank is None or batched(b, *parts) or not _advanced_ok(b, parts) \
            or any(isinstance(p, n.Call) and not _is_slice_call(p) for p in parts):
        return loop(b, op, rhs, xi.rank)
    target = b.broadcast(x, xi)
    value = b.lift(g, gi, sel_rank)
    new = [n.call(n.name('slice'), [n.const(None)] * 3)] + [n.deepcopy(p) for p in parts]
    index = b.tmp(n.tuple_(new), UNKNOWN, '_idx')
    return n.call('rt.getitem_vjp', [value, target, index]), Info(True, xi.rank)


@rule('add')
def adjoint_add(b, op, rhs):
    """rt.add(a, b): element-wise on arrays, leaf by leaf on containers."""
    x1, x2 = op.inputs['a'], op.inputs['b']
    i1, i2 = b.info(x1), b.info(x2)
    if i1.elts is not None or i2.elts is not None:
        if i1.elts is not None and i2.elts is not None:
            return rhs, join(i1, i2) if not (i1.batched or i2.batched) else _add_info(i1, i2)
        return rhs, i1 if i1.elts is not None else i2
    return elementwise_of(b, rhs, [x1, x2])


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
                else None
            if gel is None and gi.batched:
                return None
            gel = gel or [Info(False, 0)] * len(xi.elts)
            parts = [_finalize_spec(g, x) for g, x in zip(gel, xi.elts)]
            return None if None in parts else tuple(parts)
        if isinstance(xi.elts, dict):
            gel = gi.elts if isinstance(gi.elts, dict) else None
            if gel is None and gi.batched:
                return None
            parts = {k: _finalize_spec((gel or {}).get(k, Info(False, 0)), v)
                     for k, v in xi.elts.items()}
            return None if None in parts.values() else parts
    if gi.rank is None or xi.rank is None or gi.elts is not None:
        return None
    return (gi.batched, xi.batched, gi.rank, xi.rank)


def _all_batched_info(xi):
    if isinstance(xi.elts, tuple):
        return container(tuple(_all_batched_info(e) for e in xi.elts))
    if isinstance(xi.elts, dict):
        return container({k: _all_batched_info(e) for k, e in xi.elts.items()})
    return Info(True, xi.rank)


# ---- selection (batched if) ----

def select_expr(b, cond, x, xi, y, yi):
    """Per example, x where cond else y."""
    ci = b.info(cond)
    if xi is NONE or yi is NONE:           # one side unset (None): the other stands
        xi, yi = (None, yi) if xi is NONE else (xi, None)
    if xi is None or yi is None:
        return (x if yi is None else y), (xi or yi)
    if xi.elts is None and yi.elts is None and None not in (xi.rank, yi.rank, ci.rank):
        rank = max(xi.rank, yi.rank, ci.rank)
        c = b.lift(cond, ci, rank)
        return elementwise_of(b, prim_call('where', [c, x, y]), [c, x, y])
    axes = (xi.axes(), yi.axes())
    return n.call('rt.select', [cond, x, y, literal(axes)]), _select_info(xi, yi)


def _select_info(x, y):
    out = join(x, y)
    return _mark_batched(out)


def _mark_batched(info):
    if isinstance(info.elts, tuple):
        return container(tuple(_mark_batched(e) for e in info.elts))
    if isinstance(info.elts, dict):
        return container({k: _mark_batched(e) for k, e in info.elts.items()})
    return Info(True, info.rank)


def _copy_replacing(tree, swap):
    from .forward import _copy_replacing as copy
    return copy(tree, swap)

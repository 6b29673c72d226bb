"""The rule registry, the dispatcher, and the helpers every family of rules uses."""
from runtime import TABLE

from .. import nodes as n
from ..batch import (NONE, SCALAR, UNKNOWN, DictInfo, Info, NodeInfo, PullbackInfo, container,
                     info_of_construction, join)
from ..forward import _copy_replacing
from ..ir import CallInfo, describe

STATIC = frozenset({'out', 'where', 'dtype', 'decimals', 'casting', 'order', 'subok'})
# {rule name: rule}: the names records give in their `batch` field, and two
# more for the forms no record describes: 'attribute' (an attribute read,
# called with (b, rhs)) and 'call' (a call of a user function).
RULES = {}


def rule(*names):
    def register(fn):
        for name in names:
            RULES[name] = fn
        return fn
    return register


def rewrite(b, rhs):
    """(batched rhs, Info) for one right-hand side, the Info with the kind of
    its value where that can be told (kinds: whether vmap(grad) may call a
    user function's derivative compiled at compile time: static_vjp_call)."""
    out, info = _rewrite(b, rhs)
    if info.kind is None and info.elts is None and info.item is None:
        kind = _kind(b, rhs)
        if kind is not None:
            info = info.with_kind(kind)
    return out, info


# ---- kinds: 'f' (a float or complex value), 'i' (an integer or a bool) ----

_BOOL_RESULTS = frozenset({
    'less', 'less_equal', 'greater', 'greater_equal', 'equal', 'not_equal', 'logical_and',
    'logical_or', 'logical_xor', 'logical_not', 'isclose', 'isnan', 'isinf', 'isfinite',
    'signbit', 'all', 'any', 'py_bool', 'is_array_leaf', 'rt_is_zero'})
_INT_RESULTS = frozenset({
    'count_nonzero', 'argmax', 'argmin', 'argsort', 'count', 'py_len', 'py_int', 'shape',
    'flatnonzero', 'argwhere',
    'ndim', 'size', 'rt_shape', 'rt_ndim', 'rt_size'})
_BOOL_PRESERVING = frozenset({
    'getitem', 'reshape', 'ravel', 'transpose', 'squeeze', 'expand_dims', 'swapaxes',
    'moveaxis', 'concatenate', 'stack', 'hstack', 'vstack', 'flip', 'fliplr', 'flipud', 'roll',
    'repeat', 'tile', 'take', 'diagonal', 'diag', 'copy', 'broadcast_to', 'atleast_1d',
    'atleast_2d', 'array', 'asarray', 'stop_gradient', 'where', 'maximum', 'minimum'})
_FLOAT_RESULTS = frozenset({
    'true_divide', 'sqrt', 'cbrt', 'exp', 'exp2', 'expm1', 'log', 'log2', 'log10', 'log1p',
    'sin', 'cos', 'tan', 'arcsin', 'arccos', 'arctan', 'sinh', 'cosh', 'tanh', 'arcsinh',
    'arccosh', 'arctanh', 'deg2rad', 'rad2deg', 'reciprocal', 'arctan2', 'hypot', 'logaddexp',
    'logaddexp2', 'mean', 'var', 'std', 'norm', 'inv', 'det', 'solve', 'cholesky', 'py_float',
    'math_log', 'linspace', 'rt_seed', 'floor', 'ceil', 'trunc', 'rint'})
_FLOAT_CREATION = frozenset({'zeros', 'ones', 'empty', 'eye', 'identity'})
_INT_PRESERVING = frozenset({
    'add', 'subtract', 'multiply', 'floor_divide', 'remainder', 'fmod', 'negative', 'positive',
    'absolute', 'square', 'maximum', 'minimum', 'sign', 'clip', 'where', 'sum', 'prod',
    'cumsum', 'max', 'min', 'amax', 'amin', 'getitem', 'reshape', 'ravel', 'transpose',
    'squeeze', 'expand_dims', 'swapaxes', 'moveaxis', 'concatenate', 'stack', 'hstack',
    'vstack', 'flip', 'fliplr', 'flipud', 'roll', 'repeat', 'tile', 'take', 'diagonal',
    'trace', 'diag', 'copy', 'matmul', 'dot', 'py_sum', 'py_max', 'py_min', 'py_item',
    'broadcast_to', 'atleast_1d', 'atleast_2d', 'tril', 'triu', 'round', 'array', 'asarray',
    'stop_gradient'})
_OVER_CONTAINERS = frozenset({'concatenate', 'stack', 'hstack', 'vstack', 'array', 'asarray',
                              'py_sum', 'py_max', 'py_min', 'einsum'})


def _kind(b, rhs):
    """The kind of the value of `rhs` ('f', 'i', 'b' or None), from its operands'."""
    if isinstance(rhs, n.Compare) or isinstance(rhs, n.UnaryOp) and isinstance(rhs.op, n.Not):
        return 'b'
    if _is_bitwise(rhs):          # bools stay bools, integers integers
        kinds = set().union(*[_leaf_kinds(b.info(x)) for x in _bitwise_operands(rhs)])
        shifts = isinstance(rhs, n.BinOp) and isinstance(rhs.op, (n.LShift, n.RShift))
        return 'b' if kinds == {'b'} and not shifts else 'i' if kinds and kinds <= {'i', 'b'} \
            else None
    if isinstance(rhs, n.Attribute):
        if rhs.attr in ('ndim', 'size', 'itemsize'):
            return 'i'
        return b.info(rhs.value).kind if rhs.attr in ('T', 'real') else None
    op = describe(rhs)
    if op.kind != 'prim':
        return None
    name = op.prim.name
    if name in _BOOL_RESULTS:
        return 'b'
    if name in _INT_RESULTS:
        return 'i'
    if not _is_none(op.inputs.get('dtype')):
        return None
    if name in _FLOAT_RESULTS or name in _FLOAT_CREATION:
        return 'f'
    if name == 'arange':
        kinds = {b.info(v).kind for v in op.inputs.values() if not _is_none(v)}
        return 'i' if kinds == {'i'} else 'f' if 'f' in kinds else None
    params = op.prim.diff_params() or [p for p in op.prim.params if p not in STATIC]
    if name in ('full', 'full_like'):
        params = ['fill_value'] if name == 'full' else ['a', 'fill_value']
    kinds = set()
    for p in params:
        node = op.inputs.get(p)
        if _is_none(node):
            continue
        info = b.info(node)
        if (info.elts is not None or info.item is not None) and name not in _OVER_CONTAINERS:
            return None                   # an element's kind is the rule's to say
        kinds |= _leaf_kinds(info)
    if 'f' in kinds:
        return 'f'
    if kinds == {'b'} and name in _BOOL_PRESERVING:
        return 'b'
    if kinds and kinds <= {'i', 'b'} and name in _INT_PRESERVING:
        return 'i'
    if op.prim.family == 'adjoint' and name not in ('rt_item', 'rt_add', 'rt_getitem_vjp'):
        return 'f'
    return None


def _leaf_kinds(info):
    if isinstance(info.elts, tuple):
        return set().union(*[_leaf_kinds(e) for e in info.elts]) if info.elts else set()
    if isinstance(info.elts, dict):
        return set().union(*[_leaf_kinds(e) for e in info.elts.values()]) if info.elts else set()
    if info.item is not None:
        return _leaf_kinds(info.item)
    return {info.kind}


def _is_none_test(rhs):
    """`x is None`, `x is True`, `x is not False`, ...: a batched x is an array
    or a container, never one of those singletons, for every example alike."""
    return len(rhs.ops) == 1 and isinstance(rhs.ops[0], (n.Is, n.IsNot)) and \
        isinstance(rhs.comparators[0], n.Constant) and \
        any(rhs.comparators[0].value is c for c in (None, True, False))


def _rewrite(b, rhs):
    op = describe(rhs)
    if op.kind == 'copy':
        return rhs, b.info(op.inputs[0])
    if op.kind == 'container':
        if isinstance(rhs, n.Dict):
            if all(isinstance(k, n.Constant) for k in rhs.keys):
                return rhs, container({k.value: b.info(v) for k, v in zip(rhs.keys, rhs.values)})
            return _keyed_dict(b, rhs)
        info = container(tuple(SLICE if _is_slice_call(e) else b.info(e) for e in rhs.elts))
        return rhs, (ListInfo(info.batched, None, info.elts) if isinstance(rhs, n.List) else info)
    if isinstance(rhs, n.Compare):
        if any(isinstance(o, (n.Is, n.IsNot, n.In, n.NotIn)) for o in rhs.ops):
            if _is_none_test(rhs):    # a value is None whole: the same for every example
                return rhs, SCALAR
            if batched(b, rhs.left, *rhs.comparators):
                b.fail('codax vmap: `is` / `in` tests on a value that differs between examples')
            return rhs, UNKNOWN
        return elementwise_of(b, rhs, [rhs.left] + list(rhs.comparators))
    if isinstance(rhs, n.UnaryOp) and isinstance(rhs.op, n.Not):
        info = b.info(rhs.operand)
        if not info.batched:
            return rhs, Info(False, info.rank)
        return prim_call('logical_not', [rhs.operand]), Info(True, info.rank)
    if _is_bitwise(rhs):      # element-wise: the same operator on the lifted operands
        return elementwise_of(b, rhs, _bitwise_operands(rhs))
    if isinstance(rhs, n.Attribute):
        return RULES['attribute'](b, rhs)
    if op.kind == 'prim':
        return RULES[op.prim.batch](b, op, rhs)
    if op.kind == 'call':
        return RULES['call'](b, op, rhs)
    if _is_slice_call(rhs) and not batched(b, *rhs.args):    # normalize's slice(1, 3, None)
        return rhs, SLICE
    if op.kind == 'native' and isinstance(rhs, n.Call):
        callee = getattr(getattr(rhs, 'codax', None), 'obj', None)
        node = info_of_construction(callee, [b.info(a) for a in rhs.args],
                                    {k.arg: b.info(k.value) for k in rhs.keywords})
        if node is not None:          # Box(x, y): a node holding its children as they are
            return rhs, node
    inputs = [node for node in n.walk(rhs) if isinstance(node, n.Name)]
    if any(b.info(x).batched for x in inputs):
        if op.kind == 'native' and isinstance(rhs, n.Call):
            return loop_call(b, rhs.func, rhs.args, rhs.keywords, None)
        b.fail('codax vmap cannot batch this expression')
    return rhs, UNKNOWN


_BITWISE = (n.BitAnd, n.BitOr, n.BitXor, n.LShift, n.RShift)


def _is_bitwise(rhs):
    """`a & b`, `a | b`, `a ^ b`, `a << b`, `a >> b`, `~a`: no record describes
    them (they carry no derivative), but they act element by element."""
    return isinstance(rhs, n.BinOp) and isinstance(rhs.op, _BITWISE) or \
        isinstance(rhs, n.UnaryOp) and isinstance(rhs.op, n.Invert)


def _bitwise_operands(rhs):
    return [rhs.operand] if isinstance(rhs, n.UnaryOp) else [rhs.left, rhs.right]


def _keyed_dict(b, rhs):
    """A dict literal with keys known only at run time: its values batched
    alike (DictInfo)."""
    from .indexing import _broadcast_tree
    item = None
    for v in rhs.values:
        item = join(item, b.info(v))
    if item is None or not item.batched:
        return rhs, DictInfo(item or UNKNOWN)
    values = [v if _fully_batched(b.info(v)) else _broadcast_tree(b, v, b.info(v))
              for v in rhs.values]
    return n.Dict(keys=rhs.keys, values=values), DictInfo(_mark_batched(item))


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
    """rt.batch_loop(f, axes, (args), {}): per example, then stacked. Keyword
    arguments go by position to rt.keywords_by_position's stand-in for f."""
    func = n.deepcopy(func)
    if keywords:
        names = tuple(k.arg for k in keywords)
        func = n.call('rt.keywords_by_position', [func, n.const(len(args)), literal(names)])
        args = list(args) + [k.value for k in keywords]
    axes = (tuple(b.info(a).axes() for a in args), {})
    call = n.call('rt.batch_loop', [func, literal(axes), n.tuple_([n.deepcopy(a) for a in args]),
                                    n.Dict(keys=[], values=[]), b.size()])
    return call, Info(True, rank)


@rule('loop')
def loop(b, op, rhs, rank=None):
    if not any(b.info(node).batched for node in op.inputs.values() if node is not None):
        return rhs, Info(False, rank)
    if isinstance(rhs, n.Subscript):
        return loop_call(b, n.dotted('rt.getitem'), [rhs.value, op.inputs['idx']], (), rank)
    if not isinstance(rhs, n.Call):              # an operator: its function, per example
        args = [node for node in op.inputs.values() if node is not None]
        return loop_call(b, n.dotted(op.prim.impl), args, (), rank)
    return loop_call(b, rhs.func, rhs.args, rhs.keywords, rank)


# ---- what the families share: operands, axes, literals, index markers ----

def elementwise_of(b, rhs, operands):
    infos = [b.info(x) for x in operands]
    known = [i.rank for x, i in zip(operands, infos) if not _is_none(x)]
    rank = max(known) if known and None not in known else None
    if not any(i.batched for i in infos):
        return rhs, Info(False, rank)
    if rank is not None:
        swap = {id(x): b.lift(x, i, rank) for x, i in zip(operands, infos) if i.batched}
        return _copy_replacing(rhs, swap), Info(True, rank)
    # Ranks known only at run time (values from a batched dynamic call): the
    # same lifting, with the widest example's rank computed then.
    # (Containers, added leaf by leaf, are lifted leaf by leaf where every leaf
    # is batched.)
    operands = [x for x in operands if not _is_none(x)]
    axes = tuple(b.info(x).axes() for x in operands)
    widest = b.tmp(n.call('rt.example_rank', [n.tuple_([n.deepcopy(x) for x in operands]),
                                              literal(axes)]), SCALAR, '_rank')
    # (the batch size and the operands: a number standing for a batched value
    # becomes zeros of the batched form, of the dtype the number would give)
    every = n.tuple_([n.deepcopy(x) for x in operands])
    swap = {id(x): b.tmp(n.call('rt.lift_batched', [x, widest, b.size(), n.deepcopy(every)]),
                         Info(True, None))
            for x in operands if b.info(x).batched and (
                b.info(x).elts is None or _fully_batched(b.info(x)))}
    return _copy_replacing(rhs, swap), Info(True, None)


def _is_none(node):
    return node is None or isinstance(node, n.Constant) and node.value is None


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


def _int_literal(node, b=None):
    """The value of a literal made of ints, tuples and lists (as tuples), or
    None; with `b`, also of a name bound once to one (normalize names nested
    tuples: `_t2 = (1, 0), (2, 1)`)."""
    if isinstance(node, n.Constant) and isinstance(node.value, (int, tuple)) \
            and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, (n.Tuple, n.List)):
        parts = [_int_literal(e, b) for e in node.elts]
        return None if None in parts else tuple(parts)
    if isinstance(node, n.Name) and b is not None:
        return _named_literals(b).get(node.id)
    return None


def _named_literals(b):
    """{name: value} of the names bound exactly once (not parameters, not
    loop targets), by an assignment of an int literal."""
    if getattr(b, 'literals', None) is None:
        counts = {}
        for node in n.walk(b.fdef):
            if isinstance(node, n.Name) and isinstance(node.ctx, (n.Store, n.Param)):
                counts[node.id] = counts.get(node.id, 0) + 1
        b.literals = {}
        for stmt in n.walk(b.fdef):
            if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name) \
                    and counts[stmt.targets[0].id] == 1:
                value = _int_literal(stmt.value, b)      # (names bound earlier, once, too)
                if value is not None:
                    b.literals[stmt.targets[0].id] = value
    return b.literals


# Markers among the Infos of an index's parts (compared by identity): a slice
# (also a name bound to one: py_slice's rule gives it) and the Ellipsis.
SLICE = Info(False, None)
ELLIPSIS = Info(False, None)


class ListInfo(Info):
    """A list literal's Info: as an index, a list is one index array (advanced
    indexing), where a tuple holds one index per axis."""


def _is_slice_call(node):
    return isinstance(node, n.Call) and isinstance(node.func, n.Name) and node.func.id == 'slice'


def _apply(b, name, args, keywords=()):
    """Emit `_vN = name(*args)` batched by its own rule; the new name."""
    rhs, info = rewrite(b, prim_call(name, args, keywords))
    return b.tmp(rhs, info)


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
    """The facts of a value once every numeric leaf of it is batched."""
    if isinstance(info, PullbackInfo):
        return PullbackInfo(_mark_batched(info.elts[1]), info.backward, info.output)
    if isinstance(info, NodeInfo):
        return info.with_elts([_mark_batched(e) for e in info.elts])
    if isinstance(info, DictInfo):
        return DictInfo(_mark_batched(info.item))
    if info.item is not None:
        return Info(True, None, None, _mark_batched(info.item))
    if isinstance(info.elts, tuple):
        return container(tuple(_mark_batched(e) for e in info.elts))
    if isinstance(info.elts, dict):
        return container({k: _mark_batched(e) for k, e in info.elts.items()})
    if info.kind == 'key':                 # a dict's key is never batched
        return info
    return Info(True, info.rank, kind=info.kind)


def broadcast_axes(info):
    """The out_axes (for rt.batch_outputs) that batch every numeric leaf of a
    value of these facts: 0, or a tree keeping its dict keys (None) as they are."""
    want = _mark_batched(info).axes()
    return literal(want) if _holds_none(want) else n.const(0)


def _holds_none(axes):
    parts = axes.values() if isinstance(axes, dict) else axes
    return axes is None or isinstance(axes, (tuple, dict)) and any(map(_holds_none, parts))


def _fully_batched(info):
    return _mark_batched(info) == info


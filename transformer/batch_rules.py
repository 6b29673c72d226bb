"""Batching rules: how each kind of primitive pushes the batch axis through.

A record names its rule in its `batch` field; `RULES[name](b, op, rhs)`
returns the batched right-hand side and the Info of its value, emitting any
auxiliary statements through `b` (the Batch pass). Every rule also serves
statements with no batched input, for which it only infers the rank.
The batch axis is always axis 0 of a batched value.
"""
import string

import numpy

import runtime as rt
from runtime import TABLE

from . import nodes as n
from .batch import (NONE, SCALAR, UNKNOWN, ClosureInfo, Info, Known, NodeInfo, container,
                    info_of_construction, join)
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
    """`x is None` or `x is not None`."""
    return len(rhs.ops) == 1 and isinstance(rhs.ops[0], (n.Is, n.IsNot)) and \
        isinstance(rhs.comparators[0], n.Constant) and rhs.comparators[0].value is None


def _rewrite(b, rhs):
    op = describe(rhs)
    if op.kind == 'copy':
        return rhs, b.info(op.inputs[0])
    if op.kind == 'container':
        if isinstance(rhs, n.Dict):
            return rhs, container({k.value: b.info(v) for k, v in zip(rhs.keys, rhs.values)})
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
    if isinstance(rhs, n.Attribute):
        return attribute(b, rhs)
    if op.kind == 'prim':
        return RULES[op.prim.batch](b, op, rhs)
    if op.kind == 'call':
        return user_call(b, op, rhs)
    if _is_slice_call(rhs) and not batched(b, *rhs.args):    # normalize's slice(1, 3, None)
        return rhs, SLICE
    inputs = [node for node in n.walk(rhs) if isinstance(node, n.Name)]
    if any(b.info(x).batched for x in inputs):
        if op.kind == 'native' and isinstance(rhs, n.Call):
            callee = getattr(getattr(rhs, 'codax', None), 'obj', None)
            node = info_of_construction(callee, [b.info(a) for a in rhs.args],
                                        {k.arg: b.info(k.value) for k in rhs.keywords})
            if node is not None:          # Box(x, y): a node holding batched children
                return rhs, node
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
                                                   for k in keywords or ()]), b.size()])
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


# ---- element-wise ----

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
    swap = {id(x): b.tmp(n.call('rt.lift_batched', [x, widest]), Info(True, None))
            for x in operands if b.info(x).batched and (
                b.info(x).elts is None or _fully_batched(b.info(x)))}
    return _copy_replacing(rhs, swap), Info(True, None)


def _is_none(node):
    return node is None or isinstance(node, n.Constant) and node.value is None


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
    elif isinstance(shape, n.Constant) and isinstance(shape.value, tuple):
        new_shape = n.tuple_([b.size()] + [n.const(v) for v in shape.value])
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
    'expand_dims': {'axes': {'axis': (None, None)}, 'rank': lambda r: r + 1},
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
    pairs = _pad_pairs(value, info.rank)
    return _with_args(rhs, op, {'pad_width': n.const(((0, 0),) + pairs)}), Info(True, info.rank)


def _pad_pairs(width, rank):
    """NumPy's pad_width forms (int, (n,), (before, after), per axis) as one
    (before, after) pair per axis."""
    return tuple(tuple(int(v) for v in pair)
                 for pair in numpy.broadcast_to(numpy.asarray(width), (rank, 2)))


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
    """{name: value} of the names assigned exactly once, to an int literal."""
    if getattr(b, 'literals', None) is None:
        b.literals, counts = {}, {}
        for stmt in n.walk(b.fdef):
            if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name):
                name = stmt.targets[0].id
                counts[name] = counts.get(name, 0) + 1
                b.literals[name] = _int_literal(stmt.value, b)    # names bound earlier too
        b.literals = {k: v for k, v in b.literals.items() if counts[k] == 1 and v is not None}
    return b.literals


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


# ---- indexing ----

# Markers among the Infos of an index's parts (compared by identity): a slice
# (also a name bound to one: py_slice's rule gives it) and the Ellipsis.
SLICE = Info(False, None)
ELLIPSIS = Info(False, None)


class ListInfo(Info):
    """A list literal's Info: as an index, a list is one index array (advanced
    indexing), where a tuple holds one index per axis."""


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


def _is_slice_call(node):
    return isinstance(node, n.Call) and isinstance(node.func, n.Name) and node.func.id == 'slice'


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
    if info.elts is not None:
        if idx_batched:
            b.fail('codax vmap: writing into a list or tuple at a batched index')
        return rhs, _updated(info, idx, vinfo)
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
    out = n.call('rt.batch_outputs', [node, literal(info.axes()), n.const(0), b.size()])
    return b.tmp(out, _mark_batched(info))


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
    if not info.batched or info.elts is not None or info.item is not None:   # (a list)
        return rhs, SCALAR
    if info.rank is None:          # an array or a container: the run tells
        return n.call('rt.example_len', [x]), SCALAR
    shape = b.tmp(n.Attribute(value=x, attr='shape', ctx=n.Load()), UNKNOWN, '_shape')
    return n.Subscript(value=shape, slice=n.const(1), ctx=n.Load()), SCALAR


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
    if attr == 'size' and not _is_none(op.inputs.get('axis')):
        axes = _axes_of(op.inputs['axis'])
        if not b.info(node).batched or not isinstance(axes, tuple):
            return loop(b, op, rhs, 0)
        return _with_args(rhs, op, {'axis': n.const(_shifted(axes)[0])}), SCALAR
    if not b.info(node).batched:
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


@rule('unbatched_only')
def unbatched_only(b, op, rhs):
    """Integer bookkeeping (range, slice bounds): a batched value here has no
    vectorized meaning."""
    if batched(b, *op.inputs.values()):
        b.fail(f'codax vmap: {op.prim.name.replace("py_", "")}() of a value that is batched '
               '(it differs between examples, or, in derivative code, it was saved on the '
               'tape with batched values); index with a batched array instead')
    return rhs, SLICE if op.prim.name == 'py_slice' else UNKNOWN


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


# ---- closures made in transformed code (runtime/closures.py) ----

@rule('closure')
def closure(b, op, rhs):
    """rt.closure(f, *captured): a container of the captured values."""
    captured = op.inputs.get('captured')
    return rhs, container(tuple(b.info(x) for x in (captured.elts if captured else ())))


@rule('captured')
def captured(b, op, rhs):
    info, k = b.info(op.inputs['c']), op.inputs['k']
    if isinstance(info.elts, tuple) and isinstance(k, n.Constant):
        return rhs, info.elts[k.value]
    return loop(b, op, rhs)


@rule('captured_cotangent')
def captured_cotangent(b, op, rhs):
    info, k = b.info(op.inputs['c']), op.inputs['k']
    if isinstance(info.elts, tuple) and isinstance(k, n.Constant):
        ct = b.info(op.inputs['ct'])
        return rhs, container(tuple(ct if i == k.value else SCALAR
                                    for i in range(len(info.elts))))
    return loop(b, op, rhs)


@rule('closure_function')
def closure_function(b, op, rhs):
    """The lifted function: the same for every example."""
    return rhs, UNKNOWN


# ---- user functions ----

def user_call(b, op, rhs):
    """A call of a user function with batched arguments: the callee batched in
    turn (rt.vmapped), with out_axes 0 for all of its outputs. A closure whose
    captured values are batched is batched along their axes too."""
    args = list(rhs.args) + [k.value for k in rhs.keywords]
    if not batched(b, *args, rhs.func):
        return rhs, Info(False, _draws_rank(b, rhs))
    func_info = b.info(rhs.func)
    if func_info.batched and not isinstance(func_info.elts, tuple):
        b.fail('codax vmap: the function called here differs between examples')
    callee = rhs.codax.obj if getattr(rhs, 'codax', None) is not None else None
    if callee is not None and callee is getattr(rt, 'einsum_vjp', None):
        return einsum_vjp(b, rhs)
    if getattr(callee, '__codax_batched__', None) is not None:   # codax.random's samplers
        return batched_form_call(b, rhs)
    if _runtime_helper(callee):            # a rule helper without a record of its own
        return loop_call(b, rhs.func, rhs.args, rhs.keywords, None)
    static = static_vjp_call(b, rhs) if callee is rt.vjp_call else \
        static_pullback(b, rhs) if callee is rt.pullback else None
    if static is not None:
        return static
    if callee is rt.jvp_call and _primals_shared(b, rhs):
        return jvp_of_shared_primals(b, rhs, func_info)
    return _batched_call(b, rhs, func_info)


def _batched_call(b, rhs, func_info):
    """The call, of a function batched at run time (rt.vmapped), and its Info."""
    infos = [b.info(a) for a in rhs.args]
    if rhs.keywords:
        b.fail('codax vmap: pass arguments of batched user-function calls by position')
    axes = tuple(i.axes() for i in infos)
    info = rhs.codax.obj if getattr(rhs, 'codax', None) is not None else None
    if isinstance(func_info, ClosureInfo):             # its function takes the captured first
        info, infos = func_info.function, list(func_info.elts) + infos
    out, out_axes = _callee_output(b, info, infos)
    captured = [literal(func_info.axes())] if func_info.batched else []
    fn = b.tmp(n.call('rt.vmapped', [rhs.func, literal(axes), out_axes] + captured), UNKNOWN,
               '_batched')
    call = n.call(fn, list(rhs.args))
    call.codax = CallInfo('dynamic', label='a batched function')
    return call, out if out is not None else Info(True, None)


def _primals_shared(b, rhs):
    """Whether rt.jvp_call(f, primals, tangents[, kwargs, kwtangents]) has only
    tangents batched, its primals (a tuple, keywords a dict, of known lengths)
    the same for every example: what jacfwd and hessian batch."""
    args = rhs.args
    if rhs.keywords or len(args) not in (3, 5) or batched(b, args[0], args[1], *args[3:4]):
        return False
    return isinstance(b.info(args[1]).elts, tuple) and \
        (len(args) == 3 or isinstance(b.info(args[3]).elts, dict))


def jvp_of_shared_primals(b, rhs, func_info):
    """rt.jvp_call with only its tangents batched: the output depends on the
    primals alone, so it is f's own call, unbatched (once, not per example),
    and only the tangent comes from the batched call. What reads primal
    values only (a while loop's test, a tape's length) then stays unbatched."""
    def part(node, key):
        return n.Subscript(value=n.deepcopy(node), slice=n.const(key), ctx=n.Load())
    fnode, primals = rhs.args[:2]
    args = [part(primals, i) for i in range(len(b.info(primals).elts))]
    keywords = {k: part(rhs.args[3], k) for k in b.info(rhs.args[3]).elts} \
        if len(rhs.args) == 5 else None
    output = b.tmp(n.call(n.deepcopy(fnode), args, keywords), UNKNOWN, '_primal')
    call, info = _batched_call(b, rhs, func_info)
    tangent = info.elts[1] if isinstance(info.elts, tuple) and len(info.elts) == 2 \
        else Info(True, None)
    both = b.tmp(call, info, '_jvp')
    return n.tuple_([output, part(both, 1)]), container((UNKNOWN, tangent))


def _callee_output(b, fn, infos):
    """(Info, out_axes node) of a batched user call: the form its batched code
    leaves, learned by compiling it now, so what every example shares (a
    length, a count) stays unbatched after the call; else every leaf batched."""
    from .errors import RecursiveBatching
    if b.callee_info is None or fn is None:
        return None, n.const(0)
    try:
        out = b.callee_info(fn, infos, natural=True)
    except RecursiveBatching:        # (a recursive function: its form is known after the fact)
        out = None
    if out is not None:
        return out, literal(out.axes())
    return b.callee_info(fn, infos), n.const(0)


def static_vjp_call(b, rhs):
    """rt.vjp_call(f, *args) in grad's code, f a user function known at compile
    time, with batched arguments whose facts (ranks, and kinds: which ones are
    differentiated) are known: the sweeps of f are chosen here
    (rt.sweeps_for), its forward sweep batched (rt.vmapped) with the out_axes
    its batched code leaves (learned by compiling it now), so the value and the
    tape have known facts, and the pullback (PullbackInfo) names its backward
    sweep for static_pullback. None where any of that cannot be told: then
    the call is batched as a whole at run time (user_call)."""
    import inspect
    from .batch import HOOKS, PullbackInfo, info_of_value
    fnode = rhs.args[0] if rhs.args else None
    if 'sweeps' not in HOOKS or b.callee_info is None or b.unit is None:
        return None
    fn = _static_object(b, fnode)          # a free name, or `lax.fori_loop`
    if fn is None or not HOOKS['static_function'](fn):
        return None
    params = list(inspect.signature(fn).parameters.values())
    given, by_name = list(rhs.args[1:]), {k.arg: k.value for k in rhs.keywords}
    if len(given) > len(params) or None in by_name:
        return None
    nodes, infos, defaults = [], [], []
    for i, p in enumerate(params):
        node = given[i] if i < len(given) else by_name.pop(p.name, None)
        if node is not None:
            nodes.append(node)
            infos.append(b.info(node))
        elif p.default is not p.empty:
            nodes.append(None)
            infos.append(info_of_value(p.default, None))
            defaults.append(i)
        else:
            return None
    if by_name or not all(_known(i) for i in infos):
        return None
    active, numeric = [], []
    for i, info in enumerate(infos):
        kinds = _leaf_kinds(info)
        if 'f' in kinds:
            active.append(i)
        elif None in kinds:
            return None                 # whether it is differentiated is seen only at run time
        if info.elts is None and info.item is None:
            numeric.append(i)
    if not active:
        return None
    target = getattr(b.current, 'targets', [None])[0]
    read = b.adjoints_read.get(getattr(target, 'id', None))
    if read is not None and set(active) & read:   # adjoints nobody reads: not computed
        active = [i for i in active if i in read]
    try:
        forward, backward = HOOKS['sweeps'](fn, tuple(active), tuple(numeric))
    except Exception:                   # no derivative here: rt.vjp_call says why at run time
        return None
    out = b.callee_info(forward, infos, natural=True)
    if out is None or not isinstance(out.elts, tuple) or len(out.elts) != 2:
        return None
    value, tape = out.elts
    if isinstance(fnode, n.Name) and fnode.id not in b.unit.closure:
        b.unit.guards[fnode.id] = fn    # rebinding the name makes this code stale
    for i in defaults:
        nodes[i] = b.tmp(n.call('rt.default_argument', [n.deepcopy(fnode), n.const(i)]),
                         infos[i], '_default')
    sweeps = b.tmp(n.call('rt.sweeps_for', [n.deepcopy(fnode), literal(tuple(active)),
                                            literal(tuple(numeric))] + nodes), UNKNOWN, '_sweeps')
    parts = [b.tmp(n.Subscript(value=sweeps, slice=n.const(k), ctx=n.Load()), UNKNOWN, name)
             for k, name in ((0, '_forward'), (1, '_backward'))]
    axes = tuple(i.axes() for i in infos)
    batched_forward = b.tmp(n.call('rt.vmapped', [parts[0], literal(axes), literal(out.axes())]),
                            UNKNOWN, '_batched')
    call = n.call(batched_forward, nodes)
    call.codax = CallInfo('dynamic', label='a batched function')
    result = b.tmp(call, out, '_swept')
    value_node, tape_node = (b.tmp(n.Subscript(value=result, slice=n.const(k), ctx=n.Load()),
                                   info, name)
                             for k, info, name in ((0, value, '_value'), (1, tape, '_tape')))
    return n.tuple_([value_node, n.tuple_([parts[1], tape_node])]), \
        container((value, PullbackInfo(tape, backward, value)))


def static_pullback(b, rhs):
    """rt.pullback(pb, cotangent) of a pullback made by static_vjp_call: its
    backward sweep batched (rt.vmapped), with the out_axes its batched code
    leaves, learned by compiling it now. An unbatched cotangent is repeated
    along the batch first (the zero 0.0 then gives zeros, as it should)."""
    from .batch import PullbackInfo
    if len(rhs.args) != 2 or rhs.keywords:
        return None
    pb, ct = rhs.args
    pbi, cti = b.info(pb), b.info(ct)
    if not isinstance(pbi, PullbackInfo) or cti.elts is not None or cti.item is not None \
            or cti.rank is None or pbi.output.elts is not None or pbi.output.item is not None:
        return None
    tape = pbi.elts[1]
    ct_info = Info(True, cti.rank, kind=cti.kind)
    out = b.callee_info(pbi.backward, [tape, ct_info], natural=True)
    if out is None:
        return None
    ct = b.broadcast(ct, cti)
    backward = b.tmp(n.call('rt.pullback_function', [pb]), UNKNOWN, '_backward')
    state = b.tmp(n.call('rt.pullback_state', [pb]), tape, '_state')
    batched_backward = b.tmp(n.call('rt.vmapped', [backward, literal((tape.axes(), 0)),
                                                   literal(out.axes())]), UNKNOWN, '_batched')
    call = n.call(batched_backward, [state, ct])
    call.codax = CallInfo('dynamic', label='a batched function')
    return call, out


def _known(info):
    """Whether every leaf's rank (and every container's structure) is known."""
    if isinstance(info.elts, tuple):
        return all(_known(e) for e in info.elts)
    if isinstance(info.elts, dict):
        return all(_known(e) for e in info.elts.values())
    if info.item is not None:
        return _known(info.item)
    return info.rank is not None


def batched_form_call(b, rhs):
    """A call of a function with a batched form of its own (`__codax_batched__`:
    codax.random's samplers). With only the first argument (the key) batched,
    rt.batched_form(f, args, kwargs) makes every example's draws at once;
    otherwise one call per example. The rank of the draws is the form's to
    say, so the code that uses them stays vectorized."""
    rank = _draws_rank(b, rhs)
    rest = list(rhs.args[1:]) + [k.value for k in rhs.keywords]
    if not rhs.args or not b.info(rhs.args[0]).batched or batched(b, *rest):
        return loop_call(b, rhs.func, rhs.args, rhs.keywords, rank)
    kwargs = n.Dict(keys=[n.const(k.arg) for k in rhs.keywords],
                    values=[n.deepcopy(k.value) for k in rhs.keywords])
    return n.call('rt.batched_form', [n.deepcopy(rhs.func),
                                      n.tuple_([n.deepcopy(a) for a in rhs.args]),
                                      kwargs]), Info(True, rank)


@rule('batched_form')
def batched_form(b, op, rhs):
    """rt.batched_form(f, args, kwargs) in code vmapped again (vmap(vmap(f))
    over keys): with only the keys batched, the same call, the keys now with
    one more leading axis, which a batched form takes as one more batch axis."""
    fn, args, kwargs = op.inputs['fn'], op.inputs['args'], op.inputs['kwargs']
    ai, ki = b.info(args), b.info(kwargs)
    elts = ai.elts if isinstance(ai.elts, tuple) and ai.elts else None
    rank = None
    if elts is not None and isinstance(ki.elts, dict):
        rank = rt.batched_form_rank(_static_object(b, fn), [_fact(e) for e in elts],
                                    {k: _fact(e) for k, e in ki.elts.items()})
    if not batched(b, fn, args, kwargs):
        return rhs, Info(False, rank)
    if elts is None or not elts[0].batched or elts[0].elts is not None or b.info(fn).batched \
            or any(e.batched for e in elts[1:]) or ki.batched:
        return loop(b, op, rhs, rank)
    return rhs, Info(True, rank)


@rule('moveaxes')
def moveaxes(b, op, rhs):
    """rt.moveaxes(tree, axes, to_front, offset) of vmapped code batched
    again: with every leaf batched, the same moves after one more batch axis."""
    tree, axes, to_front, offset = (op.inputs[k] for k in ('tree', 'axes', 'to_front', 'offset'))
    info = b.info(tree)
    if batched(b, axes, to_front) or not isinstance(offset, n.Constant) \
            or _mark_batched(info) != info:
        return loop(b, op, rhs)
    return n.call('rt.moveaxes', [tree, axes, to_front, n.const(offset.value + 1)]), info


def _draws_rank(b, rhs):
    """The rank of what a user call returns for one example, where its callee
    states it: a function with a batched form (rt.batched_form_rank, from its
    arguments as the compiler knows them; a draw with an unbatched key too)."""
    callee = rhs.codax.obj if getattr(rhs, 'codax', None) is not None else None
    if getattr(callee, '__codax_batched__', None) is None:
        return None
    return rt.batched_form_rank(callee, [_described(b, a) for a in rhs.args],
                                {k.arg: _described(b, k.value) for k in rhs.keywords})


def _described(b, node):
    """An argument as the compiler knows it, for a batched form's rank: a
    literal's value, tuples element by element, else what its Info says."""
    if isinstance(node, n.Constant):
        return node.value
    if isinstance(node, n.Tuple):
        return tuple(_described(b, e) for e in node.elts)
    return _fact(b.info(node))


def _fact(info):
    """A value as its Info describes it: the constant None, containers element
    by element, else only its rank (rt.Abstract)."""
    if info is NONE:
        return None
    if isinstance(info.elts, tuple):
        return tuple(_fact(e) for e in info.elts)
    if isinstance(info.elts, dict):
        return {k: _fact(e) for k, e in info.elts.items()}
    return rt.Abstract(info.rank)


def _static_object(b, node):
    """The object a reference to a global names (random.normal), or None."""
    if isinstance(node, n.Name) and b.unit is not None and node.id not in b.locals:
        found, value = b.unit.lookup(node.id)
        return value if found else None
    if isinstance(node, n.Attribute):
        owner = _static_object(b, node.value)
        return getattr(owner, node.attr, None)
    return None


def _runtime_helper(fn):
    """A function of codax's runtime that generated code calls (not one that
    stands for a user call, like rt.vjp_call): run per example, not transformed."""
    import runtime
    module = getattr(fn, '__module__', '') or ''
    return module.split('.')[0] == 'runtime' and fn not in (
        runtime.vjp_call, runtime.pullback, runtime.jvp_call)


# ---- the runtime's adjoint helpers (vmap of grad) ----

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
        return n.call('rt.seed', [example]), SCALAR
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
        return n.call('rt.sum_to', [full, n.call('rt.example_shape', [x])]), Info(False, xi.rank)
    return _sum_to_example_of(b, full, x, xi), Info(True, xi.rank)


def _sum_to_example_of(b, full, x, xi):
    """Batched `full` summed, example by example, to the shape of (an example of) x."""
    shape = n.call('rt.example_shape' if xi.batched else 'rt.shape', [x])
    return n.call('rt.sum_to_batched', [full, shape])


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
    if op.prim.name == 'dense' and yi.elts is None and yi.item is None:
        # the zero 0.0 may stand for a value of any rank: ranks are read at run time
        return n.call('rt.dense_batched', [g, y, n.const(gi.batched), n.const(yi.batched),
                                           b.size()]), _mark_batched(yi)
    if op.prim.name == 'dense' and (yi.elts is not None or yi.item is not None):
        # a container: leaf by leaf
        flags = (_batched_flags(gi, yi), _batched_flags(yi, yi))
        if None not in flags:
            return n.call('rt.dense_batched', [g, y, literal(flags[0]), literal(flags[1]),
                                               b.size()]), _mark_batched(yi)
    if yi.elts is not None or yi.item is not None:    # a container: shaped like y
        call, _ = loop(b, op, rhs)
        return call, _mark_batched(yi)
    if yi.rank == 0:          # a number: g is one already (rt.dense keeps g for a float)
        return g, Info(gi.batched, gi.rank)
    if gi.rank is None or yi.rank is None:
        return loop(b, op, rhs, yi.rank)
    target = b.broadcast(y, yi)
    return n.call('rt.materialize', [b.lift(g, gi, yi.rank), target]), Info(True, yi.rank)


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
    compute, which are then batched like any product."""
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


def _apply(b, name, args, keywords=()):
    """Emit `_vN = name(*args)` batched by its own rule; the new name."""
    rhs, info = rewrite(b, prim_call(name, args, keywords))
    return b.tmp(rhs, info)


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
    if y is not None and yi.rank == whole:
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
    """rt.item(g, key): an element of a container adjoint (or the zero)."""
    g, key = op.inputs['cot'], op.inputs['key']
    info = b.info(g)
    if info.elts is not None:
        return rhs, _item_info(info, key)
    if info.batched:                  # a container or an array: which one is seen at run time
        where = b.tmp(n.call('rt.batch_index', [key, g]), UNKNOWN, '_idx')
        return n.call('rt.item', [g, where]), Info(True, None)
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
    from .batch import PullbackInfo
    if isinstance(info, PullbackInfo):
        return PullbackInfo(_mark_batched(info.elts[1]), info.backward, info.output)
    if isinstance(info, NodeInfo):
        return info.with_elts([_mark_batched(e) for e in info.elts])
    if info.item is not None:
        return Info(True, None, None, _mark_batched(info.item))
    if isinstance(info.elts, tuple):
        return container(tuple(_mark_batched(e) for e in info.elts))
    if isinstance(info.elts, dict):
        return container({k: _mark_batched(e) for k, e in info.elts.items()})
    return Info(True, info.rank, kind=info.kind)


def _fully_batched(info):
    return _mark_batched(info) == info


def _copy_replacing(tree, swap):
    from .forward import _copy_replacing as copy
    return copy(tree, swap)


# ---- pytrees: codax.tree_util inside vmapped code (runtime/primitives/trees.py) ----

_TREE_DATA = {'tree_leaves': 'tree', 'tree_flatten': 'tree', 'treedef_leaves': 'tree',
              'treedef_subtrees': 'tree', 'tree_unflatten': 'leaves'}


@rule('tree')
def tree_op(b, op, rhs):
    """Tree functions only move leaves, so they commute with batching: the
    leaves of a batched tree are its examples' leaves, batched. Where the pass
    knows a tree leaf by leaf (dicts, lists and tuples of arrays and numbers),
    each leaf's facts carry over; otherwise every leaf is made batched first,
    and so is every leaf of the result."""
    name = op.prim.name
    if name == 'tree_structure':
        return rhs, UNKNOWN                        # the same for every example
    param = _TREE_DATA[name]
    data, info = op.inputs[param], b.info(op.inputs[param])
    if not info.batched:
        return rhs, UNKNOWN
    # (is_leaf, or treedef_subtrees' cut, may end the leaves anywhere in a tree)
    known = _tree_leaf_infos(info) if _is_none(op.inputs.get('is_leaf')) \
        and name != 'treedef_subtrees' else None
    if name != 'tree_unflatten' and known is not None:
        leaves = ListInfo(True, None, tuple(known))
    else:
        if not _fully_batched(info):
            rhs = _with_args(rhs, op, {param: _broadcast_tree(b, data, info)})
        leaves = Info(True, None) if name == 'tree_unflatten' \
            else Info(True, None, None, Info(True, None))
    return rhs, container((leaves, UNKNOWN)) if name == 'tree_flatten' else leaves


def _tree_leaf_infos(info):
    """The Infos of a tree's leaves in tree_flatten's order (dict keys sorted,
    a registered node's children as its flatten gives them), or None where a
    part is not known: a list of unknown length, None, a value of unknown rank."""
    if isinstance(info.elts, (tuple, dict)):
        parts = list(info.elts) if isinstance(info.elts, tuple) \
            else [info.elts[k] for k in sorted(info.elts)]
        leaves = [_tree_leaf_infos(p) for p in parts]
        return None if None in leaves else [x for part in leaves for x in part]
    if info.item is not None or info.rank is None:
        return None
    return [info]

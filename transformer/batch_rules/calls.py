"""Batching rules of calls: closures, user functions, batched forms."""
import inspect

import runtime as rt

from .. import nodes as n
from ..batch import (HOOKS, NONE, SCALAR, UNKNOWN, ClosureInfo, FunctionInfo, Info, NodeInfo,
                     PullbackInfo, container, info_of_value)
from ..errors import RecursiveBatching
from ..ir import CallInfo, packs_keywords
from .core import _leaf_kinds, _mark_batched, batched, literal, loop, loop_call, rule
from .adjoints import einsum_vjp
from .python import node_attribute


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


@rule('transformation')
def transformation(b, op, rhs):
    """grad(c), vmap(c), ... of a closure c: a closure of another function
    (so no ClosureInfo) holding c's captured values."""
    if batched(b, op.inputs['args'], op.inputs['kwargs']):
        b.fail('codax vmap: the options of a transformation (argnums, in_axes, ...) must be '
               'the same for every example')
    info = b.info(op.inputs['fun'])
    return rhs, container(info.elts) if isinstance(info.elts, tuple) else UNKNOWN


@rule('closure_function')
def closure_function(b, op, rhs):
    """The lifted function: the same for every example, and known where the
    closure's is (so a call of it may be differentiated at compile time)."""
    info = b.info(op.inputs['c'])
    return rhs, FunctionInfo(info.function) if isinstance(info, ClosureInfo) else UNKNOWN


# ---- user functions ----

@rule('call')
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
    # `**d` (what a **kwargs parameter takes) goes last by position, as the
    # callee's generated code takes it (normalize.by_position)
    args = list(rhs.args) + [k.value for k in rhs.keywords if k.arg is None]
    infos = [b.info(a) for a in args]
    if any(k.arg is not None for k in rhs.keywords):
        b.fail('codax vmap: pass arguments of batched user-function calls by position')
    info = rhs.codax.obj if getattr(rhs, 'codax', None) is not None else None
    if isinstance(func_info, FunctionInfo):
        info = func_info.function
    func = rhs.func
    if isinstance(func_info, ClosureInfo) or func_info.batched:
        # a closure: its lifted function (the same for every example) called
        # with the captured values first, so that batching this code again
        # (vmap of vmap) meets a plain function, not a closure whose captures differ
        info = getattr(func_info, 'function', info)
        captured = [b.tmp(n.call('rt.captured', [rhs.func, n.const(k)]), elt, '_captured')
                    for k, elt in enumerate(func_info.elts)]
        func = b.tmp(n.call('rt.closure_function', [rhs.func]), UNKNOWN, '_lifted')
        args, infos = captured + args, list(func_info.elts) + infos
    axes = tuple(i.axes() for i in infos)
    out, out_axes = _callee_output(b, info, infos)
    fn = b.tmp(n.call('rt.vmapped', [func, literal(axes), out_axes]), UNKNOWN, '_batched')
    call = n.call(fn, args)
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
    if isinstance(primals, n.Name) and primals.id in b.tuples:
        # the names the tuple was made of (Batch.note_tuple): the user function
        # stays known to batching this code again, `rt.vjp_call(g, x, n)` with
        # the primals batched, where g's derivative is then chosen at compile
        # time (static_vjp_call), so what every example shares stays unbatched
        args = [n.deepcopy(e) for e in b.tuples[primals.id]]
    keywords = {k: part(rhs.args[3], k) for k in b.info(rhs.args[3]).elts} \
        if len(rhs.args) == 5 else None
    primal = n.call(n.deepcopy(fnode), args, keywords)
    fn = _static_object(b, fnode)
    if packs_keywords(fn) and len(args) == fn.__code__.co_argcount + 1 and not keywords:
        # f(a, **d): the primals end with what f's **kwargs takes (normalize.by_position)
        primal = n.Call(func=primal.func, args=args[:-1],
                        keywords=[n.keyword(arg=None, value=args[-1])])
    output = b.tmp(primal, UNKNOWN, '_primal')
    call, info = _batched_call(b, rhs, func_info)
    tangent = info.elts[1] if isinstance(info.elts, tuple) and len(info.elts) == 2 \
        else Info(True, None)
    both = b.tmp(call, info, '_jvp')
    return n.tuple_([output, part(both, 1)]), container((UNKNOWN, tangent))


def _callee_output(b, fn, infos):
    """(Info, out_axes node) of a batched user call: the form its batched code
    leaves, learned by compiling it now, so what every example shares (a
    length, a count) stays unbatched after the call; else every leaf batched."""
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
    fnode = rhs.args[0] if rhs.args else None
    if 'sweeps' not in HOOKS or b.callee_info is None or b.unit is None:
        return None
    given, by_name = list(rhs.args[1:]), {k.arg: k.value for k in rhs.keywords}
    fn = _static_function(b, fnode, len(given))
    if fn is None or not HOOKS['static_function'](fn):
        return None
    if isinstance(b.info(fnode), ClosureInfo):
        if by_name:
            return None
        given.append(fnode)             # the closure's call: the closure passed last
    params = list(inspect.signature(fn).parameters.values())
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
        kinds = set() if _is_none_value(info) else _leaf_kinds(info)
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
    if isinstance(fnode, n.Name) and fnode.id not in b.unit.closure \
            and fnode.id not in b.locals:
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
    return info.rank is not None or _is_none_value(info)


def _is_none_value(info):
    """The constant None, or a parameter that holds None: an empty subtree,
    nothing to differentiate (as `scan`'s `length=None`)."""
    return info is NONE or info.kind == 'none'


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


def _static_function(b, node, given):
    """The function whose sweeps a call of `node` with `given` arguments by
    position makes, where it is known at compile time: a global (or
    `lax.fori_loop`), a closure's lifted function held in a local, or for a
    closure, the function that calls it (the closure passed last, as
    rt.vjp_call differentiates a closure's call: codax/calls.py), or None."""
    info = b.info(node)
    if isinstance(info, FunctionInfo):
        return info.function
    if isinstance(info, ClosureInfo):
        return HOOKS['closure_call'](len(info.elts), given) if 'closure_call' in HOOKS else None
    return _static_object(b, node)


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
    module = getattr(fn, '__module__', '') or ''
    if module == 'runtime.definitions':      # NumPy functions defined in NumPy: transformed
        return False
    return module.split('.')[0] == 'runtime' and fn not in (
        rt.vjp_call, rt.pullback, rt.jvp_call)


# ---- pytree nodes (runtime/primitives/nodes.py) ----
# A batched node holds its children batched, and the helpers of the node
# records only move children between a node and its parts (finding which
# child from an unbatched or batched node alike), so each runs once on the
# batched values as they are. The rules only say what the result holds: from
# the node's Info (NodeInfo: which child each attribute holds, how many
# children), or, where that is not known, a value seen at run time.

@rule('node_attribute')
def node_attribute_call(b, op, rhs):
    """rt.node_attribute(node, name): the attribute read `node.name` (per
    example where what the attribute holds is not known: it may compute)."""
    info, name = b.info(op.inputs['node']), op.inputs['name']
    if isinstance(info, NodeInfo) and isinstance(name, n.Constant):
        return rhs, node_attribute(b, info, name.value)
    return loop(b, op, rhs)


@rule('attribute_cotangent')
def attribute_cotangent(b, op, rhs):
    """rt.attribute_cotangent(cot, node, name): a node holding cot as the child
    the attribute holds (0.0 where it holds none)."""
    found = _attribute_child(b, op)
    if found is None:
        return rhs, _seen_at_run_time(b, op)
    info, k = found
    return rhs, SCALAR if k is None else _node_holding(info, {k: b.info(op.inputs['cot'])})


@rule('attribute_tangent')
def attribute_tangent(b, op, rhs):
    """rt.attribute_tangent(cot, node, name): the child of cot the attribute
    holds. Where its rank is not known (cot is the zero 0.0, which stands for
    any value, or seen at run time), it is made dense, shaped like the child
    (as rt.dense does the tangent of a tuple's item), so the rank is known."""
    found = _attribute_child(b, op)
    if found is not None and found[1] is None:
        return rhs, SCALAR
    part = found and _child_info(b.info(op.inputs['cot']), found[1])
    if part is None:
        return rhs, _seen_at_run_time(b, op)
    child = found[0].elts[found[1]]
    if part.rank is not None or child.rank is None or not batched(b, *op.inputs.values()):
        return rhs, part
    tangent = b.tmp(rhs, part, '_tangent')
    primal = b.tmp(n.Attribute(value=op.inputs['node'], attr=op.inputs['name'].value,
                               ctx=n.Load()), child, '_child')
    return n.call('rt.dense_batched', [tangent, primal, n.const(part.batched),
                                       n.const(child.batched), b.size()]), \
        Info(part.batched or child.batched, child.rank, kind=child.kind)


@rule('built_tangent')
def built_tangent(b, op, rhs):
    """rt.built_tangent(node, where, tangents): a node like `node` holding
    tangents[k] as its child where[k]."""
    info, where = b.info(op.inputs['node']), _layout(b, op.inputs['where'])
    if isinstance(info, NodeInfo) and where is not None:
        held = {j: _child_info(b.info(op.inputs['tangents']), k)
                for k, j in enumerate(where) if j is not None}
        if None not in held.values():
            return rhs, _node_holding(info, held)
    return rhs, _seen_at_run_time(b, op)


@rule('built_cotangents')
def built_cotangents(b, op, rhs):
    """rt.built_cotangents(cot, node, where): argument k's adjoint is child
    where[k] of cot."""
    where, cot = _layout(b, op.inputs['where']), b.info(op.inputs['cot'])
    parts = [SCALAR if j is None else _child_info(cot, j) for j in where or ()]
    if where is None or None in parts:
        return rhs, _seen_at_run_time(b, op)
    return rhs, container(tuple(parts))


def _attribute_child(b, op):
    """(the node's NodeInfo, the index of the child its attribute holds, or
    None where it holds auxiliary data), or None where that is not known."""
    info, name = b.info(op.inputs['node']), op.inputs['name']
    if not isinstance(info, NodeInfo) or not isinstance(name, n.Constant) or info.fields is None:
        return None
    if name.value in info.fields:
        return info, info.fields[name.value]
    return (info, None) if name.value in info.static else None


def _child_info(info, j):
    """The Info of child j of a node's derivative (a node, or the zero 0.0)
    that `info` describes; None where it cannot be told."""
    if isinstance(info.elts, tuple):
        return info.elts[j] if j < len(info.elts) else None
    if info.elts is None and info.item is None:      # its form is seen at run time
        return Info(info.batched, None)
    return None


def _node_holding(info, held):
    """The Info of a node like `info` holding the parts `held` ({child: Info}),
    0.0 elsewhere."""
    return info.with_elts([held.get(j, SCALAR) for j in range(len(info.elts))])


def _seen_at_run_time(b, op):
    """A result whose form only the run shows (as the item of a batched
    container's is), batched where an input is."""
    return Info(batched(b, *op.inputs.values()), None)


def _layout(b, node):
    """The literal `where` of a node helper (a tuple of child indices and
    None), also through the name normal form binds it to; None if it is none."""
    if isinstance(node, n.Name):
        bound = [s.value for s in n.walk(b.fdef) if isinstance(s, n.Assign)
                 and isinstance(s.targets[0], n.Name) and s.targets[0].id == node.id]
        node = bound[0] if len(bound) == 1 else None
    if isinstance(node, n.Constant) and isinstance(node.value, tuple):
        return node.value
    if isinstance(node, n.Tuple) and all(isinstance(e, n.Constant) and (
            e.value is None or type(e.value) is int) for e in node.elts):
        return tuple(e.value for e in node.elts)
    return None

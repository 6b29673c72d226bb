"""Stage 5: batching (vmap) of normal form.

Every batched value keeps its batch axis first. What is known at compile time
about each name is an `Info`: whether it is batched, the rank of one example
(its per-example ndim) where that can be inferred, and for containers the
facts about each element. Each statement is rewritten by its primitive's
batching rule (transformer/batch_rules/, chosen by the record's `batch`
field); a statement whose inputs are all unbatched is left alone.

Control flow. A condition on unbatched values stays Python; where the two
branches leave a name in different forms (batched in one, not in the other),
the unbatched one is broadcast at the end of its branch, and a loop promotes a
value that becomes batched inside it before the loop starts.

An `if` on a batched condition runs both branches, every example through
each, with NumPy's warnings silenced (the branch an example does not take may
take the log of a negative); each branch writes the names that outlive the
`if` (liveness, computed once below) under names of its own (`_y_then0`,
`_y_else0`), and one select per name joins them: `y = xp.where(c, _y_then0,
_y_else0)`. A `while` on a batched condition runs until every example is
done: `_active` marks the examples still running, is only ever narrowed, and
masks the names that outlive the loop (the others are right for the examples
still running, and nobody reads the rest). A `for` over a range with batched
bounds runs to the largest bound, masked the same way. A `raise` in a batched
branch raises if any example takes it.

Derivative code (vmap of grad). Reverse mode saves values on a tape, a list
that every saved value is pushed on and popped back into the same name
(pipeline.TAPES names it). A pop has the facts of what was pushed from its
name. Where the tape stays in one function (grad's own code), each value on
it keeps its own form (`tags`: a first pass finds them), so a parameter
shared by every example is saved and restored unbatched; otherwise the tape
is batched as a whole, as any list whose items become batched. A call of a
user function is `rt.vjp_call(f, ...)` there: where f and the kinds of its
arguments (Info.kind: which are differentiated) are known at compile time,
batch_rules.static_vjp_call picks f's derivative then and learns the facts
of its batched sweeps by compiling them (HOOKS, installed by codax).
"""
import re
import types
from collections import OrderedDict

from runtime.closures import Closure
from runtime.tree import (Placeholder, builds_node, children_of, construction_layout, rebuilt,
                          tree_leaves)

from . import nodes as n
from .errors import SourceError, error_at

MAX_PASSES = 8
_SAVED = '_saved'                 # a copy of a name, brought to its tape's form (tagged)
_BRANCH_COPY = re.compile(r'(_then|_else)\d+$')     # `_y_then0` in a nested branch: `_y_then1`


class Info:
    """Compile-time facts about a value in batched code."""
    __slots__ = ('batched', 'rank', 'elts', 'item', 'kind')

    def __init__(self, batched=False, rank=None, elts=None, item=None, kind=None):
        self.batched = batched
        self.rank = rank          # ndim of one example, None when not known
        self.elts = elts          # tuple of Info (list/tuple), dict of Info, or None
        self.item = item          # for a list of unknown length: every element's Info
        self.kind = kind          # of a number or array: 'f' inexact, 'i' integer, 'b' bool

    def __eq__(self, other):
        return (isinstance(other, Info) and self.batched == other.batched
                and self.rank == other.rank and self.elts == other.elts
                and self.item == other.item and self.kind == other.kind)

    def __repr__(self):
        kind = f', {self.kind!r}' if self.kind else ''
        return f'Info({self.batched}, {self.rank}, {self.elts}, {self.item}{kind})'

    def with_kind(self, kind):
        """The same facts about a value of this kind."""
        if kind == self.kind or self.elts is not None or self.item is not None:
            return self
        return Info(self.batched, self.rank, None, None, kind)

    def axes(self):
        """This value as a JAX-style axes prefix: 0, None, or one per element.
        A container with nothing batched (or empty) is the prefix None: tapes
        nest deep, and their spelled-out axes made long lines slow to print."""
        if isinstance(self.elts, tuple):
            parts = tuple(e.axes() for e in self.elts)
        elif isinstance(self.elts, dict):
            parts = {k: e.axes() for k, e in self.elts.items()}
        else:
            return 0 if self.batched else None
        values = parts.values() if isinstance(parts, dict) else parts
        return None if all(v is None for v in values) else parts


class DictInfo(Info):
    """A dict whose keys are known only at run time (written as `d[k] = v`
    with k a variable): `item` holds the facts of every value. As with a list
    of unknown length, its values are batched alike, all or none."""
    __slots__ = ()

    def __init__(self, item):
        super().__init__(item.batched, None, None, item)

    def __repr__(self):
        return f'Dict({self.item})'

    __hash__ = None


class PullbackInfo(Info):
    """A pullback, (backward function, tape), made by a call whose derivative
    the batch pass chose at compile time (batch_rules.static_vjp_call):
    `backward` is that function, `output` the Info of the call's value."""
    __slots__ = ('backward', 'output')

    def __init__(self, tape, backward, output):
        super().__init__(tape.batched, None, (UNKNOWN, tape))
        self.backward = backward
        self.output = output

    def __eq__(self, other):
        return Info.__eq__(self, other) and getattr(other, 'backward', None) is self.backward \
            and getattr(other, 'output', None) == self.output

    __hash__ = None


class Known(Info):
    """An unbatched bool known at compile time: a test of a value's kind
    (`isinstance(x, dict)`, `x is None`) that the value's Info decides. An `if`
    on it is batched as its taken branch alone, so the other branch, written
    for values of another kind, need not be batchable."""
    __slots__ = ('value',)

    def __init__(self, value):
        super().__init__(False, 0, kind='b')
        self.value = value

    def __eq__(self, other):
        return Info.__eq__(self, other) and getattr(other, 'value', None) is self.value

    def __repr__(self):
        return f'Known({self.value})'

    __hash__ = None


class ClosureInfo(Info):
    """A closure (runtime/closures.py), a container of its captured values,
    whose lifted function is known: so the form of its calls' results is too."""
    __slots__ = ('function',)

    def __init__(self, elts, function):
        super().__init__(any(e.batched for e in elts), None, tuple(elts))
        self.function = function

    def __eq__(self, other):
        return Info.__eq__(self, other) and getattr(other, 'function', None) is self.function

    def __repr__(self):
        return f'Closure({self.function.__qualname__}@{id(self.function):x}, {self.elts})'

    __hash__ = None


class FunctionInfo(Info):
    """A function known at compile time that a local name holds (a closure's
    lifted function, rt.closure_function): the same for every example."""
    __slots__ = ('function',)

    def __init__(self, function):
        super().__init__(False, None)
        self.function = function

    def __eq__(self, other):
        return Info.__eq__(self, other) and getattr(other, 'function', None) is self.function

    def __repr__(self):
        return f'Function({self.function.__qualname__}@{id(self.function):x})'

    __hash__ = None


class NodeInfo(Info):
    """A node of a type registered with register_pytree_node, or a namedtuple:
    a container of its children (`elts`, in flattening order), of type
    `node`. `fields` names the attributes that hold a child (name -> its
    index), `static` the attributes that hold none (auxiliary data, the same
    for every example); what an attribute not among either holds is not
    known (None: nothing is)."""
    __slots__ = ('node', 'fields', 'static')

    def __init__(self, elts, node, fields, static):
        super().__init__(any(e.batched for e in elts), None, tuple(elts))
        self.node, self.fields, self.static = node, fields, static

    def __eq__(self, other):
        return Info.__eq__(self, other) and getattr(other, 'node', None) is self.node \
            and other.fields == self.fields and other.static == self.static

    def __repr__(self):
        return f'Node({self.node.__name__}, {self.elts})'

    __hash__ = None

    def with_elts(self, elts):
        """The same node with children of these facts."""
        return NodeInfo(elts, self.node, self.fields, self.static)


# What codax installs for the batch pass (transformer never imports codax):
# 'sweeps': (fn, active, numeric) -> (forward, backward), the generated vjp
# sweeps of a user function; 'static_function': fn -> whether those may be
# chosen at compile time; 'closure_call': (captured, given) -> the function
# whose derivatives are those of a call of a closure (the closure passed last).
HOOKS = {}


UNKNOWN = Info(False, None)
TAPE = Info(False, None)          # reverse mode's tape, when it stays in one function
NONE = Info(False, None)          # the constant None (a value not set yet)
SCALAR = Info(False, 0)
KEY = Info(False, 0, kind='key')   # a dict's key: the same for every example


def container(elts):
    if isinstance(elts, dict):
        return Info(any(e.batched for e in elts.values()), None,
                    OrderedDict(elts) if type(elts) is OrderedDict else dict(elts))
    return Info(any(e.batched for e in elts), None, tuple(elts))


def join(a, b):
    """What is known of a value that is a or b (after a loop or a branch)."""
    if a is None or a is NONE:
        return b
    if b is None or b is NONE:
        return a
    if _zero_like(a) and _is_container(b):       # the adjoint 0.0 stands for any value
        return b
    if _zero_like(b) and _is_container(a):
        return a
    if a == b:
        return a
    if isinstance(a, NodeInfo) and isinstance(b, NodeInfo) and a.node is b.node \
            and len(a.elts) == len(b.elts):
        return a.with_elts([join(x, y) for x, y in zip(a.elts, b.elts)])
    if _keyed(a) and _keyed(b) and (isinstance(a, DictInfo) or isinstance(b, DictInfo)):
        item = None                   # a dict, one side of whose keys is not known
        for part in _elts(a.elts) + _elts(b.elts) + [a.item, b.item]:
            item = join(item, part)
        return DictInfo(item)
    if isinstance(a, PullbackInfo) and isinstance(b, PullbackInfo) \
            and a.backward is b.backward and a.output == b.output:
        return PullbackInfo(join(a.elts[1], b.elts[1]), a.backward, a.output)
    elts = None
    if isinstance(a.elts, tuple) and isinstance(b.elts, tuple) and len(a.elts) == len(b.elts):
        elts = tuple(join(x, y) for x, y in zip(a.elts, b.elts))
    elif isinstance(a.elts, dict) and isinstance(b.elts, dict) and a.elts.keys() == b.elts.keys():
        elts = {k: join(a.elts[k], b.elts[k]) for k in a.elts}
    item = None
    if elts is None and (a.item is not None or b.item is not None or isinstance(
            a.elts, tuple) and isinstance(b.elts, tuple)):     # lists of different lengths
        for part in _elts(a.elts) + _elts(b.elts) + [a.item, b.item]:
            item = join(item, part)
    batched = a.batched or b.batched or any(e.batched for e in _elts(elts))
    return Info(batched, a.rank if a.rank == b.rank else None, elts, item,
                a.kind if a.kind == b.kind else None)


def _zero_like(info):
    """An unbatched number: where a container is expected, the zero 0.0 that
    reverse mode starts adjoints with."""
    return not info.batched and info.rank == 0 and info.elts is None and info.item is None


def _keyed(info):
    """A dict: its keys known (elts) or not (DictInfo)."""
    return isinstance(info, DictInfo) or isinstance(info.elts, dict)


def _is_container(info):
    return info.elts is not None or info.item is not None


def _elts(elts):
    if elts is None:
        return []
    return list(elts.values()) if isinstance(elts, dict) else list(elts)


def info_of_value(value, axis):
    """Info of an actual argument batched along `axis` (a prefix: 0/None/containers)."""
    if builds_node(type(value)):            # a registered node or a namedtuple
        children = children_of(value)
        axes = axis if isinstance(axis, (tuple, list)) else [axis] * len(children)
        return NodeInfo([info_of_value(v, a) for v, a in zip(children, axes)], type(value),
                        *_node_attributes(value, len(children)))
    if isinstance(value, Closure):
        axes = axis if isinstance(axis, (tuple, list)) else [axis] * len(value)
        return ClosureInfo([info_of_value(v, a) for v, a in zip(value, axes)], value.function)
    if isinstance(value, types.FunctionType) and axis is None \
            and not value.__code__.co_filename.startswith('<codax'):
        # a user's function (vmap's cache key holds its identity); not a sweep
        # codax generated, which a pullback carries: its batched form is the
        # run's to choose, from the tape and cotangent seen then
        return FunctionInfo(value)
    if isinstance(value, (tuple, list)) and not hasattr(value, 'shape'):
        axes = axis if isinstance(axis, (tuple, list)) else [axis] * len(value)
        return container(tuple(info_of_value(v, a) for v, a in zip(value, axes)))
    if isinstance(value, dict):
        axes = axis if isinstance(axis, dict) else {k: axis for k in value}
        infos = {k: info_of_value(v, axes[k]) for k, v in value.items()}
        # an OrderedDict's Infos keep its order: its leaves come in that order
        return container(OrderedDict(infos) if type(value) is OrderedDict else infos)
    ndim = getattr(value, 'ndim', None)
    if not isinstance(ndim, int):          # (np.float32 itself: a class, no value's ndim)
        ndim = 0 if isinstance(value, (bool, int, float, complex)) else None
    if axis is None:
        return Info(False, ndim, kind=kind_of_value(value))
    return Info(True, None if ndim is None else ndim - 1, kind=kind_of_value(value))


def _node_attributes(value, count):
    """(fields, static) of a node (see NodeInfo), read off a node of its type
    rebuilt around placeholders for its children: its unflatten function is
    called with them, as JAX calls it with placeholders, so it must not
    inspect them. Where it does (it raises), nothing is known."""
    stand_ins = [Placeholder(i) for i in range(count)]
    try:
        probe = rebuilt(value, stand_ins)
    except Exception:
        return None, None
    return _attributes(probe, stand_ins)


def _attributes(probe, children):
    """(fields, static) of `probe`, a node whose children are `children`, in
    order (its auxiliary data may hold placeholders too)."""
    position = {id(child): k for k, child in enumerate(children)}
    fields, static = {}, set()
    for name in dir(probe):
        if name.startswith('__'):
            continue
        try:
            held = getattr(probe, name)
            parts = tree_leaves(held)
        except Exception:                  # a property that computes with the children
            continue
        if id(held) in position:
            fields[name] = position[id(held)]
        elif not any(id(part) in position for part in parts):
            static.add(name)
    return fields, frozenset(static)


def info_of_construction(kind, args, kwargs):
    """Info of `kind(*args, **kwargs)` (given the Infos of the arguments)
    where kind is a registered node type or a namedtuple whose constructor
    keeps arguments as its children, as they are: found by constructing one
    around placeholders (runtime/tree.py, construction_layout). None where
    that is not so: the call is then made per example."""
    if not builds_node(kind):
        return None
    given = list(args) + list(kwargs.values())
    try:
        where, probe = construction_layout(kind, len(given), tuple(kwargs))
    except ValueError:
        return None
    if any(info.batched for info, child in zip(given, where) if child is None):
        return None            # auxiliary data that differs between examples
    children = children_of(probe)
    held = {child: k for k, child in enumerate(where) if child is not None}
    return NodeInfo([given[held[j]] if j in held else UNKNOWN for j in range(len(children))],
                    kind, *_attributes(probe, children))


def kind_of_value(value):
    """'f' for a floating-point or complex number or array, 'i' for an integer
    or boolean one, 'none' for None (an empty pytree: no leaf to differentiate
    or batch, as `scan`'s `length=None`), else None."""
    if value is None:
        return 'none'
    if isinstance(value, (float, complex)):
        return 'f'
    if isinstance(value, bool):
        return 'b'
    if isinstance(value, int):
        return 'i'
    dtype = getattr(value, 'dtype', None)
    kind = getattr(dtype, 'kind', None)
    return 'f' if kind in ('f', 'c') else 'i' if kind in ('i', 'u') else 'b' if kind == 'b' \
        else None


class Result:
    def __init__(self, body, ret, info, size_name, branches):
        self.body = body
        self.ret = ret
        self.info = info
        self.size_name = size_name      # the batch size's variable
        self.branches = branches        # whether an `if` selects between its branches


def batch(fdef, param_infos, unit, fresh, callee_info=None):
    """Batch the normalized function `fdef` whose parameters have `param_infos`."""
    return Batch(fdef, param_infos, unit, fresh, callee_info).run()


class Batch:
    def __init__(self, fdef, param_infos, unit, fresh, callee_info):
        self.fdef = fdef
        self.unit = unit
        self.fresh = fresh
        self.env = dict(zip([a.id for a in fdef.args.args], param_infos))
        self.defined = set(self.env)    # names assigned on every path so far
        self.constants = _constants(fdef)   # names bound once to an int or tuple literal
        self.counts = _store_counts(fdef)   # name -> how many places bind it
        # {name: its tuple's elements} for `t = g, x, n`, g a global, every name
        # bound once in fdef (see note_tuple)
        self.tuples = {}
        self.locals = {x.id for x in n.walk(fdef) if isinstance(x, n.Name)
                       and not isinstance(x.ctx, n.Load)}
        self.out = None                 # the statement list being written
        self.current = fdef
        self.masks = []                 # batched conditions guarding the current code
        self.quiet = None               # the saved NumPy error state, while silenced
        self.callee_info = callee_info  # (fn, infos) -> Info of a batched user call
        self.size_name = fresh('_B') if '_B' in fresh.taken else '_B'   # vmap of vmapped code
        self.branches = False           # whether an `if` of the user's selects per example
        # Reverse mode's tape (a list every saved value is pushed on, popped back
        # into the same name): what was pushed from each name, so a pop has the
        # facts of that name, not of every value on the tape.
        self.tape = _tape_name(unit, fdef)
        self.pushed = {}                # name -> Info of the values pushed from it
        self.pops = _pops(fdef, self.tape, self.constants) if self.tape else {}
        # (temp -> name it restores)
        self.tags = None                # name -> Info of all it pushes, for a local tape
        # {copy: name} for the copies `tagged` pushed in code batched before
        # (vmap of vmapped derivative code): popped back into the name
        self.saved = _saved_copies(fdef) if self.tape else {}
        self.adjoints_read = _adjoints_read(fdef)   # vjp_call result -> adjoints read, or None

    # ---- what rules use ----

    def info(self, node):
        if node is None:
            return UNKNOWN
        if isinstance(node, n.Name):
            info = self.env.get(node.id)
            return info if info is not None else self.free_info(node.id)
        if isinstance(node, n.Constant):
            v = node.value
            if v is None:
                return NONE
            if isinstance(v, (bool, int, float, complex)):
                return Info(False, 0, kind=kind_of_value(v))
            return UNKNOWN
        if isinstance(node, (n.Tuple, n.List)):
            return container(tuple(self.info(e) for e in node.elts))
        return UNKNOWN

    def free_info(self, name):
        """A closure variable or a global: unbatched, of its current rank when
        it is an array (vmap's cache key holds the ranks of the arrays a
        function's closure and globals hold: codax/vmap.py)."""
        if name in self.locals or self.unit is None:
            return UNKNOWN
        if name in self.unit.closure:
            value = self.unit.closure[name]
        elif name in getattr(self.unit, 'globals', {}):
            value = self.unit.globals[name]
        else:
            return UNKNOWN
        ndim = getattr(value, 'ndim', None)
        return Info(False, ndim) if isinstance(ndim, int) else UNKNOWN    # (dtype: not keyed)

    def size(self):
        """The batch size, `_B`, defined at the top of the generated function."""
        return n.name(self.size_name)

    def tmp(self, expr, info, prefix='_v'):
        """Emit `_vN = expr` and return the new name."""
        name = self.fresh(prefix)
        self.emit(n.assign(name, expr), name, info)
        return n.name(name)

    def emit(self, stmt, target=None, info=None):
        stmt.user_line = getattr(self.current, 'user_line', None)
        self.out.append(stmt)
        if target is not None:
            self.env[target] = info
            self.defined.add(target)

    def lift(self, node, info, rank):
        """A batched operand given axes after the batch axis to reach `rank`,
        so that it broadcasts against unbatched operands as per example."""
        if not info.batched:
            return node
        missing = rank - info.rank
        if missing <= 0:
            return node
        index = n.tuple_([n.Slice(lower=None, upper=None, step=None)]
                         + [n.const(None)] * missing)
        return self.tmp(n.Subscript(value=n.deepcopy(node), slice=index, ctx=n.Load()),
                        Info(True, rank))

    def broadcast(self, node, info):
        """An unbatched value repeated along a new batch axis (a view)."""
        if info.batched and not _is_container(info):
            return node
        if _is_container(info):            # every numeric leaf repeated
            from .batch_rules import _mark_batched, broadcast_axes, literal
            if info.axes() == 0:
                return node
            return self.tmp(n.call('rt.batch_outputs', [node, literal(info.axes()),
                                                        broadcast_axes(info), self.size()]),
                            _mark_batched(info))
        return self.tmp(n.call('rt.broadcast_batch', [node, self.size()]),
                        Info(True, info.rank))

    def fail(self, message):
        raise error_at(_origin(self.current), message, self.unit)

    # ---- the walk ----

    def run(self):
        _annotate_liveness(self.fdef.body)
        body, ret = self.fdef.body[:-1], self.fdef.body[-1].value
        if self.tape and _local_tape(self.fdef, self.tape):
            state = self.state()
            try:
                self.tags = self.dry_tags(body)
                out = self.block(n.deepcopy(body))
                return Result(out, ret, self.info(ret), self.size_name, self.branches)
            except _SharedTape:          # the tape under a batched `if`: every value batched
                self.restore(state)
                self.tags, self.pushed = None, {}
        out = self.block(body)
        return Result(out, ret, self.info(ret), self.size_name, self.branches)

    def state(self):
        return (dict(self.env), set(self.defined), self.branches, dict(self.fresh.counters),
                set(self.fresh.taken), self.quiet, list(self.masks))

    def restore(self, state):
        self.env, self.defined, self.branches, counters, taken, self.quiet, self.masks = state
        self.fresh.counters, self.fresh.taken = dict(counters), set(taken)

    def dry_tags(self, body):
        """A tape that stays inside this function (grad's code) holds each value
        as batched as its name ever is (not every value batched alike, as other
        lists do): a first pass over the code finds what is pushed from each
        name, then pushes are brought to that form and pops have it."""
        state = self.state()
        self.tags = {}
        self.block(n.deepcopy(body))
        tags, self.pushed = self.pushed, {}
        self.restore(state)
        return tags

    def block(self, stmts):
        saved, self.out = self.out, []
        for stmt in stmts:
            self.current = stmt
            self.statement(stmt)
        out, self.out = self.out, saved
        return out

    def statement(self, stmt):
        try:
            if isinstance(stmt, n.Assign):
                return self.assignment(stmt)
            if isinstance(stmt, n.If):
                return self.if_(stmt)
            if isinstance(stmt, n.For):
                return self.for_(stmt)
            if isinstance(stmt, n.While):
                return self.while_(stmt)
            if isinstance(stmt, n.Raise) and self.masks:
                return self.guarded_raise(stmt)
            if isinstance(stmt, n.Expr) and isinstance(stmt.value, n.Call) and getattr(
                    getattr(stmt.value, 'codax', None), 'obj', None) is not None:
                return self.call_statement(stmt)
            self.out.append(stmt)
        except (SourceError, _SharedTape):
            raise
        except Exception as exc:          # a gap in codax: still point at the user's line
            raise error_at(_origin(stmt), f'codax vmap could not batch this statement '
                           f'({type(exc).__name__}: {exc})', self.unit) from exc

    def call_statement(self, stmt):
        """A call of a function whose result is dropped (print(x), a check):
        batched as any call, so each example's arguments reach it as they
        would one by one. (Not a method of a value: a list's .append is the
        container's own, batched with it.)"""
        from .batch_rules import rewrite
        call = stmt.value
        if any(self.info(a).batched for a in call.args + [k.value for k in call.keywords]):
            call = rewrite(self, _substitute(call, self.constants))[0]
        self.out.append(n.copy_location(n.Expr(value=call), stmt))

    def assignment(self, stmt):
        from .batch_rules import rewrite
        name = stmt.targets[0].id
        callee = getattr(getattr(stmt.value, 'codax', None), 'obj', None)
        if callee is not None and callee is getattr(self.unit, 'fn', None) and self.masks \
                and any(self.info(a).batched for a in stmt.value.args):
            self.fail('codax vmap: this recursive call depends on a condition that differs '
                      'between examples, and vmap runs both branches of such a condition, '
                      'so the recursion would not stop; recurse on values that are the same '
                      'for every example, or write a loop')
        pushed = self.tape and _pushed_name(stmt.value, self.tape)
        if pushed:                   # (a copy `tagged` made stands for its name)
            origin = self.saved.get(pushed, pushed)
            self.pushed[origin] = join(self.pushed.get(origin), self.info(n.name(pushed)))
        if self.tags is not None and (pushed or name == self.tape):   # the local tape
            rhs, info = stmt.value, TAPE
            if pushed:
                rhs = n.call('rt.append', [n.name(self.tape), self.tagged(pushed, origin)])
        else:
            rhs, info = rewrite(self, _substitute(stmt.value, self.constants))
        if name in self.pops and self.pops[name] in self.pushed:
            if self.tags is not None:
                info = self.tags.get(self.pops[name], self.pushed[self.pops[name]])
            else:
                info = self.pushed[self.pops[name]]
                if self.info(stmt.value.value).batched:     # a batched tape: batched values
                    from .batch_rules import _mark_batched
                    info = _mark_batched(info)
        self.note_tuple(name, stmt.value)
        if rhs is stmt.value:
            self.out.append(stmt)
        else:
            new = n.assign(name, rhs)
            new.user_line = getattr(stmt, 'user_line', None)
            self.out.append(new)
        self.env[name] = info
        self.defined.add(name)

    def note_tuple(self, name, value):
        """Note `name = g, x, n` where g is a global (a function) and every other
        element a constant or a name bound once in fdef, so the tuple's elements are what those names hold
        wherever it is read. Normalize names the tuple arguments of a call: for
        `rt.jvp_call(rt.vjp_call, (g, x, n), ...)` in the jvp of grad's code the
        batch pass spells the primal call out again, `rt.vjp_call(g, x, n)`, so
        that batching it once more knows g (batch_rules.jvp_of_shared_primals)."""
        if isinstance(value, n.Tuple) and value.elts and self.counts.get(name, 0) <= 1 \
                and isinstance(value.elts[0], n.Name) and value.elts[0].id not in self.locals \
                and all(isinstance(e, n.Constant) or isinstance(e, n.Name)
                        and self.counts.get(e.id, 0) <= 1 for e in value.elts):
            self.tuples[name] = value.elts

    def tagged(self, name, origin):
        """Name `name`, to be pushed on the local tape, in the form of every value
        pushed from `origin`, the name it is popped back into (self.tags)."""
        have, want = self.info(n.name(name)), self.tags.get(origin)
        if want is None or have is NONE or have == want or not want.batched:
            if want is not None and have.batched and not want.batched:
                self.fail('codax vmap: internal: a value saved for the derivative is batched '
                          'where the first pass found it was not')
            return n.name(name)
        copy = self.fresh(_SAVED)
        self.emit(n.assign(copy, n.name(name)), copy, have)
        self.conform(copy, have, want)
        return n.name(copy)

    def conform(self, name, have, want):
        """Emit what turns `name`, now of the form `have`, into the form `want`
        (batched where `want` is, with `want`'s rank)."""
        if have is None or want is None or have is NONE or have == want or not want.batched:
            return
        if _zero_like(have) and _is_container(want):
            return                    # the zero adjoint 0.0: rules take it for any container
        if _zero_like(have) and want.rank is None and not _is_container(want):
            # a value of a form seen only at run time (a call's result: maybe a
            # container), or the number here (the 0.0 that rt.pullback returns
            # for a zero cotangent): broadcast as an array, the number would not
            # have that form; the run-time helpers take the number as it is
            return
        if have.elts is not None or have.item is not None or want.elts is not None \
                or want.item is not None:
            from .batch_rules import literal
            if have.axes() != want.axes():
                self.emit(n.assign(name, n.call('rt.batch_outputs', [
                    n.name(name), literal(have.axes()), literal(want.axes()), self.size()])),
                    name, want)
            return
        if not have.batched:
            have = Info(True, have.rank)
            # (a value of a form seen only at run time, maybe a container: leaf by leaf)
            call = n.call('rt.broadcast_batch', [n.name(name), self.size()]) \
                if have.rank is not None else \
                n.call('rt.batch_outputs', [n.name(name), n.const(None), n.const(0), self.size()])
            self.emit(n.assign(name, call), name, have)
        if want.rank is not None and have.rank is not None and want.rank > have.rank:
            index = n.tuple_([n.Slice(lower=None, upper=None, step=None)]
                             + [n.const(None)] * (want.rank - have.rank))
            self.emit(n.assign(name, n.Subscript(value=n.name(name), slice=index, ctx=n.Load())),
                      name, want)

    # ---- control flow ----

    def if_(self, stmt):
        known = self.info(stmt.test)
        if isinstance(known, Known):
            self.out.extend(self.block(stmt.body if known.value else stmt.orelse))
            return
        if known.batched:
            self.branches = self.branches or not getattr(stmt, 'codax_masked', False)
            return self.select_branches(stmt.test, stmt.body, stmt.orelse, stmt.codax_live)
        before, defined = dict(self.env), set(self.defined)
        body = self.block(stmt.body)
        then_env, then_defined = self.env, self.defined
        self.env, self.defined = dict(before), set(defined)
        orelse = self.block(stmt.orelse)
        else_env = self.env
        joined = _join_envs(then_env, else_env)
        names = sorted(_assigned(stmt.body) | _assigned(stmt.orelse))
        body += self.conformed(names, then_env, joined)
        orelse += self.conformed(names, else_env, joined)
        self.env = joined
        self.defined &= then_defined
        self.out.append(n.if_(stmt.test, body, orelse))

    def conformed(self, names, env, joined):
        """The statements that bring the names of one branch to their joined form."""
        saved = self.out, self.env
        self.out, self.env = [], dict(env)
        for name in names:
            self.conform(name, env.get(name), joined.get(name))
        out, (self.out, self.env) = self.out, saved
        return out

    def select_branches(self, cond, body, orelse, live):
        """Both branches run; each name that outlives the `if` is selected per example.

        Each branch writes the names it shares with what follows (and those the
        other branch still reads) under names of its own, so neither sees the
        other's writes; the condition is kept the same way."""
        before = set(self.defined)
        keep = set(live) | {cond.id}
        then_names = self.branch_names(body, keep | _live_in(orelse, keep), '_then')
        else_names = self.branch_names(orelse, keep, '_else')
        quiet = self.begin_quiet()
        self.masks.append(cond)
        self.out.extend(self.branch(body, then_names))
        self.masks[-1] = ('not', cond)
        self.out.extend(self.branch(orelse, else_names))
        self.masks.pop()
        self.end_quiet(quiet)
        selected = (_assigned(body) | _assigned(orelse)) & set(live)
        for x in sorted(selected, key=lambda x: (x == cond.id, x)):     # the condition last
            a = then_names.get(x, x if x in before else None)
            b = else_names.get(x, x if x in before else None)
            if a is None or b is None:           # unset before, and set on one side only
                if (a or b) != x:
                    self.emit(n.assign(x, n.name(a or b)), x, self.env.get(a or b))
                continue
            if x == self.tape and self.tags is not None:
                raise _SharedTape()
            if x in (a, b) and self.env.get(a if b == x else b).item is not None \
                    or _lengths_differ(self.env.get(a), self.env.get(b)) \
                    or x == self.tape and not _same_pushes(body, orelse, x):
                self.fail(f'codax vmap: the list {x!r} grows or shrinks under a condition '
                          'that differs between examples, so its length would too')
            self.select(x, cond, n.name(a), self.env.get(a), n.name(b), self.env.get(b))

    def branch_names(self, stmts, keep, suffix):
        """{name: its name in this branch} for the names the branch assigns
        that must not be overwritten in place."""
        names = sorted(_assigned(stmts) & keep)
        return {x: self.fresh(_BRANCH_COPY.sub('', x if x.startswith('_') else '_' + x) + suffix)
                for x in names}

    def branch(self, stmts, renamed):
        """One branch of a batched `if`, its names renamed; a renamed name the
        branch reads before writing (or may not write) starts as the old value."""
        if not renamed:
            return self.block(stmts)
        saved, self.out = self.out, []
        entering = _live_in(stmts, set(renamed))
        for x in sorted(renamed):
            if x in entering:
                self.emit(n.assign(renamed[x], n.name(x) if x in self.env else n.const(None)),
                          renamed[x], self.env.get(x, NONE))
        start, self.out = self.out, saved
        return start + self.block(_rename(n.deepcopy(stmts), renamed))

    def select(self, target, cond, a, a_info, b, b_info):
        from .batch_rules import select_expr
        expr, info = select_expr(self, cond, a, a_info, b, b_info)
        self.emit(n.assign(target, expr), target, info)

    def begin_quiet(self):
        """Silence NumPy's warnings while code runs for examples that do not take
        it (the outermost batched construct does it once for all inside)."""
        if self.quiet is not None:
            return None
        self.quiet = self.tmp(n.call('rt.quiet', []), UNKNOWN, '_err').id
        return self.quiet

    def end_quiet(self, quiet):
        if quiet is not None:
            self.out.append(n.expr_stmt(n.call('rt.loud', [n.name(quiet)])))
            self.quiet = None

    def guarded_raise(self, stmt):
        """A `raise` in a branch some examples take: raised if any example takes it."""
        mask = self.mask_name()
        hit = self.tmp(n.call('rt.any_true', [mask]), UNKNOWN, '_hit')
        loud = [n.expr_stmt(n.call('rt.loud', [n.name(self.quiet)]))] if self.quiet else []
        self.out.append(n.if_(hit, loud + [stmt], []))

    def mask_name(self):
        node = None
        for m in self.masks:
            part = m if not isinstance(m, tuple) else self.tmp(
                n.call('xp.logical_not', [m[1]]), self.info(m[1]), '_mask')
            node = part if node is None else self.tmp(
                n.call('xp.logical_and', [node, part]), Info(True, None), '_mask')
        return node

    def loop_env(self, body, head, wrap=None):
        """Reach the fixpoint of what is known around a loop body (dry runs),
        then promote the loop-carried values (`head`: live at the top of the
        loop) that become batched (or grow a rank) inside the loop, so that
        every iteration sees one representation."""
        entry = dict(self.env)
        user_names = _assigned(body)
        for _ in range(MAX_PASSES):
            start = dict(self.env)
            saved = self.out, list(self.masks), set(self.defined), self.quiet
            names = dict(self.fresh.counters), set(self.fresh.taken)   # dry runs name nothing
            self.block(n.deepcopy(wrap(body) if wrap else body))
            self.out, self.masks, self.defined, self.quiet = saved
            self.fresh.counters, self.fresh.taken = names
            keys = set(start) | (user_names & set(self.env))     # not the pass's own temps
            self.env = {k: _carry(start.get(k), self.env.get(k)) for k in keys}
            if self.env == start:
                break
        else:
            self.env = {k: Info(v.batched, None, None) for k, v in self.env.items()}
        fixed = self.env
        self.env = entry
        for name in sorted(set(entry) & head):
            before, after = entry[name], fixed.get(name)
            if before is NONE and after is not None and after.batched and after.elts is None \
                    and after.item is None:
                before = SCALAR       # not set yet: a zero placeholder of the loop's form
                self.emit(n.assign(name, n.const(0.0)), name, before)
            self.conform(name, before, after)
        self.env = fixed

    def for_(self, stmt):
        bounds = stmt.iter.args
        if any(self.info(b).batched for b in bounds):
            return self.masked_range(stmt)
        self.env[stmt.target.id] = SCALAR
        self.loop_env(stmt.body, stmt.codax_head)
        defined = set(self.defined)
        self.out.append(n.for_(stmt.target, stmt.iter, self.loop_body(stmt.body, stmt.codax_head)))
        self.defined = defined

    def loop_body(self, stmts, head):
        """The batched body of a loop whose carried values (`head`) have the
        forms loop_env fixed: a value the body leaves less batched than that
        (set from an unbatched value in the body) is brought to it at the end,
        as the next iteration, and the code after the loop, expect."""
        fixed = dict(self.env)
        carried = sorted(set(head) & set(fixed))
        out = self.block(stmts)
        out += self.conformed(carried, self.env, fixed)
        self.env.update({name: fixed[name] for name in carried})
        return out

    def masked_range(self, stmt):
        """`for i in range(n)` with n batched: run to the largest n, masked.
        With an unbatched start the examples still running are always the same
        or fewer, so only the names that outlive the loop are masked; with a
        batched start, every name the next iteration reads."""
        args = list(stmt.iter.args)
        if len(args) == 3 and not (isinstance(args[2], n.Constant) and args[2].value > 0):
            self.fail('codax vmap: a range with batched bounds needs a constant positive step')
        start, stop = (args[0], args[1]) if len(args) > 1 else (n.const(0), args[0])
        changed = _assigned(stmt.body)        # range() read its bounds once: keep them
        start, stop = (self.tmp(b, self.info(b), '_bound') if isinstance(b, n.Name)
                       and b.id in changed else b for b in (start, stop))
        lo = self.tmp(n.call('rt.loop_bound', [start, n.const(False)]), SCALAR, '_lo') \
            if self.info(start).batched else start
        hi = self.tmp(n.call('rt.loop_bound', [stop, n.const(True)]), SCALAR, '_hi') \
            if self.info(stop).batched else stop
        i = stmt.target.id
        inside = self.fresh('_in')
        test = [n.assign(inside, n.Compare(left=n.name(i), ops=[n.Lt()], comparators=[stop]))]
        live = stmt.codax_live
        if self.info(start).batched:
            after = self.fresh('_from')
            test += [n.assign(after, n.Compare(left=n.name(i), ops=[n.GtE()],
                                                comparators=[start])),
                     n.assign(inside, n.call('xp.logical_and', [n.name(after), n.name(inside)]))]
            live = stmt.codax_head
        for s in test:
            s.user_line = getattr(stmt, 'user_line', None)
        body = test + [_masked(n.name(inside), stmt.body, live)]
        self.env[i] = SCALAR
        self.loop_env(body, stmt.codax_head)
        defined = set(self.defined)
        quiet = self.begin_quiet()
        iter_ = n.call(n.name('range'), [lo, hi] + args[2:])
        self.out.append(n.for_(stmt.target, iter_, self.loop_body(body, stmt.codax_head)))
        self.end_quiet(quiet)
        self.defined = defined

    def while_(self, stmt):
        """A `while` on a batched condition: `_active` (the examples still
        running) is narrowed after every pass until no example runs."""
        test = stmt.test
        def masked(body):            # as each dry run sees the test
            return [_masked(test, body, stmt.codax_live)] if self.info(test).batched else body
        self.loop_env(stmt.body, stmt.codax_head, masked)
        defined = set(self.defined)
        if not self.info(test).batched:
            self.out.append(n.while_(test, self.loop_body(stmt.body, stmt.codax_head)))
            self.defined = defined
            return
        quiet = self.begin_quiet()
        outer = self.mask_name()
        active, go = self.fresh('_active'), self.fresh('_go')
        first = test if outer is None else n.call('xp.logical_and', [outer, test])
        self.emit(n.assign(active, first), active, Info(True, self.info(test).rank))
        self.emit(n.assign(go, n.call('rt.any_true', [n.name(active)])), go, SCALAR)
        body = self.loop_body([_masked(n.name(active), stmt.body, stmt.codax_live)],
                              stmt.codax_head)
        body.append(n.assign(active, n.call('xp.logical_and', [n.name(active), test])))
        body.append(n.assign(go, n.call('rt.any_true', [n.name(active)])))
        self.out.append(n.while_(n.name(go), body))
        self.end_quiet(quiet)
        self.defined = defined


class _SharedTape(Exception):
    """The local tape meets a batched `if`, whose branches are selected per
    example: the tape is then batched as a whole, as other lists are."""


def _carry(a, b):
    """join, except that a value entering a loop unbatched is promoted to the
    batched form it takes in the loop (the promotion is emitted at the loop's
    entry: loop_env). A value whose rank changes in the loop is of a rank not
    known: no code at the entry could give it the rank it takes later and
    keep each example as it is unbatched (a 0.0 lifted to shape (1,) is no
    longer what a tape saved of it, nor what its tangent lines up with)."""
    if a is not None and b is not None and a.rank is not None and b.rank is not None \
            and a.elts is None and b.elts is None and a.item is None and b.item is None \
            and a.rank <= b.rank and b.batched:
        rank = b.rank if a.rank == b.rank else None
        return Info(True, rank, kind=a.kind if a.kind == b.kind else None)
    return join(a, b)


def _tape_name(unit, fdef):
    from .pipeline import LOCAL_TAPES, TAPES
    key = (getattr(unit, 'filename', None), fdef.name)
    tape = LOCAL_TAPES.get(key)
    if tape is not None:            # the jvp or batching of derivative code
        # (only a tape kept in the function: one shared with tangent code, as
        # rt.dense(d_stack, _stack), is batched as a whole, as any list)
        return tape if _local_tape(fdef, tape) else None
    return TAPES.get(key)


def _pushed_name(rhs, tape):
    """`v` for `rt.append(tape, v)` (a push of name v on the tape), else None."""
    if isinstance(rhs, n.Call) and isinstance(rhs.func, n.Attribute) \
            and rhs.func.attr == 'append' and len(rhs.args) == 2 \
            and isinstance(rhs.args[0], n.Name) and rhs.args[0].id == tape \
            and isinstance(rhs.args[1], n.Name):
        return rhs.args[1].id
    return None


def _adjoints_read(fdef):
    """{name of a vjp_call's result: the positions of the adjoints that code
    here reads from its pullback's results (rt.item(results, k)), or None for
    all}: the derivative chosen at compile time computes only those
    (batch_rules.static_vjp_call)."""
    assigned = {}                      # name -> its value, for names assigned once
    counts = {}
    for stmt in n.walk(fdef):
        if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name):
            counts[stmt.targets[0].id] = counts.get(stmt.targets[0].id, 0) + 1
            assigned[stmt.targets[0].id] = stmt.value

    def call_of(node, name):
        return isinstance(node, n.Call) and isinstance(node.func, n.Attribute) \
            and isinstance(node.func.value, n.Name) and node.func.value.id == 'rt' \
            and node.func.attr == name
    pullback_of = {}                   # pullback name -> the vjp_call result it comes from
    for name, value in assigned.items():
        if isinstance(value, n.Subscript) and isinstance(value.value, n.Name) \
                and _literal_value(value.slice, {}) == 1 \
                and call_of(assigned.get(value.value.id), 'vjp_call'):
            pullback_of[name] = value.value.id
    results = {}                       # pullback results name -> the vjp_call result
    for name, value in assigned.items():
        if call_of(value, 'pullback') and value.args and isinstance(value.args[0], n.Name) \
                and value.args[0].id in pullback_of:
            results[name] = pullback_of[value.args[0].id]
    read = {call: set() for call in pullback_of.values()}
    items = set()
    for node in n.walk(fdef):
        if call_of(node, 'item') and len(node.args) == 2 and isinstance(node.args[0], n.Name) \
                and node.args[0].id in results and _literal_value(node.args[1], {}) is not None:
            read[results[node.args[0].id]].add(_literal_value(node.args[1], {}))
            items.add(id(node.args[0]))
    for node in n.walk(fdef):           # a results name used otherwise: every adjoint read
        if isinstance(node, n.Name) and isinstance(node.ctx, n.Load) and node.id in results \
                and id(node) not in items:
            read[results[node.id]] = None
    for name, call in pullback_of.items():    # a pullback used but by rt.pullback: all
        if counts.get(name, 0) > 1:
            read[call] = None
    uses = [node for node in n.walk(fdef) if isinstance(node, n.Name)
            and isinstance(node.ctx, n.Load) and node.id in pullback_of]
    for node in uses:
        if not any(isinstance(v, n.Call) and v.args and v.args[0] is node and call_of(
                v, 'pullback') for v in assigned.values()):
            read[pullback_of[node.id]] = None
    return read


def _local_tape(fdef, tape):
    """Whether the tape is only made, pushed on and popped from here: `tape = []`,
    `rt.append(tape, name)`, `tape[-1]`, `tape[:-1]` and copies of those."""
    uses = [node for node in n.walk(fdef) if isinstance(node, n.Name) and node.id == tape
            and isinstance(node.ctx, n.Load)]
    allowed = set()
    for node in n.walk(fdef):
        if isinstance(node, n.Call) and _pushed_name(node, tape):
            allowed.add(id(node.args[0]))
        elif isinstance(node, n.Subscript) and isinstance(node.value, n.Name) \
                and node.value.id == tape:
            allowed.add(id(node.value))
    return all(id(u) in allowed for u in uses)


def _saved_copies(fdef):
    """{copy: name} for `_savedN = name` (Batch.tagged's copies)."""
    copy = re.compile(re.escape(_SAVED) + r'\d+$')
    return {stmt.targets[0].id: stmt.value.id for stmt in n.walk(fdef)
            if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name)
            and copy.match(stmt.targets[0].id) and isinstance(stmt.value, n.Name)}


def _pops(fdef, tape, constants):
    """{temp: name} for each pop of the tape, normalized to `temp = tape[-1]`
    (the -1 maybe a named constant, in code batched before) and later
    `name = temp`."""
    tops, out = set(), {}
    for stmt in n.walk(fdef):
        if not (isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name)):
            continue
        value = stmt.value
        if isinstance(value, n.Subscript) and isinstance(value.value, n.Name) \
                and value.value.id == tape and _literal_value(value.slice, constants) == -1:
            tops.add(stmt.targets[0].id)
    for stmt in n.walk(fdef):
        if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name) \
                and isinstance(stmt.value, n.Name) and stmt.value.id in tops:
            out[stmt.value.id] = stmt.targets[0].id
    return out


def _same_pushes(body, orelse, tape):
    """Whether both branches push the same number of values on `tape` (none
    inside a loop, whose count could differ)."""
    def pushes(stmts):
        count = 0
        for stmt in stmts:
            if isinstance(stmt, (n.For, n.While)):
                if any(_is_push(x, tape) for x in n.walk(stmt)):
                    return None
            elif isinstance(stmt, n.If):
                inner = pushes(stmt.body), pushes(stmt.orelse)
                if None in inner or inner[0] != inner[1]:
                    return None
                count += inner[0]
            else:
                count += sum(_is_push(x, tape) for x in n.walk(stmt))
        return count
    count = pushes(body)
    return count is not None and count == pushes(orelse)


def _is_push(node, tape):
    """`tape.append(v)`, or `rt.append(tape, v)` as normalize writes it."""
    return isinstance(node, n.Call) and isinstance(node.func, n.Attribute) \
        and node.func.attr == 'append' and (n.is_name(node.func.value, tape) or (
            len(node.args) == 2 and n.is_name(node.args[0], tape)))


def _lengths_differ(a, b):
    """Whether two list or tuple forms are known to hold different numbers
    of values (a select of them could not line them up)."""
    return a is not None and b is not None and isinstance(a.elts, tuple) \
        and isinstance(b.elts, tuple) and len(a.elts) != len(b.elts)


def _store_counts(fdef):
    """{name: how many places bind it} (a parameter bound again: twice)."""
    counts = {}
    for node in n.walk(fdef):
        if isinstance(node, n.Name) and isinstance(node.ctx, (n.Store, n.Param)):
            counts[node.id] = counts.get(node.id, 0) + 1
    return counts


def _constants(fdef):
    """Names assigned exactly once, from an int/tuple literal (axis numbers that
    normalize gave a name: `_t3 = -1`), with their values."""
    counts, values = _store_counts(fdef), {}
    for stmt in n.walk(fdef):
        if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name) \
                and counts.get(stmt.targets[0].id) == 1:
            # (only names bound once: `k = 1; if c: k = n` leaves k, and a
            # tuple made of it, unknown)
            value = _literal_value(stmt.value, values)
            if value is not None:
                values[stmt.targets[0].id] = value
    return values


def _literal_value(node, known):
    if isinstance(node, n.Constant) and type(node.value) in (int, tuple):
        return node.value
    if isinstance(node, n.Name):
        return known.get(node.id)
    if isinstance(node, n.UnaryOp) and isinstance(node.op, n.USub):
        inner = _literal_value(node.operand, known)
        return -inner if type(inner) is int else None
    if isinstance(node, n.Tuple):
        parts = [_literal_value(e, known) for e in node.elts]
        return tuple(parts) if all(type(p) is int for p in parts) else None
    return None


def _substitute(rhs, constants):
    """rhs with the names of known int/tuple constants replaced by their values."""
    if not constants:
        return rhs
    swap = {id(node): _literal(constants[node.id]) for node in n.walk(rhs)
            if isinstance(node, n.Name) and isinstance(node.ctx, n.Load) and node.id in constants}
    if not swap:
        return rhs
    from .forward import _copy_replacing
    return _copy_replacing(rhs, swap)


def _literal(value):
    if isinstance(value, tuple):
        return n.tuple_([n.const(v) for v in value])
    return n.const(value)


def _assigned(stmts):
    out = set()
    for stmt in stmts:
        out |= n.stored_names(stmt)
    return out


def _join_envs(a, b):
    return {k: join(a.get(k), b.get(k)) for k in set(a) | set(b)}


def _rename(stmts, mapping):
    """Every use of the names in `mapping` renamed, liveness notes included."""
    for stmt in stmts:
        for node in n.walk(stmt):
            if isinstance(node, n.Name) and node.id in mapping:
                node.id = mapping[node.id]
            for note in ('codax_live', 'codax_head'):
                if hasattr(node, note):
                    setattr(node, note, {mapping.get(x, x) for x in getattr(node, note)})
    return stmts


def _masked(cond, body, live):
    """`if cond: body`, made by the batching of a loop, with its liveness note."""
    stmt = n.if_(cond, body, [])
    stmt.codax_live = set(live)
    stmt.codax_masked = True
    return stmt


# ---- liveness: which names outlive a statement ----

def _annotate_liveness(body):
    """Note on every If, For and While the names live after it (`codax_live`),
    and on loops the names live at the top of each iteration (`codax_head`)."""
    _live_in(body, set(), annotate=True)


def _live_in(stmts, live, annotate=False):
    """The names live before `stmts` when `live` are live after them."""
    for stmt in reversed(stmts):
        live = _live_before(stmt, live, annotate)
    return live


def _live_before(stmt, live, annotate):
    if isinstance(stmt, n.Assign):
        return (live - n.stored_names(stmt.targets[0])) | n.names_in(stmt.value)
    if annotate and isinstance(stmt, (n.If, n.For, n.While)):
        stmt.codax_live = set(live)
    if isinstance(stmt, n.If):
        return (n.names_in(stmt.test) | _live_in(stmt.body, live, annotate)
                | _live_in(stmt.orelse, live, annotate))
    if isinstance(stmt, (n.For, n.While)):
        target = n.stored_names(stmt.target) if isinstance(stmt, n.For) else set()
        test = n.names_in(stmt.test) if isinstance(stmt, n.While) else set()
        head = live | test
        while True:
            new = live | test | (_live_in(stmt.body, head, annotate) - target)
            if new == head:
                break
            head = new
        if annotate:
            stmt.codax_head = head
        return head | (n.names_in(stmt.iter) if isinstance(stmt, n.For) else set())
    return live | n.names_in(stmt)


def _origin(stmt):
    value = getattr(stmt, 'value', None)
    return value if getattr(value, 'lineno', None) else stmt

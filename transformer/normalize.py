"""Stage 2 of the pipeline: rewrite a function into the normal form of `ir.py`.

Three small passes, in order:
  LoopDesugar   comprehensions become loops; every `for` walks a range
                (`for x in xs` -> `for _k in range(len(_seq))`), and a loop that
                can `break` or `return` becomes a `while`;
  JumpLowering  `break`, `continue` and early `return` become flags that guard
                the statements after them, so control flow is structured;
  Flattener     A-normal form: one operation per statement, intermediates in
                fresh temporaries, methods and operators resolved to primitives,
                `y[i] = v` and `xs.append(v)` made functional, and
                `codax.numpy.at(x)[i].add(v)` made a primitive call.
"""
import inspect
import operator
import sys
import types

import numpy

import runtime
from runtime import TABLE
from runtime import definitions
from runtime.definitions import CONCATENATORS, definition_of

from . import closures, nodes as n
from .errors import error_at
from .ir import CallInfo, packs_keywords

VARARG_METHODS = {'reshape': 'shape', 'transpose': 'axes'}
# Records whose differentiable arguments are arrays: a list there is np.asarray'd.
ARRAY_FAMILIES = ('elementwise', 'reduction', 'linalg')
# codax.numpy.at(x)[idx].<method>(...) -> the record at_<method> (runtime/primitives/updates.py)
AT_SPELLING = ('at(x)[idx].set(v) (or .add, .multiply, .divide, .power, .min, .max with v, '
               '.apply(func), or .get(); JAX\'s keywords mode=, fill_value=, ... too)')


# What a ufunc's methods mean as records: np.add.reduce is np.sum, ...
UFUNC_METHODS = {
    'outer': {},
    'reduce': {'add': 'sum', 'multiply': 'prod', 'maximum': 'max', 'minimum': 'min',
               'logical_and': 'all', 'logical_or': 'any'},
    'accumulate': {'add': 'cumsum', 'multiply': 'cumprod', 'maximum': 'cummax',
                   'minimum': 'cummin', 'logaddexp': 'logcumsumexp'},
}

# ufunc.at(a, idx, v) -> the record of the functional update a = a.at[idx].op(v)
UFUNC_AT = {'add': 'at_add', 'subtract': 'at_add', 'multiply': 'at_multiply',
            'divide': 'at_divide', 'power': 'at_power', 'minimum': 'at_min',
            'maximum': 'at_max'}


class FreshNames:
    """Deterministic temporaries (`_t0`, `_t1`, ...) that avoid the user's names."""

    def __init__(self, taken):
        self.taken = set(taken)
        self.counters = {}

    def __call__(self, base):
        k = self.counters.get(base, 0)
        while f'{base}{k}' in self.taken:
            k += 1
        self.counters[base] = k + 1
        identifier = f'{base}{k}'
        self.taken.add(identifier)
        return identifier


def all_names(tree):
    return {node.id for node in n.walk(tree) if isinstance(node, n.Name)}


def normalize(unit, fresh=None, numeric=None):
    """Return (normalized FunctionDef, FreshNames) for the unit's function.
    `numeric`: the indices of the parameters that are arrays or numbers, where
    the call's signature tells; the others are lists, tuples, dicts or nodes."""
    fdef = n.deepcopy(unit.tree)
    fresh = fresh or FreshNames(all_names(fdef))
    fdef.body, unit.lifted = closures.convert(fdef, unit, fresh)
    statics = StaticValues(unit, _local_names(fdef))
    body = StaticBranches(statics).block(_strip_docstring(fdef.body))
    body = LoopDesugar(fresh, unit).block(body)
    body = JumpLowering(fresh).function(body)
    # a **kwargs parameter is, in generated code, one more positional one: the
    # dict of the keyword arguments (the call sites pass it so: by_position)
    params = [a.id for a in fdef.args.args] + ([fdef.args.kwarg.id] if fdef.args.kwarg else [])
    local_names = set(params) | {nd.id for s in body for nd in n.walk(s)
                                 if isinstance(nd, n.Name) and isinstance(nd.ctx, n.Store)}
    containers = None if numeric is None else \
        [p for i, p in enumerate(params) if i not in set(numeric)]
    body = Flattener(unit, fresh, local_names, containers, statics).block(body)
    if not body or not isinstance(body[-1], n.Return):
        body.append(n.return_(n.const(None)))
    out = n.function(fdef.name, params, body)
    out.args.defaults = fdef.args.defaults
    return n.copy_location(out, fdef), fresh


def _local_names(fdef):
    """The parameters and every name the body assigns: what a free name in
    it is not."""
    return {a.id for a in fdef.args.args} | \
        {p.id for p in (fdef.args.vararg, fdef.args.kwarg) if p is not None} | \
        {x.id for s in fdef.body for x in n.walk(s)
         if isinstance(x, n.Name) and isinstance(x.ctx, (n.Store, n.Param))}


def _strip_docstring(body):
    if body and isinstance(body[0], n.Expr) and isinstance(body[0].value, n.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:]
    return body


def _located(stmts, origin):
    """Give every new statement (and those nested in it) the user's line."""
    line = getattr(origin, 'user_line', getattr(origin, 'lineno', None))
    for stmt in stmts:
        for node in n.walk(stmt):
            if isinstance(node, n.AST) and _is_stmt(node) and getattr(node, 'user_line', None) is None:
                node.user_line = line
    return stmts


def _is_stmt(node):
    return isinstance(node, (n.Assign, n.Expr, n.If, n.For, n.While, n.Return, n.Raise,
                             n.Pass, n.AugAssign, n.Assert, n.Break, n.Continue))


# ---------------------------------------------------------------- static values
#
# What is known while compiling, as Python would compute it when the line
# runs: literals; modules, whether they have an attribute (hasattr(np,
# 'trapezoid'), getattr(np, 'trapz', None)) and their version strings; the
# constants of the numeric libraries (np.inf, math.pi); and pure builtins and
# str methods of those (int(np.__version__.split('.')[0])). A branch on such a
# test is decided at compile time (StaticBranches), so the branch for another
# NumPy version disappears; a constant reaches the rule templates as a value
# (np.linalg.norm's ord=-np.inf picks its rule while compiling). Nothing a
# user's module holds is read as data (it may be rebound), but its version.

class _Unknown(Exception):
    """Not known while compiling."""


_LIBRARIES = ('numpy', 'math', 'cmath')
_PURE_CALLS = (hasattr, getattr, float, int, complex, bool, str, len, tuple, abs, min, max,
               round, numpy.lib.NumpyVersion)
_LITERAL_TYPES = (bool, int, float, complex, str, type(None))
_UNARY = {n.USub: operator.neg, n.UAdd: operator.pos, n.Not: operator.not_,
          n.Invert: operator.invert}
_BINARY = {n.Add: operator.add, n.Sub: operator.sub, n.Mult: operator.mul,
           n.Div: operator.truediv, n.FloorDiv: operator.floordiv, n.Mod: operator.mod,
           n.Pow: operator.pow}
_COMPARE = {n.Eq: operator.eq, n.NotEq: operator.ne, n.Lt: operator.lt, n.LtE: operator.le,
            n.Gt: operator.gt, n.GtE: operator.ge, n.Is: operator.is_, n.IsNot: operator.is_not,
            n.In: lambda a, b: a in b, n.NotIn: lambda a, b: a not in b}


def _literal_value(value):
    return type(value) in _LITERAL_TYPES or type(value) is tuple and all(map(_literal_value, value))


def _apply(fn, *args, **kws):
    try:
        return fn(*args, **kws)
    except Exception:           # (Python raises it when the line runs: left to then)
        raise _Unknown from None


class StaticValues:
    def __init__(self, unit, local_names):
        self.unit = unit
        self.locals = local_names

    def known(self, e):
        """(True, value) for an expression known while compiling, else (False, None)."""
        try:
            return True, self.value(e)
        except _Unknown:
            return False, None

    def truth(self, test):
        """True or False for a test known while compiling, else None."""
        found, value = self.known(test)
        return bool(value) if found and _literal_value(value) else None

    def literal(self, e):
        """(True, value) for an expression whose known value is a number or a
        string, which rule templates may read (norm's ord), else (False, None)."""
        found, value = self.known(e)
        return (True, value) if found and _literal_value(value) else (False, None)

    def value(self, e):
        if isinstance(e, n.Constant):
            return e.value
        if isinstance(e, n.Name) and isinstance(e.ctx, n.Load) and e.id not in self.locals:
            found, value = self.unit.lookup(e.id)
            if found and (isinstance(value, types.ModuleType) or _pure(value)):
                return value
        elif isinstance(e, n.Attribute):
            return self.attribute(self.value(e.value), e.attr)
        elif isinstance(e, n.UnaryOp) and type(e.op) in _UNARY:
            return _apply(_UNARY[type(e.op)], self.data(e.operand))
        elif isinstance(e, n.BinOp) and type(e.op) in _BINARY:
            return _apply(_BINARY[type(e.op)], self.data(e.left), self.data(e.right))
        elif isinstance(e, n.Compare):
            return self.compare(e)
        elif isinstance(e, n.BoolOp):
            for part in e.values:           # Python's: the first that decides, else the last
                value = self.data(part)
                if bool(value) == isinstance(e.op, n.Or):
                    break
            return value
        elif isinstance(e, n.Subscript) and not isinstance(e.slice, n.Slice):
            return _apply(operator.getitem, self.data(e.value), self.data(e.slice))
        elif isinstance(e, n.Tuple):
            return tuple(self.data(x) for x in e.elts)
        elif isinstance(e, n.Call) and not any(k.arg is None for k in e.keywords):
            return self.call(e)
        raise _Unknown

    def data(self, e):
        """A known value that is no module or function: what operators may take."""
        value = self.value(e)
        if not _data(value):
            raise _Unknown
        return value

    def attribute(self, base, attr):
        if isinstance(base, types.ModuleType):
            if not hasattr(base, attr):
                raise _Unknown          # (the line raises AttributeError when it runs)
            value = getattr(base, attr)
            if isinstance(value, types.ModuleType) or _pure(value):
                return value
            library = base.__name__.split('.')[0] in _LIBRARIES
            if attr == '__version__' or library and _literal_value(value) \
                    or base is sys and attr == 'version_info':
                return value
        elif isinstance(base, (str, tuple, numpy.lib.NumpyVersion)):
            value = _apply(getattr, base, attr)
            if _literal_value(value) or _pure(value):
                return value
        raise _Unknown

    def compare(self, e):
        left = self.value(e.left)
        for op, right in zip(e.ops, e.comparators):
            right = self.value(right)
            if type(op) not in (n.Is, n.IsNot) and not (_data(left) and _data(right)):
                raise _Unknown          # (`getattr(np, 'trapz', None) is None` may test a function)
            if not _apply(_COMPARE[type(op)], left, right):
                return False
            left = right
        return True

    def call(self, e):
        fn = self.value(e.func)
        if (fn is hasattr or fn is getattr) and not e.keywords and len(e.args) in (2, 3):
            module, name = self.value(e.args[0]), self.data(e.args[1])
            if not isinstance(module, types.ModuleType) or not isinstance(name, str) \
                    or fn is hasattr and len(e.args) == 3:
                raise _Unknown
            if fn is hasattr:
                return hasattr(module, name)
            if hasattr(module, name):
                return self.attribute(module, name)
            if len(e.args) == 3:
                return self.value(e.args[2])
            raise _Unknown
        if not _pure(fn):
            raise _Unknown
        args = [self.data(a) for a in e.args]
        return _apply(fn, *args, **{k.arg: self.data(k.value) for k in e.keywords})


def _data(value):
    """A number, string or None, a tuple or list of those (sys.version_info,
    a version string split) or a NumpyVersion."""
    return _literal_value(value) or isinstance(value, numpy.lib.NumpyVersion) or \
        isinstance(value, (tuple, list)) and all(map(_data, value))


def _pure(fn):
    """A function of its arguments alone: a builtin codax folds, or a method of a str."""
    return any(fn is f for f in _PURE_CALLS) or isinstance(fn, types.BuiltinMethodType) \
        and isinstance(getattr(fn, '__self__', None), (str, tuple))


class StaticBranches:
    """`if hasattr(np, 'trapezoid'): ... else: ...` decided while compiling:
    only the branch that runs is kept, so the other may name what this NumPy
    lacks. What follows a `return`, `raise`, `break` or `continue` in a block
    never runs and is dropped."""

    def __init__(self, statics):
        self.statics = statics

    def block(self, stmts):
        out = []
        for stmt in stmts:
            out.extend(self.stmt(stmt))
            if out and isinstance(out[-1], (n.Return, n.Raise, n.Break, n.Continue)):
                break
        return out

    def stmt(self, stmt):
        if isinstance(stmt, n.If):
            decided = self.statics.truth(stmt.test)
            if decided is not None:
                return self.block(stmt.body if decided else stmt.orelse)
            stmt.body, stmt.orelse = self.block(stmt.body) or [n.Pass()], self.block(stmt.orelse)
        elif isinstance(stmt, (n.For, n.While)):
            stmt.body = self.block(stmt.body) or [n.Pass()]
        return [stmt]


# ---------------------------------------------------------------- LoopDesugar

def _is_call_to(node, fname):
    return isinstance(node, n.Call) and isinstance(node.func, n.Name) and node.func.id == fname


def _contains(stmts, kinds, into_loops):
    """Whether `stmts` hold a node of `kinds` (not looking into nested loops
    unless `into_loops`)."""
    stack = list(stmts)
    while stack:
        node = stack.pop()
        if isinstance(node, kinds):
            return True
        if isinstance(node, (n.For, n.While)) and not into_loops:
            continue
        stack.extend(n.iter_child_nodes(node))
    return False


def _loop_exits(body):
    """A loop body that can `break` (itself) or `return`."""
    return _contains(body, n.Break, False) or _contains(body, n.Return, True)


class LoopDesugar:
    def __init__(self, fresh, unit):
        self.fresh = fresh
        self.unit = unit

    def block(self, stmts):
        out = []
        for stmt in stmts:
            hoisted = []
            stmt = _ComprehensionHoister(self, hoisted).visit_statement(stmt)
            produced = hoisted + self.stmt(stmt)
            out.extend(_located(produced, stmt))
        return out

    def stmt(self, stmt):
        if isinstance(stmt, n.If):
            stmt.body, stmt.orelse = self.block(stmt.body), self.block(stmt.orelse)
            return [stmt]
        if isinstance(stmt, n.While):
            stmt.body = self.block(stmt.body)
            return [stmt]
        if isinstance(stmt, n.For):
            return self.for_loop(stmt)
        return [stmt]

    def for_loop(self, loop):
        body = self.block(loop.body)
        exits = _loop_exits(body)
        if _is_call_to(loop.iter, 'range') and isinstance(loop.target, n.Name) and not exits:
            loop.body = body
            return [loop]
        pre, length, header = self._sequences(loop.target, loop.iter)
        k = self.fresh('_k')
        header = [n.copy_location(h, loop) for h in header(n.name(k))]
        if not exits:
            loop_range = n.call(n.name('range'), [length])
            return pre + [n.copy_location(n.for_(k, loop_range, header + body), loop)]
        step = n.assign(k, n.binop(n.name(k), n.Add(), n.const(1)))
        test = n.Compare(left=n.name(k), ops=[n.Lt()], comparators=[length])
        loop_node = n.copy_location(n.while_(test, header + [step] + body), loop)
        return pre + [n.assign(k, n.const(0)), loop_node]

    def _sequences(self, target, it):
        """(statements before the loop, length expression, header(k) -> the
        statements that bind `target` for index k) for `for target in it`.
        enumerate and zip nest (`for i, (a, b) in enumerate(zip(xs, ys))`):
        each is unpacked into indexing, so only the sequences walked are
        differentiated."""
        if _is_call_to(it, 'enumerate') and _pair(target) and len(it.args) >= 1:
            start = it.args[1] if len(it.args) > 1 else n.const(0)
            idx, elem = target.elts
            pre, length, inner = self._sequences(elem, it.args[0])

            def header(k):
                first = k if isinstance(start, n.Constant) and start.value == 0 \
                    else n.binop(k, n.Add(), start)
                return [n.assign(idx, first)] + inner(k)
            return pre, length, header
        if _is_call_to(it, 'zip') and it.args and not it.keywords:
            unpacked = isinstance(target, (n.Tuple, n.List)) and len(target.elts) == len(it.args)
            names = target.elts if unpacked else [self.fresh('_elt') for _ in it.args]
            parts = [self._sequences(t, a)
                     for t, a in zip(names, it.args)]
            lengths = [length for _, length, _ in parts]

            def header(k):
                bound = [stmt for _, _, inner in parts for stmt in inner(k)]
                if not unpacked:      # `for pair in zip(xs, ys)`: the tuple itself
                    bound.append(n.assign(target, n.Tuple(
                        elts=[n.name(t) for t in names], ctx=n.Load())))
                return bound
            return ([stmt for pre, _, _ in parts for stmt in pre],
                    lengths[0] if len(lengths) == 1 else n.call(n.name('min'), lengths), header)
        seq = self.fresh('_seq')
        pre = [n.assign(seq, _iterate(it))]

        def header(k):
            return [n.assign(target, n.subscript(n.name(seq), k))]
        return pre, n.call(n.name('len'), [n.name(seq)]), header


def _iterate(iterable):
    """rt.iterate(xs): what a for loop walks, as an indexable sequence."""
    call = n.call('rt.iterate', [iterable])
    call.codax = CallInfo('prim', prim=TABLE['iterate'], label='the for loop')
    return call


def _pair(target):
    return isinstance(target, (n.Tuple, n.List)) and len(target.elts) == 2


class _ComprehensionHoister(n.NodeTransformer):
    """Replace comprehensions in one statement's expressions by a list built
    in loops placed before the statement."""

    def __init__(self, desugar, hoisted):
        self.desugar = desugar
        self.hoisted = hoisted

    def visit_statement(self, stmt):
        fields = {n.If: ('test',), n.While: ('test',), n.For: ('iter',)}.get(type(stmt))
        if fields is None:
            return self.visit(stmt)
        for field in fields:
            value = getattr(stmt, field)
            if isinstance(stmt, n.While) and _has_comprehension(value):
                raise error_at(value, 'codax does not support comprehensions in a `while` '
                               'condition; compute the value inside the loop',
                               self.desugar.unit)
            setattr(stmt, field, self.visit(value))
        return stmt

    def _comprehension(self, node, is_dict):
        fresh = self.desugar.fresh
        acc = fresh('_dict' if is_dict else '_list')
        renames = {}
        for gen in node.generators:
            for name_node in n.walk(gen.target):
                if isinstance(name_node, n.Name):
                    renames.setdefault(name_node.id, fresh('_' + name_node.id.strip('_')))
        first_iter = self.visit(node.generators[0].iter)      # evaluated in the outer scope
        node = _Rename(renames).visit(node)
        # The element, conditions and inner iterables stay as written: the loop
        # body is desugared statement by statement later, which hoists any
        # comprehension inside them to the right place, inside the loops.
        if is_dict:
            inner = [n.Assign(targets=[n.subscript(n.name(acc), node.key, store=True)],
                              value=node.value, type_comment=None)]
        else:
            inner = [n.expr_stmt(n.call(n.attr(n.name(acc), 'append'), [node.elt]))]
        for depth, gen in reversed(list(enumerate(node.generators))):
            for cond in reversed(gen.ifs):
                inner = [n.if_(cond, inner)]
            inner = [n.for_(gen.target, first_iter if depth == 0 else gen.iter, inner)]
        init = n.Dict(keys=[], values=[]) if is_dict else n.list_([])
        for stmt in [n.assign(acc, init)] + inner:
            n.copy_location(stmt, node)
            self.hoisted.extend(self.desugar.stmt(stmt))
        return n.name(acc)

    def visit_ListComp(self, node):
        return self._comprehension(node, False)

    def visit_GeneratorExp(self, node):
        return self._comprehension(node, False)

    def visit_DictComp(self, node):
        return self._comprehension(node, True)


def _has_comprehension(node):
    return any(isinstance(x, (n.ListComp, n.GeneratorExp, n.DictComp)) for x in n.walk(node))


class _Rename(n.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        if node.id in self.mapping:
            return n.copy_location(n.Name(id=self.mapping[node.id], ctx=node.ctx,
                                          annotation=None, type_comment=None), node)
        return node


# ---------------------------------------------------------------- JumpLowering

class _Loop:
    def __init__(self, brk=None, cont=None):
        self.brk, self.cont = brk, cont


class JumpLowering:
    def __init__(self, fresh):
        self.fresh = fresh
        self.returned = None
        self.retval = None

    def function(self, body):
        returns = [x for s in body for x in n.walk(s) if isinstance(x, n.Return)]
        simple = not returns or (len(returns) == 1 and body and body[-1] is returns[0])
        if simple:
            return self.block(body, None)
        self.returned, self.retval = self.fresh('_returned'), self.fresh('_retval')
        start = [n.assign(self.returned, n.const(False)), n.assign(self.retval, n.const(None))]
        end = [n.return_(n.name(self.retval))]
        lowered = self.block(body, None)
        return _located(start, body[0]) + lowered + _located(end, body[-1])

    def _flags(self, stmt, loop):
        """The flags `stmt` may set, which the statements after it must check."""
        flags = []
        if self.returned and _contains([stmt], n.Return, True):
            flags.append(self.returned)
        if loop is not None and not isinstance(stmt, (n.For, n.While)):
            if loop.brk and _contains([stmt], n.Break, False):
                flags.append(loop.brk)
            if loop.cont and _contains([stmt], n.Continue, False):
                flags.append(loop.cont)
        return flags

    def block(self, stmts, loop):
        out = []
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, n.Return):
                if self.returned is None:
                    out.append(stmt)
                else:
                    value = stmt.value if stmt.value is not None else n.const(None)
                    out += _located([n.assign(self.retval, value),
                                     n.assign(self.returned, n.const(True))], stmt)
                return out
            if isinstance(stmt, (n.Break, n.Continue)):
                flag = loop.brk if isinstance(stmt, n.Break) else loop.cont
                out += _located([n.assign(flag, n.const(True))], stmt)
                return out
            flags = self._flags(stmt, loop)
            out.extend(self.stmt(stmt, loop))
            rest = stmts[i + 1:]
            if flags and rest:
                guarded = self.block(rest, loop)
                if guarded:
                    out += _located([n.if_(_none_set(flags), guarded)], rest[0])
                return out
        return out

    def stmt(self, stmt, loop):
        if isinstance(stmt, n.If):
            stmt.body = self.block(stmt.body, loop)
            stmt.orelse = self.block(stmt.orelse, loop)
            return [stmt]
        if isinstance(stmt, (n.For, n.While)):
            return self.loop(stmt)
        return [stmt]

    def loop(self, node):
        inner = _Loop(self.fresh('_break') if _contains(node.body, n.Break, False) else None,
                      self.fresh('_continue') if _contains(node.body, n.Continue, False) else None)
        stops = [inner.brk] if inner.brk else []
        if self.returned and _contains(node.body, n.Return, True):
            stops.append(self.returned)
        body = self.block(node.body, inner)
        if inner.cont:
            body = _located([n.assign(inner.cont, n.const(False))], node) + body
        node.body = body
        pre = _located([n.assign(inner.brk, n.const(False))], node) if inner.brk else []
        if stops:      # only `while` loops can stop early (LoopDesugar saw to that)
            node.test = n.BoolOp(op=n.And(), values=[n.not_(n.name(s)) for s in stops] + [node.test])
        return pre + [node]


def _none_set(flags):
    if len(flags) == 1:
        return n.not_(n.name(flags[0]))
    return n.not_(n.BoolOp(op=n.Or(), values=[n.name(f) for f in flags]))


# ---------------------------------------------------------------- Flattener

class Flattener:
    def __init__(self, unit, fresh, local_names, containers=None, statics=None):
        self.unit = unit
        self.fresh = fresh
        self.locals = local_names
        self.statics = statics or StaticValues(unit, local_names)
        self.sequences = None    # local names that only ever hold a list or tuple
        self.dicts = None        # local names that only ever hold a dict
        # the parameters the call passes a list, tuple or dict, and the others
        # (where the signature is known: `containers` is not None)
        self.given = set(containers or ())
        self.numeric_params = _parameters(unit) - self.given if containers is not None else set()
        self.containers = None   # those of them the body only joins with `+` or keeps
        self.returned = None     # local names that only ever hold what a user function returns

    def error(self, node, message):
        return error_at(node, message, self.unit)

    # -- statements --
    def block(self, stmts):
        if self.sequences is None:           # the function's body: the first block
            params, values = _parameters(self.unit), _assigned_values(stmts)
            self.sequences = _names_holding(values, self.is_sequence, params)
            self.dicts = _names_holding(values, self.is_dict, params)
            self.containers = _names_holding(values, self.is_joinable, params, self.given)
            self.returned = _names_holding(values, self.is_returned, params)
        out = []
        for stmt in stmts:
            produced = self.stmt(stmt)
            raised = [k for k, s in enumerate(produced) if isinstance(s, n.Raise)]
            out.extend(_located(produced[:raised[0] + 1] if raised else produced, stmt))
            if raised:                # (what follows never runs: see missing_attribute)
                break
        return out

    def stmt(self, s):
        buf = []
        if isinstance(s, n.Assign) and _parallel(s):
            values = [self.atom(v, buf) for v in s.value.elts]    # all read, then all written
            values = [self._frozen(v, s.targets[0], buf) for v in values]
            for target, value in zip(s.targets[0].elts, values):
                self.assign_to(target, value, buf)
        elif isinstance(s, n.Assign):
            value = self.rhs(s.value, buf)
            if len(s.targets) > 1:
                value = self._atomize(value, buf)
            for target in s.targets:
                self.assign_to(target, value, buf)
        elif isinstance(s, n.AugAssign):
            current = n.deepcopy(s.target)
            for node in n.walk(current):
                if hasattr(node, 'ctx'):
                    node.ctx = n.Load()
            self.assign_to(s.target, self.rhs(n.binop(current, s.op, s.value), buf), buf)
        elif isinstance(s, n.Expr):
            self.expression_statement(s, buf)
        elif isinstance(s, n.If):
            test = self.test_name(s.test, buf)
            buf.append(n.if_(test, self.block(s.body), self.block(s.orelse)))
        elif isinstance(s, n.While):
            test_buf = []
            test = self.test_name(s.test, test_buf)
            recompute = [n.deepcopy(t) for t in test_buf]
            buf += test_buf + [n.while_(test, self.block(s.body) + recompute)]
        elif isinstance(s, n.For):
            self.range_loop(s, buf)
        elif isinstance(s, n.Return):
            value = s.value if s.value is not None else n.const(None)
            buf.append(n.return_(self.atom(value, buf)))
        elif isinstance(s, n.Assert):
            ok = self.atom(s.test, buf)
            failed = self.fresh('_t')
            buf.append(n.assign(failed, n.not_(ok)))
            args = [s.msg] if s.msg is not None else []
            raise_ = n.Raise(exc=n.call(n.name('AssertionError'), args), cause=None)
            buf.append(n.if_(n.name(failed), [raise_]))
        elif isinstance(s, n.Raise):
            buf.append(s)
        elif isinstance(s, n.Pass):
            pass
        else:
            raise self.error(s, f'codax does not support this statement ({type(s).__name__})')
        return buf

    def expression_statement(self, s, buf):
        value = s.value
        if isinstance(value, n.Constant):
            return
        if isinstance(value, n.Call) and self.in_place(value, buf):
            return
        if isinstance(value, n.Call) and isinstance(value.func, n.Attribute) \
                and value.func.attr == 'append' and isinstance(value.func.value, n.Name) \
                and value.func.value.id in self.locals and len(value.args) == 1:
            lst = value.func.value.id
            item = self.atom(value.args[0], buf)
            call = self._prim_call(TABLE['append'], [n.name(lst), item], [], value, '.append()')
            self.assign_to(n.name(lst, store=True), call, buf)
            return
        if isinstance(value, n.Call) and isinstance(value.func, n.Attribute) \
                and isinstance(value.func.value, n.Name) and value.func.value.id in self.locals \
                and not value.keywords and (value.func.attr, len(value.args)) in (
                    ('extend', 1), ('insert', 2)):
            lst = n.name(value.func.value.id)
            call = self.extend(lst, value, buf) if value.func.attr == 'extend' else \
                self.insert(lst, value, buf)
            self.assign_to(n.name(lst.id, store=True), call, buf)
            return
        if self.is_ufunc_at(value):
            self.ufunc_at(value, buf)
            return
        rhs = self.rhs(value, buf)
        if isinstance(rhs, n.Call):
            buf.append(n.expr_stmt(rhs))

    # -- updates in place, given value semantics (`y.fill(v)` -> `y = full_like(y, v)`) --
    def in_place(self, e, buf):
        """A call statement that updates a variable in place, rewritten as an
        assignment of the new value to it; what cannot be rewritten is refused
        (ignored, its update was lost: a silently wrong derivative). Returns
        whether `e` was such a call."""
        out = _out_keyword(e)
        if out is not None:
            self.out_argument(e, out, buf)
            return True
        func = e.func
        if self.is_static(func):
            obj = self.resolve(func)
            if obj is numpy.copyto:
                self.copyto(e, buf)
                return True
            if any(obj is getattr(numpy, name, None) for name in IN_PLACE_FUNCTIONS):
                raise self.error(e, f'codax does not support {_label(func)}(), which writes '
                                    f'into its first argument: {IN_PLACE_FUNCTIONS[obj.__name__]}')
            return False
        if not isinstance(func, n.Attribute) or func.attr not in IN_PLACE_METHODS \
                and not (func.attr in ('append', 'extend', 'insert')
                         and not isinstance(func.value, n.Name)):
            return False
        receiver = func.value
        if not (isinstance(receiver, n.Name) and receiver.id in self.locals):
            raise self.error(e, f'codax supports .{func.attr}(), which changes its object in '
                                'place, only on a variable of this function (`xs.'
                                f'{func.attr}(...)`), as an update of that variable; choose '
                                'the variable with an if statement instead')
        rewrite = getattr(self, '_in_place_' + func.attr, None)
        if rewrite is None:
            raise self.error(e, f'codax does not support .{func.attr}(), which changes its '
                                f'object in place: {IN_PLACE_METHODS[func.attr]}')
        value = rewrite(e, n.name(receiver.id), buf)
        if value is not None:
            self.assign_to(n.name(receiver.id, store=True), value, buf)
        return True

    def _in_place_fill(self, e, y, buf):
        """`y.fill(v)` as `y = np.full_like(y, v)`."""
        if len(e.args) != 1 or e.keywords:
            raise self.error(e, 'bad arguments to .fill(): it takes one value')
        return self._prim_call(TABLE['full_like'], [y, self.atom(e.args[0], buf)], [], e,
                               '.fill()')

    def _in_place_sort(self, e, y, buf):
        """`y.sort(...)` of an array as `y = np.sort(y, ...)`; a list's sort is refused."""
        if self.is_sequence(y) or self.in_container(y):
            raise self.error(e, 'codax does not support list.sort() (nor sorted()); sort an '
                                'array with np.sort instead')
        args, kws = self.call_arguments(e, buf)
        return self._prim_call(TABLE['sort'], [y] + args, kws, e, '.sort()')

    def _in_place_reverse(self, e, xs, buf):
        """`xs.reverse()` as `xs = xs[::-1]`."""
        if e.args or e.keywords:
            raise self.error(e, 'bad arguments to .reverse(): it takes none')
        return n.subscript(xs, n.Slice(lower=None, upper=None, step=n.const(-1)))

    def _in_place_clear(self, e, xs, buf):
        """`xs.clear()` as `xs = []` (`{}` for a dict)."""
        if e.args or e.keywords:
            raise self.error(e, 'bad arguments to .clear(): it takes none')
        if self.is_dict(xs):
            return self.dict_literal(n.Dict(keys=[], values=[]), buf)
        if self.is_sequence(xs):
            return n.list_([])
        raise self.error(e, 'codax supports .clear() on a list or dict made in this function; '
                            'assign an empty one instead (`xs = []`, `d = {}`)')

    def _in_place_update(self, e, d, buf):
        """`d.update({'k': v}, j=w)` as `d['k'] = v; d['j'] = w`, in order."""
        items = [(k, v) for k, v in zip(e.args[0].keys, e.args[0].values)] \
            if len(e.args) == 1 and isinstance(e.args[0], n.Dict) else []
        if len(e.args) > 1 or e.args and (not isinstance(e.args[0], n.Dict)
                                          or any(k is None for k, _ in items)):
            raise self.error(e, 'codax supports dict.update() with a dict literal or keywords '
                                '(`d.update({"k": v})`, `d.update(k=v)`); assign the items one '
                                'by one (`d[k] = v`) otherwise')
        if any(k.arg is None for k in e.keywords):
            raise self.error(e, 'codax does not support **kwargs in dict.update()')
        items += [(n.const(k.arg), k.value) for k in e.keywords]
        pairs = [(self.atom(k, buf), self.atom(v, buf)) for k, v in items]   # all read first
        for key, value in pairs:
            self.assign_to(n.subscript(n.name(d.id), key, store=True), value, buf)
        return None

    def call_arguments(self, e, buf):
        args = [self.atom(a, buf) for a in e.args]
        return args, [n.keyword(arg=k.arg, value=self.atom(k.value, buf)) for k in e.keywords]

    def out_argument(self, e, out, buf):
        """`f(a, out=y)` as `y = f(a).astype(y.dtype)` (NumPy casts into out's
        dtype), for a NumPy function, a ufunc or an array method, and y a variable."""
        target = out.value
        func = e.func
        if not self.numpy_call(func):
            return self._refuse_out(e)
        if not (isinstance(target, n.Name) and target.id in self.locals):
            raise self.error(e, 'codax supports out= only with a variable of this function '
                                '(`f(a, out=y)`, read as `y = f(a)`)')
        call = n.Call(func=func, args=e.args, keywords=[k for k in e.keywords if k is not out])
        value = self.atom(n.copy_location(call, e), buf)
        dtype = self._atomize(n.Attribute(value=n.name(target.id), attr='dtype', ctx=n.Load()),
                              buf)
        self.assign_to(n.name(target.id, store=True),
                       self._prim_call(TABLE['astype'], [value, dtype], [], e, 'out='), buf)

    def numpy_call(self, func):
        """Whether `func` is a NumPy function or ufunc, or an array method codax knows."""
        if self.is_static(func):
            return _is_numpy(self.resolve(func))
        return isinstance(func, n.Attribute) and func.attr in TABLE.methods

    def _refuse_out(self, e):
        raise self.error(e, 'codax supports out= only on a NumPy function or array method '
                            'called as a statement of its own (`np.sin(a, out=y)`, read as '
                            '`y = np.sin(a)`); assign the result instead')

    def copyto(self, e, buf):
        """`np.copyto(dst, src)` as `dst = np.broadcast_to(src, dst.shape).astype(dst.dtype)`."""
        dst = e.args[0] if e.args else None
        if len(e.args) != 2 or e.keywords or not (isinstance(dst, n.Name)
                                                  and dst.id in self.locals):
            raise self.error(e, 'codax supports np.copyto(dst, src) with dst a variable of '
                                'this function, and no casting= or where= (assign '
                                '`dst = np.where(mask, src, dst)` instead)')
        src = self.atom(e.args[1], buf)
        shape = self._atomize(n.Attribute(value=n.name(dst.id), attr='shape', ctx=n.Load()), buf)
        dtype = self._atomize(n.Attribute(value=n.name(dst.id), attr='dtype', ctx=n.Load()), buf)
        wide = self._atomize(self._prim_call(TABLE['broadcast_to'], [src, shape], [], e,
                                             'np.copyto'), buf)
        self.assign_to(n.name(dst.id, store=True),
                       self._prim_call(TABLE['astype'], [wide, dtype], [], e, 'np.copyto'), buf)

    def is_ufunc_at(self, e):
        return isinstance(e, n.Call) and isinstance(e.func, n.Attribute) \
            and e.func.attr == 'at' and self.is_static(e.func.value) \
            and isinstance(self.resolve(e.func.value), numpy.ufunc)

    def ufunc_at(self, e, buf):
        """`np.add.at(a, idx, v)`, NumPy's unbuffered update of `a` in place,
        as `a = rt.at_add(a, idx, v)`: the functional update whose scatter
        also adds every repeated index (without this, the call's result,
        None, was dropped with the update: a wrong, zero, derivative)."""
        ufunc = self.resolve(e.func.value)
        label = f'{_label(e.func.value)}.at()'
        record = UFUNC_AT.get(ufunc.__name__)
        if record is None:
            raise self.error(e, f'codax supports {label} only for '
                                f'{", ".join(sorted(UFUNC_AT))}')
        target = e.args[0] if e.args else None
        if len(e.args) != 3 or e.keywords or not isinstance(target, n.Name) \
                or target.id not in self.locals:
            raise self.error(e, f'codax supports {label} as `{label[:-2]}(a, indices, values)` '
                                'with `a` a variable of this function')
        idx, v = self.atom(e.args[1], buf), self.atom(e.args[2], buf)
        if ufunc.__name__ == 'subtract':
            v = self._atomize(n.UnaryOp(op=n.USub(), operand=v), buf)
        call = self._prim_call(TABLE[record], [n.name(target.id), idx, v], [], e, label)
        self.assign_to(n.name(target.id, store=True), call, buf)


    def extend(self, lst, e, buf):
        """`xs.extend(ys)` as `xs = xs + list(ys)` (joined lists: rt.concat)."""
        raw = e.args[0]
        if isinstance(raw, (n.List, n.Tuple)) and not any(isinstance(x, n.Starred)
                                                           for x in raw.elts):   # a literal
            items = self._atomize(n.list_([self.atom(x, buf) for x in raw.elts]), buf)
        else:
            items = self._atomize(self._prim_call(TABLE['py_list'], [self.atom(raw, buf)], [], e,
                                                  'list'), buf)
        return self._prim_call(TABLE['concat'], [lst, items], [], e, '.extend()')

    def insert(self, lst, e, buf):
        """`xs.insert(i, v)` as `xs = xs[:i] + [v] + xs[i:]`, which is what
        insert does for every integer i."""
        at, item = self.atom(e.args[0], buf), self.atom(e.args[1], buf)
        head = self._atomize(n.subscript(lst, n.Slice(lower=None, upper=at, step=None)), buf)
        tail = self._atomize(n.subscript(lst, n.Slice(lower=at, upper=None, step=None)), buf)
        one = self._atomize(n.list_([item]), buf)
        front = self._atomize(self._prim_call(TABLE['concat'], [head, one], [], e, '.insert()'),
                              buf)
        return self._prim_call(TABLE['concat'], [front, tail], [], e, '.insert()')

    def repeated_side(self, e):
        """0 or 1 where `a * b` repeats a list or tuple (that side): the other
        side is an integer literal or a call to len() or int(). Else None: a
        count of another kind may be an array, and `[1, 2] * x` NumPy's
        product, which stays a multiply."""
        for side, (seq, count) in enumerate(((e.left, e.right), (e.right, e.left))):
            if not self.is_joinable(seq):
                continue
            if isinstance(count, n.Constant) and type(count.value) is int:
                return side
            if isinstance(count, n.Call) and isinstance(count.func, n.Name) \
                    and count.func.id not in self.locals \
                    and self.unit.lookup(count.func.id)[1] in (len, int):
                return side
        return None

    def repeated(self, e, buf):
        """`seq * n` or `n * seq` for a list or tuple: n copies of seq joined
        end to end, spelt as a literal or as joins (rt.concat), so that the
        adjoint adds the copies' adjoints and the tangent repeats. (As an
        array multiply, the adjoint repeated the adjoint tuple instead.)"""
        side = self.repeated_side(e)
        operands = []
        for k, raw in enumerate((e.left, e.right)):         # evaluated in the order written
            if k == side and _is_literal_sequence(raw):      # its items, to be written out
                operands.append(type(raw)(elts=[self.atom(x, buf) for x in raw.elts],
                                          ctx=n.Load()))
            else:
                operands.append(self.atom(raw, buf))
        seq, count = operands if side == 0 else operands[::-1]
        k = count.value if isinstance(count, n.Constant) and type(count.value) is int else None
        if k is not None and _is_literal_sequence(seq) and len(seq.elts) * k <= _LITERAL_REPEAT:
            return type(seq)(elts=[n.deepcopy(x) for x in seq.elts] * max(k, 0), ctx=n.Load())
        seq = self._atomize(seq, buf)
        empty = n.subscript(seq, n.Slice(lower=None, upper=n.const(0), step=None))
        if k is not None and k <= _LITERAL_REPEAT:
            joined = empty if k <= 0 else seq
            for _ in range(k - 1):
                joined = self._atomize(self._prim_call(TABLE['concat'], [joined, seq], [], e, '*'),
                                       buf)
            return joined
        result = self.fresh('_t')                     # n known only at run time: a loop
        buf.append(n.assign(result, empty))
        body = []
        self.assign_to(n.name(result, store=True),
                       self._prim_call(TABLE['concat'], [n.name(result), seq], [], e, '*'), body)
        range_call = n.call(n.name('range'), [count])
        range_call.codax = CallInfo('native', obj=range, label='range')
        buf.append(n.for_(self.fresh('_i'), range_call, body))
        return n.name(result)

    def range_loop(self, s, buf):
        if not (_is_call_to(s.iter, 'range') and isinstance(s.target, n.Name)):
            raise self.error(s, 'internal: loop not desugared')
        assigned = {x.id for b in s.body for x in n.walk(b)
                    if isinstance(x, n.Name) and isinstance(x.ctx, n.Store)}
        args = []
        for arg in s.iter.args:
            atom = self.atom(arg, buf)
            if isinstance(atom, n.Name) and atom.id in assigned:
                frozen = self.fresh('_t')
                buf.append(n.assign(frozen, atom))
                atom = n.name(frozen)
            args.append(atom)
        body = self.block(s.body)
        target = s.target.id
        if target in assigned:
            loop_var = self.fresh('_i')
            body = _located([n.assign(target, n.name(loop_var))], s) + body
            target = loop_var
        range_call = n.call(n.name('range'), args)
        range_call.codax = CallInfo('native', obj=range, label='range')
        buf.append(n.for_(target, range_call, body))

    def assign_to(self, target, value, buf):
        if isinstance(target, n.Name):
            if not _is_atom(value) and target.id in n.names_in(value):
                temp = self.fresh('_t')        # keeps inputs and output apart
                buf.append(n.assign(temp, value))
                value = n.name(temp)
            buf.append(n.assign(target.id, value))
        elif isinstance(target, (n.Tuple, n.List)):
            source = self._atomize(value, buf)
            for k, elt in enumerate(target.elts):
                self.assign_to(elt, n.subscript(source, n.const(k)), buf)
        elif isinstance(target, n.Subscript):
            array = target.value
            if isinstance(target.slice, n.Slice) and (self.is_sequence(array)
                                                      or self.in_container(array)):
                raise self.error(target, _LIST_SLICE_WRITE)
            item = self._atomize(value, buf)
            index = self.index_value(target.slice, buf)
            call = self._prim_call(TABLE['setitem'], [n.name(array.id), index, item], [],
                                   target, 'item assignment')
            self.assign_to(n.name(array.id, store=True), call, buf)
        else:
            raise self.error(target, 'codax does not support this assignment target')

    def _frozen(self, value, targets, buf):
        """Copy `value` if a parallel assignment is about to overwrite it (a, b = b, a)."""
        if isinstance(value, n.Name) and value.id in n.stored_names(targets):
            temp = self.fresh('_t')
            buf.append(n.assign(temp, value))
            return n.name(temp)
        return value

    def test_name(self, test, buf):
        atom = self.atom(test, buf)
        if isinstance(atom, n.Name):
            return atom
        temp = self.fresh('_c')
        buf.append(n.assign(temp, atom))
        return n.name(temp)

    # -- expressions --
    def _atomize(self, value, buf):
        if _is_atom(value):
            return value
        temp = self.fresh('_t')
        buf.append(n.assign(temp, value))
        return n.name(temp)

    def atom(self, expr, buf):
        return self._atomize(self.rhs(expr, buf), buf)

    def rhs(self, e, buf):
        if isinstance(e, (n.Name, n.Constant)):
            return e
        if isinstance(e, n.Attribute):
            return self.attribute(e, buf)
        if isinstance(e, n.Subscript):
            if self.is_static(e.value) and id(self.resolve(e.value)) in CONCATENATORS:
                return self.concatenator(e, buf)
            return n.subscript(self.atom(e.value, buf), self.index(e.slice, buf))
        if isinstance(e, n.BinOp):
            if isinstance(e.op, n.Mult) and self.repeated_side(e) is not None:
                return self.repeated(e, buf)
            left, right = self.atom(e.left, buf), self.atom(e.right, buf)
            if isinstance(e.op, n.Add) and (self.is_joinable(e.left) or self.is_joinable(e.right)):
                return self._prim_call(TABLE['concat'], [left, right], [], e, '+')   # joined
            return n.binop(left, e.op, right)
        if isinstance(e, n.UnaryOp):
            return self.folded(e, n.UnaryOp(op=e.op, operand=self.atom(e.operand, buf)))
        if isinstance(e, n.Compare):
            return self.compare(e, buf)
        if isinstance(e, n.BoolOp):
            return self.boolop(e.op, e.values, buf)
        if isinstance(e, n.IfExp):
            return self.ifexp(e, buf)
        if isinstance(e, n.Call):
            return self.call(e, buf)
        if isinstance(e, (n.Tuple, n.List, n.Set)):
            if any(isinstance(x, n.Starred) for x in e.elts):
                raise self.error(e, 'codax does not support starred items in literals')
            elts = [self.atom(x, buf) for x in e.elts]
            return type(e)(elts=elts, ctx=n.Load()) if not isinstance(e, n.Set) else n.Set(elts=elts)
        if isinstance(e, n.Dict):
            return self.dict_literal(e, buf)
        if isinstance(e, n.AST) and type(e).__name__ == 'JoinedStr':
            return e
        raise self.error(e, f'codax does not support this expression ({type(e).__name__})')

    def dict_literal(self, e, buf):
        """`{'a': x, k: y}`: the entries up to the first key known only at run
        time make the literal (whose keys the passes read as constants), each
        later one is an item assignment, in Python's order of evaluation."""
        if any(k is None for k in e.keys):
            raise self.error(e, 'codax does not support `**` in dict literals')
        entries = [(self.atom(k, buf), self.atom(v, buf)) for k, v in zip(e.keys, e.values)]
        known = next((i for i, (k, _) in enumerate(entries) if not isinstance(k, n.Constant)),
                     len(entries))
        literal = n.Dict(keys=[k for k, _ in entries[:known]],
                         values=[v for _, v in entries[:known]])
        if known == len(entries):
            return literal
        out = self._atomize(literal, buf)
        for key, value in entries[known:]:
            out = self._atomize(self._prim_call(TABLE['setitem'], [out, key, value], [], e,
                                                'a dict literal'), buf)
        return out

    def compare(self, e, buf):
        operands = [self.atom(e.left, buf)] + [self.atom(c, buf) for c in e.comparators]
        pairs = [n.Compare(left=a, ops=[op], comparators=[b])
                 for a, op, b in zip(operands, e.ops, operands[1:])]
        if len(pairs) == 1:
            return pairs[0]
        return self.boolop(n.And(), pairs, buf)

    def boolop(self, op, values, buf):
        """Short-circuit `a and b` / `a or b` as nested ifs on a temporary.

        The `if` tests a copy, never the result variable itself, so that the
        test is not overwritten inside its own branch (reverse mode replays
        branches by their test)."""
        result = self.fresh('_t')
        buf.append(n.assign(result, self.rhs(values[0], buf)))
        if len(values) > 1:
            inner = []
            value = self.rhs(values[1], inner) if len(values) == 2 else \
                self.boolop(op, values[1:], inner)
            inner.append(n.assign(result, value))
            test = self.fresh('_c')
            go_on = n.name(result) if isinstance(op, n.And) else n.not_(n.name(result))
            buf.append(n.assign(test, go_on))
            buf.append(n.if_(n.name(test), inner))
        return n.name(result)

    def ifexp(self, e, buf):
        decided = self.statics.truth(e.test)
        if decided is not None:           # (as StaticBranches decides an `if`)
            return self.rhs(e.body if decided else e.orelse, buf)
        test = self.test_name(e.test, buf)
        result = self.fresh('_t')
        body, orelse = [], []
        body.append(n.assign(result, self.rhs(e.body, body)))
        orelse.append(n.assign(result, self.rhs(e.orelse, orelse)))
        buf.append(n.if_(test, body, orelse))
        return n.name(result)

    def index(self, index, buf):
        if isinstance(index, n.Slice):
            parts = [self.atom(p, buf) if p is not None else None
                     for p in (index.lower, index.upper, index.step)]
            return n.Slice(lower=parts[0], upper=parts[1], step=parts[2])
        if isinstance(index, n.Tuple):
            return n.tuple_([self.index(x, buf) for x in index.elts])
        return self.atom(index, buf)

    def index_value(self, index, buf):
        """An index as a value (slices become slice(...)), for rt.setitem."""
        from .ir import index_expr
        return self._atomize(index_expr(self.index(index, buf)), buf)

    def attribute(self, e, buf):
        module = self.missing(e)
        if module is not None:
            return self.missing_attribute(e, module, buf)
        if self.is_static(e):
            e.codax_static = True
            found, value = self.statics.literal(e)
            if found:                     # np.inf, math.pi: a value rule templates read
                e.codax_value = value
            return e
        value = self.atom(e.value, buf)
        if e.attr == 'T':
            return self._prim_call(TABLE['transpose'], [value], [], e, '.T')
        if e.attr == 'mT':
            return self._prim_call(TABLE['matrix_transpose'], [value], [], e, '.mT')
        if e.attr in ('real', 'imag'):
            return self._prim_call(TABLE[e.attr], [value], [], e, '.' + e.attr)
        return n.Attribute(value=value, attr=e.attr, ctx=n.Load())

    def is_static(self, e):
        """A name chain that resolves outside the function (np.pi, np.linalg)."""
        if isinstance(e, n.Name):
            return e.id not in self.locals and self.unit.lookup(e.id)[0]
        if isinstance(e, n.Attribute):
            return self.is_static(e.value) and isinstance(self.resolve(e.value), types.ModuleType)
        return False

    def missing(self, e):
        """The module an attribute chain reads that lacks its last name (np.trapz
        on NumPy 2), else None."""
        if isinstance(e, n.Attribute) and self.is_static(e.value):
            module = self.resolve(e.value)
            if isinstance(module, types.ModuleType) and not hasattr(module, e.attr):
                return module
        return None

    def missing_attribute(self, e, module, buf):
        """Python raises AttributeError for `np.trapz` only if the line runs: so
        does the generated code, naming the user's line; Flattener.block drops
        what follows the raise, and the value (never read) is None."""
        try:
            getattr(module, e.attr)
            message = f'module {module.__name__!r} has no attribute {e.attr!r}'
        except AttributeError as exc:        # (NumPy's says what replaced it)
            message = str(exc)
        where = str(self.error(e, message)).splitlines()[0]      # file:line:col: message
        raise_ = n.Raise(exc=n.call(n.name('AttributeError'), [n.const(where)]), cause=None)
        buf.append(n.copy_location(raise_, e))
        return n.const(None)

    def folded(self, e, node):
        """`-1` as the constant it is; `-np.inf` and `float('inf')` as atoms that
        carry their value (templates read it: norm's ord), else `node`."""
        found, value = self.statics.literal(e)
        if not found or not isinstance(value, (int, float, complex)):
            return node
        if isinstance(node, n.UnaryOp) and isinstance(node.operand, n.Constant):
            return n.copy_location(n.const(value), e)
        if isinstance(node, n.UnaryOp) and not getattr(node.operand, 'codax_static', False):
            return node
        node.codax_static, node.codax_value = True, value
        return node

    def resolve(self, e):
        if isinstance(e, n.Name):
            return self.unit.lookup(e.id)[1]
        return getattr(self.resolve(e.value), e.attr, None)

    def ufunc_method(self, e, buf):
        """`np.add.outer(a, b)` -> `np.add(a reshaped to broadcast against b, b)`;
        `np.add.reduce(x, axis)` -> `np.sum(x, axis)` and `.accumulate` ->
        `np.cumsum` (and the same for multiply, maximum, minimum, logical_and
        and logical_or): calls of records, which derivatives and vmap know."""
        ufunc, method = self.resolve(e.func.value), e.func.attr
        label = f'{_label(e.func.value)}.{method}()'
        if method == 'outer':
            if len(e.args) != 2 or e.keywords:
                raise self.error(e, f'inside a transformed function, {label} takes two arrays')
            a, b = (self.atom(x, buf) for x in e.args)
            lifted = n.Call(func=n.dotted('rt.definitions.outer_operand'), args=[a, b],
                            keywords=[])
            lifted.codax = CallInfo('user', obj=definitions.outer_operand, label=label)
            call = n.Call(func=e.func.value, args=[self._atomize(lifted, buf), b], keywords=[])
            return self.call(n.copy_location(call, e), buf)
        name = UFUNC_METHODS[method].get(ufunc.__name__)
        if name is None:
            raise self.error(e, f'codax differentiates {label} only for '
                             f'{", ".join(UFUNC_METHODS[method])}')
        args = [self.atom(x, buf) for x in e.args]
        kws = [n.keyword(arg=k.arg, value=self.atom(k.value, buf)) for k in e.keywords]
        if len(args) < 2 and 'axis' not in {k.arg for k in kws}:
            kws.append(n.keyword(arg='axis', value=n.const(0)))     # (the methods' default)
        return self._prim_call(TABLE[name], args, kws, e, label)

    def concatenator(self, e, buf):
        """`np.r_[a, b]` / `np.c_[a, b]` of arrays and numbers: a call of their
        definition (runtime/definitions.py), so that derivatives flow to the
        items, not to the np.r_ object being indexed."""
        obj, definition = CONCATENATORS[id(self.resolve(e.value))]
        if obj is not self.resolve(e.value):
            return n.subscript(self.atom(e.value, buf), self.index(e.slice, buf))
        items = e.slice.elts if isinstance(e.slice, n.Tuple) else [e.slice]
        for item in items:
            if isinstance(item, n.Slice) or isinstance(item, n.Constant) and isinstance(
                    item.value, str):
                raise self.error(item, f'inside a transformed function, {_label(e.value)}[...] '
                                 'takes arrays and numbers only (no slices or string '
                                 'directives); use np.concatenate with np.arange instead')
        elts = n.List(elts=[self.atom(item, buf) for item in items], ctx=n.Load())
        call = n.Call(func=n.dotted(f'rt.definitions.{definition.__name__}'),
                      args=[self._atomize(elts, buf)], keywords=[])
        call.codax = CallInfo('user', obj=definition, label=_label(e.value))
        return n.copy_location(call, e)

    def call(self, e, buf):
        if any(isinstance(a, n.Starred) for a in e.args) or \
                any(k.arg is None for k in e.keywords) and not self.passes_dict(e):
            raise self.error(e, 'codax does not support *args or **kwargs in calls')
        func = e.func
        if _out_keyword(e) is not None and self.numpy_call(func):    # (a statement: in_place)
            self._refuse_out(e)
        info = getattr(e, 'codax', None)
        if info is not None and info.kind == 'prim':        # made by an earlier pass
            args = [self.atom(a, buf) for a in e.args]
            if info.prim.name == 'iterate':
                return self.walked(e.args[0], args[0], e, buf, info.label)
            return self._prim_call(info.prim, args, [], e, info.label)
        module = self.missing(func)
        if module is not None:            # (Python reads the function before its arguments)
            return self.missing_attribute(func, module, buf)
        if self.is_static(func) and self.statics.literal(e)[0]:
            return self.folded(e, e)      # float('inf')
        if self.is_ufunc_at(e):                 # (its value is None: a statement only)
            raise self.error(e, f'codax supports {_label(func)}() as a statement of its own')
        if isinstance(func, n.Attribute) and func.attr in UFUNC_METHODS \
                and self.is_static(func.value) and isinstance(self.resolve(func.value),
                                                              numpy.ufunc):
            return self.ufunc_method(e, buf)
        if isinstance(func, n.Attribute) and not self.is_static(func):
            if isinstance(func.value, n.Subscript) and self.is_at(func.value.value):
                return self.at_update(e, buf)
            if self.is_list_pop(e):
                return self.pop(e, buf)
            if self.is_dict_get(e):
                return self.dict_get(e, buf)
            return self.method_call(e, buf)
        args = [self.atom(a, buf) for a in e.args]
        kws = [n.keyword(arg=k.arg, value=self.atom(k.value, buf)) for k in e.keywords]
        label = _label(func)
        if not self.is_static(func):
            callee = self.atom(func, buf)
            if kws:
                callee, args = self.keywords_passed(callee, args, kws, e, buf, label), \
                    args + [k.value for k in kws]
            call = n.Call(func=callee, args=args, keywords=[])
            call.codax = CallInfo('dynamic', label=label)
            return n.copy_location(call, e)
        obj = self.resolve(func)
        if obj is reversed and len(args) == 1 and not kws:
            return self.reversed_items(e.args[0], args[0], e, buf)
        if _is_at_function(obj):               # a chain at(x)[idx].set(v) is matched above
            raise self.error(e, f'codax supports codax.numpy.at only as {AT_SPELLING}, '
                             'all in one expression')
        if getattr(obj, '__codax_transformation__', False) and args:     # grad(f), vmap(f)..
            options = self._atomize(n.tuple_(args[1:]), buf)
            keywords = self._atomize(n.Dict(keys=[n.const(k.arg) for k in kws],
                                            values=[k.value for k in kws]), buf)
            return self._prim_call(TABLE['transformation'], [args[0], func, options, keywords],
                                   [], e, label)
        prim = TABLE.lookup(obj)
        if prim is not None:
            args, kws = self.as_arrays(prim, e, args, kws, buf)
            return self._prim_call(prim, args, kws, e, label)
        definition = definition_of(obj)
        if definition is not None:                # a NumPy function defined in NumPy
            obj, func = definition, n.dotted(f'rt.definitions.{definition.__name__}')
            if getattr(definition, 'packs_arguments', False):    # f(*arrays): one tuple
                args = [self._atomize(n.tuple_(args), buf)]
        if isinstance(obj, type) and issubclass(obj, numpy.generic) and len(args) == 1:
            return self._prim_call(TABLE['astype'], [args[0], func], [], e, label)
        if kws and getattr(obj, '__codax_keywords_first__', None) is not None:
            return self.keywords_first(e, obj, args, kws, label)
        if getattr(obj, '__codax_transformed__', False) or getattr(obj, '__codax_custom__', None):
            # grad(f), a custom rule or a checkpoint, called inside: a user call;
            # a rule's sweeps take every argument of the function it wraps
            if getattr(obj, '__codax_custom__', None) and isinstance(obj.fun, types.FunctionType):
                self._check_call(obj.fun, args, kws, e)
                args, kws = self.by_position(obj.fun, func, args, kws, e, buf, every=True)
            elif packs_keywords(_behind(obj)):     # its generated code takes the keywords' dict
                self._check_call(_behind(obj), args, kws, e)
                args, kws = self.by_position(_behind(obj), func, args, kws, e, buf)
            call = n.Call(func=func, args=args, keywords=kws)
            call.codax = CallInfo('user', obj=obj, label=label)
            return n.copy_location(call, e)
        if getattr(obj, '__codax_fixed_arity__', None) is not None:
            # a function of *args (lax.cond): its definition for this many arguments
            name = obj.__codax_fixed_arity__(len(args) + len(kws))
            obj, func = getattr(obj, name), n.Attribute(value=func, attr=name, ctx=n.Load())
        if isinstance(obj, numpy.vectorize):      # (@np.vectorize: runtime/definitions.py)
            try:
                obj = definitions.vectorized(obj)
            except TypeError as exc:
                raise self.error(e, str(exc)) from None
        if isinstance(obj, types.FunctionType):
            self._check_call(obj, args, kws, e)
            args, kws = self.by_position(obj, func, args, kws, e, buf)
            call = n.Call(func=func, args=args, keywords=kws)
            call.codax = CallInfo('user', obj=obj, label=label)
            return n.copy_location(call, e)
        call = n.Call(func=func, args=args, keywords=kws)
        call.codax = CallInfo('native', obj=obj, label=label)
        return n.copy_location(call, e)

    def keywords_passed(self, callee, args, kws, e, buf, label):
        """`h(x, scale=s)` of a function held in a variable: the call
        `rt.closures.with_keywords(h, 1, ('scale',))(x, s)`, which takes the
        keywords by position and passes them on by name, where codax sees
        which function h is (runtime/closures.py). Made through the record
        `transformation`, so derivatives and batching pass through it to a
        closure's captured values."""
        names = [n.const(k.arg) for k in kws]
        options = self._atomize(n.tuple_([n.const(len(args)), n.tuple_(names)]), buf)
        nothing = self._atomize(n.Dict(keys=[], values=[]), buf)
        made = self._prim_call(TABLE['transformation'],
                               [callee, n.dotted('rt.closures.with_keywords'), options, nothing],
                               [], e, label)
        return self._atomize(made, buf)

    def as_arrays(self, prim, e, args, kws, buf):
        """`np.mean([a, b])`: a list or tuple passed where a NumPy function takes
        an array becomes one first (`np.asarray`), so that derivatives and
        batching see the array NumPy makes of it, not a Python container."""
        if prim.family not in ARRAY_FAMILIES:
            return args, kws
        diff = set(prim.diff_params())
        params = list(prim.signature.parameters.values())

        def array(raw, atom, param):
            if param not in diff or not self.is_sequence(raw):
                return atom
            call = self._prim_call(TABLE['asarray'], [atom], [], raw, 'np.asarray')
            return self._atomize(call, buf)
        positional = [p.name if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) else None
                      for p in params]
        args = [array(raw, atom, positional[k] if k < len(positional) else None)
                for k, (raw, atom) in enumerate(zip(e.args, args))]
        kws = [n.keyword(arg=k.arg, value=array(raw.value, k.value, k.arg))
               for raw, k in zip(e.keywords, kws)]
        return args, kws

    def is_sequence(self, e, names=None):
        """Whether expression `e` (as the user wrote it) is a list or tuple:
        a literal, a name that only ever holds one (of `names`, by default
        self.sequences), list(...)/tuple(...), a slice of one, or one joined
        with `+`."""
        names = self.sequences if names is None else names
        if isinstance(e, (n.List, n.Tuple)):
            return True
        if isinstance(e, n.Name):
            return e.id in (names or ())
        if isinstance(e, n.BinOp) and isinstance(e.op, (n.Add, n.Mult)):   # joined, repeated
            return self.is_sequence(e.left, names) or self.is_sequence(e.right, names)
        if isinstance(e, n.Subscript) and isinstance(e.slice, n.Slice):
            return self.is_sequence(e.value, names)
        if isinstance(e, n.Call) and isinstance(e.func, n.Name) and e.func.id not in self.locals:
            return self.unit.lookup(e.func.id)[1] in (list, tuple, sorted)
        return False

    def is_dict(self, e, names=None):
        """Whether expression `e` (as the user wrote it) is a dict: a literal,
        a name that only ever holds one (of `names`, by default self.dicts)
        or dict(...)."""
        names = self.dicts if names is None else names
        if isinstance(e, n.Dict):
            return True
        if isinstance(e, n.Name):
            return e.id in (names or ())
        if isinstance(e, n.Call) and isinstance(e.func, n.Name) and e.func.id not in self.locals:
            return self.unit.lookup(e.func.id)[1] is dict
        return False

    def is_joinable(self, e, names=None):
        """Whether `+` of expression `e` joins sequences: e is a list or tuple
        (is_sequence), or a parameter the call passes a list, tuple or dict
        (of `names`, by default self.containers), a slice of one, or one
        joined with `+`. (A dict's `+` fails at run time, as in Python.)"""
        names = self.containers if names is None else names
        if isinstance(e, n.Name) and e.id in (names or ()):
            return True
        if isinstance(e, n.BinOp) and isinstance(e.op, (n.Add, n.Mult)):   # joined, repeated
            return self.is_joinable(e.left, names) or self.is_joinable(e.right, names)
        if isinstance(e, n.Subscript) and isinstance(e.slice, n.Slice):
            return self.is_joinable(e.value, names)
        return self.is_sequence(e)

    def is_returned(self, e, names=None):
        """Whether expression `e` (as the user wrote it) is what a user function
        (or one held in a variable) returns, or a name that only ever holds
        that (of `names`, by default self.returned): a value whose kind only
        the run time tells, a dict maybe."""
        names = self.returned if names is None else names
        if isinstance(e, n.Name):
            return e.id in (names or ())
        if not (isinstance(e, n.Call) and isinstance(e.func, (n.Name, n.Attribute))):
            return False
        if not self.is_static(e.func):
            return isinstance(e.func, n.Name)          # (not a method: d.items())
        obj = self.resolve(e.func)
        return TABLE.lookup(obj) is None and definition_of(obj) is None and (
            isinstance(obj, types.FunctionType) or getattr(obj, '__codax_transformed__', False))

    def in_container(self, e):
        """Whether `e` is a parameter given a list, tuple or dict (self.containers),
        or an item of one (`params['layer']`), which may be a dict too."""
        while isinstance(e, n.Subscript) and not isinstance(e.slice, n.Slice):
            e = e.value
        return isinstance(e, n.Name) and e.id in self.containers

    def walked(self, raw, seq, origin, buf, label='the for loop'):
        """What `for x in xs` walks (`raw` as written, `seq` its atom): a dict's
        keys, which carry no derivative (rt.dict_keys), else rt.iterate(xs).
        A parameter given a list, tuple or dict, or an item of one, and what
        a user function returns, are told apart at run time."""
        keys = self._prim_call(TABLE['dict_keys'], [seq], [], origin, label)
        if self.is_dict(raw):
            return keys
        walk = self._prim_call(TABLE['iterate'], [seq], [], origin, label)
        if not (self.in_container(raw) or self.is_returned(raw)) or self.is_sequence(raw):
            return walk
        is_dict = self._prim_call(TABLE['py_isinstance'], [seq, n.name('dict')], [], origin,
                                  label)
        out, test = self.fresh('_t'), self._atomize(is_dict, buf)
        buf.append(n.if_(test, [n.assign(out, keys)], [n.assign(out, walk)]))
        return n.name(out)

    def reversed_items(self, raw, seq, origin, buf):
        """reversed(xs) as the items `for x in xs` walks, last first: xs[::-1]
        (a slice of a list, tuple, range or array is one)."""
        if not (self.is_sequence(raw) or (isinstance(raw, n.Call) and self.is_static(raw.func)
                                          and self.resolve(raw.func) is range)):
            seq = self._atomize(self.walked(raw, seq, origin, buf, 'reversed'), buf)
        return n.subscript(seq, n.Slice(lower=None, upper=None, step=n.const(-1)))

    def is_list_pop(self, e):
        """`xs.pop()` or `xs.pop(i)` on a local list: without an index on any
        local (the tape of derivative code transformed again), with one on a
        name that only holds lists and tuples, or on a parameter given a list,
        tuple or dict with a literal integer (a dict's key is rarely one)."""
        func = e.func
        if func.attr != 'pop' or e.keywords or len(e.args) > 1 \
                or not isinstance(func.value, n.Name) or func.value.id not in self.locals:
            return False
        if not e.args:
            return True
        name, index = func.value.id, e.args[0]
        literal = isinstance(index, n.Constant) and type(index.value) is int
        return name in self.sequences or (name in self.containers
                                          and (literal or _negative_literal(index)))

    def pop(self, e, buf):
        """`xs.pop(i)` as `xs[i]`, with xs rebound to the other items:
        xs[:-1] for the last (the form the batch pass reads a tape's pops in),
        xs[1:] for the first, else xs[:j] + xs[j + 1:] with j = i % len(xs)."""
        lst = n.name(e.func.value.id)
        index = n.const(-1) if not e.args else _negative_literal(e.args[0]) \
            or self.atom(e.args[0], buf)
        item = self.fresh('_t')
        buf.append(n.assign(item, n.subscript(lst, index)))    # (IndexError as pop's)
        constant = index.value if isinstance(index, n.Constant) else None
        if constant == -1:
            rest = n.subscript(lst, n.Slice(lower=None, upper=n.const(-1), step=None))
        elif constant == 0:
            rest = n.subscript(lst, n.Slice(lower=n.const(1), upper=None, step=None))
        else:
            if not (isinstance(constant, int) and constant > 0):
                size = self._atomize(self._prim_call(TABLE['py_len'], [lst], [], e, 'len'), buf)
                index = self._atomize(n.binop(index, n.Mod(), size), buf)
            after = n.const(constant + 1) if isinstance(index, n.Constant) else \
                self._atomize(n.binop(index, n.Add(), n.const(1)), buf)
            head = self._atomize(n.subscript(lst, n.Slice(lower=None, upper=index, step=None)),
                                 buf)
            tail = self._atomize(n.subscript(lst, n.Slice(lower=after, upper=None, step=None)),
                                 buf)
            rest = self._prim_call(TABLE['concat'], [head, tail], [], e, '.pop()')
        self.assign_to(n.name(lst.id, store=True), rest, buf)
        return n.name(item)

    def is_dict_get(self, e):
        """`d.get(k)` or `d.get(k, default)`, on anything but a parameter the
        call passes an array or number."""
        receiver = e.func.value
        numeric = isinstance(receiver, n.Name) and receiver.id in self.numeric_params
        return e.func.attr == 'get' and 1 <= len(e.args) <= 2 and not e.keywords \
            and not numeric

    def dict_get(self, e, buf):
        """`d.get(k, default)` as `d[k] if k in d.keys() else default`, so that
        the derivative flows to the value read (the default is evaluated
        first, as an argument is; the keys are the same for every example)."""
        d = self.atom(e.func.value, buf)
        key = self.atom(e.args[0], buf)
        default = self.atom(e.args[1], buf) if len(e.args) > 1 else n.const(None)
        keys = self._atomize(self._prim_call(TABLE['dict_keys'], [d], [], e, '.get()'), buf)
        test = self._atomize(n.Compare(left=key, ops=[n.In()], comparators=[keys]), buf)
        out = self.fresh('_t')
        buf.append(n.if_(test, [n.assign(out, n.subscript(d, key))], [n.assign(out, default)]))
        return n.name(out)

    def keywords_first(self, e, obj, args, kws, label):
        """A call with keyword arguments of a function whose positional ones
        vary in number (tree_map's trees), which codax transforms through one
        definition per number of arguments, all by position: a call of its
        stand-in `obj.__codax_keywords_first__`, a runtime function taking
        obj's keyword-only parameters first (`rt.tree_map_is_leaf(is_leaf, f,
        tree)`), those not given at their defaults."""
        stand_in = obj.__codax_keywords_first__
        params = [p for p in inspect.signature(obj).parameters.values()
                  if p.kind == p.KEYWORD_ONLY]
        given = {k.arg: k.value for k in kws}
        unknown = sorted(set(given) - {p.name for p in params})
        if unknown:
            raise self.error(e, f'inside a transformed function, {label} takes only '
                             f'{", ".join(p.name for p in params)} by keyword (got '
                             f'{", ".join(unknown)}): pass the other arguments by position')
        first = [given.get(p.name, n.const(p.default)) for p in params]
        call = n.Call(func=n.dotted(f'rt.{stand_in.__name__}'), args=first + args, keywords=[])
        call.codax = CallInfo('user', obj=stand_in, label=label)
        return n.copy_location(call, e)

    def is_at(self, e):
        """`at(x)`, a call of codax.numpy.at with one argument."""
        return (isinstance(e, n.Call) and len(e.args) == 1 and not e.keywords
                and not isinstance(e.args[0], n.Starred) and self.is_static(e.func)
                and _is_at_function(self.resolve(e.func)))

    def at_update(self, e, buf):
        """`at(x)[idx].add(v, mode=...)` -> `rt.at_add(x, idx, v, mode=...)`, a
        primitive like `rt.setitem` (JAX's x.at[idx].add(v)); `at(x)[idx].get()`
        -> `x[idx]`."""
        method, sub = e.func.attr, e.func.value
        prim = TABLE.by_name.get(f'at_{method}')
        if prim is None:
            raise self.error(e.func, f'codax.numpy.at(x)[idx] has no method .{method}(); '
                             f'codax supports {AT_SPELLING}')
        wanted = 0 if method == 'get' else 1
        if len(e.args) != wanted:            # (*args and **kwargs are refused in call())
            what = 'no arguments' if wanted == 0 else \
                f'one argument, the {"function" if method == "apply" else "update"}'
            raise self.error(e, f'.{method}() of codax.numpy.at(x)[idx] takes {what} '
                             '(and JAX\'s keywords, such as mode=, by keyword)')
        array = self.atom(sub.value.args[0], buf)
        if method == 'get' and not e.keywords:
            return n.subscript(array, self.index(sub.slice, buf))
        args = [array, self.index_value(sub.slice, buf)] + [self.atom(a, buf) for a in e.args]
        kws = [n.keyword(arg=k.arg, value=self.atom(k.value, buf)) for k in e.keywords]
        if prim.defined:       # the derivative passes see a call, which passes by position
            args, kws = self.by_position(prim.targets[0], None, args, kws, e, buf)
        return self._prim_call(prim, args, kws, e, f'at(...)[...].{method}()')

    def method_call(self, e, buf):
        method = e.func.attr
        receiver = self.atom(e.func.value, buf)
        args = [self.atom(a, buf) for a in e.args]
        kws = [n.keyword(arg=k.arg, value=self.atom(k.value, buf)) for k in e.keywords]
        prim = TABLE.methods.get(method)
        if prim is None:
            call = n.Call(func=n.Attribute(value=receiver, attr=method, ctx=n.Load()),
                          args=args, keywords=kws)
            call.codax = CallInfo('native', label=f'the method .{method}()')
            return n.copy_location(call, e)
        if method in VARARG_METHODS and len(args) > 1:
            args = [n.tuple_(args)]
        return self._prim_call(prim, [receiver] + args, kws, e, f'.{method}()')

    def _prim_call(self, prim, args, kws, origin, label):
        call = n.Call(func=n.dotted(prim.impl), args=list(args), keywords=list(kws))
        try:
            prim.bind(call.args, {k.arg: k.value for k in call.keywords})
        except TypeError as exc:
            raise self.error(origin, f'bad arguments to {label}: {exc}') from None
        call.codax = CallInfo('prim', prim=prim, label=label)
        return n.copy_location(call, origin)

    def passes_dict(self, e):
        """`f(a, b, **d)`, where f has a **kwargs or keyword-only parameters
        and every parameter before them is given by position: d holds the
        keywords (generated code calls such functions so: by_position)."""
        obj = self.resolve(e.func) if self.is_static(e.func) else None
        if len(e.keywords) != 1 or not isinstance(obj, types.FunctionType):
            return False
        params = inspect.signature(obj).parameters.values()
        named = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return (packs_keywords(obj) or any(p.kind == p.VAR_KEYWORD for p in params)) \
            and len(e.args) >= len(named)

    def by_position(self, fn, func, args, kws, origin, buf, every=False, fill=False):
        """The arguments of a call to user function `fn` (`func`, as the call
        names it; or a defined primitive's function, `func` None) as generated
        code passes them: keyword arguments at their positions, skipped
        parameters at their literal defaults, with `every` the trailing
        defaults too. A default that is no literal is read off
        the function at run time (rt.default_argument) where `fn` has
        **kwargs, or with `fill`; else the keywords stay. What a **kwargs
        parameter takes is one dict, passed as `**d` after the named
        parameters, which the derivative passes treat as one more argument
        (transformer/ir.py)."""
        if fn is runtime.vjp_call and args and self.is_static(args[0]):
            # derivative code read again: the keywords of the function it calls
            inner = self.resolve(args[0])
            if isinstance(inner, types.FunctionType):
                rest, kws = self.by_position(inner, args[0], args[1:], kws, origin, buf,
                                             fill=True)
                return [args[0]] + rest, kws
        params = list(inspect.signature(fn).parameters.values())
        packs = packs_keywords(fn)
        named = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        given = {k.arg: k.value for k in kws if k.arg is not None}
        passed = [k for k in kws if k.arg is None]              # `**d` (passes_dict)
        if packs and not passed:
            # every call passes the dict, keyword-only parameters' defaults in
            # it: so the calls of rt.vjp_call and rt.jvp_call that derivative
            # code makes are in the form generated code takes, even with *args
            every = True
            for i, param in enumerate(params):
                if param.kind == param.KEYWORD_ONLY and param.name not in given:
                    given[param.name] = n.const(param.default) if _literal(param.default) \
                        else self.default_argument(func, i, origin, buf)
        if not given and not every:
            return args, kws
        out = list(args)
        for i, param in enumerate(named[len(args):], len(args)):
            if param.name in given:
                out.append(given.pop(param.name))
            elif not given and not every:
                break
            elif _literal(param.default):      # (_check_call saw that the call binds)
                out.append(n.const(param.default))
            else:                   # read off the function when the call runs
                out.append(self.default_argument(func, i, origin, buf))
        if given and not packs:     # no parameter's (a user call's binding was checked)
            return args, kws
        if given or packs and not passed:        # what **kwargs takes
            keys = [n.const(k) for k in given]
            passed = [n.keyword(arg=None, value=self._atomize(
                n.Dict(keys=keys, values=list(given.values())), buf))]
        return out, passed if packs else []

    def default_argument(self, func, i, origin, buf):
        """Parameter i's default, as rt.default_argument reads it off the
        function at run time."""
        call = self._prim_call(TABLE['default_argument'], [self.atom(func, buf), n.const(i)], [],
                               origin, 'a default argument')
        return self._atomize(call, buf)

    def _check_call(self, fn, args, kws, origin):
        """A call to a user function must bind to its parameters."""
        if any(k.arg is None for k in kws):       # `**d` (passes_dict): a dict of keywords
            return
        try:
            inspect.signature(fn).bind(*args, **{k.arg: k.value for k in kws})
        except TypeError as exc:
            raise self.error(origin, f'bad arguments to {fn.__name__}: {exc}') from None


def _behind(obj):
    """The function behind a transformed function (grad(f), jit(vmap(f)):
    f), whose signature the generated code it stands for takes."""
    for _ in range(16):
        inner = getattr(obj, '__codax_transformed__', None)
        if inner is None or not hasattr(inner, 'fun'):
            break
        obj = inner.fun
    return obj


def _parameters(unit):
    tree = getattr(unit, 'tree', None)
    return {a.id for a in tree.args.args} if isinstance(tree, n.FunctionDef) else set()


def _assigned_values(body):
    """Each name assigned in the body (as the user wrote it) -> the values
    assigned to it (None: not known, as a loop variable's)."""
    values = {}
    for node in (x for stmt in body for x in n.walk(stmt)):
        if isinstance(node, n.Assign):
            for target in node.targets:
                if isinstance(target, n.Name):
                    values.setdefault(target.id, []).append(node.value)
                else:
                    for name in n.stored_names(target):
                        values.setdefault(name, []).append(None)
        elif isinstance(node, n.AugAssign) and isinstance(node.target, n.Name):
            values.setdefault(node.target.id, []).append(
                n.binop(n.name(node.target.id), node.op, node.value))
        elif isinstance(node, n.For):
            for name in n.stored_names(node.target):
                values.setdefault(name, []).append(None)
    return values


def _names_holding(values, holds, params, given=()):
    """The names that only ever hold a value of one kind: each of their
    assigned `values` gives one (`holds(value, names)`), and they are not
    parameters (whose values come from the caller), except the parameters
    `given`, which the caller passes one."""
    names = (set(values) - set(params)) | set(given)
    changed = True
    while changed:
        changed = False
        for name in sorted(names):
            if not all(v is not None and holds(v, names) for v in values.get(name, ())):
                names.discard(name)
                changed = True
    return names


def _is_at_function(obj):
    return getattr(obj, '__codax_at__', False) is True


def _negative_literal(node):
    """`-3` as the constant it is (Python parses it as a negation), else None."""
    if isinstance(node, n.UnaryOp) and isinstance(node.op, n.USub) \
            and isinstance(node.operand, n.Constant) and type(node.operand.value) is int:
        return n.const(-node.operand.value)
    return None


def _literal(value):
    return value is None or isinstance(value, (bool, int, float, str))


def _parallel(s):
    """`a, b = x, y`: a tuple target and a tuple value of the same length."""
    return (len(s.targets) == 1 and isinstance(s.targets[0], (n.Tuple, n.List))
            and isinstance(s.value, (n.Tuple, n.List))
            and len(s.targets[0].elts) == len(s.value.elts)
            and not any(isinstance(e, n.Starred) for e in s.value.elts))


# In-place methods and functions: the rewritten ones (Flattener.in_place), and
# what to write instead of the others, which are refused.
IN_PLACE_METHODS = {
    'fill': '', 'sort': '', 'reverse': '', 'clear': '', 'update': '',
    'remove': 'build the list without the item instead',
    'partition': 'use y = np.partition(y, k)',
    'resize': 'use y = np.resize(y, shape)',
    'itemset': 'use y[i] = v',
    'put': 'use y[idx] = v',
    'setfield': 'assign the field instead', 'byteswap': 'use y = y.byteswap()',
    'popitem': 'read the item and build a new dict', 'setdefault': 'use d.get(k, v)',
    'add': 'build a new set', 'discard': 'build a new set',
}
IN_PLACE_FUNCTIONS = {
    'put': 'use `y[idx] = v`',
    'place': 'use `y = np.where(mask, v, y)`',
    'putmask': 'use `y = np.where(mask, v, y)`',
    'fill_diagonal': 'use `y[np.arange(n), np.arange(n)] = v`',
}


def _out_keyword(call):
    """The call's `out=` keyword, unless it is `out=None`."""
    for k in call.keywords:
        if k.arg == 'out' and not (isinstance(k.value, n.Constant) and k.value.value is None):
            return k
    return None


def _is_numpy(obj):
    return isinstance(obj, numpy.ufunc) or TABLE.lookup(obj) is not None \
        or (getattr(obj, '__module__', None) or '').startswith('numpy')


_LIST_SLICE_WRITE = ('codax does not support assigning to a slice of a list (it can change '
                     'the length); build the new list instead: `xs = xs[:1] + [a, b]`')
_LITERAL_REPEAT = 64      # longest repetition `[v] * n` written out as a literal


def _is_literal_sequence(node):
    return isinstance(node, (n.List, n.Tuple)) and not any(isinstance(x, n.Starred)
                                                           for x in node.elts)


def _is_atom(node):
    return isinstance(node, (n.Name, n.Constant)) or getattr(node, 'codax_static', False)


def _label(func):
    if isinstance(func, n.Name):
        return func.id
    if isinstance(func, n.Attribute):
        return _label(func.value) + '.' + func.attr
    return 'this call'

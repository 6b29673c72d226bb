"""Stage 3 (run first, on the raw tree): reject what codax does not transform.

Each refusal is a SourceError naming the user's file, line and column, raised
before any pass runs, so no pass ever meets a construct it cannot handle.
"""
import builtins

from . import nodes as n
from .errors import error_at
from .normalize import IN_PLACE_FUNCTIONS, IN_PLACE_METHODS

# calls that change their receiver, or their first argument, in place
_MUTATING_METHODS = set(IN_PLACE_METHODS) | {'append', 'extend', 'insert', 'pop'}
_MUTATING_FUNCTIONS = set(IN_PLACE_FUNCTIONS) | {'copyto'}

_REFUSED = {
    n.ClassDef: 'class definitions inside a transformed function',
    n.AsyncFunctionDef: 'async functions',
    n.Global: '`global` statements',
    n.Nonlocal: '`nonlocal` statements',
    n.Yield: 'generators (`yield`)',
    n.YieldFrom: 'generators (`yield from`)',
    n.Await: '`await`',
    n.Try: '`try` statements',
    n.With: '`with` statements',
    n.AsyncWith: '`async with` statements',
    n.AsyncFor: '`async for` loops',
    n.NamedExpr: 'the walrus operator `:=`',
    n.Delete: '`del` statements',
    n.Import: '`import` inside a transformed function (import at module level)',
    n.ImportFrom: '`import` inside a transformed function (import at module level)',
    n.SetComp: 'set comprehensions',
}
# Builtins that run or read code by name: what they compute is out of codax's
# sight, so a derivative through them would be silently zero.
_HIDDEN = ('eval', 'exec', 'globals', 'locals', 'vars')


def check(unit):
    fdef = unit.tree
    _check_signature(fdef, unit)
    _check_aliased_writes(fdef, unit)
    for stmt in fdef.body:
        for node in n.walk(stmt):
            for kind, what in _REFUSED.items():
                if isinstance(node, kind):
                    raise error_at(node, f'codax does not support {what}', unit)
            if isinstance(node, (n.For, n.While)) and node.orelse:
                raise error_at(node, 'codax does not support `else` on loops', unit)
            if isinstance(node, (n.Assign, n.AugAssign)):
                targets = node.targets if isinstance(node, n.Assign) else [node.target]
                for target in targets:
                    _check_target(target, unit)
            if isinstance(node, n.For):
                _check_target(node.target, unit)
            if isinstance(node, n.Call) and isinstance(node.func, n.Name) \
                    and node.func.id in _HIDDEN and _is_builtin(node.func.id, unit):
                raise error_at(node, f'codax does not support {node.func.id}() inside a '
                               'transformed function: it cannot see the code or names it '
                               'reads', unit)


def _is_builtin(name, unit):
    return unit.lookup(name)[1] is getattr(builtins, name)


def _check_signature(fdef, unit):
    # parse makes a function compiled for a call all-positional (*args,
    # keyword-only parameters: parse.flat_view); a nested function is not
    if fdef.args.vararg:
        raise error_at(fdef, 'codax does not support *args on a function defined inside a '
                       'transformed function (define it at module level, where *args, '
                       'keyword-only and positional-only parameters are supported; '
                       'codax.source(f) of such a function needs arguments)', unit)


def _check_target(target, unit):
    for node in n.walk(target):
        if isinstance(node, n.Attribute) and isinstance(node.ctx, n.Store):
            raise error_at(node, 'codax does not support assigning to attributes', unit)
        if isinstance(node, n.Subscript) and isinstance(node.ctx, n.Store) \
                and not isinstance(node.value, n.Name):
            raise error_at(node, 'codax supports writes into a named array only (`y[i] = v`)', unit)
        if isinstance(node, n.Starred):
            raise error_at(node, 'codax does not support starred assignment targets', unit)


# ---- writes through views ----
# codax gives array writes value semantics (`y[i] = v` makes a new y, as JAX's
# y.at[i].set(v) does). NumPy writes in place, so the two disagree exactly when
# the written array shares memory with another name that is read afterwards.
# That is refused rather than answered differently.

_VIEW_METHODS = {'reshape', 'ravel', 'transpose', 'swapaxes', 'squeeze', 'view', 'diagonal',
                 'moveaxis', 'expand_dims', 'T'}


def _alias_base(value):
    """(name, is_view) if `value` may share memory with a named array."""
    if isinstance(value, n.Name):
        return value.id, False
    if isinstance(value, n.Subscript) and isinstance(value.value, n.Name):
        # basic indexing, even y[0] of a 2-D y, is a view; but `s += v` on what
        # integers picked out rebinds s (a scalar, a copy) in the usual case of
        # one integer per axis, so that s is not counted a view (its base's
        # later writes still count it)
        return value.value.id, not _integer_index(value.slice)
    if isinstance(value, n.Attribute) and value.attr in ('T', 'mT') and isinstance(value.value, n.Name):
        return value.value.id, True
    if isinstance(value, n.Call) and value.args or isinstance(value, n.Call) and \
            isinstance(value.func, n.Attribute):
        func = value.func
        if isinstance(func, n.Attribute) and func.attr in _VIEW_METHODS:
            if isinstance(func.value, n.Name) and func.value.id not in ('np', 'numpy'):
                return func.value.id, True
            if value.args and isinstance(value.args[0], n.Name):
                return value.args[0].id, True
    return None


def _integer_index(index):
    """An index made of integers only (literals or names): no slice, None or `...`."""
    parts = index.elts if isinstance(index, n.Tuple) else [index]
    for part in parts:
        if isinstance(part, n.UnaryOp) and isinstance(part.op, n.USub):
            part = part.operand
        if not (isinstance(part, n.Name) or isinstance(part, n.Constant)
                and type(part.value) is int):
            return False
    return True


def _check_aliased_writes(fdef, unit):
    aliases = []                                 # (assignment, name, base, is_view)
    for node in n.walk(fdef):
        if isinstance(node, n.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], n.Name):
            found = _alias_base(node.value)
            if found:
                aliases.append((node, node.targets[0].id) + found)
        elif isinstance(node, n.For) and isinstance(node.target, n.Name) \
                and isinstance(node.iter, n.Name):
            # `for w in ws`: w is each item of ws itself, so `w *= 2` writes into ws
            aliases.append((node, node.target.id, node.iter.id, True))
    if not aliases:
        return
    # `z += v` writes into memory when z is a view, or the base of one, or the
    # same array as another name (`z = y`, `for z in ys`); not for the items
    # of integer indexing, nor an alias of a parameter: such items and
    # parameters are numbers as often as arrays, and `z += v` rebinds a number
    params = {a.id for a in fdef.args.args}
    in_place = {a[1] for a in aliases if a[3] and not isinstance(a[0], n.For)
                or a[2] not in params and (isinstance(a[0], n.For)
                                           or isinstance(a[0].value, n.Name))} | \
        {a[2] for a in aliases if a[3]}
    for write, name in _writes(fdef, in_place):
        made = [(a, b) for node, a, b, _ in aliases if _before(fdef, node, write)
                and not _rebound(fdef, (a, b), node, write)]
        partners = _connected(name, made) - {name}
        later = _read_after(fdef, write, partners)
        if later:
            raise error_at(write, f'this write to {name!r} would also change {later!r} in NumPy '
                           f'(they share memory), but codax gives array writes value semantics '
                           f'(like JAX\'s .at[].set). Write into {later!r} directly, or make '
                           f'{name!r} a copy with .copy()', unit)


def _rebound(fdef, names, alias, write):
    """Whether one of the alias's names is bound afresh between the alias and
    the write (`new = []` at the top of a loop whose end says `layer = new`):
    the write then goes to another object."""
    loop_carried = alias.lineno >= write.lineno
    for node in n.walk(fdef):
        if node is alias or not isinstance(node, n.Assign) \
                or not any(n.is_name(t) and t.id in names for t in node.targets):
            continue
        if not loop_carried and alias.lineno < node.lineno < write.lineno:
            return True
        if loop_carried and (node.lineno < write.lineno or node.lineno > alias.lineno) \
                and any(_inside(alias, loop) and _inside(write, loop) and _inside(node, loop)
                        for loop in n.walk(fdef) if isinstance(loop, (n.For, n.While))):
            return True
    return False


def _before(fdef, alias, write):
    """The alias is made before the write runs: earlier, or in a loop around both."""
    if alias.lineno < write.lineno:
        return True
    return any(_inside(alias, loop) and _inside(write, loop) for loop in n.walk(fdef)
               if isinstance(loop, (n.For, n.While)))


def _inside(node, tree):
    return any(x is node for x in n.walk(tree))


def _connected(name, edges):
    group, grew = {name}, True
    while grew:
        grew = False
        for a, b in edges:
            if (a in group) != (b in group):
                group |= {a, b}
                grew = True
    return group


def _writes(fdef, views):
    for node in n.walk(fdef):
        if isinstance(node, (n.Assign, n.AugAssign)):
            targets = node.targets if isinstance(node, n.Assign) else [node.target]
            for target in targets:
                if isinstance(target, n.Subscript) and isinstance(target.value, n.Name):
                    yield node, target.value.id
                elif isinstance(node, n.AugAssign) and isinstance(target, n.Name) \
                        and target.id in views:
                    yield node, target.id
        elif isinstance(node, n.Expr) and is_ufunc_at(node.value):
            yield node, node.value.args[0].id
        elif isinstance(node, n.Expr) and isinstance(node.value, n.Call):
            written = _written_by_call(node.value)
            if written is not None:
                yield node, written
        elif isinstance(node, n.Call) and _popped(node):
            yield node, node.func.value.id


def _written_by_call(call):
    """The variable a call statement changes in place, by the call's shape:
    `y.fill(v)`, `xs.append(v)`, `np.copyto(y, v)`, `f(a, out=y)`. (Statements
    only: these return None, and so `y = xp.sort(x)` of generated code is no
    write to xp.)"""
    func = call.func
    for k in call.keywords:
        if k.arg == 'out' and isinstance(k.value, n.Name):
            return k.value.id
    name = func.attr if isinstance(func, n.Attribute) else getattr(func, 'id', None)
    if isinstance(func, n.Attribute) and name in _MUTATING_METHODS \
            and isinstance(func.value, n.Name):
        return func.value.id
    if name in _MUTATING_FUNCTIONS and call.args and isinstance(call.args[0], n.Name):
        return call.args[0].id
    return None


def _popped(call):
    """`xs.pop(...)` inside an expression: a write to xs too."""
    return isinstance(call.func, n.Attribute) and call.func.attr == 'pop' \
        and isinstance(call.func.value, n.Name)


def is_ufunc_at(call):
    """`np.add.at(a, ...)` (by its shape: an update of the variable a in place)."""
    return isinstance(call, n.Call) and isinstance(call.func, n.Attribute) \
        and call.func.attr == 'at' and isinstance(call.func.value, (n.Attribute, n.Name)) \
        and bool(call.args) and isinstance(call.args[0], n.Name)


def _read_after(fdef, write, names):
    """A name in `names` read after `write`: later in the text, or anywhere in
    a loop around it."""
    loops = [loop for loop in n.walk(fdef) if isinstance(loop, (n.For, n.While))
             and any(x is write for x in n.walk(loop))]
    for node in n.walk(fdef):
        if isinstance(node, n.Name) and isinstance(node.ctx, n.Load) and node.id in names:
            if node.lineno > write.lineno or any(any(x is node for x in n.walk(loop))
                                                 for loop in loops):
                return node.id
    return None

"""Common subexpressions, part of stage 6 (optimize).

Derivative rules are templates written in terms of the primal's values, so
generated code recomputes what the primal already has (`ba = g * xp.cos(a)`
after `_t4 = xp.cos(a)`), and one rule can spell the same product twice
(cholesky's adjoint uses L^T three times). This pass

- replaces a pure subexpression by the name that already holds it, where
  that name and every name the expression reads are assigned at most once
  in the function (so they hold the same values wherever both are
  visible), and
- computes a pure subexpression that one statement spells twice once, into
  a fresh `_cse` name just before that statement.

Only subexpressions inside a larger expression are shared, never a whole
right-hand side: two names never come to hold one array, so the arrays a
function returns are as distinct as NumPy makes them. Code that writes into
an array in place is left alone, as are the branches of `a if c else b`,
`and`/`or`, lambdas and comprehensions, which Python may not evaluate.
"""
from . import nodes as n

# xp functions that write into an argument or draw random numbers
_IMPURE_XP = {'copyto', 'put', 'place', 'putmask', 'fill_diagonal', 'random', 'at'}
# runtime helpers with effects or fresh mutable results
# runtime helpers that call user code, hand out fresh objects to be written or
# functions, or change state
_IMPURE_RT = {'seed', 'seed_aux', 'iterate', 'pullback', 'vjp_call', 'jvp_call', 'closure',
              'vmapped', 'transformation', 'call_closure', 'default_argument', 'quiet', 'loud',
              'construct', 'copy', 'setitem', 'tangent_function', 'sweeps', 'sweeps_for',
              'pullback_function', 'closure_function', 'batch_loop', 'attribute'}
_IN_PLACE_METHODS = {'sort', 'fill', 'put', 'resize', 'itemset', 'partition', 'setfield',
                     'byteswap', 'setflags'}
_LAZY = (n.IfExp, n.BoolOp, n.Lambda, n.ListComp, n.DictComp, n.SetComp, n.GeneratorExp)


def share_subexpressions(fdef):
    rebound, writes = _facts(fdef)
    if writes:
        return fdef
    fdef.body = _block(fdef.body, {}, rebound, _fresh_names(fdef))
    return fdef


def _block(stmts, available, rebound, fresh):
    available = dict(available)          # what a nested block learns stays inside it
    out = []
    for stmt in stmts:
        if isinstance(stmt, (n.If, n.For, n.While)):
            stmt.body = _block(stmt.body, available, rebound, fresh)
            stmt.orelse = _block(stmt.orelse, available, rebound, fresh)
            out.append(stmt)
            continue
        if not isinstance(stmt, (n.Assign, n.Return, n.Expr)) or stmt.value is None:
            out.append(stmt)
            continue
        keys = {}
        if not _flat(stmt.value):        # (most statements: one operation on names)
            out.extend(_shared(stmt, available, rebound, fresh, keys))
        out.append(stmt)
        if isinstance(stmt, n.Assign) and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0], n.Name):
            _learn(available, stmt.targets[0].id, _key(stmt.value, keys), rebound)
    return out


def _shared(stmt, available, rebound, fresh, keys):
    """Rewrite `stmt` to read what `available` holds and to compute once what
    it spells twice; the statements computing the latter, to put before it.
    `keys` is left with the keys of stmt's nodes or empty."""
    if available and _Reuse(available, keys).inside(stmt.value):
        keys.clear()                     # (names replaced parts: spelled anew)
    if not _has_repeats(stmt.value, keys):
        return []
    keys.clear()
    before = []
    for name, expr in _repeats(stmt, fresh):
        before.append(_beside(n.assign(name, expr), stmt))
        _learn(available, name, _key(expr, {}), rebound)
    return before


def _beside(new, stmt):
    """`new` placed with `stmt`: its location and the user line it is from."""
    for attr in ('user_line', 'codax_adjoint'):
        if hasattr(stmt, attr):
            setattr(new, attr, getattr(stmt, attr))
    return n.copy_location(new, stmt)


def _learn(available, name, key, rebound):
    """`name` holds `key` from here on, if neither it nor what it reads is
    assigned again (a global or module, never assigned here, counts as fixed)."""
    if key is not None and name not in rebound and not _names(key) & rebound:
        available.setdefault(key, name)


class _Reuse(n.NodeTransformer):
    """Nested subexpressions already held by a name become that name."""

    def __init__(self, available, keys):
        self.available, self.keys, self.replaced = available, keys, False

    def inside(self, expr):
        """Replace within `expr` (not `expr` itself); whether anything was."""
        for field, value in n.iter_fields(expr):
            if isinstance(value, list):
                setattr(expr, field, [self.visit(v) if isinstance(v, n.AST) else v
                                      for v in value])
            elif isinstance(value, n.AST):
                setattr(expr, field, self.visit(value))
        return self.replaced

    def visit(self, node):
        key = _key(node, self.keys) if _worth(node) else None
        if key is not None and key in self.available:
            self.replaced = True
            return n.name(self.available[key])
        return self.generic_visit(node)


def _flat(expr):
    """Whether no operation is nested in `expr`: nothing to share inside."""
    return not any(_operates(child) for child in n.iter_child_nodes(expr))


def _operates(node):
    if isinstance(node, (n.Name, n.Constant)):
        return False
    return _worth(node) or any(_operates(child) for child in n.iter_child_nodes(node))


def _has_repeats(expr, keys):
    seen = set()
    for node in _eager_subexpressions(expr, top=True):
        key = _key(node, keys) if _worth(node) else None
        if key is not None:
            if key in seen:
                return True
            seen.add(key)
    return False


def _repeats(stmt, fresh):
    """(name, expression) per subexpression the statement spells twice or
    more, in order of evaluation; each occurrence in `stmt` becomes the name.
    Found innermost first, so an inner one that only its outer one repeated is
    put back into it."""
    hoisted = _innermost_repeats(stmt, fresh)
    for k in reversed(range(len(hoisted))):
        name, expr = hoisted[k]
        users = [i for i, (_, later) in enumerate(hoisted) if i > k and _reads(later, name)]
        if len(users) == 1 and _reads(later := hoisted[users[0]][1], name) == 1 \
                and not _reads(stmt.value, name):
            hoisted[users[0]] = (hoisted[users[0]][0], _Put(name, expr).visit(later))
            del hoisted[k]
    return hoisted


def _reads(expr, name):
    return sum(isinstance(x, n.Name) and x.id == name for x in n.walk(expr))


class _Put(n.NodeTransformer):
    def __init__(self, name, expr):
        self.name, self.expr = name, expr

    def visit_Name(self, node):
        return self.expr if node.id == self.name else node


def _innermost_repeats(stmt, fresh):
    hoisted = []
    while True:
        seen, repeated, memo = {}, None, {}
        for node in _eager_subexpressions(stmt.value, top=True):
            key = _key(node, memo) if _worth(node) else None
            if key is None:
                continue
            if key in seen:
                repeated = key
                break
            seen[key] = node
        if repeated is None:
            return hoisted
        name = next(fresh)
        hoisted.append((name, n.deepcopy(seen[repeated])))
        stmt.value = _Replace(repeated, name).visit(stmt.value)


def _eager_subexpressions(expr, top):
    """Post-order (innermost first) subexpressions always evaluated with
    `expr`; not `expr` itself when `top`."""
    if isinstance(expr, _LAZY):
        # the part evaluated first is eager; the rest maybe not
        first = {n.IfExp: 'test', n.BoolOp: None}.get(type(expr))
        if first == 'test':
            yield from _eager_subexpressions(expr.test, False)
        elif isinstance(expr, n.BoolOp):
            yield from _eager_subexpressions(expr.values[0], False)
        return
    for child in n.iter_child_nodes(expr):
        if isinstance(child, n.keyword):
            child = child.value
        if isinstance(child, n.expr):
            yield from _eager_subexpressions(child, False)
    if not top:
        yield expr


class _Replace(n.NodeTransformer):
    def __init__(self, key, name):
        self.key, self.name = key, name

    def visit(self, node):
        if isinstance(node, _LAZY):
            return node if not isinstance(node, (n.IfExp, n.BoolOp)) else self._eager_part(node)
        if _worth(node) and _key(node, {}) == self.key:
            return n.name(self.name)
        return self.generic_visit(node)

    def _eager_part(self, node):
        if isinstance(node, n.IfExp):
            node.test = self.visit(node.test)
        else:
            node.values[0] = self.visit(node.values[0])
        return node


def _worth(node):
    """A computation (a call or arithmetic), not a name, number or attribute."""
    return isinstance(node, (n.Call, n.BinOp, n.UnaryOp))


def _key(node, memo):
    """A hashable spelling of a pure expression; None where it is not one.
    `memo`: id of a node -> its key, for the nodes of one expression."""
    if id(node) not in memo:
        memo[id(node)] = _spelled(node, memo)
    return memo[id(node)]


def _spelled(node, memo):
    if isinstance(node, n.Name):
        return ('name', node.id)
    if isinstance(node, n.Constant):
        return ('const', type(node.value).__name__, repr(node.value))
    if isinstance(node, n.Attribute):
        inner = _key(node.value, memo)
        return None if inner is None else ('attr', inner, node.attr)
    if isinstance(node, (n.Tuple, n.List)) and isinstance(node.ctx, n.Load):
        return _keys(type(node).__name__, node.elts, memo)
    if isinstance(node, n.Slice):
        return _keys('slice', [node.lower, node.upper, node.step], memo)
    if isinstance(node, n.Subscript):
        return _keys('sub', [node.value, node.slice], memo)
    if isinstance(node, n.BinOp):
        return _keys(type(node.op).__name__, [node.left, node.right], memo)
    if isinstance(node, n.UnaryOp):
        return _keys(type(node.op).__name__, [node.operand], memo)
    if isinstance(node, n.Call) and _pure_function(node.func) \
            and not any(k.arg in (None, 'out') for k in node.keywords):
        args = _keys('call', list(node.args), memo)
        args = None if args is None else args + (('func',) + _dotted(node.func),)
        kws = _keys('kw', [k.value for k in node.keywords], memo)
        return None if args is None or kws is None else \
            args + tuple(k.arg for k in node.keywords) + (kws,)
    return None


def _keys(tag, nodes, memo):
    keys = []
    for node in nodes:
        key = ('none',) if node is None else _key(node, memo)
        if key is None:
            return None
        keys.append(key)
    return (tag,) + tuple(keys)


def _dotted(func):
    """('xp', 'linalg', 'solve') for xp.linalg.solve; () for anything else."""
    path = []
    while isinstance(func, n.Attribute):
        path.append(func.attr)
        func = func.value
    return (func.id,) + tuple(reversed(path)) if isinstance(func, n.Name) else ()


def _pure_function(func):
    path = _dotted(func)
    if len(path) < 2:
        return False
    if path[0] == 'xp':
        return not _IMPURE_XP & set(path)
    return path[0] == 'rt' and len(path) == 2 and path[1] not in _IMPURE_RT \
        and not path[1].startswith(('install_', 'append'))


def _names(key):
    """The variable names a key reads."""
    if key[0] == 'name':
        return {key[1]}
    out = set()
    for part in key[1:]:
        if isinstance(part, tuple):
            out |= _names(part)
    return out


def _facts(fdef):
    """(the names assigned more than once, whether the code writes into an array it
    holds: `y[i] = v`, `y += v`, `y.sort()`, `del y[i]`). A tape's `append`s
    and `pop`s do not count. Read off the statements and their targets, not
    every expression (normalized code assigns nowhere else)."""
    counts = {a.id: 1 for a in fdef.args.args}
    writes = _scan(fdef.body, counts)
    return {name for name, count in counts.items() if count > 1}, writes


def _scan(stmts, counts):
    writes = False
    for stmt in stmts:
        if isinstance(stmt, (n.AugAssign, n.Delete)):
            writes = True
        targets = stmt.targets if isinstance(stmt, n.Assign) else \
            [stmt.target] if isinstance(stmt, n.For) else []
        for target in targets:
            for node in n.walk(target):
                if isinstance(node, n.Name) and isinstance(node.ctx, n.Store):
                    counts[node.id] = counts.get(node.id, 0) + 1
                elif isinstance(node, (n.Subscript, n.Attribute)) and isinstance(node.ctx, n.Store):
                    writes = True
        value = getattr(stmt, 'value', None)
        if isinstance(value, n.Call) and isinstance(value.func, n.Attribute) \
                and value.func.attr in _IN_PLACE_METHODS:
            writes = True
        for field in ('body', 'orelse'):
            if isinstance(stmt, (n.If, n.For, n.While)):
                writes = _scan(getattr(stmt, field), counts) or writes
    return writes


def _fresh_names(fdef):
    taken = {node.id for node in n.walk(fdef) if isinstance(node, n.Name)}
    k = 0
    while True:
        if f'_cse{k}' not in taken:
            yield f'_cse{k}'
        k += 1

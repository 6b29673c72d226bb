"""Stage 6: clean-ups on generated code.

Copy propagation: a name assigned once, at the top level, from a constant or
from another such name is replaced by that value (`b_t2 = 1.0; b_t1 = b_t2`
becomes uses of 1.0), and arithmetic on two Python number constants is folded,
exactly as Python would compute it.

Dead code: an assignment whose target is never read, and whose operation has
no effect besides its value, is removed; repeated until nothing changes. This
is what drops primal values the derivative does not need (for `grad`, often
the output itself).
"""
import collections
import operator

from . import nodes as n
from .cse import share_subexpressions
from .ir import describe

PURE = {'copy', 'prim', 'container', 'inactive'}
_ARITHMETIC = {n.Add: operator.add, n.Sub: operator.sub, n.Mult: operator.mul}


def optimize(fdef):
    propagate_copies(fdef)
    remove_dead_code(fdef)
    share_subexpressions(fdef)
    return fdef


def propagate_copies(fdef):
    params = {a.id for a in fdef.args.args}
    counts = {}
    for node in n.walk(fdef):
        if isinstance(node, n.Name) and isinstance(node.ctx, n.Store):
            counts[node.id] = counts.get(node.id, 0) + 1
    values = {}
    for stmt in fdef.body:                       # top level only: straight-line
        if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name):
            name, value = stmt.targets[0].id, _Substitute(values).visit(stmt.value)
            stmt.value = value
            single = counts.get(name) == 1 and name not in params
            if single and (_number(value) or isinstance(value, n.Name)
                           and counts.get(value.id) == 1 and value.id not in params):
                values[name] = value
        else:
            _Substitute(values).visit(stmt)
    fdef.body = [s for s in fdef.body if not (isinstance(s, n.Assign)
                                              and isinstance(s.targets[0], n.Name)
                                              and s.targets[0].id in values)]
    return fdef


def _number(node):
    return isinstance(node, n.Constant) and type(node.value) in (int, float)


def _const_none(node):
    return isinstance(node, n.Constant) and node.value is None


class _Substitute(n.NodeTransformer):
    def __init__(self, values):
        self.values = values

    def visit_Name(self, node):
        if isinstance(node.ctx, n.Load) and node.id in self.values:
            return n.deepcopy(self.values[node.id])
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, (n.USub, n.UAdd)) and _number(node.operand):
            value = node.operand.value
            return n.const(-value if isinstance(node.op, n.USub) else +value)
        return node

    def visit_Compare(self, node):
        """`-1.0 is None` (a rule's test of a static argument, once a negative
        literal is propagated into it) is decided here: Python warns on `is`
        with a literal."""
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], (n.Is, n.IsNot)) \
                and _number(node.left) and _const_none(node.comparators[0]):
            return n.const(isinstance(node.ops[0], n.IsNot))
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        fold = _ARITHMETIC.get(type(node.op))
        if fold and _number(node.left) and _number(node.right):
            return n.const(fold(node.left.value, node.right.value))
        return node


def remove_dead_code(fdef):
    """Drop assignments nobody reads (pure operations only), to a fixpoint.
    Reads are counted once, per statement (or per test and iterable of an
    if, for or while), and a removed statement's reads are taken back, so a
    chain of dead assignments goes without walking the function again."""
    reads = collections.Counter()
    for unit in _read_units(fdef.body):
        reads.update(n.names_in(unit))
    while True:
        removed = []
        fdef.body = _sweep(fdef.body, reads, removed)
        if not removed:
            return fdef


def _read_units(stmts):
    for stmt in stmts:
        if isinstance(stmt, (n.If, n.For, n.While)):
            yield stmt.iter if isinstance(stmt, n.For) else stmt.test
            yield from _read_units(stmt.body)
            yield from _read_units(stmt.orelse)
        else:
            yield stmt


def _sweep(stmts, reads, removed):
    out = []
    for stmt in stmts:
        if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name) \
                and not reads[stmt.targets[0].id] and _pure(stmt.value):
            reads.subtract(n.names_in(stmt))
            removed.append(stmt)
            continue
        if isinstance(stmt, (n.If, n.For, n.While)):
            stmt.body = _sweep(stmt.body, reads, removed) or [n.Pass()]
            if isinstance(stmt, n.If):
                stmt.orelse = _sweep(stmt.orelse, reads, removed)
                if _empty(stmt.body) and not stmt.orelse:
                    reads.subtract(n.names_in(stmt.test))
                    removed.append(stmt)
                    continue
        out.append(stmt)
    return out


def _empty(stmts):
    return all(isinstance(s, n.Pass) for s in stmts)


def _pure(rhs):
    if isinstance(rhs, n.Call) and getattr(rhs, 'codax', None) is None:
        return False                  # a call that codax itself generated
    op = describe(rhs)
    if op.kind == 'prim':
        return op.prim.name not in ('seed',)
    return op.kind in PURE

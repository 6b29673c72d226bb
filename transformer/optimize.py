"""Stage 6: clean-ups on generated code.

Dead code: an assignment whose target is never read, and whose operation has
no effect besides its value, is removed; repeated until nothing changes. This
is what drops primal values the derivative does not need (for `grad`, often
the output itself).
"""
from . import nodes as n
from .ir import describe

PURE = {'copy', 'prim', 'container', 'inactive'}


def remove_dead_code(fdef):
    while True:
        read = set()
        for stmt in fdef.body:
            read |= n.names_in(stmt)
        removed = []
        fdef.body = _sweep(fdef.body, read, removed)
        if not removed:
            return fdef


def _sweep(stmts, read, removed):
    out = []
    for stmt in stmts:
        if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name) \
                and stmt.targets[0].id not in read and _pure(stmt.value):
            removed.append(stmt)
            continue
        if isinstance(stmt, (n.If, n.For, n.While)):
            stmt.body = _sweep(stmt.body, read, removed) or [n.Pass()]
            if isinstance(stmt, n.If):
                stmt.orelse = _sweep(stmt.orelse, read, removed)
                if _empty(stmt.body) and not stmt.orelse:
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

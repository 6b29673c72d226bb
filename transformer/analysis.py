"""Stage 4 of the pipeline: dataflow facts about a normalized function.

All analyses are flow-insensitive fixpoints over the assignments of the
normal form: simple, and safe for code with loops (they may over-approximate,
which costs a little work, never a wrong derivative).
"""
from . import nodes as n
from .ir import describe


def assignments(body, in_loop=False):
    """Yield (Assign statement, inside-a-loop?) for every assignment, in order."""
    for stmt in body:
        if isinstance(stmt, n.Assign):
            yield stmt, in_loop
        elif isinstance(stmt, n.If):
            yield from assignments(stmt.body, in_loop)
            yield from assignments(stmt.orelse, in_loop)
        elif isinstance(stmt, (n.For, n.While)):
            yield from assignments(stmt.body, True)


def loops(body):
    for stmt in body:
        if isinstance(stmt, (n.For, n.While)):
            yield stmt
            yield from loops(stmt.body)
        elif isinstance(stmt, n.If):
            yield from loops(stmt.body)
            yield from loops(stmt.orelse)


def target(stmt):
    return stmt.targets[0].id


def return_value(fdef):
    return fdef.body[-1].value


def active_names(fdef, seeds):
    """Names whose value depends differentiably on the names in `seeds`."""
    active = set(seeds)
    facts = [(target(s), describe(s.value).diff_names()) for s, _ in assignments(fdef.body)]
    changed = True
    while changed:
        changed = False
        for name, inputs in facts:
            if name not in active and inputs & active:
                active.add(name)
                changed = True
    return active


def useful_names(fdef, active):
    """Active names whose value reaches the returned value differentiably."""
    useful = n.names_in(return_value(fdef)) & active
    facts = [(target(s), describe(s.value).diff_names()) for s, _ in assignments(fdef.body)]
    changed = True
    while changed:
        changed = False
        for name, inputs in facts:
            if name in useful:
                new = (inputs & active) - useful
                if new:
                    useful |= new
                    changed = True
    return useful


def overwritten_names(fdef):
    """Names that may hold several values over one call: assigned in a loop,
    assigned more than once, or parameters that are reassigned."""
    counts = {a.id: 1 for a in fdef.args.args}
    out = set()
    for stmt, in_loop in assignments(fdef.body):
        name = target(stmt)
        counts[name] = counts.get(name, 0) + 1
        if in_loop or counts[name] > 1:
            out.add(name)
    for loop in loops(fdef.body):
        if isinstance(loop, n.For):
            out.add(loop.target.id)
    return out


NUMERIC_FAMILIES = {'elementwise', 'reduction', 'linalg', 'shape', 'creation'}


def numeric_names(fdef, numeric_params):
    """Names that always hold an array or number (never a list/tuple/dict), so
    their adjoints can be added with `+` instead of the general rt.add."""
    numeric = {s.targets[0].id for s, _ in assignments(fdef.body)} | set(numeric_params)
    all_params = {a.id for a in fdef.args.args}
    numeric -= all_params - set(numeric_params)
    changed = True
    while changed:
        changed = False
        for stmt, _ in assignments(fdef.body):
            name = target(stmt)
            if name in numeric and not _numeric_rhs(stmt.value, numeric):
                numeric.discard(name)
                changed = True
    return numeric


def _numeric_rhs(rhs, numeric):
    if isinstance(rhs, n.Constant):
        return isinstance(rhs.value, (int, float, complex))
    if isinstance(rhs, n.Name):
        return rhs.id in numeric
    op = describe(rhs)
    if op.kind != 'prim':
        return False
    if op.prim.name in ('getitem', 'setitem', 'copy'):
        source = op.inputs['a']
        return isinstance(source, n.Name) and source.id in numeric
    if op.prim.name in ('split', 'slogdet', 'iterate', 'append'):
        return False
    return op.prim.family in NUMERIC_FAMILIES

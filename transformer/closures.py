"""Closure conversion, the first step of normalize.

Every lambda and nested `def` in the function being transformed is lifted out:
the lifted function takes the variables it captures from the enclosing
function as leading parameters, and the expression that made the closure
becomes `rt.closure(lifted, *captured)`, a primitive whose derivative and
batching rules flow into the captured values (runtime/closures.py). So
`lax.fori_loop(0, n, lambda i, c: c * x, c0)` is differentiable in `x`.

Python reads a captured variable when the closure is called. Here it is
read when the closure is made, and a named closure is made again after any
later assignment to a variable it captures, so calls see current values as
in Python.

The lifted functions are printed, untransformed, beside the generated code.
When a transformation reaches a call of one, codax reads it back from
`LIFTED` with the user's file and lines (transformer/parse.py).
"""
from runtime import TABLE

from . import nodes as n
from .errors import error_at
from .ir import CallInfo

# code object of a lifted function (as emitted) -> (its tree, the user's file)
LIFTED = {}


def convert(fdef, unit, fresh):
    """Lift fdef's closures; return its new body and the lifted FunctionDefs."""
    outer = _bound_names(fdef)
    lifted = []
    converter = _Converter(unit, fresh, outer, lifted, {a.id for a in fdef.args.args})
    return converter.block(fdef.body, {}), lifted


class _Converter:
    def __init__(self, unit, fresh, outer, lifted, assigned):
        self.unit, self.fresh, self.outer, self.lifted = unit, fresh, outer, lifted
        self.assigned = assigned      # variables assigned so far, in textual order

    def block(self, stmts, made):
        """`made`: closure name -> the statement that makes it, for remaking."""
        out = []
        for stmt in stmts:
            out.extend(self.statement(stmt, made))
            self.assigned |= _stored_names(stmt)
        return out

    def statement(self, stmt, made):
        if isinstance(stmt, n.FunctionDef):
            make = n.copy_location(n.assign(stmt.name, self.lift(stmt, stmt.name)), stmt)
            made[stmt.name] = make
            self.assigned.add(stmt.name)
            # a variable it reads that is assigned only later: made after that
            return [make] if set(_captured_of(make)) <= self.assigned else []
        for field in ('body', 'orelse'):
            if isinstance(getattr(stmt, field, None), list):
                setattr(stmt, field, self.block(getattr(stmt, field), made))
        self.replace_lambdas(stmt)
        out = [stmt]
        named = _named_lambda(stmt)
        if named is not None:
            made[named] = stmt
        stored = _stored_names(stmt)
        for name, make in list(made.items()):       # a captured variable rebound: remake
            if make is not stmt and stored & set(_captured_of(make)) and name not in stored:
                out.append(n.copy_location(n.deepcopy(make), stmt))
        return out

    def replace_lambdas(self, stmt):
        for node in n.walk(stmt):
            for field, value in n.iter_fields(node):
                if isinstance(value, n.Lambda):
                    setattr(node, field, self.lift_lambda(value))
                elif isinstance(value, list):
                    value[:] = [self.lift_lambda(v) if isinstance(v, n.Lambda) else v
                                for v in value]

    def lift_lambda(self, lam):
        fdef = n.FunctionDef(name='lambda', args=lam.args, body=[n.copy_location(
            n.return_(lam.body), lam.body)], decorator_list=[], returns=None,
            type_comment=None, type_params=[])
        return self.lift(n.copy_location(fdef, lam), None)

    def lift(self, fdef, own_name):
        """`rt.closure(lifted, *captured)` for a nested function definition."""
        if fdef.decorator_list:
            raise error_at(fdef.decorator_list[0], 'codax does not support decorators on a '
                           'nested function (apply them to a module-level function)', self.unit)
        for default in fdef.args.defaults:
            if not _is_literal(default):
                raise error_at(default, 'a nested function\'s default values must be '
                               'literals here', self.unit)
        free = _free_names(fdef)
        recursive = own_name is not None and own_name in free
        captured = sorted(free & self.outer - {own_name})
        name = self.fresh('_' + (own_name or 'lambda') + '_')
        lifted = n.deepcopy(fdef)
        lifted.name = name
        params = [n.copy_location(n.name(c), fdef) for c in captured]
        for p in params:
            p.ctx = n.Param()
        lifted.args.args = params + list(lifted.args.args)
        if recursive:        # it calls itself: its own closure, remade from its parameters
            lifted.body.insert(0, n.copy_location(
                n.assign(own_name, _closure_call(name, captured)), fdef))
        self.lifted.append(lifted)
        return n.copy_location(_closure_call(name, captured), fdef)


def _closure_call(name, captured):
    call = n.call('rt.closure', [n.name(name)] + [n.name(c) for c in captured])
    call.codax = CallInfo('prim', prim=TABLE['closure'], label='a closure')
    call.codax_captured = captured
    return call


def _named_lambda(stmt):
    """The name a `name = lambda ...` statement binds, now that it makes a closure."""
    if isinstance(stmt, n.Assign) and len(stmt.targets) == 1 \
            and isinstance(stmt.targets[0], n.Name) and _captured_of(stmt) is not None \
            and isinstance(stmt.value, n.Call):
        return stmt.targets[0].id
    return None


def _captured_of(make):
    value = getattr(make, 'value', None)
    return getattr(value, 'codax_captured', None)


def _is_literal(node):
    return all(isinstance(x, (n.Constant, n.Tuple, n.UnaryOp, n.USub, n.UAdd, n.Load))
               for x in n.walk(node))


def _stored_names(stmt):
    """Names a statement (with what it nests, but not nested functions) assigns."""
    return {x.id for x in n.walk(stmt) if isinstance(x, n.Name) and isinstance(x.ctx, n.Store)}


def _bound_names(fdef):
    """The enclosing function's parameters and assigned names (a nested def's
    name included, the nested functions' own variables not)."""
    names = {a.id for a in fdef.args.args}
    todo = list(fdef.body)
    while todo:
        node = todo.pop()
        if isinstance(node, n.FunctionDef):
            names.add(node.name)
            todo.extend(node.args.defaults)
            continue
        if isinstance(node, n.Lambda):
            todo.extend(node.args.defaults)
            continue
        if isinstance(node, n.Name) and isinstance(node.ctx, n.Store):
            names.add(node.id)
        todo.extend(n.iter_child_nodes(node))
    return names


def _free_names(fdef):
    """Names a function (with the functions nested in it) reads but does not bind."""
    loads, bound = set(), set()
    for node in n.walk(fdef):
        if isinstance(node, (n.FunctionDef, n.Lambda)):
            bound |= {a.id for a in node.args.args}
            if isinstance(node, n.FunctionDef) and node is not fdef:
                bound.add(node.name)
        elif isinstance(node, n.Name):
            (loads if isinstance(node.ctx, n.Load) else bound).add(node.id)
    return loads - bound

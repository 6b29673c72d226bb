"""Stage 3 (run first, on the raw tree): reject what codax does not transform.

Each refusal is a SourceError naming the user's file, line and column, raised
before any pass runs, so no pass ever meets a construct it cannot handle.
"""
from . import nodes as n
from .errors import error_at

_REFUSED = {
    n.ClassDef: 'class definitions inside a transformed function',
    n.FunctionDef: 'nested function definitions (define the helper at module level)',
    n.AsyncFunctionDef: 'async functions',
    n.Lambda: 'lambdas inside a transformed function (define a module-level function)',
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


def check(unit):
    fdef = unit.tree
    _check_signature(fdef, unit)
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


def _check_signature(fdef, unit):
    args = fdef.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        raise error_at(fdef, 'codax supports plain positional parameters (with defaults); '
                       'not *args, **kwargs or keyword-only parameters', unit)


def _check_target(target, unit):
    for node in n.walk(target):
        if isinstance(node, n.Attribute) and isinstance(node.ctx, n.Store):
            raise error_at(node, 'codax does not support assigning to attributes', unit)
        if isinstance(node, n.Subscript) and isinstance(node.ctx, n.Store) \
                and not isinstance(node.value, n.Name):
            raise error_at(node, 'codax supports writes into a named array only (`y[i] = v`)', unit)
        if isinstance(node, n.Starred):
            raise error_at(node, 'codax does not support starred assignment targets', unit)

"""The one module that touches gast and astor.

Every other pass builds and inspects trees through the names defined here, so a
gast or astor release that changes node shapes is absorbed in this file alone.
"""
import ast
import collections
import copy
import re

import astor
import gast
from gast import (  # noqa: F401  (re-exported node classes)
    AST, Add, And, Assert, Assign, Attribute, AugAssign, BinOp, BitAnd, BitOr,
    BitXor, BoolOp, Break, Call, ClassDef, Compare, Constant, Continue, Del,
    Delete, Dict, DictComp, Div, Eq, Expr, FloorDiv, For, FunctionDef,
    GeneratorExp, Global, Gt, GtE, If, IfExp, In, Invert, Is, IsNot, keyword,
    Lambda, List, ListComp, Load, LShift, Lt, LtE, MatMult, Mod, Module, Mult,
    Name, NamedExpr, Nonlocal, Not, Param, NotEq, NotIn, Or, Pass, Pow, Raise, Return,
    RShift, Set, SetComp, Slice, Starred, Store, Sub, Subscript, Tuple,
    UAdd, UnaryOp, USub, While, With, Yield, YieldFrom, Await, Try,
    AsyncFunctionDef, AsyncFor, AsyncWith, Import, ImportFrom, comprehension,
    arguments, NodeTransformer, NodeVisitor, expr,
)

iter_fields = gast.iter_fields


def walk(node):
    """Every node of the tree under `node`, breadth first, as ast.walk gives
    them. Passes walk trees all the time (a tenth of a third derivative's
    compile time went to ast.walk's generator chain), so this reads fields
    directly."""
    todo = collections.deque((node,))
    pop, push, extend = todo.popleft, todo.append, todo.extend
    while todo:
        node = pop()
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                extend([item for item in value if isinstance(item, AST)])
            elif isinstance(value, AST):
                push(value)
        yield node


iter_child_nodes = gast.iter_child_nodes


def parse(source):
    """Parse module source text into a gast tree."""
    return gast.parse(source)


def to_source(tree):
    """Print a gast tree as Python source (via the standard ast and astor,
    which needs no locations)."""
    return astor.to_source(gast.gast_to_ast(tree))


def to_ast(tree):
    std = gast.gast_to_ast(tree)
    return ast.fix_missing_locations(std)


_IMMUTABLE = (str, int, float, complex, bool, bytes, type(None), type(Ellipsis))


def deepcopy(node):
    """A copy of a tree (or a list of trees). Nodes are copied field by field
    with copy.deepcopy only for values that are neither nodes nor immutable:
    passes copy trees often, and the general deepcopy's memo was a tenth of
    compile time."""
    if isinstance(node, list):
        return [deepcopy(x) for x in node]
    if isinstance(node, ast.AST):
        new = node.__class__.__new__(node.__class__)
        new.__dict__.update((k, deepcopy(v)) for k, v in node.__dict__.items())
        return new
    return node if isinstance(node, _IMMUTABLE) else copy.deepcopy(node)


# ---- builders ---------------------------------------------------------------

def name(identifier, store=False):
    ctx = Store() if store else Load()
    return Name(id=identifier, ctx=ctx, annotation=None, type_comment=None)


def const(value):
    return Constant(value=value, kind=None)


def attr(value, attribute):
    if isinstance(value, str):
        value = dotted(value)
    return Attribute(value=value, attr=attribute, ctx=Load())


def dotted(path):
    """'rt.add' -> Attribute(Name('rt'), 'add')."""
    parts = path.split('.')
    node = name(parts[0])
    for part in parts[1:]:
        node = Attribute(value=node, attr=part, ctx=Load())
    return node


def call(func, args=(), keywords=None):
    if isinstance(func, str):
        func = dotted(func)
    kws = [keyword(arg=k, value=v) for k, v in (keywords or {}).items()]
    return Call(func=func, args=list(args), keywords=kws)


def assign(target, value):
    if isinstance(target, str):
        target = name(target, store=True)
    return Assign(targets=[target], value=value, type_comment=None)


def expr_stmt(value):
    return Expr(value=value)


def tuple_(elts, store=False):
    return Tuple(elts=list(elts), ctx=Store() if store else Load())


def list_(elts):
    return List(elts=list(elts), ctx=Load())


def subscript(value, index, store=False):
    return Subscript(value=value, slice=index, ctx=Store() if store else Load())


def if_(test, body, orelse=()):
    return If(test=test, body=list(body) or [Pass()], orelse=list(orelse))


def for_(target, iter_, body):
    if isinstance(target, str):
        target = name(target, store=True)
    return For(target=target, iter=iter_, body=list(body) or [Pass()],
               orelse=[], type_comment=None)


def while_(test, body):
    return While(test=test, body=list(body) or [Pass()], orelse=[])


def return_(value):
    return Return(value=value)


def not_(value):
    return UnaryOp(op=Not(), operand=value)


def binop(left, op, right):
    return BinOp(left=left, op=op, right=right)


def function(fname, params, body, decorators=()):
    args = arguments(args=[name(p, store=False) for p in params],
                     posonlyargs=[], vararg=None, kwonlyargs=[],
                     kw_defaults=[], kwarg=None, defaults=[])
    for a in args.args:
        a.ctx = gast.Param()
    return FunctionDef(name=fname, args=args, body=list(body),
                       decorator_list=list(decorators), returns=None,
                       type_comment=None, type_params=[])


COMMENT_MARK = 'codax-comment:'


def comment(text):
    """A statement printed as `# text` in generated source (see render_comments).

    The text travels hex-encoded inside a string constant, so no quoting done by
    the printer can alter it."""
    return Expr(value=Constant(value=COMMENT_MARK + text.encode().hex(), kind=None))


def is_comment(stmt):
    return (isinstance(stmt, Expr) and isinstance(stmt.value, Constant)
            and isinstance(stmt.value.value, str)
            and stmt.value.value.startswith(COMMENT_MARK))


_COMMENT_LINE = re.compile(r"^(\s*)(?:\'\'\'|\"\"\"|\'|\")" + COMMENT_MARK + r"([0-9a-f]*)(?:\'\'\'|\"\"\"|\'|\")$")


def render_comments(text):
    """Turn the placeholder string statements into real `#` comments."""
    def fix(line):
        m = _COMMENT_LINE.match(line)
        if not m:
            return line
        return m.group(1) + '# ' + bytes.fromhex(m.group(2)).decode()
    return '\n'.join(fix(line) for line in text.split('\n'))


# ---- small queries ----------------------------------------------------------

def is_name(node, identifier=None):
    return isinstance(node, Name) and (identifier is None or node.id == identifier)


def names_in(node):
    """Ids of every Name read (Load) inside `node`."""
    return {n.id for n in walk(node) if isinstance(n, Name) and not isinstance(n.ctx, (Store, Del))}


def stored_names(node):
    return {n.id for n in walk(node) if isinstance(n, Name) and isinstance(n.ctx, Store)}


def copy_location(new, old):
    for attr_name in ('lineno', 'col_offset', 'end_lineno', 'end_col_offset'):
        if hasattr(old, attr_name):
            setattr(new, attr_name, getattr(old, attr_name))
    if hasattr(old, 'user_line'):
        new.user_line = old.user_line
    return new

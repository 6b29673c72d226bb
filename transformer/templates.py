"""Rule templates (strings in the primitive table) turned into gast expressions."""
from . import nodes as n

_parsed = {}


def instantiate(template, substitutions):
    """The template's expression with each name in `substitutions` replaced by
    a copy of its node (None stands for a missing optional argument)."""
    tree = _parsed.get(template)
    if tree is None:
        tree = _parsed[template] = n.parse(template).body[0].value
    return _Fold().visit(_Substitute(substitutions).visit(n.deepcopy(tree)))


class _Substitute(n.NodeTransformer):
    def __init__(self, substitutions):
        self.substitutions = substitutions

    def visit_Name(self, node):
        if node.id in self.substitutions:
            value = self.substitutions[node.id]
            return n.const(None) if value is None else n.deepcopy(value)
        return node


class _Fold(n.NodeTransformer):
    """Fold what substituting constants leaves behind: `x ** (2 - 1)` -> `x`,
    `2 * g * x ** 1` -> `2 * g * x`. Only exact integer arithmetic is folded,
    so no dtype or rounding changes."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        left, right = node.left, node.right
        if _int(left) and _int(right) and isinstance(node.op, (n.Add, n.Sub, n.Mult)):
            ops = {n.Add: int.__add__, n.Sub: int.__sub__, n.Mult: int.__mul__}
            return n.const(ops[type(node.op)](left.value, right.value))
        if isinstance(node.op, n.Pow) and _int(right) and right.value == 1:
            return left
        if isinstance(node.op, n.Mult) and _int(right) and right.value == 1:
            return left
        return node


    def visit_IfExp(self, node):
        """`A if None is None else B` -> A: rules that depend on a static argument."""
        self.generic_visit(node)
        if isinstance(node.test, n.Constant):
            return node.body if node.test.value else node.orelse
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.left, n.Tuple) \
                and _const(node.comparators[0], None) and isinstance(node.ops[0], (n.Is, n.IsNot)):
            return n.const(isinstance(node.ops[0], n.IsNot))     # a tuple display is not None
        if len(node.ops) == 1 and isinstance(node.left, n.Constant) \
                and isinstance(node.comparators[0], n.Constant):
            a, b, op = node.left.value, node.comparators[0].value, node.ops[0]
            decide = {n.Is: lambda: a is b, n.IsNot: lambda: a is not b,
                      n.Eq: lambda: a == b, n.NotEq: lambda: a != b}.get(type(op))
            if decide is not None:
                return n.const(bool(decide()))
        return node

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        if all(isinstance(v, n.Constant) for v in node.values):
            values = [bool(v.value) for v in node.values]
            return n.const(any(values) if isinstance(node.op, n.Or) else all(values))
        return node

    def visit_Subscript(self, node):
        """`(a, b)[1]` -> `b`: a rule reading one of a *varargs tuple's items."""
        self.generic_visit(node)
        if isinstance(node.value, n.Tuple) and _int(node.slice) \
                and -len(node.value.elts) <= node.slice.value < len(node.value.elts):
            return node.value.elts[node.slice.value]
        return node

    def visit_Call(self, node):
        """`rt.sum_vjp(g, x, None, ...)` and `rt.sum_vjp(g, x, axis, True)` are
        `g`; `len((a, b))` is 2; rt.dense of rt.dense is the inner one; a
        static helper (`codax_static`) of constants is its value; a
        multilinear einsum of a known-zero tangent is the zero, 0.0, and
        `rt.add` of the zero is the other term."""
        self.generic_visit(node)
        if _is_rt(node.func, 'sum_vjp') and len(node.args) == 4 and not node.keywords:
            axis, keepdims = node.args[2], node.args[3]
            if _const(axis, None) or _const(keepdims, True):
                return node.args[0]
        if isinstance(node.func, n.Name) and node.func.id == 'len' and len(node.args) == 1 \
                and isinstance(node.args[0], n.Tuple):
            return n.const(len(node.args[0].elts))
        if _is_xp(node.func, 'einsum') and any(_is_rt(a.func, 'dense') and a.args and _zero(a.args[0])
                                               for a in node.args if isinstance(a, n.Call)):
            return n.const(0.0)
        if _is_rt(node.func, 'dense') and node.args and isinstance(node.args[0], n.Call) \
                and _is_rt(node.args[0].func, 'dense'):
            return node.args[0]                        # a dense tangent is its own dense
        if _is_rt(node.func, 'add') and len(node.args) == 2 and any(map(_zero, node.args)):
            return node.args[1] if _zero(node.args[0]) else node.args[0]
        return _static_value(node)


def _static_value(call):
    """The value of `rt.f(constants)` for a helper marked `codax_static` (a
    function of its arguments alone), as a node; else the call. A constant
    may be spelled `np.inf`, `-np.inf` or `float('inf')`: normalize marks
    such an argument with the value it has (codax_value)."""
    import runtime
    name = getattr(call.func, 'attr', None)
    fn = getattr(runtime, name, None) if _is_rt(call.func, name) else None
    if not getattr(fn, 'codax_static', False) or call.keywords:
        return call
    try:
        value = fn(*(_known(a) for a in call.args))
    except LookupError:
        return call
    except Exception:           # (bad arguments: the error is raised where the line runs)
        return call
    if isinstance(value, tuple):
        return n.tuple_([n.const(v) for v in value])
    return n.const(value)


def _known(node):
    """The value of a constant argument node, else LookupError."""
    if isinstance(node, n.Constant):
        return node.value
    if hasattr(node, 'codax_value'):
        return node.codax_value
    if isinstance(node, n.Tuple):
        return tuple(map(_known, node.elts))
    raise LookupError


def _is_xp(func, fname):
    return (isinstance(func, n.Attribute) and func.attr == fname
            and isinstance(func.value, n.Name) and func.value.id == 'xp')


def _zero(node):
    return isinstance(node, n.Constant) and type(node.value) is float and node.value == 0.0


def _is_rt(func, fname):
    return (isinstance(func, n.Attribute) and func.attr == fname
            and isinstance(func.value, n.Name) and func.value.id == 'rt')


def _const(node, value):
    return isinstance(node, n.Constant) and node.value is value


def _int(node):
    return isinstance(node, n.Constant) and type(node.value) is int

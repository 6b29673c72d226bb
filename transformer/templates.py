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

    def visit_Call(self, node):
        """`rt.sum_vjp(g, x, None, ...)` and `rt.sum_vjp(g, x, axis, True)` are `g`."""
        self.generic_visit(node)
        if _is_rt(node.func, 'sum_vjp') and len(node.args) == 4 and not node.keywords:
            axis, keepdims = node.args[2], node.args[3]
            if _const(axis, None) or _const(keepdims, True):
                return node.args[0]
        return node


def _is_rt(func, fname):
    return (isinstance(func, n.Attribute) and func.attr == fname
            and isinstance(func.value, n.Name) and func.value.id == 'rt')


def _const(node, value):
    return isinstance(node, n.Constant) and node.value is value


def _int(node):
    return isinstance(node, n.Constant) and type(node.value) is int

"""Rule templates (strings in the primitive table) turned into gast expressions."""
from . import nodes as n

_parsed = {}


def instantiate(template, substitutions):
    """The template's expression with each name in `substitutions` replaced by
    a copy of its node (None stands for a missing optional argument)."""
    tree = _parsed.get(template)
    if tree is None:
        tree = _parsed[template] = n.parse(template).body[0].value
    return _Substitute(substitutions).visit(n.deepcopy(tree))


class _Substitute(n.NodeTransformer):
    def __init__(self, substitutions):
        self.substitutions = substitutions

    def visit_Name(self, node):
        if node.id in self.substitutions:
            value = self.substitutions[node.id]
            return n.const(None) if value is None else n.deepcopy(value)
        return node

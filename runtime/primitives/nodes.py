"""Attribute reads of pytree nodes (`b.x`) in differentiated code.

A node is a value of a type registered with register_pytree_node, or a
namedtuple. Its attribute holds one of its children, or auxiliary data, or
is computed from the children (a property). Which one is found at run time:
the child that *is* the attribute's value. A derivative flows through that
child; auxiliary data is a constant, as in JAX; a computed attribute is
refused, since codax cannot see the computation.

Generated code keeps the read as `b.x` (the batch pass reads it so); the
derivative passes take it as the record `node_attribute`
(transformer/ir.py, as_node_attribute). Its rules move a derivative
between the node and that child: attribute_cotangent puts it into a node of
the same type (0.0 for the other children, as derivative_tree does),
attribute_tangent takes it out of one. Each is the other's transpose, and
both are records, so derivatives compose to any order.
"""
from ..adjoint import ZERO, is_zero
from ..table import linear, primitive
from ..tree import _node_of, tree_leaves

_CONTAINERS = (tuple, list, dict, type(None))     # no attributes that hold their items


def node_attribute(node, name):
    """`node.name`, as a function (the record's impl)."""
    return getattr(node, name)


def attribute_cotangent(cot, node, name):
    """The cotangent of `node` from `cot`, that of its attribute `name`."""
    k, count, rebuild = _child(node, name)
    if k is None or is_zero(cot):
        return ZERO
    return rebuild([cot if i == k else ZERO for i in range(count)])


def attribute_tangent(cot, node, name):
    """The derivative of `node`'s attribute `name` taken out of `cot`, a
    tangent or cotangent of `node` (a node of its type, or 0.0)."""
    k = _child(node, name)[0]
    if k is None or is_zero(cot):
        return ZERO
    return list(_node_of(cot)[1][0](cot)[0])[k]


def _child(node, name):
    """(k, count, rebuild): `node` has `count` children, its attribute `name`
    holds child k (None: none, it is auxiliary data), and rebuild(children)
    is a node like it holding other children."""
    kind, funcs = _node_of(node)
    if funcs is None or funcs[1] is None or kind in _CONTAINERS:
        raise TypeError(f'codax cannot differentiate the attribute .{name} of a '
                        f'{type(node).__name__}: it differentiates attribute reads only of '
                        'pytree nodes (types registered with codax.tree_util.'
                        'register_pytree_node, and namedtuples)')
    children, aux = funcs[0](node)
    children = list(children)

    def rebuild(new):
        return funcs[1](aux, new)

    value = getattr(node, name)
    hits = [k for k, child in enumerate(children) if child is value]
    if len(hits) == 1:
        return hits[0], len(children), rebuild
    return _probe(kind, name, value, hits, len(children), rebuild), len(children), rebuild


class _StandIn:
    """A placeholder child, to see where a node keeps each of its children."""
    __slots__ = ()


def _probe(kind, name, value, hits, count, rebuild):
    """The child the attribute holds, where its value is none of the children
    or several (one object given twice): read off a node rebuilt around
    placeholders (JAX calls unflatten with placeholders too)."""
    stand_ins = [_StandIn() for _ in range(count)]
    try:
        probe = rebuild(stand_ins)
    except Exception:           # unflatten looks at its children: nothing can be told
        if hits or not _holds_floats(value):
            return hits[0] if hits else None
        raise TypeError(f'codax cannot tell which child of a {kind.__name__} the attribute '
                        f'.{name} holds: its registered unflatten function failed when given '
                        'placeholder children (as JAX gives it too); it should only store them')
    try:
        held = getattr(probe, name)
        parts = tree_leaves(held)
    except Exception:           # a property that computes with the children
        held, parts = None, stand_ins
    for k, stand_in in enumerate(stand_ins):
        if held is stand_in:
            return k
    if any(isinstance(part, _StandIn) for part in parts):
        raise TypeError(f'codax cannot differentiate the attribute .{name} of a '
                        f'{kind.__name__}: it is computed from the node\'s children, not one '
                        'of them; read those and compute it in the function')
    return None


def _holds_floats(value):
    return any(isinstance(leaf, (float, complex)) or getattr(
        getattr(leaf, 'dtype', None), 'kind', None) in ('f', 'c') for leaf in tree_leaves(value))


primitive('node_attribute', 'node, name', {'node': 'rt.attribute_cotangent(g, node, name)'},
          nondiff=('name',), jvp={'node': 'rt.attribute_tangent(t, node, name)'},
          targets=(node_attribute,), impl='rt.node_attribute', family='tree', batch='loop')
# The rules' helpers: linear in `cot` (the node only says where the child is),
# so each one's VJP is the other.
linear('rt_attribute_cotangent', 'cot, node, name',
       {'cot': 'rt.attribute_tangent(g, node, name)'}, targets=(attribute_cotangent,),
       impl='rt.attribute_cotangent', family='adjoint', batch='loop')
linear('rt_attribute_tangent', 'cot, node, name',
       {'cot': 'rt.attribute_cotangent(g, node, name)'}, targets=(attribute_tangent,),
       impl='rt.attribute_tangent', family='adjoint', batch='loop')

"""Pytree nodes in differentiated code: attribute reads (`b.x`) and
construction (`Box(x, y)`).

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
attribute_tangent takes it out of one.

Construction is the transpose. A call of a node type whose arguments carry
derivatives is taken as the record `node_construction` (as_node_construction;
generated code keeps the user's call). Which child each argument becomes
is found when code is generated, by building a node around placeholders
(runtime/tree.py, construction_layout): `where[k]` is the child that
argument k is, None where it is none. built_cotangents splits the node's
adjoint into its arguments' adjoints in the order of the constructor's
arguments; built_tangent builds the node's derivative from theirs. Each is
the other's transpose, both are records, and the attribute rules are the
same two with the one child the attribute holds, so derivatives compose to
any order. An argument that carries a derivative but is no child
(auxiliary data, which no derivative flows through) is refused: `unkept`
holds those whose kind is known only at run time.
"""
from ..adjoint import ZERO, is_zero, item
from ..backend import array_module
from ..table import linear, primitive
from ..tree import Placeholder, _node_of, children_of, rebuilt, tree_leaves

_CONTAINERS = (tuple, list, dict, type(None))     # no attributes that hold their items


def node_attribute(node, name):
    """`node.name`, as a function (the record's impl)."""
    return getattr(node, name)


def attribute_cotangent(cot, node, name):
    """The cotangent of `node` from `cot`, that of its attribute `name`."""
    k = _child(node, name)
    return ZERO if k is None else built_tangent(node, (k,), (cot,))


def attribute_tangent(cot, node, name):
    """The derivative of `node`'s attribute `name` taken out of `cot`, a
    tangent or cotangent of `node` (a node of its type, or 0.0)."""
    k = _child(node, name)
    return ZERO if k is None else item(built_cotangents(cot, node, (k,)), 0)


def construct(kind, where, unkept, *args):
    """`kind(*args)`: the impl of node_construction, whose rules' helpers
    read `where` and `unkept`."""
    return kind(*args)


def built_tangent(node, where, tangents, unkept=()):
    """The derivative of `node`, built from arguments whose derivatives are
    `tangents` (one per argument): a node like it holding tangents[k] as
    child where[k] (0.0 for a child that is no argument). Linear in
    `tangents`; its transpose is built_cotangents."""
    _refuse_unkept(node, unkept)
    parts = [ZERO] * len(children_of(node))
    for k, j in enumerate(where):
        if j is not None:
            parts[j] = item(tangents, k)
    if all(is_zero(part) for part in parts):
        return ZERO
    return rebuilt(node, parts)


def built_cotangents(cot, node, where, unkept=()):
    """The adjoints of the arguments that built `node`, from `cot`, its
    own (a node like it, or 0.0): argument k gets child where[k] of `cot`
    (0.0 where it is no child). Linear in `cot`; its transpose is
    built_tangent."""
    _refuse_unkept(node, unkept)
    if is_zero(cot) or _node_of(cot)[1] is None and not array_module(cot).any(cot):
        return ZERO       # (or the zero made NumPy zeros in batched code)
    parts = children_of(cot)
    return [ZERO if j is None else parts[j] for j in where]


def _refuse_unkept(node, unkept):
    for value in unkept:
        if _holds_floats(value):
            shape = getattr(value, 'shape', None)
            which = f'an argument (an array of shape {shape})' if shape is not None else \
                f'an argument (a {type(value).__name__})'
            raise TypeError(f'codax cannot differentiate the construction of a '
                            f'{type(node).__name__}: ' + unkept_message(which))


def unkept_message(which):
    """Why an argument that carries a derivative but is no child is refused."""
    return (f'{which} carries a derivative but is none of its children (its flatten function '
            'keeps it as auxiliary data, or drops it), and no derivative flows through '
            'auxiliary data, as in JAX; make it a child')


def _child(node, name):
    """k: the attribute `name` of `node` holds its child k (None: none, it
    is auxiliary data)."""
    kind, funcs = _node_of(node)
    if funcs is None or funcs[1] is None or kind in _CONTAINERS:
        raise TypeError(f'codax cannot differentiate the attribute .{name} of a '
                        f'{type(node).__name__}: it differentiates attribute reads only of '
                        'pytree nodes (types registered with codax.tree_util.'
                        'register_pytree_node, and namedtuples)')
    children = children_of(node)
    value = getattr(node, name)
    hits = [k for k, child in enumerate(children) if child is value]
    if len(hits) == 1:
        return hits[0]
    return _probe(node, name, value, hits, len(children))


def _probe(node, name, value, hits, count):
    """The child the attribute holds, where its value is none of the children
    or several (one object given twice): read off a node rebuilt around
    placeholders."""
    kind = type(node)
    stand_ins = [Placeholder(k) for k in range(count)]
    try:
        probe = rebuilt(node, stand_ins)
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
    if isinstance(held, Placeholder):
        return held.index
    if any(isinstance(part, Placeholder) for part in parts):
        raise TypeError(f'codax cannot differentiate the attribute .{name} of a '
                        f'{kind.__name__}: it is computed from the node\'s children, not one '
                        'of them; read those and compute it in the function')
    return None


def _holds_floats(value):
    return any(isinstance(leaf, (float, complex)) or getattr(
        getattr(leaf, 'dtype', None), 'kind', None) in ('f', 'c') for leaf in tree_leaves(value))


primitive('node_attribute', 'node, name', {'node': 'rt.attribute_cotangent(g, node, name)'},
          nondiff=('name',), jvp={'node': 'rt.attribute_tangent(t, node, name)'},
          targets=(node_attribute,), impl='rt.node_attribute', family='tree',
          batch='node_attribute')
# The rules' helpers: linear in `cot` (the node only says where the child is),
# so each one's VJP is the other. attribute_cotangent's takes the child out of
# a node holding cot, not out of `node`: a batched attribute_tangent is made
# dense like its node's child, which must be shaped like cot (an adjoint kept
# broadcastable, a number where the child is an array, has cot's shape).
linear('rt_attribute_cotangent', 'cot, node, name',
       {'cot': 'rt.attribute_tangent(g, rt.attribute_cotangent(cot, node, name), name)'},
       targets=(attribute_cotangent,),
       impl='rt.attribute_cotangent', family='adjoint', batch='attribute_cotangent')
linear('rt_attribute_tangent', 'cot, node, name',
       {'cot': 'rt.attribute_cotangent(g, node, name)'}, targets=(attribute_tangent,),
       impl='rt.attribute_tangent', family='adjoint', batch='attribute_tangent')

# Construction: generated code keeps the user's call, so the record's own
# call is never batched (its batch rule is the loop); its helpers' are.
primitive('node_construction', 'kind, where, unkept, *args',
          {'args': 'rt.built_cotangents(g, ans, where, unkept)'},
          nondiff=('kind', 'where', 'unkept'),
          jvp={'args': 'rt.built_tangent(ans, where, t, unkept)'}, targets=(construct,),
          impl='rt.construct', family='tree', batch='loop')
linear('rt_built_tangent', 'node, where, tangents, unkept=()',
       {'tangents': 'rt.built_cotangents(g, node, where)'}, targets=(built_tangent,),
       impl='rt.built_tangent', family='adjoint', batch='built_tangent')
linear('rt_built_cotangents', 'cot, node, where, unkept=()',
       {'cot': 'rt.built_tangent(node, where, g)'}, targets=(built_cotangents,),
       impl='rt.built_cotangents', family='adjoint', batch='built_cotangents')

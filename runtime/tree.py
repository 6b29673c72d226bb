"""Pytrees: nested tuples, lists, dicts (and registered node types) of leaves.

Used by every transformation for arguments and results. None is an empty
subtree, as in JAX."""

from .closures import Closure

_registry = {}   # type -> (flatten(x) -> (children, aux), unflatten(aux, children) -> x)


def register_pytree_node(nodetype, flatten_func, unflatten_func):
    _registry[nodetype] = (flatten_func, unflatten_func)


def _namedtuple_flatten(x):
    return list(x), type(x)


_CLOSURE_NODE = (lambda c: (list(c), None), None)    # rebuilt by _unflatten


register_pytree_node(tuple, lambda x: (list(x), None), lambda aux, c: tuple(c))
register_pytree_node(list, lambda x: (list(x), None), lambda aux, c: list(c))
register_pytree_node(dict, lambda x: ([x[k] for k in sorted(x)], tuple(sorted(x))),
                     lambda aux, c: dict(zip(aux, c)))
register_pytree_node(type(None), lambda x: ([], None), lambda aux, c: None)


def _node_of(x):
    kind = type(x)
    if kind in _registry:
        return kind, _registry[kind]
    if isinstance(x, Closure):       # its captured values; its type holds its function
        return kind, _CLOSURE_NODE
    if isinstance(x, tuple) and hasattr(x, '_fields'):       # namedtuple
        return kind, (_namedtuple_flatten, lambda aux, c: aux(*c))
    return None, None


_CONTAINERS = (tuple, list, dict, type(None))     # held as themselves in axes and Infos


def is_node_type(kind):
    """Whether `kind` is a type registered with register_pytree_node (not a
    dict, list, tuple or None, which codax handles as they are)."""
    return kind in _registry and kind not in _CONTAINERS


def node_children(x):
    """The children of x, in flattening order, when x is a node of a type
    registered with register_pytree_node (is_node_type); None for anything else."""
    if not is_node_type(type(x)):
        return None
    return list(_registry[type(x)][0](x)[0])


def node_rebuilt(x, children):
    """A node of x's registered type, with x's auxiliary data and these children."""
    flatten, unflatten = _registry[type(x)]
    return unflatten(flatten(x)[1], list(children))


class PyTreeDef:
    """The shape of a pytree without its leaves; hashable, so usable in cache keys."""
    __slots__ = ('kind', 'aux', 'children', '_hash')

    def __init__(self, kind, aux, children):
        self.kind, self.aux, self.children = kind, aux, tuple(children)
        self._hash = hash((kind, aux if _hashable(aux) else id(aux), self.children))

    @property
    def num_leaves(self):
        if self.kind is None:
            return 1
        return sum(c.num_leaves for c in self.children)

    def __eq__(self, other):
        return (isinstance(other, PyTreeDef) and self.kind is other.kind
                and self.aux == other.aux and self.children == other.children)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        if self.kind is None:
            return '*'
        inner = ', '.join(map(repr, self.children))
        return f'PyTreeDef({self.kind.__name__}[{inner}])'


def _hashable(value):
    try:
        hash(value)
        return True
    except TypeError:
        return False


LEAF = PyTreeDef(None, None, ())


def tree_flatten(tree, is_leaf=None):
    leaves = []
    treedef = _flatten(tree, leaves, is_leaf)
    return leaves, treedef


def _flatten(x, leaves, is_leaf):
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return LEAF
    kind, funcs = _node_of(x)
    if funcs is None:
        leaves.append(x)
        return LEAF
    children, aux = funcs[0](x)
    return PyTreeDef(kind, aux, [_flatten(c, leaves, is_leaf) for c in children])


def tree_unflatten(treedef, leaves):
    it = iter(leaves)
    out = _unflatten(treedef, it)
    return out


def _unflatten(treedef, it):
    if treedef.kind is None:
        return next(it)
    children = [_unflatten(c, it) for c in treedef.children]
    funcs = _registry.get(treedef.kind)
    if funcs is None:              # a closure (its type holds its function), a namedtuple
        return treedef.kind(children) if issubclass(treedef.kind, Closure) \
            else treedef.aux(*children)
    return funcs[1](treedef.aux, children)


def tree_leaves(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f, tree, *rest, is_leaf=None):
    """With is_leaf, the further trees are cut where `tree` is: each of their
    subtrees at a leaf of `tree` goes to f whole (JAX's flatten_up_to);
    without it, they must have the structure of `tree`."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    take = treedef_leaves if is_leaf is None else treedef_subtrees
    others = [take(treedef, r) for r in rest]
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])


def tree_map_is_leaf(is_leaf, f, tree, *rest):
    """tree_map(f, tree, *rest, is_leaf=is_leaf) with its keyword first: what
    transformed code calls instead (transformer/normalize.py), every argument
    by position."""
    return tree_map(f, tree, *rest, is_leaf=is_leaf)


def treedef_leaves(treedef, tree):
    leaves, other = tree_flatten(tree)
    if other != treedef:
        raise ValueError(f'pytree structure mismatch: expected {treedef}, got {other}')
    return leaves


def treedef_subtrees(treedef, tree):
    """The subtrees of `tree` at the leaves of `treedef`, a prefix of its structure."""
    subtrees = []
    _subtrees(treedef, tree, subtrees)
    return subtrees


def _subtrees(treedef, tree, out):
    if treedef.kind is None:
        out.append(tree)
        return
    kind, funcs = _node_of(tree)
    children, aux = funcs[0](tree) if funcs is not None else (None, None)
    if kind is not treedef.kind or aux != treedef.aux or len(children) != len(treedef.children):
        raise ValueError(f'pytree structure mismatch: expected a tree with {treedef} as its '
                         f'prefix, got {tree_structure(tree)}')
    for sub, child in zip(treedef.children, children):
        _subtrees(sub, child, out)


# ---- derivatives of trees: what codax.tree_util's rules use ----
# A tangent or cotangent of a tree has the tree's structure, except that the
# zero 0.0 may stand for any subtree (the adjoint convention, runtime/adjoint.py),
# so it is walked along the primal's treedef, not flattened on its own.

def derivative_leaves(cot, treedef):
    """The leaves of `cot`, a derivative of a tree of structure `treedef`, in
    tree_flatten's order; a subtree given as 0.0 gives 0.0 for each of its
    leaves. Linear in `cot`; its transpose is derivative_tree."""
    if type(cot) is float and cot == 0.0:
        return 0.0
    leaves = []
    _derivative_leaves(cot, treedef, leaves)
    return leaves


def _derivative_leaves(cot, treedef, leaves):
    if treedef.kind is None:
        leaves.append(cot)
    elif type(cot) is float and cot == 0.0:
        leaves.extend([0.0] * treedef.num_leaves)
    else:
        for child, sub in zip(_derivative_children(cot, treedef), treedef.children):
            _derivative_leaves(child, sub, leaves)


def _derivative_children(cot, treedef):
    """The subtrees of a node's derivative: by key for a dict, by position for
    a sequence, else by the registered flatten of the node's own type."""
    if isinstance(cot, dict):
        return [cot[key] for key in treedef.aux]
    if isinstance(cot, (list, tuple)):
        children = list(cot)
    else:
        children = list(_node_of(cot)[1][0](cot)[0])
    if len(children) != len(treedef.children):
        raise ValueError(f'a derivative with {len(children)} entries for {treedef}')
    return children


def derivative_tree(cot, treedef):
    """The derivative of a tree of structure `treedef` from the list `cot` of
    its leaves' derivatives (each may be 0.0). Linear in `cot`; its transpose
    is derivative_leaves."""
    if type(cot) is float and cot == 0.0:
        return 0.0
    return tree_unflatten(treedef, cot)

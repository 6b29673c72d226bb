"""Pytrees: nested tuples, lists, dicts (and registered node types) of leaves.

Used by every transformation for arguments and results. None is an empty
subtree, as in JAX."""

import collections
import dataclasses
import functools
import operator

from .closures import Closure

_registry = {}   # type -> (flatten(x) -> (children, aux), unflatten(aux, children) -> x)


def register_pytree_node(nodetype, flatten_func, unflatten_func):
    _registry[nodetype] = (flatten_func, unflatten_func)


def _namedtuple_flatten(x):
    return list(x), type(x)


_CLOSURE_NODE = (lambda c: (list(c), None), None)    # rebuilt by _unflatten


def sorted_keys(d):
    """A dict's keys in the order its values are flattened: sorted, as in
    JAX. Keys that do not compare (1 and 'a') are sorted by their type's name
    first, and kept in the dict's order where even that fails: a dict built
    inside a transformed function must not make its transformation fail."""
    try:
        return sorted(d)
    except TypeError:
        pass
    try:
        return sorted(d, key=lambda k: (type(k).__qualname__, k))
    except TypeError:
        return list(d)


class DictKeys(tuple):
    """A dict node's auxiliary data: its keys in flattening order, which is
    its structure (equal and hashed as that tuple, whatever the insertion
    order, as in JAX), remembering in `order` the dict's own order. A dict
    rebuilt from its leaves has that order again, so that code which splits
    a dict into examples and rebuilds them (rt.batch_loop) iterates over it
    as the untransformed function does."""

    def __new__(cls, d):
        keys = super().__new__(cls, sorted_keys(d))
        keys.order = tuple(d)
        return keys

    def rebuilt(self, children):
        """(key, value) pairs in the dict's own order."""
        values = dict(zip(self, children))
        return [(k, values[k]) for k in self.order]


def _dict_flatten(x):
    keys = DictKeys(x)
    return [x[k] for k in keys], keys


def _defaultdict_flatten(x):
    children, keys = _dict_flatten(x)
    return children, (x.default_factory, keys)


def _pairs(keys, children):
    """A dict's (key, value) pairs from its flattened keys and children."""
    return keys.rebuilt(children) if isinstance(keys, DictKeys) else zip(keys, children)


register_pytree_node(tuple, lambda x: (list(x), None), lambda aux, c: tuple(c))
register_pytree_node(list, lambda x: (list(x), None), lambda aux, c: list(c))
register_pytree_node(dict, _dict_flatten, lambda aux, c: dict(_pairs(aux, c)))
register_pytree_node(type(None), lambda x: ([], None), lambda aux, c: None)
# As in JAX: an OrderedDict keeps its order (part of its structure), a
# defaultdict sorts its keys like a dict and keeps its default_factory.
register_pytree_node(collections.OrderedDict, lambda x: (list(x.values()), tuple(x)),
                     lambda aux, c: collections.OrderedDict(zip(aux, c)))
register_pytree_node(collections.defaultdict, _defaultdict_flatten,
                     lambda aux, c: collections.defaultdict(aux[0], _pairs(aux[1], c)))


def _node_of(x):
    kind = type(x)
    if kind in _registry:
        return kind, _registry[kind]
    if isinstance(x, Closure):       # its captured values; its type holds its function
        return kind, _CLOSURE_NODE
    if isinstance(x, tuple) and hasattr(x, '_fields'):       # namedtuple
        return kind, (_namedtuple_flatten, lambda aux, c: aux(*c))
    return None, None


# held as themselves in axes and Infos (transformations see an OrderedDict or
# a defaultdict as the dict it is)
_CONTAINERS = (tuple, list, dict, type(None), collections.OrderedDict, collections.defaultdict)


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


# ---- nodes with attributes: registered types and namedtuples ----

def is_namedtuple_type(kind):
    return isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, '_fields')


def builds_node(kind):
    """Whether calling `kind` builds a pytree node whose attributes hold its
    children: a type registered with register_pytree_node, or a namedtuple."""
    return isinstance(kind, type) and (is_node_type(kind) or is_namedtuple_type(kind))


def children_of(x):
    """The children of node x (registered, a namedtuple, a container), in
    flattening order."""
    return list(_node_of(x)[1][0](x)[0])


def rebuilt(x, children):
    """A node of x's type, with x's auxiliary data and these children."""
    flatten, unflatten = _node_of(x)[1]
    return unflatten(flatten(x)[1], list(children))


class Placeholder:
    """A stand-in for value `index` (a child, a constructor's argument), to
    see where a node keeps it. JAX calls unflatten functions with
    placeholders too, so they must only store their children."""
    __slots__ = ('index',)

    def __init__(self, index):
        self.index = index


def construction_layout(kind, count, names=()):
    """Where `kind(*args)` keeps its `count` arguments (the last len(names)
    passed by those keywords): (where, probe), where[k] the index of the
    child that argument k is, or None where it is no child (it went to the
    auxiliary data, or nowhere); children that are no argument are constants
    (a default). Found by building `probe` around placeholders for the
    arguments (Placeholder(k) for argument k). ValueError, saying why, where
    that tells nothing: the constructor fails on them, computes a child from
    an argument, or keeps one argument as two children."""
    stand_ins = [Placeholder(i) for i in range(count)]
    split = count - len(names)
    try:
        node = kind(*stand_ins[:split], **dict(zip(names, stand_ins[split:])))
        children = _node_of(node)[1][0](node)[0]
    except Exception as exc:
        raise ValueError(f'its constructor failed when given placeholders for its arguments '
                         f'({type(exc).__name__}: {exc}); it must only store them') from None
    child_of = {}
    for j, child in enumerate(children):
        if isinstance(child, Placeholder):
            if child.index in child_of:
                raise ValueError(f'it keeps its argument {child.index + 1} as two children')
            child_of[child.index] = j
        elif _computed(child):
            raise ValueError(f'its child {j + 1} (in flattening order) is made from the '
                             'arguments in the constructor, not one of them as given')
    return tuple(child_of.get(k) for k in range(count)), node


def _computed(child):
    """Whether a child of a node built around placeholders may hold one: a
    container of them, or an object array made from one."""
    return any(isinstance(part, Placeholder) or getattr(getattr(part, 'dtype', None), 'kind',
                                                        None) == 'O'
               for part in tree_leaves(child))


class PyTreeDef:
    """The shape of a pytree without its leaves; hashable, so usable in cache keys."""
    __slots__ = ('kind', 'aux', '_children', '_hash')

    def __init__(self, kind, aux, children):
        self.kind, self.aux, self._children = kind, aux, tuple(children)
        self._hash = hash((kind, aux if _hashable(aux) else id(aux), self._children))

    @property
    def num_leaves(self):
        if self.kind is None:
            return 1
        return sum(c.num_leaves for c in self._children)

    @property
    def num_nodes(self):
        """The nodes and leaves of the tree, counted together (None is one node)."""
        return 1 + sum(c.num_nodes for c in self._children)

    def children(self):
        """The structures of the node's children (none for a leaf)."""
        return list(self._children)

    def node_data(self):
        """(the node's type, its auxiliary data); None for a leaf."""
        return None if self.kind is None else (self.kind, self.aux)

    def unflatten(self, leaves):
        return tree_unflatten(self, leaves)

    def flatten_up_to(self, xs):
        """The subtrees of `xs` at this structure's leaves: xs must have it as a prefix."""
        return treedef_subtrees(self, xs)

    def compose(self, inner):
        """This structure with `inner` in place of each leaf."""
        if self.kind is None:
            return inner
        return PyTreeDef(self.kind, self.aux, [c.compose(inner) for c in self._children])

    def key_paths(self):
        """The key path of each leaf, in flattening order (codax's own: it is how
        tree_flatten_with_path and transformed code find paths without the tree)."""
        if self.kind is None:
            return [()]
        return [(key,) + path for key, child in zip(_child_keys(self), self._children)
                for path in child.key_paths()]

    def __eq__(self, other):
        return (isinstance(other, PyTreeDef) and self.kind is other.kind
                and self.aux == other.aux and self._children == other._children)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f'PyTreeDef({self._text()})'

    def _text(self):
        """The structure as JAX writes it: `{'a': [*, *], 'b': None}`, other
        node types as CustomNode(type[auxiliary data], [children])."""
        kind, parts = self.kind, [c._text() for c in self._children]
        if kind is None:
            return '*'
        if kind is type(None):
            return 'None'
        if kind is tuple:
            return f'({parts[0]},)' if len(parts) == 1 else f'({", ".join(parts)})'
        if kind is list:
            return f'[{", ".join(parts)}]'
        if kind is dict:
            return '{' + ', '.join(f'{k!r}: {p}' for k, p in zip(self.aux, parts)) + '}'
        name = f'namedtuple[{kind.__name__}]' if is_namedtuple_type(kind) and \
            kind not in _registry else f'{kind.__name__}[{self.aux}]'
        return f'CustomNode({name}, [{", ".join(parts)}])'


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
    try:
        out = _unflatten(treedef, it)
    except StopIteration:
        raise ValueError(f'too few leaves for {treedef}, which has {treedef.num_leaves}') \
            from None
    if next(it, _END) is not _END:
        raise ValueError(f'too many leaves for {treedef}, which has {treedef.num_leaves}')
    return out


_END = object()


def _unflatten(treedef, it):
    if treedef.kind is None:
        return next(it)
    children = [_unflatten(c, it) for c in treedef._children]
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
    """The further trees are cut where `tree` is: `tree` is a prefix of each
    of them, and their subtrees at a leaf of `tree` go to f whole (JAX's
    flatten_up_to)."""
    treedef, columns = _aligned(tree, rest, is_leaf)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(*columns)])


def _aligned(tree, rest, is_leaf):
    """tree's structure, and the lists of tree's leaves and of each further
    tree's parts at those leaves (tree_map's rule)."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    return treedef, [leaves] + [treedef_subtrees(treedef, r) for r in rest]


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
    _subtrees(treedef, tree, subtrees, ())
    return subtrees


def _subtrees(treedef, tree, out, path):
    if treedef.kind is None:
        out.append(tree)
        return
    kind, funcs = _node_of(tree)
    children, aux = funcs[0](tree) if funcs is not None else (None, None)
    if kind is not treedef.kind or aux != treedef.aux or len(children) != len(treedef._children):
        where = f' at {keystr(path)}' if path else ''
        raise ValueError(f'pytree structure mismatch{where}: expected a tree with {treedef} as '
                         f'its prefix, got {tree_structure(tree)}')
    for key, sub, child in zip(_child_keys(treedef), treedef._children, children):
        _subtrees(sub, child, out, path + (key,))


# ---- registering node types the ways JAX offers ----

_attribute_keys = {}   # type -> the attribute name of each child (register_dataclass)


def register_pytree_node_class(cls):
    """Registers `cls` by its own `tree_flatten()` method and `tree_unflatten(aux,
    children)` classmethod; returns `cls`, so that it can decorate the class."""
    register_pytree_node(cls, operator.methodcaller('tree_flatten'), cls.tree_unflatten)
    return cls


def register_dataclass(nodetype, data_fields=None, meta_fields=None, drop_fields=()):
    """Registers `nodetype`, whose attributes `data_fields` are its children and
    `meta_fields` its auxiliary data, and which its constructor rebuilds from
    them all by keyword. For a dataclass both may be left out: fields marked
    `dataclasses.field(metadata=dict(static=True))` are then the meta fields.
    Returns `nodetype`."""
    if data_fields is None and meta_fields is None:
        data_fields, meta_fields = _dataclass_fields(nodetype, drop_fields)
    elif data_fields is None or meta_fields is None:
        raise TypeError('register_dataclass: give both data_fields and meta_fields, or '
                        'neither (for a dataclass)')
    data_fields, meta_fields = tuple(data_fields), tuple(meta_fields)
    if dataclasses.is_dataclass(nodetype):
        given = set(data_fields) | set(meta_fields) | set(drop_fields)
        wanted = {f.name for f in dataclasses.fields(nodetype) if f.init}
        if given != wanted:
            raise ValueError(f'register_dataclass: the fields of {nodetype.__name__} are '
                             f'{sorted(wanted)}; data_fields, meta_fields and drop_fields '
                             f'name {sorted(given)}')

    def flatten(x):
        return ([getattr(x, name) for name in data_fields],
                tuple(getattr(x, name) for name in meta_fields))

    def unflatten(meta, children):
        return nodetype(**dict(zip(meta_fields, meta)), **dict(zip(data_fields, children)))

    register_pytree_node(nodetype, flatten, unflatten)
    _attribute_keys[nodetype] = data_fields
    return nodetype


def _dataclass_fields(nodetype, drop_fields):
    if not dataclasses.is_dataclass(nodetype):
        raise TypeError(f'register_dataclass: {nodetype.__name__} is not a dataclass, so '
                        'data_fields and meta_fields must be given')
    fields = [f for f in dataclasses.fields(nodetype) if f.init and f.name not in drop_fields]
    return ([f.name for f in fields if not f.metadata.get('static', False)],
            [f.name for f in fields if f.metadata.get('static', False)])


def register_static(cls):
    """Registers `cls` as a node with no children: its instances are auxiliary
    data, part of the structure. Returns `cls`."""
    register_pytree_node(cls, lambda x: ((), x), lambda x, _: x)
    return cls


# ---- key paths: where each leaf is in its tree, as in jax.tree_util ----

@dataclasses.dataclass(frozen=True)
class SequenceKey:
    """An entry of a list or tuple."""
    idx: int

    def __str__(self):
        return f'[{self.idx!r}]'


@dataclasses.dataclass(frozen=True)
class DictKey:
    """An entry of a dict."""
    key: object

    def __str__(self):
        return f'[{self.key!r}]'


@dataclasses.dataclass(frozen=True)
class GetAttrKey:
    """An attribute: a namedtuple's field, a registered dataclass's data field."""
    name: str

    def __str__(self):
        return f'.{self.name}'


@dataclasses.dataclass(frozen=True)
class FlattenedIndexKey:
    """A child of a node type registered without names for its children."""
    key: int

    def __str__(self):
        return f'[<flat index {self.key}>]'


def _child_keys(treedef):
    """The key of each child of a node; it follows from the node's type and
    auxiliary data alone, which is what lets transformed code find paths."""
    kind, count = treedef.kind, len(treedef._children)
    keys = dict_keys(treedef)
    if keys is not None:
        return [DictKey(key) for key in keys]
    if kind in (list, tuple):
        return [SequenceKey(i) for i in range(count)]
    names = _attribute_keys.get(kind)
    if names is None and kind not in _registry and issubclass(kind, tuple) \
            and hasattr(kind, '_fields'):                      # a namedtuple
        names = kind._fields
    if names is not None:
        return [GetAttrKey(name) for name in names]
    return [FlattenedIndexKey(i) for i in range(count)]


def same_dict(x, pairs):
    """A dict of the type of dict `x` (an OrderedDict, a defaultdict with
    x's default_factory) holding `pairs` (a dict or (key, value) pairs)."""
    if type(x) is collections.defaultdict:
        return collections.defaultdict(x.default_factory, pairs)
    return type(x)(pairs) if type(x) is collections.OrderedDict else dict(pairs)


def flat_keys(d):
    """The keys of dict `d` in the order tree_flatten takes its values: an
    OrderedDict's own order, else sorted."""
    return list(d) if type(d) is collections.OrderedDict else sorted_keys(d)


def dict_keys(treedef):
    """The keys of a dict, OrderedDict or defaultdict node in flattening
    order; None for other nodes."""
    if treedef.kind in (dict, collections.OrderedDict):
        return treedef.aux
    if treedef.kind is collections.defaultdict:
        return treedef.aux[1]
    return None


def keystr(keys, *, simple=False, separator=''):
    """A key path as text: `['a'][0].b`, or with `simple` `a/0/b` (separator '/')."""
    return separator.join(_simple_str(key) if simple else str(key) for key in keys)


def _simple_str(key):
    for kind, field in ((SequenceKey, 'idx'), (DictKey, 'key'), (GetAttrKey, 'name'),
                        (FlattenedIndexKey, 'key')):
        if type(key) is kind:
            return str(getattr(key, field))
    return str(key)


def tree_flatten_with_path(tree, is_leaf=None):
    """([(key path, leaf), ...], treedef), in tree_flatten's order."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    return list(zip(treedef.key_paths(), leaves)), treedef


def tree_leaves_with_path(tree, is_leaf=None):
    return tree_flatten_with_path(tree, is_leaf)[0]


def tree_map_with_path(f, tree, *rest, is_leaf=None):
    """tree_map, f getting each leaf's key path first."""
    treedef, columns = _aligned(tree, rest, is_leaf)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(treedef.key_paths(), *columns)])


def tree_map_with_path_is_leaf(is_leaf, f, tree, *rest):
    """tree_map_with_path with is_leaf first, as tree_map_is_leaf is to tree_map."""
    return tree_map_with_path(f, tree, *rest, is_leaf=is_leaf)


# ---- the rest of jax.tree_util ----

class _NoInitializer:
    def __repr__(self):
        return '<no initializer>'


NO_INITIALIZER = _NoInitializer()


def tree_reduce(function, tree, initializer=NO_INITIALIZER, is_leaf=None):
    """functools.reduce(function, leaves of tree[, initializer])."""
    leaves = tree_leaves(tree, is_leaf)
    if initializer is NO_INITIALIZER:
        if not leaves:
            raise TypeError('tree_reduce() of a tree with no leaves needs an initializer')
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


def tree_all(tree, is_leaf=None):
    """all() of the leaves of tree. JAX takes is_leaf only by keyword; here it
    may come by position too, as transformed code passes every argument."""
    return all(tree_leaves(tree, is_leaf))


def tree_transpose(outer_treedef, inner_treedef, pytree_to_transpose):
    """A tree of structure outer_treedef.compose(inner_treedef) as one of
    structure inner_treedef.compose(outer_treedef); inner_treedef None: that of
    the first subtree at a leaf of outer_treedef."""
    leaves, treedef = tree_flatten(pytree_to_transpose)
    if inner_treedef is None:
        inner_treedef = tree_structure(outer_treedef.flatten_up_to(pytree_to_transpose)[0])
    expected = outer_treedef.compose(inner_treedef)
    if treedef != expected:
        raise TypeError(f'tree_transpose: the tree has structure {treedef}, not {expected} '
                        f'({inner_treedef} at each leaf of {outer_treedef})')
    size = inner_treedef.num_leaves
    rows = [leaves[i:i + size] for i in range(0, len(leaves), size)] if size else []
    columns = [tree_unflatten(outer_treedef, [row[j] for row in rows]) for j in range(size)]
    return tree_unflatten(inner_treedef, columns)


def all_leaves(iterable, is_leaf=None):
    """Whether every item of iterable is a leaf (None is not: it is an empty node)."""
    return all((is_leaf is not None and is_leaf(x)) or _node_of(x)[1] is None for x in iterable)


def treedef_children(treedef):
    return treedef.children()


def treedef_is_leaf(treedef):
    """Whether treedef has a single node: a leaf, or None (as in JAX)."""
    return treedef.num_nodes == 1


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
    elif treedef.num_leaves == 0:       # (None, (), {}): nothing to take, whatever cot holds
        return
    elif type(cot) is float and cot == 0.0:
        leaves.extend([0.0] * treedef.num_leaves)
    else:
        for child, sub in zip(_derivative_children(cot, treedef), treedef._children):
            _derivative_leaves(child, sub, leaves)


def _derivative_children(cot, treedef):
    """The subtrees of a node's derivative: by key for a dict, by position for
    a sequence, else by the registered flatten of the node's own type."""
    keys = dict_keys(treedef)
    if isinstance(cot, dict) and keys is not None:
        return [cot[key] for key in keys]
    if isinstance(cot, (list, tuple)):
        children = list(cot)
    else:
        children = list(_node_of(cot)[1][0](cot)[0])
    if len(children) != len(treedef._children):
        raise ValueError(f'a derivative with {len(children)} entries for {treedef}')
    return children


def derivative_tree(cot, treedef):
    """The derivative of a tree of structure `treedef` from the list `cot` of
    its leaves' derivatives (each may be 0.0). Linear in `cot`; its transpose
    is derivative_leaves."""
    if type(cot) is float and cot == 0.0:
        return 0.0
    return tree_unflatten(treedef, cot)

"""The rest of jax.tree_util in codax.tree_util, and codax.tree (issue: a JAX
user's tree_util code runs unchanged).

Plain-Python behaviour is checked against hand-built expected values,
functools.reduce, and the outputs JAX documents (key paths, keystr,
tree_transpose, tree_all, all_leaves, treedef_is_leaf). Inside transformed
functions, tree_reduce, tree_all and the key-path functions are checked under
grad and jvp against central differences of a twin written without
tree_util, under vmap against a Python loop, under jit against the plain call.
Every transformed function is module-level: codax reads its source.
"""
import collections
import dataclasses
import functools
import operator

import numpy as np
import pytest

import codax
from codax import tree_util as tu
from codax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey
from helpers import assert_tree_allclose, numeric_grad

RTOL, ATOL = 1e-6, 1e-8

_rng = np.random.default_rng(7)
P = {'w': _rng.uniform(-1, 1, 3), 'b': [_rng.uniform(-1, 1, 2), _rng.uniform(-1, 1, 2)]}
T = {'w': _rng.uniform(-1, 1, 3), 'b': [_rng.uniform(-1, 1, 2), _rng.uniform(-1, 1, 2)]}
W_BATCH = _rng.uniform(-1, 1, (4, 3))
IN_AXES = ({'w': 0, 'b': None},)

Pair = collections.namedtuple('Pair', ['a', 'b'])


class Box:
    """Registered with register_pytree_node: no names for its children."""

    def __init__(self, x, y):
        self.x, self.y = x, y


tu.register_pytree_node(Box, lambda box: ((box.x, box.y), None), lambda aux, c: Box(*c))


@tu.register_pytree_node_class
class Scaled:
    """Registered by its own tree_flatten / tree_unflatten; `scale` is auxiliary."""

    def __init__(self, value, scale):
        self.value, self.scale = value, scale

    def tree_flatten(self):
        return (self.value,), self.scale

    @classmethod
    def tree_unflatten(cls, scale, children):
        return cls(children[0], scale)


@dataclasses.dataclass
class Layer:
    w: object
    b: object
    act: str = dataclasses.field(default='tanh', metadata=dict(static=True))


tu.register_dataclass(Layer)


@dataclasses.dataclass
class Dense:
    kernel: object
    bias: object
    name: str


tu.register_dataclass(Dense, data_fields=['bias', 'kernel'], meta_fields=['name'])


@tu.register_static
@dataclasses.dataclass(frozen=True)
class Config:
    depth: int


# ---- registering node types ----

def test_register_pytree_node_class_uses_the_class_methods():
    s = Scaled(np.arange(3.0), 2.5)
    leaves, treedef = tu.tree_flatten([s, 1.0])
    assert len(leaves) == 2 and leaves[0] is s.value and leaves[1] == 1.0
    back = tu.tree_unflatten(treedef, [np.ones(3), 4.0])
    assert type(back[0]) is Scaled and back[0].scale == 2.5
    np.testing.assert_array_equal(back[0].value, np.ones(3))
    assert tu.tree_structure(Scaled(1.0, 2.5)) != tu.tree_structure(Scaled(1.0, 3.0))


def test_register_dataclass_infers_static_fields():
    layer = Layer(np.ones(2), np.zeros(2), 'relu')
    leaves, treedef = tu.tree_flatten(layer)
    assert [leaf is field for leaf, field in zip(leaves, (layer.w, layer.b))] == [True, True]
    back = tu.tree_map(lambda x: x + 1, layer)
    assert type(back) is Layer and back.act == 'relu'
    np.testing.assert_array_equal(back.b, np.ones(2))
    assert tu.tree_structure(layer) != tu.tree_structure(Layer(1.0, 2.0))    # act differs


def test_register_dataclass_with_fields_given():
    dense = Dense(kernel=np.eye(2), bias=np.zeros(2), name='d')
    assert tu.tree_leaves(dense)[0] is dense.bias            # data_fields' order
    paths = [path for path, _ in tu.tree_leaves_with_path(dense)]
    assert paths == [(GetAttrKey('bias'),), (GetAttrKey('kernel'),)]
    back = tu.tree_unflatten(tu.tree_structure(dense), [1.0, 2.0])
    assert (back.bias, back.kernel, back.name) == (1.0, 2.0, 'd')


def test_register_dataclass_refuses_incomplete_fields():
    with pytest.raises(TypeError, match='give both data_fields and meta_fields'):
        tu.register_dataclass(Dense, data_fields=['kernel'])
    with pytest.raises(ValueError, match=r"fields of Dense are \['bias', 'kernel', 'name'\]"):
        tu.register_dataclass(Dense, data_fields=['kernel'], meta_fields=[])
    with pytest.raises(TypeError, match='Box is not a dataclass'):
        tu.register_dataclass(Box)


def test_register_static_makes_structure_of_the_value():
    tree = {'config': Config(3), 'x': 1.0}
    assert tu.tree_leaves(tree) == [1.0]
    assert tu.tree_structure(tree) == tu.tree_structure({'config': Config(3), 'x': 2.0})
    assert tu.tree_structure(tree) != tu.tree_structure({'config': Config(4), 'x': 1.0})
    assert tu.tree_map(lambda x: x * 2, tree) == {'config': Config(3), 'x': 2.0}


# ---- tree_reduce, tree_all, tree_transpose, all_leaves ----

def test_tree_reduce_is_functools_reduce_over_the_leaves():
    tree = {'b': [1, (2, 3)], 'a': 4, 'c': None}
    leaves = [4, 1, 2, 3]                                  # sorted keys; None has none
    for function in (operator.add, operator.sub, lambda a, x: 10 * a + x):
        assert tu.tree_reduce(function, tree) == functools.reduce(function, leaves)
        assert tu.tree_reduce(function, tree, 100) == functools.reduce(function, leaves, 100)
    assert tu.tree_reduce(operator.add, {}, initializer=7) == 7
    pairs = tu.tree_reduce(lambda a, x: a + [x], tree, [], is_leaf=lambda x: isinstance(x, list))
    assert pairs == [4, [1, (2, 3)]]


def test_tree_reduce_of_no_leaves_needs_an_initializer():
    with pytest.raises(TypeError, match='no leaves needs an initializer'):
        tu.tree_reduce(operator.add, [None, {}])


def test_tree_all_as_documented_by_jax():
    assert tu.tree_all([True, {'a': True, 'b': (True, True)}]) is True
    assert tu.tree_all([False, (True, False)]) is False
    assert tu.tree_all([None, {}]) is True
    assert tu.tree_all([[1, 0]], is_leaf=lambda x: isinstance(x, list)) is True


def test_tree_transpose_as_documented_by_jax():
    tree = [(1, 2, 3), (4, 5, 6)]
    inner, outer = tu.tree_structure(('*', '*', '*')), tu.tree_structure(['*', '*'])
    assert tu.tree_transpose(outer, inner, tree) == ([1, 4], [2, 5], [3, 6])
    assert tu.tree_transpose(outer, None, tree) == ([1, 4], [2, 5], [3, 6])


def test_tree_transpose_of_dicts_and_back():
    tree = {'x': {'a': 1, 'b': 2}, 'y': {'a': 3, 'b': 4}}
    outer, inner = tu.tree_structure({'x': 0, 'y': 0}), tu.tree_structure({'a': 0, 'b': 0})
    flipped = tu.tree_transpose(outer, inner, tree)
    assert flipped == {'a': {'x': 1, 'y': 3}, 'b': {'x': 2, 'y': 4}}
    assert tu.tree_transpose(inner, outer, flipped) == tree


def test_tree_transpose_of_a_wrong_structure():
    with pytest.raises(TypeError, match='tree_transpose: the tree has structure'):
        tu.tree_transpose(tu.tree_structure([0, 0]), tu.tree_structure((0, 0)), [(1, 2), (3,)])


def test_all_leaves_as_documented_by_jax():
    tree = {'a': [1, 2, 3]}
    assert tu.all_leaves(tu.tree_leaves(tree))
    assert not tu.all_leaves([tree])
    assert not tu.all_leaves([1, None])                    # None is an empty node
    assert tu.all_leaves([[1], 2], is_leaf=lambda x: isinstance(x, list))


# ---- PyTreeDef ----

def test_treedef_counts_and_children():
    tree = {'b': [1, 2], 'a': 3, 'n': None}
    treedef = tu.tree_structure(tree)
    assert treedef.num_leaves == 3
    assert treedef.num_nodes == 6                  # dict, 'a', list and its 2, None
    assert treedef.children() == [tu.tree_structure(3), tu.tree_structure([1, 2]),
                                  tu.tree_structure(None)]
    assert tu.treedef_children(treedef) == treedef.children()
    assert tu.tree_structure(1).children() == []


def test_treedef_is_leaf_as_documented_by_jax():
    assert tu.treedef_is_leaf(tu.tree_structure(1))
    assert not tu.treedef_is_leaf(tu.tree_structure([1, 2]))
    assert tu.treedef_is_leaf(tu.tree_structure(None))           # one node, as in JAX


def test_treedef_unflatten_and_flatten_up_to():
    treedef = tu.tree_structure({'a': 0, 'b': (0, 0)})
    assert treedef.unflatten([1, 2, 3]) == {'a': 1, 'b': (2, 3)}
    assert tu.tree_structure([0, 0]).flatten_up_to([{'x': 1}, (2, 3)]) == [{'x': 1}, (2, 3)]
    with pytest.raises(ValueError, match='structure mismatch'):
        tu.tree_structure([0, 0]).flatten_up_to([1, 2, 3])


def test_unflatten_with_the_wrong_number_of_leaves():
    treedef = tu.tree_structure((0, [0, 0]))
    with pytest.raises(ValueError, match=r'too few leaves for .*which has 3'):
        treedef.unflatten([1, 2])
    with pytest.raises(ValueError, match=r'too many leaves for .*which has 3'):
        tu.tree_unflatten(treedef, [1, 2, 3, 4])


def test_compose():
    outer, inner = tu.tree_structure([0, 0]), tu.tree_structure({'a': 0, 'b': 0})
    assert outer.compose(inner) == tu.tree_structure([{'a': 1, 'b': 2}, {'a': 3, 'b': 4}])


# ---- key paths ----

def test_leaves_with_path_as_documented_by_jax():
    got = tu.tree_leaves_with_path([1, {'x': 3}])
    assert got == [((SequenceKey(0),), 1), ((SequenceKey(1), DictKey('x')), 3)]
    assert repr(got) == "[((SequenceKey(idx=0),), 1), ((SequenceKey(idx=1), DictKey(key='x')), 3)]"
    pairs, treedef = tu.tree_flatten_with_path([1, {'x': 3}])
    assert pairs == got and treedef == tu.tree_structure([1, {'x': 3}])


def test_keystr_as_documented_by_jax():
    params = {'foo': {'bar': {'baz': 1, 'bat': [2, 3]}}}
    paths = [path for path, _ in tu.tree_leaves_with_path(params)]
    assert [tu.keystr(p) for p in paths] == ["['foo']['bar']['bat'][0]",
                                             "['foo']['bar']['bat'][1]", "['foo']['bar']['baz']"]
    assert [tu.keystr(p, simple=True, separator='/') for p in paths] == [
        'foo/bar/bat/0', 'foo/bar/bat/1', 'foo/bar/baz']


def test_keys_of_each_node_type():
    tree = (Pair(a=1.0, b=None), Box(2.0, 3.0), Layer(4.0, 5.0), tu.Partial(max, 6.0, key=7.0))
    paths = [tu.keystr(path) for path, _ in tu.tree_leaves_with_path(tree)]
    assert paths == ['[0].a', '[1][<flat index 0>]', '[1][<flat index 1>]', '[2].w', '[2].b',
                     '[3][<flat index 0>][0]', "[3][<flat index 1>]['key']"]
    assert repr(FlattenedIndexKey(1)) == 'FlattenedIndexKey(key=1)'
    assert repr(GetAttrKey('w')) == "GetAttrKey(name='w')"
    assert str(DictKey(1)) == '[1]' and tu.keystr((DictKey(1), 'any'), simple=True) == '1any'


def test_is_leaf_ends_a_path():
    tree = {'a': [1, 2], 'b': (3, [4])}
    got = tu.tree_leaves_with_path(tree, is_leaf=lambda x: isinstance(x, list))
    assert got == [((DictKey('a'),), [1, 2]), ((DictKey('b'), SequenceKey(0)), 3),
                   ((DictKey('b'), SequenceKey(1)), [4])]


def test_tree_map_with_path():
    tree, other = {'a': 1, 'b': (2, 3)}, {'a': 10, 'b': (20, 30)}
    got = tu.tree_map_with_path(lambda path, x, y: (tu.keystr(path), x + y), tree, other)
    assert got == {'a': ("['a']", 11), 'b': (("['b'][0]", 22), ("['b'][1]", 33))}
    whole = tu.tree_map_with_path(lambda path, x: (len(path), x), tree,
                                  is_leaf=lambda x: isinstance(x, tuple))
    assert whole == {'a': (1, 1), 'b': (1, (2, 3))}


# ---- OrderedDict and defaultdict: nodes, as in JAX ----

OD = collections.OrderedDict


def test_an_ordered_dict_is_a_node_in_its_own_order():
    tree = OD([('b', 1.0), ('a', [2.0, 3.0])])
    leaves, treedef = tu.tree_flatten(tree)
    assert leaves == [1.0, 2.0, 3.0]                          # insertion order, not sorted
    rebuilt = tu.tree_unflatten(treedef, [4.0, 5.0, 6.0])
    assert type(rebuilt) is OD and list(rebuilt.items()) == [('b', 4.0), ('a', [5.0, 6.0])]
    doubled = tu.tree_map(lambda x: 2 * x, tree)
    assert type(doubled) is OD and list(doubled) == ['b', 'a'] and doubled['a'] == [4.0, 6.0]
    # the order is part of the structure; a dict is another node type
    assert treedef != tu.tree_structure(OD([('a', [0, 0]), ('b', 0)]))
    assert treedef != tu.tree_structure({'b': 0, 'a': [0, 0]})
    with pytest.raises(ValueError, match='structure mismatch'):
        tu.tree_map(lambda x, y: x, tree, {'b': 1.0, 'a': [2.0, 3.0]})
    paths = [path for path, _ in tu.tree_leaves_with_path(tree)]
    assert paths == [(DictKey('b'),), (DictKey('a'), SequenceKey(0)),
                     (DictKey('a'), SequenceKey(1))]
    assert tu.keystr(paths[1]) == "['a'][0]"
    assert tu.tree_leaves(OD()) == [] and tu.treedef_is_leaf(tu.tree_structure(OD()))


def test_a_defaultdict_is_a_node_with_sorted_keys_and_its_factory():
    tree = collections.defaultdict(list, {'b': 1.0, 'a': 2.0})
    leaves, treedef = tu.tree_flatten(tree)
    assert leaves == [2.0, 1.0]                               # sorted, as a dict's
    tripled = tu.tree_map(lambda x: 3 * x, tree)
    assert type(tripled) is collections.defaultdict and tripled.default_factory is list
    assert dict(tripled) == {'a': 6.0, 'b': 3.0} and tripled['new'] == []
    rebuilt = treedef.unflatten([7.0, 8.0])
    assert rebuilt.default_factory is list and dict(rebuilt) == {'a': 7.0, 'b': 8.0}
    assert treedef != tu.tree_structure(collections.defaultdict(int, {'b': 0, 'a': 0}))
    assert [tu.keystr(p) for p, _ in tu.tree_leaves_with_path(tree)] == ["['a']", "['b']"]


def test_tree_map_takes_the_first_tree_as_a_prefix_of_the_others():
    # where the first tree has a leaf, f gets the others' whole subtree (JAX's example)
    got = tu.tree_map(lambda a, b: (a, b), [1.0, 2.0], [(3.0, 4.0), 5.0])
    assert got == [(1.0, (3.0, 4.0)), (2.0, 5.0)]
    got = tu.tree_map(lambda a, b, c: a + len(b) + c['x'], {'k': 1.0}, {'k': [0, 0]},
                      {'k': {'x': 10.0}})
    assert got == {'k': 13.0}
    assert tu.tree_map(lambda a, b: (a, b), [1.0, None], [(3.0,), None]) == [(1.0, (3.0,)), None]
    got = tu.tree_map_with_path(lambda path, a, b: (tu.keystr(path), b), (1.0,), ([2.0, 3.0],))
    assert got == (('[0]', [2.0, 3.0]),)
    # a node of the first tree must be there in the others: the error names where
    with pytest.raises(ValueError, match=r'structure mismatch at \[1\]:.*PyTreeDef\(\[\*\]\)'):
        tu.tree_map(lambda a, b: a, [1.0, [2.0]], [(3.0, 4.0), 5.0])
    with pytest.raises(ValueError, match=r'structure mismatch at \[1\]'):
        tu.tree_map(lambda a, b: a, [1.0, None], [3.0, 5.0])
    with pytest.raises(ValueError, match='structure mismatch'):
        tu.tree_map(lambda a, b: a, (1.0, 2.0), [1.0, 2.0])


def test_treedef_text_as_jax_writes_it():
    cases = [({'a': [1, 2], 'b': None}, "PyTreeDef({'a': [*, *], 'b': None})"),
             ((1,), 'PyTreeDef((*,))'), ((), 'PyTreeDef(())'), ([], 'PyTreeDef([])'),
             ({}, 'PyTreeDef({})'), (None, 'PyTreeDef(None)'), (1.0, 'PyTreeDef(*)'),
             (Pair(1, [2]), 'PyTreeDef(CustomNode(namedtuple[Pair], [*, [*]]))'),
             (OD(a=1), "PyTreeDef(CustomNode(OrderedDict[('a',)], [*]))"),
             (collections.defaultdict(list, a=1),
              "PyTreeDef(CustomNode(defaultdict[(<class 'list'>, ('a',))], [*]))"),
             (Scaled(1.0, 2), 'PyTreeDef(CustomNode(Scaled[2], [*]))')]
    for tree, text in cases:
        assert repr(tu.tree_structure(tree)) == text
        assert str(tu.tree_structure(tree)) == text


# ---- Partial ----

def test_partial_is_a_pytree_of_its_arguments():
    add = tu.Partial(np.add, np.ones(2))
    np.testing.assert_array_equal(add(np.arange(2.0)), [1.0, 2.0])
    leaves, treedef = tu.tree_flatten(tu.Partial(np.clip, 1.0, a_max=2.0))
    assert leaves == [1.0, 2.0]
    doubled = tu.tree_unflatten(treedef, [5.0, 3.0])
    assert isinstance(doubled, tu.Partial) and doubled.func is np.clip
    assert doubled(a_min=0.0) == functools.partial(np.clip, 5.0, a_min=0.0, a_max=3.0)()
    assert tu.tree_map(lambda x: 2 * x, add).args[0].tolist() == [2.0, 2.0]


# ---- codax.tree ----

ALIASES = {'map': 'tree_map', 'leaves': 'tree_leaves', 'structure': 'tree_structure',
           'flatten': 'tree_flatten', 'unflatten': 'tree_unflatten', 'reduce': 'tree_reduce',
           'all': 'tree_all', 'transpose': 'tree_transpose', 'map_with_path': 'tree_map_with_path',
           'leaves_with_path': 'tree_leaves_with_path',
           'flatten_with_path': 'tree_flatten_with_path'}


def test_codax_tree_names_the_tree_util_functions():
    assert sorted(codax.tree.__all__) == sorted(ALIASES)
    for short, long in ALIASES.items():
        assert getattr(codax.tree, short) is getattr(tu, long)
    assert codax.tree.reduce(operator.mul, {'a': 2, 'b': [3, 4]}) == 24


# ---- inside transformed functions (flattening order: 'b' before 'w') ----

def scaled_square(total, x):
    return total + np.sum(np.tanh(x) * x)


def reduce_add(p):
    return np.sum(tu.tree_reduce(operator.add, tu.tree_map(np.sin, p['b'])) * p['w'][:2])


def reduce_add_plain(p):
    return np.sum((np.sin(p['b'][0]) + np.sin(p['b'][1])) * p['w'][:2])


def reduce_lambda(p):
    return tu.tree_reduce(lambda total, x: total + np.sum(x ** 3), p, 0.5)


def reduce_lambda_plain(p):
    return 0.5 + np.sum(p['b'][0] ** 3) + np.sum(p['b'][1] ** 3) + np.sum(p['w'] ** 3)


def reduce_def(p):
    return tu.tree_reduce(scaled_square, p, 1.5)


def reduce_def_plain(p):
    return 1.5 + sum(np.sum(np.tanh(x) * x) for x in (p['b'][0], p['b'][1], p['w']))


def reduce_maximum(p):
    return np.sum(codax.tree.reduce(np.maximum, p['b']) ** 2)


def reduce_maximum_plain(p):
    return np.sum(np.maximum(p['b'][0], p['b'][1]) ** 2)


def is_list(x):
    return isinstance(x, list)


def stacked_cubes(total, x):
    return total + np.sum(np.asarray(x) ** 3)


def reduce_is_leaf(p):
    return tu.tree_reduce(stacked_cubes, p, 0.0, is_list)


def reduce_is_leaf_plain(p):
    return np.sum(p['w'] ** 3) + np.sum(np.asarray(p['b']) ** 3)


def leaves_with_path(p):
    s = 0.0
    for path, x in tu.tree_leaves_with_path(p):
        if tu.keystr(path) == "['w']":
            s = s + np.sum(x ** 3)
        else:
            s = s + np.sum(np.sin(x)) * len(path)
    return s


def leaves_with_path_plain(p):
    return np.sum(p['w'] ** 3) + 2 * (np.sum(np.sin(p['b'][0])) + np.sum(np.sin(p['b'][1])))


def flatten_with_path(p):
    pairs, treedef = tu.tree_flatten_with_path(p)
    q = tu.tree_unflatten(treedef, [pair[1] * len(pair[0]) for pair in pairs])
    return np.sum(q['b'][1] * q['w'][1:]) * len(pairs)


def flatten_with_path_plain(p):
    return np.sum(2 * p['b'][1] * p['w'][1:]) * 3


def flatten_with_path_indexed(p):
    pairs, treedef = tu.tree_flatten_with_path(p)
    return np.sum(pairs[2][1][1:] * pairs[0][1])


def flatten_with_path_indexed_plain(p):
    return np.sum(p['w'][1:] * p['b'][0])


def path_weight(path, x):
    return x * (len(path) + 1.0)


def map_with_path(p):
    q = codax.tree.map_with_path(path_weight, p)
    return np.sum(q['b'][1] ** 2) + np.sum(np.cos(q['w']))


def map_with_path_plain(p):
    return np.sum((3 * p['b'][1]) ** 2) + np.sum(np.cos(2 * p['w']))


def path_dot(path, x, y):
    return np.sum(np.asarray(x) * np.asarray(y)) * len(path)


def map_with_path_is_leaf(p):
    q = tu.tree_map_with_path(path_dot, p, p, is_leaf=is_list)
    return q['w'] * q['b']


def map_with_path_is_leaf_plain(p):
    return np.sum(p['w'] ** 2) * (np.sum(p['b'][0] ** 2) + np.sum(p['b'][1] ** 2))


def is_finite(x):
    return np.all(np.isfinite(x))


def all_finite(p):
    return np.sum(p['w'] ** 2) * tu.tree_all(tu.tree_map(is_finite, p['b']))


def all_finite_plain(p):
    return np.sum(p['w'] ** 2)


def transposed(p):
    pairs = [(p['w'][:2], p['b'][0]), (np.sin(p['w'][1:]), p['b'][1])]
    flipped = tu.tree_transpose(tu.tree_structure([0, 0]), tu.tree_structure((0, 0)), pairs)
    return np.sum(flipped[0][1] * flipped[1][0])


def transposed_plain(p):
    return np.sum(np.sin(p['w'][1:]) * p['b'][0])


def scaled_total(a, b):
    return a * sum(tu.tree_leaves(b))


def prefix_map(p):
    # the first tree a prefix: its first leaf meets a pair, its second a leaf
    q = tu.tree_map(scaled_total, p['b'], [(p['w'][:2], np.sin(p['w'][1:])), p['w'][1:]])
    return np.sum(q[0] * q[1])


def prefix_map_plain(p):
    first = p['b'][0] * (p['w'][:2] + np.sin(p['w'][1:]))
    return np.sum(first * p['b'][1] * p['w'][1:])


CASES = {
    'tree_map with a prefix': (prefix_map, prefix_map_plain),
    'tree_reduce(operator.add)': (reduce_add, reduce_add_plain),
    'tree_reduce(lambda)': (reduce_lambda, reduce_lambda_plain),
    'tree_reduce(def)': (reduce_def, reduce_def_plain),
    'tree.reduce(np.maximum)': (reduce_maximum, reduce_maximum_plain),
    'tree_reduce with is_leaf': (reduce_is_leaf, reduce_is_leaf_plain),
    'tree_leaves_with_path': (leaves_with_path, leaves_with_path_plain),
    'tree_flatten_with_path': (flatten_with_path, flatten_with_path_plain),
    'tree_flatten_with_path, indexed': (flatten_with_path_indexed,
                                        flatten_with_path_indexed_plain),
    'tree.map_with_path': (map_with_path, map_with_path_plain),
    'tree_map_with_path with is_leaf': (map_with_path_is_leaf, map_with_path_is_leaf_plain),
    'tree_all': (all_finite, all_finite_plain),
    'tree_transpose': (transposed, transposed_plain),
}
case = pytest.mark.parametrize('name', list(CASES))


def _directional(f, eps=1e-6):
    """d/de f(P + e T) by central differences."""
    def at(e):
        return f(tu.tree_map(lambda x, t: x + e * t, P, T))
    return (at(eps) - at(-eps)) / (2 * eps)


@case
def test_grad_against_finite_differences(name):
    f, plain = CASES[name]
    assert np.isclose(f(P), plain(P), rtol=1e-12)
    assert_tree_allclose(codax.grad(f)(P), numeric_grad(plain, (P,)), rtol=RTOL, atol=ATOL)


@case
def test_jvp_against_finite_differences(name):
    f, plain = CASES[name]
    value, tangent = codax.jvp(f, (P,), (T,))
    assert np.isclose(value, plain(P), rtol=1e-12)
    assert np.isclose(tangent, _directional(plain), rtol=RTOL, atol=ATOL)


@case
def test_hessian_against_differences_of_the_gradient(name):
    f, plain = CASES[name]
    got = codax.hessian(f)(P)['w']            # the rows d/dw_i of the gradient
    grad, eps = codax.grad(plain), 1e-5
    for i in range(3):
        d = np.zeros(3)
        d[i] = eps
        up, down = (grad({'w': P['w'] + s * d, 'b': P['b']}) for s in (1, -1))
        want = tu.tree_map(lambda u, v: (u - v) / (2 * eps), up, down)
        assert_tree_allclose(tu.tree_map(lambda block: block[i], got), want,
                             rtol=1e-5, atol=1e-7)


@case
def test_jit(name):
    f, plain = CASES[name]
    assert np.isclose(codax.jit(f)(P), plain(P), rtol=1e-12)
    assert_tree_allclose(codax.jit(codax.grad(f))(P), numeric_grad(plain, (P,)),
                         rtol=RTOL, atol=ATOL)


# vmap loops over a call of these per example and knows nothing of the list
# it returns, so iterating over that list in the batched code fails (as it
# does for a list that tree_map returns)
vmap_case = pytest.mark.parametrize('name', list(CASES))


@vmap_case
def test_vmap_against_a_loop(name):
    f, plain = CASES[name]
    got = codax.vmap(f, in_axes=IN_AXES)({'w': W_BATCH, 'b': P['b']})
    want = [plain({'w': w, 'b': P['b']}) for w in W_BATCH]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def reduce_by_keyword(p):
    return tu.tree_reduce(scaled_square, p, initializer=1.5)


def test_tree_reduce_by_keyword():
    want = numeric_grad(reduce_def_plain, (P,))
    assert_tree_allclose(codax.grad(reduce_by_keyword)(P), want, rtol=RTOL, atol=ATOL)
    got = codax.vmap(reduce_by_keyword, in_axes=IN_AXES)({'w': W_BATCH, 'b': P['b']})
    np.testing.assert_allclose(got, [reduce_def_plain({'w': w, 'b': P['b']}) for w in W_BATCH],
                               rtol=1e-12)


def reduce_empty(p):
    return tu.tree_reduce(operator.add, p['none']) + np.sum(p['w'])


def test_tree_reduce_of_no_leaves_inside_grad():
    with pytest.raises(TypeError, match='no leaves needs an initializer'):
        codax.grad(reduce_empty)({'w': P['w'], 'none': [None]})


def unflatten_method(p):
    leaves, treedef = tu.tree_flatten(p)
    return np.sum(treedef.unflatten([2 * x for x in leaves])['w'])


def test_treedef_methods_are_not_differentiated():
    """treedef.unflatten has no rule: tree_unflatten(treedef, leaves) is the one to use."""
    assert np.isclose(codax.jit(unflatten_method)(P), 2 * np.sum(P['w']))
    with pytest.raises(codax.SourceError, match=r'test_tree_util_api.py:\d+.*the method '
                       r'\.unflatten\(\) has no derivative rule'):
        codax.grad(unflatten_method)(P)


# ---- OrderedDict and defaultdict arguments and results of transformed functions ----

def od_loss(p):
    return np.sum(np.sin(p['w'][:2]) * p['b'][0]) + np.sum(p['b'][1] ** 2)


def od_loss_leaves(p):
    w, b0, b1 = tu.tree_leaves(p)                 # an OrderedDict's own order: 'w' first
    return np.sum(np.sin(w[:2]) * b0) + np.sum(b1 ** 2)


def dd_loss_leaves(p):
    b0, b1, w = tu.tree_leaves(p)                 # a defaultdict's sorted order
    return np.sum(np.sin(w[:2]) * b0) + np.sum(b1 ** 2)


def od_scaled(p):
    return tu.tree_map(lambda x: x * 2.0, p)


def od_identity(p):
    return p


def _ordered(p):
    return OD([('w', p['w']), ('b', p['b'])])                 # not the sorted order


def _defaulted(p):
    return collections.defaultdict(list, {'w': p['w'], 'b': p['b']})


def _same_kind(out, tree):
    """Whether `out` is a dict of `tree`'s type (an OrderedDict in its order, a
    defaultdict with its default_factory) with its keys."""
    return type(out) is type(tree) and getattr(out, 'default_factory', None) is getattr(
        tree, 'default_factory', None) and (list(out) == list(tree) if type(tree) is OD
                                            else set(out) == set(tree))


def _as_dict(tree):
    """The same values in plain dicts (the reference the plain functions take)."""
    return {'w': tree['w'], 'b': tree['b']}


def test_ordered_dict_and_defaultdict_arguments_of_grad_jvp_jit():
    want = numeric_grad(od_loss, (P,))
    for make, leaves_loss in ((_ordered, od_loss_leaves), (_defaulted, dd_loss_leaves)):
        p, t = make(P), make(T)
        for f in (od_loss, leaves_loss):
            assert np.isclose(f(p), od_loss(P), rtol=1e-12)
            assert_tree_allclose(_as_dict(codax.grad(f)(p)), want, rtol=RTOL, atol=ATOL)
            value, tangent = codax.jvp(f, (p,), (t,))
            assert np.isclose(tangent, _directional(od_loss), rtol=RTOL, atol=ATOL)
            assert np.isclose(codax.jit(f)(p), od_loss(P), rtol=1e-12)
        out = codax.jit(od_scaled)(p)
        assert _same_kind(out, p)
        assert_tree_allclose(_as_dict(out), tu.tree_map(lambda x: 2 * x, P))


def test_vmap_over_an_ordered_dict_and_a_defaultdict():
    for make in (_ordered, _defaulted):
        batch = make({'w': W_BATCH, 'b': [np.stack([P['b'][0]] * 4), np.stack([P['b'][1]] * 4)]})
        got = codax.vmap(od_loss)(batch)
        np.testing.assert_allclose(got, [od_loss({'w': w, 'b': P['b']}) for w in W_BATCH],
                                   rtol=1e-12)
        for f in (od_identity, od_scaled):
            out = codax.vmap(f)(batch)
            assert _same_kind(out, batch)
            assert_tree_allclose(_as_dict(out), _as_dict(f(batch)), rtol=1e-12)
        # an in_axes prefix for the dict: only 'w' batched
        got = codax.vmap(od_loss, in_axes=(make({'w': 0, 'b': None}),))(make(
            {'w': W_BATCH, 'b': P['b']}))
        np.testing.assert_allclose(got, [od_loss({'w': w, 'b': P['b']}) for w in W_BATCH],
                                   rtol=1e-12)


def test_derivatives_of_an_ordered_dict_are_ordered_dicts():
    want = numeric_grad(od_loss, (P,))
    for make in (_ordered, _defaulted):
        p = make(P)
        for got in (codax.grad(od_loss)(p), codax.vjp(od_loss, p)[1](1.0)[0],
                    codax.jacrev(od_loss)(p), codax.jacfwd(od_loss)(p)):
            assert _same_kind(got, p)
            assert_tree_allclose(_as_dict(got), want, rtol=RTOL, atol=ATOL)
        assert _same_kind(codax.jvp(od_identity, (p,), (make(T),))[1], p)
        per_example = codax.vmap(codax.grad(od_loss), in_axes=(make({'w': 0, 'b': None}),))(
            make({'w': W_BATCH, 'b': P['b']}))
        assert _same_kind(per_example, p)
        for k, w in enumerate(W_BATCH):
            one = numeric_grad(od_loss, ({'w': w, 'b': P['b']},))
            assert_tree_allclose(tu.tree_map(lambda x: x[k], _as_dict(per_example)), one,
                                 rtol=RTOL, atol=ATOL)


def test_vmap_of_tree_functions_over_an_ordered_dict_with_some_leaves_shared():
    """The batched code pairs the OrderedDict's leaves with their axes in its own order."""
    batch = _ordered({'w': W_BATCH, 'b': P['b']})
    got = codax.vmap(od_loss_leaves, in_axes=(_ordered({'w': 0, 'b': None}),))(batch)
    np.testing.assert_allclose(got, [od_loss({'w': w, 'b': P['b']}) for w in W_BATCH],
                               rtol=1e-12)
    out = codax.vmap(od_scaled, in_axes=(_ordered({'w': 0, 'b': None}),))(batch)
    assert type(out) is OD and list(out) == ['w', 'b']
    np.testing.assert_allclose(out['w'], 2 * W_BATCH)
    np.testing.assert_allclose(out['b'][0], np.stack([2 * P['b'][0]] * 4))


def test_every_transformation_gives_derivatives_of_an_ordered_dict_its_type():
    """value_and_grad, hessian (both levels), vmap of jvp and of grad: an
    OrderedDict in, an OrderedDict out, in its order; a defaultdict keeps its
    default_factory."""
    want = numeric_grad(od_loss, (P,))
    for make in (_ordered, _defaulted):
        p = make(P)
        value, grad = codax.value_and_grad(od_loss)(p)
        assert np.isclose(value, od_loss(P)) and _same_kind(grad, p)
        assert_tree_allclose(_as_dict(grad), want, rtol=RTOL, atol=ATOL)
        hess = codax.hessian(od_loss)(p)
        assert _same_kind(hess, p) and _same_kind(hess['w'], p)
        # d/dw of d/dw: the derivative of grad's 'w' entry by finite differences
        column = numeric_grad(lambda q: codax.grad(od_loss)(make(q))['w'][1], (P,))
        np.testing.assert_allclose(hess['w']['w'][1], column['w'], rtol=1e-5, atol=1e-7)
        batch = make({'w': W_BATCH, 'b': [np.stack([P['b'][0]] * 4), np.stack([P['b'][1]] * 4)]})
        tangents = codax.vmap(lambda q: codax.jvp(od_scaled, (q,), (q,))[1])(batch)
        assert _same_kind(tangents, p)
        np.testing.assert_allclose(tangents['w'], 2 * W_BATCH)


def test_derivatives_of_a_plain_dict_keep_its_insertion_order():
    """A plain dict is flattened in sorted key order (as in JAX), but rebuilt in
    its own insertion order, where JAX rebuilds it sorted (docs/toolbox.md)."""
    p = {'w': P['w'], 'b': P['b']}
    assert tu.tree_leaves(p)[0] is P['b'][0]
    for got in (codax.grad(od_loss)(p), codax.jvp(od_identity, (p,), (p,))[1],
                codax.jacrev(od_loss)(p), tu.tree_map(lambda x: x, p)):
        assert list(got) == ['w', 'b']

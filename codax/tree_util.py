"""Pytrees, as in jax.tree_util.

Inside a function that codax transforms, tree_flatten, tree_unflatten,
tree_leaves and tree_structure are primitives with derivative and batching
rules (runtime/primitives/trees.py). tree_map, tree_map_with_path and
tree_reduce call a function, so no rule can say their derivative: codax
differentiates them through a Python definition instead, written for the
call's arguments (one per number of trees, as codax transforms no *args),
which loops over the leaves with those primitives. tree_all,
tree_leaves_with_path and tree_flatten_with_path are defined the same way;
their key paths come from the structure alone (treedef.key_paths(), a call
with nothing to differentiate). A call of tree_map (tree_map_with_path) with
is_leaf becomes, in transformed code, a call of rt.tree_map_is_leaf(is_leaf,
f, tree, *rest) (rt.tree_map_with_path_is_leaf), every argument by position,
defined the same way.
"""
import functools
import operator

import numpy

import runtime
from runtime import tree as _tree
from runtime.tree import (DictKey, FlattenedIndexKey, GetAttrKey, PyTreeDef,  # noqa: F401
                          SequenceKey, all_leaves, keystr, register_dataclass,
                          register_pytree_node, register_pytree_node_class, register_static,
                          tree_all, tree_flatten, tree_flatten_with_path, tree_leaves,
                          tree_leaves_with_path, tree_map_with_path, tree_reduce,
                          tree_structure, tree_transpose, tree_unflatten, treedef_children,
                          treedef_is_leaf)
from runtime.sources import define

__all__ = ['DictKey', 'FlattenedIndexKey', 'GetAttrKey', 'Partial', 'PyTreeDef', 'SequenceKey',
           'all_leaves', 'keystr', 'register_dataclass', 'register_pytree_node',
           'register_pytree_node_class', 'register_static', 'tree_all', 'tree_flatten',
           'tree_flatten_with_path', 'tree_leaves', 'tree_leaves_with_path', 'tree_map',
           'tree_map_with_path', 'tree_reduce', 'tree_structure', 'tree_transpose',
           'tree_unflatten', 'treedef_children', 'treedef_is_leaf']


def tree_map(f, tree, *rest, is_leaf=None):
    """The tree of `f(leaf, *parts of rest at the same place)`: `tree` is a
    prefix of every tree in `rest`, and where it has a leaf, their whole
    subtrees there are passed to f (as in JAX)."""
    return _tree.tree_map(f, tree, *rest, is_leaf=is_leaf)


class Partial(functools.partial):
    """functools.partial as a pytree: its bound positional and keyword
    arguments are its children, its function is auxiliary data."""


register_pytree_node(Partial, lambda p: ((p.args, p.keywords), p.func),
                     lambda func, children: Partial(func, *children[0], **children[1]))


# ---- what transformations see of the functions that take a function ----

class _Definitions:
    """Like a transformed function, it stands for the plain Python function
    that function_for(args) returns: the definition `write(variant(args))`
    gives as (name, source, file name), made once per variant."""

    def __init__(self, fun, write, variant=lambda args: None):
        self.fun = fun             # the function behind it, for its signature
        self._write, self._variant = write, variant
        self._made = {}

    def function_for(self, args):
        key = self._variant(args)
        if key not in self._made:
            self._made[key] = _compiled(*self._write(key))
        return self._made[key]


def _compiled(name, text, filename):
    return define(text, filename, {'rt': runtime, 'numpy': numpy})[name]


def _map_definition(variant, is_leaf, with_path=False):
    """tree_map (tree_map_with_path) over `count` trees as Python that codax
    reads and transforms; with `is_leaf`, that of its stand-in taking the
    predicate first. `same`: whether the further trees have the first one's
    structure; if not, it is a prefix of theirs."""
    count, same = variant
    base = 'tree_map_with_path' if with_path else 'tree_map'
    name = f'{base}{"_is_leaf" if is_leaf else ""}_{count}{"" if same else "_prefix"}'
    predicate = ', is_leaf' if is_leaf else ''
    trees = ['tree'] + [f'tree{i}' for i in range(1, count)]
    leaves = ['leaves'] + [f'leaves{i}' for i in range(1, count)]
    # a leaf of the first tree may be a subtree of the others (treedef_subtrees
    # tells vmap less of them, so it is kept for the trees that need it)
    take = 'rt.treedef_leaves' if same else 'rt.treedef_subtrees'
    further = ''.join(f'    {leaf} = {take}(treedef, {t})\n'
                      for leaf, t in zip(leaves[1:], trees[1:]))
    if with_path:    # tree_structure's treedef: tree_flatten's counts as differentiated
        further += f'    paths = rt.tree_structure(tree{predicate}).key_paths()\n'
    columns = ['paths'] * with_path + leaves
    # zip over one list would give 1-tuples: a single list is walked directly
    xs = [f'x{i}' for i in range(len(columns))] if len(columns) > 1 else ['x']
    loop = f'x in {columns[0]}' if len(columns) == 1 \
        else f'{", ".join(xs)} in zip({", ".join(columns)})'
    text = (f'def {name}({"is_leaf, " if is_leaf else ""}f, {", ".join(trees)}):\n'
            f'    leaves, treedef = rt.tree_flatten(tree{predicate})\n'
            f'{further}'
            f'    out = []\n'
            f'    for {loop}:\n'
            f'        out.append(f({", ".join(xs)}))\n'
            f'    return rt.tree_unflatten(treedef, out)\n')
    filename = f'<codax definition of {base} over {count} tree{"s" if count > 1 else ""}' \
        f'{" with is_leaf" if is_leaf else ""}{"" if same else ", the first a prefix"}>'
    return name, text, filename


def _count_trees(is_leaf):
    """How many trees a call of tree_map (or its stand-in with is_leaf) maps
    over, and whether the further trees have the first one's structure."""
    def variant(args):
        trees = args[1 + is_leaf:]
        if is_leaf:
            return len(trees), False
        first = tree_structure(trees[0]) if trees else None
        return len(trees), all(tree_structure(t) == first for t in trees[1:])
    return variant


# Binary operators as functions: the definition writes the operator, which
# codax differentiates, rather than a call of a builtin it cannot read.
_OPERATORS = ((operator.add, '+'), (operator.sub, '-'), (operator.mul, '*'),
              (operator.truediv, '/'), (operator.matmul, '@'))


def _reduce_variant(args):
    function, tree, initializer, is_leaf = args
    given = initializer is not _tree.NO_INITIALIZER
    if not given and not tree_leaves(tree, is_leaf):
        raise TypeError('tree_reduce() of a tree with no leaves needs an initializer')
    return given, next((symbol for op, symbol in _OPERATORS if function is op), None)


def _reduce_definition(variant):
    given, symbol = variant
    step = f'out {symbol} x' if symbol else 'function(out, x)'
    first = ('    out = initializer\n    for x in leaves:\n' if given
             else '    out = leaves[0]\n    for x in leaves[1:]:\n')
    text = ('def tree_reduce(function, tree, initializer, is_leaf):\n'
            '    leaves = rt.tree_leaves(tree, is_leaf)\n'
            f'{first}'
            f'        out = {step}\n'
            '    return out\n')
    how = f'with {symbol}' if symbol else 'calling the function'
    return 'tree_reduce', text, \
        f'<codax definition of tree_reduce {how}{"" if given else ", no initializer"}>'


def _all_definition(_):
    # bool() of each leaf first: it has no derivative, so neither has all()
    text = ('def tree_all(tree, is_leaf):\n'
            '    return all([bool(x) for x in rt.tree_leaves(tree, is_leaf)])\n')
    return 'tree_all', text, '<codax definition of tree_all>'


def _with_path_definition(name, result):
    def write(_):
        text = (f'def {name}(tree, is_leaf):\n'
                '    leaves, treedef = rt.tree_flatten(tree, is_leaf)\n'
                '    paths = rt.tree_structure(tree, is_leaf).key_paths()\n'
                '    pairs = []\n'
                '    for path, leaf in zip(paths, leaves):\n'
                '        pairs.append((path, leaf))\n'
                f'    return {result}\n')
        return name, text, f'<codax definition of {name}>'
    return write


tree_map.__codax_transformed__ = _Definitions(
    _tree.tree_map, lambda variant: _map_definition(variant, False), _count_trees(False))
_tree.tree_map_is_leaf.__codax_transformed__ = _Definitions(
    _tree.tree_map_is_leaf, lambda variant: _map_definition(variant, True), _count_trees(True))
tree_map_with_path.__codax_transformed__ = _Definitions(
    tree_map_with_path, lambda variant: _map_definition(variant, False, True),
    _count_trees(False))
_tree.tree_map_with_path_is_leaf.__codax_transformed__ = _Definitions(
    _tree.tree_map_with_path_is_leaf, lambda variant: _map_definition(variant, True, True),
    _count_trees(True))
tree_reduce.__codax_transformed__ = _Definitions(tree_reduce, _reduce_definition, _reduce_variant)
tree_all.__codax_transformed__ = _Definitions(tree_all, _all_definition)
tree_leaves_with_path.__codax_transformed__ = _Definitions(
    tree_leaves_with_path, _with_path_definition('tree_leaves_with_path', 'pairs'))
tree_flatten_with_path.__codax_transformed__ = _Definitions(
    tree_flatten_with_path, _with_path_definition('tree_flatten_with_path', 'pairs, treedef'))

# in transformed code a call with is_leaf is one of these (transformer/normalize.py)
tree_map.__codax_keywords_first__ = _tree.tree_map_is_leaf
tree_map_with_path.__codax_keywords_first__ = _tree.tree_map_with_path_is_leaf

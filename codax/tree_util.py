"""Pytrees, as in jax.tree_util.

Inside a function that codax transforms, tree_flatten, tree_unflatten,
tree_leaves and tree_structure are primitives with derivative and batching
rules (runtime/primitives/trees.py). tree_map calls a function, so no rule can
say its derivative: codax differentiates it through a Python definition
instead, one per number of trees (codax transforms no *args), which loops
over the leaves with those primitives. A call with is_leaf becomes, in
transformed code, a call of rt.tree_map_is_leaf(is_leaf, f, tree, *rest),
every argument by position, defined the same way.
"""
import linecache

import runtime
from runtime import tree as _tree
from runtime.tree import (PyTreeDef, register_pytree_node, tree_flatten, tree_leaves,  # noqa: F401
                          tree_structure, tree_unflatten)

__all__ = ['PyTreeDef', 'register_pytree_node', 'tree_flatten', 'tree_leaves', 'tree_map',
           'tree_structure', 'tree_unflatten']


def tree_map(f, tree, *rest, is_leaf=None):
    """The tree of `f(leaf, *leaves of rest at the same place)`: every tree in
    `rest` has the structure of `tree`."""
    return _tree.tree_map(f, tree, *rest, is_leaf=is_leaf)


class _Definitions:
    """What transformations see of tree_map (or, `is_leaf` true, of
    rt.tree_map_is_leaf): like a transformed function, it stands for the plain
    Python function that function_for(args) returns."""

    def __init__(self, is_leaf):
        self.is_leaf = is_leaf
        # the function behind it, for its signature
        self.fun = _tree.tree_map_is_leaf if is_leaf else _tree.tree_map
        self._made = {}

    def function_for(self, args):
        count = len(args) - 1 - self.is_leaf
        if count not in self._made:
            self._made[count] = _definition(count, self.is_leaf)
        return self._made[count]


def _definition(count, is_leaf):
    """tree_map over `count` trees as Python that codax reads and transforms;
    with `is_leaf`, that of rt.tree_map_is_leaf, the predicate first."""
    name = f'tree_map{"_is_leaf" if is_leaf else ""}_{count}'
    trees = ['tree'] + [f'tree{i}' for i in range(1, count)]
    leaves = ['leaves'] + [f'leaves{i}' for i in range(1, count)]
    # with is_leaf, a leaf of the first tree may be a subtree of the others
    take = 'rt.treedef_subtrees' if is_leaf else 'rt.treedef_leaves'
    further = ''.join(f'    {leaf} = {take}(treedef, {t})\n'
                      for leaf, t in zip(leaves[1:], trees[1:]))
    # zip over one list would give 1-tuples: a single tree is walked directly
    loop = 'x in leaves' if count == 1 else f'{", ".join(f"x{i}" for i in range(count))} ' \
        f'in zip({", ".join(leaves)})'
    call = 'x' if count == 1 else ', '.join(f'x{i}' for i in range(count))
    text = (f'def {name}({"is_leaf, " if is_leaf else ""}f, {", ".join(trees)}):\n'
            f'    leaves, treedef = rt.tree_flatten(tree{", is_leaf" if is_leaf else ""})\n'
            f'{further}'
            f'    out = []\n'
            f'    for {loop}:\n'
            f'        out.append(f({call}))\n'
            f'    return rt.tree_unflatten(treedef, out)\n')
    filename = f'<codax definition of tree_map over {count} tree{"s" if count > 1 else ""}' \
        f'{" with is_leaf" if is_leaf else ""}>'
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace = {'rt': runtime}
    exec(compile(text, filename, 'exec'), namespace)
    return namespace[name]


tree_map.__codax_transformed__ = _Definitions(False)
_tree.tree_map_is_leaf.__codax_transformed__ = _Definitions(True)
# in transformed code a call with is_leaf is one of this (transformer/normalize.py)
tree_map.__codax_keywords_first__ = _tree.tree_map_is_leaf

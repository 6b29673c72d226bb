"""Pytrees, as in jax.tree_util.

Inside a function that codax transforms, tree_flatten, tree_unflatten,
tree_leaves and tree_structure are primitives with derivative and batching
rules (runtime/primitives/trees.py). tree_map calls a function, so no rule can
say its derivative: codax differentiates it through a Python definition
instead, one per number of trees (codax transforms no *args), which loops
over the leaves with those primitives; is_leaf is not supported there.
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


class _KeywordsRefused:
    """What transformations bind a call of tree_map with when it passes keyword
    arguments: they would be lost (a definition takes the trees by position),
    so such a call is refused, with this message."""
    @property
    def __signature__(self):
        raise TypeError('codax supports tree_map inside a transformed function without '
                        'is_leaf (and without keyword arguments); flatten with '
                        'tree_flatten(tree, is_leaf=...) and map over the leaves instead')

    def __call__(self, *args, **kwargs):
        return tree_map(*args, **kwargs)


class _Definitions:
    """What transformations see of tree_map: like a transformed function, it
    stands for the plain Python function that function_for(args) returns."""
    fun = staticmethod(_tree.tree_map)          # the function behind it, for its signature
    _made = {}

    def function_for(self, args):
        count = len(args) - 1
        if count not in self._made:
            self._made[count] = _definition(count)
        return self._made[count]


def _definition(count):
    """tree_map over `count` trees as Python that codax reads and transforms."""
    name = f'tree_map_{count}'
    trees = ['tree'] + [f'tree{i}' for i in range(1, count)]
    leaves = ['leaves'] + [f'leaves{i}' for i in range(1, count)]
    further = ''.join(f'    {leaf} = rt.treedef_leaves(treedef, {t})\n'
                      for leaf, t in zip(leaves[1:], trees[1:]))
    # zip over one list would give 1-tuples: a single tree is walked directly
    loop = 'x in leaves' if count == 1 else f'{", ".join(f"x{i}" for i in range(count))} ' \
        f'in zip({", ".join(leaves)})'
    call = 'x' if count == 1 else ', '.join(f'x{i}' for i in range(count))
    text = (f'def {name}(f, {", ".join(trees)}):\n'
            f'    leaves, treedef = rt.tree_flatten(tree)\n{further}'
            f'    out = []\n'
            f'    for {loop}:\n'
            f'        out.append(f({call}))\n'
            f'    return rt.tree_unflatten(treedef, out)\n')
    filename = f'<codax definition of tree_map over {count} tree{"s" if count > 1 else ""}>'
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace = {'rt': runtime}
    exec(compile(text, filename, 'exec'), namespace)
    return namespace[name]


tree_map.fun = _KeywordsRefused()              # how codax binds keyword arguments
tree_map.__codax_transformed__ = _Definitions()

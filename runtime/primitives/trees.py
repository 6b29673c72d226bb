"""Pytree functions (codax.tree_util) called inside transformed code.

They only move leaves between a tree and a list, so each is linear in its
tree or leaves, and its rules move derivatives the same way along the
primal's structure: derivative_leaves reads a tangent or cotangent tree
(where 0.0 may stand for a subtree) as the list of its leaves,
derivative_tree builds one from such a list. The two are each other's
transpose and are primitives too, so derivatives compose to any order.
tree_map is not here: codax differentiates it through a Python definition
(codax/tree_util.py), which takes the further trees' leaves with
treedef_leaves, or with is_leaf their subtrees with treedef_subtrees: both
move derivatives along the first tree's structure alike. tree_map_with_path,
tree_reduce, tree_all and the *_with_path readers are defined the same way,
from these primitives; their key paths come from tree_structure's treedef,
which carries no derivative."""
from .. import tree
from ..table import batching, linear, nondifferentiable

_LEAVES = 'rt.derivative_leaves({}, {})'
_TREE = 'rt.derivative_tree({}, {})'
_STRUCTURE = 'rt.tree_structure(tree, is_leaf)'


def _tree_op(fn, signature, param, vjp, jvp, prefix=''):
    return linear(prefix + fn.__name__, signature, {param: vjp}, jvp={param: jvp},
                  targets=(fn,), impl=f'rt.{fn.__name__}', family='tree')


_tree_op(tree.tree_leaves, 'tree, is_leaf=None', 'tree',
         _TREE.format('g', _STRUCTURE), _LEAVES.format('t', _STRUCTURE))
# (leaves, treedef): the treedef carries no derivative
_tree_op(tree.tree_flatten, 'tree, is_leaf=None', 'tree',
         _TREE.format('rt.item(g, 0)', 'ans[1]'), f"({_LEAVES.format('t', 'ans[1]')}, 0.0)")
_tree_op(tree.tree_unflatten, 'treedef, leaves', 'leaves',
         _LEAVES.format('g', 'treedef'), _TREE.format('t', 'treedef'))
# the leaves of another tree of the same structure (tree_map's further trees),
# and its subtrees where the first tree has leaves (tree_map's with is_leaf)
for _further in (tree.treedef_leaves, tree.treedef_subtrees):
    _tree_op(_further, 'treedef, tree', 'tree', _TREE.format('g', 'treedef'),
             _LEAVES.format('t', 'treedef'))
# the rules' own helpers (named rt_* like the other runtime helpers)
_tree_op(tree.derivative_leaves, 'cot, treedef', 'cot',
         _TREE.format('g', 'treedef'), _LEAVES.format('t', 'treedef'), 'rt_')
_tree_op(tree.derivative_tree, 'cot, treedef', 'cot',
         _LEAVES.format('g', 'treedef'), _TREE.format('t', 'treedef'), 'rt_')
nondifferentiable('tree_structure', 'tree, is_leaf=None', targets=(tree.tree_structure,),
                  impl='rt.tree_structure')

# The helpers run per example under vmap: broadcasting their trees' leaves
# would make a 0.0 that stands for a subtree a leaf.
batching(tree=('tree_leaves', 'tree_flatten', 'treedef_leaves', 'treedef_subtrees',
               'tree_unflatten', 'tree_structure'),
         loop=('rt_derivative_leaves', 'rt_derivative_tree'))

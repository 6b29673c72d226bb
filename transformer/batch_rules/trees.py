"""Batching rules of codax.tree_util inside vmapped code (runtime/primitives/trees.py)."""
from ..batch import UNKNOWN, Info, container
from .core import ListInfo, _fully_batched, _is_none, _with_args, rule
from .indexing import _broadcast_tree
from runtime.tree import flat_keys


_TREE_DATA = {'tree_leaves': 'tree', 'tree_flatten': 'tree', 'treedef_leaves': 'tree',
              'treedef_subtrees': 'tree', 'tree_unflatten': 'leaves'}


@rule('tree')
def tree_op(b, op, rhs):
    """Tree functions only move leaves, so they commute with batching: the
    leaves of a batched tree are its examples' leaves, batched. Where the pass
    knows a tree leaf by leaf (dicts, lists and tuples of arrays and numbers),
    each leaf's facts carry over; otherwise every leaf is made batched first,
    and so is every leaf of the result."""
    name = op.prim.name
    if name == 'tree_structure':
        return rhs, UNKNOWN                        # the same for every example
    param = _TREE_DATA[name]
    data, info = op.inputs[param], b.info(op.inputs[param])
    if not info.batched:
        return rhs, UNKNOWN
    # (is_leaf, or treedef_subtrees' cut, may end the leaves anywhere in a tree)
    known = _tree_leaf_infos(info) if _is_none(op.inputs.get('is_leaf')) \
        and name != 'treedef_subtrees' else None
    if name != 'tree_unflatten' and known is not None:
        leaves = ListInfo(True, None, tuple(known))
    else:
        if not _fully_batched(info):
            rhs = _with_args(rhs, op, {param: _broadcast_tree(b, data, info)})
        leaves = Info(True, None) if name == 'tree_unflatten' \
            else Info(True, None, None, Info(True, None))
    return rhs, container((leaves, UNKNOWN)) if name == 'tree_flatten' else leaves


def _tree_leaf_infos(info):
    """The Infos of a tree's leaves in tree_flatten's order (dict keys sorted,
    an OrderedDict's in its order, a registered node's children as its
    flatten gives them), or None where a part is not known: a list of
    unknown length, None, a value of unknown rank."""
    if isinstance(info.elts, (tuple, dict)):
        parts = list(info.elts) if isinstance(info.elts, tuple) \
            else [info.elts[k] for k in flat_keys(info.elts)]
        leaves = [_tree_leaf_infos(p) for p in parts]
        return None if None in leaves else [x for part in leaves for x in part]
    if info.item is not None or info.rank is None:
        return None
    return [info]

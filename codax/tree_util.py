"""Pytrees, as in jax.tree_util."""
from runtime.tree import (PyTreeDef, register_pytree_node, tree_flatten, tree_leaves,  # noqa: F401
                          tree_map, tree_structure, tree_unflatten)

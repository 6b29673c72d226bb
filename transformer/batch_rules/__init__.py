"""Batching rules: how each kind of primitive pushes the batch axis through.

A record names its rule in its `batch` field; `RULES[name](b, op, rhs)`
returns the batched right-hand side and the Info of its value, emitting any
auxiliary statements through `b` (the Batch pass). Every rule also serves
statements with no batched input, for which it only infers the rank.
The batch axis is always axis 0 of a batched value.

One module per family, each importing only from the ones before it:
core (the registry, the dispatcher `rewrite`, shared helpers), arrays
(element-wise, reductions, products), shapes, indexing, adjoints (the
runtime's adjoint helpers: vmap of grad), python (Python builtins,
attributes), calls (closures, user functions, batched forms), trees.
"""
from . import arrays, shapes, indexing, adjoints, python, calls, trees  # noqa: F401 (rules)
from .core import RULES, _mark_batched, broadcast_axes, literal, rewrite, select_expr  # noqa: F401

"""Importing this package fills runtime.table.TABLE, one module per family."""
from . import elementwise, reductions, shapes, indexing, linalg, creation, python  # noqa: F401
from . import adjoint_ops, updates, batching_ops, trees  # noqa: F401
from . import nodes, searching, fft  # noqa: F401

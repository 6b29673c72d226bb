"""JAX's structured control flow (``jax.lax.cond``, ``fori_loop``, ``scan``, ...)
for NumPy code that codax differentiates.

These are written in the Python subset codax differentiates (plain loops and
``if``s, module-level functions, no ``*args`` and no nested ``def``s), so a
function that calls ``codax.lax.fori_loop(0, n, body, x)`` is differentiated
*through* these functions, exactly as if the loop were written out in the
user's code: ``grad``, ``jvp`` and the Jacobians see the plain loop.

Differences from ``jax.lax``:

- ``cond(pred, true_fun, false_fun, operand)`` takes exactly one operand
  (JAX takes ``*operands``; codax does not differentiate ``*args``): pass a
  tuple and unpack it in the branch functions. Only the taken branch runs.
- ``switch(index, branches, operand)`` likewise takes one operand; ``index``
  is clamped to ``[0, len(branches) - 1]`` as in JAX.
- Nothing is traced or compiled: loops run in Python, ``while_loop`` may
  have a data-dependent trip count, and ``cond`` branches may return
  different structures. ``fori_loop``'s bounds must be Python ints.
- ``scan`` stacks each output leaf with ``np.stack`` when ``ys`` is an
  array, a tuple/list of arrays, or a dict of arrays; ``xs`` may be an array
  (scanned along axis 0), a tuple/list/dict of arrays, or None (with
  ``length``). Tuples (of ``xs`` or of ``ys``) have at most 6 entries: codax
  cannot differentiate the builtin ``tuple()``, so they are built from
  literals (lists and dicts have no limit).
- Body, branch and scanned functions are called through a parameter, so
  keyword arguments cannot be passed to them. They may be lambdas or nested
  functions of the caller: derivatives and batching flow into what they
  capture (transformer/closures.py).
"""
import numpy as np

__all__ = ['cond', 'switch', 'select', 'fori_loop', 'while_loop', 'scan', 'map']


def cond(pred, true_fun, false_fun, operand):
    """``true_fun(operand)`` if ``pred`` else ``false_fun(operand)``."""
    if pred:
        return true_fun(operand)
    return false_fun(operand)


def switch(index, branches, operand):
    """``branches[index](operand)``, with ``index`` clamped into range."""
    i = int(index)
    n = len(branches)
    if i < 0:
        i = 0
    if i > n - 1:
        i = n - 1
    fun = branches[i]
    return fun(operand)


def select(pred, on_true, on_false):
    """Elementwise ``on_true`` where ``pred`` else ``on_false`` (``np.where``)."""
    return np.where(pred, on_true, on_false)


def fori_loop(lower, upper, body_fun, init_val):
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``."""
    val = init_val
    for i in range(lower, upper):
        val = body_fun(i, val)
    return val


def while_loop(cond_fun, body_fun, init_val):
    """``val = body_fun(val)`` while ``cond_fun(val)``."""
    val = init_val
    while cond_fun(val):
        val = body_fun(val)
    return val


def _as_tuple(items):
    """tuple(items), spelled with literals: codax has no derivative rule for the
    builtin tuple(), and tuple concatenation is read as np.add."""
    n = len(items)
    if n == 0:
        return ()
    if n == 1:
        return (items[0],)
    if n == 2:
        return (items[0], items[1])
    if n == 3:
        return (items[0], items[1], items[2])
    if n == 4:
        return (items[0], items[1], items[2], items[3])
    if n == 5:
        return (items[0], items[1], items[2], items[3], items[4])
    if n == 6:
        return (items[0], items[1], items[2], items[3], items[4], items[5])
    raise ValueError('codax.lax scans tuples of at most 6 arrays; use a list or a dict')


def _slice_xs(xs, i):
    if xs is None:
        return None
    if isinstance(xs, tuple):
        return _as_tuple([x[i] for x in xs])
    if isinstance(xs, list):
        return [x[i] for x in xs]
    if isinstance(xs, dict):
        return {k: xs[k][i] for k in xs}
    return xs[i]


def _scan_length(xs, length):
    if length is not None:
        return length
    if isinstance(xs, (tuple, list)):
        return len(xs[0])
    if isinstance(xs, dict):
        return len(xs[list(xs.keys())[0]])
    return len(xs)


def _stack_columns(ys, m):
    # plain loops: codax mis-generates the nested comprehension
    # [np.stack([y[j] for y in ys]) for j in range(m)] (see tests/test_lax.py)
    out = []
    for j in range(m):
        column = []
        for y in ys:
            column.append(y[j])
        out.append(np.stack(column))
    return out


def _stack_ys(ys, n):
    if n == 0:
        return None
    first = ys[0]
    if first is None:
        return None
    if isinstance(first, tuple):
        return _as_tuple(_stack_columns(ys, len(first)))
    if isinstance(first, list):
        return _stack_columns(ys, len(first))
    if isinstance(first, dict):
        return {k: np.stack([y[k] for y in ys]) for k in first}
    return np.stack(ys)


def scan(f, init, xs, length=None):
    """``carry, y = f(carry, x)`` over the leading axis of ``xs``; returns
    ``(carry, ys)`` with the ``y``s stacked along a new leading axis."""
    n = _scan_length(xs, length)
    carry = init
    ys = []
    for i in range(n):
        x = _slice_xs(xs, i)
        carry, y = f(carry, x)
        ys.append(y)
    return carry, _stack_ys(ys, n)


def map(f, xs):
    """``np.stack([f(x) for x in xs])`` (leaves stacked as in ``scan``)."""
    n = _scan_length(xs, None)
    ys = []
    for i in range(n):
        ys.append(f(_slice_xs(xs, i)))
    return _stack_ys(ys, n)

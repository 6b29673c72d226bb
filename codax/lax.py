"""JAX's structured control flow (``jax.lax.cond``, ``fori_loop``, ``scan``, ...)
for NumPy code that codax differentiates.

These are written in the Python subset codax differentiates (plain loops and
``if``s, module-level functions, no ``*args`` and no nested ``def``s), so a
function that calls ``codax.lax.fori_loop(0, n, body, x)`` is differentiated
*through* these functions, exactly as if the loop were written out in the
user's code: ``grad``, ``jvp`` and the Jacobians see the plain loop.

Differences from ``jax.lax`` (signatures are JAX's):

- Nothing is traced or compiled: loops run in Python, ``while_loop`` may
  have a data-dependent trip count, and ``cond`` branches may return
  different structures. Only the taken branch runs. ``fori_loop``'s bounds
  must be Python ints.
- ``unroll`` (``scan``, ``fori_loop``) and ``map``'s ``batch_size`` are
  accepted and ignored: nothing is compiled to unroll, and ``map`` calls
  ``f`` once per element, which gives the results JAX's batches give.
  codax transforms no keyword-only parameters, so ``fori_loop`` and ``map``
  also take these by position (JAX: by keyword only).
- ``cond`` and ``switch`` take any number of operands, zero included, as
  JAX does. Their ``*operands`` are outside the Python subset codax
  transforms, so each has one definition per number of operands, made on
  first use (``cond.with_2_operands``, ``def cond_with_2_operands(pred,
  true_fun, false_fun, operand0, operand1)``); in transformed code a call
  of ``cond`` or ``switch`` is a call of that definition
  (``__codax_fixed_arity__``, transformer/normalize.py). ``switch`` clamps
  ``index`` into range as JAX does.
- ``select`` is ``np.where``: its arguments broadcast (JAX requires equal
  shapes, or a scalar ``pred``), dtypes promote, and ``pred`` may be any
  array NumPy can test (JAX: boolean). ``cond``'s ``pred`` and
  ``while_loop``'s ``cond_fun`` result may be anything Python's ``if`` can
  test.
- ``scan`` stacks each output leaf with ``np.stack`` when ``ys`` is an
  array, a tuple/list of arrays, or a dict of arrays; ``xs`` may be an array
  (scanned along axis 0), a tuple/list/dict of arrays, or None (with
  ``length``). Tuples (of ``xs`` or of ``ys``) have at most 6 entries: codax
  cannot differentiate the builtin ``tuple()``, so they are built from
  literals (lists and dicts have no limit). With ``length=0``, ``ys`` is
  None (JAX: empty arrays).
- Body, branch and scanned functions are called through a parameter, so
  keyword arguments cannot be passed to them. They may be lambdas or nested
  functions of the caller: derivatives and batching flow into what they
  capture (transformer/closures.py).
"""
import linecache

import numpy as np

__all__ = ['cond', 'switch', 'select', 'fori_loop', 'while_loop', 'scan', 'map']


def cond(pred, true_fun, false_fun, *operands):
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``."""
    definition = getattr(cond, _operands_attribute(cond, len(operands)))
    return definition(pred, true_fun, false_fun, *operands)


def switch(index, branches, *operands):
    """``branches[index](*operands)``, with ``index`` clamped into range."""
    definition = getattr(switch, _operands_attribute(switch, len(operands)))
    return definition(index, branches, *operands)


# What cond and switch do, in the Python subset codax transforms (no *args):
# their parameters before the operands, and their body.
_BODIES = {
    'cond': ('pred, true_fun, false_fun',
             '    if pred:\n'
             '        return true_fun({operands})\n'
             '    return false_fun({operands})\n'),
    'switch': ('index, branches',
               '    i = int(index)\n'
               '    n = len(branches)\n'
               '    if n == 0:\n'
               '        raise ValueError("lax.switch needs at least one branch")\n'
               '    if i < 0:\n'
               '        i = 0\n'
               '    if i > n - 1:\n'
               '        i = n - 1\n'
               '    fun = branches[i]\n'
               '    return fun({operands})\n'),
}


def _operands_attribute(fun, count):
    """The attribute of `fun` (cond or switch), made on first use, that holds
    its definition for `count` operands: ``cond.with_2_operands`` is
    ``def cond_with_2_operands(pred, true_fun, false_fun, operand0, operand1)``,
    a plain function of this module that codax reads and transforms."""
    attribute = f'with_{count}_operand{"" if count == 1 else "s"}'
    if not hasattr(fun, attribute):
        params, body = _BODIES[fun.__name__]
        operands = ', '.join(f'operand{i}' for i in range(count))
        name = f'{fun.__name__}_{attribute}'
        text = f'def {name}({", ".join(filter(None, [params, operands]))}):\n' \
            + body.format(operands=operands)
        filename = f'<codax.lax definition of {name}>'
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        exec(compile(text, filename, 'exec'), globals())
        setattr(fun, attribute, globals()[name])
    return attribute


# In transformed code, `lax.cond(p, f, g, a, b)` is a call of
# `lax.cond.with_2_operands(p, f, g, a, b)` (transformer/normalize.py asks the
# hook which attribute, given the number of arguments).
cond.__codax_fixed_arity__ = lambda count: _operands_attribute(cond, max(count - 3, 0))
switch.__codax_fixed_arity__ = lambda count: _operands_attribute(switch, max(count - 2, 0))


def select(pred, on_true, on_false):
    """Elementwise ``on_true`` where ``pred`` else ``on_false`` (``np.where``)."""
    return np.where(pred, on_true, on_false)


def fori_loop(lower, upper, body_fun, init_val, unroll=None):
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``.
    ``unroll`` is accepted and ignored: nothing is compiled to unroll."""
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
    """The number of steps: ``length``, or the leading size of ``xs``, which
    must agree with it (as in JAX)."""
    if xs is None:
        if length is None:
            raise ValueError('lax.scan with xs=None needs length, the number of steps')
        return length
    if isinstance(xs, (tuple, list)):
        n = len(xs[0])
    elif isinstance(xs, dict):
        n = len(xs[list(xs.keys())[0]])
    else:
        n = len(xs)
    if length is not None and length != n:
        raise ValueError(f'lax.scan got length={length}, but xs has leading size {n}')
    return n


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


def scan(f, init, xs=None, length=None, reverse=False, unroll=1, _split_transpose=False):
    """``carry, y = f(carry, x)`` over the leading axis of ``xs`` (from its end
    if ``reverse``); returns ``(carry, ys)`` with the ``y``s stacked along a new
    leading axis, in the order of ``xs`` either way. ``unroll`` and
    ``_split_transpose`` are accepted and ignored: nothing is compiled."""
    n = _scan_length(xs, length)
    carry = init
    ys = []
    for k in range(n):
        i = n - 1 - k if reverse else k
        x = _slice_xs(xs, i)
        carry, y = f(carry, x)
        ys.append(y)
    if reverse:
        ys = ys[::-1]
    return carry, _stack_ys(ys, n)


def map(f, xs, batch_size=None):
    """``np.stack([f(x) for x in xs])`` (leaves stacked as in ``scan``).
    ``batch_size`` is accepted and ignored: ``f`` runs once per element of
    ``xs``, which gives the results JAX's batches of vmap give."""
    n = _scan_length(xs, None)
    ys = []
    for i in range(n):
        ys.append(f(_slice_xs(xs, i)))
    return _stack_ys(ys, n)

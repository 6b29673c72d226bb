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
  ``index`` into range as JAX does, and like JAX wants an integer scalar
  (TypeError otherwise). Under ``vmap`` with a batched ``pred`` or
  ``index``, every branch runs and the results are selected per example
  (as JAX does), through the ``if``s that define them.
- ``select`` is ``np.where``: its arguments broadcast (JAX requires equal
  shapes, or a scalar ``pred``), dtypes promote, and ``pred`` may be any
  array NumPy can test (JAX: boolean). ``cond``'s ``pred`` and
  ``while_loop``'s ``cond_fun`` result may be anything Python's ``if`` can
  test.
- ``xs``, ``init``, the carry and the per-step outputs of ``scan`` and
  ``map`` are pytrees of any structure (nested tuples, lists, dicts,
  namedtuples, registered nodes; None is an empty subtree, as in JAX):
  each step gets every leaf of ``xs`` sliced along its leading axis, in
  ``xs``'s structure, and each output leaf is stacked with ``np.stack``.
  The leaves of ``xs`` must agree on their leading size (and with
  ``length``), as in JAX. With ``length=0``, ``ys`` is None (JAX: empty
  arrays).
- Body, branch and scanned functions are called through a parameter, so
  keyword arguments cannot be passed to them. They may be lambdas or nested
  functions of the caller: derivatives and batching flow into what they
  capture (transformer/closures.py).
"""

import numpy as np

from runtime.sources import define
from runtime.tree import tree_flatten, tree_unflatten, treedef_leaves

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
    # One `if` with an `else`, each branch calling one function: reverse mode
    # then saves as much on its tape in either branch, so vmap over a batched
    # pred runs both and selects the tape too (two `if`s, as an early return
    # gives, would grow the tape under a condition that differs per example).
    'cond': ('pred, true_fun, false_fun',
             '    if pred:\n'
             '        out = true_fun({operands})\n'
             '    else:\n'
             '        out = false_fun({operands})\n'
             '    return out\n'),
    # The branches are one chain of `if`/`elif`/`else` for their number
    # (_chain), each calling one branch: reverse mode saves as much on its
    # tape whichever branch is taken, so vmap over a batched index runs them
    # all and selects per example, the tape too (as cond's body), while a
    # plain call runs only the one taken.
    'switch': ('index, branches',
               '    index = _integer_index(index)\n'
               '    chain = _chain(len(branches), {count})\n'
               '    out = chain(index, branches{comma}{operands})\n'
               '    return out\n'),
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
            + body.format(operands=operands, count=count, comma=', ' if count else '')
        filename = f'<codax.lax definition of {name}>'
        define(text, filename, globals())
        setattr(fun, attribute, globals()[name])
    return attribute


# In transformed code, `lax.cond(p, f, g, a, b)` is a call of
# `lax.cond.with_2_operands(p, f, g, a, b)` (transformer/normalize.py asks the
# hook which attribute, given the number of arguments).
cond.__codax_fixed_arity__ = lambda count: _operands_attribute(cond, max(count - 3, 0))
switch.__codax_fixed_arity__ = lambda count: _operands_attribute(switch, max(count - 2, 0))


def _chain(n, count):
    """switch's branches for `n` branches and `count` operands, made on first
    use: ``def switch_3_branches_1_operand(i, branches, operand0)``, an
    ``if take_0: ... elif take_1: ... else: ...`` chain calling one branch
    each, so an index out of range takes the first or the last (JAX clamps).
    The tests come first, outside the chain: a test set inside an `else`
    would be one more value that the derivative of reverse mode's code
    (jacrev(grad(f))) saves there, and the branches' tapes would differ."""
    if n == 0:
        raise ValueError('lax.switch needs at least one branch')
    name = f'switch_{n}_branch{"" if n == 1 else "es"}_{count}_operand{"" if count == 1 else "s"}'
    if name not in globals():
        operands = ', '.join(f'operand{i}' for i in range(count))
        lines = [f'def {name}(i, branches{", " if count else ""}{operands}):']
        if n > 1:
            lines += ['    take_0 = i <= 0'] + [f'    take_{k} = i == {k}' for k in range(1, n - 1)]
        for k in range(n):
            if n > 1:
                lines.append('    else:' if k == n - 1 else f'    {"el" if k else ""}if take_{k}:')
            indent = '    ' if n == 1 else '        '
            lines += [f'{indent}fun = branches[{k}]', f'{indent}out = fun({operands})']
        lines.append('    return out\n')
        define('\n'.join(lines), f'<codax.lax definition of {name}>', globals())
    return globals()[name]


def _integer_index(index):
    """switch's index, which must be an integer scalar, as in JAX."""
    if np.ndim(index) != 0 or np.asarray(index).dtype.kind not in 'iu':
        raise TypeError(f'lax.switch needs an integer scalar index, got {index!r}')
    return index


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


def _step(leaves, treedef, i):
    """Step i of xs, given as its leaves and structure: every leaf's row i,
    in xs's structure (a dict of tuples, a namedtuple, ...: as in JAX)."""
    rows = []
    for x in leaves:
        rows.append(x[i])
    return tree_unflatten(treedef, rows)


def _scan_length(leaves, length):
    """The number of steps: ``length``, or the leading size of every leaf of
    xs, which must all agree (with ``length`` too, as in JAX)."""
    if len(leaves) == 0:
        if length is None:
            raise ValueError('lax.scan with xs=None needs length, the number of steps')
        return length
    sizes = []
    for x in leaves:
        if np.ndim(x) == 0:
            raise ValueError('lax.scan got a scalar leaf in xs, which has no leading axis '
                             'to scan over')
        sizes.append(len(x))
    n = sizes[0]
    for size in sizes:
        if size != n:
            raise ValueError(f'lax.scan got values with different leading axis sizes: {sizes}')
    if length is not None and length != n:
        raise ValueError(f'lax.scan got length={length}, but xs has leading size {n}')
    return n


def _stack_ys(ys, n):
    """The per-step outputs stacked leaf by leaf along a new leading axis, in
    the structure of the first (every step must have it; None stays None)."""
    if n == 0:
        return None
    leaves, treedef = tree_flatten(ys[0])
    rows = []
    for y in ys:
        rows.append(treedef_leaves(treedef, y))
    # plain loops: codax mis-generates the nested comprehension
    # [np.stack([row[j] for row in rows]) for j in range(m)] (see tests/test_lax.py).
    # The inner loop's trip count is set once, outside the outer loop: reverse
    # mode saves a count set in a loop on its tape, and vmap of this function's
    # derivative (vmap(hessian(f))) would see the counts come back from the tape
    # batched as a whole, as every value on it, where range() needs one number
    count = len(rows)
    stacked = []
    for j in range(len(leaves)):
        column = []
        for k in range(count):
            row = rows[k]
            column.append(row[j])
        stacked.append(np.stack(column))
    return tree_unflatten(treedef, stacked)


def scan(f, init, xs=None, length=None, reverse=False, unroll=1, _split_transpose=False):
    """``carry, y = f(carry, x)`` over the leading axis of ``xs`` (from its end
    if ``reverse``); returns ``(carry, ys)`` with the ``y``s stacked along a new
    leading axis, in the order of ``xs`` either way. ``unroll`` and
    ``_split_transpose`` are accepted and ignored: nothing is compiled."""
    leaves, treedef = tree_flatten(xs)
    n = _scan_length(leaves, length)
    carry = init
    ys = []
    for k in range(n):
        i = n - 1 - k if reverse else k
        carry, y = f(carry, _step(leaves, treedef, i))
        ys.append(y)
    if reverse:
        ys = ys[::-1]
    return carry, _stack_ys(ys, n)


def map(f, xs, batch_size=None):
    """``np.stack([f(x) for x in xs])`` (leaves stacked as in ``scan``).
    ``batch_size`` is accepted and ignored: ``f`` runs once per element of
    ``xs``, which gives the results JAX's batches of vmap give."""
    leaves, treedef = tree_flatten(xs)
    n = _scan_length(leaves, None)
    ys = []
    for i in range(n):
        ys.append(f(_step(leaves, treedef, i)))
    return _stack_ys(ys, n)

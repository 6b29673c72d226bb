"""Run-time helpers that batched (vmap) code calls.

Batched code keeps every batched value with its batch axis first; which
values are batched is decided at compile time, so helpers that need it take
`axes` (a pytree prefix of 0 for batched, None for unbatched, as JAX's
in_axes) as a literal argument.
"""
import linecache
import re
import sys
from collections.abc import Iterator

import numpy

from .adjoint import (ZERO, _float_dtype, _rebuild, dense, is_container_zero, is_zero, item,
                      real_for, shape, sum_to)

__all__ = ['batch_size', 'broadcast_batch', 'batch_loop', 'keywords_by_position', 'arg_axes',
           'example', 'example_vjp', 'stack_examples', 'stack_examples_vjp', 'select',
           'select_vjp', 'any_true', 'loop_bound', 'quiet', 'loud', 'batch_index', 'shift_axis',
           'example_shape', 'example_len', 'moveaxes', 'vmapped', 'sum_to_batched',
           'finalize_batched', 'finalize_batched_transpose', 'attribute', 'unsum_batched',
           'batch_outputs', 'batch_outputs_transpose', 'example_rank', 'lift_batched',
           'lift_leaves', 'reshape_like', 'batched_diag', 'dense_batched', 'dense_batched_vjp',
           'first_example']
from .backend import array_module, is_array
from .closures import Closure, closure
from .sources import define
from .tree import (derivative_leaves, flat_keys, node_children, node_rebuilt, same_dict,
                   tree_flatten, tree_unflatten)


def _leaf_axes(axes, tree):
    """One axis (0 or None) per leaf of `tree`, from the prefix `axes`. A node
    of a registered type has the axes of its children, as a tuple would."""
    if axes is None or isinstance(axes, int):
        return [axes] * len(tree_flatten(tree)[0])
    children = node_children(tree)
    if children is not None:
        tree = tuple(children)
    if isinstance(tree, dict):
        return [a for k in flat_keys(tree) for a in _leaf_axes(axes[k], tree[k])]
    if isinstance(tree, (list, tuple)):
        if len(axes) != len(tree):
            raise ValueError(f'vmap: axes {axes!r} do not match a container of {len(tree)}')
        return [a for ax, t in zip(axes, tree) for a in _leaf_axes(ax, t)]
    # a container's axes over what is not one: a leaf (the zero 0.0 standing
    # for a container) keeps them as its one entry; None (a branch not taken
    # left it unset, the compile-time facts hold the other branch's list) has
    # no leaves, so no entry, or the leaves after it would take wrong axes
    return [axes] * len(tree_flatten(tree)[0])


def batch_size(tree, axes):
    """The size of the batch axis of the first batched leaf."""
    for leaf, axis in zip(tree_flatten(tree)[0], _leaf_axes(axes, tree)):
        if axis is not None:
            return shape(leaf)[0]
    raise ValueError('vmap: no batched argument')


def broadcast_batch(x, size):
    """x, unbatched, repeated along a new leading batch axis (a view). None
    (a variable not set yet, saved on a tape) stays None."""
    if x is None:
        return None
    xp = array_module(x)
    x = xp.asarray(x)
    return xp.broadcast_to(x, (size,) + x.shape)


def _stack(outs, size):
    if not outs:
        raise ValueError('vmap: cannot run a per-example loop over an empty batch')
    flat = [tree_flatten(o) for o in outs]
    leaves, treedef = [f[0] for f in flat], flat[0][1]
    if any(f[1] != treedef for f in flat):
        raise ValueError(at_users_line(
            'vmap: the examples give results of different structures here (a list of '
            'a length that differs between examples does this): '
            f'{treedef} and {next(f[1] for f in flat if f[1] != treedef)}'))
    xp = array_module(*leaves[0])
    return tree_unflatten(treedef, [_stack_leaf([l[i] for l in leaves], xp)
                                    if _numeric(leaves[0][i]) else
                                    _shared_leaf([l[i] for l in leaves])
                                    for i in range(len(leaves[0]))])


def _shared_leaf(values):
    """A leaf that is no number or array (a string, None, a function, a user's
    object): kept where every example gives the same one; one that differs
    between examples no batched value holds, and keeping example 0's would
    give every example its value."""
    first = values[0]
    if all(v is first or _equal(v, first) for v in values):
        return first
    raise ValueError(at_users_line(
        f'vmap: the examples give different {type(first).__name__} objects here, which no '
        'batched array holds: vmap batches arrays, numbers and containers of them (register '
        'a class of your own with codax.tree_util.register_pytree_node, or build its object '
        'outside the vmapped function)'))


def _equal(a, b):
    try:
        return type(a) is type(b) and (a == b) is True
    except Exception:              # (a comparison that raises: not the same value)
        return False


def users_line():
    """(file, line) of the user's code that the nearest generated code up the
    stack runs (its comments `# line N:` name the user's lines; its globals
    are the user's module), or None."""
    frame = sys._getframe(1)
    while frame is not None:
        space = frame.f_globals
        if frame.f_code.co_filename.startswith('<codax ') and space.get('__file__') and \
                not space.get('__name__', '').startswith(('runtime', 'codax')):
            for text in reversed(linecache.getlines(frame.f_code.co_filename)[:frame.f_lineno]):
                found = re.match(r'\s*# line (\d+):', text)
                if found:
                    return space['__file__'], int(found.group(1))
        frame = frame.f_back
    return None


def at_users_line(message):
    """`message` prefixed with the user's file and line (users_line)."""
    where = users_line()
    return f'{where[0]}:{where[1]}: codax {message}' if where else message


def _stack_leaf(values, xp):
    """One leaf of every example, stacked. The zero 0.0 of every example (an
    adjoint helper's structural zero) stays the zero; where only some
    examples give it, it stands for zeros shaped like the others."""
    zero = [type(v) is float and v == 0.0 for v in values]
    if all(zero):
        return 0.0
    if any(zero):
        like = xp.asarray(next(v for v, z in zip(values, zero) if not z))
        values = [xp.zeros_like(like) if z else v for v, z in zip(values, zero)]
    values = [xp.asarray(v) for v in values]
    shapes = {v.shape for v in values}
    if len(shapes) > 1:              # (a boolean mask with a different count per example)
        raise ValueError('vmap: the examples give results of different shapes here '
                         f'({", ".join(map(str, sorted(shapes)))}), which no batched array '
                         'holds; a boolean mask that differs between examples does this: '
                         'use np.where(mask, x, 0.0) instead')
    return xp.stack(values)


def batch_loop(fn, axes, args, kwargs, size):
    """The batching rule of last resort: call `fn` once per example and stack.

    `axes` is a prefix of (args, kwargs). Always correct, never fast: codax
    uses it only where a primitive has no vectorized rule for these operands."""
    lazy = {k for k, x in enumerate(args) if isinstance(x, ExampleIterators)}
    tree = (tuple(args), dict(kwargs))
    leaves, treedef = tree_flatten(tree)
    leaf_axes = [a if _batchable(x) else None for x, a in zip(leaves, _leaf_axes(axes, tree))]
    if not lazy and all(a is None for a in leaf_axes):    # nothing differs between examples
        out = fn(*args, **kwargs)
        return batch_outputs(out, None, 0, size)
    outs = []
    for i in range(size):
        picked = [x[i] if a is not None else x for x, a in zip(leaves, leaf_axes)]
        a, kw = tree_unflatten(treedef, picked)
        a = [x.examples[i] if k in lazy else x for k, x in enumerate(a)]
        outs.append(fn(*a, **kw))
    if outs and all(isinstance(o, Iterator) for o in outs):
        return ExampleIterators(outs)
    return _stack(outs, size)


class ExampleIterators(Iterator):
    """The iterators that the examples give (map, filter, zip, a generator),
    each kept lazy and advanced on its own: a per-example loop passes each
    example its own (so `next` per example reads one item of each); walked
    whole, each step gives the examples' next items stacked. (Stacked as
    one value, they would be only example 0's.)"""

    def __init__(self, examples):
        self.examples = examples

    def __next__(self):
        items = [next(it, _END) for it in self.examples]
        ended = [item is _END for item in items]
        if all(ended):
            raise StopIteration
        if any(ended):
            raise ValueError(at_users_line(
                'vmap: the examples\' iterators here give different numbers of items, '
                'which no batched array holds'))
        return _stack(items, len(items))


_END = object()


_STAND_INS = {}


def keywords_by_position(fn, count, names):
    """`def call(a0, .., k_name, ..): return fn(a0, .., name=k_name, ..)`: what
    a per-example loop calls for fn called with keyword arguments, so that
    every argument reaches rt.batch_loop by position (its definition, which
    derivatives go through, passes arguments by position only)."""
    key = (id(fn), count, names)
    if key not in _STAND_INS:
        params = [f'a{i}' for i in range(count)] + [f'k_{k}' for k in names]
        passed = [f'a{i}' for i in range(count)] + [f'{k}=k_{k}' for k in names]
        text = (f'def call_with_keywords({", ".join(params)}):\n'
                f'    return fn({", ".join(passed)})\n')
        filename = (f'<codax call of {getattr(fn, "__name__", "a function")} with keywords '
                    f'{", ".join(names)} #{len(_STAND_INS)}>')
        _STAND_INS[key] = (fn, define(text, filename, {'fn': fn})['call_with_keywords'])     # fn kept: its id stays
    return _STAND_INS[key][1]


# ---- the pieces of rt.batch_loop's definition (codax/calls.py), which
# derivatives of code that loops per example go through ----

def arg_axes(axes, k):
    """The axes prefix of positional argument k, from batch_loop's `axes`."""
    if axes is None or isinstance(axes, int):
        return axes
    args = axes[0]
    return args if args is None or isinstance(args, int) else args[k]


def example(x, axes, i):
    """Example i of `x`: its leaves with a batch axis indexed, the rest as they are."""
    if type(x) is float and x == 0.0:
        return 0.0                   # a structural zero (a tangent) stays one
    leaves, treedef = tree_flatten(x)
    return tree_unflatten(treedef, [leaf[i] if a is not None and _batchable(leaf) else leaf
                                    for leaf, a in zip(leaves, _leaf_axes(axes, x))])


def example_vjp(cot, x, axes, i):
    """The adjoint of x from the cotangent of example(x, axes, i)."""
    if is_container_zero(cot):       # (also the zero that batching made a NumPy number)
        return 0.0
    leaves, treedef = tree_flatten(x)
    out = []
    for leaf, c, a in zip(leaves, derivative_leaves(cot, treedef), _leaf_axes(axes, x)):
        if a is not None and _batchable(leaf):
            full = array_module(leaf).zeros(leaf.shape, _inexact(leaf.dtype))
            full[i] = c
            out.append(full)
        else:
            out.append(c)
    return tree_unflatten(treedef, out)


def _inexact(dtype):
    return dtype if numpy.issubdtype(dtype, numpy.inexact) else numpy.float64


def stack_examples(outs):
    """Per-example results stacked along a new batch axis (batch_loop's stack).
    A structural zero 0.0 among trees (a cotangent) is a tree of zeros."""
    shaped = next((o for o in outs if not is_zero(o)), None)
    if shaped is not None and not is_array(shaped):
        leaves, treedef = tree_flatten(shaped)
        zeros = tree_unflatten(treedef, [0.0] * len(leaves))
        outs = [zeros if is_zero(o) else o for o in outs]
    return _stack(outs, len(outs))


def stack_examples_vjp(cot, outs):
    """The cotangent of each example's result, from that of their stack
    (broadcastable to it)."""
    if type(cot) is float and cot == 0.0:
        return [0.0] * len(outs)
    cots, treedef = tree_flatten(cot)
    firsts = derivative_leaves(outs[0], treedef)
    if not isinstance(firsts, list):          # an example's result is the zero
        firsts = [ZERO] * len(cots)
    full = [_example_cotangents(c, leaf, len(outs)) for c, leaf in zip(cots, firsts)]
    return [tree_unflatten(treedef, [c[i] if is_array(c) else c for c in full])
            for i in range(len(outs))]


def _example_cotangents(c, leaf, count):
    """A cotangent leaf of the stacked results, with the batch axis first: c
    broadcast to the stack of `leaf`. Where the examples' result holds the
    zero 0.0 for a subtree (a cotangent whose parts were not read), c has the
    batch axis already when it has any axis."""
    if not (_numeric(leaf) and is_array(c)):
        return c
    if is_zero(leaf) and numpy.ndim(c) >= 1:
        return c
    return array_module(c).broadcast_to(c, (count,) + shape(leaf))


def select(condition, x, y, axes):
    """Per example, x where condition else y, for pytrees x and y whose leaves
    may be batched or not (`axes`: a prefix of (x, y)). The batched condition
    gets trailing axes to line up with each leaf's own axes."""
    x, y = _zero_as(x, y), _zero_as(y, x)
    condition = _per_example(condition, x, y, axes)
    xp = array_module(condition)
    # (the zero on both sides stays the zero: a later select may take it for
    # a container, _zero_as)
    out = [ZERO if is_zero(a) and is_zero(b) else xp.where(c, a, b)
           for c, a, b, _, _ in _select_leaves(condition, x, y, axes)]
    return tree_unflatten(tree_flatten(x)[1], out)


def _zero_as(x, other):
    """x; where x, or a part of it, is the zero 0.0 and the same place of
    `other` a container, zeros in that container's structure: the zero stands
    for any value (the tangent of a value that one branch sets and the other
    leaves unset, as a pullback saved by one branch; the adjoint of a list of
    closures, of which each branch of lax.switch reads one)."""
    if is_zero(x):
        if _children(other) is None:
            return x
        leaves, treedef = tree_flatten(other)
        return tree_unflatten(treedef, [ZERO] * len(leaves))
    mine, theirs = _children(x), _children(other)
    if mine is None or theirs is None or type(x) is not type(other) or len(mine) != len(theirs):
        return x                 # (different structures: _select_leaves explains)
    if isinstance(mine, dict):
        if set(mine) != set(theirs):
            return x
        parts = {k: _zero_as(v, theirs[k]) for k, v in mine.items()}
        changed = any(parts[k] is not v for k, v in mine.items())
        return same_dict(x, parts) if changed else x
    parts = [_zero_as(a, b) for a, b in zip(mine, theirs)]
    if all(p is a for p, a in zip(parts, mine)):
        return x
    return node_rebuilt(x, parts) if node_children(x) is not None else _rebuild(x, parts)


def _per_example(condition, x, y, axes):
    """The condition, one per example: a single bool (a test of values the
    examples share, which the compiler could only tell at run time) is the
    same for every example of the batched leaves."""
    if is_array(condition) and condition.ndim:
        return condition
    for leaf, axis in zip(tree_flatten((x, y))[0], _leaf_axes(axes, (x, y))):
        if axis is not None and is_array(leaf):
            return array_module(leaf).full(shape(leaf)[axis], bool(condition))
    return numpy.asarray(bool(condition))


class BranchStructures(ValueError):
    """The branches of an `if` on a batched condition made values of different
    structures (as two calls' pullbacks of different functions): no per-example
    selection exists. vmap of a derivative then takes its fallback."""


def _select_leaves(condition, x, y, axes):
    """(condition, x leaf, y leaf, x axis, y axis) per leaf, lined up per example."""
    xs, treedef = tree_flatten(x)
    ys, treedef_y = tree_flatten(y)
    if treedef != treedef_y:
        raise BranchStructures('vmap: the branches of an `if` on a batched condition produce '
                         f'different structures, {treedef} and {treedef_y}')
    ax = _leaf_axes(axes, (x, y))
    xp = array_module(condition)
    for a, b, fa, fb in zip(xs, ys, ax[:len(xs)], ax[len(xs):]):
        rank = max(numpy.ndim(a) - (fa is not None), numpy.ndim(b) - (fb is not None),
                   condition.ndim - 1)
        c = xp.reshape(condition, condition.shape + (1,) * (rank + 1 - condition.ndim))
        yield c, _lift(a, fa, rank), _lift(b, fb, rank), fa, fb


def select_vjp(g, condition, x, y, axes, which):
    """The adjoint of select's x (which=0) or y (which=1) for the full
    cotangent g: g where that side was chosen, summed back to each leaf's shape
    (per example for batched leaves)."""
    side = y if which else x
    x, y = _zero_as(x, y), _zero_as(y, x)
    condition = _per_example(condition, x, y, axes)
    xp = array_module(condition)
    leaves, treedef = tree_flatten(y if which else x)
    parts = []
    for gl, leaf, (c, _, _, fa, fb) in zip(tree_flatten(g)[0], leaves,
                                           _select_leaves(condition, x, y, axes)):
        part = xp.where(c, 0.0, gl) if which else xp.where(c, gl, 0.0)
        batched = (fb if which else fa) is not None
        parts.append(_sum_to_batched(part, shape(leaf)[1:]) if batched
                     else sum_to(part, shape(leaf)))
    return _zero_where(tree_unflatten(treedef, parts), side)


def _zero_where(adjoint, value):
    """The adjoint in the structure of `value`: the zero where value holds the
    zero 0.0 that stood for a container (_zero_as)."""
    if is_zero(value):
        return ZERO if _children(adjoint) is not None else adjoint
    mine, theirs = _children(adjoint), _children(value)
    if mine is None or theirs is None:
        return adjoint
    if isinstance(mine, dict):
        return same_dict(adjoint, {k: _zero_where(v, theirs[k]) for k, v in mine.items()})
    parts = [_zero_where(a, v) for a, v in zip(mine, theirs)]
    return node_rebuilt(adjoint, parts) if node_children(adjoint) is not None \
        else _rebuild(adjoint, parts)


def _lift(value, axis, rank):
    """A batched value gets axes after the batch axis so that it has `rank`
    per-example axes; an unbatched one broadcasts from the right as it is."""
    if axis is None or numpy.ndim(value) == 0:   # (a zero 0.0 in a batched place)
        return value
    missing = rank - (numpy.ndim(value) - 1)
    return value[(slice(None),) + (None,) * missing] if missing > 0 else value


def _batchable(x):
    """Only arrays carry a batch axis; a number inside a batched container is
    the same for every example (a zero adjoint, a count)."""
    return is_array(x) and x.ndim >= 1


def _numeric(x):
    return is_array(x) or isinstance(x, (bool, int, float, complex, numpy.generic))


def any_true(condition):
    """Whether any example's condition holds (a `while` on a batched test runs on)."""
    return bool(array_module(condition).any(condition))


def loop_bound(n, largest):
    """The range bound that covers every example: the largest stop or the smallest start."""
    xp = array_module(n)
    return int(xp.max(n) if largest else xp.min(n))


def quiet():
    """Both branches of a batched `if` run on every example: the branch an
    example does not take may divide by zero or take a log of a negative.
    Those results are discarded, so their warnings are silenced meanwhile."""
    return numpy.seterr(all='ignore')


def loud(state):
    numpy.seterr(**state)


def batch_index(idx, x=None):
    """An index of unknown form applied past the batch axis of array x (a
    container x, batched element by element, is indexed as it is)."""
    if isinstance(x, (list, tuple, dict)):
        return idx
    return (slice(None),) + (idx if isinstance(idx, tuple) else (idx,))


def first_example(tree, axes):
    """Example 0 of each batched leaf (`axes`: a prefix of 0 and None): what a
    function is generated for when batched code asks for the generated code
    of a transformation of it (rt.tangent_function, rt.sweeps), which is then
    batched itself. Unbatched leaves, and leaves that are not arrays, stay."""
    leaves, treedef = tree_flatten(tree)
    out = []
    for leaf, axis in zip(leaves, _leaf_axes(axes, tree)):
        if axis is None or not is_array(leaf) or leaf.ndim == 0:
            out.append(leaf)
        elif shape(leaf)[0]:
            out.append(leaf[0])
        else:                                    # an empty batch: zeros of one example
            out.append(array_module(leaf).zeros(shape(leaf)[1:], dtype=leaf.dtype))
    return tree_unflatten(treedef, out)


def shift_axis(axis, x=None):
    """A per-example axis (int, tuple, or None for all of batched x's example
    axes) as an axis of the batch."""
    if axis is None:
        if x is None:
            raise ValueError('shift_axis: None stands for every axis of an example: '
                             'pass the batched array')
        return tuple(range(1, numpy.ndim(x)))
    if isinstance(axis, tuple):
        return tuple(shift_axis(a) for a in axis)
    return axis + 1 if axis >= 0 else axis


def example_shape(x):
    """The shape of one example of batched x."""
    return shape(x)[1:]


def example_len(x):
    """len() of one example of batched x, whose form only the run shows: a
    container (of batched leaves) has the length every example has; an
    array's examples, the length of its second axis."""
    return len(x) if isinstance(x, (list, tuple, dict)) else shape(x)[1]


def moveaxes(tree, axes, to_front, offset=0):
    """Move each leaf's batch axis (given per leaf by the prefix `axes`) to the
    front (in_axes) or from the front to its place (out_axes). With `offset`
    1, every leaf has one more batch axis in front (vmap of vmap): that one
    stays, and the axes counted from the front are counted after it."""
    leaves, treedef = tree_flatten(tree)
    out = []
    for leaf, axis in zip(leaves, _leaf_axes(axes, tree)):
        if axis is None or axis == 0 or not is_array(leaf):
            out.append(leaf)
            continue
        xp = array_module(leaf)
        place = axis + offset if axis > 0 else axis
        out.append(xp.moveaxis(leaf, place, offset) if to_front else
                   xp.moveaxis(leaf, offset, place))
    return tree_unflatten(treedef, out)


_vmap_hook = None


def install_vmap_hook(hook):
    global _vmap_hook
    _vmap_hook = hook


def vmapped(fn, axes, out_axes=0, captured_axes=None):
    """`fn` batched with in_axes `axes` and `out_axes` (a user function called
    from batched code). codax installs the hook; it returns a function that
    codax can transform again, so grad(vmap(f)) goes through the call. A
    closure (runtime/closures.py) becomes the closure of its function batched
    with `captured_axes` for the captured values (None: not batched)."""
    if isinstance(fn, Closure):
        lead = tuple(captured_axes) if captured_axes is not None else (None,) * len(fn)
        return closure(_vmap_hook(fn.function, lead + tuple(axes), out_axes), *fn)
    return _vmap_hook(fn, axes, out_axes)


def sum_to_batched(g, target, like=None):
    """Batched g summed, example by example, down to the example shape `target`
    (undoing broadcasting within each example; the batch axis is kept). As the
    adjoint of `like`, only its real part where `like` is real (rt.unbroadcast)."""
    return real_for(_sum_to_batched(g, target), like)


def _sum_to_batched(g, target):
    """Undo broadcasting within each example; the batch axis is kept."""
    target = tuple(target)
    gshape = shape(g)
    if gshape[1:] == target:
        return g
    xp = array_module(g)
    lead = len(gshape) - 1 - len(target)
    if lead > 0:
        g = xp.sum(g, axis=tuple(range(1, lead + 1)))
    ones = tuple(i + 1 for i, d in enumerate(target) if d == 1 and shape(g)[i + 1] != 1)
    if ones:
        g = xp.sum(g, axis=ones, keepdims=True)
    return xp.reshape(g, (gshape[0],) + target)


def finalize_batched(g, x, spec, size):
    """rt.finalize for per-example gradients: every leaf becomes an owned array
    of x's dtype shaped (batch,) + the example's shape. `spec` gives, per leaf,
    (g batched, x batched, rank of g, rank of x) as known at compile time."""
    children = node_children(x)
    if children is not None:        # a registered node: child by child, as a tuple
        ours = node_children(g)
        parts = finalize_batched(g if ours is None else tuple(ours), tuple(children), spec, size)
        return node_rebuilt(x, parts)
    if isinstance(spec, dict):          # (of x's dict type, as rt.finalize's)
        return same_dict(x, [(k, finalize_batched(_element(g, k, spec[k]), x[k], spec[k], size))
                             for k in x])
    if isinstance(spec, tuple) and spec and isinstance(spec[0], (tuple, dict)):
        parts = [finalize_batched(_element(g, k, s), x[k], s, size) for k, s in enumerate(spec)]
        return type(x)(*parts) if hasattr(x, '_fields') else type(x)(parts)
    if isinstance(x, (dict, list, tuple)):      # seen only now: the same spec per leaf
        parts = {k: finalize_batched(_element(g, k, spec), v, spec, size)
                 for k, v in (x.items() if isinstance(x, dict) else enumerate(x))}
        return same_dict(x, parts) if isinstance(x, dict) else _rebuild(x, list(parts.values()))
    if x is None:                               # (a tape's slot not set: as rt.finalize)
        return None
    if not is_array(x) and not isinstance(x, (int, float, complex, numpy.generic)):
        return g          # no number (a dtype passed on, as np.float64): nothing to shape
    g_batched, x_batched, g_rank, x_rank = spec
    if x_batched and not is_array(x) and is_zero(g):
        return g          # a number where a batched value is expected: the structural zero
    g = real_for(g, x)
    xp = array_module(g, x)
    example = shape(x)[1:] if x_batched else shape(x)
    if x_rank is None:                          # (a rank seen only at run time)
        x_rank = len(example)
    dtype = getattr(x, 'dtype', None)
    if dtype is None or dtype.kind not in 'fc':
        dtype = numpy.float64
    if not x_batched and not is_array(x) and is_array(g) and g.ndim > bool(g_batched):
        # x, a number, stands for an array (an adjoint broadcast lazily, as sum's
        # is): its tangent is one, of g's shape
        return xp.array(g if g_batched else broadcast_batch(g, size), dtype=dtype)
    if type(g) is float and g == 0.0:
        kind = getattr(getattr(x, 'dtype', None), 'kind', None)
        if not (isinstance(x, (float, complex)) or kind in ('f', 'c')):
            # the tangent of an integer (or of a function, a tape's slot) is zero:
            # it stays the zero, as rt.finalize keeps it for an int, so rules
            # that skip a zero tangent skip it here too (x ** n's log(x) term)
            return ZERO
        return xp.zeros((size,) + tuple(example), dtype=dtype)
    full = (size,) + tuple(example)
    if type(g) is numpy.ndarray and g.base is None and g.shape == full and g.dtype == dtype:
        return g                  # already an owned array of its own (as rt.finalize does)
    if g_batched:
        g = _lift(g, 0, x_rank)
    out = xp.empty(full, dtype=dtype)
    out[...] = g
    return out


def finalize_batched_transpose(h, g, x, spec, size):
    """The adjoint of finalize_batched's g for the full cotangent h: h summed
    back to g's shape (per example where g is batched, over the batch too
    where it is not)."""
    if isinstance(spec, (dict, tuple)) and not _leaf_spec(spec):
        if is_zero(g):
            return g
        keys = list(x) if isinstance(spec, dict) else range(len(spec))
        parts = [finalize_batched_transpose(h[k], g[k], x[k], spec[k], size) for k in keys]
        return dict(zip(keys, parts)) if isinstance(spec, dict) else type(g)(parts)
    if isinstance(x, (dict, list, tuple)):      # a leaf spec for a container
        if is_zero(g):
            return g
        parts = {k: finalize_batched_transpose(item(h, k), _part(g, k), v, spec, size)
                 for k, v in (x.items() if isinstance(x, dict) else enumerate(x))}
        return parts if isinstance(x, dict) else list(parts.values())
    return _sum_to_batched(h, shape(g)[1:]) if spec[0] else sum_to(h, shape(g))


def _leaf_spec(spec):
    return isinstance(spec, tuple) and not (spec and isinstance(spec[0], (tuple, dict)))


def _part(g, key):
    if type(g) is float and g == 0.0:
        return g
    return g[key]


def _element(g, key, spec):
    """Element `key` of g, the adjoint of a container: of a batched array g
    (an array standing for the container), past its batch axis."""
    if is_array(g) and _spec_g_batched(spec):
        return g[:, key]
    return _part(g, key)


def _spec_g_batched(spec):
    if isinstance(spec, dict):
        return any(_spec_g_batched(s) for s in spec.values())
    if isinstance(spec, tuple) and spec and isinstance(spec[0], (tuple, dict)):
        return any(_spec_g_batched(s) for s in spec)
    return bool(spec[0]) if spec else False


def attribute(x, name):
    """An attribute read, as a function (for the per-example loop)."""
    return getattr(x, name)


def unsum_batched(g, like):
    """The transpose of the batched sums: g, batched, broadcast back to `like`'s
    shape with its example axes lined up after the batch axis."""
    xp = array_module(g, like)
    g = xp.asarray(g)
    missing = len(shape(like)) - g.ndim
    if missing > 0:
        g = g[(slice(None),) + (None,) * missing]
    return xp.broadcast_to(g, shape(like))


def batch_outputs(tree, axes, out_axes, size):
    """The output of batched code with every leaf placed as out_axes asks:
    unbatched leaves repeated along the batch, batch axes moved into place."""
    leaves, treedef = tree_flatten(tree)
    have = _leaf_axes(axes, tree)
    want = _leaf_axes(out_axes, tree)
    out = []
    for leaf, a, w in zip(leaves, have, want):
        if w is None:
            if a is not None:
                raise ValueError('vmap: out_axes is None for an output that differs between '
                                 'examples')
            out.append(leaf)
            continue
        if not _numeric(leaf):            # a function or None (a pullback's parts)
            out.append(leaf)
            continue
        if a is None:
            leaf = broadcast_batch(leaf, size)
        out.append(array_module(leaf).moveaxis(leaf, 0, w) if w != 0 else leaf)
    return tree_unflatten(treedef, out)


def batch_outputs_transpose(g, tree, axes, out_axes, size):
    """The adjoint of batch_outputs for its full cotangent g: each leaf's batch
    axis moved back to the front, summed away where the leaf was repeated."""
    leaves, treedef = tree_flatten(tree)
    parts = []
    # g's leaves along tree's structure: where tree holds None, g (made
    # dense) may hold the zero 0.0, which must not shift the leaves after it
    for gl, leaf, a, w in zip(derivative_leaves(g, treedef), leaves, _leaf_axes(axes, tree),
                              _leaf_axes(out_axes, tree)):
        if w is not None and _numeric(leaf):
            gl = array_module(gl).moveaxis(gl, w, 0) if w != 0 else gl
            gl = sum_to(gl, shape(leaf)) if a is None else gl
        parts.append(gl)
    return tree_unflatten(treedef, parts)


def example_rank(operands, axes):
    """The widest example among element-wise operands (ranks known only now).
    Containers (rt.add adds them leaf by leaf) give ranks shaped like them
    (tuples, and dicts for dicts), each leaf's the widest of that leaf's
    operands; a number against a container in another operand is the zero
    0.0, which stands for any container."""
    arrays = max((numpy.ndim(x) - (a is not None) for x, a in zip(operands, axes)
                  if _children(x) is None), default=0)
    trees = [_rank_tree(x, a) for x, a in zip(operands, axes) if _children(x) is not None]
    if not trees:
        return arrays
    widest = trees[0]
    for tree in trees[1:]:
        widest = _widest(widest, tree)
    if widest is None:
        return arrays                 # (structures seen to differ: leaf by leaf is moot)
    return _at_least(widest, arrays)


def _children(x):
    """The children of a container or a registered node (a dict for a dict,
    else a list); None for a leaf."""
    if isinstance(x, dict):
        return x
    if isinstance(x, (list, tuple)):
        return list(x)
    return node_children(x)


def _items(children):
    return children.items() if isinstance(children, dict) else enumerate(children)


def _rank_tree(x, axes):
    """Each leaf's example rank, shaped like x (`axes` a prefix, as vmap's)."""
    children = _children(x)
    if children is None:
        return numpy.ndim(x) - (axes is not None)     # (container axes: the zero, batched)
    ranks = {k: _rank_tree(v, _flag(axes, k)) for k, v in _items(children)}
    return ranks if isinstance(children, dict) else tuple(ranks.values())


def _widest(a, b):
    """Leaf by leaf the larger of two rank trees: a leaf against a subtree (the
    zero standing for a container) gives the subtree; None where the
    structures differ."""
    if a is None or b is None:
        return None
    if isinstance(a, int) or isinstance(b, int):
        return max(a, b) if isinstance(a, int) and isinstance(b, int) else \
            (b if isinstance(a, int) else a)
    if type(a) is not type(b) or len(a) != len(b) or isinstance(a, dict) and a.keys() != b.keys():
        return None
    parts = {k: _widest(v, b[k]) for k, v in _items(a)}
    if None in parts.values():
        return None
    return parts if isinstance(a, dict) else tuple(parts.values())


def _at_least(ranks, floor):
    if isinstance(ranks, int):
        return max(ranks, floor)
    parts = {k: _at_least(v, floor) for k, v in _items(ranks)}
    return parts if isinstance(ranks, dict) else tuple(parts.values())


def lift_batched(x, rank, size=None, operands=()):
    """Batched x given axes after its batch axis so that an example has `rank`
    axes: it then broadcasts against unbatched operands as one example would.
    A container is lifted leaf by leaf to the ranks of example_rank's tree.
    With the batch `size`, a number (the zero 0.0 that stands for a batched
    value whose form only the run shows: a tangent entering a loop) becomes
    an array of that form, (size, 1, .., 1): against an unbatched array the
    number alone would give an array of no batch axis where a batched one is
    expected (0.0 * c has c's shape). Its dtype is the one the number and the
    operation's `operands` make, so the result's dtype is the number's."""
    if size is not None and not isinstance(rank, (tuple, dict)) and rank > 0 \
            and _numeric(x) and numpy.ndim(x) == 0:
        xp = array_module(x, *[o for o in operands if is_array(o)])
        dtype = xp.result_type(x, *[o for o in operands if _numeric(o)])
        return xp.broadcast_to(xp.asarray(x, dtype=dtype), (size,) + (1,) * rank)
    return lift_leaves(x, rank, 0)


def lift_leaves(x, rank, axes):
    """lift_batched of the leaves of x that `axes` (a prefix, as vmap's) says
    are batched; the others broadcast from the right as they are."""
    children = _children(x)
    if children is None:
        if isinstance(rank, (tuple, dict)):        # the zero standing for a container
            return x
        return _lift(x, None if axes is None else 0, rank)
    if not isinstance(rank, (tuple, dict)) or isinstance(rank, dict) != isinstance(
            children, dict) or len(rank) != len(children):
        return x                                   # (structures seen to differ)
    parts = [lift_leaves(v, rank[k], _flag(axes, k)) for k, v in _items(children)]
    return _rebuilt_like(x, parts)


def _rebuilt_like(x, parts):
    """x's container (or node) holding `parts`, in x's order."""
    if isinstance(x, dict):
        return dict(zip(x, parts))
    if isinstance(x, (list, tuple)):
        return _rebuild(x, parts)
    return node_rebuilt(x, parts)


def reshape_like(h, like):
    """h reshaped, leaf by leaf, to the shapes of like's arrays: lift_batched's
    transpose (it only adds axes of length 1), and its own."""
    if isinstance(like, dict):
        return {k: reshape_like(item(h, k), v) for k, v in like.items()}
    if isinstance(like, (list, tuple)):
        return _rebuild(like, [reshape_like(item(h, i), v) for i, v in enumerate(like)])
    children = node_children(like)
    if children is not None:
        if is_zero(h):
            return h
        return node_rebuilt(like, [reshape_like(u, v) for u, v in zip(node_children(h), children)])
    if is_array(like) and not is_zero(h):
        return array_module(h, like).reshape(h, like.shape)
    return h


def batched_diag(v, k=0):
    """np.diag of each example's vector: (batch, n) to (batch, n + |k|, n + |k|)."""
    xp = array_module(v)
    size = shape(v)[1] + abs(k)
    out = xp.zeros((shape(v)[0], size, size), dtype=v.dtype)
    i = xp.arange(shape(v)[1])
    out[:, i + max(-k, 0), i + max(k, 0)] = v
    return out


def dense_batched(t, x, t_batched, x_batched, size):
    """rt.dense(t, x) per example, as one batched value: t (batched or not, as
    the flags say; 0.0 for zero) shaped like x's examples, batch axis first.
    Kinds and ranks are read here, at run time: for a number x a batched t is
    kept as it is, as dense keeps t (x may be a loop's first 0.0 of an array).
    For a container x each flag is one bool for all its leaves, or a container
    of flags shaped like x; a leaf batched in neither t nor x is rt.dense's,
    unbatched."""
    if isinstance(x, (dict, list, tuple)):
        parts = {k: dense_batched(item(t, k), v, _flag(t_batched, k), _flag(x_batched, k), size)
                 for k, v in (x.items() if isinstance(x, dict) else enumerate(x))}
        return same_dict(x, parts) if isinstance(x, dict) else _rebuild(x, list(parts.values()))
    if _integer(x):
        # an integer's tangent is zero: as for the Python int of one example (a
        # tape's loop count, an exponent), it stays the number 0.0, unbatched
        # (as the batch pass knows it), so rules that skip a zero tangent
        # (x ** n's log(x) term) skip it batched too
        return ZERO
    if callable(x) and not is_array(x) and node_children(x) is None:
        # so is a function's (a saved pullback's backward function), which
        # the batch pass knows unbatched: a zeros array kept here (rt.dense
        # keeps t) would be batched again by the next vmap (jacfwd(jacfwd(jacrev)))
        return ZERO
    if not (t_batched or x_batched):
        return dense(t, x)
    if not is_array(x) and (t_batched and not is_zero(t) or x_batched and is_zero(t)):
        # as rt.dense keeps t for a number; a number where a batched value is
        # expected is the structural zero, whose zero tangent stays the zero
        return t
    full = shape(x) if x_batched else (size,) + shape(x)
    xp = array_module(x, t)
    if is_zero(t):
        kind = getattr(getattr(x, 'dtype', None), 'kind', None)
        if not (isinstance(x, (float, complex)) or kind in ('f', 'c')):
            return ZERO                     # (x a function or None: a pullback's parts)
        return xp.zeros(full, dtype=_float_dtype(x))
    if t_batched:
        t = _lift(t, 0, len(full) - 1)
    return t if shape(t) == full else xp.broadcast_to(xp.asarray(t, dtype=_float_dtype(t, x)), full)


def _integer(x):
    """Whether x is an integer or bool number or array (its tangent is zero)."""
    kind = getattr(getattr(x, 'dtype', None), 'kind', None)
    return kind in ('i', 'u', 'b') or isinstance(x, (bool, int)) and not hasattr(x, 'dtype')


def _flag(flags, key):
    """One element's flag from dense_batched's flags (a bool, or per element)."""
    return flags[key] if isinstance(flags, (tuple, list, dict)) else flags


def dense_batched_vjp(g, t, x, t_batched, x_batched, size):
    """The adjoint of dense_batched's t: g summed back to t's shape (per example
    where t is batched). It takes dense_batched's other arguments too, as its
    own transpose is dense_batched (of g, shaped like t)."""
    if isinstance(x, (dict, list, tuple)):
        if is_zero(g):
            return g
        parts = {k: dense_batched_vjp(item(g, k), item(t, k), v, _flag(t_batched, k),
                                      _flag(x_batched, k), size)
                 for k, v in (x.items() if isinstance(x, dict) else enumerate(x))}
        return parts if isinstance(x, dict) else list(parts.values())
    if is_zero(g) or not is_array(x):
        return g
    if t_batched and is_array(t):
        return _sum_to_batched(g, shape(t)[1:])
    return sum_to(g, shape(t))                   # (a number t: one value for every example)

"""Run-time helpers that generated derivative code calls (as `rt.<name>`).

Adjoint convention: an adjoint may be any value *broadcastable* to its primal's
shape, and stands for that broadcast. So the cotangent of `np.sum(x)` is passed
on as a scalar instead of a filled array, and element-wise rules never
allocate for it. The Python float 0.0 is the zero adjoint of anything,
containers included. `materialize` and `finalize` give full arrays where a
shape is needed.
"""
import numbers

import numpy

from .backend import array_module, is_array
from .tree import _node_of, children_of, node_children, node_rebuilt, same_dict

ZERO = 0.0
_ndarray = numpy.ndarray
_CONTAINERS = (list, tuple, dict)


def shape(x):
    return getattr(x, 'shape', None) if is_array(x) else numpy.shape(x)


def ndim(x):
    return len(shape(x))


def size(x):
    return int(numpy.prod(shape(x)))


def count(a, axis=None):
    """How many elements a reduction over `axis` combines into each result."""
    dims = shape(a)
    if axis is None:
        return int(numpy.prod(dims))
    return int(numpy.prod([dims[i] for i in _axes(axis, len(dims))]))


def is_zero(g):
    return type(g) is float and g == 0.0


def materialize(g, y):
    """The full-shape array that the (broadcastable) adjoint `g` stands for.
    (Against None, a tape slot not filled yet, `g` stays as it is.)"""
    if y is None:
        return g
    target = shape(y)
    if shape(g) == target and is_array(g):
        return g
    xp = array_module(g, y)
    return xp.broadcast_to(xp.asarray(g, dtype=_float_dtype(g, y)), target)


def _float_dtype(*values):
    for v in values:
        dt = getattr(v, 'dtype', None)
        if isinstance(dt, numpy.dtype) and dt.kind in 'fc':
            return dt
    return numpy.float64


def sum_to(g, target):
    """Sum a full array down to `target` shape, undoing NumPy broadcasting."""
    gshape = shape(g)
    if gshape == tuple(target):
        return g
    xp = array_module(g)
    lead = len(gshape) - len(target)
    if lead:
        g = xp.sum(g, axis=tuple(range(lead)))
    ones = tuple(i for i, d in enumerate(target) if d == 1 and shape(g)[i] != 1)
    if ones:
        g = xp.sum(g, axis=ones, keepdims=True)
    return xp.reshape(g, target)


def unbroadcast(g, x, y):
    """Adjoint of operand `x` of a broadcasting op with output `y`: shaped
    like x, or the zero. Where x has y's shape that is g made full (a
    view, nothing summed): so each example of batched code, which makes it
    full too, gets the value this gives, and a tangent or cotangent computed
    from one lines up with the other."""
    xs = shape(x)
    if xs == shape(y):
        return real_for(g if is_zero(g) or shape(g) == xs else materialize(g, y), x)
    return real_for(sum_to(materialize(g, y), xs), x)


def is_complex(v):
    """Whether v (an array, a number, a list of numbers) holds complex values."""
    dtype = getattr(v, 'dtype', None)
    if isinstance(dtype, numpy.dtype):
        return dtype.kind == 'c'
    if isinstance(v, (list, tuple)):
        return numpy.iscomplexobj(v)
    return isinstance(v, complex)


def real_for(g, x):
    """Adjoint `g` of x cut to its real part where x is real and g complex:
    the transpose of NumPy promoting a real x to complex (as JAX's is). Left
    complex, it would carry an imaginary part back into real arithmetic."""
    if x is not None and is_complex(g) and not is_complex(x):
        return g.real
    return g


def _axes(axis, nd):
    if axis is None:
        return tuple(range(nd))
    if isinstance(axis, numbers.Integral):
        axis = (axis,)
    return tuple(sorted(a % nd for a in axis))


def sum_vjp(g, x, axis=None, keepdims=False):
    """Adjoint of x for y = sum(x, axis, keepdims), still broadcastable."""
    if keepdims or axis is None or ndim(g) == 0:
        return g
    axes = _axes(axis, ndim(x))
    reduced = tuple(d for i, d in enumerate(shape(x)) if i not in axes)
    g = materialize(g, numpy.empty(reduced, dtype=numpy.int8)) if shape(g) != reduced else g
    return array_module(g).expand_dims(g, axes)


def keep_dims(y, x, axis, keepdims):
    """Reshape a reduction's output so it broadcasts against its input."""
    if keepdims or axis is None:
        return y
    return array_module(y).expand_dims(y, _axes(axis, ndim(x)))


def extremum_vjp(g, x, y, axis=None, keepdims=False):
    """max/min: the cotangent is shared equally among the tied positions (none
    where `initial` won: the count is then taken as 1, for 0 / 1)."""
    xp = array_module(x)
    hit = (x == keep_dims(y, x, axis, keepdims))
    count = xp.maximum(xp.sum(hit, axis=axis, keepdims=True), 1)
    return sum_vjp(g, x, axis, keepdims) * (hit / count).astype(_float_dtype(x), copy=False)


def _container(x):
    return isinstance(x, (dict, list, tuple))


def _tree(x):
    """A container, or a node of a registered type."""
    return _container(x) or node_children(x) is not None


def add(a, b):
    """a + b for adjoints, where either may be the zero 0.0 or a container.

    Adding the zero returns the other side itself: never a copy."""
    if type(a) is float and a == 0.0:
        return b
    if type(b) is float and b == 0.0:
        return a
    if _tree(a) != _tree(b):
        # an array against a container: the zero adjoint, made NumPy zeros on
        # its way through batched code (repeated along the batch, or one
        # example's 0-d part of that)
        array, tree = (a, b) if _tree(b) else (b, a)
        if not array_module(array).any(array):
            return tree
    if isinstance(a, dict):
        # a dict that gained keys on one path only (`if c: d['b'] = v`): a
        # key missing from one side has the zero adjoint there
        return same_dict(a, [(k, add(a.get(k, ZERO), b.get(k, ZERO)))
                             for k in _union(a, b)])
    if isinstance(a, (list, tuple)):
        return _rebuild(a, [add(u, v) for u, v in zip(a, b)])
    kind, node = _node_of(a)
    if node is not None:                     # a registered pytree node: child by child
        (ours, aux), (theirs, _) = node[0](a), node[0](b)
        return node[1](aux, [add(u, v) for u, v in zip(ours, theirs)])
    return a + b


def _union(a, b):
    """The keys of dicts a and b, a's first, in their own orders."""
    return list(a) + [k for k in b if k not in a]


def add_transpose_transpose(h, cot, x, y):
    """Transpose of cot -> rt.add_transpose(cot, x, y), the adjoint of add's
    operand x (y the sum): leaf by leaf unbroadcast's transpose, h summed back
    to cot's shape. Its own transpose is rt.add_transpose again, so chains of
    derivatives through rt.add go on to any order."""
    from .rules import unbroadcast_transpose        # (rules imports this module)
    if is_zero(h) or is_zero(cot) and _container(x):
        return ZERO
    if isinstance(x, dict):
        return {k: add_transpose_transpose(item(h, k), item(cot, k), v, y[k])
                for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return _rebuild(x, [add_transpose_transpose(item(h, i), item(cot, i), v, y[i])
                            for i, v in enumerate(x)])
    if _container(y):                 # x the zero added to a container: no adjoint
        return ZERO
    return unbroadcast_transpose(h, cot, x, y)


def item(g, key):
    """The adjoint of `t[key]` taken out of the adjoint of container `t`."""
    if is_zero(g):
        return ZERO
    if not _container(g) and numpy.ndim(g) < len(key if isinstance(key, tuple) else (key,)) \
            and not array_module(g).any(g):
        return ZERO       # the zero made NumPy zeros in batched code (see add)
    return g[key]


def seed(out, holomorphic=False):
    """The cotangent 1.0 that starts `grad`; checks the output is a real scalar,
    or with holomorphic=True a complex one (JAX's rule)."""
    if holomorphic:
        return _holomorphic_seed(out)
    dtype = getattr(out, 'dtype', None)
    if type(out) is complex or dtype is not None and dtype.kind == 'c':
        raise TypeError(f'grad requires real-valued outputs (output dtype that is a sub-dtype '
                        f'of np.floating), but got {dtype or "complex"}. For holomorphic '
                        'differentiation, pass holomorphic=True. For differentiation of '
                        'non-holomorphic functions involving complex outputs, use codax.vjp '
                        'directly.')
    if dtype is None and type(out) is not float:
        raise TypeError(f'grad requires real-valued outputs (output dtype that is a sub-dtype '
                        f'of np.floating), but got {type(out).__name__} {out!r}: a real '
                        'floating-point scalar output is needed. For differentiation of '
                        'functions with integer outputs, use codax.vjp directly.'
                        if isinstance(out, (int, bool)) else
                        f'grad requires a real scalar output, got {type(out).__name__}; '
                        'use vjp for other outputs')
    if dtype is not None and shape(out) != ():
        raise _not_scalar(out)
    if dtype is not None and dtype.kind != 'f':
        raise TypeError(f'grad requires real-valued outputs (output dtype that is a sub-dtype '
                        f'of np.floating), but got {dtype}: a real floating-point output is '
                        'needed. For differentiation of functions with integer outputs, use '
                        'codax.vjp directly.')
    return 1.0


def _holomorphic_seed(out):
    dtype = getattr(out, 'dtype', None)
    if not (type(out) is complex or dtype is not None and dtype.kind == 'c'):
        raise TypeError('grad with holomorphic=True requires outputs with complex dtype, but '
                        f'got {dtype or type(out).__name__} (it requires a complex output)')
    if shape(out) != ():
        raise _not_scalar(out)
    return 1.0


def _not_scalar(out):
    return TypeError(f'Gradient only defined for scalar-output functions. Output had shape: '
                     f'{shape(out)}. (grad requires a scalar output; use vjp for non-scalar '
                     'outputs)')


def finalize(g, x, seen=None):
    """Turn adjoint `g` into a gradient shaped and typed like primal `x`.

    Containers and registered nodes are rebuilt with x's structure, zeros
    become zero arrays, and broadcastable adjoints become owned full arrays
    of x's dtype."""
    if type(g) is _ndarray and g.base is None and seen is None and type(x) is _ndarray \
            and g.dtype is x.dtype and g.shape == x.shape:
        return g                       # the common case: already an owned array
    seen = set() if seen is None else seen
    if isinstance(x, dict):            # (an OrderedDict, a defaultdict: of x's type)
        return same_dict(x, [(k, finalize(item(g, k), v, seen)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        parts = [finalize(item(g, i), v, seen) for i, v in enumerate(x)]
        return type(x)(*parts) if hasattr(x, '_fields') else type(x)(parts)
    children = node_children(x)
    if children is not None:          # a registered node: child by child, as a tuple
        parts = finalize(ZERO if is_zero(g) else tuple(children_of(g)), tuple(children), seen)
        return node_rebuilt(x, parts)
    if x is None:
        return None
    g = real_for(g, x)
    if not is_array(x):
        if isinstance(x, (float, complex)) and is_array(g) and g.ndim:
            # x, a number, stands for an array (a loop's first 0.0 that
            # batched code lifts to the rank the loop gives it, as
            # finalize_batched says): its tangent is one, of g's shape
            return array_module(g).array(g, dtype=numpy.result_type(g.dtype, type(x)))
        if isinstance(x, float):
            return type(x)(g)
        if isinstance(x, numpy.inexact):       # a NumPy number: one of its own dtype
            return x.dtype.type(g)
        return ZERO if is_zero(g) else numpy.asarray(g)[()]    # an int's zero stays the zero
    xp = array_module(x)
    dtype = x.dtype if x.dtype.kind in 'fc' else numpy.float64
    if is_array(g) and g.shape == x.shape and g.dtype == dtype and id(g) not in seen \
            and g.flags.writeable and g.base is None:
        seen.add(id(g))
        return g
    out = xp.array(xp.broadcast_to(xp.asarray(g, dtype=dtype), x.shape))
    seen.add(id(out))
    return out


# ---- indexing and containers (functional forms of the mutations users write) ----

def _index_parts(idx):
    return idx if isinstance(idx, tuple) else (idx,)


def _advanced_int(idx):
    for part in _index_parts(idx):
        if (is_array(part) or isinstance(part, list)) and numpy.asarray(part).dtype.kind in 'iu':
            return True
    return False


# ---- writes repeated at one element: the last one wins ----

_IOTA = numpy.arange(0, dtype=numpy.intp)


def _iota(xp, n):
    """0, 1, ..., n-1. On NumPy a view of one cached range, grown as needed:
    making it anew would cost as much as a write into an array of that length."""
    global _IOTA
    if xp is not numpy:
        return xp.arange(n, dtype=numpy.intp)    # cheap on a GPU, and a cache would be per device
    if len(_IOTA) < n:
        _IOTA = numpy.arange(n, dtype=numpy.intp)
        _IOTA.flags.writeable = False
    return _IOTA[:n]


def _positions(y, idx):
    """For each element of y[idx], its flat (C-order) position in y: per axis,
    that axis's coordinates gathered from a broadcast view, so the work
    follows y[idx], not y, and a negative index lands where it writes."""
    xp = array_module(y)
    dims = shape(y)
    pos, stride = 0, 1
    for axis in reversed(range(len(dims))):
        coords = _iota(xp, dims[axis]).reshape((-1,) + (1,) * (len(dims) - axis - 1))
        pos = pos + xp.broadcast_to(coords, dims)[idx] * stride
        stride *= dims[axis]
    return xp.asarray(pos)


def _stable_argsort(a):
    xp = array_module(a)
    if xp is numpy:
        return numpy.argsort(a, kind='stable')
    return xp.argsort(a)        # CuPy sorts stably always (and older CuPy takes no kind=)


def _last_of_each(pos):
    """For each of the positions `pos`, whether no later one (C order) is the
    same: of writes repeated at one element, the one that stays. Sorting, not
    a scatter over y, so its cost follows the writes, not y's size."""
    xp = array_module(pos)
    flat = pos.ravel()
    order = _stable_argsort(flat)
    ranked = flat[order]
    last = xp.ones(flat.shape, dtype=bool)
    last[:-1] = ranked[1:] != ranked[:-1]       # the end of a run: stable, so the last written
    out = xp.empty_like(last)
    out[order] = last                           # a permutation: no element written twice
    return out.reshape(pos.shape)


def _write(out, idx, v):
    """out[idx] = v in place (v cast to out's dtype), where of writes repeated
    at one element the last, in the C order of out[idx], wins. NumPy's own
    write follows the memory order of the index and values and promises none,
    CuPy's writes race: writing only the winners makes the result certain,
    and written_part relies on which one won."""
    if not _advanced_int(idx):                  # only integer arrays repeat an element
        out[idx] = v
        return out
    xp = array_module(out)
    pos = _positions(out, idx)
    last = _last_of_each(pos)
    v = xp.asarray(v, dtype=out.dtype)
    if v.ndim > pos.ndim:                       # leading 1s, which NumPy's writes drop
        v = v.reshape(v.shape[v.ndim - pos.ndim:])
    out[xp.unravel_index(pos[last], out.shape)] = xp.broadcast_to(v, pos.shape)[last]
    return out


def written_part(g, idx):
    """The cotangent of each write of y[idx] = v, from g (y's shape): g[idx],
    but zero for a write that a later one to the same element overwrote."""
    part = g[idx]
    if not _advanced_int(idx):
        return part
    return array_module(g).where(_last_of_each(_positions(g, idx)), part, 0)


def getitem_vjp(g, x, idx):
    """Adjoint of x for y = x[idx] (arrays, lists, tuples and dicts)."""
    if isinstance(x, dict):
        out = {k: ZERO for k in x}
        out[idx] = g
        return out
    if isinstance(x, (list, tuple)):
        out = [ZERO] * len(x)
        if isinstance(idx, slice):
            for k, i in enumerate(range(*idx.indices(len(x)))):
                out[i] = item(g, k)
        else:
            out[idx] = g
        return _rebuild(x, out)
    xp = array_module(x)
    g = real_for(g, x)
    z = xp.zeros(shape(x), dtype=_float_dtype(x, g))
    if _advanced_int(idx):
        xp.add.at(z, idx, xp.broadcast_to(xp.asarray(g), z[idx].shape))
    else:
        z[idx] = g
    return z


def _rebuild(like, items):
    """A list/tuple/namedtuple of the same type as `like` holding `items`."""
    return type(like)(*items) if hasattr(like, '_fields') else type(like)(items)


def setitem(x, idx, v):
    """`x[idx] = v` without touching x: returns the updated copy."""
    if isinstance(x, list):
        out = list(x)
    elif isinstance(x, dict):
        out = dict(x)
    else:
        return _write(x.copy(), idx, v)         # of repeated writes the last wins
    out[idx] = v
    return out


def setitem_vjp_x(g, y, idx):
    """Adjoint of x for y = setitem(x, idx, v): g with the written part zeroed."""
    if isinstance(y, (list, dict)):
        _no_list_slice(y, idx)
        return setitem(g if not is_zero(g) else ([ZERO] * len(y) if isinstance(y, list)
                                                 else {k: ZERO for k in y}), idx, ZERO)
    xp = array_module(y)
    out = xp.array(materialize(g, y))
    out[idx] = 0
    return out


def setitem_vjp_v(g, y, idx, v):
    """Adjoint of v for y = setitem(x, idx, v)."""
    if isinstance(y, (list, dict)):
        _no_list_slice(y, idx)
        return item(g, idx)
    return sum_to(written_part(materialize(g, y), idx), shape(v))


def _no_list_slice(y, idx):
    """A list's slice assignment can change its length, which these adjoints
    cannot undo (normalize refuses it where it knows the target is a list)."""
    if isinstance(y, list) and isinstance(idx, slice):
        raise TypeError('codax cannot differentiate an assignment to a slice of a list (it '
                        'can change the length); build the new list instead: '
                        '`xs = xs[:1] + [a, b]`')


def append(xs, v):
    """`xs.append(v)` as a value: a new list."""
    return list(xs) + [v]


def is_container_zero(g):
    """Whether `g`, the adjoint of a list, tuple or dict, is the zero: 0.0, or
    a zero number (the zero made a NumPy number in batched code: see add).
    A container's adjoint that is not a container can only be the zero."""
    return is_zero(g) or not _container(g) and numpy.ndim(g) == 0 and not g


def append_vjp_list(g, xs):
    if is_container_zero(g):
        return ZERO
    return list(g[:-1])


def append_vjp_value(g):
    return item(g, -1)


def iterate(obj):
    """What a `for` loop walks, as an indexable sequence."""
    if isinstance(obj, (list, tuple, range)) or is_array(obj):
        return obj
    return list(obj)


def unstack(g, xs, axis=0):
    """Adjoint of the list `xs` for y = stack(xs, axis)."""
    if is_zero(g):
        return ZERO
    xp = array_module(g)
    return [sum_to(xp.take(g, i, axis=axis), shape(x)) for i, x in enumerate(xs)]


def array_vjp(g, x, y):
    """Adjoint of x for y = np.array(x) (x an array or nested list of values)."""
    if isinstance(x, (list, tuple)):
        if is_zero(g):
            return ZERO
        g = materialize(g, y)
        return type(x)(array_vjp(g[i], xi, y[i]) for i, xi in enumerate(x))
    return sum_to(materialize(g, y), shape(x))


def concatenate_vjp(g, xs, y, axis=0):
    if is_zero(g):
        return ZERO
    g = materialize(g, y)
    xp = array_module(g)
    if axis is None:                   # the inputs were flattened first
        g = xp.ravel(g)
        bounds = numpy.cumsum([size(x) for x in xs])[:-1]
        axis = 0
    else:
        bounds = numpy.cumsum([shape(x)[axis] for x in xs])[:-1]
    parts = xp.split(g, [int(b) for b in bounds], axis=axis)
    return [xp.reshape(p, shape(x)) for p, x in zip(parts, xs)]


def broadcast_list(g, xs, y):
    """Adjoint of each x for y = x0 + x1 + ... (Python's sum over a list).
    Over the rows of an array, every row has the same adjoint, which (shaped
    like a row) broadcasts to the array: an array, never a list of rows."""
    if is_zero(g):
        return ZERO
    if is_array(xs):
        return unbroadcast(g, xs[0], y) if shape(xs) and shape(xs)[0] else ZERO
    return [unbroadcast(g, x, y) for x in xs]


def stop_gradient(x):
    """x itself, through which no derivative flows (a non-differentiable primitive)."""
    return x


def dense(t, x):
    """Tangent (or adjoint) `t` as a value shaped like primal `x`: the zero
    becomes zeros, a broadcastable array its broadcast, containers per item."""
    if isinstance(x, dict):
        return same_dict(x, [(k, dense(item(t, k), v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return _rebuild(x, [dense(item(t, i), v) for i, v in enumerate(x)])
    if is_array(x):
        if is_zero(t):
            return array_module(x).zeros(x.shape, dtype=_float_dtype(x))
        return t if shape(t) == x.shape else materialize(t, x)
    return t


_jvp_hook = None


def install_jvp_hook(hook):
    global _jvp_hook
    _jvp_hook = hook


def jvp_call(fn, primals, tangents, kwargs=None, kwtangents=None):
    """Call a user function inside forward-mode code: (output, output tangent)."""
    return _jvp_hook(fn, primals, tangents, kwargs or {}, kwtangents or {})


_tangent_hook = None


def install_tangent_hook(hook):
    global _tangent_hook
    _tangent_hook = hook


def tangent_function(fn, primals, argnums):
    """The generated forward-mode function of `fn` with tangents for `argnums`
    (an int or a tuple): jvp_f(*primals, *tangents) -> (output, its tangent)."""
    return _tangent_hook(fn, primals, argnums)


_vjp_hook = None


def install_vjp_hook(hook):
    global _vjp_hook
    _vjp_hook = hook


def vjp_call(fn, *args, **kwargs):
    """Call a user function inside differentiated code: (output, pullback).

    The pullback is data, (backward function, tape), applied by `pullback`; it
    returns one adjoint per parameter of `fn`, in order. Because it is data and
    both functions are generated source, derivative code that calls user
    functions can itself be differentiated. codax installs the hook that
    transforms `fn` per argument signature (this module must not import the
    transformer)."""
    return _vjp_hook(fn, args, kwargs)


_sweeps_hook = None


def install_sweeps_hook(hook):
    global _sweeps_hook
    _sweeps_hook = hook


def sweeps(fn, *args):
    """(forward, backward): the generated sweeps of `fn` for these arguments."""
    return _sweeps_hook(fn, args)


_sweeps_for_hook = None


def install_sweeps_for_hook(hook):
    global _sweeps_for_hook
    _sweeps_for_hook = hook


def sweeps_for(fn, active, numeric, *args):
    """(forward, backward) of `fn` differentiated with respect to the
    parameters `active`, `numeric` those that are not containers: the sweeps
    that batched code (vmap of grad) chose at compile time. `args` tell the
    array module."""
    return _sweeps_for_hook(fn, active, numeric, args)


def pullback_function(pb):
    """The backward function of a pullback (not differentiable: a function)."""
    return pb[0]


def pullback_state(pb):
    """The tape of a pullback, which derivatives flow through."""
    return pb[1]


def pullback(pb, cotangent):
    """Apply a pullback made by vjp_call to the output's cotangent. A zero
    cotangent has zero adjoints: the backward sweep is skipped (as JAX does
    with symbolic zeros), which also keeps a custom rule that calls its own
    function from differentiating itself without end."""
    if is_zero(cotangent):
        return ZERO
    return pb[0](pb[1], cotangent)


def seed_aux(out, holomorphic=False):
    """The cotangent that starts `grad(..., has_aux=True)`: (1.0, zero for aux)."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError('with has_aux=True the function must return a pair (output, aux), '
                        f'got {type(out).__name__}')
    return (seed(out[0], holomorphic), ZERO)


def finalize_distinct(grads):
    """Several gradients from one sweep, none sharing memory with another."""
    seen = set()
    return tuple(_dedupe(g, seen) for g in grads)


def _dedupe(g, seen):
    if isinstance(g, dict):
        return same_dict(g, [(k, _dedupe(v, seen)) for k, v in g.items()])
    if isinstance(g, (list, tuple)):
        parts = [_dedupe(v, seen) for v in g]
        return type(g)(*parts) if hasattr(g, '_fields') else type(g)(parts)
    if is_array(g):
        if id(g) in seen:
            return g.copy()
        seen.add(id(g))
    return g

"""Functional indexed updates (JAX's `x.at[idx].set(v)`, spelled
`codax.numpy.at(x)[idx].set(v)`), and the helpers of their rules.

Each update returns a new array of x's dtype and leaves x alone. Repeated
integer indices accumulate for add, multiply, divide, power, min, max and
apply, as NumPy's `ufunc.at` does (`out[idx] += v` would apply only one of
them); for set the last of repeated writes, in the C order of x[idx], wins
(adjoint._write).

`mode` says what an index out of bounds does, as in JAX: None (NumPy's
IndexError; JAX would clamp or drop instead) or 'promise_in_bounds' (the same
here), 'clip' (clamped into the axis), 'drop' or 'fill' (an update there is
dropped; `at_get` reads `fill_value` there). `indices_are_sorted` and
`unique_indices` are JAX's hints, accepted and not needed. A dropped index
is one past the end of an array grown by one along its axis (_bounded), so
every update runs as it does in bounds.
"""
import numpy

from .adjoint import (_advanced_int, _float_dtype, _iota, _last_of_each, _positions,
                      _stable_argsort, _write, is_array, shape, size)
from .backend import _is_cupy, array_module

__all__ = ['at_set', 'at_add', 'at_multiply', 'at_divide', 'at_power', 'at_min', 'at_max',
           'at_apply', 'at_get', 'at_levels', 'at_share', 'at_others', 'at_others_pairs']

MODES = (None, 'promise_in_bounds', 'clip', 'drop', 'fill')


def at_set(x, idx, v, mode=None, indices_are_sorted=False, unique_indices=False):
    # of repeated writes the last wins, as for `y[idx] = v`, and the rule knows which
    return _update(_write, x, idx, v, mode)


def at_add(x, idx, v, mode=None, indices_are_sorted=False, unique_indices=False):
    return _update(_scatterer('add'), x, idx, v, mode)


def at_multiply(x, idx, v, mode=None, indices_are_sorted=False, unique_indices=False):
    return _update(_scatterer('multiply'), x, idx, v, mode)


def at_divide(x, idx, v, mode=None, indices_are_sorted=False, unique_indices=False):
    """x[idx] /= v: for an integer x a TypeError, as NumPy's in-place division
    (JAX returns floats)."""
    dtype = getattr(x, 'dtype', None)
    dtype = numpy.asarray(x).dtype if dtype is None else dtype
    if dtype.kind not in 'fc':
        raise TypeError('at(x)[idx].divide(v) needs a floating-point x, as x[idx] /= v does '
                        f'in NumPy (x has dtype {dtype}); convert x first')
    return _update(_scatterer('true_divide'), x, idx, v, mode)


def at_power(x, idx, v, mode=None, indices_are_sorted=False, unique_indices=False):
    return _update(_scatterer('power'), x, idx, v, mode)


def at_min(x, idx, v, mode=None, indices_are_sorted=False, unique_indices=False):
    return _update(_scatterer('minimum'), x, idx, v, mode)


def at_max(x, idx, v, mode=None, indices_are_sorted=False, unique_indices=False):
    return _update(_scatterer('maximum'), x, idx, v, mode)


def at_apply(x, idx, func, mode=None, indices_are_sorted=False, unique_indices=False):
    """x with `func` applied element-wise at x[idx], once per time an element
    is indexed (as `func.at(x, idx)` for a NumPy ufunc): `func` is called on
    a 1-d array of the elements of each round (at_levels), and its result
    cast to x's dtype."""
    flat = _fresh(x).reshape(-1)
    for pos in at_levels(flat.reshape(shape(x)), idx, mode):
        flat[pos] = func(flat[pos])
    return flat.reshape(shape(x))


def at_get(x, idx, mode=None, fill_value=None, indices_are_sorted=False, unique_indices=False):
    """x[idx], a copy; with mode 'drop' or 'fill', `fill_value` where an index
    is out of bounds (by default JAX's: NaN, or the extreme of an integer dtype)."""
    x = array_module(x).asarray(x)
    idx, grown = _bounded(x, idx, mode)
    if grown:
        x = _grown(x, grown, _fill(x.dtype, fill_value))
    part = x[idx]
    return part.copy() if is_array(part) else part      # a view could be written through


def at_levels(x, idx, mode=None):
    """The flat positions of the elements of x[idx], in rounds: each round
    holds every element once that is indexed at least that many times (so
    applying a function round by round applies it once per index)."""
    pos = _flat_positions(x, idx, mode).reshape(-1)
    pos = pos[pos >= 0]                                 # (not the dropped ones)
    if not pos.size:
        return []
    if not _advanced_int(idx):                          # no element twice
        return [pos]
    xp = array_module(pos)
    ranked = pos[_stable_argsort(pos)]
    # each position's rank among the equal ones before it
    rank = _iota(xp, ranked.size) - xp.searchsorted(ranked, ranked, side='left')
    return [ranked[rank == r] for r in range(int(rank.max()) + 1)]


def _update(op, x, idx, v, mode):
    """op(out, idx, v) on a copy of x, where `op` updates out in place and
    returns it; an out-of-bounds index under `mode` as _bounded makes it."""
    out = _fresh(x)
    idx, grown = _bounded(out, idx, mode)
    if not grown:
        return op(out, idx, v)
    # (1 where updates are dropped: no warning from dividing it or raising it to a power)
    return op(_grown(out, grown, 1), idx, v)[_corner(out)].copy()


def _scatterer(name):
    return lambda out, idx, v: _scatter(name, out, idx, v)


# ---- out-of-bounds indices ----

def _bounded(x, idx, mode):
    """(index, grown): idx with each integer index (a number or an array)
    made to name an element of x under `mode`: negative ones counted from the
    end, then out-of-bounds ones clipped ('clip') or made one past the end of
    their axis ('drop', 'fill'); `grown`, the axes where that happened (x must
    then grow by one along them), or None. Slices and masks stay as they are."""
    if mode not in MODES:
        raise ValueError(f'at(x)[idx]: mode must be one of {", ".join(map(repr, MODES))}, '
                         f'got {mode!r}')
    if mode is None or mode == 'promise_in_bounds':
        return idx, None
    parts = idx if isinstance(idx, tuple) else (idx,)
    dims = shape(x)
    # the axes an Ellipsis stands for: those the other parts leave
    spanned = len(dims) - sum(_axes_taken(p) for p in parts if p is not Ellipsis)
    out, axis, grown = [], 0, []
    for part in parts:
        taken = spanned if part is Ellipsis else _axes_taken(part)
        if _is_integer_index(part) and axis < len(dims):
            part, outside = _bounded_part(part, dims[axis], mode)
            if outside:
                grown.append(axis)
        out.append(part)
        axis += taken
    return (tuple(out) if isinstance(idx, tuple) else out[0]), (tuple(grown) or None)


def _axes_taken(part):
    """How many axes of x an index part reads (None adds one, a mask its rank)."""
    if part is None or part is Ellipsis:
        return 0
    if isinstance(part, slice):
        return 1
    kind = getattr(part, 'dtype', None)
    if kind is None:
        kind = numpy.asarray(part).dtype
    return numpy.ndim(part) if kind == bool else 1


def _is_integer_index(part):
    if isinstance(part, (bool, numpy.bool_)) or part is None or isinstance(part, slice) \
            or part is Ellipsis:
        return False
    if isinstance(part, (int, numpy.integer)):
        return True
    kind = getattr(part, 'dtype', None)
    if kind is None and isinstance(part, list):
        kind = numpy.asarray(part).dtype
    return kind is not None and kind.kind in 'iu'


def _bounded_part(part, n, mode):
    """(part made to name an element of an axis of length n, whether it had
    to point one past the end for an index out of bounds)."""
    if isinstance(part, (int, numpy.integer)):
        i = int(part) + n if part < 0 else int(part)
        if 0 <= i < n:
            return i, False
        return (min(max(i, 0), n - 1), False) if mode == 'clip' else (n, True)
    xp = array_module(part)
    part = xp.asarray(part)
    part = xp.where(part < 0, part + n, part)
    if mode == 'clip':
        return xp.clip(part, 0, max(n - 1, 0)), False
    outside = (part < 0) | (part >= n)
    if not outside.any():
        return part, False
    return xp.where(outside, n, part), True


def _grown(x, axes, fill):
    """x in the corner of an array one longer along `axes`, `fill` elsewhere."""
    xp = array_module(x)
    dims = list(shape(x))
    for axis in axes:
        dims[axis] += 1
    out = xp.full(dims, fill, dtype=x.dtype)
    out[_corner(x)] = x
    return out


def _corner(x):
    return tuple(slice(n) for n in shape(x))


def _fill(dtype, fill_value):
    """at_get's value for indices out of bounds: JAX's default for the dtype."""
    if fill_value is not None:
        return fill_value
    if dtype.kind in 'fc':
        return numpy.nan
    if dtype.kind == 'b':
        return True
    info = numpy.iinfo(dtype)
    return info.min if dtype.kind == 'i' else info.max


def _flat_positions(x, idx, mode):
    """For each element of x[idx], its flat position in x; -1 for an index
    dropped under `mode`."""
    idx, grown = _bounded(x, idx, mode)
    if not grown:
        return _positions(x, idx)
    xp = array_module(x)
    return _grown(_iota(xp, size(x)).reshape(shape(x)), grown, -1)[idx]


def _in_bounds(x, idx, mode, *others):
    """(x, idx, others, cut): an update of x at idx under `mode` as one whose
    index is in bounds, on x (and arrays of its shape, `others`) grown where
    an index was dropped; `cut` takes the part of x's shape back (None where
    nothing grew). For the helpers of the rules."""
    xp = array_module(x)
    x = xp.asarray(x)
    idx, grown = _bounded(x, idx, mode)
    if not grown:
        return x, idx, others, None
    return (_grown(x, grown, 0), idx,
            tuple(_grown(xp.asarray(o), grown, 0) for o in others), _corner(x))


def _fresh(x):
    """An owned copy of x (an array-like becomes an array): the result must
    never share memory with x, or the update would show through."""
    return array_module(x).array(x, copy=True)


def _scatter(name, out, idx, v):
    """out[idx] = name(out[idx], v) in place, every repeated index applied."""
    xp = array_module(out)
    v = xp.asarray(v, dtype=out.dtype)          # JAX casts the updates to x's dtype too
    if not _advanced_int(idx):                  # no element twice: one vectorized op
        out[idx] = getattr(xp, name)(out[idx], v)
    elif xp is numpy:
        getattr(numpy, name).at(out, idx, v)
    else:
        _cupy_scatter(name, out, idx, v)
    return out


def _cupy_scatter(name, out, idx, v):
    import cupyx
    scatter = {'add': cupyx.scatter_add, 'maximum': cupyx.scatter_max,
               'minimum': cupyx.scatter_min}.get(name)
    if scatter is not None:
        scatter(out, idx, v)
        return
    # CuPy has no multiply.at: apply it on the host (a slow path, for a rare update).
    host = out.get()
    parts = idx if isinstance(idx, tuple) else (idx,)
    parts = tuple(p.get() if _is_cupy(p) else p for p in parts)
    getattr(numpy, name).at(host, parts if isinstance(idx, tuple) else parts[0], v.get())
    out.set(host)


# ---- helpers of the rules (runtime/primitives/updates.py) ----

def at_share(x, idx, v, y, op, which, mode=None):
    """How y = at(x)[idx].<op>(v) passes its cotangent on, as weights: of x
    (which=0, x's shape) or of each update (which=1, the shape of y[idx]).
    Piecewise constant, so no gradient flows through the weights themselves.

    set: the elements not written take x's cotangent, and of updates repeated
    at one element only the last, which won. min/max: the inputs equal to the
    result, ties sharing equally (as np.maximum's rule shares between two)."""
    x, idx, (y,), cut = _in_bounds(x, idx, mode, y)
    share = _share(x, idx, v, y, op, which)
    return share[cut] if cut is not None and which == 0 else share


def _share(x, idx, v, y, op, which):
    xp = array_module(y)
    dtype = _float_dtype(y)
    if op == 'set':
        if which == 0:
            kept = xp.ones(shape(y), dtype=dtype)
            kept[idx] = 0
            return kept
        return _last_of_each(_positions(y, idx)).astype(dtype)
    hit_x = xp.asarray(x) == y
    hit_v = xp.broadcast_to(xp.asarray(v, dtype=y.dtype), shape(y[idx])) == y[idx]
    count = _scatter('add', hit_x.astype(dtype), idx, hit_v)
    count = xp.maximum(count, 1)                # a NaN result equals no input
    return hit_x / count if which == 0 else hit_v / count[idx]


def _product_groups(x, idx, v):
    """What the derivatives of at(x)[idx].multiply(v) need, per update (flat,
    in the order of x[idx]): its position, whether it is zero, the update with
    zeros made 1, and at its element the number of zero updates and the
    product of the nonzero ones."""
    xp = array_module(x)
    dtype = _float_dtype(x, v)
    pos = _positions(x, idx)
    out_shape = pos.shape
    pos = pos.ravel()
    vb = xp.broadcast_to(xp.asarray(v, dtype=dtype), out_shape).ravel()
    zero = vb == 0
    safe = xp.where(zero, 1, vb)                # divide by this, never by a zero update
    zeros = xp.bincount(pos[zero], minlength=size(x))[pos]
    product = _scatter('multiply', xp.ones(size(x), dtype=dtype), pos, safe)[pos]
    return xp, dtype, out_shape, pos, zero, safe, zeros, product


def at_others(x, idx, v, mode=None):
    """For each update of at(x)[idx].multiply(v) (shape of x[idx]), the
    product of the other updates applied to the same element: the derivative
    of that element's product with respect to this update. Exact with zero
    updates, by counting them rather than dividing by them."""
    x, idx, _, _ = _in_bounds(x, idx, mode)
    xp, dtype, out_shape, _, zero, safe, zeros, product = _product_groups(x, idx, v)
    others = xp.where(zero, xp.where(zeros == 1, product, 0),
                      xp.where(zeros == 0, product / safe, 0))
    return others.astype(dtype, copy=False).reshape(out_shape)


def at_others_pairs(c, x, idx, v, mode=None):
    """Derivative of at_others along c (shape of x[idx]): F c, where F[m, k]
    is the product of the updates at m's element other than m and k (0 when
    k is m or at another element). F is symmetric, so this is both the JVP
    (c a tangent) and, summed back to v's shape, the VJP (c a cotangent)."""
    x, idx, _, _ = _in_bounds(x, idx, mode)
    xp, dtype, out_shape, pos, zero, safe, zeros, product = _product_groups(x, idx, v)
    c = xp.broadcast_to(xp.asarray(c, dtype=dtype), out_shape).ravel()
    n = size(x)
    # per element: sum of c_k / v_k over nonzero updates, and of c_k over zero ones
    over_v = xp.bincount(pos, weights=xp.where(zero, 0, c / safe), minlength=n)[pos]
    at_zeros = xp.bincount(pos, weights=xp.where(zero, c, 0), minlength=n)[pos]
    nonzero_m = xp.where(zeros == 0, product / safe * (over_v - c / safe),
                         xp.where(zeros == 1, at_zeros * product / safe, 0))
    zero_m = xp.where(zeros == 1, product * over_v,
                      xp.where(zeros == 2, product * (at_zeros - c), 0))
    return xp.where(zero, zero_m, nonzero_m).astype(dtype, copy=False).reshape(out_shape)

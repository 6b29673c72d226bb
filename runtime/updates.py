"""Functional indexed updates (JAX's `x.at[idx].set(v)`, spelled
`codax.numpy.at(x)[idx].set(v)`), and the helpers of their rules.

Each update returns a new array of x's dtype and leaves x alone. Repeated
integer indices accumulate for add, multiply, min and max, as NumPy's
`ufunc.at` does (`out[idx] += v` would apply only one of them); for set the
last of repeated writes, in the C order of x[idx], wins (adjoint._write).
"""
import numpy

from .adjoint import (_advanced_int, _float_dtype, _last_of_each, _positions, _write, shape,
                      size)
from .backend import _is_cupy, array_module

__all__ = ['at_set', 'at_add', 'at_multiply', 'at_min', 'at_max', 'at_share', 'at_others',
           'at_others_pairs']


def at_set(x, idx, v):
    # of repeated writes the last wins, as for `y[idx] = v`, and the rule knows which
    return _write(_fresh(x), idx, v)


def at_add(x, idx, v):
    return _scatter('add', _fresh(x), idx, v)


def at_multiply(x, idx, v):
    return _scatter('multiply', _fresh(x), idx, v)


def at_min(x, idx, v):
    return _scatter('minimum', _fresh(x), idx, v)


def at_max(x, idx, v):
    return _scatter('maximum', _fresh(x), idx, v)


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

def at_share(x, idx, v, y, op, which):
    """How y = at(x)[idx].<op>(v) passes its cotangent on, as weights: of x
    (which=0, x's shape) or of each update (which=1, the shape of y[idx]).
    Piecewise constant, so no gradient flows through the weights themselves.

    set: the elements not written take x's cotangent, and of updates repeated
    at one element only the last, which won. min/max: the inputs equal to the
    result, ties sharing equally (as np.maximum's rule shares between two)."""
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


def at_others(x, idx, v):
    """For each update of at(x)[idx].multiply(v) (shape of x[idx]), the
    product of the other updates applied to the same element: the derivative
    of that element's product with respect to this update. Exact with zero
    updates, by counting them rather than dividing by them."""
    xp, dtype, out_shape, _, zero, safe, zeros, product = _product_groups(x, idx, v)
    others = xp.where(zero, xp.where(zeros == 1, product, 0),
                      xp.where(zeros == 0, product / safe, 0))
    return others.astype(dtype, copy=False).reshape(out_shape)


def at_others_pairs(c, x, idx, v):
    """Derivative of at_others along c (shape of x[idx]): F c, where F[m, k]
    is the product of the updates at m's element other than m and k (0 when
    k is m or at another element). F is symmetric, so this is both the JVP
    (c a tangent) and, summed back to v's shape, the VJP (c a cotangent)."""
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

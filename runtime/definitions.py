"""NumPy functions that codax defines in plain NumPy, as JAX defines jax.numpy
in lax.

Each function here computes what the NumPy function it stands for computes,
using only functions that have records (derivative and batching rules). A
call of the NumPy function in transformed code becomes a call of its
definition (`rt.definitions.<name>`, transformer/normalize.py), which codax
then transforms like any helper of the user's: derivatives of every order,
vmap and jit all come from the records it is made of, and `.source()` shows
the call. So a function is added here when it composes from other functions
at no great cost; one that needs its own rule for speed or for a kink gets a
record instead (runtime/primitives).

The definitions must stay inside what codax transforms: no in-place updates
of arguments, no *args, Python control flow only on shapes and options.
Arguments that NumPy accepts but a definition does not (an `out=`, a
method it does not implement) raise a TypeError or ValueError naming them.
"""
import inspect

import numpy as np

from .adjoint import stop_gradient
from .primitives.searching import unique_parts
from .sources import define
from .updates import at_add

_DEFINED = {}           # id of a NumPy function -> (that function, its definition here)


def definition_of(obj):
    """The definition here of the NumPy function `obj`, or None."""
    hit = _DEFINED.get(id(obj))
    return hit[1] if hit is not None and hit[0] is obj else None


def defines(*functions, packs_arguments=False):
    """Register the decorated function as the definition of `functions`
    (those this NumPy has: some are only in some versions). With
    `packs_arguments`, the definition of a function of *arrays takes them as
    one tuple, its first parameter (normalize packs them: codax transforms no
    *args)."""
    def register(definition):
        definition.packs_arguments = packs_arguments
        for fn in functions:
            if fn is not None:
                _DEFINED[id(fn)] = (fn, definition)
        return definition
    return register


def _numpy(name):
    return getattr(np, name, None)


# ---- element-wise -------------------------------------------------------------

@defines(np.sinc)
def sinc(x):
    # NumPy's own formula: the tiny stand-in at 0 makes sin(y) / y exactly 1
    # there, and its slope there 0, as sinc's is
    y = np.pi * np.where(x == 0, 1.0e-20, x)
    return np.sin(y) / y


@defines(np.ldexp)
def ldexp(x1, x2):
    # 2 ** x2 is exact in x1's precision for the integer x2 ldexp takes
    return x1 * np.exp2(x2).astype(np.result_type(x1, np.float16))


@defines(np.heaviside)
def heaviside(x1, x2):
    # piecewise constant in x1; x2 where x1 is 0
    step = np.where(x1 > 0, 1.0, 0.0).astype(np.result_type(x1, x2, np.float16))
    return np.where(np.isnan(x1), x1, np.where(x1 == 0, x2, step))


# ---- shapes -------------------------------------------------------------------

@defines(np.rollaxis)
def rollaxis(a, axis, start=0):
    ndim = np.ndim(a)
    axis = axis + ndim if axis < 0 else axis
    start = start + ndim if start < 0 else start
    if not (0 <= axis < ndim and 0 <= start <= ndim):
        raise np.exceptions.AxisError(f'rollaxis: axis or start out of range for {ndim} axes')
    if axis < start:
        start = start - 1       # (NumPy's rule: start counts axes before axis is removed)
    return np.moveaxis(a, axis, start)


@defines(np.atleast_3d)
def atleast_3d(a):
    ndim = np.ndim(a)
    if ndim == 0:
        return np.reshape(a, (1, 1, 1))
    if ndim == 1:
        return a[None, :, None]
    if ndim == 2:
        return a[:, :, None]
    return a


def outer_operand(a, b):
    """a with an axis of length 1 after its own for each of b's, so that a
    ufunc of it and b is the ufunc's .outer (transformer/normalize.py)."""
    return np.reshape(a, np.shape(a) + (1,) * np.ndim(b))


@defines(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    if np.ndim(indices_or_sections) == 0:
        # NumPy's sections: the first (length % sections) one longer
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError('number sections must be larger than 0.')
        each, extras = divmod(np.shape(ary)[axis], sections)
        bounds = []
        start = 0
        for k in range(sections - 1):
            start = start + each + (1 if k < extras else 0)
            bounds.append(start)
        indices_or_sections = bounds
    return np.split(ary, indices_or_sections, axis)


@defines(np.hsplit)
def hsplit(ary, indices_or_sections):
    if np.ndim(ary) == 0:
        raise ValueError('hsplit only works on arrays of 1 or more dimensions')
    return np.split(ary, indices_or_sections, 1 if np.ndim(ary) > 1 else 0)


@defines(np.vsplit)
def vsplit(ary, indices_or_sections):
    if np.ndim(ary) < 2:
        raise ValueError('vsplit only works on arrays of 2 or more dimensions')
    return np.split(ary, indices_or_sections, 0)


@defines(np.dsplit)
def dsplit(ary, indices_or_sections):
    if np.ndim(ary) < 3:
        raise ValueError('dsplit only works on arrays of 3 or more dimensions')
    return np.split(ary, indices_or_sections, 2)


def row_items(items):
    """`np.r_[a, b, ...]` of arrays and numbers: joined along the first axis,
    numbers as one-element arrays (transformer/normalize.py makes the index
    expression this call)."""
    return np.concatenate([np.atleast_1d(item) for item in items], axis=0)


def column_items(items):
    """`np.c_[a, b, ...]`: joined along the last axis, each item made at
    least 2-D with its new axes after its own (a vector becomes a column)."""
    return np.concatenate([_as_columns(item) for item in items], axis=-1)


def _as_columns(item):
    ndim = np.ndim(item)
    if ndim == 0:
        return np.reshape(item, (1, 1))
    if ndim == 1:
        return item[:, None]
    return item


CONCATENATORS = {id(np.r_): (np.r_, row_items), id(np.c_): (np.c_, column_items)}


@defines(np.compress)
def compress(condition, a, axis=None):
    kept = np.nonzero(np.ravel(condition))[0]
    if axis is None:
        return np.take(np.ravel(a), kept)
    return np.take(a, kept, axis=axis)


@defines(np.extract)
def extract(condition, arr):
    return np.take(np.ravel(arr), np.nonzero(np.ravel(condition))[0])


# ---- reductions that skip NaN ---------------------------------------------------

@defines(np.nanmax)
def nanmax(a, axis=None, keepdims=False):
    # an all-NaN slice gives NaN, as NumPy's does (without its warning)
    kept = np.isnan(a)
    top = np.max(np.where(kept, -np.inf, a), axis=axis, keepdims=keepdims)
    return np.where(np.all(kept, axis=axis, keepdims=keepdims), np.nan, top)


@defines(np.nanmin)
def nanmin(a, axis=None, keepdims=False):
    kept = np.isnan(a)
    low = np.min(np.where(kept, np.inf, a), axis=axis, keepdims=keepdims)
    return np.where(np.all(kept, axis=axis, keepdims=keepdims), np.nan, low)


@defines(np.nanprod)
def nanprod(a, axis=None, keepdims=False):
    return np.prod(np.where(np.isnan(a), 1.0, a), axis=axis, keepdims=keepdims)


@defines(np.nancumsum)
def nancumsum(a, axis=None):
    return np.cumsum(np.where(np.isnan(a), 0.0, a), axis=axis)


@defines(np.nancumprod)
def nancumprod(a, axis=None):
    return np.cumprod(np.where(np.isnan(a), 1.0, a), axis=axis)


@defines(np.nanvar)
def nanvar(a, axis=None, ddof=0, keepdims=False):
    missing = np.isnan(a)
    present = np.logical_not(missing)
    count = np.sum(present, axis=axis, keepdims=True)
    mean = np.sum(np.where(missing, 0.0, a), axis=axis, keepdims=True) / count
    centered = np.where(missing, 0.0, a - mean)
    squares = np.sum(centered * np.conj(centered), axis=axis, keepdims=keepdims)
    return np.real(squares) / np.maximum(np.sum(present, axis=axis, keepdims=keepdims) - ddof, 0)


@defines(np.nanstd)
def nanstd(a, axis=None, ddof=0, keepdims=False):
    return np.sqrt(nanvar(a, axis, ddof, keepdims))


# ---- numerical calculus and polynomials -------------------------------------------

@defines(_numpy('trapezoid'), _numpy('trapz'))
def trapezoid(y, x=None, dx=1.0, axis=-1):
    y = np.moveaxis(y, axis, -1)
    if x is None:
        widths = dx
    elif np.ndim(x) == 1:
        widths = np.diff(x)
    else:
        widths = np.diff(np.moveaxis(x, axis, -1), axis=-1)
    return np.sum(widths * (y[..., 1:] + y[..., :-1]) / 2.0, axis=-1)


@defines(np.polyval)
def polyval(p, x):
    # Horner's rule, as NumPy evaluates it, started from the leading
    # coefficient (so y and its tangent are arrays of x's shape from the start)
    y = np.zeros_like(x * p[0]) + p[0]
    for k in range(1, len(p)):
        y = y * x + p[k]
    return y


@defines(np.gradient)
def gradient(f, spacing=1.0, axis=None, edge_order=1):
    """Central differences inside, one-sided ones at the edges (edge_order 1
    or 2), with one uniform spacing for every axis: NumPy's gradient for
    `np.gradient(f)`, `np.gradient(f, h)` and `axis=`."""
    if edge_order not in (1, 2):
        raise ValueError("'edge_order' greater than 2 not supported")
    if np.ndim(spacing) != 0 or isinstance(axis, float):    # (np.gradient(f, hx, hy))
        raise TypeError('codax differentiates np.gradient with one uniform spacing only '
                        '(a number), not coordinates or a spacing per axis')
    if axis is None:
        axes = list(range(np.ndim(f)))
    elif isinstance(axis, (tuple, list)):
        axes = list(axis)
    else:
        axes = [axis]
    outs = [_gradient_along(f, a, spacing, edge_order) for a in axes]
    return outs[0] if len(outs) == 1 else tuple(outs)


def _gradient_along(f, axis, h, edge_order):
    g = np.moveaxis(f, axis, -1)
    if np.shape(g)[-1] < edge_order + 1:
        raise ValueError('Shape of array too small to calculate a numerical gradient, '
                         'at least (edge_order + 1) elements are required.')
    inner = (g[..., 2:] - g[..., :-2]) / (2.0 * h)
    if edge_order == 1:
        first = (g[..., 1:2] - g[..., 0:1]) / h
        last = (g[..., -1:] - g[..., -2:-1]) / h
    else:
        first = (-1.5 * g[..., 0:1] + 2.0 * g[..., 1:2] - 0.5 * g[..., 2:3]) / h
        last = (0.5 * g[..., -3:-2] - 2.0 * g[..., -2:-1] + 1.5 * g[..., -1:]) / h
    return np.moveaxis(np.concatenate([first, inner, last], axis=-1), -1, axis)


@defines(np.interp)
def interp(x, grid, values, left=None, right=None):
    """Piecewise-linear interpolation (NumPy's xp and fp are `grid` and
    `values`: codax reserves the name xp): differentiable in x and values."""
    count = np.shape(grid)[0]
    right_of = np.clip(np.searchsorted(grid, x, side='right'), 1, count - 1)
    x0 = np.take(grid, right_of - 1)
    x1 = np.take(grid, right_of)
    weight = (x - x0) / (x1 - x0)
    y = np.take(values, right_of - 1) * (1.0 - weight) + np.take(values, right_of) * weight
    below = values[0] if left is None else left
    above = values[count - 1] if right is None else right
    return np.where(x < grid[0], below, np.where(x > grid[count - 1], above, y))


# ---- statistics ------------------------------------------------------------------

@defines(np.cov)
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None):
    X = _observations(m, rowvar)
    if y is not None:
        X = np.concatenate([X, _observations(y, rowvar)], axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    if fweights is None and aweights is None:
        centered = X - np.mean(X, axis=1, keepdims=True)
        c = np.matmul(centered, np.conj(centered.T)) / (np.shape(X)[1] - ddof)
    else:
        c = _weighted_cov(X, ddof, fweights, aweights)
    return np.squeeze(c)


def _observations(m, rowvar):
    """m as (variables, observations), in at least double precision as NumPy's."""
    X = np.atleast_2d(m).astype(np.result_type(m, np.float64))
    if not rowvar and np.shape(X)[0] != 1:
        return X.T
    return X


def _weighted_cov(X, ddof, fweights, aweights):
    if fweights is None:
        weights = aweights
    elif aweights is None:
        weights = np.asarray(fweights, dtype=np.float64)
    else:
        weights = np.asarray(fweights, dtype=np.float64) * aweights
    total = np.sum(weights)
    centered = X - np.sum(X * weights, axis=1, keepdims=True) / total
    if ddof == 0:
        norm = total
    elif aweights is None:
        norm = total - ddof
    else:
        norm = total - ddof * np.sum(weights * aweights) / total
    return np.matmul(centered * weights, np.conj(centered.T)) / norm


@defines(np.corrcoef)
def corrcoef(x, y=None, rowvar=True):
    c = cov(x, y, rowvar)
    if np.ndim(c) == 0:
        return c / c
    d = np.sqrt(np.real(np.diagonal(c)))
    c = c / d[:, None] / d[None, :]
    return np.clip(c, -1.0, 1.0)


@defines(np.quantile)
def quantile(a, q, axis=None, method='linear', keepdims=False):
    """NumPy's quantiles by the methods that pick or blend the two order
    statistics around q * (n - 1): linear, lower, higher, nearest, midpoint."""
    if method not in ('linear', 'lower', 'higher', 'nearest', 'midpoint'):
        raise ValueError(f'codax differentiates np.quantile with method linear, lower, '
                         f'higher, nearest or midpoint, not {method!r}')
    data = np.ravel(a) if axis is None else np.moveaxis(a, axis, 0)
    ordered = np.sort(data, axis=0)
    count = np.shape(ordered)[0]
    position = np.asarray(q) * (count - 1)
    below = np.floor(position)
    if method == 'lower':
        position = below
    elif method == 'higher':
        position = np.ceil(position)
    elif method == 'nearest':
        position = np.around(position)
    elif method == 'midpoint':
        position = np.where(position == below, below, below + 0.5)
    low = np.clip(np.floor(position), 0, count - 1).astype(np.intp)
    high = np.clip(low + 1, 0, count - 1)
    frac = np.reshape(position - low, np.shape(position) + (1,) * (np.ndim(ordered) - 1))
    picked = np.take(ordered, low, axis=0) * (1.0 - frac) + np.take(ordered, high, axis=0) * frac
    if keepdims:
        return _keep_reduced(picked, np.ndim(np.asarray(q)), np.ndim(a), axis)
    return picked


def _keep_reduced(picked, q_rank, ndim, axis):
    """A quantile's result with the reduced axis (or all, for axis=None) kept
    as length 1, after the axes of q, as NumPy's keepdims gives it."""
    if axis is None:
        return np.reshape(picked, np.shape(picked)[:q_rank] + (1,) * ndim)
    axis = axis + ndim if axis < 0 else axis
    return np.expand_dims(picked, q_rank + axis)


@defines(np.percentile)
def percentile(a, q, axis=None, method='linear', keepdims=False):
    return quantile(a, np.asarray(q) / 100.0, axis, method, keepdims)


# ---- linear algebra -------------------------------------------------------------

@defines(np.linalg.eigvalsh)
def eigvalsh(a, UPLO='L'):
    return np.linalg.eigh(a, UPLO)[0]


@defines(_numpy('vecdot'))
def vecdot(x1, x2, axis=-1):
    return np.sum(np.conj(x1) * x2, axis=axis)


# ---- grids and broadcasting -------------------------------------------------------

@defines(np.meshgrid, packs_arguments=True)
def meshgrid(xi, copy=True, sparse=False, indexing='xy'):
    if indexing not in ('xy', 'ij'):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    count = len(xi)
    grids = []
    for k in range(count):
        axis = k
        if indexing == 'xy' and count > 1 and k < 2:
            axis = 1 - k            # (the first two axes swap: x along columns)
        grids.append(np.reshape(xi[k], (1,) * axis + (-1,) + (1,) * (count - axis - 1)))
    if sparse:
        return tuple(grids)
    return broadcast_arrays(grids)


@defines(np.broadcast_arrays, packs_arguments=True)
def broadcast_arrays(args, subok=False):
    shape = ()
    for a in args:
        shape = np.broadcast_shapes(shape, np.shape(a))
    return tuple(np.broadcast_to(a, shape) for a in args)


# ---- inserting and deleting along an axis --------------------------------------------

@defines(np.insert)
def insert(arr, obj, values, axis=None):
    """NumPy's insert as a gather from arr and values joined: each element's
    place found by a stable sort of keys (old element j: 2j + 1; a new one
    before position i: 2i, new ones in their order), so derivatives flow to
    arr and values as through np.take."""
    if axis is None:
        arr = np.ravel(arr)
        axis = 0
    ndim = np.ndim(arr)
    axis = axis + ndim if axis < 0 else axis
    length = np.shape(arr)[axis]
    if isinstance(obj, slice):
        obj = _slice_positions(obj, length)
    positions = np.asarray(obj)
    if positions.ndim > 1:
        raise ValueError('index array argument obj to insert must be one dimensional or scalar')
    values = np.asarray(values).astype(np.result_type(arr))
    if positions.size == 1:
        # all of values at one place (NumPy's broadcasting for a scalar obj
        # puts values' first axis along `axis`)
        index = int(positions.item())
        if not -length <= index <= length:
            raise IndexError(f'index {index} is out of bounds for axis {axis} with size {length}')
        values = np.reshape(values, (1,) * (ndim - np.ndim(values)) + np.shape(values))
        if positions.ndim == 0:
            values = np.moveaxis(values, 0, axis)
        count = np.shape(values)[axis]
        positions = np.full(count, index + length if index < 0 else index)
    else:
        positions = np.where(positions < 0, positions + length, positions).astype(np.intp)
        count = np.size(positions)
    new_shape = np.shape(arr)[:axis] + (count,) + np.shape(arr)[axis + 1:]
    joined = np.concatenate([arr, np.broadcast_to(values, new_shape)], axis=axis)
    keys = np.concatenate([2 * np.arange(length) + 1, 2 * positions])
    return np.take(joined, np.argsort(keys, kind='stable'), axis=axis)


@defines(np.delete)
def delete(arr, obj, axis=None):
    if axis is None:
        arr = np.ravel(arr)
        axis = 0
    length = np.shape(arr)[axis]
    kept = np.ones(length, dtype=bool)
    kept[_slice_positions(obj, length) if isinstance(obj, slice) else obj] = False
    return np.take(arr, np.nonzero(kept)[0], axis=axis)


def _slice_positions(obj, length):
    start, stop, step = obj.indices(length)
    return np.arange(start, stop, step)


# ---- convolution ----------------------------------------------------------------------

@defines(np.convolve)
def convolve(a, v, mode='full'):
    """The direct sum, as one gather and one product: full[k] = sum_i
    v[i] a[k - i], from a window of a padded with zeros for each k."""
    a = np.ravel(a)
    v = np.ravel(v)
    if np.size(a) == 0 or np.size(v) == 0:
        raise ValueError('v cannot be empty' if np.size(v) == 0 else 'a cannot be empty')
    if np.size(v) > np.size(a):
        a, v = v, a
    n, m = np.size(a), np.size(v)
    padded = np.concatenate([np.zeros(m - 1, dtype=np.result_type(a)), a,
                             np.zeros(m - 1, dtype=np.result_type(a))])
    windows = np.arange(n + m - 1)[:, None] + (m - 1 - np.arange(m))[None, :]
    full = np.matmul(np.take(padded, windows), v)
    if mode == 'full':
        return full
    if mode == 'same':
        return full[(m - 1) // 2:(m - 1) // 2 + n]
    if mode == 'valid':
        return full[m - 1:n]
    raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")


@defines(np.correlate)
def correlate(a, v, mode='valid'):
    # c[k] = sum_n a[n + k] conj(v[n]): a convolution with v reversed and
    # conjugated; NumPy takes the shorter one as v, so then swaps back
    a = np.ravel(a)
    v = np.ravel(v)
    if np.size(v) > np.size(a):
        return np.conj(convolve(v, np.conj(a)[::-1], mode))[::-1]
    return convolve(a, np.conj(v)[::-1], mode)


# ---- piecewise --------------------------------------------------------------------

@defines(np.piecewise)
def piecewise(x, condlist, funclist):
    """NumPy's piecewise, as JAX's: each function runs on all of x (NumPy runs
    it on x[cond] only) and np.where keeps its values where its condition
    holds, a later condition over an earlier one. A function of x beyond its
    domain where its condition fails may warn, and its derivative there can
    reach the gradient as NaN, as in JAX."""
    if _one_condition(condlist, np.ndim(x)):
        condlist = [condlist]
    conds = np.asarray(condlist, dtype=bool)
    count = len(conds)
    if count == len(funclist) - 1:      # the last function: where no condition holds
        conds = np.concatenate([conds, np.logical_not(np.any(conds, axis=0, keepdims=True))],
                               axis=0)
        count = count + 1
    elif count != len(funclist):
        raise ValueError(f'with {count} condition(s), either {count} or {count + 1} '
                         'functions are expected')
    # (every item made a function first: a branch around the calls below
    # would put them on vmap(grad)'s tape one way or the other per item)
    funcs = [_as_function(func) for func in funclist]
    y = np.zeros_like(x)
    for k in range(count):
        y = np.where(conds[k], funcs[k](x), y)
    return y.astype(np.result_type(x))


def _as_function(func):
    if callable(func):
        return func
    return lambda x: func


def _one_condition(condlist, x_ndim):
    """NumPy's rule: condlist is one condition, not a list of them, if it is
    a scalar, or if its first item is neither a list nor an array (unless x
    is a scalar)."""
    if isinstance(condlist, (list, tuple)):
        return len(condlist) > 0 and not isinstance(condlist[0], (list, np.ndarray)) \
            and x_ndim != 0
    return np.ndim(condlist) == 0 or (np.ndim(condlist) == 1 and x_ndim != 0)


# ---- selecting and sets --------------------------------------------------------------

@defines(np.partition)
def partition(a, kth, axis=-1, kind='introselect', order=None):
    """np.partition's arrangement, gathered (np.argpartition's positions are
    those np.partition moves the values to): derivatives flow as through sort."""
    if order is not None:
        raise ValueError('codax differentiates np.partition of plain arrays, not order=')
    return np.take_along_axis(a, np.argpartition(a, kth, axis, kind), axis)


@defines(np.unique)
def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None,
           equal_nan=True, size=None, fill_value=None):
    """NumPy's unique values (differentiable: a gather of the first occurrence
    of each) and its integer index, inverse and counts. JAX's size= and
    fill_value= give results of one length, which vmap needs; without
    fill_value the padding repeats the smallest value, as in JAX."""
    parts = unique_parts(ar, axis, equal_nan, size)
    if axis is None:
        values = np.take(np.ravel(ar), parts[0])
    else:
        values = np.take(ar, parts[0], axis=axis)
    if size is not None and fill_value is not None:
        where = axis + np.ndim(ar) if axis is not None and axis < 0 else axis
        kept = np.arange(size) < parts[3]
        if axis is not None:
            kept = np.reshape(kept, (1,) * where + (size,) + (1,) * (np.ndim(ar) - where - 1))
        values = np.where(kept, values, fill_value)
    if not (return_index or return_inverse or return_counts):
        return values
    wanted = (return_index, return_inverse, return_counts)
    return tuple([values] + [parts[k] for k in range(3) if wanted[k]])


# ---- more of NumPy's Python-level and C-level functions (session 12) ----------------

@defines(np.fft.fftshift)
def fftshift(x, axes=None):
    return _shifted(x, axes, 1)


@defines(np.fft.ifftshift)
def ifftshift(x, axes=None):
    return _shifted(x, axes, -1)


def _shifted(x, axes, sign):
    """x rolled by half of each of `axes` (every axis for None): forward for
    fftshift, back for ifftshift (they differ only for odd lengths)."""
    if axes is None:
        axes = tuple(range(np.ndim(x)))
    elif np.ndim(axes) == 0:
        axes = (axes,)
    shape = np.shape(x)
    shifts = tuple(sign * (shape[axis] // 2) for axis in axes)
    return np.roll(x, shifts, tuple(axes))


@defines(np.ediff1d)
def ediff1d(ary, to_end=None, to_begin=None):
    # NumPy's dtype: ary's; the ends must cast to it under the same-kind rule
    flat = np.ravel(ary)
    kind = np.result_type(flat)
    parts = [flat[1:] - flat[:-1]]
    if to_begin is not None:
        parts.insert(0, _ediff1d_end(to_begin, kind, 'to_begin'))
    if to_end is not None:
        parts.append(_ediff1d_end(to_end, kind, 'to_end'))
    return np.concatenate(parts)


def _ediff1d_end(end, kind, name):
    if not np.can_cast(np.result_type(end), kind, casting='same_kind'):
        raise TypeError(f'dtype of `{name}` must be compatible with input `ary` '
                        'under the `same_kind` rule.')
    return np.ravel(end).astype(kind)


@defines(np.block)
def block(arrays):
    """NumPy's block: the innermost lists join along the last axis, the
    next along the one before, each piece first made of the result's rank
    (ones before its own axes). Level by level, not recursively: vmap
    compiles a recursive function without end."""
    if not isinstance(arrays, list):
        return np.array(arrays)
    nodes = [arrays]
    counts = []             # per level, the length of each of its lists
    while isinstance(nodes[0], list):
        level = []
        inner = []
        for node in nodes:
            if not isinstance(node, list) or len(node) == 0:
                raise ValueError('np.block: list depths are mismatched, or a list is empty')
            level.append(len(node))
            for item in node:
                inner.append(item)
        counts.append(level)
        nodes = inner
    depth = len(counts)
    rank = depth
    for node in nodes:
        if isinstance(node, list):
            raise ValueError('np.block: list depths are mismatched')
        rank = max(rank, np.ndim(node))
    parts = [np.reshape(node, (1,) * (rank - np.ndim(node)) + np.shape(node)) for node in nodes]
    for d in range(depth - 1, -1, -1):
        joined = []
        start = 0
        for count in counts[d]:
            joined.append(np.concatenate(parts[start:start + count], axis=d - depth))
            start = start + count
        parts = joined
    return parts[0]


# ---- quantiles that skip NaN --------------------------------------------------------

@defines(np.nanquantile)
def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method='linear',
                keepdims=False):
    """The quantiles of the values that are not NaN in each slice (NaN for a
    slice of NaN only): np.sort puts NaN last, so each slice's order
    statistics are its first `count` sorted values."""
    _no_out('nanquantile', out)
    return _nan_quantile(a, q, q, axis, method, keepdims)


@defines(np.nanpercentile)
def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method='linear',
                  keepdims=False):
    _no_out('nanpercentile', out)
    return _nan_quantile(a, np.asarray(q) / 100.0, q, axis, method, keepdims)


@defines(np.nanmedian)
def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    _no_out('nanmedian', out)
    return _nan_quantile(a, 0.5, 0.5, axis, 'linear', keepdims)


def _no_out(name, out):
    if out is not None:
        raise TypeError(f'codax differentiates np.{name} without out=')


def _nan_quantile(a, q, given_q, axis, method, keepdims):
    if method not in ('linear', 'lower', 'higher', 'nearest', 'midpoint'):
        raise ValueError(f'codax differentiates NaN-skipping quantiles with method linear, '
                         f'lower, higher, nearest or midpoint, not {method!r}')
    # NumPy's dtype: a's if inexact (else float64), promoted with the q given
    kind = np.result_type(a) if np.issubdtype(np.result_type(a), np.inexact) else np.float64
    if not isinstance(given_q, (int, float)):      # (a Python number is weak: a's kind stays)
        given_q = np.asarray(given_q)
    kind = np.result_type(np.zeros((), dtype=kind), given_q)
    ndim = np.ndim(a)
    axes = _reduced_axes(axis, ndim)
    data = np.moveaxis(a, axes, tuple(range(ndim - len(axes), ndim)))
    data = np.reshape(data, np.shape(data)[:ndim - len(axes)] + (-1,))
    ordered = np.sort(data, axis=-1)
    count = np.sum(np.logical_not(np.isnan(data)), axis=-1, keepdims=True)
    q = np.asarray(q)
    position = np.reshape(q, np.shape(q) + (1,) * np.ndim(data)) * (count - 1)
    below = np.floor(position)
    if method == 'lower':
        position = below
    elif method == 'higher':
        position = np.ceil(position)
    elif method == 'nearest':
        position = np.around(position)
    elif method == 'midpoint':
        position = np.where(position == below, below, below + 0.5)
    last = np.maximum(count - 1, 0)
    low = np.minimum(np.maximum(np.floor(position), 0), last).astype(np.intp)
    high = np.minimum(low + 1, last)
    frac = position - low
    ordered = np.broadcast_to(ordered, np.shape(q) + np.shape(ordered))
    low_value = np.take_along_axis(ordered, np.broadcast_to(low, np.shape(frac)), axis=-1)
    high_value = np.take_along_axis(ordered, np.broadcast_to(high, np.shape(frac)), axis=-1)
    picked = np.where(count == 0, np.nan, low_value * (1.0 - frac) + high_value * frac)
    picked = picked[..., 0].astype(kind)
    if keepdims:
        return np.reshape(picked, np.shape(q) + tuple(
            1 if k in axes else np.shape(a)[k] for k in range(ndim)))
    return picked


def _reduced_axes(axis, ndim):
    """`axis` (None, an int or a tuple) as a tuple of axes from 0."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(k + ndim if k < 0 else k for k in axes)


# ---- polynomials -----------------------------------------------------------------------

@defines(np.polyder)
def polyder(p, m=1):
    if m < 0:
        raise ValueError('Order of derivative must be positive (see polyint)')
    p = np.asarray(p)
    for _ in range(int(m)):
        p = p[:-1] * np.arange(len(p) - 1, 0, -1)
    return p


@defines(np.polyint)
def polyint(p, m=1, k=None):
    m = int(m)
    if m < 0:
        raise ValueError('Order of integral must be positive (see polyder)')
    if k is None:
        k = np.zeros(m, dtype=float)
    k = np.atleast_1d(k)
    if len(k) == 1 and m > 1:
        k = k[0] * np.ones(m, dtype=float)
    if len(k) < m:
        raise ValueError('k must be a scalar or a rank-1 array of length 1 or >m.')
    p = np.asarray(p)
    for j in range(m):
        p = np.concatenate([p / np.arange(len(p), 0, -1), k[j:j + 1]])
    return p


@defines(np.polymul)
def polymul(a1, a2):
    return convolve(np.atleast_1d(a1), np.atleast_1d(a2))


@defines(np.polyadd)
def polyadd(a1, a2):
    a1, a2 = _same_length(np.atleast_1d(a1), np.atleast_1d(a2))
    return a1 + a2


@defines(np.polysub)
def polysub(a1, a2):
    a1, a2 = _same_length(np.atleast_1d(a1), np.atleast_1d(a2))
    return a1 - a2


def _same_length(a1, a2):
    """The shorter coefficient vector padded with leading zeros."""
    extra = len(a2) - len(a1)
    if extra > 0:
        a1 = np.concatenate([np.zeros(extra, dtype=np.result_type(a1)), a1])
    elif extra < 0:
        a2 = np.concatenate([np.zeros(-extra, dtype=np.result_type(a2)), a2])
    return a1, a2


@defines(np.polyfit)
def polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    """NumPy's least-squares fit (columns of the Vandermonde matrix scaled to
    unit length, then lstsq), differentiable in x, y and w."""
    if full or cov:
        raise ValueError('codax differentiates np.polyfit without full= or cov= '
                         '(only the coefficients)')
    order = int(deg) + 1
    x = np.asarray(x) + 0.0
    y = np.asarray(y) + 0.0
    if deg < 0:
        raise ValueError('expected deg >= 0')
    if np.ndim(x) != 1:
        raise TypeError('expected 1D vector for x')
    if np.size(x) == 0:
        raise TypeError('expected non-empty vector for x')
    if np.ndim(y) < 1 or np.ndim(y) > 2:
        raise TypeError('expected 1D or 2D array for y')
    if np.shape(x)[0] != np.shape(y)[0]:
        raise TypeError('expected x and y to have same length')
    if rcond is None:
        rcond = len(x) * np.finfo(np.result_type(x)).eps
    lhs = np.vander(x, order)
    rhs = y
    if w is not None:
        w = np.asarray(w) + 0.0
        if np.ndim(w) != 1:
            raise TypeError('expected a 1-d array for weights')
        if np.shape(w)[0] != np.shape(y)[0]:
            raise TypeError('expected w and y to have the same length')
        lhs = lhs * w[:, None]
        rhs = rhs * (w[:, None] if np.ndim(rhs) == 2 else w)
    scale = np.sqrt(np.sum(lhs * lhs, axis=0))
    c = np.linalg.lstsq(lhs / scale, rhs, rcond)[0]
    return (c.T / scale).T


# ---- linear algebra ----------------------------------------------------------------------

@defines(np.linalg.cond)
def cond(x, p=None):
    """The ratio of the largest to the smallest singular value (p None, 2,
    -2: through svd's rule), or norm(x, p) * norm(inv(x), p)."""
    if p is None or p == 2 or p == -2:
        s = np.linalg.svd(x, compute_uv=False)
        if p == -2:
            return s[..., -1] / s[..., 0]
        return s[..., 0] / s[..., -1]
    return np.linalg.norm(x, p, axis=(-2, -1)) * np.linalg.norm(np.linalg.inv(x), p,
                                                                 axis=(-2, -1))


@defines(_numpy('matvec'))
def matvec(x1, x2):
    return np.matmul(x1, x2[..., None])[..., 0]


@defines(_numpy('vecmat'))
def vecmat(x1, x2):
    # (NumPy's vecmat conjugates the vector, as vecdot does)
    return np.matmul(np.conj(x1)[..., None, :], x2)[..., 0, :]


@defines(np.diagflat)
def diagflat(v, k=0):
    return np.diag(np.ravel(v), k)


# ---- special functions --------------------------------------------------------------------

_I0_SMALL = np.lib._function_base_impl._i0A     # NumPy's Chebyshev coefficients (Cephes)
_I0_LARGE = np.lib._function_base_impl._i0B


@defines(np.i0)
def i0(x):
    """NumPy's Chebyshev series for |x| <= 8 and for |x| > 8, each evaluated
    only where it is finite (np.where on the other's inputs too, so that no
    NaN slope of the branch not taken reaches a derivative)."""
    if np.iscomplexobj(x):
        raise TypeError('i0 not supported for complex values')
    x = np.abs(x) if np.issubdtype(np.result_type(x), np.floating) else np.abs(x).astype(float)
    small = x <= 8.0
    near = np.where(small, x, 8.0)
    far = np.where(small, 8.0, x)
    y = np.where(small, np.exp(near) * _chebyshev(near / 2.0 - 2.0, _I0_SMALL),
                 np.exp(far) * _chebyshev(32.0 / far - 2.0, _I0_LARGE) / np.sqrt(far))
    return y.astype(np.result_type(x))


def _chebyshev(x, coefficients):
    """Clenshaw's sum of a Chebyshev series, as NumPy's _chbevl."""
    b0 = coefficients[0] + np.zeros_like(x)
    b1 = np.zeros_like(x)
    b2 = np.zeros_like(x)
    for k in range(1, len(coefficients)):
        b2 = b1
        b1 = b0
        b0 = x * b1 - b2 + coefficients[k]
    return 0.5 * (b0 - b2)


@defines(np.fix)
def fix(x, out=None):
    _no_out('fix', out)
    return np.trunc(x)


@defines(np.unwrap)
def unwrap(p, discont=None, axis=-1, period=2 * np.pi):
    """NumPy's unwrap: each step beyond `discont` corrected by a multiple of
    `period`, the corrections (constants: their derivative is 0) summed."""
    p = np.asarray(p)
    q = np.moveaxis(p, axis, -1)
    dd = q[..., 1:] - q[..., :-1]
    if discont is None:
        discont = period / 2
    kind = np.result_type(dd, period)
    if np.issubdtype(kind, np.integer):
        high = period // 2
        ambiguous = period % 2 == 0
    else:
        high = period / 2
        ambiguous = True
    ddmod = np.mod(dd + high, period) - high
    if ambiguous:
        ddmod = np.where(np.logical_and(ddmod == -high, dd > 0), high, ddmod)
    correction = np.where(np.abs(dd) < discont, 0, ddmod - dd)
    unwrapped = np.concatenate([q[..., :1], q[..., 1:] + np.cumsum(correction, axis=-1)],
                               axis=-1)
    return np.moveaxis(unwrapped.astype(kind), -1, axis)


# ---- counting and choosing ----------------------------------------------------------------

@defines(np.bincount)
def bincount(x, weights=None, minlength=0, length=None):
    """Counts (integers) or sums of weights per non-negative integer value,
    by a scatter-add (the record of at(x)[idx].add). JAX's length= fixes the
    result's length, which vmap of batched indices needs: without it the
    length is the largest value + 1, which differs per example."""
    x = np.asarray(x)
    if np.ndim(x) != 1:
        raise ValueError('object too deep for desired array')
    if not np.issubdtype(np.result_type(x), np.integer) and np.size(x) > 0:
        raise TypeError("Cannot cast array data from dtype('float64') to dtype('int64') "
                        "according to the rule 'safe'")
    if length is None:
        length = max(int(np.max(x)) + 1 if np.size(x) > 0 else 0, minlength)
        if np.size(x) > 0 and np.min(x) < 0:
            raise ValueError("'list' argument must have no negative elements")
    if weights is None:
        return at_add(np.zeros(length, dtype=np.intp), x, 1)
    return at_add(np.zeros(length, dtype=np.result_type(weights, np.float64)), x, weights)


# what vmap says where the examples' counts differ in length (codax/vmap.py)
bincount.vmap_hint = ('np.bincount of batched indices needs length= under vmap, as in JAX '
                      '(which requires length under jit and vmap): without it the length is '
                      'the largest index + 1, which differs between examples, and one batched '
                      'array holds results of one length')


@defines(np.choose)
def choose(a, choices, out=None, mode='raise'):
    """choices[a[i]][i] for every i, all broadcast together: a gather along
    a new first axis of the choices stacked."""
    _no_out('choose', out)
    pieces = broadcast_arrays(list(choices) + [a])
    index = np.asarray(pieces[-1])
    count = len(pieces) - 1
    if mode == 'wrap':
        index = np.mod(index, count)
    elif mode == 'clip':
        index = np.clip(index, 0, count - 1)
    elif mode != 'raise':
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    elif np.any(np.logical_or(index < 0, index >= count)):
        raise ValueError('invalid entry in choice array')
    kind = np.result_type(choices[0])
    for choice in choices:         # (NumPy's dtype: a Python number among them is weak)
        kind = np.result_type(kind, choice)
    stacked = np.stack(pieces[:-1]).astype(kind)
    return np.take_along_axis(stacked, index[None], axis=0)[0]


@defines(np.histogram)
def histogram(a, bins=10, range=None, density=None, weights=None):
    """NumPy's histogram; the counts and the bin edges carry no derivative
    (they change in steps), but the sums of `weights` per bin do, as in JAX."""
    a = stop_gradient(np.ravel(a))     # (the counts and edges change in steps)
    if isinstance(bins, str):
        raise ValueError(f'codax supports np.histogram with a number of bins or the edges, '
                         f'not the estimator {bins!r}')
    edges = _histogram_edges(a, bins, range)
    count = np.shape(edges)[0] - 1
    index = np.searchsorted(edges, a, side='right') - 1
    index = np.where(a == edges[count], count - 1, index)     # (the last bin's closed)
    inside = np.logical_and(index >= 0, index < count)
    index = np.where(inside, index, count)          # (outside: a bin of its own, dropped)
    if weights is None:
        totals = at_add(np.zeros(count + 1, dtype=np.intp), index, 1)[:count]
    else:
        totals = at_add(np.zeros(count + 1, dtype=np.result_type(weights)), index,
                        np.ravel(weights))[:count]
    if density:
        totals = totals / np.diff(edges) / np.sum(totals)
    return totals, edges


def _histogram_edges(a, bins, range):
    if np.ndim(bins) == 1:
        return np.asarray(bins)
    if range is None:
        low, high = (np.min(a), np.max(a)) if np.size(a) > 0 else (0.0, 1.0)
    else:
        low, high = range
    if low > high:
        raise ValueError('max must be larger than min in range parameter.')
    kind = np.result_type(a, float) if np.issubdtype(np.result_type(a), np.floating) else float
    if low == high:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1, dtype=kind)


# ---- functions of a function --------------------------------------------------------------

@defines(np.apply_along_axis)
def apply_along_axis(func1d, axis, arr):
    """func1d on each 1-D slice along `axis`, its results stacked in place of
    that axis (NumPy's layout); codax transforms func1d like any function."""
    ndim = np.ndim(arr)
    axis = axis + ndim if axis < 0 else axis
    if not 0 <= axis < ndim:
        raise np.exceptions.AxisError(f'axis {axis} is out of bounds for array of dimension '
                                      f'{ndim}')
    moved = np.moveaxis(arr, axis, -1)
    outer = np.shape(moved)[:-1]
    rows = np.reshape(moved, (-1, np.shape(moved)[-1]))
    results = np.stack([np.asarray(func1d(rows[k])) for k in range(np.shape(rows)[0])])
    rank = np.ndim(results) - 1
    results = np.reshape(results, outer + np.shape(results)[1:])
    return np.moveaxis(results, tuple(range(len(outer), len(outer) + rank)),
                       tuple(range(axis, axis + rank)))


# ---- cumulative, resizing -----------------------------------------------------------------

@defines(_numpy('cumulative_sum'))
def cumulative_sum(x, axis=None, dtype=None, out=None, include_initial=False):
    _no_out('cumulative_sum', out)
    axis = _cumulative_axis(x, axis)
    total = np.cumsum(x, axis=axis, dtype=dtype)
    return _with_initial(total, axis, 0) if include_initial else total


@defines(_numpy('cumulative_prod'))
def cumulative_prod(x, axis=None, dtype=None, out=None, include_initial=False):
    _no_out('cumulative_prod', out)
    axis = _cumulative_axis(x, axis)
    total = np.cumprod(x, axis=axis, dtype=dtype)
    return _with_initial(total, axis, 1) if include_initial else total


def _cumulative_axis(x, axis):
    if axis is None:
        if np.ndim(x) > 1:
            raise ValueError('For arrays which have more than one dimension '
                             '``axis`` argument is required.')
        return 0
    return axis


def _with_initial(total, axis, initial):
    shape = np.shape(total)
    axis = axis + len(shape) if axis < 0 else axis
    first = np.full(shape[:axis] + (1,) + shape[axis + 1:], initial, dtype=np.result_type(total))
    return np.concatenate([first, total], axis=axis)


@defines(np.resize)
def resize(a, new_shape):
    """a's elements repeated in order to fill new_shape (NumPy's resize)."""
    if np.ndim(new_shape) == 0:
        new_shape = (int(new_shape),)
    new_shape = tuple(new_shape)
    flat = np.ravel(a)
    size = 1
    for length in new_shape:
        if length < 0:
            raise ValueError('all elements of `new_shape` must be non-negative')
        size = size * length
    if np.size(flat) == 0 or size == 0:
        return np.zeros(new_shape, dtype=np.result_type(flat))
    repeats = -(-size // np.size(flat))
    return np.reshape(np.tile(flat, repeats)[:size], new_shape)


# ---- tensor linear algebra ------------------------------------------------------------

@defines(np.linalg.tensorinv)
def tensorinv(a, ind=2):
    """inv of a reshaped to a matrix (the first `ind` axes as rows), reshaped
    to a.shape[ind:] + a.shape[:ind] (NumPy's tensorinv)."""
    if ind <= 0:
        raise ValueError('Invalid ind argument.')
    shape = np.shape(a)
    rows = 1
    for length in shape[ind:]:
        rows = rows * length
    return np.reshape(np.linalg.inv(np.reshape(a, (rows, -1))), shape[ind:] + shape[:ind])


@defines(np.linalg.tensorsolve)
def tensorsolve(a, b, axes=None):
    """x with tensordot(a, x, x.ndim) == b: solve with a reshaped to a
    square matrix (`axes` first moved to the end, as NumPy does)."""
    a = np.asarray(a)
    ndim = np.ndim(a)
    if axes is not None:
        # (NumPy moves each of `axes` to the end, in order)
        order = [k for k in range(ndim) if k not in axes] + [k for k in axes]
        a = np.transpose(a, order)
    shape = np.shape(a)[-(ndim - np.ndim(b)):]
    size = 1
    for length in shape:
        size = size * length
    if np.size(a) != size ** 2:
        raise np.linalg.LinAlgError('Input arrays must satisfy the requirement '
                                    'prod(a.shape[b.ndim:]) == prod(a.shape[:b.ndim])')
    return np.reshape(np.linalg.solve(np.reshape(a, (size, size)), np.ravel(b)), shape)


# ---- np.emath: complex results outside the real domain ---------------------------------------

_COMPLEX64_FROM = (np.float32, np.int8, np.int16, np.uint8, np.uint16, np.complex64)


def _complex_if(x, outside):
    """x as NumPy's emath takes it: complex (complex64 from the small types,
    else complex128) when any real element lies `outside` the real domain;
    which one depends on the values, as NumPy's dtype does."""
    x = np.asarray(x)
    if np.iscomplexobj(x) or not np.any(outside(x)):
        return x
    kind = np.result_type(x)
    return x.astype(np.complex64 if kind.type in _COMPLEX64_FROM else np.complex128)


def _negative(x):
    return x < 0


def _beyond_one(x):
    return np.abs(x) > 1


@defines(np.emath.sqrt)
def emath_sqrt(x):
    return np.sqrt(_complex_if(x, _negative))


@defines(np.emath.log)
def emath_log(x):
    return np.log(_complex_if(x, _negative))


@defines(np.emath.log2)
def emath_log2(x):
    return np.log2(_complex_if(x, _negative))


@defines(np.emath.log10)
def emath_log10(x):
    return np.log10(_complex_if(x, _negative))


@defines(np.emath.power)
def emath_power(x, p):
    # (a negative integer power becomes a float one, as in NumPy's emath)
    p = np.asarray(p)
    if not np.iscomplexobj(p) and np.any(p < 0):
        p = p * 1.0
    return np.power(_complex_if(x, _negative), p)


@defines(np.emath.arccos)
def emath_arccos(x):
    x = np.asarray(x)
    z = _complex_if(x, _beyond_one)
    if np.iscomplexobj(x) or not np.iscomplexobj(z):
        return np.arccos(z)
    return np.where(x > 1, np.pi - np.conj(np.arccos(_mirrored(x, z))), np.arccos(z))


@defines(np.emath.arcsin)
def emath_arcsin(x):
    x = np.asarray(x)
    z = _complex_if(x, _beyond_one)
    if np.iscomplexobj(x) or not np.iscomplexobj(z):
        return np.arcsin(z)
    return np.where(x > 1, -np.conj(np.arcsin(_mirrored(x, z))), np.arcsin(z))


def _mirrored(x, z):
    """-x + 0j. On the branch cut x > 1, NumPy's arccos(x + 0j) is
    pi - conj(arccos(-x + 0j)) and its arcsin -conj(arcsin(-x + 0j)), the
    same values, whose derivatives along x the complex rules give right
    (the rules at x + 0j itself take the cut's other side)."""
    return (-x).astype(np.result_type(z))


@defines(np.emath.arctanh)
def emath_arctanh(x):
    return np.arctanh(_complex_if(x, _beyond_one))


# ---- trimming zeros ----------------------------------------------------------------------------

@defines(np.trim_zeros)
def trim_zeros(filt, trim='fb', axis=None):
    """filt sliced to the smallest box (along `axis`, or all axes) that
    holds its nonzero values, on the sides `trim` names. The box depends on
    the values, so it is found on them without derivatives: a constant slice
    for each call, through which the kept values' derivatives flow."""
    trim = trim.lower()
    if trim not in ('fb', 'bf', 'f', 'b'):
        raise ValueError(f'unexpected character(s) in `trim`: {trim!r}')
    ndim = np.ndim(filt)
    if axis is None:
        axes = list(range(ndim))
    else:
        axes = [k % ndim if -ndim <= k < ndim else _axis_error(k, ndim)
                for k in ([axis] if np.ndim(axis) == 0 else axis)]
    if len(axes) == 0:
        return filt
    nonzero = stop_gradient(np.asarray(filt)) != 0
    found = np.any(nonzero)
    box = []
    for k in range(ndim):
        others = tuple(j for j in range(ndim) if j != k)
        along = np.flatnonzero(np.any(nonzero, axis=others)) if found else [0]
        start = int(along[0]) if found and 'f' in trim else None
        stop = int(along[-1]) + 1 if found and 'b' in trim else None
        if not found:
            start, stop = 0, 0
        box.append(slice(start, stop) if k in axes else slice(None))
    if ndim == 1:
        return filt[box[0]]       # (a list stays a list, as in NumPy)
    return filt[tuple(box)]


def _axis_error(axis, ndim):
    raise np.exceptions.AxisError(axis, ndim, 'axis')


# ---- np.vectorize ------------------------------------------------------------------------

@defines(np.vectorize)
def vectorize(pyfunc, otypes=None, doc=None, excluded=None, cache=False, signature=None):
    """`np.vectorize(f)` in transformed code: a function of up to four
    arguments that applies f to each element of them (broadcast together)
    and stacks the results, a loop codax transforms like the user's, so f
    may branch on its argument and capture differentiated values."""
    _vectorizable(excluded, signature, pyfunc)

    def elementwise(a0, a1=None, a2=None, a3=None):
        return elementwise_apply(pyfunc, otypes, [a for a in (a0, a1, a2, a3) if a is not None])
    return elementwise


def _vectorizable(excluded, signature, pyfunc):
    if excluded or signature is not None:
        raise TypeError(f'codax transforms np.vectorize({getattr(pyfunc, "__name__", "f")}) '
                        'without excluded= or signature=')


def elementwise_apply(pyfunc, otypes, args):
    """pyfunc of each element of args, broadcast together; NumPy's otypes[0]
    if given, else the dtype the results stack to."""
    shape, flat = flat_arguments(args)
    count = len(flat)
    # (four items always: vmap batches every branch below, so each must index in range)
    for _ in range(4 - count):
        flat.append(flat[0])
    if count == 1:
        results = _APPLY[0](pyfunc, flat[0])
    elif count == 2:
        results = _APPLY[1](pyfunc, flat[0], flat[1])
    elif count == 3:
        results = _APPLY[2](pyfunc, flat[0], flat[1], flat[2])
    else:
        results = _APPLY[3](pyfunc, flat[0], flat[1], flat[2], flat[3])
    return stacked_results(results, shape, otypes)


def flat_arguments(args):
    """The shape args broadcast to, and each of them broadcast and flattened."""
    args = broadcast_arrays([np.asarray(a) for a in args])
    return np.shape(args[0]), [np.ravel(a) for a in args]


def stacked_results(results, shape, otypes):
    if len(results) == 0:
        return np.zeros(shape, dtype=float if otypes is None else otypes[0])
    stacked = np.reshape(np.stack(results), shape)
    return stacked if not otypes else stacked.astype(otypes[0])


def _applier(count):
    """`apply_<count>(pyfunc, a0, ...)`: pyfunc's results on the elements of
    the 1-D a0, ... in order (a loop per arity: vmap batches a loop with
    calls in branches less well than branches with a loop in each)."""
    names = ', '.join(f'a{i}' for i in range(count))
    items = ', '.join(f'a{i}[k]' for i in range(count))
    text = (f'def apply_{count}(pyfunc, {names}):\n'
            f'    results = []\n'
            f'    for k in range(np.size(a0)):\n'
            f'        results.append(np.asarray(pyfunc({items})))\n'
            f'    return results\n')
    # (a name not starting '<codax': that prefix is generated code's, see docs/how-it-works.md)
    return define(text, f'<np.vectorize applier of {count} arguments>',
                  {'np': np})[f'apply_{count}']


_APPLY = [_applier(count) for count in range(1, 5)]


_VECTORIZED = {}        # id of an np.vectorize object -> (it, its elementwise function)


def vectorized(obj):
    """For an np.vectorize object made outside transformed code (a decorated
    function): a plain function with its Python function's positional
    parameters that does what elementwise_apply does for that many, which
    codax transforms."""
    hit = _VECTORIZED.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    pyfunc = obj.pyfunc
    _vectorizable(obj.excluded, obj.signature, pyfunc)
    params = list(inspect.signature(pyfunc).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not 0 < len(params) <= 4 or any(p.kind not in positional for p in params):
        raise TypeError(f'codax transforms np.vectorize({pyfunc.__name__}) of a function '
                        'with one to four positional parameters (no *args, **kwargs or '
                        'keyword-only ones)')
    name = f'vectorized_{pyfunc.__name__}'
    name = name if name.isidentifier() else 'vectorized_function'
    namespace = {'flat_arguments': flat_arguments, 'stacked_results': stacked_results,
                 'apply': _APPLY[len(params) - 1], 'pyfunc': pyfunc, 'otypes': obj.otypes or None}
    header = []
    for k, p in enumerate(params):
        if p.default is not p.empty:
            namespace[f'default{k}'] = p.default
        header.append(p.name if p.default is p.empty else f'{p.name}=default{k}')
    names = ', '.join(p.name for p in params)
    items = ', '.join(f'flat[{k}]' for k in range(len(params)))
    text = (f'def {name}({", ".join(header)}):\n'
            f'    shape, flat = flat_arguments([{names}])\n'
            f'    return stacked_results(apply(pyfunc, {items}), shape, otypes)\n')
    function = define(text, f'<np.vectorize({pyfunc.__name__}) #{len(_VECTORIZED)}>',
                      namespace)[name]
    if len(_VECTORIZED) > 1024:
        _VECTORIZED.clear()
    _VECTORIZED[id(obj)] = (obj, function)
    return function

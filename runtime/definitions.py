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
import numpy as np

from .primitives.searching import unique_parts

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

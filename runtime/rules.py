"""VJP helpers too long for a one-line template (shape ops, linear algebra).

Each takes the cotangent `g` (broadcastable to the output `ans`) and returns the
adjoint of one input, with that input's shape."""
import math as _math
import numbers as _numbers
import string as _string

import numpy

from .adjoint import (dense, materialize, shape, ndim, size, sum_to, is_zero, is_container_zero, ZERO, item,
                      unbroadcast, sum_vjp, keep_dims, extremum_vjp, getitem_vjp, _axes,
                      _rebuild, _write, real_for)
from .backend import array_module, is_array
from .tree import children_of, node_children, node_rebuilt

_NUMPY2 = numpy.lib.NumpyVersion(numpy.__version__) >= '2.0.0'


def getitem(a, idx):
    return a[idx]


def to_scalar(a):
    """`a.item()`: the one element of `a` as a Python number."""
    return a.item() if hasattr(a, 'item') else a


def log_base(x, base=None):
    """`math.log(x, base)`."""
    xp = array_module(x)
    return xp.log(x) if base is None else xp.log(x) / xp.log(base)


def copy(a, order='K'):
    if isinstance(a, (list, dict)):
        return a.copy()
    return array_module(a).array(a, copy=True)


def astype(x, dtype, copy=True):
    return x.astype(dtype) if hasattr(x, 'astype') else numpy.asarray(x).astype(dtype)


def cast_like(g, x):
    dtype = getattr(x, 'dtype', None)
    if dtype is None or dtype.kind not in 'fc' or not hasattr(g, 'astype'):
        return g
    return real_for(g, x).astype(dtype)


def inexact_only(cot, like):
    """cot, or zeros like it where `like` (a cast's result) has an integer or
    bool dtype: a cast to integers has no derivative (JAX's float0 tangent),
    though the float it came from may."""
    dtype = getattr(like, 'dtype', None)
    if is_zero(cot) or (dtype if dtype is not None else numpy.result_type(like)).kind in 'fc':
        return cot
    return array_module(cot).zeros_like(cot) if hasattr(cot, 'dtype') else 0.0


def abs_slope(x):
    """d|x|/dx as JAX takes it: the sign of real x, with 1 at 0 (a subgradient);
    conj(x)/|x| for complex x (0 at 0), so that grad of a real function of
    complex z is df/dx - i df/dy, JAX's convention."""
    xp = array_module(x)
    x = xp.asarray(x)
    if x.dtype.kind == 'c':
        r = xp.abs(x)
        return xp.conj(x) / xp.where(r == 0, 1, r)
    one = xp.ones((), dtype=xp.result_type(x.dtype, numpy.float16))
    return xp.where(x < 0, -one, one)


def fextremum_weight(x1, x2, kind, which):
    """1 where fmax (kind 'fmax') or fmin picks operand `which` (0: x1), else
    0, in the operands' float dtype: x1 where it wins or x2 is NaN, as JAX's
    where(x1 > x2 | isnan(x2), x1, x2) picks."""
    xp = array_module(x1, x2)
    a, b = xp.asarray(x1), xp.asarray(x2)
    first = xp.logical_or(a > b if kind == 'fmax' else a < b, xp.isnan(b))
    dtype = xp.result_type(x1, x2, numpy.float16)      # Python numbers are weak
    return (first if which == 0 else xp.logical_not(first)).astype(dtype)


def imag_vjp(cot, val):
    """Adjoint of val for imag(val): -i cot (JAX's convention), zero for real
    val. Linear in cot, and its own transpose."""
    if is_zero(cot):
        return ZERO
    if not numpy.iscomplexobj(val):
        # zeros shaped like cot (as batching needs), typed like val
        return array_module(cot).zeros(shape(cot), dtype=_fdtype(val, cot))
    return -1j * cot


def negate(shift):
    if isinstance(shift, (tuple, list)):
        return tuple(-s for s in shift)
    return -shift


def inverse_axes(axes, a):
    if axes is None:
        return None
    nd = len(axes)
    return tuple(int(i) for i in numpy.argsort([int(ax) % nd for ax in axes]))


_ndarray = numpy.ndarray


def _swap_last(m):
    return array_module(m).swapaxes(m, -1, -2)


def _matmul_vjp_2d(g, a, b, which):
    """The common cases, matrix-matrix and matrix-vector, as one product each;
    None where the general path is needed."""
    if a.ndim == 2 and b.ndim == 2:
        return g @ b.T if which == 0 else a.T @ g
    if a.ndim == 2 and b.ndim == 1:
        return g[:, None] * b if which == 0 else g @ a
    if a.ndim == 1 and b.ndim == 2:
        return b @ g if which == 0 else a[:, None] * g
    return None


def matmul_vjp(g, x1, x2, ans, which):
    """Adjoint of x1 (which=0) or x2 (which=1) for ans = x1 @ x2, with 1-D
    operands promoted as NumPy does and batch broadcasting undone."""
    if type(g) is _ndarray and type(x1) is _ndarray and type(x2) is _ndarray \
            and g.shape == ans.shape and g.dtype == x1.dtype == x2.dtype:
        fast = _matmul_vjp_2d(g, x1, x2, which)
        if fast is not None:
            return fast
    xp = array_module(x1, x2)
    g = xp.asarray(materialize(g, ans))
    a = xp.asarray(x1)
    b = xp.asarray(x2)
    if a.ndim == 1 and b.ndim == 1:                    # inner product
        return real_for(g * (b if which == 0 else a), (a, b)[which])
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a.ndim == 1:
        g = xp.expand_dims(g, -2)
    if b.ndim == 1:
        g = xp.expand_dims(g, -1)
    if which == 0:
        out = xp.matmul(g, _swap_last(b2))
        if a.ndim == 1:
            out = out[..., 0, :]
        return real_for(sum_to(out, a.shape), a)
    out = xp.matmul(_swap_last(a2), g)
    if b.ndim == 1:
        out = out[..., :, 0]
    return real_for(sum_to(out, b.shape), b)


# ---------------------------------------------------------------------------
# Helpers shared by the rules below (underscored: not exported as `rt.*`).
# ---------------------------------------------------------------------------

def _fdtype(*values):
    """The floating dtype an adjoint of these values should have."""
    for v in values:
        dt = getattr(v, 'dtype', None)
        if isinstance(dt, numpy.dtype) and dt.kind in 'fc':
            return dt
    return numpy.dtype(numpy.float64)


def _full(g, y):
    """materialize(), as an array of a float dtype."""
    xp = array_module(g, y)
    out = materialize(g, y)
    if not is_array(out):
        out = xp.asarray(out)
    if out.dtype.kind not in 'fc':
        out = out.astype(_fdtype(y))
    return out


def _zeros(shape_, *like):
    xp = array_module(*like)
    return xp.zeros(shape_, dtype=_fdtype(*like))


def _cast(r, x):
    """Adjoint `r` of x in x's float dtype (arrays only; scalars left alone)."""
    dt = getattr(x, 'dtype', None)
    if dt is not None and dt.kind in 'fc' and is_array(r) and r.dtype != dt:
        return real_for(r, x).astype(dt)
    return r


def _swap(m):
    return array_module(m).swapaxes(m, -1, -2)


def _is_int(v):
    return isinstance(v, _numbers.Integral) and not isinstance(v, bool)


# ---------------------------------------------------------------------------
# Scans, norms
# ---------------------------------------------------------------------------

def cumsum_vjp(g, a, ans, axis=None):
    """Adjoint of a for ans = cumsum(a, axis): a reversed cumulative sum."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    xp = array_module(G)
    ax = 0 if axis is None else axis
    out = xp.flip(xp.cumsum(xp.flip(G, ax), ax), ax)
    return xp.reshape(out, shape(a)) if axis is None else out


# ---- running extrema and log-sum-exp: np.maximum/minimum/logaddexp.accumulate ----
# Each tangent map and its transpose (the adjoint map) is a record of its own,
# the rules of each written with the other, so every order follows.

def cummax(a, axis=0, dtype=None, out=None):
    """np.maximum.accumulate as a function: the target of its record, which
    normalize names for the ufunc's method."""
    return array_module(a).maximum.accumulate(a, axis=axis, dtype=dtype, out=out)


def cummin(a, axis=0, dtype=None, out=None):
    """np.minimum.accumulate as a function (as cummax)."""
    return array_module(a).minimum.accumulate(a, axis=axis, dtype=dtype, out=out)


def logcumsumexp(a, axis=0, dtype=None, out=None):
    """np.logaddexp.accumulate as a function (as cummax)."""
    return array_module(a).logaddexp.accumulate(a, axis=axis, dtype=dtype, out=out)


def _along_last(axis, *arrays):
    """The arrays (of one shape, as the rules pass them), `axis` moved last."""
    xp = array_module(*arrays)
    return [xp.moveaxis(xp.asarray(x), axis, -1) for x in arrays]


def _running_steps(a, y, which):
    """(alpha, beta) with dy_i = alpha_i dy_(i-1) + beta_i da_i for the running
    extremum y of a along the last axis: a new extremum takes its element's
    tangent, a kept one the previous tangent, a tie half of each (np.maximum's
    rule, so jnp.maximum.accumulate's derivative)."""
    xp = array_module(a, y)
    prev = xp.concatenate([a[..., :1], y[..., :-1]], axis=-1)
    fresh = (a > prev) if which == 'max' else (a < prev)
    tie = a == prev
    fresh[..., 0] = True
    tie[..., 0] = False
    alpha = xp.where(fresh, 0.0, xp.where(tie, 0.5, 1.0))
    return alpha, 1.0 - alpha, tie


def _recurrence(v, alpha, beta, reverse):
    """out_i = alpha_i out_(i-1) + beta_i v_i along the last axis (reverse: the
    transposed recurrence, u_i = v_i + alpha_(i+1) u_(i+1), out_i = beta_i u_i)."""
    xp = array_module(v)
    n = v.shape[-1]
    out = xp.zeros(v.shape, dtype=_fdtype(v, alpha))
    carry = xp.zeros(v.shape[:-1], dtype=out.dtype)
    for i in (range(n - 1, -1, -1) if reverse else range(n)):
        if reverse:
            carry = v[..., i] + (alpha[..., i + 1] * carry if i + 1 < n else 0.0)
            out[..., i] = beta[..., i] * carry
        else:
            carry = alpha[..., i] * carry + beta[..., i] * v[..., i]
            out[..., i] = carry
    return out


def _running_extremum_steps(cot, a, y, axis, which):
    """(xp, cot along the last axis, the running steps of a and y there)."""
    xp = array_module(cot, a, y)
    cot, a, y = _along_last(axis, cot, a, y)
    return (xp, cot) + tuple(_running_steps(a, y, which))


def running_extremum_tangent(cot, a, y, axis, which):
    """Tangent of y = np.maximum.accumulate(a, axis) ('max'; 'min' for
    np.minimum's) for a's tangent `cot` (named as the adjoint helpers name their
    first argument): the tangent of the element that set each running extremum
    (a gather), ties half and half."""
    if is_zero(cot):
        return ZERO
    xp, cot, alpha, beta, tie = _running_extremum_steps(cot, a, y, axis, which)
    if xp.any(tie):
        out = _recurrence(cot, alpha, beta, False)
    else:
        out = xp.take_along_axis(cot, _setter(alpha), -1)
    return xp.moveaxis(out, -1, axis)


def running_extremum_adjoint(cot, a, y, axis, which):
    """Transpose of v -> running_extremum_tangent(v, a, y, axis, which): the
    adjoint of a for y's cotangent `cot`, each element getting what it set."""
    if is_zero(cot):
        return ZERO
    xp, cot, alpha, beta, tie = _running_extremum_steps(cot, a, y, axis, which)
    if xp.any(tie):
        out = _recurrence(cot, alpha, beta, True)
    else:
        out = xp.zeros(cot.shape, dtype=_fdtype(cot, a))
        xp.add.at(out, _along_axis_index(_setter(alpha), cot.shape, cot.ndim - 1), cot)
    return xp.moveaxis(out, -1, axis)


def _setter(alpha):
    """The position of the element that set each running extremum (no ties)."""
    xp = array_module(alpha)
    positions = xp.arange(alpha.shape[-1])
    return xp.maximum.accumulate(xp.where(alpha == 0.0, positions, 0), axis=-1)


def _signed_logs(v):
    """log of v's positive and negative parts (-inf where a part is 0)."""
    xp = array_module(v)
    with numpy.errstate(divide='ignore'):
        return xp.log(xp.where(v > 0, v, 0.0)), xp.log(xp.where(v < 0, -v, 0.0))


def _log_scan(x, reverse):
    xp = array_module(x)
    if reverse:
        return xp.flip(xp.logaddexp.accumulate(xp.flip(x, -1), axis=-1), -1)
    return xp.logaddexp.accumulate(x, axis=-1)


def logcumsumexp_tangent(cot, a, y, axis):
    """Tangent of y = np.logaddexp.accumulate(a, axis) for a's tangent `cot`:
    dy_i = sum_(j<=i) exp(a_j - y_i) cot_j, summed in the log domain (each
    sign apart), as it cannot overflow there."""
    if is_zero(cot):
        return ZERO
    xp = array_module(cot, a, y)
    cot, a, y = _along_last(axis, cot, a, y)
    empty = xp.isneginf(y)                       # (every a_j so far -inf: no weight)
    y = xp.where(empty, 0.0, y)
    parts = [xp.exp(_log_scan(a + logs, False) - y) for logs in _signed_logs(cot)]
    return xp.moveaxis(xp.where(empty, 0.0, parts[0] - parts[1]), -1, axis)


def logcumsumexp_adjoint(cot, a, y, axis):
    """Transpose of v -> logcumsumexp_tangent(v, a, y, axis): the adjoint of a
    for y's cotangent `cot`, sum_(i>=j) cot_i exp(a_j - y_i), in the log domain."""
    if is_zero(cot):
        return ZERO
    xp = array_module(cot, a, y)
    cot, a, y = _along_last(axis, cot, a, y)
    empty = xp.isneginf(y)
    cot, y = xp.where(empty, 0.0, cot), xp.where(empty, 0.0, y)
    parts = [xp.exp(a + _log_scan(logs - y, True)) for logs in _signed_logs(cot)]
    return xp.moveaxis(parts[0] - parts[1], -1, axis)


def _safe_div(num, den, xp):
    zero = den == 0
    return xp.where(zero, 0, num / xp.where(zero, 1, den))


def norm_vjp(g, x, ans, ord=None, axis=None, keepdims=False):
    """Adjoint of x for ans = numpy.linalg.norm(x, ord, axis, keepdims).

    Vector norms: any p (2/None, 1, inf, -inf, 0, general p). Matrix norms
    (axis a pair, or 2-D x with axis None and ord given): 'fro', 1, -1, inf,
    -inf, 2, -2, 'nuc'. At zero the 2-norm gets the zero subgradient."""
    xp = array_module(x, ans)
    x = xp.asarray(x)
    if x.dtype.kind not in 'fc':
        x = x.astype(numpy.float64)
    nd = x.ndim
    if axis is None:
        if ord is None or (nd == 2 and ord in ('fro', 'f')):
            gk = sum_vjp(g, x, None, keepdims)
            return _cast(gk * _safe_div(x, ans, xp), x)
        axes = tuple(range(nd))
    elif isinstance(axis, _numbers.Integral):
        axes = (axis % nd,)
    else:
        axes = tuple(a % nd for a in axis)
    gk = sum_vjp(g, x, axes, keepdims)
    A = keep_dims(ans, x, axes, keepdims)
    sgn = xp.sign(x)
    if len(axes) == 1:
        if ord is None or ord == 2:
            r = _safe_div(x, A, xp)
        elif ord == 1:
            r = sgn
        elif ord in (numpy.inf, -numpy.inf):
            hit = xp.abs(x) == A
            r = sgn * hit / xp.sum(hit, axis=axes, keepdims=True)
        elif ord == 0:
            return ZERO
        elif isinstance(ord, str):
            raise ValueError(f'invalid norm order {ord!r} for vectors')
        else:
            p = float(ord)
            r = sgn * _safe_div(xp.abs(x) ** (p - 1), A ** (p - 1), xp)
        return _cast(gk * r, x)
    if len(axes) != 2:
        raise ValueError('improper number of dimensions to norm')
    row, col = axes
    if ord is None or ord in ('fro', 'f'):
        r = _safe_div(x, A, xp)
    elif ord in (1, -1, numpy.inf, -numpy.inf):
        # 1: max over columns of the column sums; inf: max over rows of row sums.
        summed, picked = (row, col) if ord in (1, -1) else (col, row)
        s = xp.sum(xp.abs(x), axis=summed, keepdims=True)
        hit = s == A
        r = sgn * hit / xp.sum(hit, axis=picked, keepdims=True)
    elif ord in (2, -2, 'nuc'):
        m = xp.moveaxis(x, (row, col), (-2, -1))
        u, s, vh = xp.linalg.svd(m, full_matrices=False)
        if ord == 'nuc':
            d = xp.matmul(u, vh)
        else:
            k = 0 if ord == 2 else s.shape[-1] - 1
            d = u[..., :, k:k + 1] * vh[..., k:k + 1, :]
        r = xp.moveaxis(d, (-2, -1), (row, col))
    else:
        raise ValueError(f'invalid norm order {ord!r} for matrices')
    return _cast(gk * r, x)


def norm_matrix(ord, axis):
    """Whether np.linalg.norm(x, ord, axis) is a matrix norm: True for an
    axis pair, False for one axis or ord=None with axis=None (the flat
    2-norm), None where x's rank decides (axis=None, ord given: a matrix norm
    of a 2-D x). Of its arguments alone: templates fold it for literals."""
    if axis is None:
        return False if ord is None else None
    return isinstance(axis, (tuple, list)) and len(axis) == 2


def norm_matrix_axes(axis, ord=None):
    """The (row, col) axes of a matrix norm (`axis`, or the last two); for
    ord 1/-1/inf/-inf, (the axis summed over, the axis whose sums are
    compared): columns' sums for 1/-1, rows' for inf/-inf."""
    pair = tuple(axis) if isinstance(axis, (tuple, list)) else (-2, -1)
    return pair[::-1] if ord in (numpy.inf, -numpy.inf) else pair


def norm_rule(ord, axis, matrix):
    """Which derivative rule np.linalg.norm's `ord` takes (its record's
    templates branch on the name), for a matrix norm or a vector norm:
    'two' (the 2-norm, Frobenius's), 'extreme' (inf, -inf), 'zero' (the count
    of nonzeros), 'power' (any other p), 'singular' (nuc, 2, -2: from the
    singular values), 'sums' (1, -1, inf, -inf of a matrix)."""
    if matrix:
        if ord is None or ord == 'fro':
            return 'two'
        return 'singular' if ord in ('nuc', 2, -2) else 'sums'
    if ord is None or ord == 2:
        return 'two'
    return 'extreme' if ord in (numpy.inf, -numpy.inf) else 'zero' if ord == 0 else 'power'


def norm_singular_weights(s, ord):
    """Weights of the singular values s in a matrix norm: all of them for
    'nuc', the largest for 2, the smallest for -2 (s is sorted, largest first)."""
    if ord == 'nuc':
        return array_module(s).ones_like(s)
    weights = array_module(s).zeros_like(s)
    weights[..., 0 if ord == 2 else -1] = 1
    return weights


norm_matrix.codax_static = norm_rule.codax_static = norm_matrix_axes.codax_static = True


def cumprod_zeros(a, axis=None):
    """Where each element of `a` stands against the first zero of its slice
    along `axis`, for cumprod's rules: 0 before it, 1 at it, 2 after it; in
    cumprod's layout (the flattened a with axis=None). No derivative."""
    xp = array_module(a)
    zero = xp.asarray(a) == 0
    if axis is None:
        zero, axis = xp.ravel(zero), 0
    seen = xp.cumsum(zero, axis=axis)
    return xp.where(seen == 0, 0, xp.where(zero & (seen == 1), 1, 2))


def median_weights(a, axis=None):
    """The weight of each element of `a` in its median over `axis`: 1 for the
    middle element of an odd count, 1/2 for each of the two middle ones of an
    even count, 0 elsewhere (tied values in the order a stable sort gives
    them). Piecewise constant in a: it has no derivative."""
    xp = array_module(a)
    a = xp.asarray(a)
    axes = _axes(axis, a.ndim)
    order = [i for i in range(a.ndim) if i not in axes] + list(axes)
    moved = xp.transpose(a, order)
    flat = xp.reshape(moved, moved.shape[:a.ndim - len(axes)] + (-1,))
    n = flat.shape[-1]
    rank = xp.argsort(xp.argsort(flat, axis=-1, kind='stable'), axis=-1, kind='stable')
    dtype = _fdtype(a)
    w = ((rank == (n - 1) // 2).astype(dtype) + (rank == n // 2).astype(dtype)) / 2
    return xp.transpose(xp.reshape(w, moved.shape), tuple(int(i) for i in numpy.argsort(order)))


def _weights_read(a, weights, axis):
    """(the axes of a the weights run along, or None where they are shaped like
    a; the shape numpy.average reshapes them to)."""
    if shape(weights) == shape(a):
        return None, shape(a)
    axes = tuple(ax % ndim(a) for ax in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    return axes, tuple(d if i in axes else 1 for i, d in enumerate(shape(a)))


def average_weights(a, weights, axis=None):
    """`weights` as numpy.average reads them against `a`: as they are where
    shaped like a, else (weights along the axes `axis`, in that order)
    transposed and given length-1 axes elsewhere. Linear in weights."""
    if is_zero(weights):
        return ZERO
    xp = array_module(a, weights)
    axes, read = _weights_read(a, weights, axis)
    if axes is None:
        return xp.asarray(weights)
    return xp.reshape(xp.transpose(weights, tuple(int(i) for i in numpy.argsort(axes))), read)


def average_weights_vjp(g, a, weights, axis=None):
    """Adjoint of weights for average_weights(a, weights, axis): g broadcastable
    to a stands for its broadcast against the weights as read, summed back."""
    if is_zero(g):
        return ZERO
    xp = array_module(g, a, weights)
    axes, read = _weights_read(a, weights, axis)
    G = sum_to(_bcast(g, numpy.broadcast_shapes(shape(g), read), weights), read)
    if axes is None:
        return _cast(G, weights)
    order = numpy.argsort(axes)
    moved = xp.reshape(G, tuple(shape(weights)[int(i)] for i in order))
    return _cast(xp.transpose(moved, tuple(int(i) for i in numpy.argsort(order))), weights)


# ---------------------------------------------------------------------------
# Shape and structure ops
# ---------------------------------------------------------------------------

def tile_vjp(g, A, ans, reps):
    """Adjoint of A for ans = tile(A, reps): sum over the copies."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    xp = array_module(G)
    reps = (int(reps),) if numpy.ndim(reps) == 0 else tuple(int(r) for r in reps)
    ashape = shape(A)
    d = max(len(ashape), len(reps))
    s = (1,) * (d - len(ashape)) + tuple(ashape)
    r = (1,) * (d - len(reps)) + reps
    inter = []
    for ri, si in zip(r, s):
        inter += [ri, si]
    G = xp.reshape(G, tuple(inter))
    G = xp.sum(G, axis=tuple(range(0, 2 * d, 2)))
    return xp.reshape(G, ashape)


def repeat_vjp(g, a, ans, repeats, axis=None):
    """Adjoint of a for ans = repeat(a, repeats, axis)."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    xp = array_module(G)
    ashape = shape(a)
    if axis is None:
        G = xp.ravel(G)
        ax, n = 0, size(a)
        base = (n,)
    else:
        ax = axis % len(ashape)
        n = ashape[ax]
        base = ashape
    reps = numpy.asarray(repeats.get() if hasattr(repeats, 'get') else repeats)
    if reps.size == 1:
        r = int(reps.reshape(()))
        gs = shape(G)
        G = xp.reshape(G, gs[:ax] + (n, r) + gs[ax + 1:])
        out = xp.sum(G, axis=ax + 1)
    else:
        idx = xp.asarray(numpy.repeat(numpy.arange(n), reps))
        out = xp.zeros(base, dtype=G.dtype)
        xp.add.at(xp.moveaxis(out, ax, 0), idx, xp.moveaxis(G, ax, 0))
    return xp.reshape(out, ashape)


_GATHER_PAD_MODES = ('edge', 'reflect', 'symmetric', 'wrap')
_STAT_PAD_MODES = ('maximum', 'minimum', 'mean', 'median')


def matrix_transpose(x):
    """x.mT, numpy.matrix_transpose: the last two axes swapped (CuPy has no
    matrix_transpose)."""
    xp = array_module(x)
    x = xp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f'matrix_transpose needs an array of at least 2 dimensions, got {x.ndim}')
    return xp.swapaxes(x, -1, -2)


def _select_masks(condlist, like):
    """Where numpy.select takes each choice (the first true condition wins),
    and where it takes the default, each as a mask of `like`'s shape."""
    xp = array_module(like)
    taken = xp.zeros(shape(like), dtype=bool)
    masks = []
    for cond in condlist:
        mask = xp.logical_and(xp.broadcast_to(xp.asarray(cond), taken.shape),
                              xp.logical_not(taken))
        masks.append(mask)
        taken = xp.logical_or(taken, mask)
    return masks, xp.logical_not(taken)


def select_choices_vjp(g, condlist, choicelist, ans):
    """Adjoints of the choices of ans = select(condlist, choicelist, default):
    each gets the cotangent where it was taken."""
    if is_zero(g):
        return [ZERO] * len(choicelist)
    G = _full(g, ans)
    masks, _ = _select_masks(condlist, G)
    return [_cast(sum_to(G * mask, shape(c)), c) for mask, c in zip(masks, choicelist)]


def select_default_vjp(g, condlist, default, ans):
    """Adjoint of select's default: the cotangent where no condition held."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    _, rest = _select_masks(condlist, G)
    return _cast(sum_to(G * rest, shape(default)), default)


def select_choices_transpose(g, cot, condlist, choicelist, y):
    """Transpose of cot -> select_choices_vjp(cot, condlist, choicelist, y): the
    choices' cotangents put back where each was taken."""
    if is_container_zero(g):
        return ZERO
    masks, _ = _select_masks(condlist, y)
    out = _zeros(shape(y), y)
    for mask, gk in zip(masks, g):
        if not is_zero(gk):
            out = out + mask * gk
    return _cast(sum_to(out, shape(cot)), cot)


def select_default_transpose(g, cot, condlist, default, y):
    """Transpose of cot -> select_default_vjp(cot, condlist, default, y):
    the default's cotangent put where no condition held."""
    if is_zero(g):
        return ZERO
    _, rest = _select_masks(condlist, y)
    return _cast(sum_to(rest * _full(g, default), shape(cot)), cot)


def _pad_pairs(pad_width, nd):
    pw = numpy.asarray(pad_width)
    if pw.dtype.kind not in 'iu':
        pw = numpy.round(pw).astype(numpy.intp)
    return numpy.broadcast_to(pw, (nd, 2))


def _stat_weights(part, axis, mode):
    """The weight of each element of `part` in its statistic along `axis`, as
    JAX differentiates it: ties of a maximum or minimum share equally, a
    median takes its middle element(s)."""
    xp = array_module(part)
    if mode == 'median':
        return median_weights(part, axis)
    if mode == 'mean':
        return xp.ones_like(part) / part.shape[axis]
    pick = xp.max if mode == 'maximum' else xp.min
    hit = (part == pick(part, axis=axis, keepdims=True)).astype(_fdtype(part))
    return hit / xp.sum(hit, axis=axis, keepdims=True)


def _stat_pad_steps(array, pad_width, mode, stat_length):
    """NumPy pads the statistic modes axis by axis, each axis's pad computed
    from the array padded along the axes before it. Yields, per axis, (axis,
    the array before that step, before, after, the two slices the statistics
    read, the two slices' weights)."""
    xp = array_module(array)
    a = xp.asarray(array)
    if a.dtype.kind not in 'fc':
        a = a.astype(numpy.float64)
    nd = a.ndim
    pw = _pad_pairs(pad_width, nd)
    lengths = numpy.broadcast_to(numpy.asarray(
        numpy.iinfo(numpy.intp).max if stat_length is None else stat_length), (nd, 2))
    for ax in range(nd):
        before, after = int(pw[ax, 0]), int(pw[ax, 1])
        n = a.shape[ax]
        lo, hi = min(int(lengths[ax, 0]), n), min(int(lengths[ax, 1]), n)
        sl = [slice(None)] * nd
        sl[ax] = slice(0, lo)
        left = tuple(sl)
        sl[ax] = slice(n - hi, n)
        right = tuple(sl)
        wl = _stat_weights(a[left], ax, mode)
        wr = _stat_weights(a[right], ax, mode)
        yield ax, a, before, after, left, right, wl, wr
        a = _pad_axis(a, a[left], a[right], wl, wr, ax, before, after)


def _pad_axis(x, x_left, x_right, wl, wr, axis, before, after):
    """x with `before` copies of the weighted sum of x_left, and `after` of
    x_right's, joined along `axis`."""
    xp = array_module(x)
    ends = []
    for part, w, count in ((x_left, wl, before), (x_right, wr, after)):
        stat = xp.sum(part * w, axis=axis, keepdims=True)
        shape_ = list(x.shape)
        shape_[axis] = count
        ends.append(xp.broadcast_to(stat, tuple(shape_)))
    return xp.concatenate([ends[0], x, ends[1]], axis=axis)


def pad_jvp(tan, array, pad_width, mode='constant', stat_length=None):
    """Tangent of pad(array, pad_width, mode) along `tan` (zero constant
    values): the pad itself for the modes that gather (and 'mean'), the
    statistic modes with the weights the primal picks (its max, min, median)."""
    if is_zero(tan):
        return ZERO
    xp = array_module(tan, array)
    if mode in ('constant', 'empty'):
        return xp.pad(xp.asarray(tan), pad_width)
    if mode in _GATHER_PAD_MODES:
        return xp.pad(xp.asarray(tan), pad_width, mode)
    _check_pad_mode(mode)
    t = xp.asarray(tan)
    for ax, _a, before, after, left, right, wl, wr in _stat_pad_steps(array, pad_width, mode,
                                                                      stat_length):
        t = _pad_axis(t, t[left], t[right], wl, wr, ax, before, after)
    return t


def _check_pad_mode(mode):
    if not (isinstance(mode, str) and mode in _STAT_PAD_MODES):
        raise TypeError(
            f'codax: no derivative for numpy.pad with mode={mode!r}; supported modes are '
            "'constant', 'empty', 'edge', 'reflect', 'symmetric', 'wrap', 'maximum', "
            "'minimum', 'mean' and 'median'")


def pad_vjp(g, array, ans, pad_width, mode='constant', stat_length=None):
    """Adjoint of `array` for ans = pad(array, pad_width, mode).

    'constant' and 'empty' crop the padding; 'edge', 'reflect', 'symmetric'
    and 'wrap' (pure gathers) scatter-add the padded cotangent back; the
    statistic modes undo pad_jvp's steps in reverse order."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    xp = array_module(G)
    ashape = shape(array)
    pw = _pad_pairs(pad_width, len(ashape))
    if mode in ('constant', 'empty'):
        sl = tuple(slice(int(b), int(b) + s) for (b, _), s in zip(pw, ashape))
        return G[sl]
    if isinstance(mode, str) and mode in _GATHER_PAD_MODES:
        n = size(array)
        idx = numpy.pad(numpy.arange(n).reshape(ashape), pw, mode=mode)
        out = xp.bincount(xp.asarray(idx).ravel(), weights=xp.ravel(G), minlength=n)
        return xp.reshape(out, ashape).astype(G.dtype)
    _check_pad_mode(mode)
    for ax, a, before, after, left, right, wl, wr in reversed(
            list(_stat_pad_steps(array, pad_width, mode, stat_length))):
        n = a.shape[ax]
        G_left, G, G_right = xp.split(G, [before, before + n], axis=ax)
        G = G + 0.0                          # a copy to add into
        G[left] += wl * xp.sum(G_left, axis=ax, keepdims=True)
        G[right] += wr * xp.sum(G_right, axis=ax, keepdims=True)
    return G


def pad_values_jvp(tan, array, pad_width, mode='constant'):
    """Tangent of pad(array, pad_width, 'constant', constant_values=v) along
    v's tangent `tan`: zeros where array goes, tan's values in the pads."""
    if is_zero(tan) or mode != 'constant':
        return ZERO
    xp = array_module(tan, array)
    nd = ndim(array)
    vals = xp.asarray(tan)
    vals = numpy.broadcast_to(vals.get() if hasattr(vals, 'get') else vals, (nd, 2))
    z = numpy.zeros(shape(array), dtype=_fdtype(array, tan))
    return xp.asarray(numpy.pad(z, _pad_pairs(pad_width, nd), 'constant', constant_values=vals))


def pad_values_vjp(g, array, ans, pad_width, mode, constant_values):
    """Adjoint of constant_values for ans = pad(array, pad_width, 'constant', ...)."""
    if is_zero(g) or mode != 'constant':
        return ZERO
    G = _full(g, ans)
    xp = array_module(G)
    ashape = shape(array)
    nd = len(ashape)
    pw = _pad_pairs(pad_width, nd)
    # NumPy fills the pads axis by axis over the whole array: later axes win corners.
    label = numpy.full(shape(ans), -1, dtype=numpy.intp)
    for ax in range(nd):
        b, e = int(pw[ax, 0]), int(pw[ax, 1])
        n = shape(ans)[ax]
        idx = [slice(None)] * nd
        idx[ax] = slice(0, b)
        label[tuple(idx)] = 2 * ax
        idx[ax] = slice(n - e, n)
        label[tuple(idx)] = 2 * ax + 1
    sums = xp.bincount(xp.asarray(label.ravel() + 1), weights=xp.ravel(G), minlength=2 * nd + 1)
    sums = xp.reshape(sums[1:], (nd, 2)).astype(G.dtype)
    return sum_to(sums, shape(constant_values))


def _split_back(g, ans, xs, axis, prep):
    """Split the cotangent of a concatenation into per-input adjoints."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    xp = array_module(G)
    parts = [prep(x) for x in xs]
    bounds = numpy.cumsum([p.shape[axis] for p in parts])[:-1]
    pieces = xp.split(G, [int(b) for b in bounds], axis=axis)
    return [_cast(xp.reshape(p, shape(x)), x) for p, x in zip(pieces, xs)]


def hstack_vjp(g, tup, ans):
    """Adjoint of the sequence `tup` for ans = hstack(tup): a list."""
    axis = 0 if ndim(ans) == 1 else 1
    return _split_back(g, ans, tup, axis, lambda x: numpy.empty(shape(x) or (1,)))


def vstack_vjp(g, tup, ans):
    """Adjoint of the sequence `tup` for ans = vstack(tup): a list."""
    def prep(x):
        s = shape(x)
        return numpy.empty(s if len(s) >= 2 else (1,) + (s or (1,)))
    return _split_back(g, ans, tup, 0, prep)


def split_vjp(g, ary, ans, axis=0):
    """Adjoint of ary for ans = split(ary, ...): g is a list of per-piece
    adjoints (entries may be 0.0) or 0.0."""
    if is_zero(g):
        return ZERO
    xp = array_module(ary, *ans)
    dtype = _fdtype(ary, *[gi for gi in g if not is_zero(gi)])
    parts = [xp.zeros(shape(p), dtype=dtype) if is_zero(gi) else _full(gi, p)
             for gi, p in zip(g, ans)]
    return _cast(xp.concatenate(parts, axis=axis), ary)


def _diag_positions(n1, n2, offset):
    if offset >= 0:
        k = max(min(n1, n2 - offset), 0)
        rows = numpy.arange(k)
        return rows, rows + offset
    k = max(min(n1 + offset, n2), 0)
    cols = numpy.arange(k)
    return cols - offset, cols


def _diag_embed(d, full_shape, offset, axis1, axis2, like):
    """Zeros of full_shape with `d` (shape rest + (k,)) on the given diagonal."""
    xp = array_module(d, like)
    nd = len(full_shape)
    a1, a2 = axis1 % nd, axis2 % nd
    z = xp.zeros(full_shape, dtype=_fdtype(like, d))
    zm = xp.moveaxis(z, (a1, a2), (-2, -1))
    rows, cols = _diag_positions(full_shape[a1], full_shape[a2], offset)
    zm[..., xp.asarray(rows), xp.asarray(cols)] = d
    return z


def diagonal_vjp(g, a, ans, offset=0, axis1=0, axis2=1):
    """Adjoint of a for ans = diagonal(a, offset, axis1, axis2)."""
    if is_zero(g):
        return ZERO
    return _diag_embed(_full(g, ans), shape(a), offset, axis1, axis2, a)


def trace_vjp(g, a, ans, offset=0, axis1=0, axis2=1):
    """Adjoint of a for ans = trace(a, offset, axis1, axis2)."""
    if is_zero(g):
        return ZERO
    return _diag_embed(_full(g, ans)[..., None], shape(a), offset, axis1, axis2, a)


def diag_vjp(g, v, ans, k=0):
    """Adjoint of v for ans = diag(v, k): 1-D v builds a matrix, 2-D v is read."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    xp = array_module(G)
    if ndim(v) == 1:
        return _cast(xp.diagonal(G, k), v)
    if ndim(v) == 2:
        return _diag_embed(G, shape(v), k, 0, 1, v)
    raise ValueError('diag requires a 1-D or 2-D input')


def take_vjp(g, a, ans, indices, axis=None, mode='raise'):
    """Adjoint of a for ans = take(a, indices, axis, mode): scatter-add."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    xp = array_module(G)
    ashape = shape(a)
    if axis is None:
        z = xp.zeros((size(a),), dtype=_fdtype(a, G))
        ax = 0
    else:
        ax = axis % len(ashape)
        z = xp.zeros(ashape, dtype=_fdtype(a, G))
    n = z.shape[ax]
    idx = xp.asarray(indices)
    if mode == 'wrap':
        idx = idx % n
    elif mode == 'clip':
        idx = xp.clip(idx, 0, n - 1)
    xp.add.at(z, (slice(None),) * ax + (idx,), G)
    return xp.reshape(z, ashape)


def _pick_extremum(items, ans):
    for i, v in enumerate(items):
        if v is ans:
            return i
    for i, v in enumerate(items):
        if bool(v == ans):
            return i
    raise ValueError('extremum not found among the arguments')


def py_extremum_vjp(g, args, ans):
    """Adjoint of *args for ans = max(*args) / min(*args) (Python builtins):
    the whole cotangent goes to the (first) chosen element."""
    if is_zero(g):
        return ZERO
    if len(args) == 1:
        seq = args[0]
        if is_array(seq):
            xp = array_module(seq)
            i = int(xp.argmax(seq == ans))
            z = xp.zeros(shape(seq), dtype=_fdtype(seq, g))
            z[i] = g
            return [z]
        items = list(seq)
        out = [ZERO] * len(items)
        out[_pick_extremum(items, ans)] = g
        return [tuple(out) if isinstance(seq, tuple) else out]
    out = [ZERO] * len(args)
    out[_pick_extremum(args, ans)] = g
    return out


def linspace_vjp(g, start, stop, ans, num=50, endpoint=True, retstep=False, axis=0, which=0):
    """Adjoint of start (which=0) or stop (which=1) for ans = linspace(start,
    stop, num, endpoint, retstep, axis=axis). Sample i is start + (stop -
    start) * i / div, div = num - 1 (num without the endpoint), and the step
    returned with retstep is (stop - start) / div. Integer samples (dtype=int)
    carry no derivative."""
    samples, step = (ans[0], ans[1]) if retstep else (ans, None)
    gs, gstep = (item(g, 0), item(g, 1)) if retstep else (g, ZERO)
    if (is_zero(gs) and is_zero(gstep)) or samples.dtype.kind not in 'fc':
        return ZERO
    xp = array_module(samples)
    div = int(num) - 1 if endpoint else int(num)
    frac = xp.arange(int(num), dtype=samples.dtype) / max(div, 1)
    out = ZERO
    if not is_zero(gs):
        G = xp.moveaxis(_full(gs, samples), axis, -1)
        out = xp.matmul(G, frac if which == 1 else 1 - frac)       # sums the samples' axis
    if not is_zero(gstep) and div > 0:
        out = out + (1 if which == 1 else -1) * _full(gstep, step) / div
    if is_zero(out):
        return ZERO
    mine = (start, stop)[which]
    return _cast(sum_to(xp.asarray(out), shape(mine)), mine)


def _along_axis_index(indices, ashape, axis):
    """The index tuple with which take_along_axis(arr, indices, axis) reads arr
    (of shape ashape): `indices` on `axis`, an arange broadcast on the others."""
    xp = array_module(indices)
    parts = []
    for i, n in enumerate(ashape):
        if i == axis:
            parts.append(indices)
        else:
            parts.append(xp.reshape(xp.arange(n), tuple(n if j == i else 1
                                                         for j in range(len(ashape)))))
    return tuple(parts)


def take_along_axis_vjp(g, arr, ans, indices, axis=-1):
    """Adjoint of arr for ans = take_along_axis(arr, indices, axis): g added
    back where each element was read (an element read twice gets both)."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    xp = array_module(G)
    indices = xp.asarray(indices)
    ashape = shape(arr)
    if axis is None:                              # arr read flattened
        z = xp.zeros((size(arr),), dtype=_fdtype(arr, G))
        xp.add.at(z, indices, G)
        return xp.reshape(z, ashape)
    z = xp.zeros(ashape, dtype=_fdtype(arr, G))
    xp.add.at(z, _along_axis_index(indices, ashape, axis % len(ashape)), G)
    return z


def _diff_pieces(a, axis, prepend, append):
    """The shapes of the pieces np.diff joins along `axis` before differencing
    (prepend, a, append; None for an absent one): a number becomes a slab of
    length 1, as NumPy broadcasts it."""
    ashape = shape(a)
    ax = axis % len(ashape)

    def slab(v):
        if v is None:
            return None
        if ndim(v) == 0:
            return ashape[:ax] + (1,) + ashape[ax + 1:]
        return shape(v)
    return [slab(prepend), ashape, slab(append)], ax


_DIFF_ORDER = (1, 0, 2)      # where a (which=0), prepend (1), append (2) are joined


def diff_vjp(g, a, ans, n=1, axis=-1, prepend=None, append=None, which=0):
    """Adjoint of a (which=0), prepend (1) or append (2) for ans = diff(a, n,
    axis, prepend, append). A first difference maps h to -diff of h with a
    zero on each side (its transpose), applied n times; the result is cut
    back into the joined pieces."""
    if is_zero(g):
        return ZERO
    xp = array_module(g, a, ans)
    pieces, ax = _diff_pieces(a, axis, prepend, append)
    G = _full(g, ans)
    for _ in range(int(n)):
        G = -xp.diff(G, axis=ax, prepend=0, append=0)
    lengths = [0 if s is None else s[ax] for s in pieces]
    k = _DIFF_ORDER[which]
    start = sum(lengths[:k])
    part = G[(slice(None),) * ax + (slice(start, start + lengths[k]),)]
    mine = (a, prepend, append)[which]
    return _cast(sum_to(part, shape(mine)), mine)


def _joined_piece(kind, x):
    """The shape `kind` (column_stack or dstack) gives x before joining."""
    s = shape(x)
    if kind == 'column_stack':
        return s if len(s) >= 2 else (s or (1,)) + (1,)
    return {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s)


def joined_vjp(g, tup, ans, kind):
    """Adjoint of the sequence `tup` for ans = column_stack(tup) or dstack(tup),
    a list: the cotangent cut along the joined axis (1 or 2)."""
    axis = 1 if kind == 'column_stack' else 2
    return _split_back(g, ans, tup, axis, lambda x: numpy.empty(_joined_piece(kind, x)))


def kron_layout(a, b):
    """How kron(a, b) lays out its blocks: the output's shape split into
    (a axis, b axis) pairs, the shapes of a and b padded with leading 1s to the
    same rank, the positions of a's and of b's axes in the split shape, and
    all the axes of one padded operand."""
    sa, sb = shape(a), shape(b)
    nd = max(len(sa), len(sb))
    pa, pb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    split = tuple(d for pair in zip(pa, pb) for d in pair)
    return (split, pa, pb, tuple(range(0, 2 * nd, 2)), tuple(range(1, 2 * nd, 2)),
            tuple(range(nd)))


def cross_axes(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None, which=0):
    """The axes for the cross products that give the adjoints of a (which=0,
    cross(b, g)) and of b (which=1, cross(g, a)) of ans = cross(a, b, axisa,
    axisb, axisc, axis), as (axisa, axisb, axisc) of that call; the new vector
    axis lands where the operand's is, counted from the end (broadcasting
    aligns from the end). Only vectors of 3 elements."""
    if axis is not None:
        axisa = axisb = axisc = axis
    axa, axb = axisa % ndim(a), axisb % ndim(b)
    if shape(a)[axa] != 3 or shape(b)[axb] != 3:
        raise ValueError('codax: derivatives of numpy.cross need vectors of 3 elements '
                         '(NumPy 2 deprecates 2-element vectors)')
    if which == 0:
        return axb, axisc, axa - ndim(a)
    return axisc, axa, axb - ndim(b)


# ---------------------------------------------------------------------------
# Contractions (through one einsum-based engine)
# ---------------------------------------------------------------------------

_LETTERS = _string.ascii_letters


def _einsum_parse(subscripts, shapes):
    """Explicit form of an einsum: ([input terms], output term), ellipses
    replaced by letters (right-aligned, as NumPy broadcasts them)."""
    subs = subscripts.replace(' ', '')
    if '->' in subs:
        ins, out = subs.split('->')
    else:
        ins, out = subs, None
    terms = ins.split(',')
    if len(terms) != len(shapes):
        raise ValueError('einsum: number of operands does not match the subscripts')
    used = set(c for c in subs if c.isalpha())
    free = [c for c in _LETTERS if c not in used]
    ell_nd = [len(s) - (len(t) - 3) if '...' in t else 0 for t, s in zip(terms, shapes)]
    E = max(ell_nd, default=0)
    ell = ''.join(free[:E])
    new_terms = [t.replace('...', ell[E - k:]) for t, k in zip(terms, ell_nd)]
    if out is None:
        letters = ''.join(t.replace('...', '') for t in terms)
        singles = sorted(c for c in set(letters) if letters.count(c) == 1)
        out_term = ell + ''.join(singles)
    else:
        out_term = out.replace('...', ell)
    return new_terms, out_term


def _einsum_sizes(terms, shapes):
    sizes = {}
    for t, s in zip(terms, shapes):
        if len(t) != len(s):
            raise ValueError(f'einsum: subscripts {t!r} do not match an operand of shape {s}')
        for c, n in zip(t, s):
            if sizes.get(c, 1) == 1:
                sizes[c] = n
    return sizes


def _einsum_operand_vjp(G, terms, out_term, ops, i, xp):
    """Adjoint of operand i of einsum(terms -> out_term) given the full cotangent G."""
    shapes = [shape(o) for o in ops]
    sizes = _einsum_sizes(terms + [out_term], shapes + [shape(G)])
    term = terms[i]
    dtype = _fdtype(ops[i], G)
    uniq = ''.join(dict.fromkeys(term))
    in_terms = [out_term] + [t for j, t in enumerate(terms) if j != i]
    in_ops = [G] + [ops[j] for j in range(len(ops)) if j != i]
    present = set(''.join(in_terms))
    for c in uniq:
        if c not in present:
            in_terms.append(c)
            in_ops.append(xp.ones(sizes[c], dtype=dtype))
    r = xp.einsum(','.join(in_terms) + '->' + uniq, *in_ops)
    r = xp.broadcast_to(r, tuple(sizes[c] for c in uniq))
    if len(uniq) != len(term):
        # Repeated letters (a diagonal): spread r over it with identity tensors.
        pool = [c for c in _LETTERS if c not in set(''.join(terms) + out_term)]
        renamed, eyes, eye_terms, seen = [], [], [], set()
        for c in term:
            if c in seen:
                fresh = pool.pop(0)
                renamed.append(fresh)
                eyes.append(xp.eye(sizes[c], dtype=dtype))
                eye_terms.append(c + fresh)
            else:
                seen.add(c)
                renamed.append(c)
        r = xp.einsum(','.join([uniq] + eye_terms) + '->' + ''.join(renamed), r, *eyes)
    return _cast(sum_to(r, shapes[i]), ops[i])


def _contract_vjp(g, ans, terms, out_term, ops, i):
    xp = array_module(*ops)
    ops = [xp.asarray(o) for o in ops]
    return _einsum_operand_vjp(_full(g, ans), terms, out_term, ops, i, xp)


def _einsum_terms(subscripts):
    """([input terms], output term) of an einsum's subscripts, '...' kept as it
    is; the implicit output is the letters used once, sorted, after '...'."""
    subs = subscripts.replace(' ', '')
    ins, _, out = subs.partition('->')
    terms = ins.split(',')
    if '->' not in subs:
        letters = ins.replace('...', '').replace(',', '')
        out = ('...' if '...' in ins else '') + \
            ''.join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return terms, out


def _einsum_diagonal(term, used):
    """(term with each repeat of a letter renamed to a fresh one, the mask
    term): 'ii' -> ('ia', 'ia'), 'iij' -> ('iaj', 'ia'), 'ij' -> ('ij', '').
    The mask, 1 where each renamed letter equals its original (a product of
    identities), puts an adjoint back on operand i's diagonal."""
    pool = iter(c for c in _LETTERS if c not in used)
    renamed, groups = [], {}
    for c in term:
        if c.isalpha() and c in groups:
            fresh = next(pool)
            groups[c] += fresh
            c = fresh
        elif c.isalpha():
            groups[c] = c
        renamed.append(c)
    return ''.join(renamed), ''.join(g for g in groups.values() if len(g) > 1)


def _einsum_adjoint_form(subscripts, n, i):
    """(subscripts, spread axes, mask term) of the adjoint of operand i of an
    n-operand einsum as einsum(those subscripts, cotangent, other operands,
    and rt.einsum_vjp_mask where a letter repeats in operand i: a diagonal),
    with axes of size 1 put back at `spread` (operand i's letters found
    nowhere else, which the cotangent is constant along). An ellipsis in the
    others alone (operand i broadcast against them) is kept as the adjoint's
    leading axes, which rt.sum_to sums away. None where that form does not
    hold: an ellipsis in operand i alone (it spans no axes), or spread letters
    before one."""
    if not isinstance(subscripts, str):
        return None
    terms, out = _einsum_terms(subscripts)
    if len(terms) != n:
        return None
    term, others = terms[i], [out] + terms[:i] + terms[i + 1:]
    elsewhere = any('...' in t for t in others)
    if '...' in term and not elsewhere:
        return None
    renamed, mask = _einsum_diagonal(term, set(subscripts))
    if mask:
        others.append(mask)
    present = set(''.join(others))
    missing = [c for c in renamed if c.isalpha() and c not in present]
    cut = renamed.find('...')
    if any(renamed.index(c) < cut for c in missing):
        return None
    # (counted from the end after an ellipsis, or before the adjoint's leading axes)
    lead = '...' if elsewhere and cut < 0 else ''
    spread = tuple(renamed.index(c) - (len(renamed) if lead or cut >= 0 else 0)
                   for c in missing) or None
    kept = lead + ''.join(c for c in renamed if c not in missing)
    return ','.join(others) + '->' + kept, spread, mask or None


def einsum_vjp_spec(subscripts, n, i):
    """The subscripts of operand i's adjoint as one einsum (see
    _einsum_adjoint_form), or None where the einsum rule uses rt.einsum_vjp.
    A function of the subscripts alone: rule templates fold it when they are
    a literal."""
    form = _einsum_adjoint_form(subscripts, n, i)
    return None if form is None else form[0]


def einsum_vjp_spread(subscripts, n, i):
    """The axes (a tuple) where operand i's adjoint is spread over letters of
    that operand alone, or None; folded as einsum_vjp_spec is."""
    form = _einsum_adjoint_form(subscripts, n, i)
    return None if form is None else form[1]


def einsum_vjp_masked(subscripts, n, i):
    """Whether operand i's adjoint einsum takes rt.einsum_vjp_mask (a letter
    repeats in operand i); folded as einsum_vjp_spec is."""
    form = _einsum_adjoint_form(subscripts, n, i)
    return form is not None and form[2] is not None


def einsum_vjp_mask(subscripts, n, i, shape):
    """The boolean mask of the mask term (_einsum_diagonal) for operand i of
    that shape: True where every repeat of a letter equals its original."""
    term = _einsum_terms(subscripts)[0][i]
    cut = term.find('...')
    out = numpy.ones((), bool)
    for c in dict.fromkeys(term):          # the groups, in the mask term's order
        repeats = term.count(c) if c.isalpha() else 0
        if repeats > 1:
            at = term.index(c)              # (counted from the end after an ellipsis)
            grid = numpy.indices((shape[at if cut < 0 or at < cut else at - len(term)],) * repeats)
            out = numpy.multiply.outer(out, numpy.all(grid == grid[0], axis=0))
    return out


# Rule templates evaluate these at compile time when their arguments are constants.
einsum_vjp_spec.codax_static = einsum_vjp_spread.codax_static = True
einsum_vjp_masked.codax_static = True


def einsum_vjp(g, subscripts, operands, ans):
    """Adjoints of all operands of ans = einsum(subscripts, *operands): a list."""
    if is_zero(g):
        return ZERO
    if not isinstance(subscripts, str):
        raise TypeError('codax: gradients of einsum in the interleaved '
                                  '(operand, sublist, ...) form are not supported')
    xp = array_module(*operands)
    ops = [xp.asarray(o) for o in operands]
    terms, out_term = _einsum_parse(subscripts, [o.shape for o in ops])
    G = _full(g, ans)
    return [_einsum_operand_vjp(G, terms, out_term, ops, i, xp) for i in range(len(ops))]


def einsum_jvp(tangents, subscripts, operands, optimize=False):
    """Tangent of ans = einsum(subscripts, *operands): the sum over the
    operands of the same contraction with that operand's tangent in its place
    (zero tangents, 0.0, are skipped). First order only: it has no record."""
    xp = array_module(*operands)
    total = ZERO
    for i, ti in enumerate(tangents):
        if ti is None or is_zero(ti):
            continue
        ops = list(operands)
        ops[i] = ti
        total = _accumulate(total, xp.einsum(subscripts, *ops, optimize=optimize))
    return total


def multi_dot_subscripts(arrays):
    """numpy.linalg.multi_dot(arrays) as an einsum: the chain 'ab,bc,cd->ad',
    a 1-D first (last) array without its row (column) letter."""
    letters = _LETTERS[:len(arrays) + 1]
    terms = [letters[k:k + 2] for k in range(len(arrays))]
    if ndim(arrays[0]) == 1:
        terms[0] = terms[0][1]
    if ndim(arrays[-1]) == 1:
        terms[-1] = terms[-1][0]
    out = (letters[0] if ndim(arrays[0]) == 2 else '') + \
        (letters[-1] if ndim(arrays[-1]) == 2 else '')
    return ','.join(terms) + '->' + out


def _mine_other(a, b, which):
    return (a, b) if which == 0 else (b, a)


def _scalar_product_vjp(g, a, b, ans, which):
    mine, other = _mine_other(a, b, which)
    return _cast(sum_to(_full(g, ans) * other, shape(mine)), mine)


def dot_vjp(g, a, b, ans, which):
    """Adjoint of a (which=0) or b (which=1) for ans = dot(a, b), any ranks."""
    if is_zero(g):
        return ZERO
    if numpy.ndim(a) == 0 or numpy.ndim(b) == 0:
        return _scalar_product_vjp(g, a, b, ans, which)
    if numpy.ndim(b) <= 2:
        return matmul_vjp(g, a, b, ans, which)
    na, nb = numpy.ndim(a), numpy.ndim(b)
    letters = iter(_LETTERS)
    a_free = ''.join(next(letters) for _ in range(na - 1))
    b_pre = ''.join(next(letters) for _ in range(nb - 2))
    z, last = next(letters), next(letters)
    terms = [a_free + z, b_pre + z + last]
    return _contract_vjp(g, ans, terms, a_free + b_pre + last, [a, b], which)


def vdot_vjp(g, a, b, which):
    """Adjoint of a or b for sum(ravel(a) * ravel(b)), no conjugate taken
    (vdot's rules conjugate its first operand around it)."""
    if is_zero(g):
        return ZERO
    mine, other = _mine_other(a, b, which)
    xp = array_module(a, b)
    return _cast(xp.reshape(g * xp.asarray(other), shape(mine)), mine)


def outer_vjp(g, a, b, ans, which):
    """Adjoint of a or b for ans = outer(a, b) (inputs are flattened)."""
    if is_zero(g):
        return ZERO
    G = _full(g, ans)
    xp = array_module(G, a, b)
    if which == 0:
        r = xp.matmul(G, xp.ravel(xp.asarray(b)))
        return _cast(xp.reshape(r, shape(a)), a)
    r = xp.matmul(xp.ravel(xp.asarray(a)), G)
    return _cast(xp.reshape(r, shape(b)), b)


def inner_vjp(g, a, b, ans, which):
    """Adjoint of a or b for ans = inner(a, b) (sum over the last axes)."""
    if is_zero(g):
        return ZERO
    if numpy.ndim(a) == 0 or numpy.ndim(b) == 0:
        return _scalar_product_vjp(g, a, b, ans, which)
    letters = iter(_LETTERS)
    a_free = ''.join(next(letters) for _ in range(numpy.ndim(a) - 1))
    b_free = ''.join(next(letters) for _ in range(numpy.ndim(b) - 1))
    z = next(letters)
    return _contract_vjp(g, ans, [a_free + z, b_free + z], a_free + b_free, [a, b], which)


def tensordot_vjp(g, a, b, ans, axes=2, which=0):
    """Adjoint of a or b for ans = tensordot(a, b, axes); axes an int or a pair."""
    if is_zero(g):
        return ZERO
    na, nb = numpy.ndim(a), numpy.ndim(b)
    if _is_int(axes) or numpy.ndim(axes) == 0:
        n = int(axes)
        ax_a, ax_b = list(range(na - n, na)), list(range(n))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if _is_int(ax_a) else list(ax_a)
        ax_b = [ax_b] if _is_int(ax_b) else list(ax_b)
        ax_a = [x % na for x in ax_a]
        ax_b = [x % nb for x in ax_b]
    letters = iter(_LETTERS)
    ta = [next(letters) for _ in range(na)]
    tb = [next(letters) for _ in range(nb)]
    for i, j in zip(ax_a, ax_b):
        tb[j] = ta[i]
    out = ''.join(c for k, c in enumerate(ta) if k not in ax_a) + \
        ''.join(c for k, c in enumerate(tb) if k not in ax_b)
    return _contract_vjp(g, ans, [''.join(ta), ''.join(tb)], out, [a, b], which)


# ---------------------------------------------------------------------------
# numpy.linalg
# ---------------------------------------------------------------------------

def _solve_is_vector(xp, a, b):
    if ndim(b) == 1:
        return True
    if xp is numpy and _NUMPY2:
        return False
    return ndim(b) == ndim(a) - 1


def solve_vjp(g, a, b, ans, which):
    """Adjoint of a (which=0) or b (which=1) for ans = solve(a, b).

    b_bar = solve(a^T, g); a_bar = -b_bar x^T; batch broadcasting undone."""
    if is_zero(g):
        return ZERO
    xp = array_module(a, b, ans)
    a = xp.asarray(a)
    G = _full(g, ans)
    vec = _solve_is_vector(xp, a, b)
    aT = _swap(a)
    if vec:
        bbar = xp.linalg.solve(aT, G[..., None])[..., 0]
    else:
        bbar = xp.linalg.solve(aT, G)
    if which == 1:
        return _cast(sum_to(bbar, shape(b)), b)
    if vec:
        abar = -bbar[..., :, None] * ans[..., None, :]
    else:
        abar = -xp.matmul(bbar, _swap(ans))
    return _cast(sum_to(abar, shape(a)), a)


def inv_vjp(g, ans):
    """Adjoint of a for ans = inv(a): -ans^T g ans^T."""
    if is_zero(g):
        return ZERO
    xp = array_module(ans)
    G = _full(g, ans)
    aT = _swap(ans)
    return -xp.matmul(xp.matmul(aT, G), aT)


def det_vjp(g, a, ans):
    """Adjoint of a for ans = det(a): g det(a) inv(a)^T."""
    if is_zero(g):
        return ZERO
    xp = array_module(a, ans)
    a = xp.asarray(a)
    G = _full(g, ans)
    return _cast((G * ans)[..., None, None] * _swap(xp.linalg.inv(a)), a)


def slogdet_vjp(g, a):
    """Adjoint of a for (sign, logabsdet) = slogdet(a); only logabsdet
    carries a gradient: g_logabsdet inv(a)^T."""
    if is_zero(g):
        return ZERO
    gl = item(g, 1)
    if is_zero(gl):
        return ZERO
    xp = array_module(a)
    a = xp.asarray(a)
    dtype = _fdtype(a)
    gl = xp.broadcast_to(xp.asarray(gl, dtype=dtype), a.shape[:-2])
    return _cast(gl[..., None, None] * _swap(xp.linalg.inv(a)), a)


def cholesky_vjp(g, ans):
    """Adjoint of a for L = cholesky(a) (symmetric result):
    sym(L^-T phi(L^T g) L^-1), phi = lower triangle with halved diagonal."""
    if is_zero(g):
        return ZERO
    xp = array_module(ans)
    L = ans
    G = _full(g, L)
    n = L.shape[-1]
    P = xp.tril(xp.matmul(_swap(L), G)) * (1 - 0.5 * xp.eye(n, dtype=L.dtype))
    Linv = xp.linalg.inv(L)
    S = xp.matmul(xp.matmul(_swap(Linv), P), Linv)
    return 0.5 * (S + _swap(S))


_LINALG_LIMITS = {
    'complex': 'codax: derivatives of numpy.linalg.{} are for real matrices',
    'full': 'codax: no derivative of numpy.linalg.svd with full_matrices=True of a non-square '
            'matrix (its extra singular vectors are not unique, as in JAX); pass '
            'full_matrices=False',
    'hermitian': 'codax: no derivative of numpy.linalg.{} with hermitian=True (it reads one '
                 'triangle of the matrix only); pass hermitian=False',
    'wide': 'codax: no derivative of numpy.linalg.qr of a matrix with more columns than rows',
    'mode': "codax: no derivative of numpy.linalg.qr with mode={!r}; use 'reduced' (or 'r')",
}


def linalg_rule_applies(name, a, full_matrices=False, hermitian=False, mode='reduced'):
    """1 (a factor of the rule) where codax's derivative rule of
    numpy.linalg.<name> holds for `a` and the call's options; else a
    ValueError saying what it does not cover."""
    if numpy.iscomplexobj(a):
        raise ValueError(_LINALG_LIMITS['complex'].format(name))
    m, n = shape(a)[-2:]
    if hermitian:
        raise ValueError(_LINALG_LIMITS['hermitian'].format(name))
    if name == 'svd' and full_matrices and m != n:
        raise ValueError(_LINALG_LIMITS['full'])
    if name == 'qr' and (mode not in ('reduced', 'complete', 'r') or mode == 'complete' and m > n):
        raise ValueError(_LINALG_LIMITS['mode'].format(mode))
    if name == 'qr' and m < n:
        raise ValueError(_LINALG_LIMITS['wide'])
    return 1


def eigh_triangle(a, UPLO='L'):
    """The weights with which eigh(a, UPLO) reads a: 1 on the strict lower
    (UPLO='L') or upper triangle, 1/2 on the diagonal, 0 elsewhere, so that
    t * w plus its transpose is the symmetric matrix eigh sees in t."""
    linalg_rule_applies('eigh', a)
    xp = array_module(a)
    ones = xp.ones(shape(a), dtype=_fdtype(a))
    half = xp.tril(ones) if UPLO in ('L', 'l') else xp.triu(ones)
    return half - 0.5 * xp.triu(xp.tril(ones))


# ---------------------------------------------------------------------------
# where and clip
# ---------------------------------------------------------------------------

def where_vjp(g, condition, x, ans, which):
    """Adjoint of x (which=0) or y (which=1) for ans = where(condition, x, y);
    `x` is the operand whose adjoint is wanted."""
    if is_zero(g):
        return ZERO
    xp = array_module(g, x, ans)
    cond = xp.asarray(condition, dtype=bool)
    mask = cond if which == 0 else ~cond
    gm = xp.where(mask, g, xp.zeros((), dtype=_fdtype(x, g)))
    return _cast(unbroadcast(gm, x, ans), x)


def _clip_weights(a, lo, hi, xp, dtype):
    """How much of ans = minimum(maximum(a, lo), hi) comes from a, lo and hi:
    1 where one wins, 1/2 to each side of a tie, as maximum's and minimum's
    derivatives share a tie (JAX's convention too)."""
    def share(wins, ties):
        return xp.where(ties, xp.asarray(0.5, dtype=dtype), xp.asarray(wins, dtype=dtype))
    a = xp.asarray(a)
    from_a, from_lo, t = 1, None, a
    if lo is not None:
        from_a, from_lo, t = share(a > lo, a == lo), share(a < lo, a == lo), xp.maximum(a, lo)
    through, from_hi = 1, None
    if hi is not None:
        through, from_hi = share(t < hi, t == hi), share(t > hi, t == hi)
    return from_a * through, None if lo is None else from_lo * through, from_hi


def _weighted(g, weight, xp, dtype):
    """g * weight, exactly zero where the weight is (even where g is inf)."""
    return xp.where(weight != 0, g * weight, xp.zeros((), dtype=dtype))


def clip_vjp(g, a, a_min, a_max, min, max, ans, which):
    """Adjoint of a (which=0), the lower bound (1) or the upper bound (2) for
    ans = clip(a, lo, hi); NumPy 2's min=/max= names are accepted too. The
    gradient passes to a where lo < a < hi, to a bound where it binds, and
    half to each where a equals a bound."""
    if is_zero(g):
        return ZERO
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    xp = array_module(g, a, lo, hi, ans)
    operand = (a, lo, hi)[which]
    dtype = _fdtype(operand, g)
    gm = _weighted(g, _clip_weights(a, lo, hi, xp, dtype)[which], xp, dtype)
    return _cast(unbroadcast(gm, operand, ans), operand)


def clip_jvp(tan, a, a_min, a_max, min, max, ans, which):
    """Tangent of ans = clip(a, lo, hi) from the tangent `tan` of a (which=0),
    the lower bound (1) or the upper bound (2): `tan` where that operand is
    the one clip returns (weighted as in clip_vjp), zero elsewhere, in ans's
    shape. Linear in tan; its transpose is clip_vjp."""
    if is_zero(tan):
        return ZERO
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    xp = array_module(tan, a, lo, hi, ans)
    dtype = _fdtype((a, lo, hi)[which], tan, ans)
    weight = _clip_weights(a, lo, hi, xp, dtype)[which]
    return _weighted(tan, weight, xp, dtype) + xp.zeros(shape(ans), dtype=dtype)


def py_extremum_jvp(tan, args, ans):
    """Tangent of ans = max(*args) / min(*args) (Python builtins): the tangent
    of the chosen element; `tan` holds one tangent per argument. Linear in
    tan; its transpose is py_extremum_vjp."""
    return py_extremum_transpose(tan, ZERO, args, ans)


# ---------------------------------------------------------------------------
# Transposes of the adjoint helpers, for differentiating derivative code
# (second order). Each returns the adjoint of the helper's linear argument
# `cot` given the cotangent `g` of the helper's result.
# ---------------------------------------------------------------------------

_CONTAINERS = (list, tuple, dict)


def _bcast(g, target, *like):
    """materialize() to a shape rather than to a value."""
    xp = array_module(g, *like)
    if shape(g) == tuple(target) and is_array(g):
        return g
    return xp.broadcast_to(xp.asarray(g, dtype=_fdtype(g, *like)), tuple(target))


def _accumulate(total, part):
    if is_zero(part):
        return total
    if is_zero(total):
        return part
    return total + part


def unbroadcast_transpose(g, cot, x, y):
    """Transpose of cot -> unbroadcast(cot, x, y)."""
    if is_zero(g):
        return ZERO
    if shape(x) == shape(y) and (is_zero(cot) or shape(cot) == shape(y)):
        return g
    return _cast(sum_to(materialize(g, y), shape(cot)), cot)


def sum_vjp_transpose(g, cot, x, axis=None, keepdims=False):
    """Transpose of cot -> sum_vjp(cot, x, axis, keepdims)."""
    if is_zero(g):
        return ZERO
    if keepdims or axis is None or ndim(cot) == 0:
        return g
    axes = _axes(axis, ndim(x))
    xs = shape(x)
    reduced = tuple(d for i, d in enumerate(xs) if i not in axes)
    kept = tuple(1 if i in axes else d for i, d in enumerate(xs))
    G = _bcast(g, kept, cot)
    return _cast(sum_to(array_module(G).reshape(G, reduced), shape(cot)), cot)


def sum_to_transpose(g, cot, ans):
    """Transpose of cot -> sum_to(cot, shape(ans)): broadcast back."""
    if is_zero(g):
        return ZERO
    gs, target = shape(cot), shape(ans)
    if gs == target:
        return g
    lead = len(gs) - len(target)
    inter = list(gs[lead:] if lead > 0 else gs)
    if len(inter) == len(target):
        for i, d in enumerate(target):
            if d == 1:
                inter[i] = 1
    G = _bcast(g, target, cot)
    return array_module(G).reshape(G, tuple(inter))


def keep_dims_transpose(g, y, ans, axis, keepdims):
    """Transpose of y -> keep_dims(y, x, axis, keepdims)."""
    if is_zero(g) or keepdims or axis is None:
        return g
    G = _full(g, ans)
    return array_module(G).reshape(G, shape(y))


def extremum_vjp_transpose(g, cot, x, y, axis, keepdims, ans):
    """Transpose of cot -> extremum_vjp(cot, x, y, axis, keepdims)."""
    if is_zero(g):
        return ZERO
    xp = array_module(x, ans)
    H = _full(g, ans) * extremum_vjp(1.0, xp.asarray(x), y, axis, keepdims)
    return _cast(sum_to(xp.sum(H, axis=axis, keepdims=keepdims), shape(cot)), cot)


def item_transpose(g, cot, key):
    """Transpose of cot -> item(cot, key): g put at `key` of a zero container.
    A cot that is a number (the zero made NumPy zeros in batched code) gives
    the zero whatever it is: so does the transpose."""
    if is_zero(g) or is_container_zero(cot):
        return ZERO
    return getitem_vjp(g, cot, key)


def callee_adjoint(cot, key):
    """item(cot, key) of a call's pullback results, for the function that a
    dynamic call called (`act(h)`, act taken from a tuple that also holds
    differentiated values): a closure's pullback has that slot, its captured
    values' adjoint (after the arguments'); a plain function's has none, and
    its adjoint is the zero (transformer/reverse.py)."""
    if isinstance(cot, tuple) and key >= len(cot):
        return ZERO
    return item(cot, key)


def callee_adjoint_transpose(g, cot, key):
    """Transpose of cot -> callee_adjoint(cot, key)."""
    if isinstance(cot, tuple) and key >= len(cot):
        return ZERO
    return item_transpose(g, cot, key)


def getitem_vjp_transpose(g, cot, x, idx, ans):
    """Transpose of cot -> getitem_vjp(cot, x, idx): read `idx` back out."""
    if is_zero(g):
        return ZERO
    if isinstance(x, dict):
        return item(g, idx)
    if isinstance(x, (list, tuple)):
        if isinstance(idx, slice):
            return [item(g, i) for i in range(*idx.indices(len(x)))]
        return item(g, idx)
    return _cast(sum_to(_full(g, ans)[idx], shape(cot)), cot)


def add_transpose(g, x, ans):
    """Transpose of x -> add(x, other), for one operand `x` of rt.add."""
    if is_zero(g):
        return ZERO
    if isinstance(x, dict):
        return {k: add_transpose(item(g, k), v, ans[k]) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        parts = [add_transpose(item(g, i), v, ans[i]) for i, v in enumerate(x)]
        return type(x)(*parts) if hasattr(x, '_fields') else type(x)(parts)
    if isinstance(ans, _CONTAINERS):     # x is the zero 0.0 added to a container
        return ZERO
    return unbroadcast(g, x, ans)


def finalize_transpose(g, cot, x):
    """Transpose of cot -> finalize(cot, x)."""
    if is_zero(g) or is_zero(cot) and isinstance(x, _CONTAINERS):
        return ZERO
    if isinstance(x, dict):
        return {k: finalize_transpose(item(g, k), item(cot, k), v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finalize_transpose(item(g, i), item(cot, i), v) for i, v in enumerate(x)]
    children = node_children(x)
    if children is not None:          # a registered node: child by child, as finalize
        parts = finalize_transpose(tuple(children_of(g)),
                                   ZERO if is_zero(cot) else tuple(children_of(cot)),
                                   tuple(children))
        return node_rebuilt(x, parts)
    if x is None:
        return ZERO
    if not is_array(x):
        return g
    return _cast(sum_to(materialize(g, x), shape(cot)), cot)


def broadcast_list_transpose(g, cot, xs, y):
    """Transpose of cot -> broadcast_list(cot, xs, y): sum the pieces back."""
    if is_zero(g):
        return ZERO
    if is_array(xs):                  # one adjoint for every row of an array
        return unbroadcast_transpose(g, cot, xs[0], y) if shape(xs) and shape(xs)[0] else ZERO
    total = ZERO
    for gi, x in zip(g, xs):
        total = _accumulate(total, unbroadcast_transpose(gi, cot, x, y))
    return total


def unstack_transpose(g, cot, xs, axis=0):
    """Transpose of cot -> unstack(cot, xs, axis): stack the pieces."""
    if is_zero(g):
        return ZERO
    xp = array_module(cot)
    ax = axis % ndim(cot)
    cs = shape(cot)
    T = cs[:ax] + cs[ax + 1:]
    parts = [_zeros(T, cot) if is_zero(gi) else _bcast(materialize(gi, x), T, cot)
             for gi, x in zip(g, xs)]
    return _cast(xp.stack(parts, axis=ax), cot)


def concatenate_vjp_transpose(g, cot, xs, y, axis=0):
    """Transpose of cot -> concatenate_vjp(cot, xs, y, axis): concatenate."""
    if is_zero(g):
        return ZERO
    xp = array_module(cot, y)
    parts = []
    for gi, x in zip(g, xs):
        part = _zeros(shape(x), x, cot) if is_zero(gi) else _full(gi, x)
        parts.append(xp.ravel(part) if axis is None else part)
    out = xp.concatenate(parts, axis=0 if axis is None else axis)
    return _cast(sum_to(xp.reshape(out, shape(y)), shape(cot)), cot)


def _bilinear(kind, xp, axes):
    """(forward product, its VJP as vjp(c, a, b, y, which)) for a product kind."""
    if kind == 'matmul':
        return xp.matmul, matmul_vjp
    if kind == 'dot':
        return xp.dot, dot_vjp
    if kind == 'outer':
        return xp.outer, outer_vjp
    if kind == 'inner':
        return xp.inner, inner_vjp
    if kind == 'vdot':               # (vdot_vjp's product: no conjugate)
        return (lambda a, b: xp.dot(xp.ravel(a), xp.ravel(b)),
                lambda c, a, b, y, w: vdot_vjp(c, a, b, w))
    if kind == 'tensordot':
        return (lambda a, b: xp.tensordot(a, b, axes),
                lambda c, a, b, y, w: tensordot_vjp(c, a, b, y, axes, w))
    raise ValueError(f'unknown product {kind!r}')


def product_vjp_transpose(g, cot, x1, x2, y, which, wrt, kind='matmul', axes=None):
    """Transposes of the product rules (matmul_vjp, dot_vjp, outer_vjp,
    inner_vjp, vdot_vjp, tensordot_vjp)(cot, x1, x2, y, which), which are
    bilinear: linear in cot and in the operand other than `which`.
    wrt: 'cot', 0 (x1) or 1 (x2). y may be None (vdot: a scalar output)."""
    if is_zero(g):
        return ZERO
    xp = array_module(cot, x1, x2)
    op, vjp = _bilinear(kind, xp, axes)
    mine = (x1, x2)[which]
    G = _full(g, mine)
    if wrt == 'cot':
        r = op(G, x2) if which == 0 else op(x1, G)
        return _cast(sum_to(r, shape(cot)), cot)
    if wrt == which:
        return ZERO
    C = cot if y is None else _full(cot, y)
    if which == 0:
        return vjp(C, G, x2, y, 1)
    return vjp(C, x1, G, y, 0)


def pad_values_vjp_transpose(g, cot, array, y, pad_width, mode, constant_values):
    """Transpose of cot -> pad_values_vjp(cot, array, y, pad_width, mode, constant_values)."""
    if is_zero(g) or mode != 'constant':
        return ZERO
    xp = array_module(cot, array)
    nd = ndim(array)
    vals = _full(g, constant_values)
    vals = numpy.broadcast_to(vals.get() if hasattr(vals, 'get') else vals, (nd, 2))
    z = numpy.zeros(shape(array), dtype=_fdtype(cot, g))
    out = xp.asarray(numpy.pad(z, _pad_pairs(pad_width, nd), 'constant', constant_values=vals))
    return _cast(sum_to(out, shape(cot)), cot)


def setitem_vjp_x_transpose(g, cot, y, idx):
    """Transpose of cot -> setitem_vjp_x(cot, y, idx): zero the written part."""
    if is_zero(g):
        return ZERO
    if isinstance(y, (list, dict)):
        if is_zero(cot):
            return ZERO
        out = dict(g) if isinstance(g, dict) else list(g)
        out[idx] = ZERO
        return out
    xp = array_module(g, y)
    out = xp.array(materialize(g, y), dtype=_fdtype(cot, y, g))
    out[idx] = 0
    return _cast(sum_to(out, shape(cot)), cot)


def setitem_vjp_v_transpose(g, cot, y, idx, v):
    """Transpose of cot -> setitem_vjp_v(cot, y, idx, v): scatter g back."""
    if is_zero(g):
        return ZERO
    if isinstance(y, (list, dict)):
        return item_transpose(g, cot, idx)
    return _cast(sum_to(_written_back(g, y, idx, cot), shape(cot)), cot)


def written_part_transpose(g, cot, idx):
    """Transpose of cot -> written_part(cot, idx)."""
    if is_zero(g):
        return ZERO
    return _cast(_written_back(g, cot, idx, cot), cot)


def _written_back(g, y, idx, cot):
    """g (one cotangent per write of y[idx] = v) put back where the writes
    landed: the winner of repeated writes carries its own, the overwritten
    ones nothing, which is what writing them in order (last wins) leaves."""
    xp = array_module(g, y)
    z = xp.zeros(shape(y), dtype=_fdtype(cot, y, g))
    return _write(z, idx, _full(g, z[idx]))


def append_list_transpose(g, cot):
    """Transpose of cot -> append_vjp_list(cot, xs) = cot[:-1]."""
    if is_container_zero(g) or is_container_zero(cot):
        return ZERO
    return list(g) + [ZERO]


def array_vjp_transpose(g, cot, x, y):
    """Transpose of cot -> array_vjp(cot, x, y)."""
    if is_zero(g):
        return ZERO
    xp = array_module(cot, y)

    def build(gi, xi, yshape):
        if isinstance(xi, (list, tuple)):
            if is_zero(gi):
                return xp.zeros(yshape, dtype=_fdtype(cot, y))
            return xp.stack([build(item(gi, i), v, yshape[1:]) for i, v in enumerate(xi)])
        if is_zero(gi):
            return xp.zeros(yshape, dtype=_fdtype(cot, y))
        return _bcast(materialize(gi, xi), yshape, cot, y)

    return _cast(sum_to(build(g, x, shape(y)), shape(cot)), cot)


def _stack_prep(kind, x):
    s = shape(x)
    if kind == 'hstack':
        return s or (1,)
    return s if len(s) >= 2 else (1,) + (s or (1,))


def stack_vjp_transpose(g, cot, tup, y, kind):
    """Transpose of cot -> hstack_vjp / vstack_vjp(cot, tup, y): concatenate."""
    if is_zero(g):
        return ZERO
    xp = array_module(cot, y)
    axis = 0 if kind == 'vstack' or ndim(y) == 1 else 1
    parts = []
    for gi, x in zip(g, tup):
        part = _zeros(shape(x), cot, y) if is_zero(gi) else _full(gi, x)
        parts.append(xp.reshape(part, _stack_prep(kind, x)))
    return _cast(sum_to(xp.concatenate(parts, axis=axis), shape(cot)), cot)


def split_vjp_transpose(g, cot, ary, y, axis=0):
    """Transpose of cot -> split_vjp(cot, ary, y, axis): split g back."""
    if is_zero(g) or is_zero(cot):
        return ZERO
    xp = array_module(ary, g)
    G = _full(g, ary)
    bounds = numpy.cumsum([shape(p)[axis] for p in y])[:-1]
    pieces = xp.split(G, [int(b) for b in bounds], axis=axis)
    return [ZERO if is_zero(ci) else _cast(sum_to(p, shape(ci)), ci)
            for p, ci in zip(pieces, cot)]


def linspace_vjp_transpose(g, cot, start, stop, y, num=50, endpoint=True, retstep=False,
                           axis=0, which=0):
    """Transpose of cot -> linspace_vjp(cot, start, stop, y, ..., which): g
    (shaped like start or stop) spread over the samples, and the step, as
    linspace spreads its start (which=0) or stop; summed to cot's forms."""
    if is_zero(g):
        return ZERO
    xp = array_module(g, start, stop)
    bounds = numpy.broadcast_shapes(shape(start), shape(stop))
    spread, zero = _bcast(g, bounds, start, stop), _zeros(bounds, g, start, stop)
    ends = (spread, zero) if which == 0 else (zero, spread)
    out = xp.linspace(*ends, int(num), endpoint, retstep, axis=axis)
    if not retstep:
        return _cast(sum_to(out, shape(cot)), cot)
    return tuple(ZERO if is_zero(c) else _cast(sum_to(xp.asarray(o), shape(c)), c)
                 for o, c in zip(out, cot))


def diff_vjp_transpose(g, cot, a, y, n=1, axis=-1, prepend=None, append=None, which=0):
    """Transpose of cot -> diff_vjp(cot, a, y, n, axis, prepend, append, which):
    g put in its piece of zeros shaped like the joined pieces, differenced n
    times."""
    if is_zero(g):
        return ZERO
    xp = array_module(g, a, y)
    pieces, ax = _diff_pieces(a, axis, prepend, append)
    parts = [None if s is None else _bcast(g, s, cot, a) if k == _DIFF_ORDER[which]
             else _zeros(s, cot, a) for k, s in enumerate(pieces)]
    out = xp.diff(xp.concatenate([p for p in parts if p is not None], axis=ax), int(n), axis=ax)
    return _cast(sum_to(out, shape(cot)), cot)


def joined_vjp_transpose(g, cot, tup, y, kind):
    """Transpose of cot -> joined_vjp(cot, tup, y, kind): join the pieces of g."""
    if is_zero(g):
        return ZERO
    xp = array_module(cot, y)
    parts = [_zeros(_joined_piece(kind, x), cot, y) if is_zero(gi)
             else xp.reshape(_full(gi, x), _joined_piece(kind, x)) for gi, x in zip(g, tup)]
    out = xp.concatenate(parts, axis=1 if kind == 'column_stack' else 2)
    return _cast(sum_to(out, shape(cot)), cot)


def py_extremum_transpose(g, cot, args, y):
    """Transpose of cot -> py_extremum_vjp(cot, args, y): read the chosen slot."""
    if is_zero(g):
        return ZERO
    if len(args) == 1:
        seq = args[0]
        g0 = item(g, 0)
        if is_zero(g0):
            return ZERO
        if is_array(seq):
            xp = array_module(seq)
            i = int(xp.argmax(seq == y))
            return _full(g0, seq)[i]
        return item(g0, _pick_extremum(list(seq), y))
    return item(g, _pick_extremum(args, y))


def _masked_transpose(g, cot, mask, operand, y, xp):
    """Transpose of cot -> unbroadcast(cot * mask, operand, y), zero where the
    mask (bools or weights) is."""
    W = numpy.broadcast_shapes(shape(mask), shape(cot))
    Hw = sum_to(materialize(g, y), W)         # (unbroadcast makes it y's shape: summed back)
    r = _weighted(Hw, mask, xp, _fdtype(cot, Hw))
    return _cast(sum_to(r, shape(cot)), cot)


def where_vjp_transpose(g, cot, condition, x, y, which):
    """Transpose of cot -> where_vjp(cot, condition, x, y, which)."""
    if is_zero(g):
        return ZERO
    xp = array_module(g, cot, x, y)
    cond = xp.asarray(condition, dtype=bool)
    return _masked_transpose(g, cot, cond if which == 0 else ~cond, x, y, xp)


def clip_vjp_transpose(g, cot, a, a_min, a_max, min, max, y, which):
    """Transpose of cot -> clip_vjp(cot, a, a_min, a_max, min, max, y, which)."""
    if is_zero(g):
        return ZERO
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    xp = array_module(g, cot, a, lo, hi, y)
    weight = _clip_weights(a, lo, hi, xp, _fdtype(cot, g))[which]
    return _masked_transpose(g, cot, weight, (a, lo, hi)[which], y, xp)


def safe_log(x):
    """log(x) with log(0) taken as 0: the factor of d(x1 ** x2)/d(x2), which
    vanishes at x1 = 0. Python scalars stay Python scalars (weakly typed)."""
    if not is_array(x) and not hasattr(x, 'dtype'):
        if x == 0:
            return 0.0
        return _math.log(x) if x > 0 else float('nan')
    xp = array_module(x)
    positive = x > 0
    logs = xp.log(xp.where(positive, x, 1))     # log(0) taken as 0
    # log of a negative base is nan (as in JAX), produced without a warning
    return xp.where(positive | (x == 0), logs, xp.asarray(xp.nan, dtype=logs.dtype))



def log_times(u, x):
    """u * log(x) (log 0 taken as 0), and 0 wherever u is 0, even at a
    negative x whose log is nan: the exponent's term of d(x1 ** x2). A
    derivative of derivative code sends this term a zero cotangent when the
    exponent's adjoint is dropped (a constant passed to a helper), and its
    rules are this function again, so 0 * nan never appears at any order."""
    if not is_array(u) and not hasattr(u, 'dtype') and not is_array(x) \
            and not hasattr(x, 'dtype'):
        return 0.0 if u == 0 else u * safe_log(x)
    xp = array_module(u, x)
    out = u * safe_log(xp.where(u == 0, 1, x))
    # a number exponent made an array by where must not widen u's float32
    return out if hasattr(x, 'dtype') else cast_like(out, u)

# ---------------------------------------------------------------------------
# Jacobians built by generated code (codax.jacfwd / codax.jacrev), one
# column or row at a time; linear in the columns/rows, so they have records.
# ---------------------------------------------------------------------------

def is_array_leaf(x):
    """Whether x is an array or a number (not a pytree of them)."""
    return is_array(x) or isinstance(x, (float, int, numpy.generic))


def unit_tangent(x, j):
    """The j-th basis vector shaped like x: one-hot, or 1.0 for a number."""
    if not is_array(x):
        return 1.0
    e = array_module(x).zeros(shape(x), dtype=_fdtype(x))
    e.reshape(-1)[j] = 1.0
    return e


def default_argument(fn, i):
    """The default value of parameter i of fn (a call that omitted it)."""
    import inspect
    from .closures import Closure
    if isinstance(fn, Closure):        # its lifted function's, after the captured values
        fn, i = fn.function, i + len(fn)
    target = getattr(fn, 'fun', fn)
    return list(inspect.signature(target).parameters.values())[i].default


def basis(x, lead=0):
    """The unit tangents of x stacked on a leading axis: (x.size,) + x.shape.
    With `lead` > 0, x carries that many leading batch axes (vmap of a
    Jacobian): the basis of one example, the same for all of them."""
    if not is_array(x):
        return numpy.ones((1,))
    xp = array_module(x)
    example = tuple(shape(x)[lead:])
    n = int(numpy.prod(example))
    dtype = _fdtype(x)
    key = (id(xp), example, dtype)
    hit = _BASES.get(key)
    if hit is None:
        hit = xp.reshape(xp.eye(n, dtype=dtype), (n,) + example)
        if xp is numpy and n * n * hit.itemsize <= 1 << 23:    # kept: read-only, up to 8 MB
            hit.flags.writeable = False
            if len(_BASES) > 32:
                _BASES.clear()
            _BASES[key] = hit
    return hit


_BASES = {}


# The stacks of columns or rows below are whatever vmap gave: anything that
# broadcasts (as NumPy does, from the right) to lead + (n,) + the example's
# shape, where `lead` counts the leading batch axes of `outs`/`out` and `x`
# (the batching rules pass lead + 1, with `outs`, `out` and `x` batched).

def jacobian_from_columns(cols, outs, x, lead=0):
    """Columns d out / d x[j], stacked on a leading axis (a vmap over the
    basis of x, which also stacked the outputs `outs`), as the Jacobian
    out.shape + x.shape."""
    xp = array_module(outs, x, cols)
    front, xs = tuple(shape(outs)[:lead]), tuple(shape(x)[lead:])
    n, out = int(numpy.prod(xs)), tuple(shape(outs)[lead + 1:])
    full = xp.broadcast_to(xp.asarray(cols), front + (n,) + out)
    return xp.reshape(xp.moveaxis(full, lead, -1), front + out + xs).astype(
        _fdtype(outs, x), copy=False)


def columns_vjp(g, cols, outs, x, ans, lead=0):
    """Adjoint of the stacked columns for ans = jacobian_from_columns(cols, outs, x, lead)."""
    if is_zero(g):
        return ZERO
    xp = array_module(ans)
    front, xs = tuple(shape(outs)[:lead]), tuple(shape(x)[lead:])
    n, out = int(numpy.prod(xs)), tuple(shape(outs)[lead + 1:])
    G = xp.moveaxis(xp.reshape(_full(g, ans), front + out + (n,)), -1, lead)
    return sum_to(G, shape(cols))


def jacobian_from_rows(rows, out, x, lead=0):
    """Rows d out[i] / d x, stacked on a leading axis (a vmap over the basis
    of out), as the Jacobian out.shape + x.shape."""
    xp = array_module(out, x, rows)
    front, example = tuple(shape(out)[:lead]), tuple(shape(out)[lead:])
    n, xs = int(numpy.prod(example)), tuple(shape(x)[lead:])
    full = xp.broadcast_to(xp.asarray(rows), front + (n,) + xs)
    # x's dtype, as the rows are x's cotangents (complex for complex x, as in JAX)
    return xp.reshape(full, front + example + xs).astype(_fdtype(x, out), copy=False)


def rows_vjp(g, rows, out, x, ans, lead=0):
    """Adjoint of the stacked rows for ans = jacobian_from_rows(rows, out, x, lead)."""
    if is_zero(g):
        return ZERO
    front, example = tuple(shape(out)[:lead]), tuple(shape(out)[lead:])
    n, xs = int(numpy.prod(example)), tuple(shape(x)[lead:])
    G = array_module(ans).reshape(_full(g, ans), front + (n,) + xs)
    return sum_to(G, shape(rows))


def dense_vjp(g, t, x):
    """Adjoint of t for ans = dense(t, x): sum back to t's (broadcastable) shape."""
    if isinstance(x, dict):
        return {k: dense_vjp(item(g, k), item(t, k), v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [dense_vjp(item(g, i), item(t, i), v) for i, v in enumerate(x)]
    if is_zero(g) or not is_array(x):
        return g
    return sum_to(materialize(g, x), shape(t))


# ---------------------------------------------------------------------------
# Dict views as lists (`for k, v in params.items()`): linear in the values.
# ---------------------------------------------------------------------------

def dict_items(d):
    """`d.items()` as a list of (key, value) pairs."""
    return list(d.items())


def dict_items_vjp(g, d):
    """Adjoint of d for ans = dict_items(d): each pair's value adjoint, by key."""
    if is_zero(g):
        return ZERO
    return {k: item(item(g, i), 1) for i, k in enumerate(d)}


def dict_items_tangent(t):
    """Tangent of ans = dict_items(d) for d's tangent t: each value's tangent,
    and the zero for its key (a key is no input to differentiate)."""
    if is_zero(t):
        return ZERO
    return [(ZERO, v) for v in t.values()]


def dict_values(d):
    """`d.values()` as a list."""
    return list(d.values())


def dict_values_vjp(g, d):
    """Adjoint of d for ans = dict_values(d)."""
    if is_zero(g):
        return ZERO
    return {k: item(g, i) for i, k in enumerate(d)}


def dict_keys(d):
    """`d.keys()` as a list."""
    return list(d.keys())


def sequence_vjp(g, x):
    """Adjoint of x for ans = tuple(x) or list(x): the same items, in x's kind.
    Linear in g; its transpose is sequence_vjp_transpose (both records, so
    every order follows)."""
    if is_zero(g):
        return ZERO
    if isinstance(x, (list, tuple)):
        return type(x)(g) if not hasattr(x, '_fields') else type(x)(*g)
    xp = array_module(x)                          # the rows of an array
    return xp.stack([xp.asarray(dense(item(g, i), x[i])) for i in range(len(x))])


def sequence_vjp_transpose(h, x):
    """Transpose of g -> sequence_vjp(g, x): h (shaped like x) as the list of
    its items, one for each of x's."""
    if is_zero(h):
        return ZERO
    if not isinstance(h, (list, tuple)):
        h = materialize(h, x)                     # (a number stands for its broadcast)
    return [item(h, i) for i in range(len(x))]


def concat(a, b):
    """`a + b` where normalize saw a list or tuple operand (`t + (v,)`,
    `xs.extend(ys)`): the sequences joined; an array operand makes it
    NumPy's sum, which the list then stands for."""
    return a + b


def concat_vjp(cot, a, b, y, which):
    """Adjoint of operand `which` (0: a, 1: b) of y = concat(a, b): its own
    items of cot where sequences were joined, else cot unbroadcast to it."""
    x = b if which else a
    if not isinstance(y, (list, tuple)):
        return unbroadcast(cot, x, y)
    if is_container_zero(cot):
        return ZERO
    return _rebuild(x, list(cot[len(a):] if which else cot[:len(a)]))


def concat_vjp_transpose(g, cot, a, b, y, which):
    """Transpose of cot -> concat_vjp(cot, a, b, y, which): g put at the
    operand's own items of a zero cotangent of y."""
    if is_zero(g):
        return ZERO
    x = b if which else a
    if not isinstance(y, (list, tuple)):
        return unbroadcast_transpose(g, cot, x, y)
    own = [item(g, i) for i in range(len(x))]
    return [ZERO] * len(a) + own if which else own + [ZERO] * len(b)


# ---------------------------------------------------------------------------
# Pytrees (codax.tree_util inside transformed code): their functions are
# primitives (runtime/primitives/trees.py), named here so that generated code
# calls them as rt.tree_flatten, rt.derivative_leaves, ...
# ---------------------------------------------------------------------------

from .tree import (derivative_leaves, derivative_tree, tree_flatten,  # noqa: E402,F401
                   tree_leaves, tree_map_is_leaf, tree_map_with_path_is_leaf,
                   tree_structure, tree_unflatten, treedef_leaves, treedef_subtrees)

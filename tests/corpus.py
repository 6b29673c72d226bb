"""A corpus of plain-NumPy scalar functions for testing codax.

Every function here is module level (or a closure made at module level), so
its source can be retrieved. Each returns a scalar float. ``CORPUS`` pairs each
function with a factory for example inputs (fixed seeds) and the argnums to
differentiate. Inputs are kept inside each function's domain and away from
kinks and ties so that central finite differences are valid.

Do not reformat carelessly: the functions are the test data.
"""

import math

import numpy as np
import numpy as onp
from numpy import exp, sin


def _rng(seed):
    return np.random.default_rng(seed)


def _away(x, lo=0.2):
    """Push values away from 0 (|x| >= lo), keeping their sign."""
    return np.where(x >= 0.0, x + lo, x - lo)


# ==========================================================================
# User helper functions (called from corpus functions; no special rules)
# ==========================================================================

def softplus(x):
    return np.log1p(np.exp(x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def affine(W, b, x):
    return x @ W + b


def dense_tanh(W, b, x):
    # helper calling another helper
    return np.tanh(affine(W, b, x))


def moments(x):
    # helper returning a tuple
    m = np.mean(x)
    v = np.mean((x - m) ** 2)
    return m, v


def horner_rec(x, n):
    # recursion on an integer depth: 1 + x + x^2 + ... + x^n
    if n == 0:
        return np.ones_like(x)
    return 1.0 + x * horner_rec(x, n - 1)


def make_weighted_sq(data):
    def weighted_sq(x):
        return np.sum((x - data) ** 2 * data)
    return weighted_sq


def make_affine_loss(W, target):
    def affine_loss(x):
        r = W @ x - target
        return 0.5 * np.dot(r, r)
    return affine_loss


# ==========================================================================
# Elementwise math
# ==========================================================================

def ew_trig(x):
    return np.sum(np.sin(x) * np.cos(x) + np.tan(x))


def ew_inv_trig(x):
    return np.sum(np.arcsin(x) + np.arccos(x) * x + np.arctan(3.0 * x))


def ew_hyperbolic(x):
    return np.sum(np.sinh(x) + np.cosh(x) * np.tanh(x))


def ew_inv_hyperbolic(x):
    return np.sum(np.arcsinh(x) + np.arccosh(1.5 + x ** 2) + np.arctanh(x / 2.0))


def ew_exponentials(x):
    return np.sum(np.exp(x) + np.exp2(x) * x + np.expm1(x))


def ew_logs(x):
    return np.sum(np.log(x) + np.log2(x) * x + np.log10(x) + np.log1p(x))


def ew_roots(x):
    return np.sum(np.sqrt(x) + np.cbrt(x) * x + np.square(x) + np.reciprocal(x))


def ew_abs_sign_negative(x):
    return np.sum(np.abs(x) * x + np.sign(x) * x ** 2 + np.negative(x) * 3.0)


def ew_power_fn(x, y):
    return np.sum(np.power(x, 3) + np.power(x, y) + np.power(2.0, y))


def ew_pow_operator(x, y):
    return np.sum(x ** 2.5 + 2.0 ** x + x ** y + x ** 2)


def ew_arctan2_hypot(x, y):
    return np.sum(np.arctan2(y, x) + np.hypot(x, y) * x)


def ew_maximum_minimum(x, y):
    return np.sum(np.maximum(x, y) * np.minimum(x, 0.5) + np.maximum(x, 0.0) ** 2)


def ew_where(x):
    return np.sum(np.where(x > 0.0, x ** 2, np.sin(x)) + np.where(x < 0.5, 1.0, x))


def ew_clip(x):
    return np.sum(np.clip(x, -0.5, 0.5) * x + np.clip(x ** 2, 0.1, None))


def ew_logaddexp(x, y):
    return np.sum(np.logaddexp(x, y) + np.logaddexp(x, 0.0) * y)


def ew_unary_minus(x):
    y = -x
    z = -(x ** 2)
    return -np.sum(y * z) + np.sum(-np.sin(-x))


# ==========================================================================
# Reductions
# ==========================================================================

def red_sum_axis(A):
    col = np.sum(A, axis=0)
    row = np.sum(A, axis=1, keepdims=True)
    return np.sum(col ** 2) + np.sum(row * A) + np.sum(A, axis=(0, 1))


def red_prod(x, A):
    return np.prod(x) + np.sum(np.prod(A, axis=1)) + np.sum(np.prod(A, axis=0, keepdims=True) * A)


def red_mean_var_std(A):
    return (np.mean(A) + np.var(A) + np.std(A, axis=0).sum()
            + np.var(A, axis=1, keepdims=True).sum() + np.std(A)
            + np.mean(A ** 2, axis=1).sum())


def red_max_min(A):
    return (np.max(A) + np.min(A, axis=0).sum() + np.amax(A, axis=1).sum()
            - np.amin(A) + np.sum(np.max(A, axis=1, keepdims=True) * A))


def red_cumsum(x, A):
    return np.sum(np.cumsum(x) ** 2) + np.sum(np.cumsum(A, axis=1) * A) + np.sum(np.cumsum(A, axis=0)[-1])


def red_norm(x, A):
    return np.linalg.norm(x) + np.linalg.norm(A) + np.sum(np.linalg.norm(A, axis=1))


def red_logsumexp_inline(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def red_amax_keepdims(A):
    s = A - np.amax(A, axis=0, keepdims=True)
    return np.sum(np.exp(s)) + np.sum(np.amin(A, axis=1, keepdims=True) ** 2)


# ==========================================================================
# Linear algebra
# ==========================================================================

def la_dot_matmul(A, x, B):
    return np.sum(np.dot(A, x) ** 2) + np.sum(np.matmul(A, B)) + np.dot(x, x)


def la_matmul_operator(A, x):
    y = A @ x
    return y @ y + np.sum(A.T @ A) + x @ A @ x


def la_outer_inner(x, y):
    return np.sum(np.outer(x, y) ** 2) + np.inner(x, y) * np.inner(x, x)


def la_einsum(A, B, x):
    return (np.einsum('ij,jk->ik', A, B).sum() + np.sum(np.einsum('ij,j->i', A, x) ** 2)
            + np.einsum('ij,ij->', A, A) + np.einsum('i,i', x, x))


def la_trace_tensordot(A, B):
    C = np.tensordot(A, B, axes=([1], [0]))
    return np.trace(C @ C) + np.sum(np.tensordot(A, A, axes=2)) + np.trace(A)


def la_solve(M, b):
    return np.sum(np.linalg.solve(M, b) ** 2)


def la_inv_det(M):
    return np.sum(np.linalg.inv(M)) + np.linalg.det(M)


def la_slogdet(M):
    sign, logdet = np.linalg.slogdet(M)
    return sign * logdet + np.linalg.slogdet(M @ M.T)[1]


def la_cholesky(A):
    n = A.shape[0]
    S = A @ A.T + n * np.eye(n)
    L = np.linalg.cholesky(S)
    return np.sum(L) + 2.0 * np.sum(np.log(np.diag(L)))


# ==========================================================================
# Shape manipulation
# ==========================================================================

def sh_reshape_transpose(x):
    B = np.reshape(x, (2, 3))
    C = np.transpose(B)
    w = np.arange(6.0).reshape(3, 2)
    return np.sum(C * w) + np.sum(x.reshape(3, 2) ** 2) + np.sum(B.T @ B)


def sh_swapaxes_moveaxis(A):
    S = np.swapaxes(A, 0, 2)
    M = np.moveaxis(A, 0, -1)
    return np.sum(S[0] ** 2) + np.sum(M[1] * 3.0) + np.sum(np.transpose(A, (1, 0, 2))[2] * A[:, 1])


def sh_squeeze_expand(x):
    y = np.expand_dims(x, 0)
    z = np.squeeze(y * y, axis=0)
    w = np.expand_dims(x, axis=1) * x
    return np.sum(z * x) + np.sum(np.squeeze(w[:, :1]))


def sh_concatenate_stack(x, y):
    c = np.concatenate([x, y ** 2])
    s = np.stack([x, y], axis=1)
    s0 = np.stack((x * y, x))
    return np.sum(c * np.arange(c.shape[0])) + np.sum(s[:, 0] * s[:, 1]) + np.sum(s0[0] * s0[1])


def sh_hstack_vstack(x, y):
    h = np.hstack([x, y * 2.0])
    v = np.vstack([x, y, x * y])
    return np.sum(h ** 2) + np.sum(v[2] * v[0]) + np.sum(v.T @ v)


def sh_split(x, A):
    a, b = np.split(x, 2)
    parts = np.split(A, 3, axis=1)
    return np.sum(a * b) + np.sum(parts[1] ** 2) + np.sum(parts[2] * parts[0])


def sh_broadcast_tile_repeat(x, W):
    B = np.broadcast_to(x, (3, 4))
    t = np.tile(x, 2)
    r = np.repeat(x, 2)
    return np.sum(B * W) + np.sum(t ** 2 * np.arange(8.0)) + np.sum(r * np.arange(8.0))


def sh_flip_roll_pad(x):
    f = np.flip(x)
    r = np.roll(x, 1)
    p = np.pad(x, 1)
    return np.sum(f * x ** 2) + np.sum(r * x ** 2) + np.sum(p ** 2 * np.arange(6.0))


def sh_tile_2d_repeat_axis(A):
    T = np.tile(A, (2, 1))
    R = np.repeat(A, 2, axis=1)
    F = np.flip(A, axis=0)
    return np.sum(T[:, 0] * np.arange(4.0)) + np.sum(R ** 2) + np.sum(F * A)


# ==========================================================================
# Array creation combined with inputs
# ==========================================================================

def cr_creation(x):
    n = x.shape[0]
    z = np.zeros(n) + x
    o = np.ones_like(x)
    f = np.full((n,), 2.0)
    lin = np.linspace(0.0, 1.0, n)
    e = np.eye(n)
    zl = np.zeros_like(x)
    return np.sum((e @ z) * lin + o * f * x) + np.sum(zl + np.arange(n) * x) + np.sum(np.ones((2, n)) @ x)


def cr_eye_full(A):
    n = A.shape[0]
    I = np.eye(n)
    F = np.full((n, n), 0.5)
    return np.sum((A + I) @ (A - F)) + np.trace(np.ones((n, n)) * A)


# ==========================================================================
# Non-differentiable pieces (gradient contribution is zero)
# ==========================================================================

def nd_argmax_floor_sign(x):
    i = np.argmax(x)
    j = np.argmin(x)
    return x[i] ** 2 + x[j] + np.sum(np.floor(x * 3.0) * x) + np.sum(np.sign(x)) + np.sum(x > 0.0) * 1.0


def nd_comparisons_as_weights(x):
    w = (x > 0.0).astype(np.float64)
    k = np.round(x * 2.0)
    return np.sum(w * x ** 2) + np.sum(k * x) + np.sum(np.ceil(x))


# ==========================================================================
# ndarray methods and attributes
# ==========================================================================

def meth_sum_axis_T(A):
    s = A.sum(axis=0)
    return (s * s).sum() + (A.T @ A).sum() + A.sum(axis=1).dot(A[:, 0])


def meth_reshape_mean(x):
    B = x.reshape(2, 3)
    m = B.mean(axis=1)
    return m.dot(m) + x.mean() + B.mean(axis=0).max()


def meth_dot_max(x, y):
    return x.dot(y) + x.max() * y.max() + x.min() + y.prod()


def meth_shape_loop(x):
    n = x.shape[0]
    total = 0.0
    for i in range(n):
        total = total + x[i] * (i + 1)
    return total / n + x.size * np.sum(x ** 2)


def meth_astype(x):
    y = x.astype(np.float64)
    return np.sum(y ** 2) + np.sum(x.astype(np.float64) * 2.0) + y.std()


def meth_shape_arithmetic(A):
    rows, cols = A.shape
    scale = A.shape[0] * 2.0 / A.shape[1]
    return scale * np.sum(A ** 2) + rows * np.mean(A) - cols * A.ndim * np.min(A)


def meth_copy_cumsum_var(x):
    c = x.cumsum()
    return c.var() + x.copy().sum() + np.abs(x).mean() + x.clip(-0.5, 0.5).sum()


# ==========================================================================
# Control flow
# ==========================================================================

def cf_if_data(x):
    if np.sum(x) > 1.0:
        y = x ** 2
    elif np.min(x) < -1.0:
        y = np.sin(x)
    else:
        y = np.exp(x)
    return np.sum(y)


def cf_if_shape(x):
    if x.shape[0] > 3:
        return np.sum(x[:3] ** 2) + np.sum(x[3:])
    elif x.ndim == 2:
        return np.sum(x ** 3)
    else:
        return np.sum(np.cos(x))


def cf_if_nested_scalar(x, s):
    t = np.sum(x * s)
    if t > 0.0:
        if s > 1.0:
            t = t * s
        else:
            t = t + s
    else:
        t = -t
    return t


def cf_for_range(x):
    acc = 0.0
    for i in range(x.shape[0]):
        acc = acc + np.sin(x[i]) * i
    for i in range(1, 4, 2):
        acc = acc + x[i] * x[i - 1]
    return acc


def cf_for_rows(A):
    total = 0.0
    for row in A:
        total = total + np.sum(row ** 2) * np.max(row)
    return total


def cf_for_zip(x, y):
    total = 0.0
    for a, b in zip(x, y):
        total += a * b ** 2
    return total


def cf_for_enumerate(A):
    total = 0.0
    for i, row in enumerate(A):
        for j, v in enumerate(row):
            total = total + v * (i + 1) / (j + 1)
    return total


def cf_while(x):
    i = 0
    acc = 0.0
    while i < x.shape[0]:
        acc = acc + x[i] ** 2
        i += 1
    return acc


def cf_while_data(x):
    y = x
    count = 0
    while np.sum(y ** 2) < 10.0:
        y = y * 1.5
        count += 1
    return np.sum(y ** 3) + count


def cf_break_continue(x):
    total = 0.0
    for i in range(x.shape[0]):
        if x[i] < 0.0:
            continue
        total = total + x[i] ** 2
        if total > 2.0:
            break
    return total


def cf_while_break(x):
    i = 0
    s = 0.0
    while True:
        s = s + np.exp(x[i])
        i += 1
        if i >= x.shape[0] or s > 3.0:
            break
    return s * i


def cf_early_return_in_if(x):
    s = np.sum(x)
    if s > 0.0:
        return s ** 2
    if s < -5.0:
        return -s
    return np.sum(np.sin(x))


def cf_early_return_in_loop(x):
    for i in range(x.shape[0]):
        if x[i] > 1.5:
            return x[i] ** 3 + np.sum(x[:i])
    return np.sum(x ** 2)


def cf_ternary(x):
    y = x ** 2 if np.sum(x) > 0.0 else -x
    s = 2.0 if x.shape[0] > 2 else 1.0
    z = np.sum(y) * s
    return z if z > 0.0 else -z


def cf_nested_loops(A, x):
    out = 0.0
    for i in range(A.shape[0]):
        row_total = 0.0
        for j in range(A.shape[1]):
            if A[i, j] > 0.0:
                row_total = row_total + A[i, j] * x[j]
            else:
                row_total = row_total - A[i, j] ** 2
        out = out + np.tanh(row_total)
    return out


# ==========================================================================
# User helpers, recursion, closures
# ==========================================================================

def hl_softplus_sigmoid(x):
    return np.sum(softplus(x) * sigmoid(x))


def hl_logsumexp(x, y):
    return logsumexp(x * y) - logsumexp(x)


def hl_helper_chain(W, b, x):
    return np.sum(dense_tanh(W, b, x) ** 2)


def hl_tuple_return(x):
    m, v = moments(x)
    mm, vv = moments(x ** 2)
    return m ** 2 + v + mm * vv


def hl_in_loop(W, b, x):
    h = x
    for _ in range(3):
        h = dense_tanh(W, b, h)
    return np.sum(h ** 2)


def rec_horner(x, n):
    return np.sum(horner_rec(x, n))


def rec_power_sum(x, n):
    if n == 0:
        return 0.0
    return np.sum(x ** n) / n + rec_power_sum(x, n - 1)


closure_weighted_sq = make_weighted_sq(np.array([0.5, 1.5, 2.0, 0.25]))
closure_affine_loss = make_affine_loss(
    np.array([[1.0, 2.0, 0.5], [0.0, 1.0, -1.0]]), np.array([0.3, -0.7]))


# ==========================================================================
# Python data structures
# ==========================================================================

def ds_tuple_unpack(x):
    a, b = x[0], x[1]
    (c, d), e = (x[2], x[3]), x[0]
    first, second, third = [a * b, c, d * e]
    return first + (second + third) * c


def ds_literals(x):
    d = {"a": x, "b": x ** 2}
    t = (x, 2.0 * x)
    lst = [np.sum(x), np.sum(x ** 2)]
    return np.sum(d["a"] * d["b"]) + np.sum(t[1] * t[0]) + lst[0] * lst[1]


def ds_dict_params(params, x):
    h = x @ params["W"] + params["b"]
    return np.sum(h ** 2) * params["scale"]


def ds_nested_pytree(params, x):
    h = x
    for layer in params["layers"]:
        h = np.sin(h @ layer["w"] + layer["c"])
    a, (b, c) = params["extra"]
    return np.sum(h * a) + b * np.sum(c)


def ds_list_append_stack(x):
    rows = []
    for i in range(3):
        rows.append(x * i + x ** 2)
    S = np.stack(rows)
    return np.sum(S ** 2)


def ds_list_append_array(x):
    vals = []
    for v in x:
        vals.append(v ** 2)
    return np.sum(np.array(vals) * x)


def ds_list_append_sum(x):
    parts = []
    for i in range(x.shape[0]):
        parts.append(np.sin(x[i]) * x[i])
    return sum(parts)


def ds_list_comprehension(x, A):
    sq = np.array([v ** 2 for v in x])
    rowsums = [np.sin(r).sum() for r in A]
    evens = [x[i] for i in range(x.shape[0]) if i % 2 == 0]
    return np.sum(sq * x) + sum(rowsums) + np.sum(np.stack(evens) ** 3)


def ds_augmented_assign(x, s):
    acc = np.zeros_like(x)
    acc += x ** 2
    acc *= 2.0
    acc -= x
    acc /= 3.0
    t = s
    t += 1.0
    t *= s
    t -= 0.5
    t /= 2.0
    return np.sum(acc) * t


def ds_augmented_scalar(x):
    total = 1.0
    for v in x:
        total *= (1.0 + v ** 2)
        total -= v
        total /= 1.5
    return total


# ==========================================================================
# Indexing (reads)
# ==========================================================================

def ix_slices(x):
    return np.sum(x[1:4] * x[:3]) + np.sum(x[::2] ** 2) + np.sum(x[-2:]) + x[-1] * x[0]


def ix_negative_step(x):
    r = x[::-1]
    return np.sum(r * np.arange(x.shape[0])) + np.sum(x[4:0:-2] ** 2)


def ix_int_array(x):
    idx = np.array([0, 2, 2, 3])
    return np.sum(x[idx] ** 2) + np.sum(x[[1, 1, 0]] * x[:3])


def ix_bool_mask(x):
    pos = x[x > 0.0]
    neg = x[x < 0.0]
    return np.sum(pos ** 2) + np.sum(np.exp(neg))


def ix_2d(A):
    return np.sum(A[1:, :2] ** 2) + np.sum(A[:, 0] * A[:, 1]) + A[0, 1] * A[2, 2] + np.sum(A[1])


def ix_2d_advanced(A):
    rows = np.array([0, 1, 2])
    cols = np.array([2, 0, 1])
    return np.sum(A[rows, cols] ** 2) + np.sum(A[A > 0.0]) + np.sum(A[[0, 2]][:, 1:])


# ==========================================================================
# Indexing (writes)
# ==========================================================================

def wr_loop_setitem(x):
    y = np.zeros(5)
    for i in range(5):
        y[i] = x[i] ** 2 * (i + 1)
    return np.sum(y * x)


def wr_slice_iadd(x):
    y = x.copy()
    y[1:] += x[:-1] ** 2
    return np.sum(y ** 2)


def wr_mask_zero(x):
    y = x * 2.0
    y[x < 0.0] = 0.0
    return np.sum(y ** 2) + np.sum(y * x)


def wr_copy_setitem(x):
    y = x.copy()
    y[0] = np.sum(x ** 2)
    y[-1] = y[0] * x[1]
    return np.sum(y * x)


def wr_2d(x):
    Y = np.zeros((3, 3))
    Y[0, :] = x
    Y[:, 1] += x ** 2
    Y[2, 2] = x[0] * x[1]
    Y[1:, :2] *= 2.0
    return np.sum(Y ** 2)


def wr_overwrite(x):
    y = np.ones(4)
    y[1] = x[0]
    y[1] = x[1] ** 2
    y[2:] = x[2:] * y[1]
    return np.sum(y * x)


# ==========================================================================
# math module, numpy aliases, from-imports
# ==========================================================================

def mt_scalar(s, x):
    return math.sin(s) * np.sum(x) + math.exp(s) + math.log(s) + math.sqrt(s) + s ** 2


def mt_scalar2(s):
    return math.cos(s) * math.tanh(s) + math.atan(s) + s * math.pi + math.pow(s, 3)


def mt_scalar_loop(s, n):
    acc = 0.0
    for k in range(1, n + 1):
        acc = acc + math.sin(k * s) / k
    return acc


def al_onp_basic(x):
    return onp.sum(onp.tanh(x) * onp.exp(-x))


def al_onp_linalg(A, x):
    y = onp.dot(A, x)
    return onp.mean(y ** 2) + onp.linalg.norm(x)


def al_mixed_aliases(x):
    return np.sum(onp.sin(x) * np.cos(x)) + onp.max(x)


def fi_from_import(x):
    return np.sum(sin(x) * exp(x))


def fi_from_import_scalar(x):
    return np.sum(exp(-x ** 2)) + sin(np.sum(x))


# ==========================================================================
# Realistic ML
# ==========================================================================

def ml_loss(params, x, y):
    h = np.tanh(x @ params["W"] + params["b"])
    return np.mean((h - y) ** 2)


def ml_softmax_xent(W, x, labels):
    logits = x @ W
    logits = logits - logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    n = x.shape[0]
    return -np.mean(logp[np.arange(n), labels])


def ml_rnn(params, xs):
    h = np.zeros(params["Wh"].shape[0])
    for t in range(10):
        h = np.tanh(xs[t] @ params["Wx"] + h @ params["Wh"] + params["b"])
    return np.sum(h ** 2)


def ml_mlp(params, x, y):
    h = x
    for W, b in params[:-1]:
        h = np.tanh(h @ W + b)
    W_out, b_out = params[-1]
    pred = h @ W_out + b_out
    return np.mean((pred - y) ** 2)


def ml_logistic_regression(w, X, t):
    z = X @ w
    return np.mean(softplus(z) - t * z) + 0.01 * np.sum(w ** 2)


# ==========================================================================
# Edge cases of ordinary NumPy/Python usage
# ==========================================================================

def scaled_power_sum(x, scale=2.0, power=2):
    return scale * np.sum(x ** power)


def eg_kwargs_defaults(x):
    return scaled_power_sum(x) + scaled_power_sum(x, power=3) + scaled_power_sum(scale=0.5, x=x)


def eg_top_level_default(x, scale=3.0):
    return np.sum(np.sin(x)) * scale


def eg_ellipsis_newaxis(A, x):
    return (np.sum(A[..., 0] ** 2) + np.sum(x[None, :] * x[:, None])
            + np.sum(x[np.newaxis] * 2.0) + np.sum(A[:, np.newaxis, 1] * A[:, :1]))


def eg_negative_axis(A):
    return np.sum(np.sum(A, axis=-1) ** 2) + np.sum(np.mean(A, axis=-2) * 3.0) + np.sum(np.max(A, axis=-1))


def eg_len_loop(x):
    total = 0.0
    for i in range(len(x)):
        total = total + x[i] * x[len(x) - 1 - i]
    return total


def eg_array_from_scalars(x):
    v = np.array([x[0], x[1] ** 2, 3.0])
    return np.sum(v * x[:3]) + np.sum(np.array([[x[0], 1.0], [x[2], x[1]]]) ** 2)


def eg_rebind_argument(x):
    x = x * 2.0
    x = np.sin(x)
    x += 1.0
    return np.sum(x ** 2)


def eg_python_builtins(x):
    s = np.sum(x)
    return abs(s) + max(x[0], x[1]) + min(x[2], x[3]) + sum(x) + abs(x[3])


# ==========================================================================
# Input factories
# ==========================================================================

def _u(seed, shape, lo=-1.0, hi=1.0):
    return _rng(seed).uniform(lo, hi, size=shape)


def _spd_like(seed, n=3):
    return np.eye(n) * 3.0 + 0.4 * _rng(seed).standard_normal((n, n))


def _mlp_params(seed):
    r = _rng(seed)
    return [
        (0.5 * r.standard_normal((3, 4)), 0.1 * r.standard_normal(4)),
        (0.5 * r.standard_normal((4, 4)), 0.1 * r.standard_normal(4)),
        (0.5 * r.standard_normal((4, 2)), 0.1 * r.standard_normal(2)),
    ]


CORPUS = [
    # elementwise
    ("ew_trig", ew_trig, lambda: (_u(1, 5),), 0),
    ("ew_inv_trig", ew_inv_trig, lambda: (_u(2, 5, -0.8, 0.8),), 0),
    ("ew_hyperbolic", ew_hyperbolic, lambda: (_u(3, 5),), 0),
    ("ew_inv_hyperbolic", ew_inv_hyperbolic, lambda: (_u(4, 5, -0.9, 0.9),), 0),
    ("ew_exponentials", ew_exponentials, lambda: (_u(5, 5),), 0),
    ("ew_logs", ew_logs, lambda: (_u(6, 5, 0.5, 2.0),), 0),
    ("ew_roots", ew_roots, lambda: (_u(7, 5, 0.5, 2.0),), 0),
    ("ew_abs_sign_negative", ew_abs_sign_negative, lambda: (_away(_u(8, 5)),), 0),
    ("ew_power_fn", ew_power_fn, lambda: (_u(9, 4, 0.5, 2.0), _u(10, 4, -1.0, 2.0)), (0, 1)),
    ("ew_pow_operator", ew_pow_operator, lambda: (_u(11, 4, 0.5, 2.0), _u(12, 4, -1.0, 2.0)), (0, 1)),
    ("ew_arctan2_hypot", ew_arctan2_hypot, lambda: (_away(_u(13, 4)), _away(_u(14, 4))), (0, 1)),
    ("ew_maximum_minimum", ew_maximum_minimum,
     lambda: (np.array([0.1, 0.9, -0.3, 1.4, -1.2]), np.array([0.4, 0.2, -0.8, 2.0, 0.3])), (0, 1)),
    ("ew_where", ew_where, lambda: (np.array([-0.7, -0.2, 0.3, 0.8, 1.3]),), 0),
    ("ew_clip", ew_clip, lambda: (np.array([-0.9, -0.2, 0.1, 0.4, 0.7]),), 0),
    ("ew_logaddexp", ew_logaddexp, lambda: (_u(15, 4, -2.0, 2.0), _u(16, 4)), (0, 1)),
    ("ew_unary_minus", ew_unary_minus, lambda: (_u(17, 4),), 0),
    # reductions
    ("red_sum_axis", red_sum_axis, lambda: (_u(20, (3, 4)),), 0),
    ("red_prod", red_prod, lambda: (_u(21, 4, 0.5, 1.5), _u(22, (3, 3), 0.5, 1.5)), (0, 1)),
    ("red_mean_var_std", red_mean_var_std, lambda: (_u(23, (3, 4)),), 0),
    ("red_max_min", red_max_min, lambda: (_u(24, (3, 4)),), 0),
    ("red_cumsum", red_cumsum, lambda: (_u(25, 4), _u(26, (2, 3))), (0, 1)),
    ("red_norm", red_norm, lambda: (_u(27, 4), _u(28, (3, 3))), (0, 1)),
    ("red_logsumexp_inline", red_logsumexp_inline, lambda: (_u(29, 5, -2.0, 2.0),), 0),
    ("red_amax_keepdims", red_amax_keepdims, lambda: (_u(30, (3, 4)),), 0),
    # linear algebra
    ("la_dot_matmul", la_dot_matmul, lambda: (_u(40, (3, 3)), _u(41, 3), _u(42, (3, 2))), (0, 1)),
    ("la_matmul_operator", la_matmul_operator, lambda: (_u(43, (3, 3)), _u(44, 3)), (0, 1)),
    ("la_outer_inner", la_outer_inner, lambda: (_u(45, 3), _u(46, 3)), (0, 1)),
    ("la_einsum", la_einsum, lambda: (_u(47, (2, 3)), _u(48, (3, 2)), _u(49, 3)), (0, 1, 2)),
    ("la_trace_tensordot", la_trace_tensordot, lambda: (_u(50, (3, 3)), _u(51, (3, 3))), (0, 1)),
    ("la_solve", la_solve, lambda: (_spd_like(52), _u(53, 3)), (0, 1)),
    ("la_inv_det", la_inv_det, lambda: (_spd_like(54),), 0),
    ("la_slogdet", la_slogdet, lambda: (_spd_like(55),), 0),
    ("la_cholesky", la_cholesky, lambda: (_u(56, (3, 3)),), 0),
    # shapes
    ("sh_reshape_transpose", sh_reshape_transpose, lambda: (_u(60, 6),), 0),
    ("sh_swapaxes_moveaxis", sh_swapaxes_moveaxis, lambda: (_u(61, (2, 3, 2)),), 0),
    ("sh_squeeze_expand", sh_squeeze_expand, lambda: (_u(62, 4),), 0),
    ("sh_concatenate_stack", sh_concatenate_stack, lambda: (_u(63, 3), _u(64, 3)), (0, 1)),
    ("sh_hstack_vstack", sh_hstack_vstack, lambda: (_u(65, 3), _u(66, 3)), (0, 1)),
    ("sh_split", sh_split, lambda: (_u(67, 4), _u(68, (2, 3))), (0, 1)),
    ("sh_broadcast_tile_repeat", sh_broadcast_tile_repeat, lambda: (_u(69, 4), _u(70, (3, 4))), (0, 1)),
    ("sh_flip_roll_pad", sh_flip_roll_pad, lambda: (_u(71, 4),), 0),
    ("sh_tile_2d_repeat_axis", sh_tile_2d_repeat_axis, lambda: (_u(72, (2, 3)),), 0),
    # creation
    ("cr_creation", cr_creation, lambda: (_u(80, 4),), 0),
    ("cr_eye_full", cr_eye_full, lambda: (_u(81, (3, 3)),), 0),
    # non-differentiable
    ("nd_argmax_floor_sign", nd_argmax_floor_sign, lambda: (np.array([0.2, -0.55, 0.9, -0.1, 0.45]),), 0),
    ("nd_comparisons_as_weights", nd_comparisons_as_weights, lambda: (np.array([0.4, -0.6, 1.1, -0.15]),), 0),
    # methods / attributes
    ("meth_sum_axis_T", meth_sum_axis_T, lambda: (_u(90, (3, 3)),), 0),
    ("meth_reshape_mean", meth_reshape_mean, lambda: (_u(91, 6),), 0),
    ("meth_dot_max", meth_dot_max, lambda: (_u(92, 4), _u(93, 4, 0.5, 1.5)), (0, 1)),
    ("meth_shape_loop", meth_shape_loop, lambda: (_u(94, 4),), 0),
    ("meth_astype", meth_astype, lambda: (_u(95, 4),), 0),
    ("meth_shape_arithmetic", meth_shape_arithmetic, lambda: (_u(96, (2, 3)),), 0),
    ("meth_copy_cumsum_var", meth_copy_cumsum_var, lambda: (np.array([0.3, -0.8, 0.1, 0.65, -0.35]),), 0),
    # control flow
    ("cf_if_data_first", cf_if_data, lambda: (np.array([0.5, 0.7, 0.2]),), 0),
    ("cf_if_data_elif", cf_if_data, lambda: (np.array([-1.5, 0.2, -0.3]),), 0),
    ("cf_if_data_else", cf_if_data, lambda: (np.array([-0.5, 0.2, 0.1]),), 0),
    ("cf_if_shape_long", cf_if_shape, lambda: (_u(100, 5),), 0),
    ("cf_if_shape_2d", cf_if_shape, lambda: (_u(101, (2, 2)),), 0),
    ("cf_if_shape_short", cf_if_shape, lambda: (_u(102, 3),), 0),
    ("cf_if_nested_scalar_a", cf_if_nested_scalar, lambda: (np.array([0.5, 0.8]), 1.5), (0, 1)),
    ("cf_if_nested_scalar_b", cf_if_nested_scalar, lambda: (np.array([0.5, 0.8]), 0.5), (0, 1)),
    ("cf_if_nested_scalar_c", cf_if_nested_scalar, lambda: (np.array([-0.5, -0.8]), 0.5), (0, 1)),
    ("cf_for_range", cf_for_range, lambda: (_u(103, 4),), 0),
    ("cf_for_rows", cf_for_rows, lambda: (_u(104, (3, 3)),), 0),
    ("cf_for_zip", cf_for_zip, lambda: (_u(105, 4), _u(106, 4)), (0, 1)),
    ("cf_for_enumerate", cf_for_enumerate, lambda: (_u(107, (2, 3)),), 0),
    ("cf_while", cf_while, lambda: (_u(108, 4),), 0),
    ("cf_while_data", cf_while_data, lambda: (np.array([0.5, -0.4, 0.9]),), 0),
    ("cf_break_continue", cf_break_continue, lambda: (np.array([0.8, -0.5, 0.9, 0.2, 1.1, 0.7]),), 0),
    ("cf_while_break", cf_while_break, lambda: (np.array([0.1, 0.4, 0.3, -0.2, 0.5]),), 0),
    ("cf_early_return_in_if_a", cf_early_return_in_if, lambda: (np.array([0.5, 0.3, -0.2]),), 0),
    ("cf_early_return_in_if_b", cf_early_return_in_if, lambda: (np.array([-3.0, -2.5, 0.2]),), 0),
    ("cf_early_return_in_if_c", cf_early_return_in_if, lambda: (np.array([-1.0, -0.5, 0.2]),), 0),
    ("cf_early_return_in_loop_a", cf_early_return_in_loop, lambda: (np.array([0.5, 1.7, 2.0, 0.1]),), 0),
    ("cf_early_return_in_loop_b", cf_early_return_in_loop, lambda: (np.array([0.5, 1.2, -0.4, 0.1]),), 0),
    ("cf_ternary_a", cf_ternary, lambda: (np.array([0.5, 0.3, 0.4]),), 0),
    ("cf_ternary_b", cf_ternary, lambda: (np.array([-0.5, 0.3, -0.4]),), 0),
    ("cf_nested_loops", cf_nested_loops, lambda: (_away(_u(109, (2, 3)), 0.1), _u(110, 3)), (0, 1)),
    # helpers / recursion / closures
    ("hl_softplus_sigmoid", hl_softplus_sigmoid, lambda: (_u(120, 4, -2.0, 2.0),), 0),
    ("hl_logsumexp", hl_logsumexp, lambda: (_u(121, 4), _u(122, 4)), (0, 1)),
    ("hl_helper_chain", hl_helper_chain, lambda: (_u(123, (3, 2)), _u(124, 2), _u(125, (4, 3))), (0, 1)),
    ("hl_tuple_return", hl_tuple_return, lambda: (_u(126, 5),), 0),
    ("hl_in_loop", hl_in_loop, lambda: (_u(127, (3, 3)), _u(128, 3), _u(129, 3)), (0, 1, 2)),
    ("rec_horner", rec_horner, lambda: (_u(130, 4), 4), 0),
    ("rec_power_sum", rec_power_sum, lambda: (_u(131, 4, 0.2, 1.2), 3), 0),
    ("closure_weighted_sq", closure_weighted_sq, lambda: (_u(132, 4),), 0),
    ("closure_affine_loss", closure_affine_loss, lambda: (_u(133, 3),), 0),
    # data structures
    ("ds_tuple_unpack", ds_tuple_unpack, lambda: (_u(140, 4),), 0),
    ("ds_literals", ds_literals, lambda: (_u(141, 3),), 0),
    ("ds_dict_params", ds_dict_params,
     lambda: ({"W": _u(142, (3, 2)), "b": _u(143, 2), "scale": 1.5}, _u(144, (4, 3))), 0),
    ("ds_nested_pytree", ds_nested_pytree,
     lambda: ({"layers": [{"w": _u(145, (2, 2)), "c": _u(146, 2)},
                          {"w": _u(147, (2, 2)), "c": _u(148, 2)}],
               "extra": (_u(149, 2), (0.7, _u(150, 3)))},
              _u(151, (3, 2))), 0),
    ("ds_list_append_stack", ds_list_append_stack, lambda: (_u(152, 3),), 0),
    ("ds_list_append_array", ds_list_append_array, lambda: (_u(153, 4),), 0),
    ("ds_list_append_sum", ds_list_append_sum, lambda: (_u(154, 4),), 0),
    ("ds_list_comprehension", ds_list_comprehension, lambda: (_u(155, 4), _u(156, (2, 3))), (0, 1)),
    ("ds_augmented_assign", ds_augmented_assign, lambda: (_u(157, 4), 0.8), (0, 1)),
    ("ds_augmented_scalar", ds_augmented_scalar, lambda: (_u(158, 4),), 0),
    # indexing reads
    ("ix_slices", ix_slices, lambda: (_u(160, 5),), 0),
    ("ix_negative_step", ix_negative_step, lambda: (_u(161, 5),), 0),
    ("ix_int_array", ix_int_array, lambda: (_u(162, 4),), 0),
    ("ix_bool_mask", ix_bool_mask, lambda: (_away(_u(163, 5), 0.1),), 0),
    ("ix_2d", ix_2d, lambda: (_u(164, (3, 3)),), 0),
    ("ix_2d_advanced", ix_2d_advanced, lambda: (_away(_u(165, (3, 3)), 0.1),), 0),
    # indexing writes
    ("wr_loop_setitem", wr_loop_setitem, lambda: (_u(170, 5),), 0),
    ("wr_slice_iadd", wr_slice_iadd, lambda: (_u(171, 4),), 0),
    ("wr_mask_zero", wr_mask_zero, lambda: (_away(_u(172, 5), 0.1),), 0),
    ("wr_copy_setitem", wr_copy_setitem, lambda: (_u(173, 4),), 0),
    ("wr_2d", wr_2d, lambda: (_u(174, 3),), 0),
    ("wr_overwrite", wr_overwrite, lambda: (_u(175, 4),), 0),
    # math module / aliases / from-imports
    ("mt_scalar", mt_scalar, lambda: (0.7, _u(180, 3)), (0, 1)),
    ("mt_scalar2", mt_scalar2, lambda: (1.3,), 0),
    ("mt_scalar_loop", mt_scalar_loop, lambda: (0.4, 4), 0),
    ("al_onp_basic", al_onp_basic, lambda: (_u(181, 4),), 0),
    ("al_onp_linalg", al_onp_linalg, lambda: (_u(182, (3, 3)), _u(183, 3)), (0, 1)),
    ("al_mixed_aliases", al_mixed_aliases, lambda: (_u(184, 4),), 0),
    ("fi_from_import", fi_from_import, lambda: (_u(185, 4),), 0),
    ("fi_from_import_scalar", fi_from_import_scalar, lambda: (_u(186, 4),), 0),
    # realistic ML
    ("ml_loss", ml_loss,
     lambda: ({"W": 0.5 * _rng(190).standard_normal((3, 2)), "b": 0.1 * _rng(191).standard_normal(2)},
              _u(192, (4, 3)), _u(193, (4, 2))), 0),
    ("ml_softmax_xent", ml_softmax_xent,
     lambda: (_u(194, (3, 4)), _u(195, (5, 3)), np.array([0, 3, 1, 2, 3])), (0, 1)),
    ("ml_rnn", ml_rnn,
     lambda: ({"Wx": 0.5 * _rng(196).standard_normal((2, 3)),
               "Wh": 0.4 * _rng(197).standard_normal((3, 3)),
               "b": 0.1 * _rng(198).standard_normal(3)},
              _u(199, (10, 2))), 0),
    ("ml_mlp", ml_mlp, lambda: (_mlp_params(200), _u(201, (5, 3)), _u(202, (5, 2))), 0),
    ("ml_logistic_regression", ml_logistic_regression,
     lambda: (_u(203, 3), _u(204, (6, 3)), np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])), 0),
    # edge cases
    ("eg_kwargs_defaults", eg_kwargs_defaults, lambda: (_u(210, 4),), 0),
    ("eg_top_level_default", eg_top_level_default, lambda: (_u(211, 4),), 0),
    ("eg_ellipsis_newaxis", eg_ellipsis_newaxis, lambda: (_u(212, (3, 2)), _u(213, 3)), (0, 1)),
    ("eg_negative_axis", eg_negative_axis, lambda: (_u(214, (2, 3)),), 0),
    ("eg_len_loop", eg_len_loop, lambda: (_u(216, 5),), 0),
    ("eg_array_from_scalars", eg_array_from_scalars, lambda: (_u(217, 3),), 0),
    ("eg_rebind_argument", eg_rebind_argument, lambda: (_u(218, 4),), 0),
    ("eg_python_builtins", eg_python_builtins, lambda: (np.array([0.6, -0.3, 0.9, -0.45]),), 0),
]


def ds_dict_items_loop(params):
    # for k, v in params.items(), and a comprehension over .values()
    total = 0.0
    for k, v in params.items():
        total = total + np.sum(np.tanh(v) ** 2)
    return total + sum(np.sum(v * 0.5) for v in params.values())


CORPUS.append(("ds_dict_items_loop", ds_dict_items_loop,
               lambda: ({"a": np.array([0.3, -0.7]), "b": np.array([[0.2, 0.9], [-0.4, 0.1]])},), 0))

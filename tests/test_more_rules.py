"""Derivatives and batching through more NumPy functions, end to end.

The records of runtime/primitives (linspace's bounds, cumprod, sort, diff,
take_along_axis, kron, cross, column_stack, dstack, rot90, append, ptp,
average, nan_to_num, copysign, angle, median, nansum, nanmean, and
numpy.linalg's eigh, svd, qr, pinv, lstsq, matrix_power, multi_dot) are each
checked on their own by tests/test_primitive_rules.py, test_jvp_rules.py and
test_vmap_rules.py. Here they are used in functions, through codax:

* grad against central differences of the function, and jvp against them;
* hessian (forward over reverse) and jacrev(grad) (reverse over reverse)
  against central differences of the gradient: the rules' own derivatives;
* vmap(grad(f)) against a loop of grad(f), vmap(f) against a loop of f;
* what NaNs, zeros, complex numbers and unsupported options do.
"""
import numpy as np
import pytest

import codax
from helpers import numeric_grad

RTOL, ATOL = 1e-6, 1e-8          # first derivatives against differences
RTOL2, ATOL2 = 1e-5, 1e-7        # second derivatives against differences of the first

_rng = np.random.default_rng(20250607)


def U(*shape):
    return _rng.uniform(-1.0, 1.0, size=shape)


# --------------------------------------------------------------------------
# Functions using each primitive (smooth where they are evaluated)
# --------------------------------------------------------------------------

def f_linspace(x):                       # x: (4,)
    return np.sum(np.linspace(x[0], x[1:3], 5, axis=1) ** 3) + np.sum(np.linspace(0.0, x[3], 4))


def f_linspace_step(x):                  # retstep: the step is differentiated too
    s, step = np.linspace(x[0], x[1:], 4, endpoint=False, retstep=True)
    return np.sum(s ** 2) + np.sum(step * x[1:]) + np.sum(s[0] * step)


def f_cumprod(x):                        # x: (2, 3)
    return np.sum(np.cumprod(x, axis=1) * np.arange(6.0).reshape(2, 3)) + np.sum(np.cumprod(x) ** 2)


def f_cumprod_zero(x):                   # a zero inside the product
    y = x * np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    return np.sum(np.sin(np.cumprod(y, axis=1))) + np.sum(np.cumprod(y).reshape(2, 3) * x)


def f_sort(x):                           # x: (3, 2)
    return np.sum(np.sort(x, axis=0) * np.arange(6.0).reshape(3, 2) ** 2) + \
        np.sum(np.sort(x ** 3, axis=None) * np.arange(6.0))


def f_take_along_axis(x):                # x: (3, 2)
    order = np.argsort(x, axis=1)
    return np.sum(np.take_along_axis(x, order, axis=1) ** 2 * np.arange(2.0)) + \
        np.sum(np.take_along_axis(x ** 3, np.array([[1], [0], [1]]), 1))


def f_diff(x):                           # x: (3, 2)
    return np.sum(np.diff(x, 2, axis=0, prepend=x[:1] * 2) ** 2) + \
        np.sum(np.diff(x ** 2, append=0.5) ** 3)


def f_kron(x):                           # x: (3, 2)
    return np.sum(np.kron(x, x[:, ::-1] ** 2)) + np.sum(np.kron(x[:, 0], x[:2]) ** 2)


def f_cross(x):                          # x: (3, 4)
    return np.sum(np.cross(x, x ** 2, axisa=0, axisb=0) ** 2) + \
        np.sum(np.cross(x.T, x[:, 0]) * x.T[:, ::-1])


def f_column_stack(x):                   # x: (2, 3)
    return np.sum(np.column_stack([x[:, 0], x * 2]) ** 3)


def f_dstack(x):                         # x: (2, 3)
    return np.sum(np.dstack([x, x ** 2]) ** 3) + np.sum(np.dstack([x[0], x[1] ** 2]) ** 2)


def f_rot90(x):                          # x: (3, 2)
    return np.sum(np.rot90(x, 3) * np.arange(6.0).reshape(2, 3) * x.T) + np.sum(np.rot90(x) ** 3)


def f_append(x):                         # x: (3, 2)
    return np.sum(np.append(x, x[0] ** 2) ** 3) + np.sum(np.append(x, x[:1], axis=0) ** 3)


def f_ptp(x):                            # x: (3, 2)
    return np.sum(np.ptp(x ** 3, axis=0) ** 2) + np.ptp(x) ** 2


def f_average(x):                        # x: (3, 2)
    return np.sum(np.average(x ** 2, axis=0, weights=np.exp(x[:, 0])) ** 2) + np.average(x) ** 2


def f_average_returned(x):               # x: (2, 3)
    avg, total = np.average(np.sin(x), axis=1, weights=np.exp(x), returned=True)
    return np.sum(avg * total)


def f_nan_to_num(x):                     # x: (3, 2); NaN and -inf made from its values
    y = np.where(x > 0.5, np.nan, np.where(x < -0.5, -np.inf, x))
    return np.sum(np.nan_to_num(y, nan=x[0, 0] ** 2, neginf=-2.0) ** 3 * x)


def f_copysign(x):                       # x: (3, 2)
    return np.sum(np.copysign(x ** 3, x[::-1]) * x)


def f_angle(x):                          # x: (3, 2), real: a constant angle
    return np.sum(np.angle(x) * x) + np.sum(np.angle(x, deg=True) * x ** 2)


def f_median(x):                         # x: (3, 2)
    return np.sum(np.median(x ** 3, axis=0) ** 2) + np.median(x) ** 2


def f_nansum(x):                         # x: (3, 2)
    y = np.where(x > 0.5, np.nan, x)
    return np.nansum(y ** 3) + np.sum(np.nanmean(y ** 2, axis=0) ** 2)


def f_eigh(x):                           # x: (4, 3); a symmetric matrix made from it
    w, v = np.linalg.eigh(x @ x.T + np.eye(4))
    return np.sum(w ** 2) + np.sum(v[:, 0] ** 3 * np.sign(v[0, 0]))


def f_svd(x):                            # x: (4, 3)
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    return np.sum(s ** 3) + np.sum((u * vh[:, :1].T) ** 2) + \
        np.sum(np.linalg.svd(x, compute_uv=False))


def f_qr(x):                             # x: (4, 3)
    q, r = np.linalg.qr(x)
    return np.sum(q ** 3) + np.sum(np.sin(r)) + np.sum(np.linalg.qr(x, 'r') ** 2)


def f_pinv(x):                           # x: (4, 3)
    return np.sum(np.linalg.pinv(x) ** 3)


def f_lstsq(x):                          # x: (4, 3)
    sol, res, rank, s = np.linalg.lstsq(x, np.cos(x[:, 0]), rcond=None)
    return np.sum(sol ** 3) + np.sum(res ** 2) + np.sum(s ** 3)


def f_matrix_power(x):                   # x: (4, 3)
    return np.sum(np.linalg.matrix_power(x[:3] + 2 * np.eye(3), -3) ** 2) + \
        np.sum(np.linalg.matrix_power(x[1:], 4))


def f_multi_dot(x):                      # x: (4, 3); first order only (as einsum)
    return np.sum(np.linalg.multi_dot([x, x.T, x]) ** 2) + \
        np.linalg.multi_dot([x[:, 0], x, x[0]]) ** 2


X23 = U(2, 3)
X32 = U(3, 2)
X43 = U(4, 3)
CASES = [
    (f_linspace, U(4)), (f_linspace_step, U(3)), (f_cumprod, X23), (f_cumprod_zero, U(2, 3)),
    (f_sort, X32), (f_take_along_axis, U(3, 2)), (f_diff, U(3, 2)), (f_kron, U(3, 2)),
    (f_cross, U(3, 4)), (f_column_stack, U(2, 3)), (f_dstack, U(2, 3)), (f_rot90, U(3, 2)),
    (f_append, U(3, 2)), (f_ptp, U(3, 2)), (f_average, U(3, 2)), (f_average_returned, U(2, 3)),
    (f_nan_to_num, np.array([[0.7, 0.2], [-0.8, 0.3], [0.1, -0.4]])), (f_copysign, U(3, 2)),
    (f_angle, U(3, 2)), (f_median, U(3, 2)),
    (f_nansum, np.array([[0.7, 0.2], [-0.8, 0.3], [0.1, 0.9]])),
    (f_eigh, X43), (f_svd, U(4, 3)), (f_qr, U(4, 3)), (f_pinv, U(4, 3)), (f_lstsq, U(4, 3)),
    (f_matrix_power, U(4, 3)), (f_multi_dot, U(4, 3)),
]
IDS = [f.__name__[2:] for f, _ in CASES]
# Rules through a first-order helper: second derivatives are a clear error.
FIRST_ORDER = {f_multi_dot: 'einsum_vjp'}


def close(got, want, what, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want),
                               rtol=rtol, atol=atol, err_msg=what)


def _gradient_differences(f, x):
    """d grad(f) / dx by central differences of codax.grad (which matches
    differences of f: test_grad_matches_differences)."""
    grad = codax.grad(f)
    return np.stack([numeric_grad(lambda y, k=k: float(grad(y).ravel()[k]), (x,))
                     for k in range(x.size)]).reshape(x.shape + x.shape)


# --------------------------------------------------------------------------
# First and second derivatives, and batching
# --------------------------------------------------------------------------

@pytest.mark.parametrize('f, x', CASES, ids=IDS)
def test_grad_matches_differences(f, x):
    close(codax.grad(f)(x), numeric_grad(f, (x,)), f'grad({f.__name__})')


@pytest.mark.parametrize('f, x', CASES, ids=IDS)
def test_jvp_matches_differences(f, x):
    v = U(*x.shape)
    value, tangent = codax.jvp(f, (x,), (v,))
    eps = 1e-6
    close(value, f(x), f'jvp({f.__name__}) value')
    close(tangent, (f(x + eps * v) - f(x - eps * v)) / (2 * eps), f'jvp({f.__name__})')


@pytest.mark.parametrize('f, x', CASES, ids=IDS)
def test_second_derivatives(f, x):
    if f in FIRST_ORDER:
        with pytest.raises(codax.SourceError, match=FIRST_ORDER[f]):
            codax.hessian(f)(x)
        return
    want = _gradient_differences(f, x)
    close(codax.hessian(f)(x), want, f'hessian({f.__name__})', RTOL2, ATOL2)
    close(codax.jacrev(codax.grad(f))(x), want, f'jacrev(grad({f.__name__}))', RTOL2, ATOL2)


@pytest.mark.parametrize('f, x', CASES, ids=IDS)
def test_vmap_of_grad_matches_loop(f, x):
    xs = np.stack([x, x * 0.97, x * 1.03])
    grad = codax.grad(f)
    close(codax.vmap(grad)(xs), np.stack([grad(v) for v in xs]), f'vmap(grad({f.__name__}))',
          1e-9, 1e-12)
    close(codax.vmap(f)(xs), np.array([f(v) for v in xs]), f'vmap({f.__name__})', 1e-9, 1e-12)


# --------------------------------------------------------------------------
# What each rule does where it matters
# --------------------------------------------------------------------------

def f_linspace_bounds(x):
    return np.sum(np.linspace(x[0], x[1], 5) ** 2)


def test_linspace_bounds_have_their_derivative():
    # sample i = x0 + (x1 - x0) i / 4: d/dx0 = sum 2 y_i (1 - i/4), d/dx1 = sum 2 y_i i/4
    x = np.array([0.5, 2.0])
    y, frac = np.linspace(0.5, 2.0, 5), np.arange(5) / 4
    close(codax.grad(f_linspace_bounds)(x), [np.sum(2 * y * (1 - frac)), np.sum(2 * y * frac)],
          'grad of linspace in its bounds')
    xs = np.stack([x, 2 * x])
    close(codax.vmap(codax.grad(f_linspace_bounds))(xs),
          np.stack([codax.grad(f_linspace_bounds)(v) for v in xs]), 'vmap(grad(linspace))')


def f_cumprod_zeros(x):
    return np.sum(np.cumprod(x) * np.array([1.0, -2.0, 0.5, 3.0]))


@pytest.mark.parametrize('x', [np.array([0.5, 0.0, 1.5, -0.7]), np.array([0.0, 2.0, 0.0, 1.2]),
                               np.array([0.3, -1.1, 0.8, 0.0])], ids=['one', 'two', 'last'])
def test_cumprod_at_zeros(x):
    # the product of the others, not 0/0; a polynomial: differences are exact enough.
    # Second derivatives hold but between two zeros of a slice (as for np.prod).
    close(codax.grad(f_cumprod_zeros)(x), numeric_grad(f_cumprod_zeros, (x,)),
          'grad of cumprod with zeros')
    if np.sum(x == 0) == 1:
        close(codax.hessian(f_cumprod_zeros)(x), _gradient_differences(f_cumprod_zeros, x),
              'hessian of cumprod with a zero', RTOL2, ATOL2)


def f_nan_reductions(x):
    return np.nansum(x * np.array([1.0, 2.0, 3.0, 4.0])) + np.nanmean(x) * 3.0


def test_nan_reductions_pass_nothing_to_nans():
    # (x ** 2 would pass 0 * 2 * nan = nan back: the chain rule, as in JAX)
    x = np.array([0.5, np.nan, -1.5, np.nan])
    want = np.array([1.0 + 1.5, 0.0, 3.0 + 1.5, 0.0])
    close(codax.grad(f_nan_reductions)(x), want, 'grad of nansum + nanmean')


def f_nan_to_num_values(x, v):
    return np.sum(np.nan_to_num(x, nan=v[0], posinf=v[1], neginf=v[2]) * np.arange(1.0, 7.0))


def test_nan_to_num_replacements_have_derivatives():
    x = np.array([0.5, np.nan, np.inf, -np.inf, np.nan, -0.25])
    v = np.array([0.1, 2.0, -3.0])
    gx, gv = codax.grad(f_nan_to_num_values, argnums=(0, 1))(x, v)
    close(gx, [1.0, 0.0, 0.0, 0.0, 0.0, 6.0], 'grad of nan_to_num in x')
    close(gv, [2.0 + 5.0, 3.0, 4.0], 'grad of nan_to_num in its replacement values')


def f_angle_weighted(z):
    return np.sum(np.angle(z) * np.array([0.5, -1.0, 2.0]))


def test_angle_of_complex_follows_jax_convention():
    # grad of a real f of z is df/dx - i df/dy (tests/test_complex.py)
    z = np.array([1.0 + 2.0j, -0.5 - 1.5j, -0.8 + 0.3j])
    eps, want = 1e-6, np.zeros(3, dtype=complex)
    for k in range(3):
        e = np.zeros(3)
        e[k] = eps
        dx = (f_angle_weighted(z + e) - f_angle_weighted(z - e)) / (2 * eps)
        dy = (f_angle_weighted(z + 1j * e) - f_angle_weighted(z - 1j * e)) / (2 * eps)
        want[k] = dx - 1j * dy
    got = codax.grad(f_angle_weighted)(z)
    assert np.iscomplexobj(got)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def f_median_even(x):
    return np.median(x) * 3.0


def test_median_of_an_even_count_splits_between_the_middle_two():
    x = np.array([0.3, -1.0, 2.0, 0.9])           # middle two: 0.3 and 0.9
    close(codax.grad(f_median_even)(x), [1.5, 0.0, 0.0, 1.5], 'grad of an even median')


def f_sort_weights(x):
    return np.sum(np.sort(x) * np.array([1.0, 10.0, 100.0]))


def test_sort_sends_each_cotangent_to_its_element():
    close(codax.grad(f_sort_weights)(np.array([0.2, -0.5, 0.9])), [10.0, 1.0, 100.0],
          'grad of sort')


def f_average_weights_only(w):
    return np.average(np.array([1.0, 2.0, 4.0]), weights=w)


def test_average_in_its_weights():
    w = np.array([1.0, 2.0, 1.0])
    a = np.array([1.0, 2.0, 4.0])
    close(codax.grad(f_average_weights_only)(w), (a - np.average(a, weights=w)) / w.sum(),
          'grad of average in its weights')


def f_eigh_upper(x):
    w, v = np.linalg.eigh(x, UPLO='U')
    return np.sum(w ** 3)


def test_eigh_reads_the_triangle_numpy_reads():
    # no derivative in the lower triangle for UPLO='U': NumPy does not read it
    x = U(3, 3) + 3 * np.eye(3)
    g = codax.grad(f_eigh_upper)(x)
    close(np.tril(g, -1), np.zeros((3, 3)), 'lower triangle')
    close(g, numeric_grad(f_eigh_upper, (x,)), 'grad of eigh, UPLO=U')


# --------------------------------------------------------------------------
# Clear errors where a rule does not apply
# --------------------------------------------------------------------------

def f_svd_full(x):
    return np.sum(np.linalg.svd(x)[0])


def f_qr_wide(x):
    return np.sum(np.linalg.qr(x)[1])


def f_cross_2d(x):
    return np.sum(np.cross(x, x[::-1]))


def f_eigh_complex(x):
    return np.sum(np.linalg.eigh(x * (1.0 + 1.0j))[0])


@pytest.mark.filterwarnings('ignore::DeprecationWarning')
@pytest.mark.parametrize('f, x, match', [
    (f_svd_full, U(4, 3), 'full_matrices=False'),
    (f_qr_wide, U(2, 3), 'more columns than rows'),
    (f_cross_2d, U(2), 'vectors of 3 elements'),
    (f_eigh_complex, U(3, 3), 'real matrices'),
], ids=['svd-full', 'qr-wide', 'cross-2d', 'eigh-complex'])
def test_unsupported_cases_say_so(f, x, match):
    with pytest.raises(ValueError, match=match):
        codax.grad(f)(x)


def f_svd_square(x):
    return np.sum(np.linalg.svd(x)[1] ** 2)


def test_svd_of_a_square_matrix_needs_no_option():
    x = U(3, 3)
    close(codax.grad(f_svd_square)(x), numeric_grad(f_svd_square, (x,)), 'grad of square svd')

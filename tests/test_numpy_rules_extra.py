"""np.pad's statistic modes in forward mode, hypot at the origin, fmax and
fmin with NaNs, and the where= / initial= keywords of the reductions, end to
end through codax.

References: central differences of the function (and of its gradient for
second derivatives), a loop for vmap, and hand-derived values of JAX's
conventions where the function has a kink (ties, NaNs, the origin).
"""
import numpy as np
import pytest

import codax
from helpers import numeric_grad

RTOL, ATOL = 1e-6, 1e-8

_rng = np.random.default_rng(20250811)
X34 = _rng.uniform(-1.0, 1.0, size=(3, 4))       # distinct values: no ties
W_PAD = _rng.uniform(-1.0, 1.0, size=(6, 7))     # X34 padded by ((1, 2), (2, 1))
KEEP4 = np.array([True, False, True, True])
KEEP34 = np.array([[True, False, True, True], [False, True, True, False],
                   [True, True, False, True]])


def _pad(mode):
    def f(x):
        return np.sum(np.pad(x, ((1, 2), (2, 1)), mode=mode) * W_PAD)
    return f


def pad_max_stat(x):
    return np.sum(np.pad(x, ((1, 2), (2, 1)), 'maximum', stat_length=((1, 2), (3, 1))) * W_PAD)


def pad_median_sin(x):
    return np.sum(np.sin(np.pad(x, 2, mode='median', stat_length=3)) ** 2)


def pad_minimum_squares(x):
    return np.sum(np.pad(x ** 2, ((2, 0), (1, 1)), mode='minimum'))


PAD_FUNCTIONS = [_pad(m) for m in ('maximum', 'minimum', 'median', 'mean', 'edge', 'reflect',
                                   'symmetric', 'wrap', 'constant')] + \
    [pad_max_stat, pad_median_sin, pad_minimum_squares]
PAD_IDS = ['maximum', 'minimum', 'median', 'mean', 'edge', 'reflect', 'symmetric', 'wrap',
           'constant', 'maximum_stat_length', 'median_sin', 'minimum_squares']


def sum_where_initial(x):
    return np.sum(np.sum(x, axis=1, initial=2.0, where=KEEP4) ** 2) + x.sum(where=KEEP34)


def mean_where(x):
    return np.sum(np.mean(x, axis=0, where=KEEP34) ** 3) + np.mean(x ** 2, where=KEEP4)


def prod_where_initial(x):
    return np.sum(np.prod(x, axis=1, initial=2.0, where=KEEP4) ** 2) + \
        np.prod(x[0] + 2.0, initial=-1.5)


def max_min_where_initial(x):
    return np.sum(np.max(x, axis=1, initial=-5.0, where=KEEP34) ** 2) + \
        np.min(x, initial=0.0, where=KEEP4) + np.sum(x.max(axis=0, initial=0.2))


REDUCTIONS = [sum_where_initial, mean_where, prod_where_initial, max_min_where_initial]
FUNCTIONS = PAD_FUNCTIONS + REDUCTIONS
IDS = PAD_IDS + [f.__name__ for f in REDUCTIONS]


@pytest.mark.parametrize('f', FUNCTIONS, ids=IDS)
def test_grad_and_jvp_match_differences(f):
    expected = numeric_grad(f, (X34,))
    np.testing.assert_allclose(codax.grad(f)(X34), expected, rtol=RTOL, atol=ATOL)
    v = _rng.uniform(-1.0, 1.0, size=X34.shape)
    _, tangent = codax.jvp(f, (X34,), (v,))
    np.testing.assert_allclose(tangent, np.sum(expected * v), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(codax.jacfwd(f)(X34), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('f', [pad_median_sin, pad_minimum_squares] + REDUCTIONS,
                         ids=['median_sin', 'minimum_squares'] + [f.__name__ for f in REDUCTIONS])
def test_hessian_matches_differences_of_the_gradient(f):
    grad = codax.grad(f)
    expected = np.stack([numeric_grad(lambda x, i=i: grad(x).ravel()[i], (X34,))
                         for i in range(X34.size)]).reshape(X34.shape * 2)
    np.testing.assert_allclose(codax.hessian(f)(X34), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('f', FUNCTIONS, ids=IDS)
def test_vmap_of_grad_matches_loop(f):
    xs = np.stack([X34, X34[::-1] * 1.5, -X34])
    expected = np.stack([codax.grad(f)(x) for x in xs])
    np.testing.assert_allclose(codax.vmap(codax.grad(f))(xs), expected, rtol=1e-12, atol=1e-12)


def pad_stat_values(x):
    return np.pad(x, ((1, 0), (0, 2)), 'maximum', stat_length=2)


def reductions_batched_mask(x, keep, start):
    return np.sum(x, axis=1, where=keep, initial=start) + np.max(x, axis=1, initial=start)


def test_vmap_values_match_loop():
    xs = np.stack([X34, -X34])
    np.testing.assert_array_equal(codax.vmap(pad_stat_values)(xs),
                                  np.stack([pad_stat_values(x) for x in xs]))
    keeps, starts = np.stack([KEEP34, ~KEEP34 | KEEP4]), np.array([0.3, -2.0])
    np.testing.assert_allclose(codax.vmap(reductions_batched_mask)(xs, keeps, starts),
                               np.stack([reductions_batched_mask(*a)
                                         for a in zip(xs, keeps, starts)]), rtol=1e-12)


def pad_max(x):
    return np.pad(x, 1, 'maximum')


def test_pad_maximum_tangent_follows_the_maximum():
    # the pads are x's maximum (x[1]): their tangent is the tangent at x[1]
    _, tangent = codax.jvp(pad_max, (np.array([1.0, 4.0, 2.0]),), (np.array([10.0, 20.0, 30.0]),))
    np.testing.assert_array_equal(tangent, [20.0, 10.0, 20.0, 30.0, 20.0])
    # a tie between maxima shares the tangent (JAX: the mean over the ties)
    _, tangent = codax.jvp(pad_max, (np.array([4.0, 1.0, 4.0]),), (np.array([10.0, 20.0, 30.0]),))
    np.testing.assert_array_equal(tangent, [20.0, 10.0, 20.0, 30.0, 20.0])


def hypot(a, b):
    return np.hypot(a, b)


def test_hypot_at_the_origin_follows_jax():
    # JAX's hypot is max(|a|, |b|) * sqrt(1 + (min / max)^2): at the origin
    # the max's tie gives each operand half of |x|'s slope 1 at 0
    assert codax.grad(hypot, (0, 1))(0.0, 0.0) == (0.5, 0.5)
    assert codax.jvp(hypot, (0.0, 0.0), (1.0, 2.0))[1] == 1.5
    assert codax.hessian(hypot)(0.0, 0.0) == 0.0
    ga, gb = codax.grad(lambda a, b: np.sum(np.hypot(a, b)), (0, 1))(np.array([0.0, 3.0]),
                                                                     np.array([0.0, -4.0]))
    np.testing.assert_array_equal(ga, [0.5, 0.6])
    np.testing.assert_array_equal(gb, [0.5, -0.8])
    a, b = 0.3, -1.1
    np.testing.assert_allclose(codax.grad(hypot, (0, 1))(a, b), numeric_grad(hypot, (a, b), (0, 1)))


def fmax(a, b):
    return np.fmax(a, b)


def fmin(a, b):
    return np.fmin(a, b)


def maximum(a, b):
    return np.maximum(a, b)


@pytest.mark.parametrize('f', [fmax, fmin])
def test_fmax_fmin_send_the_gradient_to_the_operand_they_pick(f):
    nan = np.nan
    # JAX: where(x1 > x2 (x1 < x2 for fmin) or x2 is NaN, x1, x2)
    assert codax.grad(f, (0, 1))(nan, 1.0) == (0.0, 1.0)
    assert codax.grad(f, (0, 1))(1.0, nan) == (1.0, 0.0)
    assert codax.grad(f, (0, 1))(nan, nan) == (1.0, 0.0)
    assert codax.grad(f, (0, 1))(1.0, 1.0) == (0.0, 1.0)
    assert codax.jvp(f, (nan, 2.0), (1.0, 10.0)) == (2.0, 10.0)
    a, b = np.array([0.3, -0.2, nan]), np.array([nan, 0.5, -0.7])
    ga, gb = codax.grad(lambda a, b: np.sum(f(a, b) ** 2), (0, 1))(a, b)
    picked = f(a, b)
    first = np.array([True, f is fmin, False])
    np.testing.assert_array_equal(ga, np.where(first, 2 * picked, 0.0))
    np.testing.assert_array_equal(gb, np.where(first, 0.0, 2 * picked))


def test_maximum_keeps_its_tie_convention():
    assert codax.grad(maximum, (0, 1))(1.0, 1.0) == (0.5, 0.5)
    assert codax.grad(maximum, (0, 1))(2.0, 1.0) == (1.0, 0.0)


def max_initial_tie(x):
    return np.max(x, initial=3.0)


def test_max_tied_with_initial_takes_half():
    # JAX: max(reduce_max(x), initial), whose tie splits the cotangent
    x = np.array([1.0, 3.0, 2.0, 3.0])
    np.testing.assert_array_equal(codax.grad(max_initial_tie)(x), [0.0, 0.25, 0.0, 0.25])
    np.testing.assert_array_equal(codax.grad(max_initial_tie)(x - 1.0), np.zeros(4))


# ---- x.mT and np.select ----
M234 = _rng.uniform(-1.0, 1.0, size=(2, 3, 4))
R243 = np.arange(24.0).reshape(2, 4, 3)


def matrix_transpose_use(x):
    return np.sum(np.sin(x.mT) * R243) + np.sum((x.mT @ x) ** 2)


def select_use(x):
    y = np.select([x > 0.5, x < -0.5], [x ** 2, np.sin(x)], default=x[0] * 3.0)
    return np.sum(y * np.arange(x.size).reshape(x.shape)) + np.sum(np.select([x > 0], [x], 0.5) ** 3)


@pytest.mark.parametrize('f, x', [(matrix_transpose_use, M234), (select_use, X34)],
                         ids=['mT', 'select'])
def test_mT_and_select_derivatives(f, x):
    expected = numeric_grad(f, (x,))
    np.testing.assert_allclose(codax.grad(f)(x), expected, rtol=RTOL, atol=ATOL)
    v = _rng.uniform(-1.0, 1.0, size=x.shape)
    np.testing.assert_allclose(codax.jvp(f, (x,), (v,))[1], np.sum(expected * v), rtol=RTOL,
                               atol=ATOL)
    grad = codax.grad(f)
    hess = np.stack([numeric_grad(lambda z, i=i: grad(z).ravel()[i], (x,)).ravel()
                     for i in range(x.size)])
    np.testing.assert_allclose(codax.hessian(f)(x).reshape(hess.shape), hess, rtol=1e-5,
                               atol=1e-7)
    xs = np.stack([x, -0.7 * x])
    np.testing.assert_allclose(codax.vmap(grad)(xs), np.stack([grad(a) for a in xs]), rtol=1e-12)
    np.testing.assert_allclose(codax.vmap(f)(xs), [f(a) for a in xs], rtol=1e-12)


def matrix_transpose_of_vector(x):
    return np.sum(x.mT)


def test_mT_of_a_vector_is_refused_as_numpy_refuses_it():
    with pytest.raises(ValueError, match='at least 2'):
        codax.grad(matrix_transpose_of_vector)(np.ones(3))

"""More NumPy code of scientists (session 11, helper-67): np.polyval with a
constant x under vmap(hessian), np.ldexp of
an exponent from a tuple output under hessian, second derivatives through
tuple()/list() (np.gradient of 2-D arrays, np.meshgrid), the running
extrema and log-sum-exp of np.maximum/minimum/logaddexp.accumulate, and
clear refusals of batched slice bounds. Derivatives are checked against
central differences (of the function, or of codax.grad for second
derivatives), the tie convention against a Python loop of np.maximum's own
rule, vmap against a Python loop, jit against NumPy."""
import re

import numpy as np
import pytest

import codax
from helpers import numeric_jacobian
from transformer.errors import SourceError


_fd = numeric_jacobian


def _check_all_orders(f, x):
    """grad against differences of f; hessian (forward over reverse) against
    differences of grad (reverse over reverse: the second-order suites);
    vmap(grad) and vmap(hessian) against a loop; jit against f."""
    np.testing.assert_allclose(codax.grad(f)(x), _fd(f, x), rtol=1e-5, atol=1e-6)
    h = _fd(codax.grad(f), x, 1e-5)
    np.testing.assert_allclose(codax.hessian(f)(x), h, rtol=1e-4, atol=1e-5)
    xs = np.stack([x, 1.1 * x, x + 0.05])
    for derivative in (codax.grad(f), codax.hessian(f)):
        np.testing.assert_allclose(codax.vmap(derivative)(xs),
                                   np.stack([derivative(v) for v in xs]), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(codax.jit(f)(x), f(x), rtol=1e-12)


_X = np.array([0.31, -0.82, 1.13, 0.54, -0.47, 0.92, -1.35, 0.26, 0.71, -0.18, 1.42, -0.63])


# ---- a loop-carried zero tangent under vmap: polyval at constant points ----

_POINTS = np.linspace(-1, 1, 5)


def polyval_at_points(x):
    return np.sum(np.polyval(x[:4], _POINTS) ** 2 * np.polyval(x[4:7], x[7]))


def test_polyval_at_constant_points_under_vmap():
    _check_all_orders(polyval_at_points, _X)
    np.testing.assert_allclose(codax.jit(lambda p: np.polyval(p, _POINTS))(_X[:4]),
                               np.polyval(_X[:4], _POINTS), rtol=1e-12)


# ---- an integer output's tangent (np.frexp's exponent) under hessian ----

def ldexp_of_exponent(x):
    m, e = np.frexp(x)
    return np.sum(m ** 2 * np.ldexp(1, -e) * x ** 2)


def ldexp_of_quotient(x):
    q, r = np.divmod(x, 0.7)
    return np.sum(r ** 3 * np.ldexp(x, q.astype(int)))


@pytest.mark.parametrize('f', [ldexp_of_exponent, ldexp_of_quotient])
def test_ldexp_of_an_integer_from_a_tuple_output(f):
    x = np.array([0.3, -1.7, 2.2, 5.1, 0.9])
    _check_all_orders(f, x)


# ---- tuple() and list(): every order ----

def gradient_2d(x):
    gy, gx = np.gradient(x.reshape(3, 4))
    return np.sum(gy ** 2 + gx * gy)


def meshgrid_product(x):
    X, Y = np.meshgrid(x[:3], x[3:5])
    return np.sum(X * Y ** 2)


def tuple_of_rows(x):
    t = tuple(x[:3] ** 2)
    return t[0] * t[1] + t[2] ** 3


def list_of_values(x):
    t = list((x[0] ** 2, x[1], x[2] * x[0]))
    return t[0] * t[1] + t[2] ** 3


@pytest.mark.parametrize('f', [gradient_2d, meshgrid_product, tuple_of_rows, list_of_values])
def test_sequences_to_every_order(f):
    _check_all_orders(f, _X)


# ---- np.maximum/minimum/logaddexp.accumulate ----

_W = np.arange(1.0, 13.0)


def running_max(x):
    return np.sum(np.maximum.accumulate(x) ** 2 * _W)


def running_min_reversed(x):
    return np.sum(np.minimum.accumulate(x[::-1]) * np.arange(12.0))


def running_max_rows(x):
    return np.sum(np.maximum.accumulate(x.reshape(3, 4), axis=1) ** 3)


def log_cumsum_exp(x):
    return np.sum(np.logaddexp.accumulate(x) ** 2 * _W)


def log_cumsum_exp_columns(x):
    return np.sum(np.sin(np.logaddexp.accumulate(x.reshape(3, 4), axis=0)))


@pytest.mark.parametrize('f', [running_max, running_min_reversed, running_max_rows,
                               log_cumsum_exp, log_cumsum_exp_columns])
def test_accumulate_to_every_order(f):
    _check_all_orders(f, _X)


def _running_extremum_jacobian(x, better):
    """d y / d x of y_i = extremum(y_(i-1), x_i) by np.maximum's own rule
    (ties half and half), written out one step at a time."""
    n = len(x)
    jac = np.zeros((n, n))
    jac[0, 0] = 1.0
    y = x[0]
    for i in range(1, n):
        if x[i] == y:
            jac[i] = 0.5 * jac[i - 1]
            jac[i, i] = 0.5
        elif better(x[i], y):
            jac[i, i] = 1.0
            y = x[i]
        else:
            jac[i] = jac[i - 1]
    return jac


@pytest.mark.parametrize('ufunc, better', [(np.maximum, np.greater), (np.minimum, np.less)])
def test_running_extremum_ties_split_as_maximum_does(ufunc, better):
    x = np.array([1.0, 3.0, 3.0, 2.0, 3.0, 5.0, 5.0, 5.0, 0.0]) * (1 if ufunc is np.maximum else -1)

    def f(v):
        return ufunc.accumulate(v)
    want = _running_extremum_jacobian(x, better)
    np.testing.assert_allclose(codax.jacfwd(f)(x), want)
    np.testing.assert_allclose(codax.jacrev(f)(x), want)
    w = np.arange(1.0, 10.0)
    np.testing.assert_allclose(codax.grad(lambda v: np.sum(ufunc.accumulate(v) * w))(x), w @ want)


def test_log_cumsum_exp_of_far_apart_values():
    # weights exp(x_j - y_i) are read in the log domain: no overflow, and -inf
    # (a zero probability) takes no weight
    x = np.array([-1000.0, 0.0, -np.inf, 3.0])
    w = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.logaddexp.accumulate(x)
    want = np.array([w[i:] @ np.exp(x[i] - y[i:]) for i in range(4)])
    got = codax.grad(lambda v: np.sum(np.logaddexp.accumulate(v) * w))(x)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_accumulate_under_vmap_matches_numpy():
    xs = np.random.default_rng(3).normal(size=(4, 3, 5))
    for ufunc in (np.maximum, np.minimum, np.logaddexp):
        got = codax.vmap(lambda v: ufunc.accumulate(v, axis=1))(xs)
        np.testing.assert_allclose(got, ufunc.accumulate(xs, axis=2), rtol=1e-12)


# ---- batched slice bounds: refused naming the user's line ----

def slice_to_searchsorted(x):
    s = np.sort(x)
    i = np.searchsorted(s, 0.0)
    return np.sum(s[:i] ** 2)


def slice_call_to_argmax(x):
    i = np.argmax(x)
    return np.sum(x[slice(0, i)])


def range_of_batched(x):
    n = (x[0] > 0) * 2 + 1
    return np.sum(np.array(list(range(n))) * x[1])


def min_scalar_type_of_batched(x):
    return np.sum(x.astype(np.min_scalar_type(x[0])))


@pytest.mark.parametrize('f, words', [
    (slice_to_searchsorted, 'a slice bound that is batched'),
    (slice_call_to_argmax, 'slice() of a value that is batched'),
    (range_of_batched, 'range() of a value that is batched'),
    (min_scalar_type_of_batched, 'np.min_scalar_type() of a value that is batched')])
def test_batched_bounds_are_refused_clearly(f, words):
    xs = np.random.default_rng(4).normal(size=(3, 6))
    with pytest.raises(SourceError, match=re.escape(words)) as info:
        codax.vmap(f)(xs)
    assert 'test_numpy_more_s11.py' in str(info.value)
    assert 'index with a batched array' not in str(info.value)
    if f is slice_to_searchsorted:
        with pytest.raises(SourceError, match=re.escape(words)):
            codax.vmap(codax.grad(f))(xs)

"""Higher-order derivatives that used to crash: hessians (jacfwd of jacrev)
through size-1 axes, indexing by np.nonzero, lambdas and joins; grad^3
through codax.lax.fori_loop; third-order mixes of jacfwd and jacrev.

Every value is checked against central finite differences of a lower-order
codax derivative (itself checked elsewhere against NumPy) or a gradient
written by hand. Shapes are tiny: third derivatives compile a lot of code.
"""

import numpy as np
import pytest

import codax
from codax import lax

EPS = 1e-5


def _fd(f, x):
    """Central differences of f (array valued) along every entry of x:
    shape f(x).shape + x.shape."""
    x = np.asarray(x, dtype=float)
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = EPS
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * EPS))
    out = np.stack(cols, axis=-1)
    return out.reshape(np.shape(f(x)) + x.shape)


def _close(got, want, tol=1e-6):
    assert np.shape(got) == np.shape(want), (np.shape(got), np.shape(want))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# ---- hessians -----------------------------------------------------------

_A14 = np.array([[1.0, 2.0, -1.0, 0.5]])
_X14 = np.array([[0.3, -0.7, 1.2, 0.5]])


def sum_rows_times_x(x):
    return np.sum(np.sum(x, 0) * x)


def shifted_square_row(x):
    return np.sum((_A14 + x) * x)


def shifted_square_vector(x):
    return np.sum((_A14[0] + x) * x)


@pytest.mark.parametrize('f', [sum_rows_times_x, shifted_square_row, shifted_square_vector])
def test_hessian_through_axes_of_length_one(f):
    _close(codax.hessian(f)(_X14), _fd(codax.grad(f), _X14))


def where_positive(x):
    return np.sum(x[np.where(x > 0)] ** 2)


def masked_positive(x):
    return np.sum(x[x > 0] ** 2)


def nonzero_entries(x):
    return np.sum(x[np.nonzero(x)] ** 2)


def flat_nonzero_cubed(x):
    return np.sum(x[np.flatnonzero(x > 0)] ** 3)


_X4 = np.array([0.3, -0.7, 1.2, 0.5])


@pytest.mark.parametrize('f, second', [
    (where_positive, lambda x: np.diag(np.where(x > 0, 2.0, 0.0))),
    (masked_positive, lambda x: np.diag(np.where(x > 0, 2.0, 0.0))),
    (nonzero_entries, lambda x: np.diag(np.where(x != 0, 2.0, 0.0))),
    (flat_nonzero_cubed, lambda x: np.diag(np.where(x > 0, 6.0 * x, 0.0)))])
def test_hessian_of_indexing_by_indices_where_a_condition_holds(f, second):
    x = np.array([0.3, -0.7, 0.0, 1.2])
    _close(codax.hessian(f)(x), second(x))
    _close(codax.jacrev(codax.jacrev(f))(x), second(x))


def test_vmap_of_nonzero_and_of_where_with_one_argument():
    xs = np.array([[1.0, -2.0, 3.0], [-1.0, 2.0, 3.0]])
    for fn in (np.nonzero, np.where):
        got = codax.vmap(lambda v: fn(v > 0))(xs)
        _close(got[0], np.stack([np.nonzero(v > 0)[0] for v in xs]))
    _close(codax.vmap(lambda v: np.sum(v[np.where(v > 0)] ** 2))(xs),
           [np.sum(v[v > 0] ** 2) for v in xs])
    with pytest.raises(ValueError, match='different shapes'):
        codax.vmap(lambda v: np.nonzero(v > 0))(np.array([[1.0, -2.0], [1.0, 2.0]]))


def lambda_applied_twice(x):
    fn = lambda y: np.sin(y) * x    # noqa: E731 (a lambda capturing x, as users write)
    return np.sum(fn(fn(x)))


def test_hessian_of_a_lambda_capturing_x_applied_twice():
    _close(codax.hessian(lambda_applied_twice)(_X4), _fd(codax.grad(lambda_applied_twice), _X4))


def stacked(x):
    return np.stack([x, x ** 2])


def joined(x):
    return np.concatenate([np.sin(x), x ** 2])


def split_product(x):
    a, b = np.split(x, 2)
    return a * b ** 2


def unstacked(x):
    a, b = np.stack([x, x ** 2])
    return a * np.sin(b)


@pytest.mark.parametrize('f', [stacked, joined, split_product, unstacked])
def test_joins_and_splits_under_two_jacobians(f):
    want = _fd(codax.jacrev(f), _X4)
    _close(codax.jacrev(codax.jacrev(f))(_X4), want)
    _close(codax.jacfwd(codax.jacrev(f))(_X4), want)


# ---- third order --------------------------------------------------------

def looped(x):
    return lax.fori_loop(0, 3, lambda i, c: c * x + np.sin(c), x)


def test_grad_of_grad_of_grad_through_fori_loop():
    x = 0.7
    want = (codax.grad(codax.grad(looped))(x + EPS)
            - codax.grad(codax.grad(looped))(x - EPS)) / (2 * EPS)
    _close(codax.grad(codax.grad(codax.grad(looped)))(x), want)


def sine_times(v):
    return np.sin(v) * v


def with_helper(x):
    s = x
    s = s + sine_times(x)
    return np.sum(s)


def _third(order, f):
    for mode in reversed(order):
        f = (codax.jacfwd if mode == 'f' else codax.jacrev)(f)
    return f


# (every order of three Jacobians: tests/test_second_order.py)
@pytest.mark.parametrize('order', ['ffr', 'rrr'])
def test_third_order_mixes_through_a_helper(order):
    # ffr: forward mode over a call to rt.finalize, whose default argument
    # the call leaves out; rrr: a vmapped pullback given the zero cotangent
    x = np.array([0.4])
    _close(_third(order, with_helper)(x), _fd(codax.hessian(with_helper), x))

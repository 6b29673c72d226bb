"""Regressions found in session 11, each against an independent reference."""
import numpy as np
import pytest

import codax
from helpers import numeric_grad


def _log_abs_det(x):
    a = x[:4].reshape(2, 2) + 3 * np.eye(2)
    return np.linalg.slogdet(a)[1]


def test_per_example_gradient_of_a_number_picked_from_a_tuple_result():
    # grad seeds 1.0 (shared) onto slogdet's per-example log|det|: materialized
    # to the batch's shape, not left a float that the rule then indexes
    xs = np.random.RandomState(0).randn(3, 6)
    want = [numeric_grad(_log_abs_det, (x,)) for x in xs]
    np.testing.assert_allclose(codax.vmap(codax.grad(_log_abs_det))(xs), want,
                               rtol=1e-6, atol=1e-8)


def _enumerate_of_zip(a):
    v = np.array([1., 2., 3.]) * a
    w = [a, a ** 2, 3.0]
    s = 0.
    for i, (p, q) in enumerate(zip(v, w)):
        s = s + i * p * q
    return s


def _zip_of_enumerate(a):
    v = np.array([1., 2., 3.]) * a
    s = 0.
    for (i, p), q in zip(enumerate(v, 1), [a, a, 2.0]):
        s = s + i * p * q
    return s


def _zip_as_tuples(a):
    v = np.array([1., 2., 3.]) * a
    s = 0.
    for pair in zip(v, v[::-1]):
        s = s + pair[0] * pair[1]
    return s


@pytest.mark.parametrize('fn', [_enumerate_of_zip, _zip_of_enumerate, _zip_as_tuples],
                         ids=lambda f: f.__name__)
def test_loops_over_nested_enumerate_and_zip(fn):
    for a in (0.7, -1.3):
        np.testing.assert_allclose(codax.grad(fn)(a), numeric_grad(fn, (a,)), rtol=1e-6)
        np.testing.assert_allclose(codax.hessian(fn)(a),
                                   numeric_grad(lambda t: codax.grad(fn)(t), (a,)), rtol=1e-5)
    xs = np.array([0.7, -1.3, 0.2])
    np.testing.assert_allclose(codax.vmap(codax.grad(fn))(xs),
                               [numeric_grad(fn, (a,)) for a in xs], rtol=1e-6)


def _closure_over_a_batched_value(x):
    c = x[0]

    def g(y):
        return c * y ** 2
    return np.sum(g(x))


def test_vmap_of_vmap_through_a_closure_capturing_a_batched_value():
    # the inner vmap calls the closure's lifted function with its captured
    # values, so the outer vmap meets a plain function
    xss = np.random.RandomState(2).randn(2, 3, 4)
    want = [[_closure_over_a_batched_value(x) for x in row] for row in xss]
    np.testing.assert_allclose(codax.vmap(codax.vmap(_closure_over_a_batched_value))(xss),
                               want, rtol=1e-12)
    grads = codax.vmap(codax.vmap(codax.grad(_closure_over_a_batched_value)))(xss)
    np.testing.assert_allclose(grads, [[numeric_grad(_closure_over_a_batched_value, (x,))
                                        for x in row] for row in xss], rtol=1e-6)


def _upper_triangle_sum(x):
    a = x[:4].reshape(2, 2)
    return np.sum(a[np.triu_indices(2)] ** 3)


def _moved_axis_slice(x):
    return np.sum(np.moveaxis(x.reshape(1, 2, 3), 0, -1)[..., 0] ** 3)


def _sum_where_positive(x):
    return np.sum(x ** 3, where=x > 0)


def _quantile(x):
    return np.quantile(x ** 3, 0.75)


def _through_float32(x):
    return np.sum(x.astype(np.float32).astype(np.float64) ** 3)


def _hessian_by_differences(fn, x):
    return np.stack([numeric_grad(lambda v: codax.grad(fn)(v)[i], (x,))
                     for i in range(x.size)])


@pytest.mark.parametrize('fn', [_upper_triangle_sum, _moved_axis_slice, _sum_where_positive,
                                _quantile], ids=lambda f: f.__name__)
def test_vmap_of_hessian_of_indexing_and_reductions(fn):
    # the Hessian's own vmap batched again: a shared cotangent lifted to a
    # rank seen only at run time, and `where is True` of a batched mask
    xs = np.random.RandomState(4).randn(2, 6) + 0.3
    want = [_hessian_by_differences(fn, x) for x in xs]
    np.testing.assert_allclose(codax.vmap(codax.hessian(fn))(xs), want, rtol=1e-5, atol=1e-6)


def test_jacrev_of_jacfwd_through_a_cast_to_a_dtype_class():
    # np.float32 passed as a value: a class, whose `ndim` is no rank
    x = np.random.RandomState(5).randn(6)
    np.testing.assert_allclose(codax.jacrev(codax.jacfwd(_through_float32))(x),
                               np.diag(6 * x.astype(np.float32).astype(np.float64)),
                               rtol=1e-6)


def _float_squared(a):
    return float(a) ** 2 * a


def test_third_forward_derivative_through_float():
    # float(a) is a record with defaults (astype(x, dtype, copy)); forward over
    # forward calls its tangent function with them. f = a^3: f''' = 6
    assert codax.jacfwd(codax.jacfwd(codax.jacfwd(_float_squared)))(0.7) == pytest.approx(6.0)
    assert codax.jacfwd(codax.jacfwd(_float_squared))(0.7) == pytest.approx(6 * 0.7)


def _branches_of_different_lengths(x):
    y = x
    if x[0] > 0:
        y = np.sin(y)
        y = y * x
    else:
        y = np.cos(y)
    return np.sum(y)


def test_vmap_of_grad_through_branches_that_save_different_numbers_of_values():
    # the tape grows by two values on one side and one on the other: refused
    # when batching grad's code, so vmap(grad) takes the gradient of the sum
    xs = np.random.RandomState(0).randn(4, 3) * 0.5
    xs[:, 0] = [0.4, -0.3, 0.2, -0.6]
    want = [numeric_grad(_branches_of_different_lengths, (x,)) for x in xs]
    np.testing.assert_allclose(codax.vmap(codax.grad(_branches_of_different_lengths))(xs),
                               want, rtol=1e-6, atol=1e-8)

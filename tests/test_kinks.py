"""Derivatives where a function has a kink take JAX's values.

|x| has slope 1 at 0 (JAX's subgradient), and clip(a, lo, hi), which is
minimum(maximum(a, lo), hi), shares a tie half and half as maximum and minimum
do. The expected values are written out by hand from those definitions.
"""

import numpy as np
import pytest

import codax


def l1(x):
    return np.sum(np.abs(x))


def clipped(x):
    return np.sum(np.clip(x, 0.0, 1.0))


def relu_via_maximum(x):
    return np.sum(np.maximum(x, 0.0))


X_ABS = np.array([0.0, -0.0, -1.5, 2.0])
X_CLIP = np.array([0.0, 0.5, 1.0, 2.0, -1.0])
ABS_SLOPE = np.array([1.0, 1.0, -1.0, 1.0])
CLIP_SLOPE = np.array([0.5, 1.0, 0.5, 0.0, 0.0])


@pytest.mark.parametrize('transform', [lambda f: f, codax.jit])
def test_abs_has_slope_one_at_zero(transform):
    np.testing.assert_array_equal(transform(codax.grad(l1))(X_ABS), ABS_SLOPE)
    _, tangent = codax.jvp(lambda x: np.abs(x), (X_ABS,), (np.ones(4),))
    np.testing.assert_array_equal(tangent, ABS_SLOPE)


def test_abs_of_a_python_float_and_float32():
    assert codax.grad(lambda x: abs(x))(0.0) == 1.0
    g = codax.grad(l1)(X_ABS.astype(np.float32))
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, ABS_SLOPE)


@pytest.mark.parametrize('transform', [lambda f: f, codax.jit])
def test_clip_shares_a_tie_with_its_bound(transform):
    np.testing.assert_array_equal(transform(codax.grad(clipped))(X_CLIP), CLIP_SLOPE)
    _, tangent = codax.jvp(lambda x: np.clip(x, 0.0, 1.0), (X_CLIP,), (np.ones(5),))
    np.testing.assert_array_equal(tangent, CLIP_SLOPE)


def test_clip_agrees_with_its_definition_by_maximum_and_minimum():
    def by_definition(x):
        return np.sum(np.minimum(np.maximum(x, 0.0), 1.0))
    np.testing.assert_array_equal(codax.grad(clipped)(X_CLIP), codax.grad(by_definition)(X_CLIP))


def test_clip_bounds_get_the_other_half():
    a = np.array([0.0, 0.5, 1.0, 2.0, -1.0])
    lo, hi = np.zeros(5), np.ones(5)
    g_lo, g_hi = codax.grad(lambda lo, hi: np.sum(np.clip(a, lo, hi)), argnums=(0, 1))(lo, hi)
    np.testing.assert_array_equal(g_lo, [0.5, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(g_hi, [0.0, 0.0, 0.5, 1.0, 0.0])
    # a == lo == hi: a quarter through a, as maximum's half then minimum's half
    g = codax.grad(lambda x: np.sum(np.clip(x, 1.0, 1.0)))(np.array([1.0]))
    np.testing.assert_array_equal(g, [0.25])


def test_kinks_under_vmap_and_second_order():
    batch = np.stack([X_CLIP, X_CLIP[::-1]])
    np.testing.assert_array_equal(codax.vmap(codax.grad(clipped))(batch),
                                  np.stack([CLIP_SLOPE, CLIP_SLOPE[::-1]]))
    np.testing.assert_array_equal(codax.vmap(codax.grad(l1))(np.stack([X_ABS, -X_ABS])),
                                  np.stack([ABS_SLOPE, [1.0, 1.0, 1.0, -1.0]]))
    np.testing.assert_array_equal(codax.hessian(l1)(X_ABS), np.zeros((4, 4)))
    np.testing.assert_array_equal(codax.hessian(clipped)(X_CLIP), np.zeros((5, 5)))
    np.testing.assert_array_equal(codax.grad(relu_via_maximum)(np.array([0.0, 1.0, -1.0])),
                                  [0.5, 1.0, 0.0])


# ---- casts to integers: piecewise constant, so no derivative (JAX's float0) ----

def with_integer_casts(x):
    return np.sum(x.astype(int) * x + np.asarray(3 * x, dtype=np.int32) * x ** 2
                  + np.array(x > 0, dtype=np.float64) * x + x.astype(bool) * x)


X_CAST = np.array([1.5, 2.7, -0.4, 0.2])


def test_integer_casts_pass_no_derivative():
    x = X_CAST
    want = x.astype(int) + 2 * x * (3 * x).astype(np.int32) + (x > 0) + (x != 0)
    np.testing.assert_allclose(codax.grad(with_integer_casts)(x), want, rtol=1e-12)
    _, tangent = codax.jvp(with_integer_casts, (x,), (np.ones(4),))
    np.testing.assert_allclose(tangent, np.sum(want), rtol=1e-12)
    np.testing.assert_allclose(codax.vmap(codax.grad(with_integer_casts))(np.stack([x, -x])),
                               np.stack([want, codax.grad(with_integer_casts)(-x)]), rtol=1e-12)
    np.testing.assert_allclose(codax.hessian(with_integer_casts)(x),
                               np.diag(2 * (3 * x).astype(np.int32)), atol=1e-12)


def test_a_cast_back_to_float_after_an_integer_cast_is_constant():
    g = codax.grad(lambda x: np.sum(x.astype(np.int32).astype(np.float64)) + np.int64(x[0]))(X_CAST)
    np.testing.assert_array_equal(g, np.zeros(4))


# ---- products with a zero factor: the derivative is the others' product ----

def test_prod_with_a_zero_factor():
    x = np.array([0.3, 0.0, 2.0])
    np.testing.assert_allclose(codax.grad(np.prod)(x), [0.0, 0.6, 0.0], atol=1e-15)
    _, tangent = codax.jvp(np.prod, (x,), (np.array([1.0, 2.0, 3.0]),))
    np.testing.assert_allclose(tangent, 1.2)
    a, b, c = x                         # the Hessian of a*b*c: the third factor off the diagonal
    np.testing.assert_allclose(codax.hessian(np.prod)(x),
                               [[0, c, b], [c, 0, a], [b, a, 0]], atol=1e-15)
    rows = np.array([[0.0, 1.5, -0.7], [0.0, 0.0, 2.0], [0.6, -1.2, 1.1]])
    want = np.array([[1.5 * -0.7, 0, 0], [0, 0, 0], [-1.2 * 1.1, 0.6 * 1.1, 0.6 * -1.2]])
    np.testing.assert_allclose(codax.grad(lambda r: np.sum(np.prod(r, axis=1)))(rows), want)


def test_max_whose_initial_wins_a_column_passes_nothing_there():
    x = np.array([[0.1, 2.0], [0.2, -1.0]])
    f = lambda x: np.sum(np.max(x, axis=0, initial=0.5))      # noqa: E731
    np.testing.assert_array_equal(codax.grad(f)(x), [[0.0, 1.0], [0.0, 0.0]])
    _, tangent = codax.jvp(f, (x,), (np.ones((2, 2)),))
    assert tangent == 1.0

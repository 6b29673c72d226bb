"""codax.lax: structured control flow against plain Python, and codax's
derivatives through it against central differences."""
import numpy as np
import pytest

import codax
from codax import lax


def numeric_grad(f, x, eps=1e-6):
    out = np.zeros_like(x)
    for i in range(x.size):
        d = np.zeros_like(x)
        d.flat[i] = eps
        out.flat[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return out


X = np.array([0.3, -0.7, 1.1])


# ---- module-level bodies and user functions (codax reads their source)

def body_fori(i, v):
    return v * np.cos(v) + 0.1 * i


def use_fori(x):
    return np.sum(lax.fori_loop(0, 4, body_fori, x))


def fori_reference(x):
    v = x
    for i in range(4):
        v = v * np.cos(v) + 0.1 * i
    return np.sum(v)


def while_cond(state):
    return state[1] < 5


def while_body(state):
    v, k = state
    return (np.tanh(v * 1.5) + 0.2, k + 1)


def use_while(x):
    v, k = lax.while_loop(while_cond, while_body, (x, 0))
    return np.sum(v ** 2)


def while_reference(x):
    v = x
    for _ in range(5):
        v = np.tanh(v * 1.5) + 0.2
    return np.sum(v ** 2)


def branch_true(x):
    return np.sum(np.sin(x) * x)


def branch_false(x):
    return np.sum(x ** 3)


def use_cond(x):
    return lax.cond(np.sum(x) > 0, branch_true, branch_false, x)


def cond_reference(x):
    return np.sum(np.sin(x) * x) if np.sum(x) > 0 else np.sum(x ** 3)


def pair_true(op):
    x, s = op
    return np.sum(x * s)


def pair_false(op):
    x, s = op
    return np.sum(x) - s


def use_cond_tuple(x):
    return lax.cond(x[0] > 0, pair_true, pair_false, (x, 2.0)) ** 2


def b0(x):
    return np.sum(np.exp(x))


def b1(x):
    return np.sum(x ** 2)


def b2(x):
    return np.prod(x)


def use_switch(x):
    return lax.switch(1, [b0, b1, b2], x) + lax.switch(7, [b0, b1, b2], x)


def use_select(x):
    return np.sum(lax.select(x > 0, x ** 2, np.sin(x)))


def scan_step(c, x):
    c = np.tanh(c * 0.9 + x)
    return c, c ** 2


def use_scan(x):
    c, ys = lax.scan(scan_step, 0.5, x)
    return c + np.sum(ys * np.arange(1.0, 4.0))


def scan_reference(x):
    c, ys = 0.5, []
    for v in x:
        c = np.tanh(c * 0.9 + v)
        ys.append(c ** 2)
    return c + np.sum(np.array(ys) * np.arange(1.0, 4.0))


def scan_pair_step(carry, xs):
    a, w = xs
    carry = carry * w + a
    return carry, (carry, np.sin(carry))


def use_scan_pair(x):
    c, ys = lax.scan(scan_pair_step, x[0], (x, x[::-1]))
    first, second = ys
    return c + np.sum(first) + np.sum(second ** 2)


def scan_none_step(c, x):
    return c * 1.1 + 0.5, None


def use_scan_length(x):
    c, ys = lax.scan(scan_none_step, x, None, 3)
    return np.sum(c ** 2)


def square_sin(x):
    return np.sin(x) ** 2


def use_map(x):
    return np.sum(lax.map(square_sin, x.reshape(3, 1) * x) * x)


# ---- forward values against plain Python

def test_values():
    assert np.isclose(use_fori(X), fori_reference(X))
    assert lax.fori_loop(2, 5, body_fori, 1.0) == body_fori(4, body_fori(3, body_fori(2, 1.0)))
    assert np.isclose(use_while(X), while_reference(X))
    assert lax.while_loop(while_cond, while_body, (X, 0))[1] == 5
    assert np.isclose(use_cond(X), cond_reference(X))
    assert np.isclose(use_cond(-X - 1), cond_reference(-X - 1))
    assert lax.cond(False, pair_true, pair_false, (X, 2.0)) == np.sum(X) - 2.0
    assert lax.switch(-3, [b0, b1, b2], X) == b0(X) and lax.switch(2, [b0, b1, b2], X) == b2(X)
    np.testing.assert_array_equal(lax.select(X > 0, X, -X), np.abs(X))
    assert np.isclose(use_scan(X), scan_reference(X))
    c, ys = lax.scan(scan_step, 0.5, X)
    assert ys.shape == (3,) and c == ys[-1] ** 0.5
    c, (first, second) = lax.scan(scan_pair_step, 1.0, (X, X))
    assert isinstance(ys, np.ndarray) and first.shape == (3,) and np.allclose(np.sin(first), second)
    c, ys = lax.scan(scan_none_step, X, None, 3)
    assert ys is None and np.allclose(c, ((X * 1.1 + 0.5) * 1.1 + 0.5) * 1.1 + 0.5)
    m = lax.map(square_sin, np.arange(6.0).reshape(3, 2))
    np.testing.assert_allclose(m, np.sin(np.arange(6.0).reshape(3, 2)) ** 2)
    d = lax.scan(scan_dict_step, 0.0, {'a': X, 'b': 2 * X})
    np.testing.assert_allclose(d[1]['s'], np.cumsum(3 * X))


def scan_dict_step(c, xs):
    c = c + xs['a'] + xs['b']
    return c, {'s': c}


# ---- derivatives against central differences

GRAD_CASES = [use_fori, use_while, use_cond, use_cond_tuple, use_switch, use_select, use_scan,
              use_scan_pair, use_scan_length, use_map]


@pytest.mark.parametrize('f', GRAD_CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize('x', [X, -X - 0.5], ids=['x', 'neg'])
def test_grad_matches_finite_differences(f, x):
    np.testing.assert_allclose(codax.grad(f)(x), numeric_grad(f, x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('f', GRAD_CASES, ids=lambda f: f.__name__)
def test_jvp_matches_grad(f):
    v = np.array([0.2, -1.0, 0.5])
    value, tangent = codax.jvp(f, (X,), (v,))
    assert np.isclose(value, f(X))
    assert np.isclose(tangent, np.dot(codax.grad(f)(X), v), rtol=1e-7)

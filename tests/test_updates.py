"""codax.numpy.at(x)[idx].set/add/multiply/min/max/get: JAX's functional
updates, in plain Python and inside grad, jvp and second derivatives.

The records' rules are checked one by one in test_primitive_rules.py and
test_jvp_rules.py; here whole functions are checked against finite
differences, with repeated indices, slices, masks and 2-D arrays.
"""
import os

import numpy as np
import pytest

import codax
import codax.numpy as cnp
from codax.numpy import at
from helpers import assert_tree_allclose, numeric_grad

THIS_FILE = os.path.basename(__file__)
IDX = np.array([0, 2, 2, 4])          # 2 repeats: add/multiply/min/max accumulate there
RTOL, ATOL = 1e-5, 1e-7
E = 1e-5


# ---- plain Python ----

def test_plain_updates_match_numpy_and_leave_x_alone():
    x = np.array([0.5, -1.0, 2.0, 0.25, 3.0])
    v = np.array([1.0, 4.0, -2.0, 0.5])
    before = x.copy()
    for method, ufunc in (('add', np.add), ('multiply', np.multiply), ('min', np.minimum),
                          ('max', np.maximum)):
        want = x.copy()
        ufunc.at(want, IDX, v)
        got = getattr(cnp.at(x)[IDX], method)(v)
        np.testing.assert_array_equal(got, want, err_msg=method)
    np.testing.assert_array_equal(cnp.at(x)[1:3].set(7.0), [0.5, 7.0, 7.0, 0.25, 3.0])
    np.testing.assert_array_equal(cnp.at(x)[x > 1].add(1.0), [0.5, -1.0, 3.0, 0.25, 4.0])
    np.testing.assert_array_equal(x, before)


def test_repeated_indices_accumulate_for_add():
    x = np.zeros(3)
    np.testing.assert_array_equal(at(x)[[0, 0, 0, 2]].add(1.5), [4.5, 0.0, 1.5])
    np.testing.assert_array_equal(at(x)[np.array([1, 1])].add(np.array([2.0, 3.0])), [0, 5, 0])
    np.testing.assert_array_equal(x, np.zeros(3))


def test_dtype_is_kept_and_get_copies():
    x = np.arange(4)
    y = at(x)[1].add(2.7)                       # cast to x's dtype, as JAX does
    assert y.dtype == x.dtype and list(y) == [0, 3, 2, 3]
    part = at(x)[1:3].get()
    part[0] = 100
    assert list(x) == [0, 1, 2, 3]
    assert at([1.0, 2.0])[0].set(5.0).tolist() == [5.0, 2.0]      # array-likes work
    m = np.ones((2, 3))
    np.testing.assert_array_equal(at(m)[:, 1].multiply(np.array([2.0, 3.0])),
                                  [[1, 2, 1], [1, 3, 1]])


def test_codax_numpy_is_numpy_otherwise():
    assert cnp.sin is np.sin and cnp.linalg is np.linalg and cnp.float32 is np.float32
    assert codax.numpy is cnp


# ---- differentiated: functions of (x, v) ----

def f_set(x, v):
    y = cnp.at(x)[IDX].set(v)                   # a repeated index: one write wins
    return np.sum(np.sin(y) * y)


def f_add(x, v):
    y = cnp.at(x)[IDX].add(v)
    return np.sum(np.tanh(y) ** 2 + y * x)


def f_multiply(x, v):
    y = cnp.at(x)[IDX].multiply(v)
    return np.sum(np.sin(y) + y ** 2)


def f_min(x, v):
    y = cnp.at(x)[IDX].min(v * 0.5)
    return np.sum(y ** 3 + y)


def f_max(x, v):
    y = codax.numpy.at(x)[1:4].max(v[:3])
    return np.sum(np.exp(y) * y)


def f_get(x, v):
    y = at(x)[IDX].get()
    return np.sum(y * v) + np.sum(at(x)[1:3].get() ** 2)


def f_2d(x, v):
    m = np.reshape(x[:4], (2, 2))
    m = at(m)[:, 0].add(v[:2])                  # a column
    m = at(m)[np.array([1, 1]), np.array([0, 1])].multiply(v[2:])
    return np.sum(np.sin(m) * m)


def f_chain(x, v):
    y = at(x)[IDX].add(v)
    y = at(y)[y > 0.5].set(0.5)                 # a mask
    y = at(y)[0].max(v[1])
    return np.sum(y * y * x)


def f_inplace(x, v):
    y = x * 1.0                                 # the in-place style still works
    y[1:3] = v[:2]
    y[0] += v[3]
    return np.sum(np.sin(y) * y)


FUNCTIONS = [f_set, f_add, f_multiply, f_min, f_max, f_get, f_2d, f_chain, f_inplace]


def _args():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.0, 1.0, 5)
    v = rng.uniform(-1.0, 1.0, 4)
    return x, v


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
def test_grad_matches_finite_differences(f):
    x, v = _args()
    before = (x.copy(), v.copy())
    got = codax.grad(f, argnums=(0, 1))(x, v)
    assert_tree_allclose(got, numeric_grad(f, (x, v), (0, 1)), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(v, before[1])


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
def test_jvp_matches_finite_differences(f):
    x, v = _args()
    dx, dv = np.random.default_rng(4).standard_normal(5), np.linspace(-1.0, 1.0, 4)
    out, tangent = codax.jvp(f, (x, v), (dx, dv))
    want = (f(x + E * dx, v + E * dv) - f(x - E * dx, v - E * dv)) / (2 * E)
    assert np.isclose(out, f(x, v)) and np.isclose(tangent, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize('argnum', [0, 1])
def test_hessian_matches_differences_of_grad(f, argnum):
    args = _args()
    hess = codax.hessian(f, argnums=argnum)(*args)
    grad = codax.grad(f, argnums=argnum)
    n = args[argnum].size
    want = np.empty((n, n))
    for j in range(n):
        step = np.eye(n)[j] * E
        plus, minus = list(args), list(args)
        plus[argnum], minus[argnum] = args[argnum] + step, args[argnum] - step
        want[:, j] = (grad(*plus) - grad(*minus)) / (2 * E)
    np.testing.assert_allclose(hess, want, rtol=1e-4, atol=1e-6)


def hvp(x, v, w):
    return np.sum(codax.grad(f_multiply, argnums=1)(x, v) * w)


def test_reverse_over_reverse_through_multiply():
    """grad(grad): the rule of .multiply() differentiated again (zero updates too)."""
    x, v = _args()
    w = np.array([0.3, -0.5, 0.2, 0.7])
    g = codax.grad(f_multiply, argnums=1)
    for point in (v, np.array([0.0, 0.4, 0.0, -0.8])):       # two zeros at element 2
        got = codax.grad(hvp, argnums=1)(x, point, w)
        want = (g(x, point + E * w) - g(x, point - E * w)) / (2 * E)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_generated_code_calls_the_update_primitives():
    x, v = _args()
    source = codax.grad(f_chain, argnums=(0, 1)).source(x, v)
    for call in ('rt.at_add(x, ', 'rt.at_set(y, ', 'rt.at_max(y, '):
        assert call in source


# ---- refused uses point at the user's line ----

def at_without_method(x):
    return np.sum(at(x)[1])


def at_unknown_method(x):
    return np.sum(at(x)[1].divide(2.0))


def at_keyword(x):
    return np.sum(cnp.at(x)[1].add(2.0, mode='drop'))


def at_stored(x):
    helper = at(x)
    return np.sum(helper[1].set(0.0))


@pytest.mark.parametrize('f, message', [
    (at_without_method, r'codax supports codax.numpy.at only as at\(x\)\[idx\]\.set\(v\)'),
    (at_unknown_method, r'has no method \.divide\(\)'),
    (at_keyword, r'\.add\(\) of codax.numpy.at\(x\)\[idx\] takes one argument'),
    (at_stored, 'all in one expression'),
])
def test_unsupported_use_is_a_source_error(f, message):
    with pytest.raises(codax.SourceError, match=message) as info:
        codax.grad(f)(np.ones(3))
    line = f.__code__.co_firstlineno + 1
    assert f'{THIS_FILE}:{line}' in str(info.value) and '^' in str(info.value)

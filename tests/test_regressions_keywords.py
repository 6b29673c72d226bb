"""Keyword arguments of calls to user functions, under every transformation.

A function with **kwargs takes, in generated code, one more argument: the
dict of what **kwargs holds (normalize passes it as `f(a, b, **d)`), and
derivatives flow through its values as through positional arguments. A
keyword argument is never dropped, also where derivative code that calls a
user function with one (codax.random.uniform's maxval=) is differentiated
again.

References: central differences (tests/helpers.py), the untransformed
function in a loop, and closed forms written out in NumPy.
"""
import numpy as np

import codax
from helpers import numeric_grad

X = np.array([0.7, -1.3, 2.1])
XS = np.array([[0.7, -1.3, 2.1], [0.2, 0.5, -0.4]])


def scaled(x, a=2.0, **kw):
    return a * x * kw['scale'] + kw.get('shift', 0.0)


def through_kwargs(x):
    return np.sum(scaled(x, scale=np.sin(x), shift=x ** 2) ** 2)


def through_kwargs_plain(x):          # the same function, written without **kwargs
    return np.sum((2.0 * x * np.sin(x) + x ** 2) ** 2)


def hessian_fd(f, x, eps=1e-5):
    cols = [(codax.grad(f)(x + eps * e) - codax.grad(f)(x - eps * e)) / (2 * eps)
            for e in np.eye(len(x))]
    return np.stack(cols, axis=1)


def test_uniform_maxval_hessian_keeps_the_keyword():
    key = codax.random.PRNGKey(0)

    def f(hi):
        return np.sum(codax.random.uniform(key, (3,), maxval=hi) ** 2)
    u = np.asarray(codax.random.uniform(key, (3,)))        # on [0, 1): maxval=hi is hi * u
    np.testing.assert_allclose(codax.hessian(f)(2.0), 2 * np.sum(u ** 2), rtol=1e-10)
    eps = 1e-5
    fd = (codax.grad(f)(2.0 + eps) - codax.grad(f)(2.0 - eps)) / (2 * eps)
    np.testing.assert_allclose(codax.hessian(f)(2.0), fd, rtol=1e-6)


def test_kwargs_helper_grad_jvp_jit():
    np.testing.assert_allclose(through_kwargs(X), through_kwargs_plain(X))
    np.testing.assert_allclose(codax.grad(through_kwargs)(X), numeric_grad(through_kwargs, (X,)),
                               rtol=1e-6)
    t = np.array([0.3, -0.2, 1.0])
    out, tangent = codax.jvp(through_kwargs, (X,), (t,))
    np.testing.assert_allclose(out, through_kwargs_plain(X))
    np.testing.assert_allclose(tangent, numeric_grad(through_kwargs, (X,)) @ t, rtol=1e-6)
    np.testing.assert_allclose(codax.jit(through_kwargs)(X), through_kwargs_plain(X))
    np.testing.assert_allclose(codax.jit(codax.grad(through_kwargs))(X),
                               numeric_grad(through_kwargs, (X,)), rtol=1e-6)


def test_kwargs_helper_second_order():
    want = hessian_fd(through_kwargs_plain, X)
    np.testing.assert_allclose(codax.hessian(through_kwargs)(X), want, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(codax.jacfwd(codax.grad(through_kwargs))(X), want,
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(codax.jacfwd(through_kwargs)(X),
                               numeric_grad(through_kwargs, (X,)), rtol=1e-6)


def test_kwargs_helper_vmap():
    np.testing.assert_allclose(codax.vmap(through_kwargs)(XS),
                               [through_kwargs_plain(x) for x in XS])
    np.testing.assert_allclose(codax.vmap(codax.grad(through_kwargs))(XS),
                               [numeric_grad(through_kwargs_plain, (x,)) for x in XS], rtol=1e-6)


def test_kwargs_helper_with_constant_keywords():
    def f(x):
        c = np.ones(3)
        return np.sum(x * scaled(c, scale=3.0, shift=1.0))     # a call that carries nothing
    np.testing.assert_allclose(codax.grad(f)(X), np.full(3, 7.0))


def test_grad_of_a_kwargs_function_with_keywords():
    def total(x, **kw):
        return np.sum(x * kw['w'])
    w = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(codax.grad(total)(X, w=w), w)


WEIGHTS = np.array([0.5, -1.0, 2.0])


def powered(x, w=WEIGHTS, p=1.0):
    return np.sum(w * x ** p)


def test_nonliteral_default_skipped_under_hessian():
    def f(x):
        return powered(x, p=3.0)            # w skipped: its default is no literal
    x = np.abs(X)
    want = np.diag(6 * WEIGHTS * x)
    np.testing.assert_allclose(codax.hessian(f)(x), want, rtol=1e-10)
    np.testing.assert_allclose(hessian_fd(f, x), want, rtol=1e-5, atol=1e-8)


# ---- top-level transformations of a **kwargs function called with keywords ----

def weighted(x, **kw):
    return x * kw['scale'] + kw.get('shift', 0.0)


def weighted_sum(x, y, **kw):
    return np.sum(x ** 3 * kw['scale'] + y * x)


def test_vmap_maps_keyword_arguments_along_axis_0():
    # as JAX: keywords are batched along axis 0, in_axes is for positional ones
    scales = np.array([2.0, -3.0])
    want = np.stack([weighted(x, scale=s) for x, s in zip(XS, scales)])
    np.testing.assert_allclose(codax.vmap(weighted)(XS, scale=scales), want)
    want = np.stack([weighted(X, scale=s, shift=s) for s in scales])
    np.testing.assert_allclose(codax.vmap(weighted, in_axes=None)(X, scale=scales, shift=scales),
                               want)
    grads = codax.vmap(codax.grad(weighted_sum))(XS, XS[::-1], scale=scales)
    want = [numeric_grad(lambda x: weighted_sum(x, y, scale=s), (x,))
            for x, y, s in zip(XS, XS[::-1], scales)]
    np.testing.assert_allclose(grads, want, rtol=1e-6)


def test_vmap_of_a_number_by_keyword_is_jax_s_rank_error():
    import pytest
    with pytest.raises(ValueError, match=r'keyword arguments \(\*\*kw\).*rank 0'):
        codax.vmap(weighted)(XS, scale=3.0)


def test_jacobians_pass_keywords_through_undifferentiated():
    s = np.array([2.0, 3.0, -4.0])
    np.testing.assert_allclose(codax.jacfwd(weighted)(X, scale=3.0), 3.0 * np.eye(3))
    np.testing.assert_allclose(codax.jacrev(weighted)(X, scale=s, shift=X), np.diag(s))
    want = np.diag(6 * X * s)
    np.testing.assert_allclose(codax.hessian(weighted_sum)(X, X, scale=s), want, rtol=1e-12)
    np.testing.assert_allclose(hessian_fd(lambda x: weighted_sum(x, X, scale=s), X), want,
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(codax.jacfwd(codax.grad(weighted_sum))(X, X, scale=s), want,
                               rtol=1e-12)
    # argnums count the positional arguments: -1 is y, never the keywords' dict
    np.testing.assert_allclose(codax.hessian(weighted_sum, argnums=-1)(X, X, scale=s),
                               np.zeros((3, 3)))
    np.testing.assert_allclose(codax.grad(weighted_sum, argnums=-1)(X, X, scale=s), X)
    gx, gy = codax.jacrev(weighted_sum, argnums=(0, 1))(X, 2 * X, scale=s)
    np.testing.assert_allclose(gx, numeric_grad(lambda x: weighted_sum(x, 2 * X, scale=s), (X,)),
                               rtol=1e-6)
    np.testing.assert_allclose(gy, X)


def test_jvp_and_vjp_of_a_kwargs_function_without_keywords():
    def total(x, **kw):
        return np.sum(x * kw.get('scale', 2.0))
    t = np.array([1.0, -1.0, 0.5])
    out, tangent = codax.jvp(total, (X,), (t,))
    np.testing.assert_allclose((out, tangent), (total(X), 2.0 * np.sum(t)))
    out, pullback = codax.vjp(total, X)
    (g,) = pullback(1.0)
    np.testing.assert_allclose(g, np.full(3, 2.0))


# ---- a default that is a local of the function that made a closure ----

def _make_cubic():
    w = np.array([0.5, -1.0, 2.0])     # a local: evaluated when _make_cubic ran, held by no cell

    def cubic(x, v=w, p=3.0):
        return np.sum(v * x ** p)
    return cubic


CUBIC = _make_cubic()


def _calls_cubic(x):
    return CUBIC(x) + CUBIC(x, p=2.0)


def test_a_closure_s_local_default_is_its_value():
    w = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(codax.grad(CUBIC)(X), 3 * w * X ** 2, rtol=1e-12)
    np.testing.assert_allclose(codax.hessian(CUBIC)(X), np.diag(6 * w * X), rtol=1e-12)
    np.testing.assert_allclose(codax.jit(CUBIC)(X), CUBIC(X))
    np.testing.assert_allclose(codax.vmap(CUBIC)(XS), [CUBIC(x) for x in XS])
    np.testing.assert_allclose(codax.vmap(codax.grad(CUBIC))(XS), [3 * w * x ** 2 for x in XS],
                               rtol=1e-12)
    want = np.diag(6 * w * X + 2 * w)
    np.testing.assert_allclose(codax.hessian(_calls_cubic)(X), want, rtol=1e-12)
    np.testing.assert_allclose(hessian_fd(_calls_cubic, X), want, rtol=1e-5, atol=1e-8)
    # (vmap's batch pass asks for CUBIC(x, p=2.0) by position: transformer/batch_rules/calls.py)
    np.testing.assert_allclose(codax.vmap(lambda x: CUBIC(x) * 2)(XS), [2 * CUBIC(x) for x in XS])


def test_a_nested_def_with_a_variable_default_is_refused_clearly():
    import pytest

    def outer(x):
        w = np.ones(3)

        def inner(y, v=w):
            return np.sum(v * y ** 2)
        return inner(x)
    with pytest.raises(Exception, match='default values must be literals') as info:
        codax.grad(outer)(X)
    assert 'test_regressions_keywords.py' in str(info.value)

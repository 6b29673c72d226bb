"""Transformations of callables that are not plain functions, as in JAX:
bound methods, callable objects, functools.partial (positional and keyword
arguments, nested), staticmethods and classmethods. Each must give what the
same transformation of the equivalent plain function gives, checked here
against the analytic derivatives of f(x) = k * sum(sin(w * x)) and loops."""
import functools

import numpy as np
import pytest

import codax

W = np.array([0.5, -1.5, 2.0])
X = np.array([0.3, -0.8, 1.2])
BATCH = np.stack([X, 2 * X, -X])


def weighted(x, w, k=1.0):
    return k * np.sum(np.sin(w * x))


class Model:
    def __init__(self, w, k):
        self.w, self.k = w, k

    def loss(self, x):
        return self.k * np.sum(np.sin(self.w * x))

    def __call__(self, x):
        return self.k * np.sum(np.sin(self.w * x))

    @staticmethod
    def static_loss(x):
        return 2.5 * np.sum(np.sin(W * x))

    @classmethod
    def class_loss(cls, x):
        return cls.K * np.sum(np.sin(W * x))

    K = 2.5


class Shifted(Model):
    """A method with a default, called with and without it."""

    def shifted(self, x, shift=0.0):
        return self.k * np.sum(np.sin(self.w * x + shift))


MODEL = Model(W, 2.5)
CALLABLES = {
    'bound method': MODEL.loss,
    'callable object': MODEL,
    'partial, keywords': functools.partial(weighted, w=W, k=2.5),
    'partial, positional': functools.partial(lambda w, k, x: k * np.sum(np.sin(w * x)), W, 2.5),
    'nested partial': functools.partial(functools.partial(weighted, k=1.0), w=W, k=2.5),
    'partial of a method': functools.partial(Model.loss, MODEL),
    'staticmethod': Model.static_loss,
    'staticmethod of an instance': MODEL.static_loss,
    'classmethod': Model.class_loss,
}


def gradient(x):
    return 2.5 * W * np.cos(W * x)


def hessian(x):
    return np.diag(-2.5 * W ** 2 * np.sin(W * x))


@pytest.fixture(params=list(CALLABLES), ids=list(CALLABLES))
def fn(request):
    return CALLABLES[request.param]


def test_grad_and_value_and_grad(fn):
    np.testing.assert_allclose(codax.grad(fn)(X), gradient(X), rtol=1e-12)
    value, g = codax.value_and_grad(fn)(X)
    assert np.isclose(value, 2.5 * np.sum(np.sin(W * X)), rtol=1e-12)
    np.testing.assert_allclose(g, gradient(X), rtol=1e-12)


def test_jacobians_and_hessian(fn):
    np.testing.assert_allclose(codax.jacfwd(fn)(X), gradient(X), rtol=1e-12)
    np.testing.assert_allclose(codax.jacrev(fn)(X), gradient(X), rtol=1e-12)
    np.testing.assert_allclose(codax.hessian(fn)(X), hessian(X), rtol=1e-12, atol=1e-15)


def test_jvp_and_vjp(fn):
    v = np.array([1.0, -2.0, 0.5])
    out, tangent = codax.jvp(fn, (X,), (v,))
    assert np.isclose(out, fn(X)) and np.isclose(tangent, gradient(X) @ v, rtol=1e-12)
    out, pullback = codax.vjp(fn, X)
    np.testing.assert_allclose(pullback(2.0)[0], 2.0 * gradient(X), rtol=1e-12)


def test_vmap_and_jit(fn):
    np.testing.assert_allclose(codax.vmap(fn)(BATCH), [fn(b) for b in BATCH], rtol=1e-12)
    np.testing.assert_allclose(codax.vmap(codax.grad(fn))(BATCH),
                               [gradient(b) for b in BATCH], rtol=1e-12)
    assert np.isclose(codax.jit(fn)(X), fn(X), rtol=1e-12)
    np.testing.assert_allclose(codax.jit(codax.grad(fn))(X), gradient(X), rtol=1e-12)


def test_a_partial_keyword_can_be_overridden_by_keyword():
    p = functools.partial(weighted, w=W, k=2.5)
    np.testing.assert_allclose(codax.grad(p)(X, k=-1.0), -gradient(X) / 2.5, rtol=1e-12)
    np.testing.assert_allclose(codax.grad(p, argnums=0)(X, w=2 * W),
                               2.5 * 2 * W * np.cos(2 * W * X), rtol=1e-12)


def test_argnums_count_the_arguments_left_to_pass():
    p = functools.partial(weighted, X)         # x bound: the argument left is w
    np.testing.assert_allclose(codax.grad(p)(W), X * np.cos(W * X), rtol=1e-12)
    m = Shifted(W, 2.5)
    np.testing.assert_allclose(codax.grad(m.shifted, argnums=1)(X, 0.3),
                               2.5 * np.sum(np.cos(W * X + 0.3)), rtol=1e-12)
    np.testing.assert_allclose(codax.grad(m.shifted)(X), gradient(X), rtol=1e-12)
    np.testing.assert_allclose(codax.vmap(m.shifted, in_axes=(0, None))(BATCH, 0.3),
                               [m.shifted(b, 0.3) for b in BATCH], rtol=1e-12)


def test_the_object_is_read_when_called_not_when_transformed():
    m = Model(W, 1.0)
    g = codax.grad(m.loss)
    np.testing.assert_allclose(g(X), gradient(X) / 2.5, rtol=1e-12)
    m.w = 2 * W                                # like a closure: the current value counts
    np.testing.assert_allclose(g(X), 2 * W * np.cos(2 * W * X), rtol=1e-12)


def calls_what_it_is_given(x, fn):
    return 3.0 * fn(x)


@pytest.mark.parametrize('held', ['bound method', 'callable object', 'partial, keywords'])
def test_a_callable_passed_into_transformed_code(held):
    fn = CALLABLES[held]
    np.testing.assert_allclose(codax.grad(calls_what_it_is_given)(X, fn), 3 * gradient(X),
                               rtol=1e-12)
    np.testing.assert_allclose(codax.hessian(calls_what_it_is_given)(X, fn), 3 * hessian(X),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(codax.vmap(calls_what_it_is_given, in_axes=(0, None))(BATCH, fn),
                               [3 * fn(b) for b in BATCH], rtol=1e-12)


def test_second_derivatives_of_a_method_compose():
    np.testing.assert_allclose(codax.jacfwd(codax.grad(MODEL.loss))(X), hessian(X),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(codax.grad(lambda x: codax.grad(MODEL)(x)[0])(X),
                               hessian(X)[0], rtol=1e-12, atol=1e-15)


def varargs(*xs):
    return np.sum(xs[0])


def test_a_callable_with_varargs_is_refused_naming_the_function():
    line = varargs.__code__.co_firstlineno
    with pytest.raises(TypeError, match=rf'varargs \(.*test_callables\.py:{line}\).*\*args'):
        codax.grad(functools.partial(varargs, X))(X)

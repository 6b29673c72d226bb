"""Transformations of a lambda or nested def inside a transformed function.

A JAX user writes `grad(lambda X: np.sum(vmap(lambda r: ...)(X)))`: the inner
function is a closure codax lifts, and grad/vmap/jit/jacfwd/... of it give a
closure of the transformed lifted function holding the same captured values,
which derivatives and batching flow through. Each case is checked against a
NumPy-only version of the same mathematics (analytic, or finite differences).
"""

import numpy as np
import pytest

import codax
from helpers import numeric_grad

R = np.random.default_rng(7)
X = R.normal(size=(4, 3))
W = R.normal(size=(2, 3))
V = R.normal(size=3)


def per_row_sum(X, w):
    def row(r):                                  # a nested def capturing w
        return np.sum(np.tanh(r * w))
    return np.sum(codax.vmap(row)(X))


def per_row_sum_numpy(X, w):
    return np.sum(np.tanh(X * w))


def inner_grad_capturing(x):
    return np.sum(codax.grad(lambda y: np.sum(np.sin(y) * x))(x))


def inner_grad_capturing_numpy(x):
    return np.sum(np.cos(x) * x)


def inner_jit(X):
    return np.sum(codax.jit(lambda r: r ** 3 * np.exp(-r))(X))


def inner_jit_numpy(X):
    return np.sum(X ** 3 * np.exp(-X))


def layer(W, X):
    return np.sum(codax.vmap(lambda x: np.tanh(W @ x) ** 2)(X))


def layer_numpy(W, X):
    return np.sum(np.tanh(X @ W.T) ** 2)


def inner_value_and_grad(x):
    value, g = codax.value_and_grad(lambda y: np.sum(y ** 3 * x))(x)
    return value + np.sum(g * x)                 # sum(x^4) + sum(3 x^3 x)


def inner_value_and_grad_numpy(x):
    return 4 * np.sum(x ** 4)


def inner_jacobians(x):
    jf = codax.jacfwd(lambda y: np.sin(y) * x)(x)       # diag(cos(x) x)
    jr = codax.jacrev(lambda y: y ** 2 * x)(x)          # diag(2 x^2)
    return np.sum(jf) + np.sum(jr * x)


def inner_jacobians_numpy(x):
    return np.sum(np.cos(x) * x) + np.sum(2 * x ** 3)


def inner_in_axes(X, v):
    return np.sum(codax.vmap(lambda r, s: np.sum(r * s) * np.cos(s), in_axes=(0, None))(X, v))


def inner_in_axes_numpy(X, v):
    return np.sum(X @ v) * np.sum(np.cos(v))


CASES = [
    (per_row_sum, per_row_sum_numpy, (X, V)),
    (inner_grad_capturing, inner_grad_capturing_numpy, (V,)),
    (inner_jit, inner_jit_numpy, (X,)),
    (layer, layer_numpy, (W, X)),
    (inner_value_and_grad, inner_value_and_grad_numpy, (V,)),
    (inner_jacobians, inner_jacobians_numpy, (V,)),
    (inner_in_axes, inner_in_axes_numpy, (X, V)),
]
IDS = [c[0].__name__ for c in CASES]


@pytest.mark.parametrize('f, reference, args', CASES, ids=IDS)
def test_plain_call_matches_numpy(f, reference, args):
    np.testing.assert_allclose(f(*args), reference(*args), rtol=1e-12)


@pytest.mark.parametrize('f, reference, args', CASES, ids=IDS)
def test_grad_through_the_inner_transformation(f, reference, args):
    argnums = tuple(range(len(args)))
    got = codax.grad(f, argnums=argnums)(*args)
    want = numeric_grad(reference, args, argnums)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('f, reference, args', CASES, ids=IDS)
def test_jit_of_the_outer_function(f, reference, args):
    np.testing.assert_allclose(codax.jit(f)(*args), reference(*args), rtol=1e-12)


@pytest.mark.parametrize('f, reference, args', CASES, ids=IDS)
def test_vmap_of_the_outer_function(f, reference, args):
    batch = tuple(np.stack([a, a * 0.5 + 0.1, -a]) for a in args)
    got = codax.vmap(f)(*batch)
    want = [reference(*(b[k] for b in batch)) for k in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize('f, reference, args', CASES, ids=IDS)
def test_jvp_through_the_inner_transformation(f, reference, args):
    tangents = tuple(R.normal(size=np.shape(a)) for a in args)
    _, got = codax.jvp(f, args, tangents)
    grads = numeric_grad(reference, args, tuple(range(len(args))))
    want = sum(np.sum(g * t) for g, t in zip(grads, tangents))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('f, reference', [(inner_grad_capturing, inner_grad_capturing_numpy),
                                          (inner_value_and_grad, inner_value_and_grad_numpy),
                                          (inner_jacobians, inner_jacobians_numpy)])
def test_hessian_through_the_inner_transformation(f, reference):
    got = codax.hessian(f)(V)
    grad_numpy = lambda x: numeric_grad(reference, (x,), 0, eps=1e-5)  # noqa: E731
    want = np.stack([(grad_numpy(V + 1e-4 * e) - grad_numpy(V - 1e-4 * e)) / 2e-4
                     for e in np.eye(3)])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_vmap_of_an_inner_grad_whose_lambda_captures_the_batched_value():
    def f(x):
        return codax.grad(lambda y: np.sum(y ** 3 * x))(x)      # 3 x^2 * x
    got = codax.vmap(f)(X)
    np.testing.assert_allclose(got, 3 * X ** 3, rtol=1e-12)


def test_inner_transformation_with_options():
    def f(x, v):
        g0, g1 = codax.grad(lambda a, b: np.sum(a * b ** 2 * x), argnums=(0, 1))(x, v)
        return np.sum(g0 + g1)                    # sum(v^2 x + 2 x v x)
    x = V + 1.0
    reference = lambda x, v: np.sum(v ** 2 * x + 2 * x * v * x)  # noqa: E731
    np.testing.assert_allclose(f(x, V), reference(x, V), rtol=1e-12)
    got = codax.grad(f, argnums=(0, 1))(x, V)
    for g, w in zip(got, numeric_grad(reference, (x, V), (0, 1))):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_source_shows_the_transformation_as_a_call():
    source = codax.grad(inner_grad_capturing).source(V)
    assert 'rt.transformation(' in source, source

"""Regressions found in session 12, each against an independent reference."""
import numpy as np

import codax
from helpers import numeric_grad, numeric_jacobian


def _relu(z):
    return np.maximum(z, 0.0)


def _layers(params, x):
    # each layer's function travels in a tuple with its (differentiated)
    # weights: the call's function is then a value of the differentiated
    # tuple, whose own adjoint is zero (not a closure's captured values')
    W1, W2 = params
    h = x
    for W, act in ((W1, np.tanh), (W2, _relu)):
        h = act(h @ W)
    return np.sum(h ** 2)


def test_gradients_through_functions_taken_from_a_tuple_with_weights():
    rng = np.random.default_rng(0)
    params = (rng.normal(size=(3, 4)), rng.normal(size=(4, 2)))
    xs = rng.normal(size=(3, 3))
    g1, g2 = codax.grad(_layers)(params, xs[0])
    np.testing.assert_allclose(g1, numeric_grad(lambda w: _layers((w, params[1]), xs[0]),
                                                (params[0],)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g2, numeric_grad(lambda w: _layers((params[0], w), xs[0]),
                                                (params[1],)), rtol=1e-6, atol=1e-8)
    per_example = codax.vmap(codax.grad(_layers), in_axes=(None, 0))(params, xs)
    for k, x in enumerate(xs):
        for got, want in zip(per_example, codax.grad(_layers)(params, x)):
            np.testing.assert_allclose(got[k], want, rtol=1e-10)
    hessian = codax.hessian(lambda w: _layers((w, params[1]), xs[0]))(params[0])
    gradient = codax.grad(lambda w: _layers((w, params[1]), xs[0]))
    np.testing.assert_allclose(hessian.reshape(12, 12),
                               numeric_jacobian(lambda w: gradient(w.reshape(3, 4)).ravel(),
                                                params[0].ravel()), rtol=1e-5, atol=1e-6)


def _square_sum(a):
    return np.sum(a ** 2)


def _sine_sum(a):
    return np.sum(np.sin(a))


def _helper_chosen_per_example(x, n):
    s = 0.0
    for count in range(3):
        if count == n:                  # n differs per example: a batched condition
            s = s + _square_sum(x * (count + 1))
        else:
            s = s + _sine_sum(x * s)
    return s


def test_per_example_derivatives_when_a_batched_branch_calls_different_helpers():
    # the two branches save pullbacks of different functions: no per-example
    # select exists, so vmap of the derivative takes its summed fallback
    xs = np.random.default_rng(1).normal(size=(4, 3))
    ns = np.array([0, 1, 2, 1])
    grads = codax.vmap(codax.grad(_helper_chosen_per_example))(xs, ns)
    hessians = codax.vmap(codax.hessian(_helper_chosen_per_example))(xs, ns)
    for x, n, g, h in zip(xs, ns, grads, hessians):
        np.testing.assert_allclose(g, numeric_grad(_helper_chosen_per_example, (x, int(n))),
                                   rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(h, codax.hessian(_helper_chosen_per_example)(x, int(n)),
                                   rtol=1e-9, atol=1e-12)

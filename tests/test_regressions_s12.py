"""Regressions found in session 12, each against an independent reference."""
import functools

import numpy as np
import pytest

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


def _scatter_square(w):
    t = np.zeros(3)
    np.add.at(t, np.array([0, 1, 1]), w)        # repeated index: both add
    return np.sum(t ** 2)


def _ufunc_updates(w, x):
    t = x * 1.0
    np.multiply.at(t, np.array([0, 2, 2]), w)
    np.subtract.at(t, np.array([1, 1]), w[:2])
    np.maximum.at(t, np.array([0, 0]), w[1:] ** 2)
    np.minimum.at(t, np.array([2]), w[2] * 5.0)
    return t


def test_ufunc_at_updates_in_place_as_numpy_does():
    # ufunc.at returns None: its update of the array was dropped, and the
    # gradient silently zero
    w, x = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(codax.grad(_scatter_square)(w),
                               numeric_grad(_scatter_square, (w,)), rtol=1e-6)
    np.testing.assert_allclose(codax.jit(_ufunc_updates)(w, x), _ufunc_updates(w, x))
    np.testing.assert_allclose(codax.jacfwd(_ufunc_updates)(w, x),
                               numeric_jacobian(lambda v: _ufunc_updates(v, x), w), rtol=1e-6)
    np.testing.assert_allclose(codax.jacrev(_ufunc_updates)(w, x),
                               numeric_jacobian(lambda v: _ufunc_updates(v, x), w), rtol=1e-6)
    ws = np.stack([w, 0.5 * w, -w])
    np.testing.assert_allclose(codax.vmap(_ufunc_updates, in_axes=(0, None))(ws, x),
                               np.stack([_ufunc_updates(v, x) for v in ws]))
    assert np.array_equal(x, [0.5, -1.0, 2.0])      # the argument is untouched


def _update_of_a_view(w):
    t = np.zeros((2, 3))
    np.add.at(t[0], np.array([0]), w[0])
    return np.sum(t)


def _update_of_an_alias(w):
    t = np.zeros(3)
    u = t
    np.add.at(t, np.array([0]), w[0])
    return np.sum(u)


def test_ufunc_at_of_a_view_or_an_alias_is_refused():
    for fn in (_update_of_a_view, _update_of_an_alias):
        with pytest.raises(codax.SourceError) as excinfo:
            codax.grad(fn)(np.ones(3))
        assert 'test_regressions_s12.py' in str(excinfo.value)


def _scaled(a, s):
    return a * s


def _partial_with_a_keyword(x):
    h = functools.partial(_scaled, s=3.0)
    return np.sum(h(x) ** 2)


def _lambda_with_a_default(x):
    f = lambda v, p=3: v ** p          # noqa: E731
    return f(x[0]) + f(x[1], 2)


def _nested_def_with_a_default(x):
    def f(v, p=3.0):
        return v ** p
    return f(x[0]) * x[1]


@pytest.mark.parametrize('fn', [_partial_with_a_keyword, _lambda_with_a_default,
                                _nested_def_with_a_default])
def test_forward_mode_through_a_callable_whose_default_is_not_passed(fn):
    # vmap of the tangent code bound the call's arguments without the
    # callable's defaults (a closure's are its lifted function's)
    x = np.array([0.3, -0.7])
    np.testing.assert_allclose(codax.jacfwd(fn)(x), numeric_grad(fn, (x,)), rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(codax.jacfwd(codax.grad(fn))(x),
                               numeric_jacobian(codax.grad(fn), x), rtol=1e-6, atol=1e-8)


def _passing_through(f):
    @functools.wraps(f)
    def wrapper(*a, **k):
        return f(*a, **k)       #@forwarded
    return wrapper


@_passing_through
def _decorated(x):
    return np.sum(np.cos(x) * x)


def test_a_decorated_function_is_read_as_its_wrapper():
    # functools.wraps renames the wrapper: codax looked for a `def _decorated`
    # and said the definition was missing; it reads the wrapper's own def,
    # whose forwarding call it names
    with pytest.raises(codax.SourceError) as excinfo:
        codax.grad(_decorated)(np.array([0.3, -0.7]))
    message = str(excinfo.value)
    assert 'test_regressions_s12.py:' in message and 'f(*a, **k)' in message


def _layer_by_layer(x):
    layer = [x]
    for _ in range(3):
        new = []                        # a fresh list each pass: `layer = new` is no alias
        for v in layer:                 # of the list appended to next time
            new.append(np.sin(v))
            new.append(v * 2.0)
        layer = new
    return sum(np.sum(v) for v in layer)


def test_a_list_rebuilt_each_pass_is_not_an_alias():
    x = np.array([0.3, 0.5])
    np.testing.assert_allclose(codax.grad(_layer_by_layer)(x), numeric_grad(_layer_by_layer, (x,)),
                               rtol=1e-6)

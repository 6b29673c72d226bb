"""*args, keyword-only and positional-only parameters under every
transformation, and the check of a custom_vjp bwd rule's cotangents.

As in JAX: the arguments *args collects are positional arguments of the
call, so argnums count them; keyword-only arguments are passed by keyword
and not differentiated by grad, and vmap maps what is passed by keyword
along axis 0 (a keyword-only parameter left at its default is not mapped).
Helpers with such signatures, called inside a transformed function, carry
derivatives through every argument.

References: central differences (tests/helpers.py), the same function
written with positional parameters only, and Python loops over examples.
"""
import numpy as np
import pytest

import codax
from helpers import numeric_grad

X = np.array([0.3, 0.7, -0.4])
W = np.array([1.5, 2.0, -0.5])
P = np.array([[1.0, 2.0, 0.5], [0.5, -1.0, 0.3], [0.2, 0.1, -0.7]])
XS = np.stack([X, 1.1 * X + 0.05, 0.9 * X - 0.1])
WS = np.stack([W, 0.8 * W, 1.2 * W + 0.1])


def total(*xs):
    s = 0.0
    for x in xs:
        s = s + np.sum(np.sin(x) * x)
    return s


def total_plain(a, b):
    return np.sum(np.sin(a) * a) + np.sum(np.sin(b) * b)


def loss(params, *batch):
    x, y = batch
    return np.sum(np.tanh(x @ params - y) ** 2)


def loss_plain(params, x, y):
    return np.sum(np.tanh(x @ params - y) ** 2)


def scaled(x, *, scale=2.0):
    return np.sum(x ** 2) * scale


def tempered(x, *, temperature):
    return np.sum(np.exp(x / temperature))


def positional_only(x, /, y):
    return np.sum(np.sin(x) * y)


def mixed(x, *ys, scale=1.0):
    return np.sum(np.sin(x) * scale) + np.sum(ys[0] * x)


def keywords_all(x, *, a, b=2.0, **kw):
    return np.sum(x * a * b) + len(kw) + np.sum(kw['c'] * x)


def helpers(x, w):
    # helpers with *args, keyword-only parameters (with and without their
    # defaults), *args with keywords, and keyword-only with **kwargs
    return (total(x, w, x * w) + scaled(x, scale=w[0]) + scaled(w)
            + mixed(x, w, scale=w[1]) + mixed(w, x)
            + keywords_all(x, a=w[0], c=w) + keywords_all(w, b=x[0], a=3.0, c=x, d=1))


def helpers_plain(x, w):
    return (np.sum(np.sin(x) * x) + np.sum(np.sin(w) * w) + np.sum(np.sin(x * w) * x * w)
            + np.sum(x ** 2) * w[0] + 2.0 * np.sum(w ** 2)
            + np.sum(np.sin(x) * w[1]) + np.sum(w * x) + np.sum(np.sin(w)) + np.sum(x * w)
            + np.sum(x * w[0] * 2.0) + 1 + np.sum(w * x) + np.sum(w * 3.0 * x[0]) + 2 + np.sum(x * w))


def test_plain_twins_agree():
    np.testing.assert_allclose(helpers(X, W), helpers_plain(X, W), rtol=1e-12)
    np.testing.assert_allclose(total(X, W), total_plain(X, W), rtol=1e-12)


# ---- *args: its arguments are positional arguments, counted by argnums ----

def test_grad_of_star_args_counts_them_as_positions():
    for argnums in (0, 1, (0, 1), -1):
        got = codax.grad(total, argnums=argnums)(X, W)
        want = numeric_grad(total_plain, (X, W), argnums if argnums != -1 else 1)
        for g, w in zip(got if isinstance(argnums, tuple) else (got,),
                        want if isinstance(argnums, tuple) else (want,)):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)


def test_loss_of_params_and_a_batch():
    want = numeric_grad(loss_plain, (X, P, W), (0, 2))
    got = codax.grad(loss, argnums=(0, 2))(X, P, W)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)
    value, g = codax.value_and_grad(loss)(X, P, W)
    np.testing.assert_allclose(value, loss_plain(X, P, W), rtol=1e-12)
    np.testing.assert_allclose(g, want[0], rtol=1e-6, atol=1e-9)


def test_star_args_jacobians_hessian_and_jit():
    fd = numeric_grad(total_plain, (X, W), 1)
    np.testing.assert_allclose(codax.jacfwd(total, argnums=1)(X, W), fd, rtol=1e-6)
    np.testing.assert_allclose(codax.jacrev(total, argnums=-1)(X, W), fd, rtol=1e-6)
    hess = codax.hessian(loss, argnums=2)(X, P, W)
    rows = [numeric_grad(lambda y: codax.grad(loss, argnums=2)(X, P, y) @ e, (W,))
            for e in np.eye(3)]
    np.testing.assert_allclose(hess, np.array(rows), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(codax.jit(total)(X, W, X), total(X, W, X), rtol=1e-12)
    np.testing.assert_allclose(codax.jit(codax.grad(loss))(X, P, W),
                               numeric_grad(loss_plain, (X, P, W)), rtol=1e-6)
    np.testing.assert_allclose(codax.grad(codax.jit(loss))(X, P, W),
                               numeric_grad(loss_plain, (X, P, W)), rtol=1e-6)


def test_star_args_vjp_and_jvp():
    out, pullback = codax.vjp(loss, X, P, W)
    np.testing.assert_allclose(out, loss_plain(X, P, W), rtol=1e-12)
    adjoints = pullback(0.5)
    assert len(adjoints) == 3
    for a, i in zip(adjoints, range(3)):
        np.testing.assert_allclose(a, 0.5 * numeric_grad(loss_plain, (X, P, W), i),
                                   rtol=1e-6, atol=1e-9)
    v = np.array([0.2, -0.1, 0.4])
    _, tangent = codax.jvp(total, (X, W), (v, v))
    fd = numeric_grad(total_plain, (X, W), (0, 1))
    np.testing.assert_allclose(tangent, fd[0] @ v + fd[1] @ v, rtol=1e-6)


def test_star_args_vmap_and_per_example_gradients():
    np.testing.assert_allclose(codax.vmap(total)(XS, WS),
                               [total_plain(x, w) for x, w in zip(XS, WS)], rtol=1e-12)
    got = codax.vmap(codax.grad(loss), in_axes=(None, None, 0))(X, P, WS)
    np.testing.assert_allclose(got, [numeric_grad(loss_plain, (X, P, w)) for w in WS],
                               rtol=1e-6, atol=1e-9)


# ---- keyword-only parameters: passed by keyword, never differentiated ----

def test_grad_of_keyword_only_parameters():
    np.testing.assert_allclose(codax.grad(scaled)(X, scale=3.0), 6.0 * X, rtol=1e-12)
    np.testing.assert_allclose(codax.grad(scaled)(X), 4.0 * X, rtol=1e-12)
    np.testing.assert_allclose(codax.grad(tempered)(X, temperature=0.5),
                               numeric_grad(lambda x: tempered(x, temperature=0.5), (X,)),
                               rtol=1e-6)
    value, g = codax.value_and_grad(tempered)(X, temperature=0.5)
    np.testing.assert_allclose(value, tempered(X, temperature=0.5), rtol=1e-12)
    with pytest.raises(TypeError, match='temperature'):
        codax.grad(tempered)(X)


def test_keyword_only_second_order_and_jacobians():
    def at_half(x):
        return tempered(x, temperature=0.5)
    want = np.diag(np.exp(X / 0.5) / 0.25)
    np.testing.assert_allclose(codax.hessian(tempered)(X, temperature=0.5), want, rtol=1e-10)
    np.testing.assert_allclose(codax.jacfwd(codax.grad(tempered))(X, temperature=0.5), want,
                               rtol=1e-10)
    np.testing.assert_allclose(codax.jacrev(tempered)(X, temperature=0.5),
                               numeric_grad(at_half, (X,)), rtol=1e-6)
    np.testing.assert_allclose(codax.jacfwd(tempered)(X, temperature=0.5),
                               numeric_grad(at_half, (X,)), rtol=1e-6)
    np.testing.assert_allclose(codax.jit(codax.grad(tempered))(X, temperature=0.5),
                               numeric_grad(at_half, (X,)), rtol=1e-6)
    np.testing.assert_allclose(codax.grad(codax.jit(tempered))(X, temperature=0.5),
                               numeric_grad(at_half, (X,)), rtol=1e-6)


def test_vmap_maps_keyword_arguments_along_axis_0():
    temps = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(codax.vmap(tempered)(XS, temperature=temps),
                               [tempered(x, temperature=t) for x, t in zip(XS, temps)],
                               rtol=1e-12)
    got = codax.vmap(codax.grad(tempered))(XS, temperature=temps)
    np.testing.assert_allclose(got, [np.exp(x / t) / t for x, t in zip(XS, temps)],
                               rtol=1e-12)
    # a default left out is not mapped (it is a number)
    np.testing.assert_allclose(codax.vmap(scaled)(XS), [scaled(x) for x in XS], rtol=1e-12)


def test_grad_of_grad_with_keyword_only_arguments_inside():
    def outer(x):
        return np.sum(codax.grad(tempered)(x, temperature=x[0] + 2.0))
    np.testing.assert_allclose(codax.grad(outer)(X), numeric_grad(outer, (X,)), rtol=1e-5)


# ---- positional-only parameters ----

def test_positional_only_parameters():
    fd = numeric_grad(positional_only, (X, W), (0, 1))
    got = codax.grad(positional_only, argnums=(0, 1))(X, W)
    for g, w in zip(got, fd):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    np.testing.assert_allclose(codax.hessian(positional_only)(X, W), np.diag(-np.sin(X) * W),
                               rtol=1e-10)
    np.testing.assert_allclose(codax.vmap(positional_only)(XS, WS),
                               [positional_only(x, w) for x, w in zip(XS, WS)], rtol=1e-12)


# ---- helpers with these signatures, called inside transformed code ----

def test_helpers_under_reverse_and_forward_mode():
    fd = numeric_grad(helpers_plain, (X, W), (0, 1))
    got = codax.grad(helpers, argnums=(0, 1))(X, W)
    for g, w in zip(got, fd):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8)
    v = np.array([0.1, 0.2, -0.3])
    _, tangent = codax.jvp(helpers, (X, W), (v, 2 * v))
    np.testing.assert_allclose(tangent, fd[0] @ v + fd[1] @ (2 * v), rtol=1e-6)
    np.testing.assert_allclose(codax.jacfwd(helpers, argnums=1)(X, W), fd[1], rtol=1e-6)
    np.testing.assert_allclose(codax.jit(helpers)(X, W), helpers_plain(X, W), rtol=1e-12)


def test_helpers_second_order():
    # helpers_plain's second derivative in x, written out (it is diagonal)
    xw = X * W
    want = np.diag(2 * np.cos(X) - X * np.sin(X) + W ** 2 * (2 * np.cos(xw) - xw * np.sin(xw))
                   + 2 * W[0] - W[1] * np.sin(X))
    np.testing.assert_allclose(
        want[0], numeric_grad(lambda x: numeric_grad(helpers_plain, (x, W), eps=1e-4)[0], (X,),
                              eps=1e-4), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(codax.hessian(helpers)(X, W), want, rtol=1e-10, atol=1e-12)
    gg = codax.grad(lambda x, w: np.sum(codax.grad(helpers)(x, w)))(X, W)
    np.testing.assert_allclose(gg, want.sum(axis=1), rtol=1e-10)


def test_helpers_under_vmap():
    np.testing.assert_allclose(codax.vmap(helpers)(XS, WS),
                               [helpers_plain(x, w) for x, w in zip(XS, WS)], rtol=1e-12)
    got = codax.vmap(codax.grad(helpers, argnums=1))(XS, WS)
    want = [numeric_grad(helpers_plain, (x, w), 1) for x, w in zip(XS, WS)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    got = codax.grad(lambda xs: np.sum(codax.vmap(helpers, in_axes=(0, None))(xs, W)))(XS)
    np.testing.assert_allclose(got, [numeric_grad(helpers_plain, (x, W)) for x in XS],
                               rtol=1e-6, atol=1e-8)


def test_star_args_on_a_nested_function_is_refused_with_its_line():
    def outer(x):
        def inner(*ys):
            return ys[0]
        return np.sum(inner(x))
    with pytest.raises(codax.SourceError, match=r'\*args on a function defined inside') as info:
        codax.grad(outer)(X)
    assert 'test_signatures_s11.py' in str(info.value)


# ---- custom_vjp: the bwd rule's cotangents must fit the arguments ----

@codax.custom_vjp
def sine_layer(w, x):
    return np.sin(w @ x)


def _sine_fwd(w, x):
    return sine_layer(w, x), (w, x)


def _sine_bwd(residuals, cotangent):
    w, x = residuals
    c = np.cos(w @ x) * cotangent
    return np.outer(c, x), w.T @ c


sine_layer.defvjp(_sine_fwd, _sine_bwd)


@codax.custom_vjp
def transposed_layer(w, x):
    return np.sin(w @ x)


def _transposed_bwd(residuals, cotangent):        # w's cotangent transposed: wrong shape
    w, x = residuals
    c = np.cos(w @ x) * cotangent
    return np.outer(c, x).T, w.T @ c


transposed_layer.defvjp(_sine_fwd, _transposed_bwd)

WM = np.arange(6.0).reshape(2, 3) / 7


def _layer_loss(w, x):
    return np.sum(sine_layer(w, x) ** 2)


def _plain_loss(w, x):
    return np.sum(np.sin(w @ x) ** 2)


def test_custom_vjp_bwd_of_wrong_shape_names_the_rule():
    with pytest.raises(ValueError, match=r'Custom VJP bwd rule must produce an output with the '
                       r'same shape/dtypes.*_transposed_bwd.*test_signatures_s11\.py.*argument w.*'
                       r'\(3, 2\).*\(2, 3\)'):
        codax.grad(lambda w, x: np.sum(transposed_layer(w, x)))(WM, X)


def test_custom_vjp_bwd_gets_the_cotangent_in_the_output_shape():
    # np.sum's adjoint is one number for every element: the rule still
    # receives the output's shape, as in JAX
    seen = []

    @codax.custom_vjp
    def layer(w, x):
        return np.sin(w @ x)

    def bwd(residuals, cotangent):
        seen.append(np.shape(cotangent))
        return _sine_bwd(residuals, cotangent)
    layer.defvjp(_sine_fwd, bwd)
    got = codax.grad(lambda w, x: np.sum(layer(w, x)), argnums=(0, 1))(WM, X)
    assert seen == [(2,)]
    want = numeric_grad(lambda w, x: np.sum(np.sin(w @ x)), (WM, X), (0, 1))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)


def test_custom_vjp_checked_rule_keeps_higher_orders_and_vmap():
    np.testing.assert_allclose(codax.grad(_layer_loss)(WM, X),
                               numeric_grad(_plain_loss, (WM, X)), rtol=1e-6, atol=1e-9)
    got = codax.vmap(codax.grad(_layer_loss), in_axes=(None, 0))(WM, XS)
    np.testing.assert_allclose(got, [numeric_grad(_plain_loss, (WM, x)) for x in XS],
                               rtol=1e-6, atol=1e-9)
    gg = codax.grad(lambda w, x: np.sum(codax.grad(_layer_loss, argnums=1)(w, x)))(WM, X)
    want = numeric_grad(lambda w: np.sum(numeric_grad(_plain_loss, (w, X), 1, eps=1e-5)),
                        (WM,), eps=1e-4)
    np.testing.assert_allclose(gg, want, rtol=1e-4, atol=1e-6)

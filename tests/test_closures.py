"""Lambdas and nested functions inside transformed code (closure conversion,
transformer/closures.py): derivatives flow into the variables a closure
captures, under grad, jvp, second order, vmap and jit, through calls made
directly and through codax.lax. References: central finite differences, the
same function run by Python, and per-example loops."""
import numpy as np
import pytest

import codax
from codax import lax
from helpers import numeric_grad

X = np.array([0.3, -0.7, 1.1])


def fori_lambda(x):
    return np.sum(lax.fori_loop(0, 3, lambda i, c: np.sin(c * x) + i, x))


def while_lambdas(x):
    out = lax.while_loop(lambda c: np.sum(c) < 8.0, lambda c: c * 1.5 + x * x, np.ones(3))
    return np.sum(out)


def scan_nested_def(x):
    def step(carry, xi):
        return carry * np.cos(xi * x) + x, carry * xi
    carry, ys = lax.scan(step, x, np.arange(4.0))
    return np.sum(carry) + np.sum(ys)


def cond_and_switch(x):
    scale = np.sum(x)
    branches = [lambda v: np.tanh(v * scale), lambda v: v ** 2 * scale]
    a = lax.switch(1, branches, x)
    b = lax.cond(scale > 0, lambda v: np.exp(v * scale), lambda v: v, x)
    return np.sum(a + b)


def map_lambda(x):
    return np.sum(lax.map(lambda r: np.sin(r * x), np.arange(3.0)))


def called_directly(x):
    def affine(v, shift=0.5):
        return v * x + shift
    sq = lambda v: affine(v) ** 2
    return np.sum(sq(x) + affine(2.0 * x))


def nested_twice(x):
    def outer(y):
        inner = lambda z: z * x + y
        return inner(y) * 2.0
    return np.sum(outer(x) + outer(np.sin(x)))


def rebound_in_loop(x):
    # Python reads `x` when `grow` is called: each call sees the current x
    grow = lambda v: v * x
    for _ in range(3):
        x = grow(x)
    return np.sum(x)


def assigned_after_def(x):
    def later():
        return y * 2.0
    y = np.cos(x)
    return np.sum(later() * x)


def scan_without_ys(x):
    def step(carry, xi):                   # ys None: nothing stacked
        return carry * np.cos(xi * x) + xi, None
    carry, _ = lax.scan(step, x, np.arange(3.0))
    return np.sum(carry ** 2)


def fori_times_a_number(x):
    # a Python number in a product: its adjoint stays a number standing for an array
    return np.sum(lax.fori_loop(0, 2, lambda i, c: np.sin(c) * 0.5, x)) ** 2


def recursive_closure(x):
    # a nested def that calls itself, reading a captured value on the way down
    c = x[0]

    def p(v, k):
        if k == 0:
            return v
        return np.sin(p(v, k - 1)) * c
    return np.sum(p(x, 3))


def captured_unused_on_one_path(x):
    # one branch leaves the captured c's adjoint the zero: as a tuple of
    # zeros it keeps the closure's structure under vmap of forward mode
    c = x[0]

    def q(v, k):
        if k == 0:
            return v
        return np.sin(v) * c
    return np.sum(q(x, 0) * q(x, 1))


FUNCTIONS = [fori_lambda, while_lambdas, scan_nested_def, cond_and_switch, map_lambda,
             called_directly, nested_twice, rebound_in_loop, assigned_after_def,
             scan_without_ys, fori_times_a_number, recursive_closure,
             captured_unused_on_one_path]


def _python(fn, x):
    """The function as Python runs it (no codax)."""
    return fn(x)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=lambda f: f.__name__)
def test_grad_matches_finite_differences(fn):
    expected = numeric_grad(fn, (X,))
    np.testing.assert_allclose(codax.grad(fn)(X), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=lambda f: f.__name__)
def test_value_and_forward_mode(fn):
    v = np.array([0.2, -1.0, 0.5])
    value, tangent = codax.jvp(fn, (X,), (v,))
    np.testing.assert_allclose(value, _python(fn, X), rtol=1e-12)
    np.testing.assert_allclose(tangent, numeric_grad(fn, (X,)) @ v, rtol=1e-6, atol=1e-8)


def _hessian_reference(fn):
    return np.stack([numeric_grad(lambda x: codax.grad(fn)(x)[i], (X,)) for i in range(3)])


@pytest.mark.parametrize('fn', FUNCTIONS, ids=lambda f: f.__name__)
def test_hessian_matches_finite_differences_of_grad(fn):
    expected = _hessian_reference(fn)
    np.testing.assert_allclose(codax.hessian(fn)(X), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(codax.jacfwd(codax.grad(fn))(X), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=lambda f: f.__name__)
def test_jacrev_of_grad_matches_finite_differences_of_grad(fn):
    np.testing.assert_allclose(codax.jacrev(codax.grad(fn))(X), _hessian_reference(fn),
                               rtol=1e-5, atol=1e-7)


XS = np.stack([X, 0.5 * X, -X + 0.1])


@pytest.mark.parametrize('fn', FUNCTIONS, ids=lambda f: f.__name__)
def test_per_example_gradients_match_finite_differences(fn):
    """vmap(grad(f)); where a lax loop's trip count or a branch differs between
    examples (while_lambdas, cond_and_switch), through the summed gradient."""
    want = [numeric_grad(fn, (x,)) for x in XS]
    np.testing.assert_allclose(codax.vmap(codax.grad(fn))(XS), want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=lambda f: f.__name__)
def test_grad_of_vmap_reaches_the_captured_values(fn):
    summed = lambda xs: np.sum(codax.vmap(fn)(xs))      # noqa: E731
    want = np.stack([numeric_grad(fn, (x,)) for x in XS])
    np.testing.assert_allclose(codax.grad(summed)(XS), want, rtol=1e-6, atol=1e-8)


def scalar_fori(x):
    return lax.fori_loop(0, 3, lambda i, c: np.sin(c * x) + c, x)


def scalar_rebound(x):
    grow = lambda v: v * x + 1.0
    for _ in range(3):
        x = grow(x)
    return x


def scalar_scan(x):
    def step(carry, xi):
        return carry * np.cos(xi * x), carry
    carry, ys = lax.scan(step, x, np.arange(3.0))
    return carry + np.sum(ys)


@pytest.mark.parametrize('fn', [scalar_fori, scalar_rebound, scalar_scan],
                         ids=lambda f: f.__name__)
def test_second_derivative_through_lax_and_loops(fn):
    x = 0.7
    expected = numeric_grad(codax.grad(fn), (x,))
    np.testing.assert_allclose(codax.grad(codax.grad(fn))(x), expected, rtol=1e-6)
    np.testing.assert_allclose(codax.jacfwd(codax.grad(fn))(x), expected, rtol=1e-6)
    np.testing.assert_allclose(codax.jacrev(codax.grad(fn))(x), expected, rtol=1e-6)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=lambda f: f.__name__)
def test_vmap_matches_a_loop(fn):
    xs = np.stack([X, 0.5 * X, -X + 0.1])
    np.testing.assert_allclose(codax.vmap(fn)(xs), [_python(fn, x) for x in xs], rtol=1e-12)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=lambda f: f.__name__)
def test_jit_and_jit_of_grad(fn):
    np.testing.assert_allclose(codax.jit(fn)(X), _python(fn, X), rtol=1e-12)
    np.testing.assert_allclose(codax.jit(codax.grad(fn))(X), codax.grad(fn)(X), rtol=1e-12)


def captured_weights(w, xs):
    layer = lambda h: np.tanh(h @ w) @ w.T + xs
    h = xs
    for _ in range(2):
        h = layer(h)
    return np.sum(h) + np.sum(lax.map(lambda x: np.sin(x @ w), xs))


def layers(w, xs):
    layer = lambda h: np.tanh(h @ w) @ w.T + xs
    h = xs
    for _ in range(2):
        h = layer(h)
    return np.sum(h)


def test_vmap_over_a_captured_variable_only():
    """The batch axis lives in the closure's captured values, not in the
    arguments the closure is called with."""
    rng = np.random.default_rng(0)
    ws, xs = rng.normal(size=(4, 3, 2)), rng.normal(size=(5, 3))
    got = codax.vmap(captured_weights, in_axes=(0, None))(ws, xs)
    np.testing.assert_allclose(got, [captured_weights(w, xs) for w in ws], rtol=1e-12)
    batch = np.stack([xs, -xs])
    grads = codax.vmap(codax.grad(layers), in_axes=(None, 0))(ws[0], batch)
    for x, g in zip(batch, grads):
        np.testing.assert_allclose(g, numeric_grad(layers, (ws[0], x)), rtol=1e-6, atol=1e-8)


def test_gradients_of_several_captured_arguments():
    def f(a, b):
        return lax.fori_loop(0, 2, lambda i, c: c * a + b, 1.0)
    da, db = codax.grad(f, argnums=(0, 1))(1.3, 0.4)
    # f = (a + b) a + b
    np.testing.assert_allclose([da, db], [2 * 1.3 + 0.4, 1.3 + 1.0], rtol=1e-12)


def test_inputs_are_not_modified():
    x = X.copy()
    codax.grad(scan_nested_def)(x)
    codax.vmap(rebound_in_loop)(np.stack([x, x]))
    np.testing.assert_array_equal(x, X)


def test_source_shows_the_lifted_closure():
    text = codax.grad(fori_lambda).source(X)
    assert 'rt.closure(_lambda_0, x)' in text
    assert 'def _lambda_0(x, i, c):' in text
    assert 'a closure in fori_lambda' in text


def decorated(x):
    @codax.jit
    def inner(y):
        return y * x
    return inner(x)


def default_reads_a_variable(x):
    def body(c, s=x):
        return c * s
    return body(x)


def no_rule_inside(x):
    def body(c):
        return np.fft.hfft(c * x)
    return np.sum(body(np.ones(3)))


@pytest.mark.parametrize('fn, message, line', [
    (decorated, 'decorators on a nested function', '@codax.jit'),
    (default_reads_a_variable, "default values must be literals", 'def body(c, s=x):'),
    (no_rule_inside, 'np.fft.hfft has no derivative rule', 'return np.fft.hfft(c * x)'),
], ids=lambda v: getattr(v, '__name__', None))
def test_errors_name_the_users_line(fn, message, line):
    with pytest.raises(codax.SourceError) as info:
        codax.grad(fn)(1.5)
    text = str(info.value)
    assert message in text and __file__ in text and line in text

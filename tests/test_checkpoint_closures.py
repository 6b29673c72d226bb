"""codax.checkpoint of a lambda or nested def made inside a transformed
function (a closure, runtime/closures.py), against plain Python, central
differences and a Python loop over examples."""
import tracemalloc

import numpy as np

import codax
import runtime
from helpers import numeric_grad as _numeric_grad

X = np.array([0.3, -0.7, 1.2])


def numeric_grad(f, x):
    return _numeric_grad(f, (x,))
XS = np.stack([X, -2.0 * X, X + 0.5])


def squares_of_sines(x):                  # captures nothing
    return np.sum(codax.checkpoint(lambda y: np.sin(y) ** 2)(x))


def captures_a_value(x):                  # derivatives flow into the captured w too
    w = x * 2.0
    return np.sum(codax.checkpoint(lambda y: np.sin(y * w) ** 2)(x) + x)


def nested_def(x):
    w = np.cos(x)

    def step(h):
        return np.tanh(h * w) + 0.1 * h
    h = x
    for _ in range(3):
        h = codax.remat(step)(h)
    return np.sum(h ** 2)


def squares_reference(x):
    return np.sum(np.sin(x) ** 2)


def captures_reference(x):
    return np.sum(np.sin(x * x * 2.0) ** 2 + x)


def nested_reference(x):
    h = x
    for _ in range(3):
        h = np.tanh(h * np.cos(x)) + 0.1 * h
    return np.sum(h ** 2)


CASES = [(squares_of_sines, squares_reference), (captures_a_value, captures_reference),
         (nested_def, nested_reference)]


def test_values_gradients_and_forward_mode():
    for f, reference in CASES:
        for x in XS:
            assert np.isclose(f(x), reference(x))
            expected = numeric_grad(reference, x)
            np.testing.assert_allclose(codax.grad(f)(x), expected, rtol=1e-6, atol=1e-8)
            v = np.array([0.2, -1.0, 0.5])
            value, tangent = codax.jvp(f, (x,), (v,))
            assert np.isclose(value, reference(x))
            assert np.isclose(tangent, expected @ v, rtol=1e-6)


def test_vmap_and_second_order():
    for f, reference in CASES:
        np.testing.assert_allclose(codax.vmap(f)(XS), [reference(x) for x in XS], rtol=1e-12)
        np.testing.assert_allclose(codax.vmap(codax.grad(f))(XS),
                                   [numeric_grad(reference, x) for x in XS], rtol=1e-6, atol=1e-8)
        hessian = np.stack([numeric_grad(lambda y: codax.grad(f)(y)[i], X) for i in range(3)])
        np.testing.assert_allclose(codax.hessian(f)(X), hessian, rtol=1e-5, atol=1e-7)


def test_a_checkpointed_closure_holds_the_same_captured_values():
    def lifted(w, y):
        return np.sin(y * w)
    made = runtime.closure(lifted, 2.0)
    checkpointed = codax.checkpoint(made)
    assert isinstance(checkpointed, runtime.Closure) and tuple(checkpointed) == (2.0,)
    assert checkpointed.function.__codax_custom__ == 'checkpoint'
    assert checkpointed(0.3) == made(0.3)


# ---- a checkpointed lambda keeps only its arguments on the tape ----

def unroll(w, h0, checkpointed):
    h = h0
    for _ in range(200):
        step = lambda h: h + 0.01 * np.exp(-np.tanh(np.cos(np.sin(h * w) + h)) ** 2)  # noqa: E731
        h = codax.checkpoint(step)(h) if checkpointed else step(h)
    return np.sum(h)


def plain_unroll(w, h0):
    return unroll(w, h0, False)


def checkpointed_unroll(w, h0):
    return unroll(w, h0, True)


def _peak_bytes(fn, *args):
    fn(*args)                                  # generate code outside the measurement
    tracemalloc.start()
    try:
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_checkpointed_lambda_recomputes_instead_of_storing():
    h0 = np.linspace(-0.5, 1.5, 20_000)
    plain, plain_peak = _peak_bytes(codax.grad(plain_unroll), 0.8, h0)
    ckpt, ckpt_peak = _peak_bytes(codax.grad(checkpointed_unroll), 0.8, h0)
    assert np.isclose(plain, ckpt, rtol=1e-12)
    step = 1e-6
    fd = (plain_unroll(0.8 + step, h0) - plain_unroll(0.8 - step, h0)) / (2 * step)
    assert np.isclose(ckpt, fd, rtol=1e-5)
    assert ckpt_peak < 0.4 * plain_peak, (ckpt_peak, plain_peak)

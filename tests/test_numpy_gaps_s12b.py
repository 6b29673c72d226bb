"""NumPy functions behind NumPy's dispatcher that codax now defines in NumPy
(runtime/definitions.py, session 12): np.linalg.tensorinv / tensorsolve,
np.emath's functions (complex results outside the real domain) and
np.trim_zeros.

Values and dtypes are checked against NumPy itself (through codax.vjp, which
runs the transformed code), Jacobians by forward and reverse mode against
central differences, vmap against a Python loop over examples.
"""
import numpy as np
import pytest

import codax
from helpers import numeric_jacobian

_rng = np.random.default_rng(121)
x6 = np.array([0.3, -0.8, 1.1, 0.5, -0.4, 0.9])
keep = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 0.0])        # trim_zeros' zeros at both ends


def _matrix(x):
    return np.concatenate([x, x ** 2, x[::-1], 1.0 + x, 3.0 * x, 2.0 - x]) \
        + 4.0 * np.eye(6).ravel()


def tensorinv(x):
    return np.linalg.tensorinv(_matrix(x).reshape(6, 2, 3), 1)


def tensorsolve(x):
    return np.linalg.tensorsolve(_matrix(x).reshape(2, 3, 2, 3), np.sin(x).reshape(2, 3))


def tensorsolve_axes(x):
    a = _matrix(x).reshape(2, 3, 6).transpose(2, 0, 1)          # the unknowns' axes first
    return np.linalg.tensorsolve(a, x.reshape(2, 3) ** 2, axes=(0,))


def _parts(z):
    # (a complex result as two real ones: codax, like JAX, differentiates to reals)
    return np.concatenate([np.real(z), np.imag(z)])


def sqrt(x):
    return _parts(np.emath.sqrt(x))


def log(x):
    return _parts(np.emath.log(x))


def log2(x):
    return _parts(np.emath.log2(x))


def log10(x):
    return _parts(np.emath.log10(x))


def power(x):
    return _parts(np.emath.power(x, 3.0) + np.emath.power(x + 2.0, np.array([2, -1, 3, 1, 2, -2])))


def arccos(x):
    return _parts(np.emath.arccos(1.5 * x))


def arcsin(x):
    return _parts(np.emath.arcsin(1.5 * x))


def arctanh(x):
    return _parts(np.emath.arctanh(1.5 * x))


def trim_zeros(x):
    return np.trim_zeros(x * keep) * x[0]


def trim_front(x):
    return np.trim_zeros(x * keep, 'f')


def trim_back_rows(x):
    return np.trim_zeros((x * keep).reshape(3, 2).T, 'b', axis=1)


EMATH = [sqrt, log, log2, log10, power, arccos, arcsin, arctanh]
FUNCTIONS = [tensorinv, tensorsolve, tensorsolve_axes] + EMATH + \
    [trim_zeros, trim_front, trim_back_rows]


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
def test_values_and_jacobians(f):
    value, pullback = codax.vjp(f, x6)
    want = f(x6)
    assert value.dtype == want.dtype and value.shape == want.shape
    np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-14)
    jac = numeric_jacobian(f, x6)
    np.testing.assert_allclose(codax.jacfwd(f)(x6), jac, rtol=1e-6, atol=1e-7)
    cotangent = _rng.standard_normal(want.shape)
    np.testing.assert_allclose(pullback(cotangent)[0],
                               np.tensordot(cotangent, jac, want.ndim), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('f', [tensorinv, tensorsolve, tensorsolve_axes] + EMATH,
                         ids=lambda f: f.__name__)
def test_vmap_against_a_loop(f):
    # (each batch has an example outside the real domain: NumPy's stacked
    # results are complex, as codax's are)
    xs = np.stack([x6, 1.1 * x6 + 0.05])
    want = np.stack([f(v) for v in xs])
    got = codax.vmap(f)(xs)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def _scalar(f):
    return lambda x: np.sum(np.sin(f(x)))


@pytest.mark.parametrize('f', [tensorinv, tensorsolve, sqrt, power, arcsin],
                         ids=lambda f: f.__name__)
def test_hessians(f):
    g = _scalar(f)
    want = numeric_jacobian(codax.grad(g), x6, 1e-5)
    np.testing.assert_allclose(codax.hessian(g)(x6), want, rtol=1e-5, atol=1e-6)


# ---- np.emath's dtypes: real inside the domain, complex64 from float32 ----

EMATH_CALLS = [np.emath.sqrt, np.emath.log, np.emath.log2, np.emath.log10, np.emath.arccos,
               np.emath.arcsin, np.emath.arctanh]


@pytest.mark.parametrize('fn', EMATH_CALLS, ids=lambda fn: fn.__name__)
@pytest.mark.parametrize('x', [np.array([0.25, 0.5]), np.array([0.25, -0.5]),
                               np.array([-3.0, 0.5], dtype=np.float32), np.array([-4, 9]),
                               np.array([0, 1], dtype=np.int16), np.array([0.5 - 1j, 2.0])],
                         ids=['in', 'out', 'f32', 'int', 'int16', 'complex'])
def test_emath_dtypes(fn, x):
    with np.errstate(all='ignore'):
        want = fn(x)
        got = codax.vjp(lambda v: fn(v), x)[0]
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_emath_real_gradient_inside_the_domain():
    x = np.array([0.2, 0.7])
    np.testing.assert_allclose(codax.grad(lambda v: np.sum(np.emath.sqrt(v)))(x),
                               0.5 / np.sqrt(x), rtol=1e-12)
    np.testing.assert_allclose(codax.grad(lambda v: np.sum(np.emath.arccos(v)))(x),
                               -1.0 / np.sqrt(1.0 - x ** 2), rtol=1e-12)
    # (a negative integer power is taken as a float one, as NumPy's emath does)
    assert codax.vjp(lambda v: np.emath.power(v, np.array([-1, 2])), np.array([2, 3]))[0] \
        .dtype == np.emath.power(np.array([2, 3]), np.array([-1, 2])).dtype


# ---- trim_zeros: a slice that depends on the values ----

def test_trim_zeros_slices_and_refusals():
    all_zero = codax.vjp(lambda x: np.trim_zeros(x * 0.0), x6)[0]
    assert all_zero.shape == np.trim_zeros(x6 * 0.0).shape == (0,)
    square = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    got = codax.vjp(lambda a: np.trim_zeros(a * square), np.ones((3, 3)))[0]
    np.testing.assert_array_equal(got, np.trim_zeros(square))
    with pytest.raises(ValueError, match='unexpected character'):
        codax.grad(lambda x: np.sum(np.trim_zeros(x, 'x')))(x6)


def test_trim_zeros_under_vmap_needs_one_slice():
    # (the kept range differs between examples, so the slices would have
    # different lengths: refused, as JAX refuses it under jit)
    with pytest.raises(codax.SourceError, match='batched'):
        codax.vmap(trim_zeros)(np.stack([x6, x6]))


# ---- np.spacing, np.nextafter: records without a derivative (steps) ----

def steps(x):
    return x ** 2 * np.spacing(x) * 1e15 + np.nextafter(x, np.array([0.0, 2.0, 0.0, 1.0, 3.0, -1.0]))


def test_spacing_and_nextafter_are_constants():
    value = codax.vjp(steps, x6)[0]
    np.testing.assert_array_equal(value, steps(x6))
    for x in (x6.astype(np.float32), x6):
        got = codax.vjp(lambda v: np.spacing(v) + np.nextafter(v, v[0]), x)[0]
        want = np.spacing(x) + np.nextafter(x, x[0])
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    # (the product rule with a constant factor, and nextafter's step taken as a constant)
    np.testing.assert_allclose(codax.jacfwd(steps)(x6), np.diag(2e15 * x6 * np.spacing(x6)),
                               rtol=1e-12)
    np.testing.assert_allclose(codax.grad(lambda x: np.sum(steps(x)))(x6),
                               2e15 * x6 * np.spacing(x6), rtol=1e-12)
    np.testing.assert_allclose(codax.hessian(lambda x: np.sum(steps(x)))(x6),
                               np.diag(2e15 * np.spacing(x6)), rtol=1e-12)
    xs = np.stack([x6, 3.0 * x6])
    np.testing.assert_array_equal(codax.vmap(steps)(xs), np.stack([steps(v) for v in xs]))

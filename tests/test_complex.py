"""Derivatives of complex functions follow JAX's convention.

For a real function f of complex z = x + iy, grad gives df/dx - i df/dy; for
a holomorphic f, vjp(ct) is ct * f'(z) and jvp(t) is f'(z) * t. The
references are central differences along the real and imaginary directions.
"""

import numpy as np
import pytest

import codax

Z = np.array([1.0 + 2.0j, 0.5 - 1.5j, -0.8 + 0.3j])
W = np.array([0.5 - 1.0j, 2.0 + 0.3j, -1.0 - 0.7j])
EPS = 1e-6


def real_gradient(f, z):
    """df/dx - i df/dy by central differences, one element at a time."""
    out = np.zeros_like(z)
    for k in range(z.size):
        step = np.zeros_like(z)
        step[k] = EPS
        dx = (f(z + step) - f(z - step)) / (2 * EPS)
        dy = (f(z + 1j * step) - f(z - 1j * step)) / (2 * EPS)
        out[k] = dx - 1j * dy
    return out


def derivative(f, z):
    """f'(z) of an element-wise holomorphic f, along the real direction."""
    return (f(z + EPS) - f(z - EPS)) / (2 * EPS)


def abs_squared(z):
    return np.sum(np.abs(z) ** 2)


def modulus(z):
    return np.sum(np.abs(z) * W.real)


def real_part(z):
    return np.sum(np.real(z * z * W))


def imag_part(z):
    return np.sum(np.imag(z * W)) + np.sum(z.imag ** 2)


def through_conj(z):
    return np.sum((np.conj(z) * W).real) + np.sum(z.conj().real * z.real)


def exp_and_sin(z):
    return np.sum((np.exp(z) + np.sin(z) / W).real)


@pytest.mark.parametrize('f', [abs_squared, modulus, real_part, imag_part, through_conj,
                               exp_and_sin])
def test_grad_of_a_real_function_of_complex_input(f):
    got = codax.grad(f)(Z)
    assert got.dtype == Z.dtype
    np.testing.assert_allclose(got, real_gradient(f, Z), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('f', [abs_squared, modulus, through_conj])
def test_value_and_grad_and_vjp_agree_with_grad(f):
    value, g = codax.value_and_grad(f)(Z)
    np.testing.assert_allclose(value, f(Z))
    out, pullback = codax.vjp(f, Z)
    np.testing.assert_allclose(pullback(1.0)[0], g, rtol=1e-12)
    np.testing.assert_allclose(g, real_gradient(f, Z), rtol=1e-6, atol=1e-8)


def cube(z):
    return z ** 3 * W + np.exp(z)


def test_vjp_and_jvp_of_a_holomorphic_function_are_products_with_f_prime():
    ct = np.array([1.0 - 1.0j, 0.5 + 2.0j, -0.3 + 0.1j])
    slope = derivative(cube, Z)
    _, pullback = codax.vjp(cube, Z)
    np.testing.assert_allclose(pullback(ct)[0], ct * slope, rtol=1e-6)
    _, tangent = codax.jvp(cube, (Z,), (ct,))
    np.testing.assert_allclose(tangent, slope * ct, rtol=1e-6)


def test_holomorphic_grad_and_jacobians():
    def total(z):
        return np.sum(cube(z))
    slope = derivative(cube, Z)
    np.testing.assert_allclose(codax.grad(total, holomorphic=True)(Z), slope, rtol=1e-6)
    value, g = codax.value_and_grad(total, holomorphic=True)(Z)
    np.testing.assert_allclose(value, total(Z))
    np.testing.assert_allclose(g, slope, rtol=1e-6)
    for jacobian in (codax.jacfwd, codax.jacrev):
        np.testing.assert_allclose(jacobian(cube, holomorphic=True)(Z), np.diag(slope),
                                   rtol=1e-6, atol=1e-9)
    second = derivative(lambda z: derivative(cube, z), Z)
    np.testing.assert_allclose(codax.hessian(total, holomorphic=True)(Z), np.diag(second),
                               rtol=1e-4, atol=1e-6)


def test_grad_of_a_complex_output_needs_holomorphic():
    with pytest.raises(TypeError, match='holomorphic=True'):
        codax.grad(lambda z: np.sum(z ** 2))(Z)
    with pytest.raises(TypeError, match='holomorphic=True'):
        codax.grad(lambda z: (z ** 2)[0])(Z)


def test_holomorphic_needs_complex_inputs_and_output():
    with pytest.raises(TypeError, match='requires complex inputs'):
        codax.grad(lambda z: np.sum(z ** 2), holomorphic=True)(Z.real)
    with pytest.raises(TypeError, match='requires a complex output'):
        codax.grad(lambda z: np.sum(np.abs(z)), holomorphic=True)(Z)


def test_complex_gradients_batch():
    batch = np.stack([Z, W, Z * W])
    got = codax.vmap(codax.grad(through_conj))(batch)
    want = np.stack([real_gradient(through_conj, z) for z in batch])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def _jacobian_fd(g, x):
    """Central differences of g along each real coordinate of x (columns)."""
    cols = []
    for k in range(x.size):
        step = np.zeros_like(x)
        step[k] = EPS
        cols.append((g(x + step) - g(x - step)) / (2 * EPS))
    return np.stack(cols, -1)


def test_hessian_through_abs_of_a_complex_intermediate():
    # |.| of a complex value has a slope conj(z)/|z| that is not constant:
    # its derivative must reach second (and third) order
    x = np.array([0.3, -0.7, 1.1])

    def f(x):
        return np.sum(np.abs(x * x + 1j * x[::-1]) ** 2)

    def f3(x):
        return np.sum(np.abs(x * x + 1j * x[::-1]) ** 3 * x)

    for fn in (f, f3):
        want = _jacobian_fd(codax.grad(fn), x)
        for hess in (codax.hessian(fn), codax.jacfwd(codax.grad(fn)),
                     codax.jacrev(codax.jacfwd(fn))):
            np.testing.assert_allclose(hess(x), want, rtol=1e-6, atol=1e-6)
    h = codax.hessian(f3)
    np.testing.assert_allclose(codax.jacfwd(h)(x), _jacobian_fd(h, x), rtol=1e-6, atol=1e-5)


def test_grad_of_grad_of_abs_of_complex_input():
    # grad of sum(|z| * W.real) is W.real * conj(z)/|z|, itself non-holomorphic:
    # the gradient of a real function of it, both by JAX's convention
    g = codax.grad(modulus)

    def outer(z):
        return np.real(np.sum(g(z) * W))

    def outer_by_formula(z):
        return np.real(np.sum(W.real * np.conj(z) / np.abs(z) * W))

    np.testing.assert_allclose(g(Z), real_gradient(modulus, Z), rtol=1e-6)
    np.testing.assert_allclose(codax.grad(outer)(Z), real_gradient(outer_by_formula, Z),
                               rtol=1e-6, atol=1e-8)


# ---- real values meeting complex ones: the cotangent of a real value is real ----
# (JAX's transpose of the promotion of a real value to complex takes the real
# part; an imaginary part carried back into real arithmetic is silently wrong,
# and casting it away is a ComplexWarning, which these tests make an error)

COMPLEX_WARNING = 'error::numpy.exceptions.ComplexWarning'
M = np.array([[1.0 - 0.5j, 0.3 + 2.0j, -1.2 + 0.4j], [0.7 + 0.1j, -0.4 - 1.1j, 0.9 + 0.6j]])
X = np.array([0.4, -1.3, 0.8])


def scaled_by_real_sum(z):
    return np.sum(np.real(z * np.sum(np.real(z) ** 2)))


def cubed_modulus(z):
    return np.sum(np.abs(z) ** 3)


def broadcast_moduli(z):
    return np.sum(np.imag(M * np.abs(z)) ** 2) + np.sum(np.real(M * np.real(z) * z))


def products_of_moduli(z):
    return np.sum(np.abs(M @ np.abs(z)) ** 2) + np.real(np.vdot(z, np.abs(z)))


def vdots(z):
    return np.abs(np.vdot(z, W)) ** 2 + np.real(np.vdot(W, z * np.real(z)))


def indexed(z):
    return np.real(z[0] * np.abs(z[1]) + z[2] * np.sum(np.real(z) ** 2))


COMPLEX_PROGRAMS = [scaled_by_real_sum, cubed_modulus, broadcast_moduli, products_of_moduli,
                    vdots, indexed]


def phase(x):
    return np.sum(np.real(np.exp(1j * x) * Z)) * np.sum(x ** 2)


def broadcast_with_complex(x):
    return np.sum(np.abs(Z[:, None] * x + W) ** 2)


def complex_products(x):
    return np.sum(np.abs(M @ x) ** 2) + np.abs(np.vdot(Z, x ** 2)) ** 2 + np.abs(np.dot(x, Z))


REAL_PROGRAMS = [phase, broadcast_with_complex, complex_products]


def second(f):
    """A real function of codax's gradient of f, whose own gradient is then
    grad of grad (W weighs the gradient, so its imaginary part counts too)."""
    g = codax.grad(f)

    def outer(z):
        return np.real(np.sum(g(z) * W))
    return outer


@pytest.mark.filterwarnings(COMPLEX_WARNING)
@pytest.mark.parametrize('f', COMPLEX_PROGRAMS)
def test_grad_and_grad_of_grad_where_real_values_meet_complex_ones(f):
    got = codax.grad(f)(Z)
    assert got.dtype == Z.dtype
    np.testing.assert_allclose(got, real_gradient(f, Z), rtol=1e-6, atol=1e-7)
    outer = second(f)
    np.testing.assert_allclose(codax.grad(outer)(Z), real_gradient(outer, Z),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings(COMPLEX_WARNING)
@pytest.mark.parametrize('f', COMPLEX_PROGRAMS)
def test_vmap_of_grad_and_grad_of_grad_where_real_values_meet_complex_ones(f):
    batch = np.stack([Z, W, Z * W - 0.5])
    for fn in (codax.grad(f), codax.grad(second(f))):
        got = codax.vmap(fn)(batch)
        np.testing.assert_allclose(got, np.stack([fn(z) for z in batch]), rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.filterwarnings(COMPLEX_WARNING)
@pytest.mark.parametrize('f', REAL_PROGRAMS)
def test_real_parameters_through_complex_values(f):
    g = codax.grad(f)
    got = g(X)
    assert got.dtype == X.dtype
    np.testing.assert_allclose(got, _jacobian_fd(f, X), rtol=1e-6, atol=1e-7)
    want = _jacobian_fd(g, X)
    for hess in (codax.hessian(f), codax.jacrev(g), codax.jacfwd(g),
                 codax.jacrev(codax.jacfwd(f))):
        np.testing.assert_allclose(hess(X), want, rtol=1e-6, atol=1e-6)
    batch = np.stack([X, X[::-1], 2 * X])
    np.testing.assert_allclose(codax.vmap(g)(batch), np.stack([g(x) for x in batch]),
                               rtol=1e-12, atol=1e-12)
    h = codax.hessian(f)
    np.testing.assert_allclose(codax.vmap(h)(batch), np.stack([h(x) for x in batch]),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings(COMPLEX_WARNING)
def test_jacobians_and_tangents_of_a_real_to_complex_program():
    def rotated(x):
        return np.exp(1j * x) * Z * np.sum(x ** 2)

    def moduli(x):
        return np.abs(rotated(x) + W)

    t = X[::-1] - 0.2
    _, tangent = codax.jvp(rotated, (X,), (t,))
    assert tangent.dtype == np.complex128
    np.testing.assert_allclose(tangent, _jacobian_fd(rotated, X) @ t, rtol=1e-6, atol=1e-7)
    want = _jacobian_fd(moduli, X)
    for jacobian in (codax.jacrev(moduli), codax.jacfwd(moduli)):
        got = jacobian(X)
        assert got.dtype == X.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.filterwarnings(COMPLEX_WARNING)
def test_real_and_complex_parameters_together():
    def f(s, x, z):
        return np.sum(np.real(z * x * s) * np.abs(z + x)) + s * np.abs(np.sum(z))

    s = 1.5
    gs, gx, gz = codax.grad(f, argnums=(0, 1, 2))(s, X, Z)
    assert isinstance(gs, float) and gx.dtype == X.dtype and gz.dtype == Z.dtype
    np.testing.assert_allclose(gs, (f(s + EPS, X, Z) - f(s - EPS, X, Z)) / (2 * EPS), rtol=1e-6)
    np.testing.assert_allclose(gx, _jacobian_fd(lambda x: f(s, x, Z), X), rtol=1e-6)
    np.testing.assert_allclose(gz, real_gradient(lambda z: f(s, X, z), Z), rtol=1e-6)

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
